"""The classical reference detector: per-electrode features with a linear classifier.

What a reviewer asks for first: line length, energy and a few band powers of every live
electrode, standardised, into an L2 logistic regression (scikit-learn), trained on the same
training windows as the CNNs, its regularisation chosen on the same validation windows, and tested
on the same test windows. No deep learning, no electrode selection: if a CNN loses to this, the
report says so.
"""

from __future__ import annotations

import logging

import numpy as np

from qcascade.io_utils import atomic_save_npy, atomic_write_json
from qcascade.steps_data import windows

log = logging.getLogger(__name__)

# Band edges in Hz (delta, theta, alpha, beta, low gamma, high gamma).
BANDS = ((1, 4), (4, 8), (8, 13), (13, 30), (30, 70), (70, 150))
FEATURES = ("line_length", "log_variance") + tuple(f"log_power_{lo}_{hi}hz" for lo, hi in BANDS)
C_GRID = (0.01, 0.1, 1.0)


def window_features(X: np.ndarray, mask: np.ndarray, sfreq: float = 512.0, chunk: int = 256) -> np.ndarray:
    """Per-electrode features of each window.

    Args:
        X: ``(n, n_times, n_chans)`` windows.
        mask: ``(n_chans,)`` bool, the live electrodes (the only ones used).
        sfreq: sampling rate in Hz.
        chunk: windows per FFT batch (bounds the temporaries).

    Returns:
        ``(n, n_live * len(FEATURES))`` float64, electrode-major (all features of the first live
        electrode, then the next).
    """
    from scipy import fft as sp_fft

    live = np.flatnonzero(np.asarray(mask, bool))
    n_times = X.shape[1]
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    # (n_freqs, n_bands) averaging matrix: band power = mean |FFT|^2 over the band's bins
    avg = np.stack([((freqs >= lo) & (freqs < hi)) / max(1, ((freqs >= lo) & (freqs < hi)).sum())
                    for lo, hi in BANDS], 1).astype(np.float32)
    out = np.empty((len(X), len(live), len(FEATURES)), np.float64)
    for lo in range(0, len(X), chunk):
        x = np.ascontiguousarray(X[lo:lo + chunk][:, :, live], np.float32)
        sl = slice(lo, lo + len(x))
        out[sl, :, 0] = np.abs(np.diff(x, axis=1)).mean(1)
        x -= x.mean(1, keepdims=True)
        out[sl, :, 1] = np.log((x * x).mean(1).astype(np.float64) + 1e-12)
        spec = sp_fft.rfft(x, axis=1)
        power = spec.real ** 2 + spec.imag ** 2  # (b, n_freqs, n_live) float32
        out[sl, :, 2:] = np.log(np.matmul(power.transpose(0, 2, 1), avg).astype(np.float64) + 1e-12)
    return out.reshape(len(X), -1)


def _fit(F_train: np.ndarray, y_train: np.ndarray, c: float, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(
        C=c, class_weight="balanced", max_iter=2000, random_state=seed)).fit(F_train, y_train)


def _choose(models: dict, val_pred: dict, y_val: np.ndarray):
    """``(model, C, {C: validation F1})``: the best validation F1, ties to the smaller C."""
    from qcascade.evaluation import window_metrics

    scores, best, best_f1 = {}, None, -1.0
    for c in C_GRID:
        f1 = window_metrics(y_val, None, val_pred[c])["f1"] or 0.0
        scores[c] = f1
        if f1 > best_f1 + 1e-12:
            best, best_f1 = c, f1
    return models[best], best, scores


def fit_feature_baseline(F_train: np.ndarray, y_train: np.ndarray, F_val: np.ndarray | None = None,
                         y_val: np.ndarray | None = None, seed: int = 0):
    """Standardised, class-balanced logistic regression; C picked by validation F1 (ties: smaller C).

    Args:
        F_train, F_val: ``(n, n_features)`` from :func:`window_features`.
        y_train, y_val: ``(n,)`` labels in {0, 1}.
        seed: solver seed.

    Returns:
        ``(pipeline, chosen_C, {C: validation F1})``; without validation windows (or with one
        class only) C = 1.
    """
    if F_val is not None and len(F_val) and len(np.unique(y_val)) == 2:
        models = {c: _fit(F_train, y_train, c, seed) for c in C_GRID}
        return _choose(models, {c: m.predict(F_val) for c, m in models.items()}, y_val)
    return _fit(F_train, y_train, 1.0, seed), 1.0, {}


def streamed_outputs(fns, X, mask: np.ndarray, chunk: int = 256) -> list[np.ndarray]:
    """``fn(features)`` of every window of ``X`` for each ``fn``, features computed ``chunk`` windows at a time.

    A long-term validation or test set (:class:`~qcascade.data.longterm_cache.LazyWindows`) has
    every window of its hours; its features would take 4 KB per window and electrode count / 64,
    so they are never held all at once.

    Args:
        fns: callables ``(b, n_features) -> (b,)``.
        X: ``(n, n_times, n_chans)`` windows (array or lazy).
        mask: ``(n_chans,)`` bool live electrodes.
        chunk: windows per chunk.

    Returns:
        One ``(n,)`` array per ``fn``.
    """
    outs: list[list[np.ndarray]] = [[] for _ in fns]
    for lo in range(0, len(X), chunk):
        F = window_features(X[lo:lo + chunk], mask)
        for out, fn in zip(outs, fns):
            out.append(np.asarray(fn(F)))
    return [np.concatenate(o) if o else np.zeros(0) for o in outs]


def step_feature_baseline(ctx) -> None:
    """Train the feature baseline on the unit's (fold's) split and test it like the CNNs.

    Validation and test features are computed chunk by chunk (:func:`streamed_outputs`), so the
    step's memory does not grow with the hours of a long-term run. Writes
    ``feature_baseline.json`` (chosen C, validation F1 per C, test window metrics) and
    ``baselines/feature_baseline_test_proba.npy`` (``(n_test,)`` ictal probability).
    """
    from qcascade.evaluation import window_metrics

    sets = windows(ctx)
    mask = sets["train"].mask
    if len(np.unique(sets["train"].y)) < 2:
        from qcascade.errors import DataError

        raise DataError(f"{ctx.unit}: the training windows hold one class only; no baseline can be fitted")
    tr, y_val, seed = window_features(sets["train"].X, mask), sets["val"].y, ctx.cfg.train.seed
    if len(y_val) and len(np.unique(y_val)) == 2:
        models = {c: _fit(tr, sets["train"].y, c, seed) for c in C_GRID}
        preds = streamed_outputs([m.predict for m in models.values()], sets["val"].X, mask)
        model, c, val_f1 = _choose(models, dict(zip(models, preds)), y_val)
    else:
        model, c, val_f1 = _fit(tr, sets["train"].y, 1.0, seed), 1.0, {}
    proba = streamed_outputs([lambda F: model.predict_proba(F)[:, 1]], sets["test"].X, mask)[0]
    atomic_save_npy(ctx.path("baselines", "feature_baseline_test_proba.npy"), proba)
    atomic_write_json(ctx.path("feature_baseline.json"), {
        "features": list(FEATURES), "n_features": int(tr.shape[1]), "classifier": "standardised logistic regression",
        "C": c, "val_f1_by_C": {str(k): v for k, v in val_f1.items()},
        "test_metrics": window_metrics(sets["test"].y, proba, (proba >= 0.5).astype(int))})
