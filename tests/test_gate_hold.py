"""The gate's hold (``train.gate_hold``): the walk, its state, the config and the gate variants."""

from __future__ import annotations

import numpy as np
import pytest

from bench.replay_gate_hold import hold_walk
from qcascade.config import ConfigError
from qcascade.config_train import TrainConfig
from qcascade.gate import cascade_decide, check_hold, simple_is_final, uses_state
from qcascade.steps_choose import gate_candidates


def logits(d):
    """``(n, 2)`` logits with difference ``z1 - z0 = d``."""
    d = np.asarray(d, np.float64)
    return np.stack([np.zeros_like(d), d], 1)


def flicker():
    """A seizure the simple model calls interictal throughout; the complex model sees it but says
    interictal once (window 3): under confirm_changes the walk then never routes again."""
    zs = logits([-9.0] * 10)
    zc = logits([-2.0, -2.0, 3.0, -1.0, 3.0, 3.0, 3.0, 3.0, -3.0, -3.0])
    return zs, zc


def test_hold_keeps_a_seizure_the_complex_model_flickers_on():
    zs, zc = flicker()
    # The simple model is confident and never changes state: only a probe (period 3) routes, first window 2.
    plain = cascade_decide(zs, zc, 0.5, rule="confirm_changes", probe_every=3, hold=0)
    held = cascade_decide(zs, zc, 0.5, rule="confirm_changes", probe_every=3, hold=2)
    assert plain["routed"].tolist()[:4] == [False, False, True, True] and not plain["routed"][4]
    assert plain["pred"][4:8].tolist() == [0, 0, 1, 1]  # the probe finds the seizure again only at 6
    # The hold routes 4 (held from window 2) and, once 4 is ictal, 5 and 6 again, and so on.
    assert held["routed"][2:10].all()
    assert held["pred"][4:8].tolist() == [1, 1, 1, 1]
    assert held["held"][3:6].tolist() == [2, 1, 2]
    # The state the walk reports is what the C++ top level loads: it decides every window as the walk did.
    final = simple_is_final(zs, 0.5, "confirm_changes", held["prev_cls"], held["gap"], 3, held=held["held"])
    assert np.array_equal(final, ~held["routed"])


@pytest.mark.parametrize("rule", ["confidence", "confirm_changes", "confirm_ictal_hold"])
@pytest.mark.parametrize("hold", [0, 1, 3])
def test_walk_equals_the_replay_and_restarts_at_each_recording(rule, hold):
    rng = np.random.default_rng(7)
    zs, zc = rng.normal(0, 3, (80, 2)), rng.normal(0, 2, (80, 2))
    rec = np.array(["a"] * 37 + ["b"] * 43)
    start = np.r_[np.arange(37.0), np.arange(43.0)][::-1].copy()  # reversed: the walk sorts by time
    out = cascade_decide(zs, zc, 0.6, rule=rule, record_ids=rec, start_s=start, probe_every=6, hold=hold)
    pred, routed = hold_walk(zs, zc, 0.6, rule=rule, record_ids=rec, start_s=start, hold=hold, probe_every=6)
    assert np.array_equal(out["pred"], pred) and np.array_equal(out["routed"], routed)
    first = [int(np.argmin(np.where(rec == r, start, np.inf))) for r in ("a", "b")]
    assert out["held"][first].tolist() == [0, 0]
    assert out["held"].max() <= hold
    final = simple_is_final(zs, 0.6, rule, out["prev_cls"], out["gap"], 6, held=out["held"])
    assert np.array_equal(final, ~out["routed"])
    if hold == 0:
        assert not out["held"].any()
        assert np.array_equal(out["routed"], cascade_decide(zs, zc, 0.6, rule=rule, record_ids=rec, start_s=start,
                                                            probe_every=6, hold=0)["routed"])
    else:
        plain = cascade_decide(zs, zc, 0.6, rule=rule, record_ids=rec, start_s=start, probe_every=6, hold=0)
        assert out["routed"].sum() >= plain["routed"].sum()


def test_hold_is_state_and_is_checked():
    assert uses_state("confidence", hold=2) and not uses_state("confidence")
    assert check_hold(255) == 255
    for bad in (-1, 256, 1.5, True):
        with pytest.raises(ValueError, match="hold must be"):
            check_hold(bad)
    with pytest.raises(ConfigError, match="gate_hold"):
        TrainConfig(gate_hold=300)


def test_gate_candidates_measure_the_hold_against_no_hold():
    names = [v[0] for v in gate_candidates(TrainConfig(gate_hold=2, gate_sentinel_ratio=0), 0)]
    assert names == ["confidence+hold2", "confirm_changes+hold2", "confirm_ictal_hold+hold2",
                     "confidence", "confirm_changes", "confirm_ictal_hold"]
    assert [v[5] for v in gate_candidates(TrainConfig(gate_hold=2, gate_sentinel_ratio=0), 0)] == [2, 2, 2, 0, 0, 0]


def test_growing_hold_keeps_a_seizure_through_a_dip_the_fixed_hold_drops():
    """The growing hold (``train.gate_hold_max``): each window in a row the complex model confirms a
    seizure against the simple model holds it one window longer, so a three-window dip of its answer
    inside the seizure does not hand the seizure back to the confidently wrong simple model."""
    zs = logits([-9.0] * 14)
    zc = logits([-2.0, -2.0] + [3.0] * 5 + [-3.0] * 3 + [3.0] * 2 + [-3.0] * 2)
    kw = dict(rule="confirm_changes", probe_every=3, hold=2)
    fixed = cascade_decide(zs, zc, 0.5, **kw)
    grown = cascade_decide(zs, zc, 0.5, hold_max=8, **kw)
    assert grown["held"][2:12].tolist() == [0, 2, 3, 4, 5, 6, 5, 4, 3, 4]
    assert fixed["held"][2:12].tolist() == [0, 2, 2, 2, 2, 2, 1, 0, 0, 0]
    assert grown["routed"][2:12].all() and not fixed["routed"][9:11].all()
    assert grown["pred"][10] == 1 and fixed["pred"][10] == 0  # the seizure's return after the dip
    final = simple_is_final(zs, 0.5, "confirm_changes", grown["prev_cls"], grown["gap"], 3, held=grown["held"])
    assert np.array_equal(final, ~grown["routed"])


def test_growing_hold_holds_a_one_window_false_alarm_as_the_fixed_hold_does():
    zs = logits([-9.0] * 10)
    zc = logits([-2.0, -2.0, 3.0] + [-3.0] * 7)
    kw = dict(rule="confirm_changes", probe_every=3, hold=2)
    fixed, grown = cascade_decide(zs, zc, 0.5, **kw), cascade_decide(zs, zc, 0.5, hold_max=8, **kw)
    for key in ("pred", "routed", "held"):
        assert np.array_equal(fixed[key], grown[key])


@pytest.mark.parametrize("hold,hold_max", [(2, 0), (3, 2), (3, 3), (1, 6), (2, 8)])
def test_growing_hold_state_is_what_the_design_loads(hold, hold_max):
    rng = np.random.default_rng(11)
    zs, zc = rng.normal(0, 3, (120, 2)), rng.normal(0.5, 2, (120, 2))
    rec = np.array(["a"] * 50 + ["b"] * 70)
    start = np.r_[np.arange(50.0), np.arange(70.0)]
    out = cascade_decide(zs, zc, 0.6, rule="confirm_changes", record_ids=rec, start_s=start, probe_every=5,
                         hold=hold, hold_max=hold_max)
    fixed = cascade_decide(zs, zc, 0.6, rule="confirm_changes", record_ids=rec, start_s=start, probe_every=5, hold=hold)
    assert out["held"].max() <= max(hold, hold_max) and out["held"][[0, 50]].tolist() == [0, 0]
    final = simple_is_final(zs, 0.6, "confirm_changes", out["prev_cls"], out["gap"], 5, held=out["held"])
    assert np.array_equal(final, ~out["routed"])
    pred, routed = hold_walk(zs, zc, 0.6, rule="confirm_changes", record_ids=rec, start_s=start, hold=hold,
                             probe_every=5, hold_max=hold_max)  # the round-26 replay's own walk
    assert np.array_equal(pred, out["pred"]) and np.array_equal(routed, out["routed"])
    if hold_max <= hold:  # at most the hold: the fixed hold, window for window
        assert all(np.array_equal(out[k], fixed[k]) for k in ("pred", "routed", "held"))
    else:
        assert out["held"].max() > hold and out["routed"].sum() >= fixed["routed"].sum()


def test_hold_ceiling_and_config():
    from qcascade.gate import DEFAULT_HOLD_MAX, hold_ceiling

    assert hold_ceiling(2, 8) == 8 and hold_ceiling(3, 2) == 3 and hold_ceiling(2, None) == 2
    assert hold_ceiling(0, 8) == 0  # no hold, nothing to grow
    for bad in (-1, 256, 2.5, True):
        with pytest.raises(ValueError, match="hold_max must be"):
            hold_ceiling(2, bad)
    assert TrainConfig().gate_hold_max == DEFAULT_HOLD_MAX == 8
    with pytest.raises(ConfigError, match="train.gate_hold_max"):
        TrainConfig(gate_hold_max=256)
