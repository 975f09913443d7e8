"""Aligned window arrays and the copy-free hand-over to TensorFlow (qcascade/data/aligned.py,
qcascade/tensors.py)."""

import numpy as np
import pytest

from qcascade.data.aligned import (ALIGN, aligned, aligned_concat, aligned_empty, aligned_take, aligned_zeros,
                                   is_aligned)


@pytest.mark.parametrize("make", [aligned_empty, aligned_zeros])
@pytest.mark.parametrize("shape", [(0, 512, 3), (1,), (7, 33, 5), (300, 512, 128)])
def test_new_arrays_start_on_the_boundary(make, shape):
    X = make(shape, np.float32)
    assert X.shape == shape and X.dtype == np.float32 and is_aligned(X)
    assert X.size == 0 or X.ctypes.data % ALIGN == 0
    if make is aligned_zeros:
        assert not X.any()


def test_take_concat_and_copy_equal_numpy_and_are_aligned():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 16, 5)).astype(np.float32)[1:]  # a view off the boundary
    idx = rng.permutation(len(X))[:20]
    mask = rng.random(len(X)) < 0.5
    for got, want in ((aligned_take(X, idx), X[idx]), (aligned_take(X, mask), X[mask]),
                      (aligned_concat([X[:3], X[10:]]), np.concatenate([X[:3], X[10:]])), (aligned(X), X)):
        assert is_aligned(got) and np.array_equal(got, want)
    A = aligned(X)
    assert aligned(A) is A  # already aligned: no copy


def test_aligned_window_batches_reach_tensorflow_without_a_copy():
    from qcascade.tensors import as_tensor

    X = aligned(np.random.default_rng(1).normal(size=(8, 512, 16)).astype(np.float32))
    t = as_tensor(X[4:8])
    assert np.array_equal(t.numpy(), X[4:8])
    X[4, 0, 0] = 123.0  # the tensor shares the buffer (what makes it free)
    assert float(t[0, 0, 0]) == 123.0


@pytest.mark.parametrize("case", ["unaligned", "strided", "readonly", "float64", "empty"])
def test_other_arrays_are_copied_with_the_same_values(case):
    from qcascade.tensors import as_tensor

    base = aligned(np.random.default_rng(2).normal(size=(6, 64, 4)).astype(np.float32))
    X = {"unaligned": base.reshape(-1)[1:257].reshape(4, 64), "strided": base[:, :, 1:2],
         "readonly": base.copy(), "float64": base.astype(np.float64), "empty": base[:0]}[case]
    if case == "readonly":
        X.flags.writeable = False
    t = as_tensor(X)
    assert t.dtype.name == "float32" and np.array_equal(t.numpy(), X.astype(np.float32))
    if X.size:
        before = float(t.numpy().ravel()[0])
        if X.flags.writeable:
            X.reshape(-1)[0] = before + 1.0 if X.flags.c_contiguous else X.flat[0] + 1.0
        assert float(t.numpy().ravel()[0]) == before  # a copy: later writes do not reach it

