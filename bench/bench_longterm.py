"""Long-term benchmark: ``train_qkeras.py --dataset swec-long`` on synthetic patients of 6 h and 24 h.

Each patient (64 electrodes at 1024 Hz, the SWEC long-term layout: hour files + info file, int16
samples; :func:`qcascade.data.longterm_synth.write_long_patient`) is written once under the work
folder and reused. The run is a child process; its process tree is polled every 0.5 s for the
summed resident memory (VmRSS), and each process's high-water mark (VmHWM) is read at its last poll.
``run() -> str`` returns the markdown section for ``make bench``. Run directly:
``python bench/bench_longterm.py --hours 6 24 --work /tmp/lt --folds first``.

Evaluation windows/s = test windows / seconds of ``step_evaluate`` (the streamed test pass of
both deployed models plus scoring and plots); the real-time factor divides recorded seconds by it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N_ELECTRODES, FILE_SFREQ = 64, 1024.0


#: Training windows per fold in both patients (the 6-h patient's folds train on one seizure: 60
#: ictal + 240 interictal windows): the runs then differ only in their hours, which is what the
#: benchmark compares. The default cap (2000) would let the 24-h folds train on 4x more windows.
TRAIN_WINDOWS = 300

#: Peaks within this fraction count as equal: two runs of the 6-h patient at one commit peaked at
#: 1686 and 1692 MB (largest process) and 2979 and 2964 MB (process tree), within 0.5 %
#: (docs/long_term.md).
NOISE = 0.01


def _config(data: Path, folds: str, epochs: int, cache: Path | None = None) -> dict:
    lt = {"max_train_windows": TRAIN_WINDOWS, **({"cache_dir": str(cache)} if cache else {})}
    return {"data": {"dataset": "swec-long", "data_dir": str(data), "n_chans": N_ELECTRODES, "long_term": lt},
            "model": {"train_candidates": False},
            # train.fold_workers stays at its default (2): the memory a user's run needs, two
            # fold processes at a time (each a fresh process per fold) plus the main process.
            "train": {"epochs_stage1": epochs, "epochs_stage2": epochs, "epochs_stage3": epochs, "folds": folds},
            "hls": {"enabled": False}}


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
        except OSError:
            pass
    return out


def _status_mb(pid: int) -> tuple[float, float]:
    vals = {"VmRSS": 0.0, "VmHWM": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in vals:
                vals[key] = float(value.split()[0]) / 1024
    except OSError:
        pass
    return vals["VmRSS"], vals["VmHWM"]


def measure(hours: float, work: Path, folds: str = "first", epochs: int = 1, resume: bool = False) -> dict:
    """Write (once) and train/evaluate one patient; returns the measurements."""
    import yaml

    from qcascade.data.longterm_synth import write_long_patient

    data = work / f"data_{hours:g}h"
    if not (data / ".complete").exists():
        t0 = time.perf_counter()
        write_long_patient(data, "ID01", hours=hours, n_electrodes=N_ELECTRODES, fs=FILE_SFREQ)
        (data / ".complete").write_text(f"written in {time.perf_counter() - t0:.0f} s\n")
    cfg, out = work / f"longterm_{hours:g}h.yaml", work / f"run_{hours:g}h"
    # The signal cache lives next to the data, outside the run, so a --force rerun reuses it.
    cfg.write_text(yaml.safe_dump(_config(data, folds, epochs, work / f"cache_{hours:g}h")))
    cmd = [sys.executable, str(ROOT / "train_qkeras.py"), "--config", str(cfg), "--out", str(out)]
    cmd += [] if resume else ["--force"]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = usage0.ru_utime + usage0.ru_stime  # earlier children of this process are not counted
    t0 = time.perf_counter()
    log = open(work / f"run_{hours:g}h.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    tree_peak, hwm = 0.0, {}
    timeline = open(work / f"run_{hours:g}h.rss", "w")  # "unix time, tree RSS MB" per poll: peaks per fold
    while proc.poll() is None:
        pids = _tree(proc.pid)
        rss = 0.0
        for p in pids:
            r, h = _status_mb(p)
            rss += r
            hwm[p] = max(hwm.get(p, 0.0), h)
        tree_peak = max(tree_peak, rss)
        timeline.write(f"{time.time():.1f} {rss:.0f}\n")
        (work / f"run_{hours:g}h.peak").write_text(json.dumps({"tree_rss_peak_mb": tree_peak,
                                                                "max_vmhwm_mb": max(hwm.values(), default=0.0),
                                                                "wall_s": time.perf_counter() - t0}))
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    timeline.close()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = {"hours": hours, "folds": folds, "returncode": proc.returncode, "wall_s": wall,
           "cpu_s": usage.ru_utime + usage.ru_stime - cpu0,
           "tree_rss_peak_mb": tree_peak, "max_vmhwm_mb": max(hwm.values(), default=0.0),
           # The main process trains no long-term fold (qcascade.fold_pool.pool_workers): its own
           # peak, and how many processes the run started (one per fold, plus helpers).
           "main_vmhwm_mb": hwm.get(proc.pid, 0.0), "n_processes": len(hwm),
           "process_peaks_mb": sorted(round(v) for p, v in hwm.items() if p != proc.pid)}
    if proc.returncode == 0:
        m = json.loads((out / "ID01" / "metrics.json").read_text())
        ev_s, stride_s = 0.0, 1.0  # the default data.stride_s
        for steps in out.glob("ID01/**/steps.json"):
            ev_s += json.loads(steps.read_text()).get("timings_s", {}).get("step_evaluate", 0.0)
        n_test = int(m.get("n_test_windows_pooled") or m["n_windows"]["test"])
        res.update(n_test_windows=n_test, evaluate_s=ev_s, eval_windows_per_s=n_test / ev_s if ev_s else None,
                   eval_realtime_factor=n_test * stride_s / ev_s if ev_s else None, test_hours=m["test"]["events"]["hours"],
                   n_folds=len(m.get("folds") or [0]), fa_per_24h=m["test"]["events"].get("fa_per_24h"),
                   fa_per_hour=m["test"]["events"].get("fa_per_hour"), sensitivity=m["test"]["events"].get("sensitivity"),
                   routing_rate=m["test"]["cascade"]["routing_rate"], cascade_f1=m["test"]["cascade"]["f1"])
        res["eval"] = measure_evaluation(out)
    return res


def _eval_child(run_dir: str) -> None:
    """Stream the finished run's test hours through both deployed models and the gate; print JSON.

    Times only the evaluation (windows read from the cache, padded, normalised, both models, the
    gate), by the wall clock and by this process's CPU time, which other jobs do not inflate.
    """
    from qcascade.config import load_config
    from qcascade.gate import cascade_decide
    from qcascade.cohort import discover_cohort as _discover
    from qcascade.pipeline import UnitContext
    from qcascade.steps_data import windows
    from qcascade.artifacts import deployed_models, deployment
    from qcascade.gate_args import deployed_gate
    from qcascade.steps_eval import _predict

    run = Path(run_dir)
    cfg = load_config(run / "config.yaml")
    ctx = UnitContext(cfg, run, "ID01", _discover(cfg, run)["ID01"])
    te = windows(ctx)["test"]  # fold 0's test hours
    dep = deployment(ctx)
    simple, complex_ = deployed_models(ctx)
    e = dep.selected_electrode
    simple.predict_on_batch(te.X[:256, :, e:e + 1]), complex_.predict_on_batch(te.X[:256])  # trace first
    t0, c0 = time.perf_counter(), time.process_time()
    zs = _predict(simple, te.X[:, :, e:e + 1])
    zc = _predict(complex_, te.X)
    dec = cascade_decide(zs, zc, dep.tau, **deployed_gate(dep, te, cfg.quant))  # as deployed: sentinel and hold too
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"n_windows": len(te), "recorded_s": float(len(te) * cfg.data.stride_s), "wall_s": wall,
                      "cpu_s": cpu, "routing_rate": float(dec["routed"].mean()), "peak_mb": _status_mb(os.getpid())[1]}))


def measure_evaluation(run_dir: Path) -> dict:
    """Run :func:`_eval_child` in a fresh process; its measurements."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--eval-child", str(run_dir)],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        return {"error": out.stderr[-1000:]}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r.update(windows_per_s=r["n_windows"] / r["wall_s"], realtime_factor=r["recorded_s"] / r["wall_s"],
             cpu_realtime_factor=r["recorded_s"] / r["cpu_s"])
    return r


def markdown(rows: list[dict]) -> str:
    """The section body for ``make bench``."""
    head = ("| patient | folds | exit | wall (min) | CPU (min) | peak RSS, largest process (MB) | "
            "peak RSS, process tree (MB) | peak RSS, main process (MB) | test windows | test hours | step_evaluate (s) | eval windows/s | "
            "eval real-time factor | cascade F1 | routing rate | event sensitivity | FA/h | FA/24h |")
    lines = [head, "|" + "---|" * 18]
    f = lambda v, d=1: "n/a" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))  # noqa: E731
    for r in rows:
        folds = r["folds"] + (f" ({r['n_folds']})" if r.get("n_folds") else "")
        lines.append(f"| {r['hours']:g} h x {N_ELECTRODES} el @ {FILE_SFREQ:g} Hz | {folds} | {r['returncode']} | "
                     f"{r['wall_s'] / 60:.1f} | {r['cpu_s'] / 60:.1f} | {r['max_vmhwm_mb']:.0f} | "
                     f"{r['tree_rss_peak_mb']:.0f} | {r.get('main_vmhwm_mb', 0.0):.0f} | {f(r.get('n_test_windows'))} | {f(r.get('test_hours'), 2)} | "
                     f"{f(r.get('evaluate_s'))} | {f(r.get('eval_windows_per_s'))} | "
                     f"{f(r.get('eval_realtime_factor'))}x | {f(r.get('cascade_f1'), 3)} | {f(r.get('routing_rate'), 3)} | "
                     f"{f(r.get('sensitivity'), 2)} | {f(r.get('fa_per_hour'), 2)} | {f(r.get('fa_per_24h'), 2)} |")
    evals = [r for r in rows if r.get("eval") and "error" not in r["eval"]]
    if evals:
        lines += ["", "Evaluation alone (fresh process: test windows read from the cache, padded, normalised, "
                  "both deployed models on every window, the gate; wall clock and the process's CPU time):", "",
                  "| patient | test windows | wall (s) | windows/s | real-time factor | CPU (s) | CPU real-time factor | "
                  "peak RSS (MB) |", "|---|---|---|---|---|---|---|---|"]
        for r in evals:
            v = r["eval"]
            lines.append(f"| {r['hours']:g} h | {v['n_windows']} | {v['wall_s']:.1f} | {v['windows_per_s']:.0f} | "
                         f"{v['realtime_factor']:.0f}x | {v['cpu_s']:.1f} | {v['cpu_realtime_factor']:.0f}x | "
                         f"{v['peak_mb']:.0f} |")
    ok = sorted((r for r in rows if r["returncode"] == 0), key=lambda r: r["hours"])
    if ok:
        lines.append("")
    lines += [f"- {r['hours']:g} h: `test.events.hours` = {r['test_hours']:.2f} (every recorded hour tested once: "
              f"{abs(r['test_hours'] - r['hours']) < 1e-6})." for r in ok]
    if len(ok) >= 2:
        for key, what in (("max_vmhwm_mb", "largest process"), ("tree_rss_peak_mb", "process tree")):
            lo, hi = ok[0][key], ok[-1][key]
            lines += ["", f"Peak RSS ({what}) {lo:.0f} MB at {ok[0]['hours']:g} h, {hi:.0f} MB at "
                      f"{ok[-1]['hours']:g} h (<= 4096 MB: {hi <= 4096}; not higher than at {ok[0]['hours']:g} h "
                      f"beyond {NOISE:.0%} measurement noise: {hi <= (1 + NOISE) * lo})."]
    return "\n".join(lines) + "\n"


def run(hours=(6.0, 24.0), work: Path | None = None, folds: str = "all") -> str:
    work = Path(work or ROOT / "bench" / "out" / "longterm")
    work.mkdir(parents=True, exist_ok=True)
    rows = [measure(h, work, folds) for h in hours]
    (work / "longterm.json").write_text(json.dumps(rows, indent=1))
    return ("Synthetic long-term patients (SWEC long-term layout, int16 hour files), `train_qkeras.py` with 1 epoch "
            f"per stage, no candidate baselines, no HLS, `train.folds: {folds}`, one subprocess per patient.\n\n"
            + markdown(rows))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, nargs="+", default=[6.0, 24.0])
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "longterm")
    ap.add_argument("--folds", choices=["first", "all"], default="all")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--eval-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.eval_child:
        _eval_child(args.eval_child)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for h in args.hours:
        rows.append(measure(h, args.work, args.folds, resume=args.resume))
        print(json.dumps(rows[-1]), flush=True)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
