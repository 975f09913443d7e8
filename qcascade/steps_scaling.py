"""Pipeline side of ``data.input_scaling: causal_robust`` in hardware: what the generated top
level needs (initial state, electrodes kept) and the raw test windows it is fed in C simulation
(:func:`design_windows`: also the time-ordered windows of a design with the gate's sentinel).

The design scales its own input (:mod:`qcascade.data.scaling`), so the C simulation gives it raw
windows of whole test recordings, in time order from each recording's first window (``scale_reset``),
while QKeras and hls4ml get the scaled windows of the data step.
"""

from __future__ import annotations

import numpy as np

from qcascade.errors import DataError


def hw_input_scaling(ctx) -> dict | None:
    """``input_scaling`` for :func:`qcascade.hls.toplevel.generate_toplevel`; None with ``train_stats``."""
    from qcascade.steps_data import input_scaling, prepared_data

    d = ctx.cfg.data
    if input_scaling(ctx) != "causal_robust":
        return None

    data = prepared_data(ctx)
    train, norm = data.sets["train"], data.normalizer
    return {"memory_shift": int(d.scaling_memory_windows).bit_length() - 1, "center": norm.center,
            "scale": norm.scale, "mask": train.mask & norm.mask}


def raw_windows(ctx, te, record_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw padded windows of whole test recordings, in ``te`` row order.

    Args:
        te: the test :class:`qcascade.data.windows.WindowSet` (not thinned: every window of a recording,
            in time order).
        record_ids: the recordings wanted.

    Returns:
        ``(X_raw (n, n_times, n_chans) float32, rows (n,) the te rows they are, scale_reset (n,) bool)``.
    """
    from qcascade.data.windows import iter_window_batches

    d = ctx.cfg.data
    from qcascade.steps_data import prepared_data

    recs = {r.record_id: r for r in prepared_data(ctx).splits["test"]}
    fs = int(d.sfreq)
    out, rows, reset = [], [], []
    for rid in record_ids:
        idx = np.flatnonzero(te.record_ids == rid)
        rec = recs[rid]
        pos = 0
        for xb, _, _ in iter_window_batches(rec, d.n_times, int(round(d.stride_s * fs)), d.ictal_overlap):
            X = np.zeros((len(xb), d.n_times, d.n_chans), np.float32)
            X[:, :, :rec.n_electrodes] = xb
            out.append(X)
            pos += len(xb)
        if pos != len(idx):
            raise DataError(f"{rec.source}: {pos} raw windows for {len(idx)} test windows")
        rows.append(idx)
        reset.append(np.arange(len(idx)) == 0)
    return np.concatenate(out), np.concatenate(rows), np.concatenate(reset)


def design_windows(ctx, te, record_ids, scaled: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whole test recordings in time order, as a design whose state spans windows reads them.

    ``scaled``: the design scales its input (:func:`raw_windows`); otherwise (the gate's sentinel) the
    model inputs of ``te``. Returns ``(X, rows, first)`` like :func:`raw_windows`.
    """
    if scaled:
        return raw_windows(ctx, te, record_ids)
    rows, first = [], []
    for rid in record_ids:
        idx = np.flatnonzero(te.record_ids == rid)
        rows.append(idx[np.argsort(te.start_s[idx], kind="stable")])
        first.append(np.arange(len(idx)) == 0)
    rows_all = np.concatenate(rows)
    return te.X[rows_all], rows_all, np.concatenate(first)
