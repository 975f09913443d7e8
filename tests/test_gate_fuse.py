"""The gate's late fusion (qcascade.gate, "Fusion"; train.gate_fuse): a routed window is decided on
the complex model's logit difference plus a power-of-two share of the simple model's."""

import numpy as np
import pytest

from qcascade.config import load_config
from qcascade.errors import ConfigError
from qcascade.gate import cascade_decide
from qcascade.gate_args import gate_rule
from qcascade.gate_fixed import fuse_shift, fused_difference
from qcascade.routing_reasons import routing_reasons
from qcascade.training.tau import logit_threshold


def logits(d):
    d = np.asarray(d, np.float64)
    return np.stack([np.zeros_like(d), d], 1)


def test_a_confident_simple_answer_outweighs_a_weak_false_alarm_of_the_complex_model():
    # simple: confidently interictal, then one window it is unsure of; complex: a weak false "ictal" on
    # window 1 and a strong one on window 2.
    zs, zc = logits([-8.0, -8.0, -8.0, 0.1]), logits([-3.0, 1.5, 3.0, 1.0])
    plain = cascade_decide(zs, zc, 0.9, rule="confidence", probe_every=1)  # every window routed
    fused = cascade_decide(zs, zc, 0.9, rule="confidence", probe_every=1, fuse=0.25)
    assert plain["routed"].all() and fused["routed"].all()
    assert plain["pred"].tolist() == [0, 1, 1, 1]
    # 1.5 - 8/4 = -0.5 -> interictal; 3 - 2 = 1 -> ictal; 1.0 + 0.1/4 -> ictal
    assert fused["pred"].tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("rule", ["confidence", "confirm_changes", "confirm_ictal_hold"])
def test_fused_decisions_match_a_sequential_reference_with_recheck_and_hold(rule):
    rng = np.random.default_rng(4)
    # Logits on a fixed-point grid (2**-6), so every fused value is exact, like the top level's.
    zs, zc = (np.round(rng.normal(scale=3.0, size=(500, 2)) * 64) / 64 for _ in range(2))
    tau, probe, recheck, hold, hold_max, a = 0.6, 5, 0.5, 2, 4, 0.25
    out = cascade_decide(zs, zc, tau, rule=rule, probe_every=probe, recheck_tau=recheck, hold=hold, hold_max=hold_max,
                         fuse=a)
    thr, thr_c = logit_threshold(tau), logit_threshold(recheck)
    last, g, h = 0, 0, 0
    for i in range(len(zs)):
        d = zs[i, 1] - zs[i, 0]
        final = {"confidence": abs(d) > thr, "confirm_changes": abs(d) > thr and int(d > 0) == last,
                 "confirm_ictal_hold": -d > thr and last == 0}[rule] and g < probe - 1 and h == 0
        assert out["routed"][i] == (not final), i
        dc = zc[i, 1] - zc[i, 0] + a * d
        c_cls = int(dc > 0)
        if final:
            last, g = int(d > 0), g + 1
        else:
            last, g = c_cls, probe - 1 if (dc <= 0 and -dc < thr_c) else 0
        h = min(hold_max, max(hold, h + 1)) if not final and c_cls == 1 and d <= 0 else max(h - 1, 0)
        assert out["pred"][i] == last, i
    plain = cascade_decide(zs, zc, tau, rule=rule, probe_every=probe, recheck_tau=recheck, hold=hold, hold_max=hold_max)
    assert (plain["pred"] != out["pred"]).any()  # the fusion decides some windows otherwise


def test_fused_difference_and_the_shift():
    zs, zc = logits([4.0, -2.0]), logits([-0.5, 1.0])
    assert fused_difference(zs, zc, 0.25).tolist() == [0.5, 0.5]
    assert fused_difference(zs, zc, 0.0).tolist() == [-0.5, 1.0]
    assert [fuse_shift(a) for a in (0, 1, 0.5, 0.25, 2 ** -8)] == [-1, 0, 1, 2, 8]
    for bad in (0.3, 2.0, -0.25, 2 ** -9, True, "0.25"):
        with pytest.raises(ValueError, match="fuse"):
            fuse_shift(bad)


def test_routing_reasons_judge_the_fused_answer():
    zs, zc, y = logits([-8.0, -8.0]), logits([1.5, 3.0]), np.array([0, 1])
    class One:  # one recording in order
        record_ids, start_s = np.array(["r", "r"]), np.array([0.0, 1.0])

    kw = gate_rule("confidence", One, 1, fuse=0.25)
    dec = cascade_decide(zs, zc, 0.9, **kw)
    res = routing_reasons(zs, zc, y, 0.9, dec, **kw)
    # window 0: fused -0.5 agrees with the simple model (neither mended nor harmed); window 1: mended
    assert res["by_reason"]["probe"] == {"windows": 2, "ictal": 1, "mended": 1, "harmed": 0}


def test_config_gate_fuse(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {gate_fuse: 0.25}\n")
    assert load_config(path).train.gate_fuse == 0.25
    path.write_text("train: {gate_fuse: 0.3}\n")
    with pytest.raises(ConfigError, match="train.gate_fuse"):
        load_config(path)
