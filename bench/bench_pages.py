"""First write to fresh NumPy arrays with and without NumPy's huge-page advice.

A run sets ``NUMPY_MADVISE_HUGEPAGE=0`` (:func:`qcascade.runtime.numpy_base_pages`). This
measures what that is worth on the machine at hand: each setting in its own fresh process (NumPy
reads the setting when it is imported), alternated, each process filling a fresh array of
``--mib`` MiB ``--times`` times with ``--pause`` seconds between (freed memory may go back to the
kernel, or to the host of a virtual machine, in between).

Run directly: ``python -m bench.bench_pages [--mib 512 --times 3 --pause 2 --rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, sys, time
import numpy as np
mib, times, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
out = []
for k in range(times):
    t = time.perf_counter()
    a = np.ones(mib * 2**20 // 4, np.float32)
    out.append(time.perf_counter() - t)
    del a
    if k + 1 < times:
        time.sleep(pause)
print(json.dumps({"advice": bool(np.core.multiarray._get_madvise_hugepage()), "seconds": out}))
"""


def probe(huge_pages: bool, mib: int, times: int, pause: float) -> dict:
    """Seconds to fill a fresh ``mib``-MiB float32 array, ``times`` times, in a new process."""
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": "1" if huge_pages else "0"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(mib), str(times), str(pause)], env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"page probe failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _thp_setting() -> str:
    path = Path("/sys/kernel/mm/transparent_hugepage")
    try:
        return ", ".join(f"{name} {(path / name).read_text().strip()}" for name in ("enabled", "defrag"))
    except OSError:
        return "no transparent huge pages on this system"


def run(mib: int = 512, times: int = 3, pause: float = 2.0, rounds: int = 3) -> str:
    """Markdown: seconds per fill, each setting in ``rounds`` alternated fresh processes."""
    rows = []
    for r in range(rounds):
        for huge in (True, False):
            res = probe(huge, mib, times, pause)
            secs = ", ".join(f"{s:.3f}" for s in res["seconds"])
            rows.append(f"| {r + 1} | {'on' if res['advice'] else 'off'} | {secs} | {sum(res['seconds']):.3f} |")
    head = [f"Fresh {mib}-MiB float32 array filled {times} times per process, {pause:g} s apart "
            f"(`python -m bench.bench_pages --mib {mib} --times {times} --pause {pause:g} --rounds {rounds}`); "
            f"transparent huge pages: {_thp_setting()}.", "",
            "| round | NumPy huge-page advice | seconds per fill | total |", "|---|---|---|---|"]
    return "\n".join(head + rows) + "\n"


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="First write to fresh NumPy arrays with and without huge-page advice.")
    ap.add_argument("--mib", type=_positive(int), default=512)
    ap.add_argument("--times", type=_positive(int), default=3)
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between fills (>= 0)")
    ap.add_argument("--rounds", type=_positive(int), default=3)
    args = ap.parse_args(argv)
    if args.pause < 0:
        ap.error(f"--pause: must be >= 0, got {args.pause}")
    print(run(args.mib, args.times, args.pause, args.rounds), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
