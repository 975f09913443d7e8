"""Replay ``data.scaling_auto_spread`` from two runs of a stress cohort, before changing it.

``data.input_scaling: auto`` scales a fold with ``causal_robust`` when its training and validation
recordings differ in amplitude by at least the cut-off (and are long enough), else with
``train_stats``; each fold records the spread it measured (``data.json`` ``scaling_choice``). Folds
train independently, so with one run at ``auto`` and one with ``causal_robust`` everywhere (same
code, machine and seed), the result of any other cut-off is, fold by fold, the causal run's fold
where that cut-off would pick ``causal_robust`` and the ``auto`` run's fold elsewhere. The chosen
folds are pooled as the pipeline pools them (:func:`qcascade.folds.pool_folds`) and judged as
``bench_stress`` judges a cohort (docs/input_scaling.md, round 45)::

    python -m bench.replay_scaling_cutoff --cohort STRESS_DIR RUN_AUTO RUN_CAUSAL --cutoffs 1.5 2

Folds that both runs scale causally must be the same fold (identical test logits); how many are,
and which differ, is printed first: a difference means the runs are not comparable fold by fold.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from bench import exit_code
from qcascade.errors import DataError
from qcascade.folds import fold_dirs, pool_folds

__all__ = ["picks_causal", "unit_dir", "same_causal_folds", "replay_cutoff", "format_cutoff"]


def picks_causal(choice: dict, cutoff: Optional[float], memory_windows: int) -> bool:
    """Whether ``auto`` with ``data.scaling_auto_spread = cutoff`` scales a fold causally.

    Args:
        choice: the fold's ``data.json`` ``scaling_choice`` from the ``auto`` run.
        cutoff: the cut-off; None: the ``auto`` run's own choice; 0: every fold (``causal_robust``
            set by hand, which also scales folds whose spread cannot be measured). A fold with no
            spread follows the run's ``data.scaling_auto_one_recording`` (``one_recording``) at any cut-off.
        memory_windows: ``data.scaling_memory_windows`` of the run.
    """
    if cutoff is None:
        return choice["input_scaling"] == "causal_robust"
    if cutoff == 0:
        return True
    spread = choice.get("amplitude_spread")
    if choice.get("median_windows", 0) < memory_windows:
        return False
    if spread is None:  # one recording: data.scaling_auto_one_recording decides (train_stats before it existed)
        return choice.get("one_recording", "train_stats") == "causal_robust"
    return spread >= cutoff


def unit_dir(run: Path, patient: str) -> Path:
    """A patient's unit folder in a run of the whole cohort (``RUN/ID``) or one run per patient (``RUN/ID/ID``)."""
    return run / patient / patient if (run / patient / patient).is_dir() else run / patient


def _choice(d: Path) -> dict:
    info = json.loads((d / "data.json").read_text())
    if "scaling_choice" not in info:
        raise DataError(f"{d / 'data.json'}: no scaling_choice (not a data.input_scaling: auto run?)")
    return info["scaling_choice"]


def _folds(run: Path, patient: str, n: int) -> list[Path]:
    dirs = fold_dirs(unit_dir(run, patient), n)
    for d in dirs:
        if not (d / "test_logits.npz").is_file():
            raise DataError(f"{d}: no test_logits.npz (fold not finished?)")
    return dirs


def same_causal_folds(pairs: Sequence[tuple[Path, Path]]) -> tuple[int, list[str]]:
    """``(identical, differing)`` among the ``(auto fold, causal fold)`` pairs the ``auto`` run scaled causally."""
    same, differ = 0, []
    for a, b in pairs:
        if _choice(a)["input_scaling"] != "causal_robust":
            continue
        ta, tb = np.load(a / "test_logits.npz"), np.load(b / "test_logits.npz")
        if sorted(ta.files) == sorted(tb.files) and all(np.array_equal(ta[k], tb[k]) for k in ta.files):
            same += 1
        else:
            differ.append(str(b))
    return same, differ


def replay_cutoff(cohort: Path, run_auto: Path, run_causal: Path, cutoffs: Sequence[Optional[float]],
                  memory_windows: int = 64) -> dict:
    """Per cut-off, each patient's folds (``t``/``c``), ``bench_stress`` row and the cohort's verdicts.

    Returns:
        ``{"same_causal": (n, [differing]), "cutoffs": {label: {"picks": {p: "tc.."}, "rows": {p: row},
        "evaluation": bench_stress.evaluate(rows), "overall_macs_ratio": float}}}``; label ``"auto"``
        is the ``auto`` run's own choice.
    """
    from bench.bench_stress import evaluate, patient_row

    truth_path = Path(cohort) / "ground_truth.json"
    if not truth_path.is_file():
        raise DataError(f"{truth_path}: missing (not a stress cohort made by qcascade.data.stress?)")
    truth = json.loads(truth_path.read_text())["patients"]
    folds = {p: (_folds(run_auto, p, len(gt["recordings"])), _folds(run_causal, p, len(gt["recordings"])))
             for p, gt in truth.items()}
    for p, (A, B) in folds.items():
        for a, b in zip(A, B):
            ta, tb = (json.loads((d / "fold_metrics.json").read_text()).get("test_records") for d in (a, b))
            if ta != tb:
                raise DataError(f"{a} tests {ta} but {b} tests {tb}: not the same fold plan")
    out = {"same_causal": same_causal_folds([ab for A, B in folds.values() for ab in zip(A, B)]), "cutoffs": {}}
    for c in cutoffs:
        picks, rows = {}, {}
        for p, (A, B) in folds.items():
            take = [picks_causal(_choice(a), c, memory_windows) for a in A]
            picks[p] = "".join("c" if t else "t" for t in take)
            m = pool_folds([b if t else a for a, b, t in zip(A, B, take)])
            rows[p] = patient_row(m, bool(truth[p]["multifocal"]), len(truth[p]["recordings"]))
        ratio = (np.mean([r["complex_macs"] for r in rows.values()])
                 / np.mean([r["cascade_macs"] for r in rows.values()]))
        out["cutoffs"]["auto" if c is None else f"{c:g}"] = {
            "picks": picks, "rows": rows, "evaluation": evaluate(rows), "overall_macs_ratio": float(ratio)}
    return out


def _f1(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def format_cutoff(res: dict) -> str:
    """Markdown: per cut-off, one row per patient and the cohort's summary line and failing cells."""
    same, differ = res["same_causal"]
    lines = [f"Folds both runs scale causally: {same} with identical test logits"
             + (f"; DIFFERING: {', '.join(differ)}" if differ else "")]
    for label, r in res["cutoffs"].items():
        rows = r["rows"]
        lines += ["", f"**Cut-off {'as run (auto)' if label == 'auto' else ('every fold causal' if label == '0' else 'x' + label)}**", "",
                  "| patient | folds (t/c) | simple-only F1 | complex-only F1 | cascade F1 | feature-baseline F1 | "
                  "routing | MACs ratio | hidden |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for p, row in rows.items():
            lines.append(f"| {p} | {r['picks'][p]} | {row['simple_only_f1']:.3f} | {row['complex_only_f1']:.3f} | "
                         f"{row['cascade_f1']:.3f} | {_f1(row['feature_baseline_f1'])} | {row['routing_rate']:.3f} | {row['macs_ratio']:.1f} | "
                         f"{row['hidden_vs_complex_only']} |")
        fails = sorted(f"{k}:{p}" for p, ch in r["evaluation"]["patients"].items() for k, v in ch.items() if v is False)
        below = [p for p, x in rows.items() if x["feature_baseline_f1"] is not None
                 and x["cascade_f1"] < x["feature_baseline_f1"]]
        lines.append(f"\nMean cascade F1 {np.mean([x['cascade_f1'] for x in rows.values()]):.3f}, overall MACs ratio "
                     f"{r['overall_macs_ratio']:.2f}, patients with a hidden event "
                     f"{sum(1 for x in rows.values() if x['hidden_vs_complex_only'])}, cascade below the feature baseline: "
                     f"{', '.join(below) or 'none'}, failing cells {len(fails)}: "
                     f"{' '.join(fails) or 'none'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_auto", type=Path, help="a run with data.input_scaling: auto")
    ap.add_argument("run_causal", type=Path, help="the same cohort with data.input_scaling: causal_robust")
    ap.add_argument("--cohort", type=Path, required=True, help="the stress cohort folder (ground_truth.json)")
    ap.add_argument("--cutoffs", type=float, nargs="+", required=True,
                    help="data.scaling_auto_spread values to replay (0: every fold causal)")
    ap.add_argument("--memory-windows", type=int, default=64, help="data.scaling_memory_windows of the runs")
    args = ap.parse_args(argv)
    bad = [c for c in args.cutoffs if c != 0 and c < 1]
    if bad:
        ap.error(f"--cutoffs {bad}: data.scaling_auto_spread must be >= 1 (or 0: every fold causal)")
    return exit_code(lambda: _main(args))


def _main(args) -> int:
    print(format_cutoff(replay_cutoff(args.cohort, args.run_auto, args.run_causal, [None, *args.cutoffs],
                                      args.memory_windows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
