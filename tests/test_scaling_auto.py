"""data.input_scaling: auto -- causal_robust where a fold's training recordings drift in gain,
train_stats otherwise; the choice sees no test recording and the run records it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qcascade.cli import train_entry
from qcascade.config import config_hash, load_config
from qcascade.data import Recording
from qcascade.data.amplitude import amplitude_spread, choose_input_scaling, recording_amplitude
from qcascade.data.matwrite import write_mat
from qcascade.errors import ConfigError
from qcascade.steps_data import _scaling_choice


def recording(rid, n_windows, gain, seed=0):
    rng = np.random.default_rng(seed)
    n = n_windows * 512
    data = (rng.standard_normal((n, 3)) * 20.0 * gain).astype(np.float32)
    data[:, 2] = 0.0  # a dead electrode is not read
    spans = [(n // 2, n // 2 + 5 * 512)]
    data[spans[0][0]:spans[0][1], :2] *= 50.0  # a seizure is not read either
    return Recording("P", rid, None, 512, n, 3, spans, (rid,), data=data)


def choose(recs, min_spread=3.0, memory=64, one_recording="train_stats"):
    return choose_input_scaling(recs, n_times=512, stride=512, ictal_overlap=0.5, min_spread=min_spread,
                                memory_windows=memory, one_recording=one_recording)


def test_amplitude_reads_the_quiet_live_electrodes_only():
    quiet = recording("P_Sz1", 80, 1.0)
    # standard normal * 20: MAD = 20 * 0.6745; the seizure (x50) and the dead electrode leave it there
    assert recording_amplitude(quiet) == pytest.approx(20 * 0.6745, rel=0.05)
    assert recording_amplitude(recording("P_Sz2", 80, 4.0)) == pytest.approx(4 * recording_amplitude(quiet), rel=0.05)
    assert amplitude_spread([2.0, None, 8.0]) == 4.0 and amplitude_spread([2.0]) is None


@pytest.mark.parametrize("gains, n_windows, memory, want, reason", [
    ((1.0, 4.0), 80, 64, "causal_robust", ">= x3"),
    ((1.0, 2.0), 80, 64, "train_stats", "< x3"),
    ((1.0, 4.0), 40, 64, "train_stats", "shorter than the scaling memory"),  # Bonn-like segments
    ((1.0, 4.0), 40, 32, "causal_robust", ">= x3"),
    ((4.0,), 80, 64, "train_stats", "fewer than two recordings"),
])
def test_auto_chooses_causal_for_long_recordings_that_drift(gains, n_windows, memory, want, reason):
    recs = [recording(f"P_Sz{k}", n_windows, g, seed=k) for k, g in enumerate(gains)]
    got = choose(recs, memory=memory)
    assert got["input_scaling"] == want and reason in got["reason"]
    assert set(got["amplitude_by_recording"]) == {r.record_id for r in recs}


@pytest.mark.parametrize("gains, n_windows, want, reason", [
    ((4.0,), 80, "causal_robust", "no drift to measure (data.scaling_auto_one_recording: causal_robust)"),
    ((4.0,), 40, "train_stats", "shorter than the scaling memory"),  # one short recording has no past either
    ((1.0, 1.2), 80, "train_stats", "< x3"),  # two recordings: the spread decides, as before
    ((1.0, 4.0), 80, "causal_robust", ">= x3"),
])
def test_one_recording_gets_the_configured_scaling_where_it_is_long_enough(gains, n_windows, want, reason):
    recs = [recording(f"P_Sz{k}", n_windows, g, seed=k) for k, g in enumerate(gains)]
    got = choose(recs, one_recording="causal_robust")
    assert got["input_scaling"] == want and reason in got["reason"] and got["one_recording"] == "causal_robust"
    with pytest.raises(ValueError, match="one_recording"):
        choose(recs, one_recording="auto")


def test_auto_is_the_default_and_falls_back_where_causal_robust_cannot_run():
    assert load_config().data.input_scaling == "auto"
    for bad in ({"n_times": 480}, {"dataset": "swec-long", "data_dir": "/nonexistent"}):  # causal_robust refuses both...
        with pytest.raises(ConfigError, match="power of two|swec-long"):
            load_config(overrides={"data": {"input_scaling": "causal_robust", **bad}})
        load_config(overrides={"data": bad})  # ...auto (the default) loads and resolves to train_stats
    odd = load_config(overrides={"data": {"n_times": 480}}).data
    got = _scaling_choice(odd, {"train": [], "val": []})
    assert got["input_scaling"] == "train_stats" and "480 is not a power of two" in got["reason"]
    with pytest.raises(ConfigError, match="scaling_auto_spread"):
        load_config(overrides={"data": {"input_scaling": "auto", "scaling_auto_spread": 0.5}})
    with pytest.raises(ConfigError, match="scaling_auto_one_recording"):
        load_config(overrides={"data": {"scaling_auto_one_recording": "auto"}})
    assert load_config().data.scaling_auto_one_recording == "causal_robust"  # rule 11 (round 62)


def test_runs_from_before_the_one_recording_default_do_not_resume_silently():
    """Runs made before round 62 scaled two-seizure folds with ``train_stats`` and hashed the key only
    away from that value, so resuming one at today's default is refused, not silently rescaled."""
    old = load_config(overrides={"data": {"scaling_auto_one_recording": "train_stats"}})
    assert config_hash(old) != config_hash(load_config())


@pytest.mark.parametrize("test_gain, train_gains, want", [
    (1.0, (1.0, 5.0), "causal_robust"),
    (1.0, (1.0, 2.0), "causal_robust"),  # x2 reaches the default cut-off, x1.5 (round 46)
    (8.0, (1.0, 1.2), "train_stats"),  # the loud test recording is not seen by the choice
])
def test_run_records_the_fold_choice_from_training_recordings(tmp_path, test_gain, train_gains, want):
    data, fs = tmp_path / "data", 512
    rng = np.random.default_rng(0)
    for k, gain in enumerate(train_gains + (test_gain,), start=1):  # fold 0 tests the last seizure
        write_mat(data / "ID1" / f"Sz{k}.mat", {"EEG": rng.normal(size=(370 * fs, 4)) * 30.0 * gain}, "5")
    cfg = tmp_path / "auto.yaml"
    cfg.write_text("data: {input_scaling: auto}\n")
    out = tmp_path / "run"
    assert train_entry(["--dataset", "swec-short", "--data-dir", str(data), "--out", str(out), "--config", str(cfg),
                        "--until-step", "step_prepare_data"]) == 0
    info = json.loads((out / "ID1" / "data.json").read_text())
    assert info["input_scaling"] == want == info["scaling_choice"]["input_scaling"]
    assert info["records"]["test"] == ["ID1_Sz3"]
    assert "ID1_Sz3" not in info["scaling_choice"]["amplitude_by_recording"]
    assert info["scaling_choice"]["amplitude_spread"] == pytest.approx(max(train_gains) / min(train_gains), rel=0.1)


@pytest.mark.parametrize("one_recording", ["train_stats", "causal_robust"])
def test_a_two_seizure_patient_gets_the_one_recording_scaling(tmp_path, one_recording):
    data, fs = tmp_path / "data", 512
    rng = np.random.default_rng(0)
    for k, gain in enumerate((1.0, 6.0), start=1):  # fold 0 trains on Sz1 (validation carved from it), tests Sz2
        write_mat(data / "ID1" / f"Sz{k}.mat", {"EEG": rng.normal(size=(370 * fs, 4)) * 30.0 * gain}, "5")
    cfg = tmp_path / "auto.yaml"
    cfg.write_text(f"data: {{input_scaling: auto, scaling_auto_one_recording: {one_recording}}}\n")
    out = tmp_path / "run"
    assert train_entry(["--dataset", "swec-short", "--data-dir", str(data), "--out", str(out), "--config", str(cfg),
                        "--until-step", "step_prepare_data"]) == 0
    info = json.loads((out / "ID1" / "data.json").read_text())
    assert info["records"]["test"] == ["ID1_Sz2"] and info["records"]["train"] == ["ID1_Sz1"]
    assert info["input_scaling"] == one_recording == info["scaling_choice"]["input_scaling"]
    assert info["scaling_choice"]["amplitude_spread"] is None and "no drift to measure" in info["scaling_choice"]["reason"]


def test_report_says_which_scaling_each_fold_used():
    from qcascade.report_settings import scaling_line as _scaling_line

    assert _scaling_line({}) == "- input scaling: `train_stats` (configured)"
    m = {"input_scaling": "causal_robust", "input_scaling_reason": "amplitude spread x4.1 >= x3",
         "folds": [{"input_scaling": "causal_robust"}, {"input_scaling": "train_stats"}]}
    line = _scaling_line(m)
    assert "`causal_robust` (amplitude spread x4.1 >= x3)" in line and "per fold: causal_robust, train_stats" in line
    m["folds"][1]["input_scaling"] = "causal_robust"
    assert "per fold" not in _scaling_line(m)


def test_the_report_names_the_folds_whose_tau_was_not_held_to_a_reference_that_misses_the_seizure():
    from qcascade.report_settings import untrusted_line

    assert untrusted_line({"tau_reference_trusted": True}) == ""
    assert "this fold" in untrusted_line({"tau_reference_trusted": False})
    folds = [{"fold": 0}, {"fold": 1, "tau_reference_trusted": False}, {"fold": 2, "tau_reference_trusted": True}]
    line = untrusted_line({"folds": folds})
    assert "fold(s) 1 of 3" in line and "tau_reference_min_f1" in line


def test_the_report_names_the_training_seizures_the_electrode_does_not_see_and_the_probe():
    from qcascade.report_settings import unseen_line

    assert unseen_line({"choices": {}}) == ""  # runs from before it
    none = {"ratio": 0.7, "per_seizure": {"P_Sz1": {}}, "unseen": [], "probe_every": 0}
    assert unseen_line({"choices": {"unseen_seizures": none}}).endswith(": none")
    hit = {"ratio": 0.7, "per_seizure": {}, "unseen": ["P_Sz2", "P_Sz4"], "probe_every": 32}
    line = unseen_line({"choices": {"unseen_seizures": hit}})
    assert "P_Sz2, P_Sz4" in line and "probe every 32 windows" in line and "below 0.7 x" in line
    folds = [{"fold": 0, "unseen_seizures": none}, {"fold": 1, "unseen_seizures": hit}]
    line = unseen_line({"folds": folds})
    assert "fold 1: P_Sz2, P_Sz4" in line and "fold 0" not in line
    off = {**hit, "probe_every": 0}
    assert "no probe added" in unseen_line({"choices": {"unseen_seizures": off}})


def test_the_report_names_the_folds_whose_simple_model_trails_on_validation():
    from qcascade.report_settings import unseen_line

    weak = {"simple_val_f1": 0.22, "complex_only_val_f1": 0.98, "gap": 0.3, "max_f1": 0.5, "weak": True}
    fine = {**weak, "simple_val_f1": 0.93, "weak": False}
    folds = [{"fold": 0, "unseen_seizures": {"ratio": 0.7, "per_seizure": {}, "unseen": [], "probe_every": 32,
                                             "weak_simple": weak}},
             {"fold": 1, "unseen_seizures": {"ratio": 0.7, "per_seizure": {}, "unseen": [], "probe_every": 0,
                                             "weak_simple": fine}}]
    line = unseen_line({"folds": folds})
    assert "simple model trailing complex-only on validation (F1 under 0.5 and 0.3 under complex-only's" in line
    assert "fold 0: 0.22 vs 0.98" in line and "fold 1" not in line.split("trailing")[1]
    folds[0]["unseen_seizures"]["weak_simple"] = {**weak, "weak": False}
    assert "trailing" not in unseen_line({"folds": folds})
