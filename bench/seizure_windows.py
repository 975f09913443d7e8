"""Per-seizure window counts of a replayed gate: detection delays, and seizures missed inside.

A *seizure* here is a run of ictal windows in one recording, ordered by start time. SzCORE's event
scoring (:func:`qcascade.evaluation.hidden_events`) counts a seizure as found when any "ictal"
decision falls within its tolerances, up to 30 s before the onset and 60 s after the end, so a
false alarm next to a seizure can stand in for it. :func:`missed_inside` asks the stricter question
(docs/generalisation.md, round 58): the reference calls at least one window *inside* the seizure
ictal, and the cascade calls none.
"""

from __future__ import annotations

import numpy as np

__all__ = ["seizure_runs", "detection_delays", "missed_inside"]


def seizure_runs(y: np.ndarray, start_s: np.ndarray, record_ids: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``[(record, indices)]``: each seizure's window indices into ``y``, in time order.

    Args:
        y, start_s, record_ids: ``(n,)`` labels, window starts (s) and recordings.
    """
    y = np.asarray(y, bool)
    rec, start = np.asarray(record_ids).astype(str), np.asarray(start_s, np.float64)
    out = []
    for r in np.unique(rec):
        k = np.flatnonzero(rec == r)
        k = k[np.argsort(start[k], kind="stable")]
        edges = np.flatnonzero(np.diff(np.r_[0, y[k].astype(int), 0]))
        out += [(str(r), k[on:off]) for on, off in zip(edges[::2], edges[1::2])]
    return out


def detection_delays(y: np.ndarray, pred: np.ndarray, start_s: np.ndarray, record_ids: np.ndarray) -> list:
    """Per seizure, seconds from its onset to the first ictal decision between 30 s before the onset
    (SzCORE's start tolerance) and its last window, 0 when that decision comes before the onset;
    None when there is none."""
    pred = np.asarray(pred, bool)
    rec, start = np.asarray(record_ids).astype(str), np.asarray(start_s, np.float64)
    out = []
    for r, idx in seizure_runs(y, start, rec):
        on, off = start[idx[0]], start[idx[-1]]
        hit = pred & (rec == r) & (start >= on - 30.0) & (start <= off)
        out.append(float(max(0.0, start[hit].min() - on)) if hit.any() else None)
    return out


def missed_inside(y: np.ndarray, pred: np.ndarray, reference_pred: np.ndarray, start_s: np.ndarray,
                  record_ids: np.ndarray) -> list[dict]:
    """Seizures the reference calls ictal on at least one of their windows and the cascade on none.

    Args:
        y, pred, reference_pred, start_s, record_ids: ``(n,)`` labels, the cascade's and the
            reference's (e.g. complex-only) decisions, window starts and recordings.

    Returns:
        One ``{"record", "onset_s", "n_windows", "reference_ictal"}`` per such seizure.
    """
    pred, ref = np.asarray(pred, bool), np.asarray(reference_pred, bool)
    start = np.asarray(start_s, np.float64)
    return [{"record": r, "onset_s": float(start[idx[0]]), "n_windows": int(len(idx)),
             "reference_ictal": int(ref[idx].sum())}
            for r, idx in seizure_runs(y, start, record_ids) if ref[idx].any() and not pred[idx].any()]
