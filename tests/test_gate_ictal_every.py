"""The gate's ictal stride (qcascade.gate, "Ictal stride"; train.gate_ictal_every): inside a seizure the
complex model has confirmed against the simple model, it decides one window in K and the others keep the
ictal state."""

import numpy as np
import pytest

from qcascade.config import load_config
from qcascade.errors import ConfigError
from qcascade.gate import cascade_decide, check_ictal_every
from qcascade.gate_args import gate_rule
from qcascade.hls.manifest import carried_reference
from qcascade.routing_reasons import routing_reasons
from qcascade.training.tau import logit_threshold


def logits(d):
    d = np.asarray(d, np.float64)
    return np.stack([np.zeros_like(d), d], 1)


def test_a_seizure_the_simple_model_misses_is_asked_every_other_window_once_the_hold_has_grown():
    # The simple model says interictal throughout; the complex model sees a seizure on windows 2-11.
    zs = logits(np.full(16, -6.0))
    zc = logits([-4, -4] + [5] * 10 + [-4] * 4)
    kw = dict(rule="confirm_changes", probe_every=1, hold=2, hold_max=8)  # a probe on every window: all asked
    every = cascade_decide(zs, zc, 0.5, **kw)
    two = cascade_decide(zs, zc, 0.5, ictal_every=2, **kw)
    assert every["routed"].all()
    # Windows 2 and 3 confirm the seizure (held 2 -> 3 > H); from then on every other window is carried,
    # and after the seizure the hold routes the rest.
    assert two["routed"].tolist() == [True] * 4 + [False, True] * 5 + [True] * 2
    assert two["pred"].tolist() == [0, 0] + [1] * 10 + [1, 0, 0, 0]  # the end is seen one window late
    assert every["pred"].tolist() == [0, 0] + [1] * 10 + [0] * 4
    # A carried window leaves the hold as it was, so the seizure's hold keeps growing.
    assert two["held"][3:13].tolist() == [2, 3, 3, 4, 4, 5, 5, 6, 6, 7]


def test_an_isolated_false_alarm_of_the_complex_model_is_not_carried():
    zs = logits(np.full(8, -6.0))
    zc = logits([-4, -4, 5, -4, -4, -4, -4, -4])
    kw = dict(rule="confirm_changes", probe_every=1, hold=2, hold_max=8)
    assert (cascade_decide(zs, zc, 0.5, ictal_every=4, **kw)["pred"] == cascade_decide(zs, zc, 0.5, **kw)["pred"]).all()


@pytest.mark.parametrize("k", [2, 3, 5])
def test_decisions_match_a_sequential_reference(k):
    rng = np.random.default_rng(k)
    y = (np.sin(np.arange(600) / 25.0) > 0.6).astype(int)  # seizure-like stretches
    zs = logits(rng.normal(scale=3.0, size=600) - 1.0)
    zc = logits(np.where(y == 1, 4.0, -4.0) + rng.normal(scale=3.0, size=600))
    tau, probe, hold, hold_max = 0.6, 7, 2, 6
    out = cascade_decide(zs, zc, tau, rule="confirm_changes", probe_every=probe, hold=hold, hold_max=hold_max,
                         ictal_every=k)
    thr = logit_threshold(tau)
    last = g = h = 0
    n_carried = 0
    for i in range(600):
        d, dc = zs[i, 1], zc[i, 1]
        carried = last == 1 and h > hold and g < k - 1
        final = abs(d) > thr and int(d > 0) == last and g < probe - 1 and h == 0
        routed = not carried and not final
        assert out["routed"][i] == routed, i
        assert carried_reference([out["prev_cls"][i]], [out["gap"][i]], [out["held"][i]], hold, k)[0] == carried
        if not carried:
            h = min(hold_max, max(hold, h + 1)) if routed and dc > 0 and d <= 0 else max(h - 1, 0)
        g = 0 if routed else g + 1
        last = 1 if carried else int((dc if routed else d) > 0)
        n_carried += carried
        assert out["pred"][i] == last, i
    assert n_carried > 20  # the reference walked through carried windows


def test_the_stride_needs_a_growing_hold_and_is_dropped_for_a_variant_without_one():
    with pytest.raises(ValueError, match="growing hold"):
        check_ictal_every(2, hold=2, hold_max=2)
    with pytest.raises(ValueError, match="growing hold"):
        check_ictal_every(2, hold=0, hold_max=8)
    for bad in (0, True, 2.5, 70000):
        with pytest.raises(ValueError, match="ictal_every"):
            check_ictal_every(bad, hold=2, hold_max=8)
    assert check_ictal_every(1) == 1 and check_ictal_every(3, 2, 8) == 3

    class One:
        record_ids, start_s = np.array(["r"]), np.array([0.0])

    assert gate_rule("confirm_changes", One, hold=2, hold_max=8, ictal_every=2)["ictal_every"] == 2
    assert gate_rule("confirm_changes", One, hold=0, ictal_every=2)["ictal_every"] == 1


def test_routing_reasons_explain_every_routed_window_with_a_stride():
    zs = logits(np.full(16, -6.0))
    zc = logits([-4, -4] + [5] * 10 + [-4] * 4)
    y = np.array([0, 0] + [1] * 10 + [0] * 4)

    class One:
        record_ids, start_s = np.array(["r"] * 16), np.arange(16.0)

    kw = gate_rule("confirm_changes", One, 1, hold=2, hold_max=8, ictal_every=2)
    dec = cascade_decide(zs, zc, 0.5, **kw)
    res = routing_reasons(zs, zc, y, 0.5, dec, **kw)
    assert res["n_routed"] == int(dec["routed"].sum()) == 11
    assert sum(c["windows"] for c in res["by_reason"].values()) == 11


def test_config_gate_ictal_every(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {gate_ictal_every: 2}\n")
    assert load_config(path).train.gate_ictal_every == 2
    path.write_text("train: {gate_ictal_every: 2, gate_hold_max: 0}\n")
    with pytest.raises(ConfigError, match="train.gate_ictal_every.*growing hold"):
        load_config(path)
    path.write_text("train: {gate_ictal_every: 0}\n")
    with pytest.raises(ConfigError, match="train.gate_ictal_every"):
        load_config(path)
