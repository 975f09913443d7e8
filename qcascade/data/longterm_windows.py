"""Train/val/test window sets of long-term recordings with memory bounded independently of their hours.

* **Train**: every ictal window of the training hours plus a seeded random sample of
  ``interictal_per_ictal`` interictal windows per ictal one (all of them if fewer exist), held in
  memory: its size grows with the number of training seizures, not with the recorded hours.
* **Validation and test**: every window of their hours (stride ``stride``), as
  :class:`~qcascade.data.longterm_cache.LazyWindows` read from the on-disk signal cache batch by
  batch. ``"val_monitor"`` is validation sampled like train, for per-epoch training metrics;
  tau, the post-processing and every reported number use the full validation and test hours.
* **Normalisation**: fitted on ``max_windows`` windows drawn uniformly (seeded) from all windows of
  the training hours, read in one pass over the cache, so it sees the recordings' real
  ictal/interictal mix rather than the enriched training sample.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from qcascade.data.longterm_cache import LazyWindows, SignalFile, ensure_cached
from qcascade.data.swec import SFREQ, Recording
from qcascade.data.normalizer import Normalizer
from qcascade.data.windows import WindowSet, check_no_leak, patient_mask, window_starts_labels
from qcascade.errors import DataError

log = logging.getLogger(__name__)


def _index(recs: Sequence[Recording], n_times: int, stride: int, ictal_overlap: float):
    """``(rec_index, starts, labels)`` of every window of ``recs``, record by record in time order."""
    ri, st, lab = [], [], []
    for k, rec in enumerate(recs):
        s, y = window_starts_labels(rec.n_samples, rec.ictal_spans, n_times, stride, ictal_overlap)
        ri.append(np.full(len(s), k, np.int64))
        st.append(s)
        lab.append(y.astype(np.int64))
    if not ri:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(ri), np.concatenate(st), np.concatenate(lab)


def sample_training(labels: np.ndarray, interictal_per_ictal: int, seed: int,
                    max_windows: int | None = None) -> np.ndarray:
    """Indices (sorted) of every ictal window plus ``interictal_per_ictal`` interictal ones per ictal.

    Above ``max_windows`` the sample is drawn down to it (seeded), keeping the ratio of one ictal
    to ``interictal_per_ictal`` interictal windows, so its memory does not grow with the number of
    seizures.

    Args:
        labels: ``(n,)`` labels of every training window.
        interictal_per_ictal: interictal windows drawn per ictal window (seeded, without replacement).
        seed: sampling seed.
        max_windows: most windows returned (None: no cap).

    Returns:
        ``(k,)`` int64 indices into ``labels``, ascending (time order within each record),
        ``k <= max_windows``.
    """
    rng = np.random.default_rng(seed)
    ictal, inter = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if max_windows is not None and len(ictal) * (1 + interictal_per_ictal) > max_windows:
        keep = min(len(ictal), max(1, max_windows // (1 + interictal_per_ictal)))
        ictal = np.sort(rng.choice(ictal, size=keep, replace=False))
    n_inter = min(len(inter), interictal_per_ictal * max(1, len(ictal)))
    if max_windows is not None:
        n_inter = min(n_inter, max(0, max_windows - len(ictal)))
    pick = rng.choice(inter, size=n_inter, replace=False) if n_inter else inter[:0]
    return np.sort(np.concatenate([ictal, pick]).astype(np.int64))


def _lazy(recs, files, masks, n_times, n_chans, stride, ictal_overlap, normalizer):
    ri, st, lab = _index(recs, n_times, stride, ictal_overlap)
    X = LazyWindows([files[r.record_id] for r in recs], ri, st, n_times, n_chans, normalizer,
                    [masks[r.patient_id] for r in recs])
    return X, lab


def _windowset(X, lab, sel, recs, masks, n_chans) -> WindowSet:
    rec_index, starts = X.rec_index[sel], X.starts[sel]
    rids = np.array([recs[k].record_id for k in rec_index], dtype=object).astype(str) if len(sel) else np.zeros(0, str)
    pids = np.array([recs[k].patient_id for k in rec_index], dtype=object).astype(str) if len(sel) else np.zeros(0, str)
    union = np.zeros(n_chans, bool)
    for r in recs:
        union |= masks[r.patient_id]
    return WindowSet(X, lab[sel], union, rids, starts / SFREQ, pids,
                     {r.patient_id: masks[r.patient_id] for r in recs})


def fit_normalizer_streaming(X_raw: LazyWindows, n_chans: int, mask: np.ndarray, method: str, fitted_on,
                             max_windows: int = 2000, seed: int = 0) -> Normalizer:
    """Normalisation statistics from ``max_windows`` uniformly drawn raw windows (one pass, seeded)."""
    pick = np.sort(np.random.default_rng(seed).permutation(len(X_raw))[:max_windows])
    n_el = max(f.shape[1] for f in X_raw.files)
    sample = X_raw[pick][:, :, :n_el]  # (k, n_times, n_electrodes): padding is not fitted
    small = Normalizer.fit(sample, mask[:n_el], method, fitted_on, max_windows=max_windows, seed=seed)
    center, scale = np.zeros(n_chans, np.float32), np.ones(n_chans, np.float32)
    center[:n_el], scale[:n_el] = small.center, small.scale
    full_mask = np.zeros(n_chans, bool)
    full_mask[:n_el] = small.mask
    return Normalizer(center, scale, full_mask & mask, method, small.fitted_on)


def build_longterm_windowsets(splits: dict[str, Sequence[Recording]], cache_dir: Path, n_chans: int = 128,
                              n_times: int = 512, stride: int = 512, ictal_overlap: float = 0.5,
                              interictal_per_ictal: int = 4, normalization: str = "robust",
                              seed: int = 0, max_train_windows: int | None = 2000
                              ) -> tuple[dict[str, WindowSet], Normalizer]:
    """Window sets of long-term splits; see the module doc for what is in memory and what is lazy.

    Args:
        splits: ``{"train", "val", "test"}`` recordings (one patient, or several).
        cache_dir: folder of the on-disk signal cache (shared by the folds of a unit).
        n_chans, n_times, stride, ictal_overlap: as for :func:`qcascade.data.build_windowsets`.
        interictal_per_ictal: interictal training windows drawn per ictal training window.
        max_train_windows: cap on the training sample and on the validation monitor.
        normalization: ``"robust"`` or ``"zscore"``.
        seed: seeds the interictal sample and the normalisation sample.

    Returns:
        ``({"train", "val", "val_monitor", "test"}: WindowSet, Normalizer)``; ``train`` and
        ``val_monitor`` hold arrays, ``val`` and ``test`` hold :class:`LazyWindows`.
    """
    check_no_leak(splits)
    by_patient: dict[str, list[Recording]] = {}
    for recs in splits.values():
        for rec in recs:
            by_patient.setdefault(rec.patient_id, []).append(rec)
            if rec.n_electrodes > n_chans:
                raise DataError(f"{rec.source}: {rec.n_electrodes} electrodes > data.n_chans = {n_chans}")
    masks = {pid: patient_mask(recs, n_chans) for pid, recs in by_patient.items()}
    files = {}
    for recs in splits.values():
        for rec in recs:
            files[rec.record_id] = SignalFile(ensure_cached(rec, cache_dir))
    train = list(splits["train"])
    X_raw, y_train = _lazy(train, files, masks, n_times, n_chans, stride, ictal_overlap, None)
    if len(X_raw) == 0:
        raise DataError("no training windows")
    union = np.zeros(n_chans, bool)
    for m in masks.values():
        union |= m
    normalizer = fit_normalizer_streaming(X_raw, n_chans, union, normalization,
                                          [r.record_id for r in train], seed=seed)
    out = {}
    X_tr, _ = _lazy(train, files, masks, n_times, n_chans, stride, ictal_overlap, normalizer)
    sel = sample_training(y_train, interictal_per_ictal, seed, max_train_windows)
    ws = _windowset(X_tr, y_train, sel, train, masks, n_chans)
    ws.X = X_tr[sel]
    out["train"] = ws
    for name in ("val", "test"):
        recs = list(splits.get(name, []))
        X, lab = _lazy(recs, files, masks, n_times, n_chans, stride, ictal_overlap, normalizer)
        out[name] = _windowset(X, lab, np.arange(len(X)), recs, masks, n_chans)
        if name == "val":
            mon = sample_training(lab, interictal_per_ictal, seed + 1, max_train_windows)
            vm = _windowset(X, lab, mon, recs, masks, n_chans)
            vm.X = X[mon] if len(mon) else np.zeros((0, n_times, n_chans), np.float32)
            out["val_monitor"] = vm
    log.info("long-term windows: train %d (%d ictal, sampled), val %d, test %d (every window, on disk)",
             len(out["train"]), int(out["train"].y.sum()), len(out["val"]), len(out["test"]))
    return out, normalizer
