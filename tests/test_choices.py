"""Per-patient choices on validation (gate: auto, simple_model: auto), the probe, hidden seizures."""

from types import SimpleNamespace

import numpy as np
import pytest

from qcascade.artifacts import Deployment
from qcascade.config import ModelConfig
from qcascade.config_train import TrainConfig
from qcascade.errors import ConfigError
from qcascade.evaluation import hidden_events, sum_hidden
from qcascade.gate import cascade_decide, check_probe, check_recheck, simple_is_final, training_rule
from qcascade.steps_choose import (choose_gate_variant, choose_probe_period, gate_candidates, pick_cheapest_within,
                                   probe_candidates)
from qcascade.training.tau import calibrate_tau, choose_gate


def logits(d):
    d = np.asarray(d, np.float64)
    return np.stack([np.zeros_like(d), d], 1)


def one_recording(n):
    return {"record_ids": np.array(["r"] * n), "start_s": np.arange(float(n))}


# ----------------------------------------------------------------------------- the probe
def test_probe_routes_after_p_minus_one_unseen_windows_and_restarts():
    d = np.full(12, -4.0)  # confidently interictal throughout: the rule alone never routes
    out = cascade_decide(logits(d), logits(d), 0.5, rule="confirm_changes", probe_every=4)
    assert np.flatnonzero(out["routed"]).tolist() == [3, 7, 11]
    assert out["gap"].tolist() == [0, 1, 2, 3] * 3
    # a window the rule routes restarts the count
    d2 = d.copy()
    d2[1] = 0.1  # unsure: routed by the rule
    out2 = cascade_decide(logits(d2), logits(-np.abs(d2)), 0.5, rule="confirm_changes", probe_every=4)
    assert np.flatnonzero(out2["routed"]).tolist() == [1, 5, 9]


@pytest.mark.parametrize("recheck_tau", [0.0, 0.8])
@pytest.mark.parametrize("rule", ["confidence", "confirm_changes", "confirm_ictal_hold"])
def test_probe_restarts_at_each_recording_and_matches_simple_is_final(rule, recheck_tau):
    """The walk's state (prev_cls, gap; the recheck's gap too) is what the C++ top level loads:
    loading it decides every window as the walk did."""
    rng = np.random.default_rng(3)
    zs, zc = rng.normal(0, 3, (50, 2)), rng.normal(0, 1.5, (50, 2))
    rec = np.array(["a"] * 23 + ["b"] * 27)
    start = np.r_[np.arange(23.0), np.arange(27.0)]
    out = cascade_decide(zs, zc, 0.6, rule=rule, record_ids=rec, start_s=start, probe_every=5, recheck_tau=recheck_tau)
    assert out["gap"][0] == 0 and out["gap"][23] == 0
    final = simple_is_final(zs, 0.6, rule, out["prev_cls"], out["gap"], 5, held=out["held"])
    assert np.array_equal(final, ~out["routed"])
    assert out["gap"].max() <= 4
    plain = cascade_decide(zs, zc, 0.6, rule=rule, record_ids=rec, start_s=start)
    assert set(np.flatnonzero(plain["routed"])) <= set(np.flatnonzero(out["routed"]))
    if recheck_tau:
        probe_only = cascade_decide(zs, zc, 0.6, rule=rule, record_ids=rec, start_s=start, probe_every=5)
        assert out["routed"].sum() > probe_only["routed"].sum()
        with pytest.raises(ValueError, match="needs a probe"):
            cascade_decide(zs, zc, 0.6, rule=rule, recheck_tau=recheck_tau)


def test_recheck_makes_the_window_after_an_unsure_interictal_complex_answer_a_probe():
    d = np.full(12, -4.0)  # confidently interictal: only the probe (P = 4) routes
    dc = np.full(12, -4.0)
    dc[3] = -0.5  # the probe at window 3 gets an unsure "interictal" from the complex model
    dc[4] = 0.0   # a tie is class 0, unsure too: window 5 is rechecked as well
    out = cascade_decide(logits(d), logits(dc), 0.5, rule="confirm_changes", probe_every=4, recheck_tau=0.76)
    assert np.flatnonzero(out["routed"]).tolist() == [3, 4, 5, 9]  # then the probe's count restarts
    assert out["gap"].tolist() == [0, 1, 2, 3, 3, 3, 0, 1, 2, 3, 0, 1]
    off = cascade_decide(logits(d), logits(dc), 0.5, rule="confirm_changes", probe_every=4)
    assert np.flatnonzero(off["routed"]).tolist() == [3, 7, 11]
    # A confident interictal answer (|dc| = 2.1 > 2*atanh(0.76) = 1.99), or an ictal one, is not rechecked.
    for v in (-2.1, 0.5):
        dc2 = np.full(12, -4.0)
        dc2[3] = v
        out2 = cascade_decide(logits(d), logits(dc2), 0.5, rule="confidence", probe_every=4, recheck_tau=0.76)
        assert np.flatnonzero(out2["routed"]).tolist() == [3, 7, 11], v


def test_probe_arguments_are_checked():
    for bad in (-1, 65536, 2.0, True):
        with pytest.raises(ValueError, match="probe_every"):
            check_probe(bad)
    with pytest.raises(ValueError, match="gap"):
        simple_is_final(logits([1.0]), 0.5, "confidence", probe_every=3)
    with pytest.raises(ConfigError, match="train.gate_probe_every"):
        TrainConfig(gate_probe_every=70000)
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match="train.gate_recheck_tau"):
            TrainConfig(gate_recheck_tau=bad)
    with pytest.raises(ConfigError, match="gate_recheck_tau.*needs train.gate_probe_every > 0"):
        TrainConfig(gate_probe_every=0, gate_recheck_tau=0.76)
    assert TrainConfig(gate_probe_every=0).gate_recheck_tau == 0 and TrainConfig(gate_probe_every=20, gate_recheck_tau=0.76).gate_recheck_tau
    for bad in (-0.5, 1.0, True):
        with pytest.raises(ValueError, match="recheck_tau"):
            check_recheck(bad, 5)
    with pytest.raises(ValueError, match="needs a probe"):
        check_recheck(0.5, 0)
    assert TrainConfig(gate="auto").gate == "auto" and training_rule("auto") == "confirm_changes"
    with pytest.raises(ConfigError, match="train.gate"):
        TrainConfig(gate="sometimes")
    with pytest.raises(ConfigError, match="model.simple_model"):
        ModelConfig(simple_model="auto", train_candidates=False)


# ----------------------------------------------------------------------------- hidden seizures
def test_hidden_seizures_counted_per_event():
    y = np.zeros(600, int)
    y[100:130] = 1
    y[400:420] = 1
    rec = np.array(["a"] * 300 + ["b"] * 300)
    start = np.r_[np.arange(300.0), np.arange(300.0)]
    complex_pred = np.zeros(600, int)
    complex_pred[105:125] = 1
    complex_pred[405:410] = 1
    cascade_pred = np.zeros(600, int)
    cascade_pred[110] = 1  # sees the first seizure (one window is an event hit), misses the second
    h = hidden_events(y, cascade_pred, complex_pred, start, rec)
    assert (h["n_events"], h["n_reference_detected"], h["n_missed_but_reference_detected"]) == (2, 2, 1)
    assert h["missed"] == [{"record": "b", "onset_s": 100.0, "offset_s": 120.0}]
    # a seizure the reference misses too is not "hidden"
    h2 = hidden_events(y, np.zeros(600, int), np.zeros(600, int), start, rec)
    assert h2["n_missed_but_reference_detected"] == 0 and h2["n_reference_detected"] == 0
    assert sum_hidden([h, h])["n_missed_but_reference_detected"] == 2


def test_probe_uncovers_a_seizure_the_simple_model_hides():
    """The multifocal case: the one electrode never sees the seizure, the complex model does."""
    n = 300
    y = np.zeros(n, int)
    y[150:175] = 1
    zs = logits(np.full(n, -6.0))  # confidently interictal everywhere
    zc = logits(np.where(y == 1, 4.0, -4.0))
    kw = one_recording(n)
    hidden = []
    for probe in (0, 10):
        out = cascade_decide(zs, zc, 0.5, rule="confirm_changes", probe_every=probe, **kw)
        hidden.append(hidden_events(y, out["pred"], zc.argmax(1), kw["start_s"], kw["record_ids"])
                      ["n_missed_but_reference_detected"])
        if probe:
            # once a probe saw it, confirm_changes hands the whole rest of the seizure to the complex model
            first = np.flatnonzero(out["pred"])[0]
            assert out["pred"][first:175].all() and first < 160
            assert out["routed"].mean() < 0.25
    assert hidden == [1, 0]


# ----------------------------------------------------------------------------- auto choices
def test_choose_gate_prefers_no_hidden_then_f1_then_routing():
    cands = {"confidence": {"f1": 0.95, "routing_rate": 0.01, "hidden_val": 1},
             "confirm_changes": {"f1": 0.90, "routing_rate": 0.05, "hidden_val": 0},
             "confirm_ictal_hold": {"f1": 0.91, "routing_rate": 0.12, "hidden_val": 0}}
    assert choose_gate(cands, 0.02)[0] == "confirm_changes"  # within 0.02 of 0.91, cheaper
    assert choose_gate(cands, 0.0)[0] == "confirm_ictal_hold"  # F1 first when the margin is 0
    cands["confidence"]["hidden_val"] = 0
    assert choose_gate(cands, 0.02)[0] == "confidence"
    tie = {"a": {"f1": 0.9, "routing_rate": 0.1, "hidden_val": 0}, "b": {"f1": 0.9, "routing_rate": 0.1, "hidden_val": 0}}
    assert choose_gate(tie, 0.0)[0] == "a"


def test_gate_auto_on_constructed_validation_logits():
    """A simple model confidently wrong on most of the seizure: the textbook gate has to route
    every window to keep F1 (tau = 1), confirm_changes keeps it at a fraction of the cost."""
    n = 200
    y = np.zeros(n, int)
    y[80:110] = 1
    d = np.where(y == 1, -5.0, -5.0)  # confidently interictal on the seizure, too
    d[80:84] = 5.0  # ... except its first windows, where it proposes the onset
    zs, zc = logits(d), logits(np.where(y == 1, 4.0, -4.0))
    va = SimpleNamespace(y=y, **one_recording(n))
    train = TrainConfig(gate="auto", tau_grid_size=11, gate_probe_every=0, gate_recheck_tau=0,
                        gate_sentinel_ratio=0, gate_hold=0)
    variants = gate_candidates(train, 0)
    calibrated = {name: calibrate_tau(zs, zc, y, 100.0, 10000.0, grid=train.tau_grid(), rule=rule, probe_every=p,
                                      recheck_tau=c, record_ids=va.record_ids, start_s=va.start_s)
                  for name, rule, p, c, _, _ in variants}
    rec = choose_gate_variant(train, calibrated, variants, va, zs, zc, int(y.sum()))
    assert set(rec["candidates"]) == {"confidence", "confirm_changes", "confirm_ictal_hold"}
    c = rec["candidates"]
    assert c["confidence"]["tau"] == 1.0 and c["confirm_changes"]["f1"] == c["confidence"]["f1"] == 1.0
    assert c["confirm_changes"]["routing_rate"] < 0.25 < c["confidence"]["routing_rate"]
    assert rec["chosen"] == rec["auto_choice"] == "confirm_changes"
    assert all(v["hidden_val"] == 0 for v in c.values())
    fixed = choose_gate_variant(TrainConfig(gate="confidence", tau_grid_size=11, gate_probe_every=0, gate_recheck_tau=0,
                                            gate_sentinel_ratio=0, gate_hold=0),
                                calibrated, variants, va, zs, zc, 30)
    assert fixed["chosen"] == "confidence" and fixed["mode"] == "fixed"
    with_probe = gate_candidates(TrainConfig(gate_probe_every=8, gate_recheck_tau=0.5, gate_sentinel_ratio=0,
                                             gate_hold=0), 8)
    assert [n for n, *_ in with_probe] == ["confidence+probe8+recheck0.5", "confirm_changes+probe8+recheck0.5",
                                           "confirm_ictal_hold+probe8+recheck0.5", "confidence", "confirm_changes",
                                           "confirm_ictal_hold"]
    assert [(p, c, g) for _, _, p, c, g, _ in with_probe] == [(8, 0.5, False)] * 3 + [(0, 0.0, False)] * 3
    assert [n for n, *_ in gate_candidates(TrainConfig(gate_probe_every=8, gate_recheck_tau=0, gate_sentinel_ratio=0,
                                                       gate_hold=0), 8)][:1] == ["confidence+probe8"]
    # The sentinel, with or without a probe, is part of the configured setting; the bare rules are compared with it.
    sent = gate_candidates(TrainConfig(gate_probe_every=0, gate_sentinel_ratio=3.0, gate_hold=0), 0)
    assert [(n, p, g) for n, _, p, _, g, _ in sent] == [("confidence+sentinel", 0, True), ("confirm_changes+sentinel", 0, True),
                                                     ("confirm_ictal_hold+sentinel", 0, True), ("confidence", 0, False),
                                                     ("confirm_changes", 0, False), ("confirm_ictal_hold", 0, False)]
    assert gate_candidates(TrainConfig(gate_probe_every=20, gate_sentinel_ratio=3.0, gate_hold=0), 20)[0][0] == \
        "confidence+probe20+sentinel"
    # The default: the sentinel and the hold are the configured setting, compared with the bare rules.
    assert [v[0] for v in gate_candidates(TrainConfig(), 0, sentinel=True)] == [
        "confidence+sentinel+hold2", "confirm_changes+sentinel+hold2", "confirm_ictal_hold+sentinel+hold2",
        "confidence", "confirm_changes", "confirm_ictal_hold"]


def test_simple_auto_picks_the_cheapest_within_the_margin():
    rows = {"A": {"val_f1": 0.93, "macs_per_window": 60000}, "B": {"val_f1": 0.90, "macs_per_window": 20000},
            "C": {"val_f1": 0.915, "macs_per_window": 3000}}
    assert pick_cheapest_within(rows, 0.02)[0] == "C"
    assert pick_cheapest_within(rows, 0.0)[0] == "A"
    rows["C"]["val_f1"] = 0.5
    assert pick_cheapest_within(rows, 0.05)[0] == "B"


# ----------------------------------------------------------------------------- report
def _metrics():
    w = {"accuracy": 0.9, "sensitivity": 0.8, "specificity": 0.95, "f1": 0.85, "auc": 0.97}
    cascade = {**w, "routing_rate": 0.08, "avg_macs_per_window": 1000.0, "macs_ratio_vs_complex": 12.5,
               "events_missed_but_complex_detected": 1}
    ev = {"sensitivity": 0.5, "fa_per_hour": 0.0, "fa_per_24h": 0.0, "mean_delay_s": 3.0, "n_events": 2,
          "n_detected": 1, "n_false_alarms": 0, "hours": 0.2}
    hidden = {"n_events": 2, "n_reference_detected": 2, "n_missed_but_reference_detected": 1,
              "missed": [{"record": "ID4_Sz2", "onset_s": 180.0, "offset_s": 230.0}]}
    fit = {"train": {"simple": 0.99, "complex_only": 1.0, "cascade_complex": 1.0, "cascade": 0.98},
           "val": {"simple": 0.7, "complex_only": 0.4, "cascade_complex": 0.45, "cascade": 0.72}}
    fit["gap"] = {k: fit["train"][k] - fit["val"][k] for k in fit["train"]}
    choices = {"simple_model": {"mode": "auto", "chosen": "C", "auto_choice": "C", "margin": 0.02,
                                "criterion": "cheapest within the margin",
                                "candidates": {"A": {"val_f1": 0.8, "val_auc": 0.9, "macs_per_window": 60000},
                                               "C": {"val_f1": 0.79, "val_auc": 0.88, "macs_per_window": 3000}},
                                "analysis": {"recommended": "B", "reason": "B is better"}, "agrees_with_analysis": False},
               "gate": {"mode": "auto", "chosen": "confirm_changes+probe10", "criterion": "fewest hidden",
                        "auto_reason": "confirm_changes+probe10: ...", "margin": 0.03,
                        "candidates": {"confirm_changes+probe10": {"tau": 0.5, "f1": 0.8, "sensitivity": 0.9,
                                                                   "routing_rate": 0.1, "hidden_val": 0}}}}
    return {"dataset": "swec-short", "split": "loso", "n_windows": {"train": 10, "val": 5, "test": 5},
            "selected_electrode": 3, "soz_electrodes": [3, 4], "simple_model": "C", "tau": 0.5,
            "gate": "confirm_changes", "probe_every": 10, "choices": choices, "fit_gap": fit,
            "test": {"simple_only": w, "complex_only": w, "cascade": cascade, "events": ev,
                     "hidden_seizures": {"vs_complex_only": hidden, "vs_cascade_complex": hidden}}}


def test_report_has_the_choice_hidden_seizure_and_fit_gap_tables(tmp_path):
    from qcascade.report import _summary_row, metrics_markdown

    md = metrics_markdown(_metrics(), tmp_path)
    assert "### Simple model chosen on validation" in md and "**DISAGREES**" in md and "recommends **B**" in md
    assert "### Gate chosen on validation" in md and "| confirm_changes+probe10 | 0.500 | 0.800 |" in md
    assert "### Hidden seizures (test)" in md and "ID4_Sz2 180-230 s" in md
    assert "### Train vs validation F1 (the overfitting gap)" in md
    assert "| 0 | complex_only | 1.000 | 0.400 | 0.600 |" in md
    row = _summary_row("ID4", _metrics())
    assert row["events_missed_but_complex_detected"] == 1 and row["probe_every"] == 10
    assert row["train_f1_complex_only"] == 1.0 and row["val_f1_complex_only"] == 0.4
    assert row["simple_model_analysis"] == "B" and row["simple_model_agrees_with_analysis"] is False


def test_fit_gap_scores_each_model_on_train_and_validation():
    from qcascade.steps_choose import fit_gap

    class Stub:  # logits (0, mean of the window - offset)
        def __init__(self, offset):
            self.offset = offset

        def predict(self, x, batch_size=256, verbose=0):
            m = x.mean(axis=(1, 2)) - self.offset
            return np.stack([np.zeros_like(m), m], 1)

    def ws(n, shift):
        y = (np.arange(n) % 4 == 0).astype(int)
        X = np.where(y[:, None, None] == 1, 1.0, -1.0) + shift + np.zeros((n, 8, 3))
        return SimpleNamespace(X=X, y=y, **one_recording(n))

    tr, va = ws(40, 0.0), ws(40, 1.5)  # validation windows drift upwards: every window looks ictal
    dep = Deployment(selected_electrode=1, simple_model="A", tau=0.5, logit_threshold=2 * np.arctanh(0.5),
                     macs_simple=1, macs_complex=10, gate="confidence", probe_every=0)
    out = fit_gap(None, tr, va, 1, Stub(0.0), Stub(0.0), Stub(10.0), dep,
                  {"C": {"model": Stub(0.0), "val_logits": Stub(0.0).predict(va.X[:, :, 1:2])}})
    assert out["train"]["simple"] == 1.0 and out["val"]["simple"] == pytest.approx(0.4)
    assert out["train"]["complex_only"] is None or out["train"]["complex_only"] == 0.0
    assert out["gap"]["cascade"] == pytest.approx(0.6) and out["gap"]["candidate_C"] == pytest.approx(0.6)
    # Validation logits computed by the caller are used as given (not predicted again).
    given = tuple(Stub(o).predict(va.X[:, :, 1:2] if k == 0 else va.X) for k, o in enumerate((0.0, 0.0, 10.0)))
    cands = {"C": {"model": Stub(0.0), "val_logits": Stub(0.0).predict(va.X[:, :, 1:2])}}
    assert fit_gap(None, tr, va, 1, Stub(0.0), Stub(0.0), Stub(10.0), dep, cands, val_logits=given) == out
    # So are training logits: the simple and complex models' (complex-only is predicted).
    given_tr = (Stub(0.0).predict(tr.X[:, :, 1:2]), Stub(0.0).predict(tr.X))
    assert fit_gap(None, tr, va, 1, Stub(0.0), Stub(0.0), Stub(10.0), dep, cands, train_logits=given_tr) == out
    assert fit_gap(None, tr, va, 1, Stub(0.0), Stub(0.0), Stub(10.0), dep, cands,
                   train_logits=(-given_tr[0], given_tr[1]))["train"]["simple"] != out["train"]["simple"]
    flipped = (given[0], given[1], -given[2])
    assert fit_gap(None, tr, va, 1, Stub(0.0), Stub(0.0), Stub(10.0), dep, cands,
                   val_logits=flipped)["val"]["complex_only"] != out["val"]["complex_only"]


def test_unseen_training_seizures_are_those_the_simple_model_misses_and_the_complex_model_finds():
    from qcascade.steps_choose import unseen_training_seizures

    rec = np.repeat(np.array(["P_Sz1", "P_Sz2", "P_Sz3"]), 20)
    y = np.tile((np.arange(20) >= 10).astype(int), 3)  # 10 ictal windows per record
    tr = SimpleNamespace(y=y, record_ids=rec)
    calls_s = np.zeros(60, bool)
    calls_c = y.astype(bool).copy()
    calls_s[10:20] = True  # Sz1: both see it
    calls_s[30:36] = True  # Sz2: simple 0.6 of the complex model's rate -> unseen at 0.7
    calls_c[50:60] = False  # Sz3: neither sees it -> not unseen (a probe cannot help there)
    out = unseen_training_seizures(tr, logits(np.where(calls_s, 3.0, -3.0)), logits(np.where(calls_c, 3.0, -3.0)), 0.7)
    assert out["unseen"] == ["P_Sz2"] and out["ratio"] == 0.7
    assert out["per_seizure"]["P_Sz2"] == {"simple": 0.6, "complex": 1.0, "unseen": True}
    assert out["per_seizure"]["P_Sz3"]["unseen"] is False and out["per_seizure"]["P_Sz1"]["unseen"] is False
    assert unseen_training_seizures(tr, logits(np.where(calls_s, 3.0, -3.0)), logits(np.where(calls_c, 3.0, -3.0)),
                                    0.6)["unseen"] == []  # 0.6 is not below 0.6 x 1.0


@pytest.mark.parametrize("simple_hits,complex_f1,gap,max_f1,weak", [
    (2, 0.95, 0.3, 0.5, True),    # F1 1/3: under 0.5 and 0.62 under complex-only's
    (2, 0.60, 0.3, 0.5, False),   # 0.27 under: not the gap
    (6, 1.00, 0.3, 0.5, False),   # F1 0.75: over the ceiling, whatever the gap
    (6, 1.00, 0.2, 0.8, True),    # the ceiling raised
    (2, 0.95, 0.0, 0.5, False),   # gap 0: off
    (2, None, 0.3, 0.5, False),   # no validation seizure: complex-only has no F1
])
def test_weak_simple_model_is_one_under_the_ceiling_and_the_gap_under_complex_only(simple_hits, complex_f1, gap,
                                                                                    max_f1, weak):
    from qcascade.steps_choose import weak_simple_model

    y = np.r_[np.zeros(20, int), np.ones(10, int)]
    calls = np.zeros(30, bool)
    calls[20:20 + simple_hits] = True  # no false alarms: F1 = 2h / (10 + h)
    out = weak_simple_model(y, logits(np.where(calls, 3.0, -3.0)), complex_f1, gap, max_f1)
    assert out["simple_val_f1"] == pytest.approx(2 * simple_hits / (10 + simple_hits))
    assert out["weak"] is weak and out["complex_only_val_f1"] == complex_f1
    assert (out["gap"], out["max_f1"]) == (gap, max_f1)


def test_the_gate_choice_names_the_probe_the_fold_deploys():
    n = 120
    y = np.zeros(n, int)
    y[40:70] = 1
    zs, zc = logits(np.where(y == 1, 4.0, -4.0)), logits(np.where(y == 1, 4.0, -4.0))
    va = SimpleNamespace(y=y, **one_recording(n))
    train = TrainConfig(tau_grid_size=11, gate_probe_every=0, gate_sentinel_ratio=0, gate_hold=0)
    variants = gate_candidates(train, 32, sentinel=False)
    calibrated = {name: calibrate_tau(zs, zc, y, 100.0, 10000.0, grid=train.tau_grid(), rule=rule, probe_every=p,
                                      record_ids=va.record_ids, start_s=va.start_s)
                  for name, rule, p, c, _, _ in variants}
    rec = choose_gate_variant(train, calibrated, variants, va, zs, zc, int(y.sum()), sentinel=False, probe_every=32)
    assert rec["chosen"] == "confirm_changes+probe32" and rec["candidates"][rec["chosen"]]["probe_every"] == 32
    assert rec["auto_choice"].endswith("+probe32")  # auto chooses among the variants with the fold's probe


def test_report_names_every_sentinel_option_that_is_on():
    from qcascade.report import hidden_markdown
    from qcascade.sentinel import SentinelSpec

    base = SentinelSpec(2.5, 2, 5, 4, interictal_only=True, persist=5)
    m = {**_metrics(), "hold": 2, "hold_max": 8, "sentinel": base.as_dict()}
    plain = "\n".join(hidden_markdown(m))
    assert "up at 2 electrodes over 2.5x their baseline (32 windows) for 5 windows in a row, then one window in 4" in plain
    assert "staying up" not in plain and "alone" not in plain
    both = SentinelSpec(2.5, 2, 5, 4, interictal_only=True, persist=5, stay_ratio=1.25, own_ratio=1.75, own_electrode=3)
    text = "\n".join(hidden_markdown({**m, "sentinel": both.as_dict()}))
    assert ", staying up while as many stay over 1.25x, or electrode 3 alone over 1.75x, then one window in 4" in text


# ----------------------------------------------------------------------------- the probe period per fold
def _row(tau, f1, routing, meets=True, hidden=0):
    return {"tau": tau, "f1": f1, "routing_rate": routing, "meets_margin": meets, "hidden_val": hidden}


def test_probe_period_choice_is_cost_first_among_safe_periods_that_meet_the_margin():
    rows = {32: _row(0.8, 0.97, 0.60), 16: _row(0.0, 0.80, 0.25, meets=False), 8: _row(0.0, 0.90, 0.34)}
    assert choose_probe_period(rows)[0] == 8  # 16 routes least but misses the margin
    rows[8]["hidden_val"] = 1  # hiding a validation seizure outranks every cost
    assert choose_probe_period(rows)[0] == 32
    no_margin = {p: {**r, "meets_margin": False, "hidden_val": 0} for p, r in rows.items()}
    assert choose_probe_period(no_margin)[0] == 16  # none meets it: the cheapest of all
    tie = {0: _row(0.0, 0.9, 0.1), 16: _row(0.0, 0.9, 0.1)}
    assert choose_probe_period(tie)[0] == 0  # ties: the fold's own period first
    with pytest.raises(ValueError, match="no candidates"):
        choose_probe_period({})


def test_a_frequent_probe_replaces_a_high_tau_where_the_electrode_misses_the_validation_seizure():
    """One validation recording: the simple model is right on its own seizure (windows 40-59), and on
    a seizure of the other zone (windows 200-239), which the complex model sees, it says interictal
    more surely than on a third of the interictal windows. Held to complex-only, the fold's probe
    (32) needs a tau that routes all of those too; a probe every 16 windows finds the far seizure at
    tau 0, so the cost-first choice deploys it."""
    n = 400
    t = np.arange(n)
    own, far = (t >= 40) & (t < 60), (t >= 200) & (t < 240)
    y = (own | far).astype(int)
    d = np.where(own, 4.0, np.where(far, -1.5, np.where(t % 3 == 0, -1.0, -4.0)))
    zs, zc = logits(d), logits(np.where(y == 1, 3.0, -3.0))
    va = SimpleNamespace(y=y, **one_recording(n))
    kw = dict(rule="confirm_changes", record_ids=va.record_ids, start_s=va.start_s, hold=2, hold_max=8)

    def calibrate(p):
        return calibrate_tau(zs, zc, y, 1000, 50000, margin=0.1, reference={"sensitivity": 1.0, "f1": 1.0},
                             reference_f1="complex_only", probe_every=p, **kw)

    rows = probe_candidates([32, 16, 8], calibrate, lambda tau, p: cascade_decide(zs, zc, tau, probe_every=p, **kw),
                            va, zc)
    assert rows[32]["tau"] > 0.6 and rows[16]["tau"] == rows[8]["tau"] == 0.0
    assert all(r["hidden_val"] == 0 and r["meets_margin"] for r in rows.values())
    chosen, reason = choose_probe_period(rows)
    assert chosen == 16 and rows[16]["routing_rate"] < rows[8]["routing_rate"] < rows[32]["routing_rate"]
    assert "probe every 16" in reason
    dec = cascade_decide(zs, zc, 0.0, probe_every=16, **kw)
    assert dec["pred"][far].mean() > 0.6 and float(dec["routed"].mean()) == pytest.approx(rows[16]["routing_rate"])


def test_a_short_seizure_between_two_probes_32_apart_is_found_by_the_default_16():
    """The default probe period of a fold whose training data show a seizure its electrode misses is 16
    (round 63 of docs/generalisation.md): a 25-window far-zone seizure the simple model calls interictal,
    placed between two probes 32 windows apart, gets no probe at 32 and is found at 16."""
    from qcascade.config_train import TrainConfig

    assert TrainConfig().gate_unseen_probe_every == 16
    n = 200
    t = np.arange(n)
    far = (t >= 100) & (t < 125)  # probes every 32 fall on windows 95 and 127, every 16 on 111
    zs, zc = logits(np.full(n, -5.0)), logits(np.where(far, 4.0, -4.0))
    kw = dict(rule="confirm_changes", hold=2, hold_max=8)
    at32 = cascade_decide(zs, zc, 0.0, probe_every=32, **kw)
    at16 = cascade_decide(zs, zc, 0.0, probe_every=TrainConfig().gate_unseen_probe_every, **kw)
    assert at32["pred"][far].sum() == 0 and not at32["routed"][far].any()
    assert at16["routed"][111] and at16["pred"][far][11:].all()  # from the probe on, the complex model keeps it
