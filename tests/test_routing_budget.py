"""train.tau_routing_budget (routing_budget.apply_routing_budget): a cheaper tau where the calibrated one
routes past the budget, unless the cheaper one hides a validation seizure or loses too much F1; with
train.tau_routing_budget_fallback, the least-routing tau that does neither where the budget's is refused."""

import numpy as np
import pytest

from qcascade.config_train import TrainConfig
from qcascade.errors import ConfigError
from qcascade.routing_budget import apply_routing_budget


class _Windows:
    def __init__(self, y):
        self.y = np.asarray(y)
        self.start_s = np.arange(len(y), dtype=float)
        self.record_ids = np.array(["r0"] * len(y))


# 200 validation windows, one seizure (windows 100-139) that complex-only detects.
Y = ((np.arange(200) >= 100) & (np.arange(200) < 140)).astype(int)
REF = 3.0 * np.c_[1 - 2 * Y, 2 * Y - 1]
SWEEP = [{"tau": 0.0, "routing_rate": 0.04, "f1": 0.80}, {"tau": 0.5, "routing_rate": 0.09, "f1": 0.86},
         {"tau": 0.9, "routing_rate": 0.35, "f1": 0.90}, {"tau": 1.0, "routing_rate": 1.0, "f1": 0.92}]


def _decide(finds_seizure):
    """``tau -> decisions``: the cascade finds the seizure (some of its windows) or misses all of it."""
    def decide(tau):
        pred = np.zeros(len(Y), np.int64)
        if finds_seizure(tau):
            pred[110:130] = 1
        return {"pred": pred}
    return decide


def test_off_or_within_the_budget_keeps_the_calibrated_tau():
    assert apply_routing_budget(0.9, SWEEP, 0.0, 0.1, _decide(lambda t: True), _Windows(Y), REF) == (0.9, {})
    tau, rec = apply_routing_budget(0.5, SWEEP, 0.1, 0.1, _decide(lambda t: True), _Windows(Y), REF)
    assert tau == 0.5 and rec["applied"] is False and rec["exceeded"] is False and rec["budget"] == 0.1
    assert "within the budget" in rec["reason"]


def test_a_cheaper_tau_that_still_finds_the_validation_seizure_replaces_a_costly_one():
    tau, rec = apply_routing_budget(0.9, SWEEP, 0.1, 0.1, _decide(lambda t: True), _Windows(Y), REF)
    assert tau == 0.5 and rec["applied"] and rec["exceeded"] and rec["calibrated_tau"] == 0.9 and rec["hidden_val"] == 0
    assert rec["routing_rate"] == {"calibrated": 0.35, "candidate": 0.09}


def test_a_cheaper_tau_that_hides_the_validation_seizure_is_refused():
    """The insurance a high tau bought: only it finds the seizure complex-only detects."""
    tau, rec = apply_routing_budget(0.9, SWEEP, 0.1, 0.1, _decide(lambda t: t >= 0.9), _Windows(Y), REF)
    assert tau == 0.9 and not rec["applied"] and rec["candidate_tau"] == 0.5 and rec["hidden_val"] == 1
    assert "hides 1 validation seizure" in rec["reason"]


def test_a_cheaper_tau_that_loses_too_much_validation_f1_is_refused():
    tau, rec = apply_routing_budget(1.0, SWEEP, 0.1, 0.05, _decide(lambda t: True), _Windows(Y), REF)
    assert tau == 1.0 and not rec["applied"] and "loses 0.060 of validation F1" in rec["reason"]
    assert apply_routing_budget(1.0, SWEEP, 0.1, 0.06, _decide(lambda t: True), _Windows(Y), REF)[0] == 0.5


def test_a_seizure_complex_only_misses_too_does_not_hold_the_budget_back():
    ref_blind = np.c_[np.ones(len(Y)), -np.ones(len(Y))]
    assert apply_routing_budget(0.9, SWEEP, 0.1, 0.1, _decide(lambda t: False), _Windows(Y), ref_blind)[0] == 0.5


@pytest.mark.parametrize("field,value", [("tau_routing_budget", -0.1), ("tau_routing_budget", 1.0),
                                         ("tau_routing_budget_max_f1_loss", 1.5),
                                         ("tau_routing_budget_max_f1_loss", -0.01)])
def test_bad_budget_values_name_the_key(field, value):
    with pytest.raises(ConfigError, match=f"train.{field}"):
        TrainConfig(**{field: value})


def test_where_no_tau_routes_less_the_calibrated_one_stays_and_says_why():
    sweep = [{"tau": 0.0, "routing_rate": 0.3, "f1": 0.8}, {"tau": 0.5, "routing_rate": 0.4, "f1": 0.85}]
    tau, rec = apply_routing_budget(0.0, sweep, 0.1, 0.1, _decide(lambda t: True), _Windows(Y), REF)
    assert tau == 0.0 and rec["exceeded"] and not rec["applied"] and "no tau routes less" in rec["reason"]


def test_the_report_line_counts_exceeded_folds_and_names_the_changes():
    from qcascade.report_settings import budget_line

    folds = [{"fold": 0, "routing_budget": apply_routing_budget(0.9, SWEEP, 0.1, 0.1, _decide(lambda t: True),
                                                               _Windows(Y), REF)[1]},
             {"fold": 1, "routing_budget": apply_routing_budget(0.9, SWEEP, 0.1, 0.1, _decide(lambda t: t >= 0.9),
                                                               _Windows(Y), REF)[1]},
             {"fold": 2, "routing_budget": apply_routing_budget(0.5, SWEEP, 0.1, 0.1, _decide(lambda t: True),
                                                               _Windows(Y), REF)[1]}]
    line = budget_line({"folds": folds})
    assert line.startswith("- validation routing budget 0.1 (`train.tau_routing_budget`): exceeded on 2 of 3 fold(s)")
    assert "cheaper tau deployed on fold 0: tau 0.9 -> 0.5" in line and "calibrated tau kept on fold 1: tau 0.5 hides" in line
    assert budget_line({"folds": [{"fold": 0, "routing_budget": None}]}) == ""


# A costly calibrated tau (0.97, routing 0.8): the budget's tau 0.5 hides the seizure, 0.9 and 0.95 find it.
SWEEP_FB = [{"tau": 0.0, "routing_rate": 0.04, "f1": 0.80}, {"tau": 0.5, "routing_rate": 0.09, "f1": 0.86},
            {"tau": 0.9, "routing_rate": 0.25, "f1": 0.84}, {"tau": 0.95, "routing_rate": 0.30, "f1": 0.90},
            {"tau": 0.97, "routing_rate": 0.80, "f1": 0.92}, {"tau": 1.0, "routing_rate": 1.0, "f1": 0.92}]


def test_the_fallback_deploys_the_least_routing_tau_that_hides_no_seizure():
    tau, rec = apply_routing_budget(0.97, SWEEP_FB, 0.1, 0.1, _decide(lambda t: t >= 0.9), _Windows(Y), REF,
                                    fallback="least_routing")
    assert tau == rec["tau"] == 0.9 and not rec["applied"] and rec["candidate_tau"] == 0.5 and rec["hidden_val"] == 1
    assert rec["fallback"] == {"mode": "least_routing", "tau": 0.9, "applied": True, "routing_rate": 0.25, "f1": 0.84}
    assert "fallback: tau 0.9 routes 0.250" in rec["reason"]
    # Off (the function's default; the config's is least_routing), the fold keeps its calibrated tau, as before the key.
    tau, rec = apply_routing_budget(0.97, SWEEP_FB, 0.1, 0.1, _decide(lambda t: t >= 0.9), _Windows(Y), REF)
    assert tau == 0.97 and rec["fallback"] == {"mode": "off"}


def test_the_fallback_keeps_the_validation_f1_within_the_allowed_loss():
    """0.9 loses 0.08 of validation F1 against the calibrated tau: with 0.05 allowed, 0.95 is the least routing."""
    tau, rec = apply_routing_budget(0.97, SWEEP_FB, 0.1, 0.05, _decide(lambda t: t >= 0.9), _Windows(Y), REF,
                                    fallback="least_routing")
    assert tau == 0.95 and rec["fallback"]["applied"]


def test_the_fallback_keeps_the_calibrated_tau_where_every_cheaper_one_hides_the_seizure():
    tau, rec = apply_routing_budget(0.97, SWEEP_FB, 0.1, 0.1, _decide(lambda t: t >= 0.97), _Windows(Y), REF,
                                    fallback="least_routing")
    assert tau == 0.97 and rec["fallback"] == {"mode": "least_routing", "tau": None, "applied": False}
    assert "fallback: every tau routing less hides" in rec["reason"]


def test_the_fallback_never_picks_a_tau_routing_as_much_as_the_calibrated_one():
    from qcascade.routing_budget import least_routing_safe_tau

    sweep = [{"tau": 0.0, "routing_rate": 0.5, "f1": 0.9}, {"tau": 0.5, "routing_rate": 0.5, "f1": 0.9}]
    assert least_routing_safe_tau(0.5, sweep, 0.1, _decide(lambda t: True), _Windows(Y), REF.argmax(1)) is None


def test_a_budget_the_fallback_does_not_know_is_an_error():
    with pytest.raises(ValueError, match="fallback must be off or least_routing"):
        apply_routing_budget(0.97, SWEEP_FB, 0.1, 0.1, _decide(lambda t: True), _Windows(Y), REF, fallback="cheapest")
    from qcascade.config import load_config

    with pytest.raises(ConfigError, match="tau_routing_budget_fallback"):
        load_config(None, {"train": {"tau_routing_budget_fallback": "cheapest"}})


def test_the_report_line_names_the_folds_the_fallback_changed():
    from qcascade.report_settings import budget_line

    rec = apply_routing_budget(0.97, SWEEP_FB, 0.1, 0.1, _decide(lambda t: t >= 0.9), _Windows(Y), REF,
                               fallback="least_routing")[1]
    line = budget_line({"folds": [{"fold": 0, "routing_budget": rec}]})
    assert "least-routing safe tau deployed (`train.tau_routing_budget_fallback`) on fold 0: tau 0.97 -> 0.9" in line
    assert "calibrated tau kept" not in line
