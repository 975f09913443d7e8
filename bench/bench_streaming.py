"""Streaming benchmark: windows/s and peak memory when reading long-term SWEC files.

Writes a long-term-layout recording (``IDxx_1h.mat`` + ``IDxx_info.mat``, 64 electrodes at 1024 Hz,
so the 1024 -> 512 Hz decimator runs) at several lengths and file formats, then streams every
1-s window (stride 1 s) through :func:`qcascade.data.iter_window_batches` in a fresh subprocess
per case, so each peak RSS is its own. ``run() -> str`` returns the markdown section for
``make bench``; run directly: ``python bench/bench_streaming.py [--minutes 10 40]``.

Files are freshly written, so they are read from the OS page cache: the numbers are the loader's
CPU cost, not disk bandwidth (a cold 1-h, 64-electrode single-precision file is ~0.9 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N_ELECTRODES, FILE_SFREQ = 64, 1024
TARGET_RTF = 100.0


def write_recording(root: Path, minutes: float, fmt: str) -> Path:
    """Write ``<root>/ID01/ID01_1h.mat`` (electrodes x samples) with bounded memory (except v5).

    ``fmt``: ``"7.3"`` (HDF5, chunked), ``"7.3-gzip"`` (deflate level 1, as MATLAB compresses) or
    ``"5"`` (scipy.io.savemat, uncompressed; needs the array in memory to write).
    """
    import h5py
    import numpy as np

    from qcascade.data.matwrite import mat73_userblock, write_mat
    from qcascade.io_utils import atomic_path

    n = int(minutes * 60 * FILE_SFREQ)
    rng = np.random.default_rng(0)
    block = (rng.standard_normal((FILE_SFREQ * 10, N_ELECTRODES)) * 40).astype(np.float32)
    path = root / "ID01" / "ID01_1h.mat"

    def pieces():
        for start in range(0, n, len(block)):
            yield start, block[: min(len(block), n - start)] + np.float32(start % 97)

    if fmt == "5":
        eeg = np.empty((N_ELECTRODES, n), np.float32)
        for start, piece in pieces():
            eeg[:, start:start + len(piece)] = piece.T
        write_mat(path, {"EEG": eeg}, "5")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        gzip = {"compression": "gzip", "compression_opts": 1} if fmt.endswith("gzip") else {}
        with atomic_path(path, suffix=".mat") as tmp:
            with h5py.File(tmp, "w", userblock_size=512) as f:
                # MATLAB's electrodes x samples is samples x electrodes in HDF5.
                ds = f.create_dataset("EEG", (n, N_ELECTRODES), np.float32,
                                      chunks=(min(n, 16384), N_ELECTRODES), **gzip)
                ds.attrs["MATLAB_class"] = np.bytes_("single")
                for start, piece in pieces():
                    ds[start:start + len(piece)] = piece
            with open(tmp, "r+b") as fh:
                fh.write(mat73_userblock())
    write_mat(root / "ID01" / "ID01_info.mat", {"fs": float(FILE_SFREQ), "seizure_begin": np.array([120.0]),
                                                "seizure_end": np.array([160.0])}, "5")
    return path


def _memory_mb() -> tuple[float, float]:
    """``(current RSS, peak RSS)`` of this process in MB.

    From ``/proc/self/status`` (VmRSS, VmHWM): unlike ``ru_maxrss``, the high-water mark starts
    afresh at ``exec``, so the parent's memory does not leak into the child's peak.
    """
    fields = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = float(value.split()[0]) / 1024  # kB
        return fields["VmRSS"], fields["VmHWM"]
    except (OSError, KeyError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peak, peak


def _child(root: str, segment_s: float) -> None:
    """Stream every window of the recording under ``root``; print a JSON line of measurements."""
    import tracemalloc

    import numpy as np

    from qcascade.data import discover_long, iter_window_batches

    rec = discover_long(Path(root), segment_s=segment_s)["ID01"][0]
    rec.dead_electrodes()  # warm imports and the probe outside the timed loop
    import scipy.signal  # noqa: F401 - imported lazily by the decimator; a one-off cost of seconds
    baseline_mb = _memory_mb()[1]
    tracemalloc.start()  # NumPy reports its buffers to tracemalloc: the heap peak of the loader
    t0, cpu0 = time.perf_counter(), time.process_time()
    n_windows, n_ictal, checksum = 0, 0, 0.0
    for X, y, _ in iter_window_batches(rec, 512, 512, 0.5, batch_size=256):
        n_windows += len(X)
        n_ictal += int(y.sum())
        checksum += float(np.abs(X[:, ::64]).sum())  # touch the data
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    heap_mb = tracemalloc.get_traced_memory()[1] / 2**20
    peak_mb = _memory_mb()[1]
    print(json.dumps({"n_windows": n_windows, "n_ictal": n_ictal, "wall_s": wall, "cpu_s": cpu,
                      "recording_s": rec.n_samples / 512, "baseline_mb": baseline_mb,
                      "peak_mb": peak_mb, "heap_mb": heap_mb, "checksum": checksum}))


def measure(minutes: float, fmt: str, work: Path) -> dict:
    """Write one case and stream it in a subprocess; returns the measurements."""
    root = work / f"{fmt}_{minutes:g}min"
    t0 = time.perf_counter()
    path = write_recording(root, minutes, fmt)
    write_s = time.perf_counter() - t0
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(root),
                          str(minutes * 60 + 1)], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"streaming child failed for {fmt} {minutes} min:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(minutes=minutes, fmt=fmt, file_mb=path.stat().st_size / 2**20, write_s=write_s)
    shutil.rmtree(root)
    return result


def run(minutes=(10, 40), extra_formats=("7.3-gzip", "5"), work: Path | None = None) -> str:
    """Run the benchmark and return a markdown section (tables and a verdict)."""
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="qcascade_bench_")) if own else Path(work)
    try:
        cases = [(m, "7.3") for m in minutes] + [(min(minutes), f) for f in extra_formats]
        rows = [measure(m, f, work) for m, f in cases]
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"Long-term layout, {N_ELECTRODES} electrodes at {FILE_SFREQ} Hz (decimated to 512 Hz), "
             f"1-s windows at 1-s stride in batches of 256, one subprocess per case, {os.cpu_count()} cores "
             f"(load average {load:.1f} when the run ended: other work on the machine slows it). "
             f"Real-time factor = recording seconds / wall seconds (target >= {TARGET_RTF:.0f}x); the CPU "
             "real-time factor divides by the process's CPU seconds instead, which contention does not "
             "inflate. "
             "Heap peak = NumPy/Python allocations while streaming (tracemalloc); RSS growth = peak RSS "
             "(VmHWM) minus RSS before streaming, which for memory-mapped v5 files also counts the "
             "file's page-cache pages.", "",
             "| file format | length | file size | windows | wall (s) | windows/s | real-time factor | "
             "CPU (s) | CPU real-time factor | heap peak (MB) | RSS growth (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| MAT v{r['fmt']} | {r['minutes']:g} min | {r['file_mb']:.0f} MB | {r['n_windows']} | "
                     f"{r['wall_s']:.2f} | {r['n_windows'] / r['wall_s']:.0f} | "
                     f"{r['recording_s'] / r['wall_s']:.0f}x | {r['cpu_s']:.2f} | "
                     f"{r['recording_s'] / r['cpu_s']:.0f}x | {r['heap_mb']:.0f} | "
                     f"{r['peak_mb'] - r['baseline_mb']:.0f} |")
    main = [r for r in rows if r["fmt"] == "7.3"]
    rtf = min(r["recording_s"] / r["wall_s"] for r in rows)
    cpu_rtf = min(r["recording_s"] / r["cpu_s"] for r in rows)
    growth = [r["heap_mb"] for r in main]
    flat = len(main) < 2 or max(growth) <= 1.25 * min(growth) + 10
    growth_txt = ", ".join(f"{g:.0f} MB" for g in growth)
    lengths_txt = ", ".join(f"{r['minutes']:g} min" for r in main)
    lines += ["", f"Slowest case: {rtf:.0f}x real time by the wall clock, {cpu_rtf:.0f}x by CPU time "
              f"({'meets' if rtf >= TARGET_RTF else 'BELOW'} the {TARGET_RTF:.0f}x target on the wall clock). Memory {'does not grow' if flat else 'GROWS'} with recording length "
              f"(v7.3 heap peak: {growth_txt} for {lengths_txt}). MAT v5 files are memory-mapped "
              "(uncompressed) or stream-decompressed (compressed), so they stream too.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", nargs="+", type=float, default=[10, 40])
    ap.add_argument("--child", nargs=2, metavar=("ROOT", "SEGMENT_S"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child[0], float(args.child[1]))
        return 0
    print(run(tuple(args.minutes)))
    return 0


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    sys.exit(main())
