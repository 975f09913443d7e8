"""The gate's sentinel (qcascade.sentinel) and how the gate walks with it (qcascade.gate)."""

from __future__ import annotations

import numpy as np
import pytest

from qcascade.config import load_config
from qcascade.errors import ConfigError
from qcascade.gate import cascade_decide
from qcascade.sentinel import (RATIO_ONE, WARMUP, SentinelSpec, input_codes, line_lengths, sentinel_ops, sentinel_up,
                               sentinel_walk)

SPEC = SentinelSpec(ratio=3.0, electrodes=2, memory_shift=3, every=4)


def test_line_length_is_the_sum_of_absolute_steps_per_electrode():
    codes = np.array([[[0, 5], [3, 5], [1, -5], [4, 0]]])  # (1 window, 4 samples, 2 electrodes)
    assert line_lengths(codes, stride=1).tolist() == [[3 + 2 + 3, 0 + 10 + 5]]
    assert line_lengths(codes, stride=2).tolist() == [[1, 10]]  # samples 0 and 2
    assert line_lengths(np.repeat(codes, 4, axis=1)).tolist() == [[3 + 2 + 3, 0 + 10 + 5]]  # the default stride 4


def test_input_codes_are_exact_for_quantized_inputs_and_saturate():
    frac = 16 - 1 - 5
    X = np.array([[[-3.0, 1.5 + 2.0 ** -frac, 40.0, -40.0]]], np.float32)
    assert input_codes(X, 16, 5).tolist() == [[[-3 * 2 ** frac, int(1.5 * 2 ** frac) + 1, 2 ** 15 - 1, -2 ** 15]]]


def _walk(L, first=None, spec=SPEC):
    first = np.r_[True, np.zeros(len(L) - 1, bool)] if first is None else first
    return sentinel_walk(np.asarray(L), spec, first)


def test_up_needs_enough_electrodes_above_ratio_times_their_own_baseline():
    base = [100, 100, 100, 0]  # the last electrode is dead
    L = [base] * 8 + [[400, 400, 100, 0], [400, 100, 100, 0], [301, 300, 100, 0], [400, 400, 100, 900]]
    up, count = _walk(L, spec=SentinelSpec(ratio=3.0, electrodes=2, memory_shift=15, every=1))  # a still baseline
    assert count.tolist()[8:] == [2, 1, 1, 3]  # 300 is not > 3 x 100; the dead electrode counts once alive
    assert up.tolist() == [False] * 8 + [True, False, False, True]


def test_never_up_during_warmup_and_the_state_restarts_with_each_recording():
    L = np.full((2 * WARMUP + 2, 3), 100)
    L[1] = L[WARMUP + 2] = 1000  # a jump inside each recording's warm-up
    L[WARMUP + 1] = 1  # the second recording's first window sets a tiny baseline
    first = np.zeros(len(L), bool)
    first[[0, WARMUP + 1]] = True
    up, count = _walk(L, first)
    assert count[1] == 3 and not up[:WARMUP].any()
    assert count[WARMUP + 2] == 3 and not up[WARMUP + 1:2 * WARMUP + 1].any()
    assert up[2 * WARMUP + 1]  # 100 > 3 x the young second baseline, after its warm-up


def test_baseline_is_a_clipped_shift_average():
    """B += (min(L, 2B) - B) >> shift: one huge window moves it by at most B >> shift."""
    L = np.array([[800], [10 ** 6], [800]])
    spec = SentinelSpec(ratio=1.5, electrodes=1, memory_shift=3, every=1)
    _, count = sentinel_walk(L, spec, np.array([True, False, False]))
    # After window 1: B = 800 + (1600 - 800) >> 3 = 900; window 2 (800) is not above 1.5 x 900.
    assert count.tolist() == [0, 1, 0]
    L2 = np.array([[800], [10 ** 6], [1351]])
    _, count2 = sentinel_walk(L2, spec, np.array([True, False, False]))
    assert count2[2] == int(RATIO_ONE * 1351 > spec.ratio_code * 900) == 1


def test_sentinel_up_does_not_depend_on_the_order_windows_are_given_in():
    rng = np.random.default_rng(0)
    n, t, c = 40, 32, 6
    X = (rng.standard_normal((n, t, c)) * 0.1).astype(np.float32)
    X[25:30, :, :3] *= 20  # a burst on three electrodes of recording "a"
    rec = np.array(["a"] * 30 + ["b"] * 10)
    start = np.r_[np.arange(30), np.arange(10)].astype(float)
    up = sentinel_up(X, rec, start, SPEC, 16, 5)
    assert up[25] and not up[:25].any()
    perm = rng.permutation(n)
    assert np.array_equal(sentinel_up(X[perm], rec[perm], start[perm], SPEC, 16, 5), up[perm])


def test_gate_routes_one_window_in_every_while_the_sentinel_is_up():
    n = 12
    zs = np.tile([[3.0, -3.0]], (n, 1))  # a confident "interictal" simple model
    zc = np.tile([[-1.0, 1.0]], (n, 1))
    up = np.zeros(n, bool)
    up[2:10] = True
    off = cascade_decide(zs, zc, 0.5, rule="confidence")
    assert not off["routed"].any()
    dec = cascade_decide(zs, zc, 0.5, rule="confidence", sentinel=up, sentinel_every=4)
    # gap counts unrouted windows: routed when up and gap >= 3 (windows 3 and 7), then gap restarts.
    assert np.flatnonzero(dec["routed"]).tolist() == [3, 7]
    every1 = cascade_decide(zs, zc, 0.5, rule="confidence", sentinel=up, sentinel_every=1)
    assert np.array_equal(every1["routed"], up)
    # confirm_changes: once the complex model calls the seizure, the simple model's "interictal"
    # is a change of state, so the complex model keeps it to the end of the sentinel's look.
    cc = cascade_decide(zs, zc, 0.5, rule="confirm_changes", sentinel=up, sentinel_every=4)
    assert np.flatnonzero(cc["routed"]).tolist() == list(range(3, n))
    with pytest.raises(ValueError, match="sentinel must have shape"):
        cascade_decide(zs, zc, 0.5, sentinel=up[:-1])


def test_sentinel_without_up_windows_decides_like_no_sentinel():
    rng = np.random.default_rng(1)
    zs, zc = rng.standard_normal((50, 2)), rng.standard_normal((50, 2))
    for rule in ("confidence", "confirm_changes", "confirm_ictal_hold"):
        for probe in (0, 5):
            a = cascade_decide(zs, zc, 0.3, rule=rule, probe_every=probe)
            b = cascade_decide(zs, zc, 0.3, rule=rule, probe_every=probe, sentinel=np.zeros(50, bool), sentinel_every=3)
            assert np.array_equal(a["pred"], b["pred"]) and np.array_equal(a["routed"], b["routed"])


def test_sentinel_cost_counts_every_sample_of_every_electrode():
    assert sentinel_ops(128, 512) == 128 * 127 + 2 * 128  # 128 samples of each electrode read


@pytest.mark.parametrize("key,value,match", [
    ("gate_sentinel_ratio", 1.0, "gate_sentinel_ratio"),
    ("gate_sentinel_memory", 24, "power of 2"),
    ("gate_sentinel_every", 0, "gate_sentinel_every"),
    ("gate_sentinel_electrodes", 0, "gate_sentinel_electrodes"),
])
def test_config_rejects_bad_sentinel_values(key, value, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides={"train": {key: value}, "hls": {"enabled": False}})


def test_config_refuses_the_sentinel_with_the_hardware_flow():
    with pytest.raises(ConfigError, match="not in the generated C\\+\\+ top level"):
        load_config(overrides={"train": {"gate_sentinel_ratio": 3.0}})
    cfg = load_config(overrides={"train": {"gate_sentinel_ratio": 3.0, "gate_sentinel_memory": 32},
                                 "hls": {"enabled": False}})
    spec = cfg.train.sentinel_spec()
    assert (spec.ratio_code, spec.memory_shift, spec.electrodes, spec.every) == (48, 5, 3, 4)
    assert load_config().train.sentinel_spec() is None
