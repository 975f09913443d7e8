"""How well each model finds a seizure whose morphology it never trained on (stress cohort).

A stress patient's seizures are drawn from a few morphologies (docs/stress_cohort.md). A fold
whose test seizure has a morphology that none of its training or validation seizures had asks the
models to generalise beyond what they saw; the others ask them to recognise it again. The
generator's ``ground_truth.json`` says which is which, so the gap between the two groups measures
memorising that a pooled F1 hides (docs/generalisation.md, round 41).

Only folds whose test seizure starts in an onset zone some training seizure came from are counted:
a seizure from an unseen zone (multifocal patients) is a different question, which the hidden-event
criterion asks.

    python -m bench.morphology_folds STRESS_DATA_DIR WORK [--patients ID1 ID2 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

MODELS = ("simple", "complex", "cascade")


def fold_rows(unit: Path, truth_patient: dict) -> list[dict]:
    """One row per evaluated fold of a run (the unit folder is fold 0).

    Args:
        unit: ``WORK/<ID>/<ID>``, a finished run of one stress patient.
        truth_patient: that patient's entry of ``ground_truth.json``.

    Returns:
        dicts with ``test`` (the test recording), ``morphology``, ``seen`` (a training or
        validation seizure had it), ``same_zone`` and, per model in :data:`MODELS`, the share of
        the test seizure's ictal windows called ictal (``hit_<model>``).
    """
    recs = truth_patient["recordings"]
    rows = []
    for fold in [unit] + sorted(unit.glob("fold*"), key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else 0):
        if not (fold / "data.json").exists() or not (fold / "test_logits.npz").exists():
            continue
        records = json.loads((fold / "data.json").read_text())["records"]
        seen = records["train"] + records["val"]
        z = np.load(fold / "test_logits.npz")
        y = np.asarray(z["y"]) == 1
        calls = {"simple": z["simple"].argmax(1), "complex": z["complex_only"].argmax(1)}
        if "pred" in z.files:  # the deployed cascade's final decisions
            calls["cascade"] = np.asarray(z["pred"])
        for test in records["test"]:
            if test not in recs:
                raise KeyError(f"{fold / 'data.json'}: test recording {test!r} is not in ground_truth.json")
            sel = y & (np.asarray(z["record_ids"]) == test) if "record_ids" in z.files else y
            row = {"fold": fold.name, "test": test, "morphology": recs[test]["morphology"],
                   "seen": recs[test]["morphology"] in [recs[r]["morphology"] for r in seen],
                   "same_zone": recs[test]["onset_zone"] in [recs[r]["onset_zone"] for r in seen]}
            for m, c in calls.items():
                row[f"hit_{m}"] = float((c[sel] == 1).mean()) if sel.any() else None
            rows.append(row)
    return rows


def summary(rows: Sequence[dict]) -> dict:
    """Mean ictal hit rate per model over same-zone folds, split by whether the morphology was seen.

    Returns:
        ``{"seen": {"n": folds, "hit_<model>": mean or None}, "unseen": {...}}``.
    """
    out = {}
    for key, want in (("seen", True), ("unseen", False)):
        group = [r for r in rows if r["same_zone"] and r["seen"] == want]
        cell = {"n": len(group)}
        for m in MODELS:
            vals = [r[f"hit_{m}"] for r in group if r.get(f"hit_{m}") is not None]
            cell[f"hit_{m}"] = float(np.mean(vals)) if vals else None
        out[key] = cell
    return out


def markdown(data_dir: Path, work: Path, patients: Optional[Sequence[str]] = None) -> str:
    """The section's table: seen vs unseen morphology, and every unseen fold by name."""
    truth = json.loads((data_dir / "ground_truth.json").read_text())["patients"]
    rows, missing = [], []
    for p in patients or sorted(truth, key=lambda s: int(s[2:]) if s[2:].isdigit() else 0):
        unit = work / p / p
        got = fold_rows(unit, truth[p]) if unit.is_dir() else []
        if got:
            rows.extend({**r, "patient": p} for r in got)
        else:
            missing.append(p)
    s = summary(rows)

    def f(v):
        return "n/a" if v is None else f"{v:.2f}"

    out = ["", "Ictal windows found on folds whose test seizure's morphology a training seizure had, or not "
           "(`bench.morphology_folds`; same-zone folds only; generator ground truth):", "",
           "| test seizure's morphology | folds | simple-only | complex-only | cascade |", "|---|---|---|---|---|"]
    for key, label in (("seen", "seen in training"), ("unseen", "never seen in training")):
        c = s[key]
        out.append(f"| {label} | {c['n']} | {f(c['hit_simple'])} | {f(c['hit_complex'])} | {f(c['hit_cascade'])} |")
    unseen = [r for r in rows if r["same_zone"] and not r["seen"]]
    if unseen:
        out += ["", "Unseen-morphology folds: " + "; ".join(
            f"{r['patient']} {r['test']} ({r['morphology']}) {f(r['hit_simple'])} / {f(r['hit_complex'])} / "
            f"{f(r.get('hit_cascade'))}" for r in unseen) + " (simple / complex / cascade)."]
    if missing:
        out += ["", "No evaluated folds for: " + ", ".join(missing) + "."]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", type=Path, help="stress cohort folder (holds ground_truth.json)")
    ap.add_argument("work", type=Path, help="run folders, WORK/<ID>/<ID>")
    ap.add_argument("--patients", nargs="+")
    args = ap.parse_args(argv)
    try:
        print(markdown(args.data_dir, args.work, args.patients))
    except (OSError, KeyError, ValueError) as e:
        print(f"morphology_folds: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
