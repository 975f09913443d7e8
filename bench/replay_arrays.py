"""Per-window arrays of a replayed fold transformed in each recording's time order: the sentinel
counted only once it persists, the simple model's logits averaged over the windows before
(:mod:`bench.replay_gate_settings` keys ``sentinel_persist`` and ``smooth``)."""

from __future__ import annotations

import numpy as np


def persisting(up: np.ndarray, record_ids: np.ndarray, start_s: np.ndarray, k: int) -> np.ndarray:
    """``(n,)`` bool: the sentinel up on this window and on the ``k - 1`` windows before it in the
    same recording (``k = 1``: ``up`` as it is). An artefact shorter than ``k`` windows never counts."""
    if k < 1:
        raise ValueError(f"sentinel_persist must be >= 1, got {k}")
    up = np.asarray(up, bool)
    if k == 1:
        return up
    from qcascade.gate import _sequence_order

    order, first = _sequence_order(len(up), record_ids, start_s)
    run = np.zeros(len(up), int)
    for j, i in enumerate(order):
        run[j] = 0 if not up[i] else (1 if first[j] else run[j - 1] + 1)
    out = np.zeros(len(up), bool)
    out[order] = run >= k
    return out


def smoothed(logits: np.ndarray, record_ids: np.ndarray, start_s: np.ndarray, k: int) -> np.ndarray:
    """``(n, 2)``: each window's logits averaged with those of the ``k - 1`` windows before it in the
    same recording (fewer at a recording's start); ``k = 1``: the logits as they are."""
    z = np.asarray(logits, np.float64)
    if k < 1:
        raise ValueError(f"smooth must be >= 1, got {k}")
    if k == 1:
        return z
    from qcascade.gate import _sequence_order

    order, first = _sequence_order(len(z), record_ids, start_s)
    zs = z[order]
    out = np.empty_like(zs)
    since = 0  # windows of this recording before the current one
    for j in range(len(zs)):
        since = 0 if first[j] else since + 1
        lo = j - min(since, k - 1)
        out[j] = zs[lo:j + 1].mean(0)
    res = np.empty_like(z)
    res[order] = out
    return res
