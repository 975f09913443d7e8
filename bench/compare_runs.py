"""Judge a change on one stress cohort: the same patients trained twice, a base and a new run.

A held-out rule (docs/generalisation.md, rounds 53-56) compares two ``bench.bench_stress`` work
folders of the same cohort, one trained at the defaults and one with the change, by conditions written
before the cohort was drawn. This tool computes them from each patient's pooled ``metrics.json``
(``bench.bench_stress.patient_row``), so a rule is checked by code:

1. the overall MACs ratio (mean complex-only MACs / mean cascade MACs over the patients) rises by at
   least ``--min-ratio-gain``;
2. no patient gains a hidden event (a seizure complex-only detects and the cascade misses);
3. the mean cascade F1 drops by at most ``--max-mean-f1-drop`` and no patient's pooled cascade F1
   by more than ``--max-patient-f1-drop``;
4. the failing per-patient cells of issue 11's done-when table do not increase.

``--noise RUN``: the same cohort and config as the base, trained with another ``train.seed``. Its
per-patient difference from the base is how far one patient's F1 moves when nothing but the training
run's randomness changes; the table shows it beside each patient's change. It is reported, not judged:
the conditions stay as the rule wrote them::

    python -m bench.compare_runs --data-dir ~/.cache/qcascade/stress-seed21-n8 BASE NEW --noise BASE_SEED1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Mapping, Optional, Sequence

from bench import exit_code
from bench.bench_stress import _id_key, evaluate, patient_row, patient_state
from qcascade.errors import DataError
from qcascade.io_utils import atomic_write_json

#: The conditions of round 53's and round 56's rules (``--min-ratio-gain`` and the F1 drops).
DEFAULTS = {"min_ratio_gain": 0.4, "max_mean_f1_drop": 0.01, "max_patient_f1_drop": 0.03}


def load_rows(data_dir: Path, work: Path) -> dict:
    """``{patient: bench_stress.patient_row}`` of every patient of the cohort; DataError naming the
    folder of a patient whose run has not finished all its folds."""
    truth_path = Path(data_dir) / "ground_truth.json"
    if not truth_path.is_file():
        raise DataError(f"{truth_path}: not found (is {data_dir} a stress cohort folder?)")
    try:
        truth = json.loads(truth_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{truth_path}: not valid JSON ({exc})") from None
    rows = {}
    for pid, gt in sorted(truth["patients"].items(), key=lambda kv: _id_key(kv[0])):
        n = len(gt["recordings"])
        state, m = patient_state(Path(work) / pid / pid, n)
        if m is None:
            raise DataError(f"{Path(work) / pid / pid}: {state}; compare finished runs only")
        rows[pid] = patient_row(m, bool(gt["multifocal"]), n)
    return rows


def summary(rows: Mapping[str, dict]) -> dict:
    """Overall numbers of one run: MACs ratio as bench_stress pools it, mean F1, failing cells."""
    verdict = evaluate(rows)
    fails = {p: sorted(k for k, v in ch.items() if v is False) for p, ch in verdict["patients"].items()}
    n = len(rows)
    return {"macs_ratio": sum(r["complex_macs"] for r in rows.values()) / sum(r["cascade_macs"] for r in rows.values()),
            "mean_f1": sum(r["cascade_f1"] for r in rows.values()) / n,
            "mean_routing": sum(r["routing_rate"] for r in rows.values()) / n,
            "failing": fails, "n_failing": sum(len(v) for v in fails.values())}


def compare(base: Mapping[str, dict], new: Mapping[str, dict], min_ratio_gain: float = DEFAULTS["min_ratio_gain"],
            max_mean_f1_drop: float = DEFAULTS["max_mean_f1_drop"],
            max_patient_f1_drop: float = DEFAULTS["max_patient_f1_drop"]) -> dict:
    """The four conditions (module docstring) of ``new`` against ``base`` (both ``load_rows``).

    Returns:
        ``{"base", "new"`` (:func:`summary`), ``"drops"`` ``{patient: base F1 - new F1}``,
        ``"hidden_gained"`` [patients], ``"conditions"`` ``{name: (passed, text)}``, ``"passed"}``.
    """
    if set(base) != set(new):
        raise DataError(f"the runs hold different patients: {sorted(base)} against {sorted(new)}")
    sb, sn = summary(base), summary(new)
    drops = {p: base[p]["cascade_f1"] - new[p]["cascade_f1"] for p in base}
    gained = [p for p in base if (new[p]["hidden_vs_complex_only"] or 0) > (base[p]["hidden_vs_complex_only"] or 0)]
    worst = max(drops, key=lambda p: (drops[p], _id_key(p)))
    gain = sn["macs_ratio"] - sb["macs_ratio"]
    mean_drop = sb["mean_f1"] - sn["mean_f1"]
    eps = 1e-9  # the rules' bounds are inclusive; F1 differences carry float noise
    cond = {
        "ratio": (gain >= min_ratio_gain - eps,
                  f"overall MACs ratio {sb['macs_ratio']:.2f} -> {sn['macs_ratio']:.2f} ({gain:+.2f}; needs >= +{min_ratio_gain:g})"),
        "hidden": (not gained, "no patient gains a hidden event" + (f" (gained: {', '.join(gained)})" if gained else "")),
        "f1": (mean_drop <= max_mean_f1_drop + eps and drops[worst] <= max_patient_f1_drop + eps,
               f"mean cascade F1 {sb['mean_f1']:.3f} -> {sn['mean_f1']:.3f} ({-mean_drop:+.3f}; at most -{max_mean_f1_drop:g}); "
               f"largest patient drop {worst} {drops[worst]:.3f} (at most {max_patient_f1_drop:g})"),
        "failing": (sn["n_failing"] <= sb["n_failing"],
                    f"failing per-patient cells {sb['n_failing']} -> {sn['n_failing']}"),
    }
    return {"base": sb, "new": sn, "drops": drops, "hidden_gained": gained, "conditions": cond,
            "passed": all(ok for ok, _ in cond.values())}


def markdown(base: Mapping[str, dict], new: Mapping[str, dict], result: Mapping,
             noise: Optional[Mapping[str, dict]] = None) -> str:
    """The per-patient table, the overall line and the conditions."""
    head = "| patient | cascade F1 base -> new (change) |"
    head += " same config, other train.seed: change |" if noise else ""
    head += " routing | MACs ratio | hidden vs complex-only | failing cells (base -> new) |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    fb, fn = result["base"]["failing"], result["new"]["failing"]
    for p in base:
        b, n = base[p], new[p]
        cells = [p + (" (multifocal)" if b["multifocal"] else ""),
                 f"{b['cascade_f1']:.3f} -> {n['cascade_f1']:.3f} ({n['cascade_f1'] - b['cascade_f1']:+.3f})"]
        if noise:
            cells.append(f"{noise[p]['cascade_f1'] - b['cascade_f1']:+.3f}")
        cells += [f"{b['routing_rate']:.3f} -> {n['routing_rate']:.3f}", f"{b['macs_ratio']:.1f} -> {n['macs_ratio']:.1f}",
                  f"{b['hidden_vs_complex_only']} -> {n['hidden_vs_complex_only']}",
                  f"{', '.join(fb[p]) or '-'} -> {', '.join(fn[p]) or '-'}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if noise:
        moves = {p: abs(noise[p]["cascade_f1"] - base[p]["cascade_f1"]) for p in base}
        top = max(moves, key=lambda p: (moves[p], _id_key(p)))
        sn = summary(noise)
        lines += [f"Training-seed noise (base against the same config with another `train.seed`): largest patient "
                  f"move {top} {moves[top]:.3f}, mean |move| {sum(moves.values()) / len(moves):.3f}; overall MACs ratio "
                  f"{result['base']['macs_ratio']:.2f} against {sn['macs_ratio']:.2f}, mean cascade F1 "
                  f"{result['base']['mean_f1']:.3f} against {sn['mean_f1']:.3f}.", ""]
    for name, (ok, text) in result["conditions"].items():
        lines.append(f"- {'PASS' if ok else '**FAIL**'} ({name}): {text}")
    lines += ["", f"Verdict: **{'PASS' if result['passed'] else 'FAIL'}**.", ""]
    return "\n".join(lines)


def _run(args) -> int:
    base, new = load_rows(args.data_dir, args.base), load_rows(args.data_dir, args.new)
    noise = load_rows(args.data_dir, args.noise) if args.noise else None  # every cohort patient, as base
    result = compare(base, new, args.min_ratio_gain, args.max_mean_f1_drop, args.max_patient_f1_drop)
    print(markdown(base, new, result, noise))
    if args.json:
        atomic_write_json(args.json, result)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path, help="bench_stress work folder of the base run (<base>/<ID>/<ID>)")
    ap.add_argument("new", type=Path, help="work folder of the run with the change")
    ap.add_argument("--data-dir", type=Path, required=True, help="the stress cohort both were trained on")
    ap.add_argument("--noise", type=Path, help="work folder of the base config trained with another train.seed")
    for key, value in DEFAULTS.items():
        ap.add_argument("--" + key.replace("_", "-"), type=float, default=value, help=f"default {value:g}")
    ap.add_argument("--json", help="also write the result here")
    return exit_code(lambda: _run(ap.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
