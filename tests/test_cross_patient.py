"""bench.bench_cross_patient: a complex model trained on one cohort predicts another it never saw."""

import json

import pytest

from bench.bench_cross_patient import main


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    from qcascade.data.synthetic import make_cohort, write_swec_short

    root = tmp_path_factory.mktemp("cohorts")
    for seed in (0, 1):
        cohort = make_cohort(n_patients=2, n_seizures=2, seed=seed, seizure_s=(20.0, 30.0), electrode_range=(24, 32))
        write_swec_short(cohort, root / f"seed{seed}")
    return root


def test_prior_from_one_cohort_scores_every_recording_of_the_other(cohorts, tmp_path, capsys):
    out = tmp_path / "xp"
    assert main(["--train-dir", str(cohorts / "seed0"), "--test-dir", str(cohorts / "seed1"), "--out", str(out),
                 "--epochs", "2"]) == 0
    res = json.loads((out / "cross_patient.json").read_text())
    assert all((out / "prior" / f).is_file() for f in ("prior.weights.h5", "int_bits.json", "prior.json"))
    assert sorted(res["patients"]) == ["ID1", "ID2"] and res["block1"] == "shared"
    for unit, d in res["patients"].items():
        assert sorted(d["records"]) == [f"{unit}_Sz1", f"{unit}_Sz2"]  # every recording tested once
        assert d["pooled"]["n"] == sum(r["n"] for r in d["records"].values())
        assert d["pooled"]["tp"] + d["pooled"]["fn"] == d["pooled"]["n_ictal"] > 0
    # the synthetic seizures are large rhythmic events: a prior from other patients ranks them
    assert min(d["pooled"]["auc"] for d in res["patients"].values()) > 0.7
    assert "| ID1 | **pooled** |" in capsys.readouterr().out
    # the saved prior, evaluated again, gives the same answers
    assert main(["--prior", str(out / "prior"), "--test-dir", str(cohorts / "seed1"), "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "cross_patient.json").read_text())
    assert again["patients"] == res["patients"] and again["prior"]["epochs"] == 2


def test_bad_folders_are_refused_before_training(cohorts, tmp_path, capsys):
    same = ["--train-dir", str(cohorts / "seed0"), "--test-dir", str(cohorts / "seed0"), "--out", str(tmp_path / "a")]
    assert main(same) == 2
    assert "the training and test cohorts are the same folder" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "kept.txt").write_text("x")
    assert main(["--train-dir", str(cohorts / "seed0"), "--test-dir", str(cohorts / "seed1"),
                 "--out", str(tmp_path / "b")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err and (tmp_path / "b" / "kept.txt").exists()
    assert main(["--train-dir", str(tmp_path / "none"), "--test-dir", str(cohorts / "seed1"),
                 "--out", str(tmp_path / "c")]) == 2
    assert "not a folder" in capsys.readouterr().err


def _prior_run_config(prior, data_dir, **model):
    return {"data": {"dataset": "swec-short", "data_dir": str(data_dir), "input_scaling": "causal_robust"},
            "model": {"complex_block1": "shared", "complex_prior": str(prior), "train_candidates": False, **model},
            "train": {"folds": "first", "epochs_stage1": 1, "epochs_stage2": 0, "epochs_stage3": 0},
            "hls": {"enabled": False}}


def test_a_run_refuses_a_prior_it_cannot_start_from(cohorts, tmp_path):
    from qcascade.config import load_config
    from qcascade.errors import ConfigError
    from qcascade.prior import MANIFEST, check_prior, manifest
    from qcascade.prior_train import cohort_config

    prior = tmp_path / "prior"
    with pytest.raises(ConfigError, match="prior.json: missing"):
        check_prior(load_config(None, _prior_run_config(prior, cohorts / "seed1")))
    prior.mkdir()
    for name in ("prior.weights.h5", "int_bits.json"):
        (prior / name).write_text("{}")
    (prior / MANIFEST).write_text(json.dumps(manifest(cohort_config(cohorts / "seed0"))))
    assert check_prior(load_config(None, _prior_run_config(prior, cohorts / "seed1"))) == prior
    with pytest.raises(ConfigError, match="complex is .*shared.* in the prior and .*mixed"):
        check_prior(load_config(None, _prior_run_config(prior, cohorts / "seed1", complex_block1="mixed")))
    for scaling in ("train_stats", "auto"):  # the run scales its own inputs (round 25)
        cfg = _prior_run_config(prior, cohorts / "seed1")
        cfg["data"]["input_scaling"] = scaling
        assert check_prior(load_config(None, cfg)) == prior
    cfg = _prior_run_config(prior, cohorts / "seed1")
    cfg["data"]["n_times"] = 256
    with pytest.raises(ConfigError, match="n_times is 512 in the prior and 256"):
        check_prior(load_config(None, cfg))
    (prior / MANIFEST).write_text("{not json")
    with pytest.raises(ConfigError, match="prior.json: not valid JSON"):
        check_prior(load_config(None, _prior_run_config(prior, cohorts / "seed1")))


def test_stage_two_starts_from_the_prior_and_keeps_its_frozen_layers(cohorts, tmp_path):
    """After one stage-2 epoch the layers of ``model.complex_prior_frozen`` hold exactly the prior's
    weights (all but the BatchNorm statistics, which stage 2 refreshes on the patient's windows),
    so stage 2 started from the prior; the other layers trained."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np
    import yaml

    from qcascade.models import build_model
    from qcascade.prior import save_prior
    from qcascade.prior_train import cap_indices, cohort_config, cohort_windows, discover_units, train_prior

    cfg = cohort_config(cohorts / "seed0")
    units = discover_units(cfg, tmp_path / "scratch", exclude=["ID2"])
    rng = np.random.default_rng(0)
    X, y = cohort_windows(cfg, units, tmp_path / "scratch", 1, rng)
    # The cap selects while copying: the same windows as capping the whole array afterwards.
    Xc, yc = cohort_windows(cfg, units, tmp_path / "scratch", 1, np.random.default_rng(0), len(y) // 3)
    keep = cap_indices(y, len(y) // 3, rng)
    assert len(yc) == len(y) // 3 and np.array_equal(yc, y[keep]) and np.array_equal(Xc, X[keep])
    del Xc
    model, int_bits = train_prior(cfg, X[::4], y[::4], 1)
    save_prior(tmp_path / "prior", cfg, model, int_bits, {"patients": sorted(units)})
    conf = tmp_path / "run.yaml"
    run_cfg = _prior_run_config(tmp_path / "prior", cohorts / "seed1")
    run_cfg["train"]["epochs_stage2"] = 1
    conf.write_text(yaml.safe_dump(run_cfg))
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(root / "train_qkeras.py"), "--config", str(conf), "--patient", "ID1",
                           "--out", str(tmp_path / "run"), "--until-step", "step_train_complex"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    unit = tmp_path / "run" / "ID1"
    assert json.loads((unit / "checkpoints" / "int_bits_complex.json").read_text()) == int_bits
    with np.load(unit / "checkpoints" / "stage2" / "complex.npz") as z:
        after = [z[f"arr_{i}"] for i in range(len(z.files))]
    names = [w.name for w in model.weights]
    assert len(after) == len(names)
    kept = [i for i, n in enumerate(names) if "moving_" not in n]
    frozen = [i for i in kept if names[i].split("/")[0] in cfg.model.complex_prior_frozen]
    assert len(frozen) == 6  # the bank's and the mixing conv's kernels, their BN gammas and betas
    assert all(np.array_equal(after[i], model.get_weights()[i]) for i in frozen)
    trained = [i for i in kept if i not in frozen]
    assert sum(not np.array_equal(after[i], model.get_weights()[i]) for i in trained) > len(trained) // 2
    fresh = build_model("complex", cfg.quant, int_bits=int_bits, n_times=512, n_chans=128,
                        **cfg.model.model_options("complex"))
    assert not any(np.array_equal(after[i], fresh.get_weights()[i]) for i in frozen)  # not a fresh start


def test_an_unknown_frozen_layer_is_refused_by_name():
    from qcascade.config import load_config
    from qcascade.errors import ConfigError
    from qcascade.models import build_model
    from qcascade.prior import freeze_prior_layers

    cfg = load_config(None, {"model": {"complex_block1": "shared"}})
    model = build_model("complex", cfg.quant, n_times=512, n_chans=128, **cfg.model.model_options("complex"))
    with pytest.raises(ConfigError, match=r"complex_prior_frozen: \['block1_cnv'\] are not layers"):
        freeze_prior_layers(model, ["block1_conv", "block1_cnv"])
    def frozen():
        return {layer.name for layer in model.layers if layer.weights and not layer.trainable}

    before = frozen()  # cbam_t_bcast, the all-ones broadcast, is frozen by design
    freeze_prior_layers(model, cfg.model.complex_prior_frozen)
    assert frozen() - before == {"block1_conv", "block1_bn", "block1_mix_conv", "block1_mix_bn"}


def test_training_windows_are_capped_with_the_class_ratio_kept():
    import numpy as np

    from qcascade.prior_train import cap_indices

    y = np.array([0] * 300 + [1] * 100)
    keep = cap_indices(y, 200, np.random.default_rng(0))
    assert len(keep) == 200 and y[keep].sum() == 50 and np.all(np.diff(keep) > 0)
    assert np.array_equal(cap_indices(y, 400, np.random.default_rng(0)), np.arange(400))


def test_prior_batches_cover_every_window_once_per_epoch_with_class_weights():
    import numpy as np

    from qcascade.prior_train import _batches

    X = np.arange(10, dtype=np.float32)[:, None, None]
    y = np.array([0] * 7 + [1] * 3)
    w = np.array([0.5, 2.0], np.float32)
    seq, again = _batches(X, y, w, 4, seed=3), _batches(X, y, w, 4, seed=3)
    assert len(seq) == 3
    epochs = []
    for _ in range(2):
        got = [seq[i] for i in range(len(seq))]
        assert all(np.array_equal(again[i][0], g[0]) for i, g in enumerate(got))  # seeded
        rows = np.concatenate([g[0][:, 0, 0] for g in got]).astype(int)
        assert sorted(rows) == list(range(10))
        assert all(np.array_equal(g[1], y[g[0][:, 0, 0].astype(int)]) and np.array_equal(g[2], w[g[1]]) for g in got)
        epochs.append(rows)
        seq.on_epoch_end()
        again.on_epoch_end()
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled between epochs


def test_prior_train_refuses_bad_folders_and_keeps_earlier_outputs(cohorts, tmp_path, capsys):
    from qcascade.prior_train import main as train_main

    assert train_main(["--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "p")]) == 2
    assert "none: not a folder" in capsys.readouterr().err
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "prior.json").write_text("{}")
    assert train_main(["--data-dir", str(cohorts / "seed0"), "--out", str(tmp_path / "p")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "p" / "prior.json").read_text() == "{}"
    assert train_main(["--data-dir", str(cohorts / "seed0"), "--exclude-patient", "ID1", "ID2",
                       "--out", str(tmp_path / "q")]) == 2
    assert "no recordings found outside ['ID1', 'ID2']" in capsys.readouterr().err


def test_other_patients_is_refused_where_it_cannot_leave_a_patient_out(cohorts):
    from qcascade.config import load_config
    from qcascade.errors import ConfigError
    from qcascade.prior import check_prior

    def cfg(**over):
        tree = {"data": {"dataset": "swec-short", "data_dir": str(cohorts / "seed0")},
                "model": {"complex_block1": "shared", "complex_prior": "other_patients"}}
        for key, value in over.items():
            section, name = key.split("__")
            tree.setdefault(section, {})[name] = value
        return load_config(None, tree)

    assert check_prior(cfg()) is None  # nothing to check before the run trains its priors
    for block1 in ("mixed", "hybrid"):
        with pytest.raises(ConfigError, match=f"complex_block1: shared, got '{block1}'"):
            check_prior(cfg(model__complex_block1=block1))
    with pytest.raises(ConfigError, match="other_patients needs data.dataset in .*got 'bonn'"):
        check_prior(cfg(data__dataset="bonn"))
    pooled = load_config(None, {"pooled": True, "data": {"dataset": "swec-short", "data_dir": str(cohorts / "seed0")},
                                "model": {"complex_block1": "shared", "complex_prior": "other_patients"}})
    with pytest.raises(ConfigError, match="a pooled run has one unit"):
        check_prior(pooled)
    with pytest.raises(ConfigError, match="complex_prior_epochs: applies to .*other_patients only"):
        load_config(None, {"model": {"complex_prior_epochs": 2}})
    with pytest.raises(ConfigError, match="complex_prior_max_windows: must be at least 64"):
        cfg(model__complex_prior_max_windows=10)


def _run(conf, out, *args):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, str(root / "train_qkeras.py"), "--config", str(conf), "--out", str(out),
                           *args], cwd=out.parent, env=env, capture_output=True, text=True, timeout=900)


def test_a_run_trains_each_patients_prior_on_the_other_patients_and_keeps_it(cohorts, tmp_path):
    """``complex_prior: other_patients``: the prior of ID1 is trained on ID2 only (all patients of the
    folder, although the run trains ID1 alone), stage 2 starts from it, a resumed run keeps it, and a
    prior whose manifest was never written is trained again."""
    import numpy as np
    import yaml

    from qcascade.config import load_config
    from qcascade.models import build_model

    run_cfg = {"data": {"dataset": "swec-short", "data_dir": str(cohorts / "seed0")},
               "model": {"complex_block1": "shared", "complex_prior": "other_patients", "train_candidates": False,
                         "complex_prior_epochs": 1, "complex_prior_max_windows": 200},
               "train": {"folds": "first", "epochs_stage1": 1, "epochs_stage2": 1, "epochs_stage3": 0},
               "hls": {"enabled": False}}
    conf, out = tmp_path / "run.yaml", tmp_path / "run"
    conf.write_text(yaml.safe_dump(run_cfg))
    proc = _run(conf, out, "--patient", "ID1", "--until-step", "step_prepare_data")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not (out / "priors").exists()  # no step that needs it ran
    proc = _run(conf, out, "--patient", "ID1", "--until-step", "step_train_complex")
    assert proc.returncode == 0, proc.stderr[-4000:]
    prior = out / "priors" / "ID1"
    info = json.loads((prior / "prior.json").read_text())
    assert info["patients"] == ["ID2"] and info["excluded"] == ["ID1"] and info["epochs"] == 1
    assert 0 < info["windows"] <= 200 and info["input_scaling"] == "causal_robust"
    assert not (out / "priors" / "ID2").exists() and not (prior / "scratch").exists()
    unit = out / "ID1"
    assert json.loads((unit / "checkpoints" / "int_bits_complex.json").read_text()) == \
        json.loads((prior / "int_bits.json").read_text())
    cfg = load_config(conf)
    model = build_model("complex", cfg.quant, int_bits=json.loads((prior / "int_bits.json").read_text()),
                        n_times=512, n_chans=128, **cfg.model.model_options("complex"))
    model.load_weights(str(prior / "prior.weights.h5"))
    with np.load(unit / "checkpoints" / "stage2" / "complex.npz") as z:
        after = [z[f"arr_{i}"] for i in range(len(z.files))]
    names = [w.name for w in model.weights]
    frozen = [i for i, n in enumerate(names) if "moving_" not in n and n.split("/")[0] in cfg.model.complex_prior_frozen]
    assert len(frozen) == 6 and all(np.array_equal(after[i], model.get_weights()[i]) for i in frozen)

    stamp = (prior / "prior.weights.h5").stat().st_mtime_ns
    proc = _run(conf, out, "--patient", "ID1", "--until-step", "step_train_complex", "--from-step", "step_train_complex")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (prior / "prior.weights.h5").stat().st_mtime_ns == stamp
    assert "prior from the other patients: kept" in (out / "run.log").read_text()

    (prior / "prior.json").unlink()  # as if killed before the manifest was written
    proc = _run(conf, out, "--patient", "ID1", "--from-step", "step_train_complex")  # to the report
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (prior / "prior.json").is_file() and (prior / "prior.weights.h5").stat().st_mtime_ns != stamp
    used = json.loads((unit / "metrics.json").read_text())["complex_prior"]
    assert used == {"folder": str(prior), "patients": ["ID2"], "excluded": ["ID1"],
                    "windows": json.loads((prior / "prior.json").read_text())["windows"]}
    assert f"started from the prior `{prior}`, trained on 1 patient(s) (ID2, this patient left out" in \
        (unit / "report.md").read_text()

    info = json.loads((prior / "prior.json").read_text())
    (prior / "prior.json").write_text(json.dumps({**info, "patients": ["ID2", "ID3"]}))  # the folder changed since
    proc = _run(conf, out, "--patient", "ID1", "--until-step", "step_train_complex")
    assert proc.returncode != 0 and "trained on patients ['ID2', 'ID3'], but the other patients" in proc.stderr
    assert (unit / "checkpoints" / "stage2" / "complex.npz").is_file()  # nothing written is lost


def test_priors_train_side_by_side_only_as_far_as_memory_allows():
    from qcascade.config import load_config
    from qcascade.errors import ConfigError
    from qcascade.prior_other import prior_bytes, prior_workers

    cfg = load_config(None, {"model": {"complex_block1": "shared", "complex_prior": "other_patients"},
                             "train": {"fold_workers": 2}})
    one = prior_bytes(cfg)
    assert 7.0e9 < one < 8.0e9  # 20,000 windows of 512 x 128 (round 25: 6.8 GB for 17,935)
    gib = 2 ** 30
    assert prior_workers(cfg, 8, available=64 * gib) == 2
    assert prior_workers(cfg, 1, available=64 * gib) == 1
    assert prior_workers(cfg, 8, available=12 * gib) == 1
    with pytest.raises(ConfigError, match="complex_prior_max_windows=20000: one prior's training needs"):
        prior_workers(cfg, 8, available=8 * gib)
    assert prior_workers(cfg, 8, available=None) == 2  # memory unknown: as configured


def test_a_prior_trained_on_the_patients_a_run_tests_is_refused(cohorts, tmp_path):
    from qcascade.config import load_config
    from qcascade.errors import ConfigError
    from qcascade.prior import MANIFEST, check_prior_leak

    prior = tmp_path / "prior"
    prior.mkdir()
    (prior / MANIFEST).write_text(json.dumps({"data_dir": str(cohorts / "seed0"), "patients": ["ID1", "ID2"]}))

    def cfg(data_dir):
        return load_config(None, {"data": {"dataset": "swec-short", "data_dir": str(data_dir)},
                                  "model": {"complex_block1": "shared", "complex_prior": str(prior)}})

    with pytest.raises(ConfigError, match=r"trained on ID2 of .*seed0, which this run tests.*--exclude-patient ID2"):
        check_prior_leak(cfg(cohorts / "seed0"), ["ID2", "ID3"])
    check_prior_leak(cfg(cohorts / "seed0"), ["ID3"])  # another patient of the same folder
    check_prior_leak(cfg(cohorts / "seed1"), ["ID1", "ID2"])  # another cohort: round 24's priors
