"""Replay ``model.electrode_choice: earliest_of_top`` with other settings from two finished runs.

Run S used the selector alone; run E used ``earliest_of_top`` and recorded, per fold, the selector's
top electrodes and their median onset latencies (``selection.json``, ``electrode_choice``). Stage 1
is the same in both, so for any margin and top-k that the recorded candidates cover the rule's
electrode is computable per fold. A fold whose electrode is the selector's is taken from run S,
one whose electrode is run E's from run E, and the folds are pooled as the pipeline pools them::

    python -m bench.replay_electrode_choice RUN_S/ID2/ID2 RUN_E/ID2/ID2 --margin-s 2 --min-weight 0.25
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
from qcascade.folds import pool_folds
from qcascade.onset_latency import earliest_of_top


def fold_electrode(sel: dict, margin_s: float, top_k: int, min_weight: float = 0.0) -> int:
    """The rule's electrode from one fold's recorded ``electrode_choice`` (top-k <= recorded).

    The selector's weights are ``sel["mean_weights"]`` where recorded; without them only the
    recorded order is known, and ``min_weight`` must be 0.
    """
    c = sel.get("electrode_choice")
    if not c:
        raise DataError("selection.json has no electrode_choice: run E did not use earliest_of_top")
    if top_k > len(c["top"]):
        raise DataError(f"top_k {top_k} > the {len(c['top'])} electrodes recorded")
    n = max(c["top"]) + 1
    w = np.zeros(n)
    if "mean_weights" in sel:
        w[c["top"]] = np.asarray(sel["mean_weights"], np.float64)[c["top"]]
    elif min_weight > 0:
        raise DataError("selection.json has no mean_weights: a weight floor cannot be replayed")
    else:
        w[c["top"]] = np.linspace(1.0, 0.5, len(c["top"]))  # the recorded order is the selector's
    lat = np.full((1, n), np.inf)
    for e, t in zip(c["top"], c["median_latency_s"]):
        lat[0, e] = np.inf if t is None else t
    mask = np.zeros(n, bool)
    mask[c["top"]] = True
    return earliest_of_top(w, mask, lat, top_k, margin_s, min_weight)[0]


def replay(unit_s: Path, unit_e: Path, margin_s: float, top_k: int, min_weight: float = 0.0) -> dict:
    """Pooled test metrics of the rule, beside runs S and E; per fold the electrode of each."""
    S, E = unit_fold_dirs(unit_s), unit_fold_dirs(unit_e)
    if len(S) != len(E):
        raise DataError(f"{unit_s} has {len(S)} folds, {unit_e} has {len(E)}")
    chosen, rows = [], []
    for s, e in zip(S, E):
        sel_s, sel_e = (json.loads((d / "selection.json").read_text()) for d in (s, e))
        rule = fold_electrode(sel_e, margin_s, top_k, min_weight)
        if rule == sel_s["selected_electrode"]:
            chosen.append(s)
        elif rule == sel_e["selected_electrode"]:
            chosen.append(e)
        else:
            raise DataError(f"{e}: the rule picks electrode {rule}, which neither run deployed")
        rows.append((sel_s["selected_electrode"], sel_e["selected_electrode"], rule))
    pooled = {}
    for name, dirs in (("selector", S), ("run_e", E), ("rule", chosen)):
        t = pool_folds(dirs)["test"]
        pooled[name] = {"simple_only": t["simple_only"]["f1"], "complex_only": t["complex_only"]["f1"],
                        "cascade": t["cascade"]["f1"], "routing": t["cascade"].get("routing_rate"),
                        "hidden": t["cascade"].get("events_missed_but_complex_detected")}
    return {"electrodes": rows, "pooled": pooled}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("unit_s", type=Path, help="a unit folder of the selector-only run")
    ap.add_argument("unit_e", type=Path, help="the same unit of the earliest_of_top run")
    ap.add_argument("--margin-s", type=float, default=2.0)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--min-weight", type=float, default=0.0,
                    help="model.electrode_choice_min_weight to replay (0: no weight floor, the default)")
    args = ap.parse_args(argv)
    return exit_code(lambda: _run(args))


def _run(args) -> int:
    res = replay(args.unit_s, args.unit_e, args.margin_s, args.top_k, args.min_weight)
    print("| run | simple-only F1 | complex-only F1 | cascade F1 | routing | hidden |\n|---|---|---|---|---|---|")
    for name, p in res["pooled"].items():
        print(f"| {name} | {p['simple_only']:.3f} | {p['complex_only']:.3f} | {p['cascade']:.3f} | "
              f"{p['routing']:.3f} | {p['hidden']} |")
    print("electrodes per fold (selector / run E / rule):", ", ".join("/".join(map(str, r)) for r in res["electrodes"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
