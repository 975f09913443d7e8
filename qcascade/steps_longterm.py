"""Long-term (``swec-long``) additions to the calibrate, evaluate and fold-pooling steps.

Hooks called by :mod:`qcascade.steps_eval` and :mod:`qcascade.steps_folds` when
``data.dataset == "swec-long"`` (other datasets are untouched):

* calibrate: k-of-n smoothing of the cascade's decisions chosen on the validation hours
  (``data.long_term.smoothing``), saved as ``deploy.json["postprocess"]``;
* evaluate: ``test.events`` = SzCORE events of the smoothed decisions over the continuous test
  hours (``hours`` = every tested hour), ``test.events_raw`` without smoothing,
  ``test.routing_per_hour`` and its summary;
* pool: the hourly routing rates of every fold, in hour order;
* analysis: the ``qcascade analyze`` cross-check of the simple model reads at most
  :data:`ANALYSIS_MAX_RECORDS` hour files (:func:`analysis_records`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from qcascade.events_stream import (choose_smoothing, continuous_events, merge_hour_rows, routing_per_hour,
                                    routing_summary, segment_times, smooth_k_of_n)


#: Hour files the simple-model cross-check (``qcascade analyze``) reads per fold. The analysis
#: holds features of every window it reads (measured: about 100 MB per hour at 64 electrodes;
#: 20 hours peaked at 3.9 GB), so it reads a fixed number of hours, not all of them.
ANALYSIS_MAX_RECORDS = 4


def analysis_records(recs: Sequence, limit: int = ANALYSIS_MAX_RECORDS) -> list:
    """At most ``limit`` of ``recs``: those holding a seizure first, then seizure-free ones, each in
    the given (time) order; returned in the given order."""
    ranked = sorted(range(len(recs)), key=lambda k: (not recs[k].ictal_spans, k))[:limit]
    return [recs[k] for k in sorted(ranked)]


def is_longterm(ctx) -> bool:
    return ctx.cfg.data.dataset == "swec-long"


def _record_starts(ctx) -> dict[str, float]:
    return {r.record_id: float(r.info.get("start_s", 0.0)) for r in ctx.recordings}


def choose_postprocess(ctx, y: np.ndarray, pred: np.ndarray, record_ids, start_s) -> dict:
    """``{"smoothing": "k_of_n", "k", "n", "val_events", "val_events_raw"}`` chosen on validation."""
    seg, t = segment_times(record_ids, start_s, _record_starts(ctx))
    if ctx.cfg.data.long_term.smoothing == "off":
        ev = continuous_events(y, pred, seg, t)
        return {"smoothing": "k_of_n", "k": 1, "n": 1, "val_events": ev, "val_events_raw": ev}
    return {"smoothing": "k_of_n", **choose_smoothing(y, pred, seg, t)}


def evaluate_longterm(ctx, dep, y: np.ndarray, pred: np.ndarray, routed: np.ndarray, record_ids,
                      start_s) -> dict:
    """Entries merged into ``metrics["test"]`` of a long-term fold (see the module doc)."""
    seg, t = segment_times(record_ids, start_s, _record_starts(ctx))
    post = dep.postprocess or {"k": 1, "n": 1}
    smoothed = smooth_k_of_n(pred, post["k"], post["n"], seg)
    rows = routing_per_hour(routed, record_ids, start_s, _record_starts(ctx))
    return {"events": continuous_events(y, smoothed, seg, t), "events_raw": continuous_events(y, pred, seg, t),
            "postprocess": {"k": post["k"], "n": post["n"], "where": "host"},
            "routing_per_hour": rows, "routing_per_hour_summary": routing_summary(rows)}


def pool_longterm(dirs: Sequence[Path], metrics: dict) -> None:
    """Add every fold's hourly routing rates (hour order) and their summary to pooled ``metrics``."""
    rows = []
    for k, d in enumerate(dirs):
        f = json.loads((Path(d) / "fold_metrics.json").read_text())
        if k == 0 and "postprocess" in f["test"]:  # the deployed fold's smoothing
            metrics["test"]["postprocess"] = f["test"]["postprocess"]
        rows += f["test"].get("routing_per_hour", [])
        if "events_raw" in f["test"]:
            metrics["test"].setdefault("_raw_parts", []).append(f["test"]["events_raw"])
    from qcascade.evaluation import sum_events

    parts = metrics["test"].pop("_raw_parts", [])
    if parts:
        metrics["test"]["events_raw"] = sum_events(parts)
    rows = merge_hour_rows(rows)
    metrics["test"]["routing_per_hour"] = rows
    metrics["test"]["routing_per_hour_summary"] = routing_summary(rows)
