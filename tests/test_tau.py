"""Hard gate (logit form == probability form), tau calibration on validation logits, sweep plot."""

import logging

import numpy as np
import pytest

from qcascade.errors import DataError
from qcascade.training.tau import calibrate_tau, cascade_predict, logit_threshold, plot_tau_sweep


# The regime these tests were written for (the library defaults before they followed the config):
# no routing tolerance, the complex-only F1 reference, no window margin, the textbook gate.
V0 = {"routing_tolerance": 0.0, "reference_f1": "complex_only", "margin_windows": 0, "rule": "confidence",
      "reference_min_f1": 0.0}


def calibrate(*args, **kw):
    return calibrate_tau(*args, **{**V0, **kw})

KEYS = {"tau", "routing_rate", "f1", "sensitivity", "specificity", "avg_macs_per_window"}


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("tau", [0.0, 0.05, 0.3, 0.5, 0.77, 0.95, 0.999])
def test_logit_gate_equals_probability_gate(tau):
    rng = np.random.default_rng(int(tau * 1000))
    zs = rng.normal(scale=3.0, size=(2000, 2))
    zc = rng.normal(size=(2000, 2))
    p = softmax(zs)
    confident_prob = np.abs(p[:, 1] - p[:, 0]) > tau
    pred, routed = cascade_predict(zs, zc, tau, rule="confidence")
    # exact equality except for values within float rounding of the threshold
    near = np.isclose(np.abs(zs[:, 1] - zs[:, 0]), logit_threshold(tau), rtol=1e-9, atol=1e-12)
    assert np.array_equal(~routed[~near], confident_prob[~near])
    np.testing.assert_array_equal(pred, np.where(routed, zc.argmax(1), zs.argmax(1)))


def test_gate_extremes_and_saturated_logits():
    zs = np.array([[0.0, 0.0], [0.0, 40.0], [30.0, 0.0], [1.0, 1.5]])
    zc = np.array([[5.0, 0.0], [5.0, 0.0], [0.0, 5.0], [0.0, 5.0]])
    pred, routed = cascade_predict(zs, zc, 1.0, rule="confidence")
    assert routed.all() and np.array_equal(pred, [0, 0, 1, 1])  # tau=1: complex-only
    pred, routed = cascade_predict(zs, zc, 0.0, rule="confidence")
    assert np.array_equal(routed, [True, False, False, False])  # only the exact tie routes
    # |p1 - p0| of [0, 40] is 1.0 in float32 yet the logit form still ranks it as confident
    _, routed = cascade_predict(zs, zc, 0.999999, rule="confidence")
    assert not routed[1] and routed[3]
    with pytest.raises(ValueError):
        logit_threshold(1.2)


def make_val(n_easy=80, n_hard=20, seed=0):
    """Simple model: confident and right on easy windows, unsure and wrong-ish on hard ones.
    Complex model: right everywhere."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_easy + n_hard)
    y[:5] = 1
    sign = np.where(y == 1, 1.0, -1.0)
    d_simple = np.concatenate([sign[:n_easy] * 6.0, -sign[n_easy:] * 0.3])  # |p1-p0|: 0.995 / 0.149
    zs = np.stack([np.zeros_like(d_simple), d_simple], 1)
    zc = np.stack([np.zeros(len(y)), sign * 4.0], 1)
    return zs, zc, y


def test_calibrate_picks_smallest_routing_rate_within_margin():
    zs, zc, y = make_val()
    tau, sweep = calibrate(zs, zc, y, macs_simple=100, macs_complex=10_000)
    assert all(KEYS <= set(r) for r in sweep) and len(sweep) == 101
    chosen = next(r for r in sweep if r["tau"] == tau)
    assert chosen["routing_rate"] == pytest.approx(0.2)  # exactly the hard windows
    assert chosen["f1"] == 1.0 and chosen["sensitivity"] == 1.0
    assert chosen["avg_macs_per_window"] == pytest.approx(100 + 0.2 * 10_000)
    assert 0.149 < tau <= 0.995
    assert min(r["routing_rate"] for r in sweep if r["meets_margin"]) == pytest.approx(0.2)


def test_calibrate_large_margin_allows_no_routing():
    zs, zc, y = make_val()
    tau, sweep = calibrate(zs, zc, y, 100, 10_000, margin=0.9)
    assert next(r for r in sweep if r["tau"] == tau)["routing_rate"] == 0.0


def test_calibrate_fallback_without_tau_one_in_grid(caplog):
    zs, zc, y = make_val()
    zs = -zs  # simple model confidently wrong everywhere: nothing qualifies below tau=1
    with caplog.at_level(logging.WARNING):
        tau, sweep = calibrate(zs, zc, y, 100, 10_000, grid=[0.1, 0.5, 0.9])
    assert not any(r["meets_margin"] for r in sweep)
    chosen = next(r for r in sweep if r["tau"] == tau)
    assert chosen["f1"] == max(r["f1"] for r in sweep)  # best val F1 when nothing qualifies
    assert "falling back" in caplog.text
    tau1, _ = calibrate(zs, zc, y, 100, 10_000, grid=[0.1, 0.5, 1.0])
    assert tau1 == 1.0  # tau=1 is complex-only, which always qualifies


def test_calibrate_requires_ictal_validation_windows():
    zs, zc, y = make_val()
    with pytest.raises(DataError, match="no ictal"):
        calibrate(zs, zc, np.zeros_like(y), 100, 10_000)


def test_plot_tau_sweep_writes_png(tmp_path):
    zs, zc, y = make_val()
    tau, sweep = calibrate(zs, zc, y, 100, 10_000)
    out = plot_tau_sweep(sweep, tmp_path / "sweep.png", chosen_tau=tau, macs_complex=10_000)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibrate_against_an_external_reference():
    zs, zc, y = make_val()
    # a weaker reference (e.g. a complex-only baseline with F1 0.8) lets the cascade route less
    tau, sweep = calibrate(zs, zc, y, 100, 10_000, reference={"sensitivity": 0.8, "f1": 0.8})
    assert next(r for r in sweep if r["tau"] == tau)["routing_rate"] < 0.2


def test_routing_tolerance_prefers_the_most_cautious_tau_at_almost_the_same_cost():
    # The simple model is right on every val window: tau = 0 routes nothing. One window is
    # only moderately confident (|p1 - p0| = tanh(0.5) = 0.462), the rest at 0.995.
    y = np.array([1] * 20 + [0] * 80)
    d = np.where(y == 1, 6.0, -6.0)
    d[0] = 1.0
    zs = np.stack([np.zeros(len(y)), d], 1)
    zc = np.stack([np.zeros(len(y)), np.where(y == 1, 4.0, -4.0)], 1)
    tau0, _ = calibrate(zs, zc, y, 100, 10_000, routing_tolerance=0.0)
    assert tau0 == 0.0
    tau, sweep = calibrate(zs, zc, y, 100, 10_000, routing_tolerance=0.01)
    chosen = next(r for r in sweep if r["tau"] == tau)
    assert chosen["routing_rate"] == pytest.approx(0.01)  # the one moderate window goes to complex
    assert tau == pytest.approx(0.99)  # largest tau below the easy windows' 0.995
    tau_small, _ = calibrate(zs, zc, y, 100, 10_000, routing_tolerance=0.005)
    assert tau_small == pytest.approx(0.46)  # 0.5 % allows no routed window: stay below 0.462
    with pytest.raises(ValueError, match="routing_tolerance"):
        calibrate(zs, zc, y, 100, 10_000, routing_tolerance=1.0)


def test_best_reference_keeps_a_clearly_better_cascade():
    # Simple model right and confident on 96 windows, wrong and unsure on 4; complex right on all.
    # A weak external complex-only reference (F1 0.8) is met without routing; holding F1 to the
    # best cascade on the grid (1.0, routing the 4 unsure windows) keeps that quality instead.
    zs, zc, y = make_val(n_easy=96, n_hard=4)
    ref = {"sensitivity": 0.8, "f1": 0.8}
    tau_c, sweep_c = calibrate(zs, zc, y, 100, 10_000, reference=ref, reference_f1="complex_only")
    assert next(r for r in sweep_c if r["tau"] == tau_c)["routing_rate"] == 0.0
    tau_b, sweep_b = calibrate(zs, zc, y, 100, 10_000, reference=ref, reference_f1="best")
    chosen = next(r for r in sweep_b if r["tau"] == tau_b)
    assert chosen["f1"] == 1.0 and chosen["routing_rate"] == pytest.approx(0.04)
    assert all(r["reference_f1"] == 1.0 for r in sweep_b)
    with pytest.raises(ValueError, match="reference_f1"):
        calibrate(zs, zc, y, 100, 10_000, reference_f1="oracle")


def test_margin_is_never_finer_than_one_validation_window():
    """One missed ictal window out of 20 (sensitivity -0.05) decides nothing with margin_windows=1."""
    y = np.array([0] * 80 + [1] * 20)
    zc = np.stack([np.zeros(100), np.where(y == 1, 4.0, -4.0)], 1)  # complex: perfect
    d = np.where(y == 1, 6.0, -6.0)
    d[85] = -6.0  # the simple model confidently misses one ictal window
    d[90] = -0.2  # and is unsure (and wrong) about another
    zs = np.stack([np.zeros(100), d], 1)
    kw = dict(macs_simple=1.0, macs_complex=100.0, margin=0.01, grid=[0.0, 0.5, 1.0])
    tau_strict, rows = calibrate(zs, zc, y, **kw)
    assert tau_strict == 1.0 and rows[0]["margin"] == 0.01  # only complex-only keeps sensitivity
    tau_win, rows = calibrate(zs, zc, y, margin_windows=1, **kw)
    assert tau_win == 0.5 and rows[0]["margin"] == pytest.approx(1 / 20)
    assert rows[1]["routing_rate"] == 0.01 and rows[1]["sensitivity"] == 0.95
    with pytest.raises(ValueError, match="margin_windows"):
        calibrate(zs, zc, y, margin_windows=-1, **kw)


def test_a_reference_that_misses_the_validation_seizure_itself_is_not_insured_against():
    # The simple model never sees the seizure; complex-only finds a third of it (F1 0.5 > 0.4).
    n = 400
    y = ((np.arange(n) >= 200) & (np.arange(n) < 260)).astype(int)
    zs = np.c_[np.full(n, 2.0), np.full(n, -2.0)] + np.linspace(0, 0.5, n)[:, None] * [[-1, 1]]
    zc = 3.0 * np.c_[1 - 2 * y, 2 * y - 1]
    zc[200:240] = [3.0, -3.0]                       # complex-only misses 40 of the 60 ictal windows
    ref = {"sensitivity": 1 / 3, "f1": 0.5}
    insured, sweep = calibrate(zs, zc, y, 100, 10_000, reference=ref, reference_min_f1=0.4)
    insured_rate = next(r["routing_rate"] for r in sweep if r["tau"] == insured)
    assert insured_rate > 0.3 and all("reference_trusted" not in r for r in sweep)
    cheap, sweep = calibrate(zs, zc, y, 100, 10_000, reference=ref, reference_min_f1=0.6)
    rows = {r["tau"]: r for r in sweep}
    assert rows[cheap]["routing_rate"] == min(r["routing_rate"] for r in sweep) < insured_rate / 2
    assert all(r["reference_trusted"] is False for r in sweep)
    with pytest.raises(ValueError, match="reference_min_f1"):
        calibrate(zs, zc, y, 100, 10_000, reference_min_f1=1.5)


def two_sided_val(missed_inside: bool):
    """Validation windows whose weak "interictal" answers are all interictal (or hide two ictal ones)
    and whose weak "ictal" answers are false alarms only the complex model rejects."""
    y = np.array([0] * 40 + [1] * 10 + [0] * 10)
    d = np.where(y == 1, 5.0, -5.0)
    d[:10] = -0.3  # weak "interictal", truly interictal
    d[50:55] = 0.3  # weak "ictal" false alarms
    if missed_inside:
        d[45:47] = -0.3  # weak "interictal" inside the seizure
    zc = np.stack([np.zeros(len(y)), np.where(y == 1, 4.0, -4.0)], 1)
    return np.stack([np.zeros(len(y)), d], 1), zc, y


@pytest.mark.parametrize("mode", ["keep", "margin"])
def test_second_threshold_drops_routing_that_changes_nothing(mode):
    from qcascade.training.tau import calibrate_tau_interictal

    zs, zc, y = two_sided_val(missed_inside=False)
    kw = dict(rule="confidence")
    tau, sweep = calibrate(zs, zc, y, 100, 10_000, **kw)
    assert next(r for r in sweep if r["tau"] == tau)["routing_rate"] == pytest.approx(15 / 60)
    tau_i, rows = calibrate_tau_interictal(zs, zc, y, tau, sweep, mode, **kw)
    assert tau_i < tau and tau_i < np.tanh(0.15)  # the weak "interictal" windows stay with the simple model
    chosen = next(r for r in rows if r["tau_interictal"] == tau_i)
    assert chosen["routing_rate"] == pytest.approx(5 / 60) and chosen["f1"] == 1.0
    assert all(r["tau_interictal"] <= tau for r in rows)


def test_second_threshold_keeps_what_validation_needs():
    from qcascade.training.tau import calibrate_tau_interictal

    zs, zc, y = two_sided_val(missed_inside=True)
    tau, sweep = calibrate(zs, zc, y, 100, 10_000, rule="confidence")
    tau_i, rows = calibrate_tau_interictal(zs, zc, y, tau, sweep, "keep", rule="confidence")
    assert tau_i >= np.tanh(0.15)  # lowering it would lose two of the ten ictal windows
    assert not any(r["qualifies"] for r in rows if r["tau_interictal"] < np.tanh(0.15))
    with pytest.raises(ValueError, match="mode"):
        calibrate_tau_interictal(zs, zc, y, tau, sweep, "all", rule="confidence")
    with pytest.raises(ValueError, match="not in the sweep"):
        calibrate_tau_interictal(zs, zc, y, 0.123456, sweep, "keep", rule="confidence")
