"""Where a finished run's "unsure" routing goes: split by the simple model's class and the label.

For every fold of the given units (``test_logits.npz`` and ``deploy/deploy.json``), the test
windows the deployed gate routed while the simple model was not confident (the ``unsure`` reason
of :mod:`qcascade.routing_reasons`) are counted by the simple model's class (``d = z1 - z0 > 0``:
ictal) and the label, with how many of them the complex model mended (it is right, the simple
model wrong) or harmed (the reverse). Shares are of all test windows of the units. Round 42 of
docs/generalisation.md reads this to decide where a second threshold could save routing::

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
        return 0

    return exit_code(run)


if __name__ == "__main__":
    raise SystemExit(main())
