"""Where a finished run's "unsure" routing goes: split by the simple model's class and the label.

For every fold of the given units (``test_logits.npz`` and ``deploy/deploy.json``), the test
windows the deployed gate routed while the simple model was not confident (the ``unsure`` reason
of :mod:`qcascade.routing_reasons`) are counted by the simple model's class (``d = z1 - z0 > 0``:
ictal) and the label, with how many of them the complex model mended (it is right, the simple
model wrong) or harmed (the reverse). Shares are of all test windows of the units. It also gives
the MACs ratio the units would reach if no interictal window were routed (:func:`label_bound`).
Round 42 of docs/generalisation.md reads both::

    python -m bench.unsure_split RUN/ID1/ID1 RUN/ID2/ID2 ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from bench import exit_code
from bench.replay_fold_choice import unit_fold_dirs
from qcascade.errors import DataError
from qcascade.gate import logit_threshold

CELLS = (("interictal", 0), ("interictal", 1), ("ictal", 0), ("ictal", 1))  # (simple's class, label)


def fold_counts(fold_dir: Path) -> dict:
    """``{"n": test windows, (simple_class, label): [unsure-routed, mended, harmed]}`` of one fold."""
    path = fold_dir / "deploy" / "deploy.json"
    if not path.is_file():
        raise DataError(f"{path}: not found (fold not calibrated?)")
    dep = json.loads(path.read_text())
    z = np.load(fold_dir / "test_logits.npz")
    d = z["simple"][:, 1] - z["simple"][:, 0]
    tau_i = dep.get("tau_interictal")
    confident = (d > logit_threshold(dep["tau"])) | (-d > logit_threshold(dep["tau"] if tau_i is None else tau_i))
    routed = np.asarray(z["routed"], bool) & ~confident
    s_cls = (d > 0).astype(int)
    c_cls = (z["complex"][:, 1] > z["complex"][:, 0]).astype(int)
    y = np.asarray(z["y"]).astype(int)
    out = {"n": len(d)}
    for name, label in CELLS:
        m = routed & (s_cls == (name == "ictal")) & (y == label)
        out[(name, label)] = [int(m.sum()), int((m & (c_cls == y) & (s_cls != y)).sum()),
                              int((m & (s_cls == y) & (c_cls != y)).sum())]
    return out


def split(units: Sequence[Path]) -> dict:
    """Counts summed over every fold of ``units``; shares of all their test windows."""
    total = {"n": 0, **{cell: [0, 0, 0] for cell in CELLS}}
    for unit in units:
        for fold in unit_fold_dirs(Path(unit)):
            c = fold_counts(fold)
            total["n"] += c["n"]
            for cell in CELLS:
                total[cell] = [a + b for a, b in zip(total[cell], c[cell])]
    return total


def label_bound(units: Sequence[Path]) -> dict:
    """Deployed routing split by label, and the MACs ratio if no interictal window were routed.

    Per unit (all folds pooled; its ``metrics.json`` gives the every-window and complex MACs): the
    routing rate on all test windows and on ictal ones only. Overall, as ``bench.bench_stress``
    counts it: mean complex-only MACs / mean cascade MACs over the units, deployed and with only the
    ictal windows routed (a simple model never wrong or unsure on interictal windows, the same gate).
    """
    rows, c_sum, dep_sum, bound_sum = [], 0.0, 0.0, 0.0
    for unit in units:
        unit = Path(unit)
        path = unit / "metrics.json"
        if not path.is_file():
            raise DataError(f"{path}: not found (unit not evaluated?)")
        m = json.loads(path.read_text())["test"]["cascade"]
        macs_c = m["avg_macs_per_window"] * m["macs_ratio_vs_complex"]
        every = m["avg_macs_per_window"] - m["routing_rate"] * macs_c
        z = [np.load(f / "test_logits.npz") for f in unit_fold_dirs(unit)]
        routed = np.concatenate([np.asarray(a["routed"], bool) for a in z])
        y = np.concatenate([np.asarray(a["y"]).astype(int) for a in z])
        r_all, r_ictal = float(routed.mean()), float((routed & (y == 1)).mean())
        rows.append({"unit": str(unit), "routing": r_all, "routing_ictal_windows": r_ictal})
        c_sum += macs_c
        dep_sum += every + r_all * macs_c
        bound_sum += every + r_ictal * macs_c
    return {"units": rows, "macs_ratio": c_sum / dep_sum, "macs_ratio_no_interictal_routing": c_sum / bound_sum}


def markdown(total: dict) -> str:
    n = max(total["n"], 1)
    rows = ["| simple model says | label | unsure-routed | mended | harmed |", "|---|---|---|---|---|"]
    for name, label in CELLS:
        w, me, ha = total[(name, label)]
        rows.append(f"| {name} | {'ictal' if label else 'interictal'} | {w / n:.4f} | {me / n:.4f} | {ha / n:.4f} |")
    return "\n".join(rows) + f"\n\nShares of {total['n']} test windows."


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("units", nargs="+", type=Path, help="finished unit folders (RUN/<ID>/<ID>)")
    units = ap.parse_args(argv).units

    def run() -> int:
        print(markdown(split(units)))
        b = label_bound(units)
        routing = np.mean([r["routing"] for r in b["units"]])
        ictal = np.mean([r["routing_ictal_windows"] for r in b["units"]])
        print(f"\nMean routing {routing:.3f}, of it on ictal windows {ictal:.3f}. Overall MACs ratio "
              f"{b['macs_ratio']:.1f}x; {b['macs_ratio_no_interictal_routing']:.1f}x if no interictal window were routed.")
        return 0

    return exit_code(run)


if __name__ == "__main__":
    raise SystemExit(main())
