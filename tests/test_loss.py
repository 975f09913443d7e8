"""Each cascade loss term on hand-made logits (no models)."""

import math

import numpy as np
import pytest

import tensorflow as tf

from qcascade.training.loss import (cascade_loss_terms, frozen_gate_loss_terms,  # noqa: E402
                                    per_window_gate_terms, selection_entropy, soft_routing, weighted_ce)

# The regime these tests were written for (the library defaults before they followed the config):
# the textbook gate and no floor on the complex model's CE weight.
V0 = {"rule": "confidence", "complex_weight_floor": 0.0}


def _v0(fn, keys):
    def call(*args, **kw):
        return fn(*args, **{**{k: V0[k] for k in keys}, **kw})
    return call


v0_cascade_loss_terms = _v0(cascade_loss_terms, ("rule", "complex_weight_floor"))
v0_soft_routing = _v0(soft_routing, ("rule",))
v0_per_window_gate_terms = _v0(per_window_gate_terms, ("rule",))
v0_frozen_gate_loss_terms = _v0(frozen_gate_loss_terms, ("complex_weight_floor",))

CONFIDENT = np.array([[-8.0, 8.0], [9.0, -9.0], [-10.0, 10.0], [7.0, -7.0]], np.float32)
UNSURE = np.zeros((4, 2), np.float32)
Y = np.array([1, 0, 1, 0])


def terms(simple, complex_=None, weights=None, **kw):
    out = v0_cascade_loss_terms(tf.constant(Y), tf.constant(simple),
                             None if complex_ is None else tf.constant(complex_),
                             None if weights is None else tf.constant(weights), **kw)
    return {k: float(v) for k, v in out.items()}


def test_soft_routing_is_low_when_confident_and_high_when_unsure():
    r_conf = v0_soft_routing(tf.constant(CONFIDENT), tau=0.5, sharpness=10.0).numpy()
    r_unsure = v0_soft_routing(tf.constant(UNSURE), tau=0.5, sharpness=10.0).numpy()
    assert np.all(r_conf < 0.01)
    np.testing.assert_allclose(r_unsure, 1 / (1 + math.exp(-5.0)), rtol=1e-6)
    # large sharpness approaches the hard gate |p1 - p0| <= tau
    z = np.array([[0.0, 2 * math.atanh(0.49)], [0.0, 2 * math.atanh(0.51)]], np.float32)
    r = v0_soft_routing(tf.constant(z), tau=0.5, sharpness=2000.0).numpy()
    assert r[0] > 0.99 and r[1] < 0.01


def test_complex_term_vanishes_for_confident_simple_model():
    wrong_complex = np.where(np.eye(2)[Y] > 0, -5.0, 5.0).astype(np.float32)  # confidently wrong
    t = terms(CONFIDENT, wrong_complex)
    assert t["routing"] < 0.01
    assert t["complex"] < 0.01 * weighted_ce(Y, wrong_complex).numpy().mean()
    t_unsure = terms(UNSURE, wrong_complex)
    r = 1 / (1 + math.exp(-5.0))
    assert t_unsure["complex"] == pytest.approx(r * weighted_ce(Y, wrong_complex).numpy().mean(), rel=1e-5)


def test_complex_term_gives_no_gradient_to_the_gate():
    zs = tf.Variable(UNSURE + 0.1)
    zc = tf.Variable(np.zeros((4, 2), np.float32))
    with tf.GradientTape(persistent=True) as tape:
        t = v0_cascade_loss_terms(tf.constant(Y), zs, zc, None)
    assert tape.gradient(t["complex"], zs) is None
    assert np.abs(tape.gradient(t["complex"], zc).numpy()).sum() > 0


def test_routing_term_is_mean_r_and_pushes_towards_confidence():
    zs = tf.Variable(np.array([[0.0, 0.5], [0.3, 0.0]], np.float32))
    with tf.GradientTape() as tape:
        t = v0_cascade_loss_terms(tf.constant([1, 0]), zs, None, None)
    r = v0_soft_routing(zs, 0.5, 10.0).numpy()
    assert float(t["routing"]) == pytest.approx(r.mean(), rel=1e-6)
    g = tape.gradient(t["routing"], zs).numpy()
    # descending the gradient widens |z1 - z0|, i.e. makes the simple model more confident
    step = zs.numpy() - 0.1 * g
    assert np.all(np.abs(step[:, 1] - step[:, 0]) > np.abs(zs.numpy()[:, 1] - zs.numpy()[:, 0]))


def test_simple_term_is_class_weighted_mean_ce():
    z = np.array([[0.0, 1.0], [0.0, 1.0], [2.0, 0.0], [0.5, 0.0]], np.float32)
    ce = weighted_ce(Y, z).numpy()
    w = np.array([2.0, 0.5, 2.0, 0.5], np.float32)
    t = v0_cascade_loss_terms(tf.constant(Y), tf.constant(z), None, None, tf.constant(w))
    assert float(t["simple"]) == pytest.approx(float((w * ce).mean()), rel=1e-6)


def test_simple_sample_weight_reweights_the_simple_term_only():
    """``train.simple_interictal_weight``: its own weights for the simple CE; the complex CE keeps the class weights."""
    zs = np.array([[0.0, 1.0], [0.0, 1.0], [2.0, 0.0], [0.5, 0.0]], np.float32)
    zc = np.array([[0.0, 2.0], [1.0, 0.0], [0.0, 0.5], [2.0, 0.0]], np.float32)
    w = np.array([2.0, 0.5, 2.0, 0.5], np.float32)
    ws = np.where(Y == 0, 3.0, 1.0).astype(np.float32) * w
    base = v0_cascade_loss_terms(tf.constant(Y), tf.constant(zs), tf.constant(zc), None, tf.constant(w))
    more = v0_cascade_loss_terms(tf.constant(Y), tf.constant(zs), tf.constant(zc), None, tf.constant(w),
                                 simple_sample_weight=tf.constant(ws))
    assert float(more["simple"]) == pytest.approx(float((ws * weighted_ce(Y, zs).numpy()).mean()), rel=1e-6)
    assert float(more["simple"]) > float(base["simple"])
    assert float(more["complex"]) == pytest.approx(float(base["complex"]), rel=1e-6)


def test_entropy_of_one_hot_is_zero_and_uniform_is_one_when_normalised():
    one_hot = np.zeros((3, 8), np.float32)
    one_hot[np.arange(3), [0, 3, 5]] = 1.0
    assert np.allclose(selection_entropy(tf.constant(one_hot)).numpy(), 0.0, atol=1e-6)
    uniform = np.zeros((2, 8), np.float32)
    uniform[:, :5] = 0.2  # 5 active electrodes, 3 masked at weight 0
    h = selection_entropy(tf.constant(uniform), n_active=5).numpy()
    np.testing.assert_allclose(h, 1.0, rtol=1e-5)
    np.testing.assert_allclose(selection_entropy(tf.constant(uniform)).numpy(), math.log(5), rtol=1e-5)


def test_sparsity_gradient_is_finite_at_exact_zeros():
    w = tf.Variable(np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], np.float32))
    with tf.GradientTape() as tape:
        h = tf.reduce_sum(selection_entropy(w, n_active=3))
    assert np.all(np.isfinite(tape.gradient(h, w).numpy()))


def test_total_is_weighted_sum_and_global_batch_scaling_adds_up():
    rng = np.random.default_rng(0)
    zs, zc = rng.normal(size=(4, 2)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    sel = rng.dirichlet(np.ones(6), size=4).astype(np.float32)
    kw = dict(a_simple=1.0, a_complex=0.7, a_routing=0.3, a_sparsity=0.2, n_active=6)
    full = terms(zs, zc, sel, **kw)
    assert full["total"] == pytest.approx(
        full["simple"] + 0.7 * full["complex"] + 0.3 * full["routing"] + 0.2 * full["sparsity"], rel=1e-5)
    # two "replicas" with half the batch each, divided by the global batch size, sum to the whole
    halves = [v0_cascade_loss_terms(tf.constant(Y[s]), tf.constant(zs[s]), tf.constant(zc[s]),
                                 tf.constant(sel[s]), global_batch_size=4, **kw)
              for s in (slice(0, 2), slice(2, 4))]
    for k in full:
        assert float(halves[0][k] + halves[1][k]) == pytest.approx(full[k], rel=1e-5)


def test_missing_complex_and_selector_terms_are_zero():
    t = terms(CONFIDENT)
    assert t["complex"] == 0.0 and t["sparsity"] == 0.0


@pytest.mark.parametrize("floor", [0.0, 0.3])
def test_frozen_gate_form_equals_full_loss(floor):
    rng = np.random.default_rng(1)
    zs, zc = rng.normal(size=(4, 2)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    sel = rng.dirichlet(np.ones(6), size=4).astype(np.float32)
    w = np.array([0.6, 2.0, 0.6, 2.0], np.float32)
    kw = dict(a_simple=0.9, a_complex=1.3, a_routing=0.2, a_sparsity=0.4, global_batch_size=8,
              complex_weight_floor=floor)
    full = v0_cascade_loss_terms(tf.constant(Y), zs, zc, sel, w, n_active=6, tau=0.4, sharpness=7.0, **kw)
    g = v0_per_window_gate_terms(tf.constant(Y), zs, sel, w, tau=0.4, sharpness=7.0, n_active=6)
    frozen = v0_frozen_gate_loss_terms(tf.constant(Y), zc, g["r"], g["simple_ce"], g["entropy"], w, **kw)
    for k in full:
        assert float(frozen[k]) == pytest.approx(float(full[k]), rel=1e-6)


def test_complex_weight_floor_keeps_confident_windows_in_the_complex_term():
    wrong_complex = np.where(np.eye(2)[Y] > 0, -5.0, 5.0).astype(np.float32)
    ce = weighted_ce(Y, wrong_complex).numpy().mean()
    r = float(v0_soft_routing(tf.constant(CONFIDENT), 0.5, 10.0).numpy().mean())
    t0 = terms(CONFIDENT, wrong_complex)
    t3 = terms(CONFIDENT, wrong_complex, complex_weight_floor=0.3)
    assert t0["complex"] == pytest.approx(r * ce, rel=1e-4)  # floor 0: routed windows only
    assert t3["complex"] == pytest.approx((0.3 + 0.7 * r) * ce, rel=1e-4)
    t_all = terms(UNSURE, wrong_complex, complex_weight_floor=1.0)
    assert t_all["complex"] == pytest.approx(ce, rel=1e-5)  # floor 1: every window, weight 1
    zs = tf.Variable(UNSURE + 0.1)
    with tf.GradientTape() as tape:
        t = v0_cascade_loss_terms(tf.constant(Y), zs, tf.constant(wrong_complex), None, complex_weight_floor=0.3)
    assert tape.gradient(t["complex"], zs) is None  # still no gradient into the gate
