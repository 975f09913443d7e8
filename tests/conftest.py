"""Shared fixtures for the model / quantization / conversion tests.

Windows come from the synthetic cohort (``qcascade.data.synthetic``) when it is importable, else from
a tiny built-in generator (noise + rhythmic bursts). Either way: ``X`` ``(n, 512, 128)`` float32,
robust-normalised per electrode, zero-padded to 128 electrodes, balanced labels.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

N_TIMES, N_CHANS = 512, 128


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running (hls4ml compile, training); deselect with "
                                       "-m 'not slow'")


def _windows_builtin(n_per_class: int, seed: int):
    rng = np.random.default_rng(seed)
    n_el, soz = 32, [10, 11]
    n = 2 * n_per_class
    X = rng.normal(size=(n, N_TIMES, n_el)).astype(np.float32)
    y = np.repeat([0, 1], n_per_class)
    t = np.arange(N_TIMES) / 512.0
    for i in np.flatnonzero(y):
        f = rng.uniform(3, 9)
        X[i][:, soz] += (3 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)))[:, None]
    return X, y, n_el, soz


def make_windows(n_per_class: int = 150, seed: int = 0) -> dict:
    """Balanced windows: ``{"X": (n,512,128), "y": (n,), "mask": (128,) bool, "soz": [int]}``."""
    try:
        from qcascade.models.summary import synthetic_windows

        return synthetic_windows(n_per_class, seed)
    except ImportError:  # the synthetic cohort module is optional for these tests
        X, y, n_el, soz = _windows_builtin(n_per_class, seed)
    Xp = np.zeros((len(y), N_TIMES, N_CHANS), np.float32)
    Xp[:, :, :n_el] = X
    mask = np.zeros(N_CHANS, bool)
    mask[:n_el] = True
    return {"X": Xp, "y": y, "mask": mask, "soz": soz}


@pytest.fixture(scope="session")
def windows() -> dict:
    """~300 balanced multi-electrode windows (see :func:`make_windows`)."""
    return make_windows()


@pytest.fixture(scope="session")
def policy():
    from qcascade.quant import QuantPolicy

    return QuantPolicy()


@pytest.fixture
def random_gate_inputs():
    """Random ``(300, 2)`` simple and complex logits over three recordings of 100 windows given out of
    time order, and a sentinel up on 40 % of them: ``(zs, zc, record_ids, start_s, sentinel)``."""
    rng = np.random.default_rng(0)
    n = 300
    zs, zc = rng.standard_normal((n, 2)) * 2, rng.standard_normal((n, 2)) * 2
    rec = np.repeat(["a", "b", "c"], 100)
    start = np.tile(np.arange(100, dtype=float), 3)[rng.permutation(n)]
    return zs, zc, rec, start, rng.random(n) < 0.4
