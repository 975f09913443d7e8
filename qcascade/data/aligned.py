"""Window arrays whose buffers start on a 64-byte boundary.

TensorFlow reads such a float32 array without copying it (:func:`qcascade.tensors.as_tensor`);
any other array is copied twice on the way in (docs/evaluation.md, "Time"). The window sets are
built here once, and every batch sliced from them along the first axis stays aligned whenever a
window's size is a multiple of 64 bytes (``n_times * n_chans * 4``; always so for 512 samples).
"""

from __future__ import annotations

import numpy as np

ALIGN = 64  # bytes: Eigen's largest alignment (AVX-512), what TensorFlow checks before sharing a buffer

__all__ = ["ALIGN", "is_aligned", "aligned_empty", "aligned_zeros", "aligned", "aligned_take", "aligned_concat"]


def is_aligned(X: np.ndarray) -> bool:
    """True if ``X`` is C-contiguous, writeable and starts on an ``ALIGN``-byte boundary (or is empty)."""
    return bool(X.flags.c_contiguous and X.flags.writeable and (X.size == 0 or X.ctypes.data % ALIGN == 0))


def _aligned(alloc, shape, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = alloc(n + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + n].view(dtype).reshape(shape)


def aligned_empty(shape, dtype=np.float32) -> np.ndarray:
    """Uninitialised array of ``shape`` whose data starts on an ``ALIGN``-byte boundary."""
    return _aligned(np.empty, shape, dtype)


def aligned_zeros(shape, dtype=np.float32) -> np.ndarray:
    """Zeros of ``shape``, aligned like :func:`aligned_empty` (pages zeroed lazily, as ``np.zeros``)."""
    return _aligned(np.zeros, shape, dtype)


def aligned(X: np.ndarray) -> np.ndarray:
    """``X`` itself if aligned, else an aligned copy."""
    X = np.asarray(X)
    if is_aligned(X):
        return X
    out = aligned_empty(X.shape, X.dtype)
    np.copyto(out, X)
    return out


def aligned_take(X: np.ndarray, idx) -> np.ndarray:
    """``X[idx]`` along the first axis (``idx``: integer indices or a boolean mask), aligned."""
    idx = np.asarray(idx)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    out = aligned_empty((len(idx), *X.shape[1:]), X.dtype)
    np.take(X, idx, axis=0, out=out)
    return out


def aligned_concat(arrays) -> np.ndarray:
    """``np.concatenate(arrays)`` along the first axis, aligned."""
    arrays = [np.asarray(a) for a in arrays]
    out = aligned_empty((sum(len(a) for a in arrays), *arrays[0].shape[1:]), np.result_type(*arrays))
    return np.concatenate(arrays, out=out)
