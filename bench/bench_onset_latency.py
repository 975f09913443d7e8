"""How often the earliest electrode (line-length onset latency) is in the onset zone, against ground truth.

For every patient of a generated cohort (a folder with ``ground_truth.json``: the stress cohort or
the default synthetic one), each seizure is held out once and the electrodes are ranked by their
median onset latency over the *other* seizures (:func:`qcascade.onset_latency.rank_by_onset`), as a
fold would rank them from its training seizures. Beside it, the electrodes a finished run deployed
in its folds (``--runs``: a folder holding ``<ID>/metrics.json`` at any depth)::

    python -m bench.bench_onset_latency ~/.cache/qcascade/stress-seed0-n8 --runs RUN_DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from bench import exit_code
from qcascade.data.swec import SFREQ, discover_short
from qcascade.errors import DataError
from qcascade.onset_latency import onset_latency, rank_by_onset


def patient_latencies(recordings, max_fraction: float = 1.0) -> np.ndarray:
    """``(n_seizures, n_chans)`` onset latency of every recording of one patient."""
    out = []
    for rec in recordings:
        if len(rec.ictal_spans) != 1:
            raise DataError(f"{rec.path}: {len(rec.ictal_spans)} seizures in one recording (one expected)")
        out.append(onset_latency(rec.load(), rec.ictal_spans[0][0], SFREQ, max_fraction=max_fraction))
    return np.asarray(out)


def held_out_top(lat: np.ndarray) -> list[int]:
    """For each seizure, the earliest electrode ranked from the other seizures (all of them if only one)."""
    n = len(lat)
    return [int(rank_by_onset(lat[[j for j in range(n) if j != i] or [i]])[0][0]) for i in range(n)]


def deployed_electrodes(runs: Optional[Path], patient: str) -> Optional[list[int]]:
    """The electrode each fold of a finished run deployed, or None without such a run."""
    if runs is None:
        return None
    for m in sorted(runs.rglob(f"{patient}/metrics.json")):
        d = json.loads(m.read_text())
        folds = d.get("folds") or [{"selected_electrode": d["selected_electrode"]}]
        return [int(f["selected_electrode"]) for f in folds]
    return None


def evaluate(root: Path, runs: Optional[Path] = None, max_fraction: float = 1.0) -> list[dict]:
    """One row per patient: onset zone, held-out earliest electrodes, the run's electrodes."""
    gt_path = root / "ground_truth.json"
    if not gt_path.is_file():
        raise DataError(f"{gt_path}: missing (a generated cohort's ground truth is needed)")
    truth = json.loads(gt_path.read_text())["patients"]
    rows = []
    for pid, recs in discover_short(root).items():
        soz = set(truth[pid]["soz_electrodes"])
        lat = patient_latencies(recs, max_fraction)
        top = held_out_top(lat)
        dep = deployed_electrodes(runs, pid)
        rows.append({"patient": pid, "multifocal": bool(truth[pid].get("multifocal")), "soz": sorted(soz),
                     "n_seizures": len(recs), "earliest_all": int(rank_by_onset(lat)[0][0]), "held_out": top,
                     "held_out_in_zone": sum(e in soz for e in top),
                     "deployed": dep, "deployed_in_zone": None if dep is None else sum(e in soz for e in dep)})
    return rows


def format_rows(rows: Sequence[dict]) -> str:
    lines = ["| patient | onset zone | seizures | earliest, held out per seizure (in zone) | deployed by the run, per fold (in zone) |",
             "|---|---|---|---|---|"]
    for r in rows:
        name = r["patient"] + (" (multifocal)" if r["multifocal"] else "")
        dep = "n/a" if r["deployed"] is None else f"{r['deployed']} ({r['deployed_in_zone']}/{len(r['deployed'])})"
        lines.append(f"| {name} | {r['soz']} | {r['n_seizures']} | {r['held_out']} "
                     f"({r['held_out_in_zone']}/{len(r['held_out'])}) | {dep} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="a generated cohort folder (with ground_truth.json)")
    ap.add_argument("--runs", type=Path, help="a folder holding finished runs of that cohort")
    ap.add_argument("--max-fraction", type=float, default=1.0,
                    help="ignore windows where more than this fraction of electrodes rises (default 1: none)")
    args = ap.parse_args(argv)
    return exit_code(lambda: _run(args))


def _run(args) -> int:
    print(format_rows(evaluate(args.root, args.runs, args.max_fraction)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
