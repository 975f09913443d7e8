"""The cascade gate's rules: textbook confidence, confirm_ictal, hold (qcascade.training.gate)."""

import numpy as np
import pytest
import tensorflow as tf

from qcascade.errors import ConfigError
from qcascade.training import TrainConfig
from qcascade.training.gate import GateRule, cascade_decide, cascade_predict, simple_is_final
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
    pred, routed = cascade_predict(zs, zc, 0.5)
    assert routed.tolist() == [False, True, True, False]
    assert pred.tolist() == [0, 1, 0, 1]
    assert simple_is_final(zs, 0.5).tolist() == [True, False, False, True]


def test_confirm_ictal_sends_every_ictal_call_to_the_complex_model():
    zs = logits([-3.0, -0.5, 0.5, 3.0, -T05])
    zc = logits([5.0, 5.0, -5.0, -5.0, 5.0])
    pred, routed = cascade_predict(zs, zc, 0.5, confirm_ictal=True)
    # only "confidently interictal" (-d > T) is final; -d == T is not (strict >)
    assert routed.tolist() == [False, True, True, True, True]
    assert pred.tolist() == [0, 1, 0, 0, 1]


def test_hold_keeps_a_seizure_with_the_complex_model_until_it_says_interictal():
    # simple: ictal at 1, then confidently interictal; complex: ictal at 1-3, interictal at 4
    d = [-4.0, 4.0, -4.0, -4.0, -4.0, -4.0]
    c = [-5.0, 5.0, 5.0, 5.0, -5.0, 5.0]
    out = cascade_decide(logits(d), logits(c), 0.5, hold=True)
    assert out["prev_cls"].tolist() == [0, 0, 1, 1, 1, 0]
    assert out["routed"].tolist() == [False, False, True, True, True, False]
    # window 1: the simple model is confident, so its ictal call is final (no confirm_ictal)
    assert out["pred"].tolist() == [0, 1, 1, 1, 0, 0]
    # without the hold windows 2-3 would be missed
    assert cascade_predict(logits(d), logits(c), 0.5)[0].tolist() == [0, 1, 0, 0, 0, 0]


def test_hold_follows_time_order_and_stops_at_recording_boundaries():
    d = np.array([-4.0, 4.0, -4.0, -4.0, -4.0])
    c = np.array([5.0, 5.0, 5.0, 5.0, 5.0])
    rec = np.array(["a", "a", "a", "b", "b"])
    start = np.arange(5.0)
    ref = cascade_decide(logits(d), logits(c), 0.5, hold=True, record_ids=rec, start_s=start)
    # the hold carries a -> a but not a -> b: b's first window is the simple model's
    assert ref["routed"].tolist() == [False, False, True, False, False]
    assert ref["prev_cls"].tolist() == [0, 0, 1, 0, 0]
    perm = np.random.default_rng(0).permutation(5)  # the input order must not matter
    shuffled = cascade_decide(logits(d[perm]), logits(c[perm]), 0.5, hold=True, record_ids=rec[perm],
                              start_s=start[perm])
    for key in ("pred", "routed", "prev_cls"):
        assert np.array_equal(shuffled[key], ref[key][perm]), key
    with pytest.raises(ValueError, match="shape"):
        cascade_decide(logits(d), logits(c), 0.5, hold=True, record_ids=rec[:3], start_s=start)


@pytest.mark.parametrize("confirm", [False, True])
def test_rule_matches_a_sequential_reference(confirm):
    rng = np.random.default_rng(1)
    zs, zc = rng.normal(scale=2.5, size=(400, 2)), rng.normal(scale=2.5, size=(400, 2))
    out = cascade_decide(zs, zc, 0.4, confirm_ictal=confirm, hold=True)
    thr, last = logit_threshold(0.4), 0
    for i in range(400):
        d = zs[i, 1] - zs[i, 0]
        final = (-d if confirm else abs(d)) > thr and last == 0
        assert out["routed"][i] == (not final) and out["prev_cls"][i] == last
        last = int(zs[i].argmax() if final else zc[i].argmax())
        assert out["pred"][i] == last
    assert 0 < out["routed"].mean() < 1


def test_soft_gate_follows_the_rule():
    z = tf.constant(logits([-6.0, 0.0, 6.0]), tf.float32)
    sym = soft_routing(z, 0.5, 10.0).numpy()
    conf = soft_routing(z, 0.5, 10.0, confirm_ictal=True).numpy()
    assert sym[0] < 0.01 and sym[1] > 0.99 and sym[2] < 0.01
    assert conf[0] < 0.01 and conf[1] > 0.99 and conf[2] > 0.99  # a confident ictal call routes


def test_calibration_uses_the_rule():
    """A simple model confidently wrong inside a seizure: only the hold lets a tau < 1 recover it."""
    y = np.array([0] * 10 + [1] * 10 + [0] * 10)
    d = np.where(y == 1, 4.0, -4.0)
    d[14:17] = -4.0  # confidently missed, mid-seizure
    zc = logits(np.where(y == 1, 5.0, -5.0))
    kw = dict(macs_simple=1.0, macs_complex=100.0, margin=0.0, grid=[0.0, 0.5, 0.9, 1.0])
    tau_plain, sweep_plain = calibrate_tau(logits(d), zc, y, **kw)
    tau_hold, sweep_hold = calibrate_tau(logits(d), zc, y, hold=True, **kw)
    assert tau_plain == 1.0  # the textbook gate must route everything to keep F1
    assert tau_hold < 1.0 and sweep_hold[0]["f1"] == 1.0 and sweep_hold[0]["routing_rate"] < 0.5
    assert sweep_plain[0]["f1"] < 1.0


def test_config_switches():
    cfg = TrainConfig()
    assert GateRule.from_config(cfg).describe() == "confirm+hold"
    off = TrainConfig.from_dict({"gate_confirm_ictal": False, "gate_hold": False})
    assert GateRule.from_config(off) == GateRule()
    with pytest.raises(ConfigError, match="train.gate_hold"):
        TrainConfig.from_dict({"gate_hold": "yes"})
