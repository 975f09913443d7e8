"""Cutting recordings into labelled windows, padding electrodes to ``n_chans`` and normalising.

A window of ``n_times`` samples starting at sample ``s`` is ictal when the fraction of it inside
ictal spans is ``>= ictal_overlap``. Windows never cross recording (file) boundaries. Electrodes are
zero-padded to ``n_chans``; the boolean mask marks real, live electrodes (padded and dead ones are
never selectable). The :class:`Normalizer` is fitted on training windows only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from qcascade.data.aligned import aligned_zeros
from qcascade.data.normalizer import Normalizer
from qcascade.data.swec import SFREQ, Recording
from qcascade.errors import DataError

log = logging.getLogger(__name__)


def window_starts_labels(n_samples: int, ictal_spans, n_times: int = 512, stride: int = 512,
                         ictal_overlap: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Start samples ``(n_windows,)`` int64 and labels ``(n_windows,)`` int8 of a recording's windows."""
    if n_samples < n_times:
        return np.zeros(0, np.int64), np.zeros(0, np.int8)
    starts = np.arange(0, n_samples - n_times + 1, stride, dtype=np.int64)
    inside = np.zeros(len(starts), np.int64)
    for s0, s1 in ictal_spans:
        inside += np.clip(np.minimum(starts + n_times, s1) - np.maximum(starts, s0), 0, None)
    return starts, (inside >= ictal_overlap * n_times - 1e-9).astype(np.int8)


def _kept(starts: np.ndarray, labels: np.ndarray, stride: int, nonictal_stride: int | None) -> np.ndarray:
    if nonictal_stride is None or nonictal_stride == stride:
        return np.ones(len(starts), bool)
    if nonictal_stride % stride:
        raise ValueError(f"nonictal_stride ({nonictal_stride}) must be a multiple of stride ({stride})")
    return (labels == 1) | (starts % nonictal_stride == 0)


def iter_window_batches(recording: Recording, n_times: int = 512, stride: int = 512,
                        ictal_overlap: float = 0.5, nonictal_stride: int | None = None,
                        batch_size: int = 256, chunk_samples: int = 30 * 512):
    """Stream a recording as batches ``(X, y, starts)``; memory is bounded by chunk and batch size.

    Yields:
        X: ``(b, n_times, n_electrodes)`` float32 raw (not padded, not normalised).
        y: ``(b,)`` int8 labels; starts: ``(b,)`` int64 start samples at 512 Hz.

    Raises:
        DataError: the recording is shorter than one window.
    """
    starts, labels = window_starts_labels(recording.n_samples, recording.ictal_spans, n_times, stride,
                                          ictal_overlap)
    if len(starts) == 0:
        raise DataError(f"{recording.source}: {recording.n_samples / SFREQ:.2f} s is shorter than one "
                        f"window ({n_times} samples); no windows")
    keep = _kept(starts, labels, stride, nonictal_stride)
    starts, labels = starts[keep], labels[keep]
    buf = np.zeros((0, recording.n_electrodes), np.float32)
    buf_start, i, n_pending = 0, 0, 0
    # Windows are copied out so a pending batch never pins old chunks in memory.
    batch = np.empty((min(batch_size, len(starts)), n_times, recording.n_electrodes), np.float32)
    for chunk in recording.iter_chunks(max(chunk_samples, n_times)):
        buf = np.concatenate([buf, chunk]) if len(buf) else chunk
        buf_end = buf_start + len(buf)
        while i < len(starts) and starts[i] + n_times <= buf_end:
            off = starts[i] - buf_start
            batch[n_pending] = buf[off:off + n_times]
            i, n_pending = i + 1, n_pending + 1
            if n_pending == len(batch):
                yield batch, labels[i - n_pending:i], starts[i - n_pending:i]
                batch, n_pending = np.empty_like(batch), 0  # the consumer keeps the yielded one
        drop = (starts[i] if i < len(starts) else buf_end) - buf_start
        buf, buf_start = buf[drop:], buf_start + drop
    if n_pending:
        yield batch[:n_pending], labels[i - n_pending:i], starts[i - n_pending:i]


def iter_windows(recording: Recording, n_times: int = 512, stride: int = 512, ictal_overlap: float = 0.5,
                 **kwargs) -> Iterator[tuple[np.ndarray, int, int]]:
    """Yield ``(window (n_times, n_electrodes) float32, label, start_sample)`` one at a time.

    ``kwargs`` go to :func:`iter_window_batches` (``batch_size`` defaults to 32 here).
    """
    kwargs.setdefault("batch_size", 32)
    for X, y, starts in iter_window_batches(recording, n_times, stride, ictal_overlap, **kwargs):
        for window, label, start in zip(X, y, starts):
            yield window, int(label), int(start)


@dataclass
class WindowSet:
    """Windows of one split (one patient, or pooled patients).

    Attributes:
        X: ``(n_windows, n_times, n_chans)`` float32, padded and normalised.
        y: ``(n_windows,)`` int64 labels (1 = ictal).
        mask: ``(n_chans,)`` bool live electrodes (for pooled sets: live in any patient).
        record_ids: ``(n_windows,)`` str, the recording each window comes from (provenance).
        start_s: ``(n_windows,)`` float64 window start, seconds from the recording start.
        patient_ids: ``(n_windows,)`` str.
        patient_masks: patient id -> ``(n_chans,)`` bool live electrodes.
    """

    X: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    record_ids: np.ndarray
    start_s: np.ndarray
    patient_ids: np.ndarray
    patient_masks: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)


def patient_mask(recordings: Sequence[Recording], n_chans: int = 128) -> np.ndarray:
    """``(n_chans,)`` bool: electrodes present and live in every one of a patient's recordings."""
    n_el = recordings[0].n_electrodes
    if n_el > n_chans:
        raise DataError(f"{recordings[0].source}: {n_el} electrodes exceed n_chans={n_chans}")
    mask = np.zeros(n_chans, bool)
    mask[:n_el] = True
    for rec in recordings:
        mask[:n_el] &= ~rec.dead_electrodes()
    if not mask.any():
        raise DataError(f"patient {recordings[0].patient_id}: no live electrode")
    return mask


def _fill(recs: Sequence[Recording], n_chans: int, n_times: int, stride: int, ictal_overlap: float,
          nonictal_stride: int | None, masks: dict) -> WindowSet:
    counts = []
    for rec in recs:
        starts, labels = window_starts_labels(rec.n_samples, rec.ictal_spans, n_times, stride, ictal_overlap)
        counts.append(int(_kept(starts, labels, stride, nonictal_stride).sum()))
    X = aligned_zeros((sum(counts), n_times, n_chans))  # read by TensorFlow without a copy
    y, starts_all = np.zeros(len(X), np.int64), np.zeros(len(X), np.float64)
    rids, pids = np.empty(len(X), object), np.empty(len(X), object)
    pos = 0
    for rec in recs:
        for xb, yb, sb in iter_window_batches(rec, n_times, stride, ictal_overlap, nonictal_stride):
            sl = slice(pos, pos + len(xb))
            X[sl, :, :rec.n_electrodes] = xb
            y[sl], starts_all[sl] = yb, sb / SFREQ
            rids[sl], pids[sl] = rec.record_id, rec.patient_id
            pos += len(xb)
    union = np.zeros(n_chans, bool)
    for pid in set(pids.tolist()):
        union |= masks[pid]
    return WindowSet(X, y, union, rids.astype(str), starts_all, pids.astype(str),
                     {p: masks[p] for p in sorted(set(pids.tolist()))})


def check_no_leak(splits: dict[str, Sequence[Recording]]) -> None:
    """Raise if a recording or a seizure of ``val``/``test`` also appears in ``train``."""
    train = splits.get("train", [])
    train_records = {r.record_id for r in train}
    train_seizures = {s for r in train for s in r.seizure_ids}
    for name, recs in splits.items():
        if name == "train":
            continue
        for rec in recs:
            if rec.record_id in train_records or train_seizures & set(rec.seizure_ids):
                raise DataError(f"split leak: {rec.record_id} ({name}) shares a recording or seizure with train")


def stride_grid_rows(start_s: np.ndarray, stride_s: float) -> np.ndarray:
    """Indices of the windows starting ``start_s`` (s, ``(n,)``) on their recording's ``stride_s`` grid."""
    steps = np.asarray(start_s, np.float64) / stride_s
    return np.flatnonzero(np.abs(steps - np.round(steps)) < 1e-6)


def build_windowsets(splits: dict[str, Sequence[Recording]], n_chans: int = 128, n_times: int = 512,
                     stride: int = 512, ictal_overlap: float = 0.5, train_nonictal_stride: int | None = None,
                     normalization: str = "robust", seed: int = 0, input_scaling: str = "train_stats",
                     scaling_spec=None, train_ictal_stride: int | None = None) -> tuple[dict[str, WindowSet], Normalizer]:
    """Window, pad and normalise every split; the normalizer sees the ``train`` windows only.

    Args:
        splits: ``{"train": [...], "val": [...], "test": [...]}`` from :mod:`qcascade.data.splits`.
        n_chans: electrodes after padding.
        n_times: samples per window (at 512 Hz).
        stride: hop between windows, samples.
        ictal_overlap: minimum ictal fraction for label 1.
        train_nonictal_stride: hop for non-ictal *training* windows (multiple of ``stride``;
            None = ``stride``); thins the majority class and memory.
        normalization: ``"robust"`` or ``"zscore"``.
        seed: picks the windows the normalizer is fitted on.
        input_scaling: ``"train_stats"`` (the normalizer on every window) or ``"causal_robust"``
            (:mod:`qcascade.data.scaling`: each recording scaled from its own past, in time order;
            the normalizer is only the state a recording starts from).
        scaling_spec: :class:`qcascade.data.scaling.ScalingSpec` (``causal_robust``; default spec).
        train_ictal_stride: hop for ictal *training* windows (divides ``stride`` and
            ``train_nonictal_stride``; None = ``stride``): more windows per training seizure, cut
            at sub-stride offsets. Non-ictal training windows stay on their grid.

    Returns:
        ``({split: WindowSet}, Normalizer)``.
    """
    check_no_leak(splits)
    by_patient: dict[str, list[Recording]] = {}
    for recs in splits.values():
        for rec in recs:
            by_patient.setdefault(rec.patient_id, []).append(rec)
    masks = {pid: patient_mask(recs, n_chans) for pid, recs in by_patient.items()}
    out = {}
    grid = {name: _train_grid(stride, train_ictal_stride, train_nonictal_stride) if name == "train" else (stride, None)
            for name in splits}
    for name, recs in splits.items():
        out[name] = _fill(recs, n_chans, n_times, grid[name][0], ictal_overlap, grid[name][1], masks)
    train = out["train"]
    if len(train) == 0:
        raise DataError("no training windows")
    win_masks = np.stack([masks[p] for p in train.patient_ids]) if len(train.patient_masks) > 1 else train.mask
    # Fitted on the windows of the stride grid: sub-stride ictal windows would shift the statistics.
    grid_rows = stride_grid_rows(train.start_s, stride / SFREQ)
    normalizer = Normalizer.fit(train.X, win_masks, normalization, train.record_ids.tolist(), seed=seed,
                                rows=None if len(grid_rows) == len(train) else grid_rows)
    if input_scaling == "causal_robust":
        for name, recs in splits.items():
            _causal_fill(out[name], recs, normalizer, masks, scaling_spec, grid[name][0], ictal_overlap,
                         grid[name][1], state_stride=stride)
        return out, normalizer
    if input_scaling != "train_stats":
        raise ValueError(f"input_scaling must be 'train_stats' or 'causal_robust', got {input_scaling!r}")
    for ws in out.values():
        for pid, m in ws.patient_masks.items():
            rows = np.flatnonzero(ws.patient_ids == pid)
            for lo in range(0, len(rows), 1024):  # bounded temporaries
                idx = rows[lo:lo + 1024]
                ws.X[idx] = normalizer.transform(ws.X[idx], m)
    return out, normalizer


def _train_grid(stride: int, ictal_stride: int | None, nonictal_stride: int | None) -> tuple[int, int | None]:
    """``(hop, non-ictal hop)`` of the training windows: ictal ones every ``ictal_stride`` samples."""
    if ictal_stride is None or ictal_stride == stride:
        return stride, nonictal_stride
    if stride % ictal_stride or (nonictal_stride or stride) % ictal_stride:
        raise ValueError(f"train_ictal_stride ({ictal_stride}) must divide stride ({stride}) "
                         f"and train_nonictal_stride ({nonictal_stride})")
    return ictal_stride, nonictal_stride or stride


def _causal_fill(ws: WindowSet, recs: Sequence[Recording], normalizer: Normalizer, masks: dict, spec,
                 stride: int, ictal_overlap: float, nonictal_stride: int | None,
                 state_stride: int | None = None) -> None:
    """Overwrite ``ws.X`` with causally scaled windows: every window of each recording is scaled
    in time order (the hardware sees them all), then the kept ones (thinned training windows) are
    written to their rows, so shuffling later never lets a window see its recording's future.

    ``state_stride``: the hop of the windows the hardware sees (None: ``stride``). Windows cut
    between them (``stride`` finer, ictal training windows) are scaled with the state of the last
    window on that grid and do not update it, so the state runs as in the hardware."""
    from qcascade.data.scaling import CausalScaler, ScalingSpec

    spec = spec or ScalingSpec(n_times=ws.X.shape[1])
    n_chans = ws.X.shape[2]
    for rec in recs:
        rows = np.flatnonzero(ws.record_ids == rec.record_id)
        scaler = CausalScaler(spec, normalizer.center, normalizer.scale, masks[rec.patient_id] & normalizer.mask)
        pos = 0
        for xb, yb, sb in iter_window_batches(rec, spec.n_times, stride, ictal_overlap):
            keep = _kept(sb, yb, stride, nonictal_stride)
            on_grid = sb % (state_stride or stride) == 0
            for w, k, g in zip(xb, keep, on_grid):
                if not (k or g):
                    continue
                padded = np.zeros((spec.n_times, n_chans), np.float32)
                padded[:, :rec.n_electrodes] = w
                y = scaler.step(padded) if g else scaler.scale(padded)
                if k:
                    ws.X[rows[pos]] = y
                    pos += 1
        if pos != len(rows):
            raise DataError(f"{rec.source}: {pos} scaled windows for {len(rows)} rows")


def iter_padded_batches(recordings: Sequence[Recording], normalizer: Normalizer, n_chans: int = 128,
                        n_times: int = 512, stride: int = 512, ictal_overlap: float = 0.5,
                        batch_size: int = 256, scaling_spec=None):
    """Stream normalised, padded batches ``(X (b, n_times, n_chans), y, record_id, starts_s)``.

    For evaluating long recordings without holding their windows in memory. With ``scaling_spec``
    (``data.input_scaling: causal_robust``) each recording is scaled causally from its first window
    (the normalizer is then only the initial state), as :func:`build_windowsets` does.
    """
    from qcascade.data.scaling import CausalScaler

    for rec in recordings:
        mask = patient_mask([rec], n_chans) & normalizer.mask
        scaler = None if scaling_spec is None else CausalScaler(scaling_spec, normalizer.center, normalizer.scale, mask)
        for xb, yb, sb in iter_window_batches(rec, n_times, stride, ictal_overlap, batch_size=batch_size):
            X = np.zeros((len(xb), n_times, n_chans), np.float32)
            X[:, :, :rec.n_electrodes] = xb
            if scaler is None:
                X = normalizer.transform(X, mask, inplace=True)
            else:
                X = np.stack([scaler.step(w) for w in X])
            yield X, yb.astype(np.int64), rec.record_id, sb / SFREQ


def as_tf_dataset(source, batch_size: int = 64, shuffle: bool = False, seed: int = 0, **stream_kwargs):
    """A ``tf.data.Dataset`` of ``(X, y)`` batches; TensorFlow is imported only here.

    Args:
        source: a :class:`WindowSet` (in memory), or ``(recordings, normalizer)`` to stream with
            :func:`iter_padded_batches` (``stream_kwargs`` go there).
    """
    import tensorflow as tf

    if isinstance(source, WindowSet):
        ds = tf.data.Dataset.from_tensor_slices((source.X, source.y))
        if shuffle:
            ds = ds.shuffle(len(source), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size)
    recordings, normalizer = source
    n_times, n_chans = stream_kwargs.get("n_times", 512), stream_kwargs.get("n_chans", 128)

    def gen():
        for X, y, _, _ in iter_padded_batches(recordings, normalizer, batch_size=batch_size, **stream_kwargs):
            yield X, y

    sig = (tf.TensorSpec((None, n_times, n_chans), tf.float32), tf.TensorSpec((None,), tf.int64))
    return tf.data.Dataset.from_generator(gen, output_signature=sig)
