"""Replay a per-fold choice between two runs of the same patient, made on validation windows.

Two runs of one patient with the same fold plan (for example ``model.complex_block1: mixed`` and
``hybrid``, both ``train.folds: all``) each hold, per fold, a complex model, its fine-tuned cascade
and the gate calibrated for it. This takes each fold's whole result from the run whose model scores
the higher validation F1 (ties go to the first run) and pools the chosen folds exactly as the
pipeline does (:func:`qcascade.folds.pool_folds`). It measures an ``auto`` rule before anyone builds
it (docs/generalisation.md, round 20)::

    python -m bench.replay_fold_choice RUN_A/ID5/ID5 RUN_B/ID5/ID5 --names mixed hybrid
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from bench import exit_code
from qcascade.errors import DataError
from qcascade.evaluation import window_metrics
from qcascade.folds import fold_dirs, pool_folds

REPORTED = ("simple_only", "complex_only", "cascade")


def unit_fold_dirs(unit_dir: Path) -> list[Path]:
    """Fold 0 (the unit folder) and its ``fold<k>`` folders, in fold order."""
    n = len([p for p in unit_dir.glob("fold[0-9]*") if p.is_dir()]) + 1
    dirs = fold_dirs(unit_dir, n)
    for d in dirs:
        if not (d / "val_logits.npz").exists() or not (d / "test_logits.npz").exists():
            raise DataError(f"{d}: no val_logits.npz / test_logits.npz (fold not finished?)")
    return dirs


def validation_f1(fold_dir: Path, model: str = "complex_only") -> float:
    """Window F1 of ``model``'s logits on the fold's validation windows (0.0 when undefined)."""
    v = np.load(fold_dir / "val_logits.npz")
    if model not in v.files:
        raise DataError(f"{fold_dir / 'val_logits.npz'}: no '{model}' logits (has {sorted(v.files)})")
    z = v[model]
    return float(window_metrics(v["y"], z, z.argmax(1))["f1"] or 0.0)


def replay(unit_a: Path, unit_b: Path, model: str = "complex_only") -> dict:
    """Pooled test metrics of run A, run B and the per-fold choice between them.

    Returns:
        ``{"choice": [0 | 1 per fold], "val_f1": [[a, b] per fold], "pooled": {"a", "b", "chosen":
        {model: {"f1", ...}, "routing_rate", "hidden"}}}``.
    """
    A, B = unit_fold_dirs(unit_a), unit_fold_dirs(unit_b)
    if len(A) != len(B):
        raise DataError(f"{unit_a} has {len(A)} folds, {unit_b} has {len(B)}: not the same fold plan")
    for a, b in zip(A, B):
        ta, tb = (json.loads((d / "fold_metrics.json").read_text())["test_records"] for d in (a, b))
        if ta != tb:
            raise DataError(f"{a} tests {ta} but {b} tests {tb}: not the same fold plan")
    val = [[validation_f1(a, model), validation_f1(b, model)] for a, b in zip(A, B)]
    choice = [int(fb > fa + 1e-12) for fa, fb in val]
    chosen = [(a, b)[c] for (a, b), c in zip(zip(A, B), choice)]
    pooled = {}
    for name, dirs in (("a", A), ("b", B), ("chosen", chosen)):
        t = pool_folds(dirs)["test"]
        pooled[name] = {k: {"f1": t[k]["f1"]} for k in REPORTED}
        pooled[name]["routing_rate"] = t["cascade"].get("routing_rate")
        pooled[name]["hidden"] = t["cascade"].get("events_missed_but_complex_detected")
    return {"choice": choice, "val_f1": val, "pooled": pooled}


def format_replay(res: dict, names: Sequence[str]) -> str:
    """One markdown table: each run and the choice, complex-only / cascade F1 and routing."""
    lines = ["| run | simple-only F1 | complex-only F1 | cascade F1 | routing | hidden events |",
             "|---|---|---|---|---|---|"]
    for key, label in (("a", names[0]), ("b", names[1]), ("chosen", "chosen per fold")):
        p = res["pooled"][key]
        lines.append(f"| {label} | {p['simple_only']['f1']:.3f} | {p['complex_only']['f1']:.3f} | "
                     f"{p['cascade']['f1']:.3f} | {p['routing_rate']:.3f} | {p['hidden']} |")
    per = ", ".join(f"{a:.2f}/{b:.2f}{'*' if c else ''}" for (a, b), c in zip(res["val_f1"], res["choice"]))
    lines.append(f"\nValidation F1 per fold, {names[0]}/{names[1]} (* = {names[1]} chosen): {per}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("unit_a", type=Path, help="a unit folder of run A (e.g. RUN/ID5/ID5)")
    ap.add_argument("unit_b", type=Path, help="the same unit in run B")
    ap.add_argument("--names", nargs=2, default=("A", "B"))
    ap.add_argument("--model", default="complex_only", choices=("complex_only", "complex", "simple"),
                    help="whose validation F1 decides (default: complex-only)")
    args = ap.parse_args(argv)
    return exit_code(lambda: _run(args))


def _run(args) -> int:
    print(format_replay(replay(args.unit_a, args.unit_b, args.model), args.names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
