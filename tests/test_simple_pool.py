"""``model.simple_prior: other_patients``: the simple model's pool of other patients' electrodes."""

import json

import numpy as np
import pytest

from qcascade.config import load_config
from qcascade.errors import ConfigError, RunDirError
from qcascade.simple_pool import build_simple_pools, load_pool, own_share_weights, recording_electrodes


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from qcascade.data.synthetic import make_cohort, write_swec_short

    root = tmp_path_factory.mktemp("pool_cohort")
    write_swec_short(make_cohort(n_patients=3, n_seizures=2, seed=4, seizure_s=(20.0, 30.0), electrode_range=(24, 32)),
                     root)
    return root


def _cfg(data_dir, **model):
    return load_config(None, {"data": {"dataset": "swec-short", "data_dir": str(data_dir)},
                              "model": {"simple_prior": "other_patients", **model}, "hls": {"enabled": False}})


def _one_fold_run(cohort, tmp_path, model: dict, patient: str, until: str):
    """``train_qkeras.py`` on one patient's first fold (1 epoch per stage, no hardware) up to ``until``;
    returns the run folder."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    conf, out = tmp_path / "run.yaml", tmp_path / "run"
    conf.write_text(yaml.safe_dump({
        "data": {"dataset": "swec-short", "data_dir": str(cohort)},
        "model": {**model, "train_candidates": False},
        "train": {"folds": "first", "epochs_stage1": 1, "epochs_stage2": 1, "epochs_stage3": 1},
        "hls": {"enabled": False}}))
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(root / "train_qkeras.py"), "--config", str(conf), "--out", str(out),
                           "--patient", patient, "--until-step", until], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def test_electrodes_are_ranked_by_how_their_line_length_separates_the_recording():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60), np.ones(20)].astype(int)
    ll = rng.random((80, 5))
    ll[:, 2] += 2.0 * y            # separates perfectly
    ll[:, 0] += 0.4 * y            # partly
    ll[:, 4] += 5.0 * y            # best, but not a live electrode
    ll[:, 3] -= 1.0 * y            # falls with the seizure: ranked last
    mask = np.array([True, True, True, True, False])
    assert recording_electrodes(ll, y, mask, 2) == [2, 0]
    assert recording_electrodes(ll, y, mask, 4)[-1] == 3


def test_the_option_is_refused_where_there_are_no_other_patients_to_pool(tmp_path):
    with pytest.raises(ConfigError, match="simple_prior: other_patients .*'bonn'"):
        load_config(None, {"data": {"dataset": "bonn", "data_dir": str(tmp_path)}, "model": {"simple_prior": "other_patients"}})
    with pytest.raises(ConfigError, match="simple_prior: choose .*'bonn'"):
        load_config(None, {"data": {"dataset": "bonn", "data_dir": str(tmp_path)}, "model": {"simple_prior": "choose"}})
    with pytest.raises(ConfigError, match="simple_prior"):
        load_config(None, {"pooled": True, "data": {"split": "lopo"}, "model": {"simple_prior": "other_patients"}})
    with pytest.raises(ConfigError, match="simple_prior: applies to .*simple_model: auto"):
        load_config(None, {"model": {"simple_prior": "other_patients", "simple_model": "auto"}})
    with pytest.raises(ConfigError, match="simple_prior: 'yes' is not one of"):
        load_config(None, {"model": {"simple_prior": "yes"}})


def test_own_share_splits_each_class_weight_between_the_patient_and_the_pool():
    from qcascade.training.loop import class_weights

    y_own = np.r_[np.zeros(30), np.ones(10)].astype(int)
    y_pool = np.r_[np.zeros(600), np.ones(300)].astype(int)
    f = own_share_weights(y_own, y_pool, 0.5)
    y = np.r_[y_own, y_pool]
    w = class_weights(y)[y] * f
    own = np.arange(len(y)) < len(y_own)
    for c in (0, 1):
        assert np.isclose(w[own & (y == c)].sum(), w[~own & (y == c)].sum())  # half each
        assert np.isclose(w[y == c].sum(), class_weights(y)[c] * np.sum(y == c))  # the class total kept
    g = own_share_weights(y_own, y_pool, 0.2)
    assert np.isclose(g[:len(y_own)][y_own == 1].sum(), 0.25 * g[len(y_own):][y_pool == 1].sum())
    assert np.all(own_share_weights(y_own, np.zeros(50, int), 0.5)[:len(y_own)][y_own == 1] == 1.0)  # no pool ictal
    with pytest.raises(ConfigError, match="simple_prior_own_share: applies to model.simple_prior: other_patients"):
        load_config(None, {"model": {"simple_prior_own_share": 0.5}})
    with pytest.raises(ConfigError, match=r"simple_prior_own_share: must be in \(0, 1\)"):
        load_config(None, {"model": {"simple_prior": "other_patients", "simple_prior_own_share": 1.0}})


def test_each_pool_holds_the_other_patients_onset_electrodes_and_is_kept(cohort, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert build_simple_pools(load_config(None, {"data": {"dataset": "swec-short", "data_dir": str(cohort)}}),
                              run, ["ID1"]) == {}  # off by default
    cfg = _cfg(cohort)
    paths = build_simple_pools(cfg, run, ["ID1", "ID2"])
    truth = json.loads((cohort / "ground_truth.json").read_text())["patients"]
    for unit in ("ID1", "ID2"):
        info = json.loads((run / "simple_pool" / f"{unit}.json").read_text())
        others = sorted({"ID1", "ID2", "ID3"} - {unit})
        assert info["patients"] == others  # never the patient's own windows
        for p in others:
            zone = set(truth[p]["soz_electrodes"])
            for rec in info["electrodes"][p].values():  # the onset zone first, then the seizure's spread
                assert len(rec) == 3 and set(rec[:len(zone)]) <= zone and max(rec) - min(rec) <= 3, (p, rec, zone)
        X, y = load_pool(run, unit)
        assert X.shape == (info["windows"], 512, 1) and X.dtype == np.float32
        assert int(y.sum()) == info["ictal_windows"] and 0 < y.mean() < 0.5
    assert not (run / "simple_pool" / "scratch").exists()
    stamp = paths["ID1"].stat().st_mtime_ns
    build_simple_pools(cfg, run, ["ID1"])
    assert paths["ID1"].stat().st_mtime_ns == stamp  # complete: kept
    manifest = run / "simple_pool" / "ID1.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "patients": ["ID2"]}))
    with pytest.raises(RunDirError, match="ID1.json: built from patients"):
        build_simple_pools(cfg, run, ["ID1"])
    with pytest.raises(RunDirError, match="ID3.npz: missing"):
        load_pool(run, "ID3")


def test_stage_3_trains_the_complex_model_only_when_the_simple_model_is_pooled():
    from test_training import FAST, standin_trainer, toy_data

    from qcascade.training import TrainConfig

    X, y = toy_data(192)
    tr = standin_trainer(TrainConfig(**FAST))
    tr.freeze_simple_stage3 = True
    for stage in (1, 2):
        tr.run_stage(stage, X, y, X[:64], y[:64], verbose=0)
    simple = [v.numpy().copy() for v in tr.simple.weights]
    cplx = [v.numpy().copy() for v in tr.complex.weights]
    hist = tr.run_stage(3, X, y, X[:64], y[:64], verbose=0)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(simple, tr.simple.weights))
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(cplx, tr.complex.weights))
    assert "best_epoch_simple" not in hist


def test_a_run_refits_its_simple_model_on_the_pool_and_freezes_it_in_stage_3(cohort, tmp_path):
    """The run builds ID1's pool from ID2 and ID3 (although it trains ID1 alone), stage 2 refits the
    simple model on it, stage 3 leaves it as stage 2 saved it."""
    out = _one_fold_run(cohort, tmp_path, {"simple_prior": "other_patients", "simple_prior_own_share": 0.5},
                        "ID1", "step_finetune")
    assert json.loads((out / "simple_pool" / "ID1.json").read_text())["patients"] == ["ID2", "ID3"]
    assert not (out / "simple_pool" / "ID2.json").exists()
    unit = out / "ID1"
    hist = json.loads((unit / "history_simple_pool.json").read_text())
    assert hist["pool_windows"] > hist["own_windows"] > 0 and len(hist["train_f1"]) == 1
    assert hist["own_share"] == 0.5
    ckpt = {s: np.load(unit / "checkpoints" / s / "simple.npz") for s in ("stage1", "stage2", "stage3")}
    same = {s: all(np.array_equal(ckpt["stage2"][k], ckpt[s][k]) for k in ckpt["stage2"].files) for s in ckpt}
    assert same == {"stage1": False, "stage2": True, "stage3": True}


def test_the_choice_is_the_simple_model_that_routes_fewer_validation_windows_ties_to_the_own():
    from qcascade.simple_choice import choose_between

    assert choose_between(0.20, 0.05, 0.9, 0.1)["chosen"] == "pooled"
    assert choose_between(0.05, 0.05, 0.1, 0.1)["chosen"] == "own"
    c = choose_between(0.05, 0.20, 0.1, 0.9)
    assert c["chosen"] == "own" and c["val_routing"] == {"own": 0.05, "pooled": 0.20} and c["tau"]["pooled"] == 0.9


def test_a_run_that_chooses_calibrates_both_simple_models_and_deploys_the_one_it_names(cohort, tmp_path):
    """``choose`` trains the cascade as without a pool (stage 3 fine-tunes the simple model), refits a
    copy of stage 1's simple model on the pool at calibration, and deploys the one deploy.json names."""
    out = _one_fold_run(cohort, tmp_path, {"simple_prior": "choose"}, "ID2", "step_calibrate")
    unit = out / "ID2"
    assert json.loads((out / "simple_pool" / "ID2.json").read_text())["patients"] == ["ID1", "ID3"]
    ckpt = {s: np.load(unit / "checkpoints" / s / "simple.npz") for s in ("stage2", "stage3", "simple_pooled")}
    assert not all(np.array_equal(ckpt["stage2"][k], ckpt["stage3"][k]) for k in ckpt["stage2"].files)  # not frozen
    assert json.loads((unit / "history_simple_pool.json").read_text())["pool_windows"] > 0
    dep = json.loads((unit / "deploy" / "deploy.json").read_text())
    choice = dep["choices"]["simple_prior"]
    r = choice["val_routing"]
    assert choice["chosen"] == ("pooled" if r["pooled"] < r["own"] else "own")
    assert dep["tau"] == choice["tau"][choice["chosen"]]
    assert choice["pooled_bn_fold_max_abs_logit_change"] < 0.1


def test_the_report_names_the_folds_that_deploy_the_pooled_simple_model():
    from qcascade.report_settings import simple_prior_line
    from qcascade.simple_choice import choose_between

    assert simple_prior_line({"choices": {}}) == ""  # runs without the choice
    folds = [{"fold": 0, "simple_prior": choose_between(0.1, 0.2, 0.0, 0.0)},
             {"fold": 1, "simple_prior": choose_between(0.9, 0.05, 1.0, 0.1)}]
    line = simple_prior_line({"folds": folds})
    assert "deployed in 1 of 2 fold(s): 1 (0.900 -> 0.050)" in line
    assert "deployed in 0 of 1" in simple_prior_line({"choices": {"simple_prior": choose_between(0.1, 0.2, 0.0, 0.0)}})
