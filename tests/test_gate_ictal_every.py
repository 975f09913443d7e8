"""The gate's ictal stride (qcascade.gate, "Ictal stride"; train.gate_ictal_every, gate_ictal_after): inside
a seizure the complex model has confirmed against the simple model, it decides one window in K and the others
keep the ictal state."""

import numpy as np
import pytest

from qcascade.config import load_config
from qcascade.errors import ConfigError
from qcascade.gate import cascade_decide, check_ictal_every, ictal_min_held
from qcascade.gate_args import gate_rule
from qcascade.hls.manifest import carried_reference
from qcascade.routing_reasons import routing_reasons
from qcascade.training.tau import logit_threshold


def logits(d):
    d = np.asarray(d, np.float64)
    return np.stack([np.zeros_like(d), d], 1)


def test_from_the_grown_hold_a_seizure_the_simple_model_misses_is_asked_every_other_window():
    # The simple model says interictal throughout; the complex model sees a seizure on windows 2-11.
    zs = logits(np.full(16, -6.0))
    zc = logits([-4, -4] + [5] * 10 + [-4] * 4)
    kw = dict(rule="confirm_changes", probe_every=1, hold=2, hold_max=8)  # a probe on every window: all asked
    every = cascade_decide(zs, zc, 0.5, **kw)
    two = cascade_decide(zs, zc, 0.5, ictal_every=2, ictal_after="grown", **kw)
    assert every["routed"].all()
    # Windows 2 and 3 confirm the seizure (held 2 -> 3 > H); from then on every other window is carried,
    # and after the seizure the hold routes the rest.
    assert two["routed"].tolist() == [True] * 4 + [False, True] * 5 + [True] * 2
    assert two["pred"].tolist() == [0, 0] + [1] * 10 + [1, 0, 0, 0]  # the end is seen one window late
    assert every["pred"].tolist() == [0, 0] + [1] * 10 + [0] * 4
    # A carried window leaves the hold as it was, so the seizure's hold keeps growing.
    assert two["held"][3:13].tolist() == [2, 3, 3, 4, 4, 5, 5, 6, 6, 7]


def test_from_the_ceiling_the_stride_starts_once_the_hold_is_full():
    zs = logits(np.full(16, -6.0))
    zc = logits([-4, -4] + [5] * 10 + [-4] * 4)
    kw = dict(rule="confirm_changes", probe_every=1, hold=2, hold_max=8)
    two = cascade_decide(zs, zc, 0.5, ictal_every=2, **kw)  # "ceiling", the default
    # Windows 2-8 grow the hold 2 -> 8; from window 9 every other window is carried.
    assert two["routed"].tolist() == [True] * 9 + [False, True, False] + [True] * 4
    assert two["pred"].tolist() == [0, 0] + [1] * 10 + [0] * 4
    assert two["held"][9:13].tolist() == [8, 8, 8, 8]


def test_from_the_ceiling_a_dip_of_the_complex_model_meets_the_hold_it_meets_without_the_stride():
    # Onset on an unsure window, 8 ictal windows, a 7-window dip of the complex model, 6 more ictal windows.
    zs = logits([-6, -6, -0.1] + [-6] * 27)
    zc = logits([-4, -4] + [5] * 8 + [-4] * 7 + [5] * 6 + [-4] * 7)
    kw = dict(rule="confirm_changes", hold=2, hold_max=8)
    none = cascade_decide(zs, zc, 0.5, **kw)["pred"].tolist()
    assert none[17:23] == [1] * 6  # the full hold outlasts the dip
    assert cascade_decide(zs, zc, 0.5, ictal_every=2, **kw)["pred"].tolist() == none
    grown = cascade_decide(zs, zc, 0.5, ictal_every=2, ictal_after="grown", **kw)["pred"].tolist()
    assert grown[17:23] == [0] * 6  # round 63's stride grew a shorter hold, which the dip outlasts


def test_an_isolated_false_alarm_of_the_complex_model_is_not_carried():
    zs = logits(np.full(8, -6.0))
    zc = logits([-4, -4, 5, -4, -4, -4, -4, -4])
    kw = dict(rule="confirm_changes", probe_every=1, hold=2, hold_max=8)
    assert (cascade_decide(zs, zc, 0.5, ictal_every=4, **kw)["pred"] == cascade_decide(zs, zc, 0.5, **kw)["pred"]).all()


@pytest.mark.parametrize("after", ["ceiling", "grown"])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_decisions_match_a_sequential_reference(k, after):
    rng = np.random.default_rng(k)
    y = (np.sin(np.arange(600) / 25.0) > 0.6).astype(int)  # seizure-like stretches
    zs = logits(rng.normal(scale=3.0, size=600) - 1.0)
    zc = logits(np.where(y == 1, 4.0, -4.0) + rng.normal(scale=3.0, size=600))
    tau, probe, hold, hold_max = 0.6, 7, 2, 6
    out = cascade_decide(zs, zc, tau, rule="confirm_changes", probe_every=probe, hold=hold, hold_max=hold_max,
                         ictal_every=k, ictal_after=after)
    min_held = hold_max if after == "ceiling" else hold + 1
    assert ictal_min_held(hold, hold_max, after) == min_held
    thr = logit_threshold(tau)
    last = g = h = 0
    n_carried = 0
    for i in range(600):
        d, dc = zs[i, 1], zc[i, 1]
        carried = last == 1 and h >= min_held and g < k - 1
        final = abs(d) > thr and int(d > 0) == last and g < probe - 1 and h == 0
        routed = not carried and not final
        assert out["routed"][i] == routed, i
        assert carried_reference([out["prev_cls"][i]], [out["gap"][i]], [out["held"][i]], min_held, k)[0] == carried
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
    with pytest.raises(ValueError, match="ictal_after"):
        ictal_min_held(2, 8, "full")

    class One:
        record_ids, start_s = np.array(["r"]), np.array([0.0])

    assert gate_rule("confirm_changes", One, hold=2, hold_max=8, ictal_every=2)["ictal_every"] == 2
    assert gate_rule("confirm_changes", One, hold=0, ictal_every=2)["ictal_every"] == 1


@pytest.mark.parametrize("after, n_routed", [("ceiling", 14), ("grown", 11)])
def test_routing_reasons_explain_every_routed_window_with_a_stride(after, n_routed):
    zs = logits(np.full(16, -6.0))
    zc = logits([-4, -4] + [5] * 10 + [-4] * 4)
    y = np.array([0, 0] + [1] * 10 + [0] * 4)

    class One:
        record_ids, start_s = np.array(["r"] * 16), np.arange(16.0)

    kw = gate_rule("confirm_changes", One, 1, hold=2, hold_max=8, ictal_every=2, ictal_after=after)
    dec = cascade_decide(zs, zc, 0.5, **kw)
    res = routing_reasons(zs, zc, y, 0.5, dec, **kw)
    assert res["n_routed"] == int(dec["routed"].sum()) == n_routed
    assert sum(c["windows"] for c in res["by_reason"].values()) == n_routed


def test_config_gate_ictal_every(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {gate_ictal_every: 2}\n")
    assert load_config(path).train.gate_ictal_every == 2
    path.write_text("train: {gate_ictal_every: 3, gate_hold_max: 0}\n")
    with pytest.raises(ConfigError, match="train.gate_ictal_every.*growing hold.*gate_ictal_every: 1"):
        load_config(path)
    # The default stride (2, round 65) rides on the hold: a config that turns the hold off runs without it.
    path.write_text("train: {gate_hold: 0}\n")
    train = load_config(path).train
    assert train.gate_ictal_every == 2 and train.gate_ictal_after == "ceiling"

    class One:
        record_ids, start_s = np.array(["r"]), np.array([0.0])

    assert gate_rule("confirm_changes", One, hold=train.gate_hold, hold_max=train.gate_hold_max,
                     ictal_every=train.gate_ictal_every)["ictal_every"] == 1
    path.write_text("train: {gate_ictal_every: 0}\n")
    with pytest.raises(ConfigError, match="train.gate_ictal_every"):
        load_config(path)
    path.write_text("train: {gate_ictal_every: 2, gate_ictal_after: grown}\n")
    assert load_config(path).train.gate_ictal_after == "grown"
    path.write_text("train: {gate_ictal_after: full}\n")
    with pytest.raises(ConfigError, match="train.gate_ictal_after"):
        load_config(path)
