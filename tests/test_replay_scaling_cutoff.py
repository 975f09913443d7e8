"""bench.replay_scaling_cutoff: a cut-off of data.scaling_auto_spread replayed fold by fold from two runs."""

import json
import shutil

import numpy as np
import pytest
from test_folds import _fake_fold

from bench.bench_stress import patient_row
from bench.replay_scaling_cutoff import format_cutoff, main, picks_causal, replay_cutoff
from qcascade.errors import DataError
from qcascade.folds import pool_folds

# fold 0: auto scaled it causally (x4); fold 1: x2 measured, train_stats; fold 2: one training recording
CHOICES = [{"input_scaling": "causal_robust", "amplitude_spread": 4.0, "median_windows": 300},
           {"input_scaling": "train_stats", "amplitude_spread": 2.0, "median_windows": 300},
           {"input_scaling": "train_stats", "amplitude_spread": None, "median_windows": 300}]


def _run(root, seed, scaling=None):
    rng = np.random.default_rng(seed)
    unit = root / "P"
    for k, choice in enumerate(CHOICES):
        d = unit if k == 0 else unit / f"fold{k}"
        (d / "deploy").mkdir(parents=True, exist_ok=True)
        _fake_fold(d, rng, 100 + 50 * k, f"r{k}")
        (d / "data.json").write_text(json.dumps({"scaling_choice": scaling or choice}))
    return unit


@pytest.fixture
def runs(tmp_path):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    (cohort / "ground_truth.json").write_text(json.dumps(
        {"patients": {"P": {"multifocal": False, "recordings": {"r0": {}, "r1": {}, "r2": {}}}}}))
    auto = _run(tmp_path / "auto", 0)
    causal = _run(tmp_path / "causal", 1, {"input_scaling": "causal_robust", "reason": "configured"})
    for name in ("test_logits.npz", "fold_metrics.json", "deploy.json"):  # fold 0 trained alike in both runs
        if (auto / name).exists():
            shutil.copy(auto / name, causal / name)
    return cohort, tmp_path / "auto", tmp_path / "causal"


def test_the_rule_is_autos_own_with_another_cutoff():
    assert picks_causal(CHOICES[1], None, 64) is False and picks_causal(CHOICES[0], None, 64) is True
    assert picks_causal(CHOICES[1], 1.5, 64) is True and picks_causal(CHOICES[1], 2.5, 64) is False
    assert picks_causal(CHOICES[2], 1.0, 64) is False and picks_causal(CHOICES[2], 0, 64) is True
    assert picks_causal({**CHOICES[1], "median_windows": 30}, 1.5, 64) is False  # no past to scale from
    one = {**CHOICES[2], "amplitude_spread": None, "median_windows": 300}
    assert picks_causal(one, 1.5, 64) is False  # runs from before data.scaling_auto_one_recording
    assert picks_causal({**one, "one_recording": "causal_robust"}, 1.5, 64) is True
    assert picks_causal({**one, "one_recording": "causal_robust", "median_windows": 30}, 1.5, 64) is False


def test_each_cutoff_takes_the_causal_runs_folds_it_would_scale_causally(runs):
    cohort, auto, causal = runs
    res = replay_cutoff(cohort, auto, causal, [None, 1.5, 2.5, 0])
    picks = {label: r["picks"]["P"] for label, r in res["cutoffs"].items()}
    assert picks == {"auto": "ctt", "1.5": "cct", "2.5": "ctt", "0": "ccc"}
    a, c = auto / "P", causal / "P"
    want = patient_row(pool_folds([a, c / "fold1", a / "fold2"]), False, 3)
    got = res["cutoffs"]["1.5"]["rows"]["P"]
    assert got["cascade_f1"] == pytest.approx(want["cascade_f1"]) and got["macs_ratio"] == pytest.approx(want["macs_ratio"])
    assert res["cutoffs"]["auto"]["rows"]["P"]["cascade_f1"] == pytest.approx(
        patient_row(pool_folds([a, a / "fold1", a / "fold2"]), False, 3)["cascade_f1"])
    assert res["same_causal"] == (1, [])
    text = format_cutoff(res)
    assert "| P | cct |" in text and "Cut-off x1.5" in text and "every fold causal" in text
    row = res["cutoffs"]["1.5"]["rows"]["P"]
    assert f"| {row['cascade_f1']:.3f} | {row['feature_baseline_f1']:.3f} |" in text
    below = row["cascade_f1"] < row["feature_baseline_f1"]
    assert f"cascade below the feature baseline: {'P' if below else 'none'}," in text.split("Cut-off x1.5")[1]


def test_runs_that_differ_on_a_shared_causal_fold_or_in_fold_plan_are_flagged(runs):
    cohort, auto, causal = runs
    z = dict(np.load(causal / "P" / "test_logits.npz"))
    z["simple"] = z["simple"] + 1.0
    np.savez(causal / "P" / "test_logits.npz", **z)
    res = replay_cutoff(cohort, auto, causal, [None])
    assert res["same_causal"][0] == 0 and res["same_causal"][1] == [str(causal / "P")]
    assert "DIFFERING" in format_cutoff(res)
    m = json.loads((causal / "P" / "fold2" / "fold_metrics.json").read_text())
    m["test_records"] = ["r9"]
    (causal / "P" / "fold2" / "fold_metrics.json").write_text(json.dumps(m))
    with pytest.raises(DataError, match="same fold plan"):
        replay_cutoff(cohort, auto, causal, [None])
    shutil.rmtree(causal / "P" / "fold2")
    with pytest.raises(DataError, match="test_logits"):
        replay_cutoff(cohort, auto, causal, [None])


def test_the_command_prints_the_replay_and_refuses_a_cutoff_below_one(runs, capsys):
    cohort, auto, causal = runs
    assert main([str(auto), str(causal), "--cohort", str(cohort), "--cutoffs", "1.5"]) == 0
    assert "| P | cct |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(auto), str(causal), "--cohort", str(cohort), "--cutoffs", "0.5"])
    assert "must be >= 1" in capsys.readouterr().err
