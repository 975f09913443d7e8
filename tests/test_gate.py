"""The cascade gate's rules: confidence, confirm_changes, confirm_ictal_hold (qcascade.gate)."""

import numpy as np
import pytest
import tensorflow as tf

from qcascade.errors import ConfigError
from qcascade.config_train import TrainConfig
from qcascade.gate import GATE_RULES, cascade_decide, cascade_predict, simple_is_final
from qcascade.training.loss import soft_routing
from qcascade.training.tau import calibrate_tau, logit_threshold

T05 = logit_threshold(0.5)  # 2*atanh(0.5) = 1.0986


def logits(d):
    """Simple-model logits with z1 - z0 = d."""
    d = np.asarray(d, np.float64)
    return np.stack([np.zeros_like(d), d], 1)


def test_textbook_rule_is_the_default_and_symmetric():
    zs = logits([-3.0, -0.5, 0.5, 3.0])
    zc = logits([5.0, 5.0, -5.0, -5.0])
    pred, routed = cascade_predict(zs, zc, 0.5, rule="confidence")
    assert routed.tolist() == [False, True, True, False]
    assert pred.tolist() == [0, 1, 0, 1]
    assert simple_is_final(zs, 0.5, "confidence").tolist() == [True, False, False, True]


def test_confirm_ictal_hold_sends_every_ictal_call_to_the_complex_model():
    zs = logits([-3.0, -0.5, 0.5, 3.0, -T05])
    zc = logits([-5.0, 5.0, -5.0, -5.0, 5.0])
    out = cascade_decide(zs, zc, 0.5, rule="confirm_ictal_hold")
    # only "confidently interictal" (-d > T, strict) with prev == 0 is final
    assert out["routed"].tolist() == [False, True, True, True, True]
    assert out["pred"].tolist() == [0, 1, 0, 0, 1]
    assert out["prev_cls"].tolist() == [0, 0, 1, 0, 0]


def test_confirm_ictal_hold_keeps_a_seizure_with_the_complex_model():
    d = [-4.0, 4.0, -4.0, -4.0, -4.0, -4.0]
    c = [-5.0, 5.0, 5.0, 5.0, -5.0, 5.0]
    out = cascade_decide(logits(d), logits(c), 0.5, rule="confirm_ictal_hold")
    assert out["routed"].tolist() == [False, True, True, True, True, False]
    assert out["pred"].tolist() == [0, 1, 1, 1, 0, 0]


def test_confirm_changes_lets_the_simple_model_continue_but_not_change_state():
    # simple: confident throughout; ictal at 1-3 and 6, a confident drop-out at 4 mid-seizure
    d = [-4.0, 4.0, 4.0, 4.0, -4.0, 4.0, -4.0, 4.0, -4.0]
    c = [-5.0, 5.0, -5.0, 5.0, 5.0, 5.0, -5.0, -5.0, 5.0]
    out = cascade_decide(logits(d), logits(c), 0.5, rule="confirm_changes")
    # 1: onset proposed -> complex confirms; 2-3: continue alone; 4: drop-out -> complex says
    # still ictal; 5: continue; 6: end proposed -> confirmed; 7: false alarm -> rejected; 8: continue
    assert out["routed"].tolist() == [False, True, False, False, True, False, True, True, False]
    assert out["pred"].tolist() == [0, 1, 1, 1, 1, 1, 0, 0, 0]
    assert out["prev_cls"].tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0]
    # the textbook gate keeps the drop-out and the false alarm
    assert cascade_predict(logits(d), logits(c), 0.5, rule="confidence")[0].tolist() == [0, 1, 1, 1, 0, 1, 0, 1, 0]


@pytest.mark.parametrize("rule", ["confirm_changes", "confirm_ictal_hold"])
def test_prev_follows_time_order_and_stops_at_recording_boundaries(rule):
    d = np.array([-4.0, 4.0, 4.0, 4.0, 4.0])
    c = np.array([5.0, 5.0, 5.0, -5.0, 5.0])
    rec = np.array(["a", "a", "a", "b", "b"])
    start = np.arange(5.0)
    ref = cascade_decide(logits(d), logits(c), 0.5, rule=rule, record_ids=rec, start_s=start)
    assert ref["prev_cls"].tolist() == [0, 0, 1, 0, 0]  # b starts afresh, not from a's last 1
    perm = np.random.default_rng(0).permutation(5)  # the input order must not matter
    shuffled = cascade_decide(logits(d[perm]), logits(c[perm]), 0.5, rule=rule, record_ids=rec[perm],
                              start_s=start[perm])
    for key in ("pred", "routed", "prev_cls"):
        assert np.array_equal(shuffled[key], ref[key][perm]), key
    with pytest.raises(ValueError, match="shape"):
        cascade_decide(logits(d), logits(c), 0.5, rule=rule, record_ids=rec[:3], start_s=start)


@pytest.mark.parametrize("rule", GATE_RULES)
def test_rule_matches_a_sequential_reference(rule):
    rng = np.random.default_rng(1)
    zs, zc = rng.normal(scale=2.5, size=(400, 2)), rng.normal(scale=2.5, size=(400, 2))
    out = cascade_decide(zs, zc, 0.4, rule=rule)
    thr, last = logit_threshold(0.4), 0
    for i in range(400):
        d = zs[i, 1] - zs[i, 0]
        final = {"confidence": abs(d) > thr,
                 "confirm_changes": abs(d) > thr and int(d > 0) == last,
                 "confirm_ictal_hold": -d > thr and last == 0}[rule]
        assert out["routed"][i] == (not final) and out["prev_cls"][i] == last
        last = int(zs[i].argmax() if final else zc[i].argmax())
        assert out["pred"][i] == last
    assert 0 < out["routed"].mean() < 1
    with pytest.raises(ValueError, match="gate rule"):
        cascade_decide(zs, zc, 0.4, rule="oracle")


def test_soft_gate_follows_the_rule():
    z = tf.constant(logits([-6.0, 0.0, 6.0]), tf.float32)
    sym = soft_routing(z, 0.5, 10.0, rule="confidence").numpy()
    conf = soft_routing(z, 0.5, 10.0, rule="confirm_ictal_hold").numpy()
    assert sym[0] < 0.01 and sym[1] > 0.99 and sym[2] < 0.01
    assert conf[0] < 0.01 and conf[1] > 0.99 and conf[2] > 0.99  # a confident ictal call routes


def test_calibration_uses_the_rule():
    """A simple model confidently wrong inside a seizure: confirm_changes recovers it at tau < 1."""
    y = np.array([0] * 10 + [1] * 10 + [0] * 10)
    d = np.where(y == 1, 4.0, -4.0)
    d[14:17] = -4.0  # confidently missed, mid-seizure
    zc = logits(np.where(y == 1, 5.0, -5.0))
    kw = dict(macs_simple=1.0, macs_complex=100.0, margin=0.0, grid=[0.0, 0.5, 0.9, 1.0])
    v0 = dict(routing_tolerance=0.0, reference_f1="complex_only", margin_windows=0)  # defaults then
    tau_plain, sweep_plain = calibrate_tau(logits(d), zc, y, rule="confidence", **v0, **kw)
    tau_hold, sweep_hold = calibrate_tau(logits(d), zc, y, rule="confirm_changes", **v0, **kw)
    assert tau_plain == 1.0  # the textbook gate must route everything to keep F1
    assert tau_hold < 1.0 and sweep_hold[0]["f1"] == 1.0 and sweep_hold[0]["routing_rate"] < 0.5
    assert sweep_plain[0]["f1"] < 1.0


def test_config_gate_rule():
    assert TrainConfig().gate == "confirm_changes"
    assert TrainConfig.from_dict({"gate": "confidence"}).gate == "confidence"
    with pytest.raises(ConfigError, match="train.gate"):
        TrainConfig.from_dict({"gate": "hold"})


@pytest.mark.parametrize("rule", GATE_RULES)
def test_two_thresholds_match_a_sequential_reference(rule):
    """``tau_interictal``: ``d > T`` or ``-d > T_i`` is confident; None is the one-threshold gate."""
    rng = np.random.default_rng(2)
    zs, zc = rng.normal(scale=2.5, size=(400, 2)), rng.normal(scale=2.5, size=(400, 2))
    tau, tau_i = 0.6, 0.2
    out = cascade_decide(zs, zc, tau, rule=rule, tau_interictal=tau_i)
    thr, thr_i, last = logit_threshold(tau), logit_threshold(tau_i), 0
    for i in range(400):
        d = zs[i, 1] - zs[i, 0]
        confident = d > thr or -d > thr_i
        final = {"confidence": confident, "confirm_changes": confident and int(d > 0) == last,
                 "confirm_ictal_hold": -d > thr_i and last == 0}[rule]
        assert out["routed"][i] == (not final)
        last = int(zs[i].argmax() if final else zc[i].argmax())
    one = cascade_decide(zs, zc, tau, rule=rule)
    assert out["routed"].sum() < one["routed"].sum()
    for key in ("pred", "routed"):
        assert np.array_equal(cascade_decide(zs, zc, tau, rule=rule, tau_interictal=tau)[key], one[key])
        assert np.array_equal(cascade_decide(zs, zc, tau, rule=rule, tau_interictal=None)[key], one[key])
    with pytest.raises(ValueError, match="tau_interictal"):
        cascade_decide(zs, zc, tau, rule=rule, tau_interictal=0.7)


def test_two_thresholds_only_move_the_interictal_side():
    zs = logits([-3.0, -0.5, 0.5, 3.0])
    zc = logits([5.0, 5.0, -5.0, -5.0])
    assert cascade_predict(zs, zc, 0.5, rule="confidence")[1].tolist() == [False, True, True, False]
    pred, routed = cascade_predict(zs, zc, 0.5, rule="confidence", tau_interictal=0.1)
    assert routed.tolist() == [False, False, True, False]  # -0.5 < -2*atanh(0.1) = -0.2: final
    assert pred.tolist() == [0, 0, 0, 1]
