"""Long-term recordings without a whole patient in memory: an on-disk signal cache and lazy windows.

A long-term patient has tens to hundreds of hours; its windows padded to ``(n, 512, 128)`` float32
take 0.94 GB per hour. Instead:

* :func:`ensure_cached` streams each hour file once (through the loader's decimator) into
  ``<cache_dir>/<record_id>.npy``: the 512 Hz signal, ``(n_samples, n_electrodes)`` float32,
  written atomically and reused by every fold and by a resumed run (its header is checked).
* :class:`LazyWindows` is an array-like ``(n, n_times, n_chans)`` over windows of cached
  recordings: indexing reads only the rows asked for (with ``os.pread``, not a memory map, so the
  pages read do not count in the process's resident memory), pads to ``n_chans`` and normalises.
  ``X[:, :, e:e + 1]`` is again lazy (one electrode); ``X[rows]`` and slices return arrays;
  whole-set conversions are refused above :data:`MAX_MATERIALISE_BYTES`.

Windows come out in record order, each record in time order, so a per-record causal state (e.g.
a gate's previous decision, or causal input scaling) can be carried across consecutive batches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from qcascade.errors import DataError
from qcascade.io_utils import atomic_path
from qcascade.tensors import as_tensor

#: Largest array a :class:`LazyWindows` hands out at once (a guard against loading a whole test set).
MAX_MATERIALISE_BYTES = 2 * 2**30


def cache_path(cache_dir: Path, record) -> Path:
    """``<cache_dir>/<record_id>.npy``."""
    return Path(cache_dir) / f"{record.record_id}.npy"


def _header(path: Path) -> tuple[tuple[int, ...], int]:
    """``(shape, data offset)`` of a float32 C-order ``.npy`` file."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        if fortran or dtype != np.dtype("<f4"):
            raise DataError(f"{path}: not a float32 C-order signal cache")
        return tuple(shape), fh.tell()


def ensure_cached(record, cache_dir: Path) -> Path:
    """The record's 512 Hz signal as ``.npy`` in ``cache_dir``, written once by a streaming pass.

    Args:
        record: a :class:`qcascade.data.Recording`.
        cache_dir: folder of the cache (created).

    Returns:
        The cache file, ``(record.n_samples, record.n_electrodes)`` float32.

    Raises:
        DataError: the recording delivers a different number of samples than its header promised.
    """
    path = cache_path(cache_dir, record)
    want = (int(record.n_samples), int(record.n_electrodes))
    if path.exists():
        try:
            if _header(path)[0] == want and path.stat().st_size >= _header(path)[1] + want[0] * want[1] * 4:
                return path
        except (ValueError, DataError, OSError):
            pass  # damaged: rewritten below
    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": want})
            n = 0
            for chunk in record.iter_chunks():
                fh.write(np.ascontiguousarray(chunk, "<f4").tobytes())
                n += len(chunk)
        if n != want[0]:
            raise DataError(f"{record.source}: delivered {n} samples, its header promised {want[0]}")
    return path


class SignalFile:
    """Random row access to one cached signal without a memory map."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.shape, self._offset = _header(self.path)
        self._fd: int | None = None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as ``(stop - start, n_electrodes)`` float32."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        row = self.shape[1] * 4
        raw = os.pread(self._fd, (stop - start) * row, self._offset + start * row)
        if len(raw) != (stop - start) * row:
            raise DataError(f"{self.path}: truncated signal cache (rows {start}-{stop})")
        return np.frombuffer(raw, "<f4").reshape(stop - start, self.shape[1])

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


class LazyWindows:
    """``(n, n_times, n_chans)`` float32 windows of cached recordings, read on demand.

    Args:
        files: one :class:`SignalFile` per record.
        rec_index: ``(n,)`` int, the record (index into ``files``) of each window.
        starts: ``(n,)`` int64, each window's first sample.
        n_times, n_chans: window length and padded electrode count.
        normalizer: a :class:`qcascade.data.Normalizer`, or None for raw (padded) windows.
        masks: per record, ``(n_chans,)`` bool live electrodes (others are zeroed).
        chans: electrodes handed out (None: all ``n_chans``).
    """

    dtype = np.dtype(np.float32)
    ndim = 3

    def __init__(self, files: Sequence[SignalFile], rec_index: np.ndarray, starts: np.ndarray, n_times: int,
                 n_chans: int, normalizer=None, masks: Sequence[np.ndarray] | None = None, chans=None):
        self.files, self.n_times, self.n_chans = list(files), int(n_times), int(n_chans)
        self.rec_index, self.starts = np.asarray(rec_index, np.int64), np.asarray(starts, np.int64)
        self.normalizer, self.masks = normalizer, masks
        self.chans = None if chans is None else np.atleast_1d(np.arange(n_chans)[chans])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.starts), self.n_times, self.n_chans if self.chans is None else len(self.chans))

    def __len__(self) -> int:
        return len(self.starts)

    def _read(self, idx: np.ndarray) -> np.ndarray:
        """Windows ``idx`` (any order), padded, normalised and channel-selected."""
        out = np.zeros((len(idx), self.n_times, self.n_chans), np.float32)
        recs = self.rec_index[idx]
        for r in np.unique(recs):
            pos = np.flatnonzero(recs == r)
            pos = pos[np.argsort(self.starts[idx[pos]], kind="stable")]
            st = self.starts[idx[pos]]
            f = self.files[r]
            # Consecutive windows share one read; far-apart ones (sampled training windows) are read alone.
            cut = np.flatnonzero(np.diff(st) > 4 * self.n_times) + 1
            for group in np.split(np.arange(len(pos)), cut):
                lo, hi = int(st[group[0]]), int(st[group[-1]]) + self.n_times
                sig = f.read(lo, hi)
                for g in group:
                    out[pos[g], :, :sig.shape[1]] = sig[st[g] - lo:st[g] - lo + self.n_times]
            if self.normalizer is not None:
                mask = self.masks[r] if self.masks is not None else None
                out[pos] = self.normalizer.transform(out[pos], mask, inplace=True)
        return out if self.chans is None else out[:, :, self.chans]

    def _rows(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return np.array([int(key) % len(self)])
        if isinstance(key, slice):
            return np.arange(*key.indices(len(self)))
        key = np.asarray(key)
        return np.flatnonzero(key) if key.dtype == bool else key.astype(np.int64)

    def __getitem__(self, key):
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if (isinstance(rows, slice) and rows == slice(None) and len(rest) == 2 and rest[0] == slice(None)
                and not isinstance(rest[1], (int, np.integer))):
            chans = np.arange(self.shape[2])[rest[1]]
            base = self.chans if self.chans is not None else np.arange(self.n_chans)
            return LazyWindows(self.files, self.rec_index, self.starts, self.n_times, self.n_chans,
                               self.normalizer, self.masks, base[chans])
        idx = self._rows(rows)
        per_window = self.n_times * self.shape[2] * 4
        if len(idx) * per_window > MAX_MATERIALISE_BYTES:
            raise DataError(f"refusing to load {len(idx)} long-term windows ({len(idx) * per_window / 2**30:.1f} GB) "
                            "at once; iterate over batches (LazyWindows.batches)")
        out = None
        for lo in range(0, len(idx), 512):  # filled in place: no second copy of the result
            part = self._read(idx[lo:lo + 512])[(slice(None),) + tuple(rest)]
            if out is None:
                out = np.empty((len(idx),) + part.shape[1:], part.dtype)
            out[lo:lo + len(part)] = part
        if out is None:
            out = self._read(idx)[(slice(None),) + tuple(rest)]
        return out[0] if isinstance(rows, (int, np.integer)) else out

    def take(self, rows) -> "LazyWindows":
        """The windows ``rows`` (indices, in the order given), again lazy."""
        idx = self._rows(rows)
        return LazyWindows(self.files, self.rec_index[idx], self.starts[idx], self.n_times, self.n_chans,
                           self.normalizer, self.masks, self.chans)

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def batches(self, batch_size: int = 256) -> Iterator[np.ndarray]:
        """Consecutive ``(b, n_times, channels)`` batches covering every window in order."""
        for lo in range(0, len(self), batch_size):
            yield self._read(np.arange(lo, min(lo + batch_size, len(self))))


def predict_batched(model, X, batch_size: int = 256) -> np.ndarray:
    """Logits ``(n, k)`` of ``model`` on an array or a :class:`LazyWindows`, batch by batch
    (a Keras model, or any object with a Keras-style ``predict``).

    The model's inference function is traced once per model and window shape and kept on the
    model: a fold predicts each deployed model on its training, validation and test windows, and
    ``model.predict`` would rebuild its input pipeline on every call.
    """
    import tensorflow as tf

    from qcascade.training.loop import make_predict_fn

    batches = X.batches(batch_size) if isinstance(X, LazyWindows) else (
        X[s:s + batch_size] for s in range(0, len(X), batch_size))
    keras = isinstance(model, tf.keras.Model)  # anything else: its own Keras-style predict()
    fns = model.__dict__.setdefault("_qcascade_predict_fns", {}) if keras else {}
    outs = []
    for b in batches:
        b = np.asarray(b, np.float32)
        if not keras:
            outs.append(np.asarray(model.predict(b, verbose=0)))
            continue
        key = tuple(b.shape[1:])
        if key not in fns:
            fns[key] = make_predict_fn(lambda x: model(x, training=False), key)
        outs.append(fns[key](as_tensor(b)).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 2), np.float32)
