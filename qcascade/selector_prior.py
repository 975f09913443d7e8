"""The ChannelSelector's warm start: how well each electrode's line length separates the classes.

``model.selector_init: separability`` starts each electrode's logit at
``selector_init_scale * electrode_separability``: the worst case over the training recordings of
a one-sided AUC. Under ``causal_robust`` scaling it reads the raw recordings' line length
(:func:`raw_line_length`); measurements in docs/generalisation.md.
"""

from __future__ import annotations

import numpy as np

__all__ = ["electrode_separability", "auc_per_column", "raw_line_length", "prior_line_length"]


def electrode_separability(ws, mask: np.ndarray | None = None, line_length: np.ndarray | None = None) -> np.ndarray:
    """Worst case over training recordings of ``max(0, 2 * (AUC - 0.5))`` of each electrode's
    line length.

    Each recording with both classes gives one AUC per electrode; the minimum over recordings
    keeps electrodes that separate *every* training seizure (an electrode that separates one
    recording by a coincidence, e.g. mains amplitude that drifts with the seizure, scores low).
    Only a rise counts: a seizure raises the line length where it is seen, while a fall in ictal
    windows comes from what the seizure's windows lack (artefact bursts of the interictal part).

    Args:
        ws: training :class:`~qcascade.data.WindowSet`.
        mask: ``(n_chans,)`` bool electrodes to score (default ``ws.mask``); others get 0.
        line_length: ``(n_windows, n_chans)`` each window's line length, if not that of ``ws.X``
            (e.g. :func:`raw_line_length`).

    Returns:
        ``(n_chans,)`` float in [0, 1]; 1 = the electrode's line length separates the classes.
    """
    mask = ws.mask if mask is None else np.asarray(mask, bool)
    out = np.zeros(ws.X.shape[-1])
    if len(np.unique(ws.y)) < 2:
        return out
    records = [r for r in np.unique(ws.record_ids) if len(np.unique(ws.y[ws.record_ids == r])) == 2]
    groups = [ws.record_ids == r for r in records] or [np.ones(len(ws.y), bool)]
    if line_length is None:
        line_length = window_line_length(ws.X)
    ll = np.asarray(line_length)[:, mask]
    score = np.ones(ll.shape[1])
    for g in groups:
        score = np.minimum(score, np.maximum(0.0, 2 * (auc_per_column(ws.y[g], ll[g]) - 0.5)))
    out[mask] = score
    return out


def window_line_length(X: np.ndarray) -> np.ndarray:
    """``(n, n_chans)`` mean absolute first difference of each electrode of ``(n, n_times, n_chans)`` windows."""
    out = np.zeros((len(X), X.shape[-1]), np.float64)
    for lo in range(0, X.shape[-1], 16):  # bounded temporaries: (n, n_times, 16) at a time
        out[:, lo:lo + 16] = np.abs(np.diff(X[:, :, lo:lo + 16], axis=1)).mean(1)
    return out


def auc_per_column(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each column of ``scores`` ``(n, k)`` for labels ``y`` ``(n,)`` in {0, 1}: the
    Mann-Whitney statistic on average ranks, which counts ties as 1/2 like
    ``sklearn.metrics.roc_auc_score`` (one call for all electrodes instead of one per electrode)."""
    from scipy.stats import rankdata

    pos = np.asarray(y) == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    ranks = rankdata(scores, axis=0)
    return (ranks[pos].sum(0) - n1 * (n1 + 1) / 2) / (n1 * n0)


def raw_line_length(recordings, ws, *, n_times: int, stride: int, ictal_overlap: float,
                    sfreq: float = 512.0) -> np.ndarray:
    """``(n_windows, n_chans)`` line length of each of ``ws``'s windows in the raw recordings.

    ``causal_robust`` divides each window by its electrode's recent amplitude, so a seizure's rise
    in amplitude fades from the scaled windows as it lasts; the prior reads the raw signal, where
    a per-recording constant scale would not change an AUC. Windows are matched by recording and
    start sample (a carved validation block is not in ``ws``).

    Args:
        recordings: the :class:`~qcascade.data.Recording` objects ``ws`` was cut from.
        ws: the training :class:`~qcascade.data.WindowSet`; n_times, stride (samples),
            ictal_overlap, sfreq (the windows' rate): how it was cut.

    Raises:
        DataError: a window of ``ws`` is not among its recording's raw windows.
    """
    from qcascade.data.windows import iter_window_batches
    from qcascade.errors import DataError

    out = np.zeros((len(ws.y), ws.X.shape[-1]), np.float32)
    found = np.zeros(len(ws.y), bool)
    for rec in recordings:
        rows = np.flatnonzero(ws.record_ids == rec.record_id)
        if not len(rows):
            continue
        row_of = dict(zip(np.round(ws.start_s[rows] * sfreq).astype(np.int64).tolist(), rows.tolist()))
        for xb, _, sb in iter_window_batches(rec, n_times, stride, ictal_overlap):
            hit = [(k, row_of[int(s)]) for k, s in enumerate(sb) if int(s) in row_of]
            if hit:
                k, r = map(np.array, zip(*hit))
                out[r, :rec.n_electrodes] = np.abs(np.diff(xb[k], axis=1)).mean(1)
                found[r] = True
    if not found.all():
        missing = sorted(set(ws.record_ids[~found].tolist()))
        raise DataError(f"{int((~found).sum())} training windows of {missing} are not in the raw recordings")
    return out


def prior_line_length(ctx, ws) -> np.ndarray | None:
    """The raw line length for the selector prior when the input scaling adapts, else None."""
    from qcascade.steps_data import input_scaling, prepared_data

    if input_scaling(ctx) != "causal_robust":
        return None
    d = ctx.cfg.data
    return raw_line_length(prepared_data(ctx).splits["train"], ws, n_times=d.n_times,
                           stride=int(round(d.train_ictal_stride_s * d.sfreq)), ictal_overlap=d.ictal_overlap,
                           sfreq=d.sfreq)
