"""Folds trained by worker processes (``train.fold_workers``, :mod:`qcascade.fold_pool`)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from qcascade.checkpoints import snapshot
from qcascade.config import load_config
from qcascade.errors import ConfigError, DataError
from qcascade.rundir import Step, StepLog, run_steps

ROOT = Path(__file__).resolve().parents[1]


def test_fold_workers_bounds_are_checked():
    with pytest.raises(ConfigError, match="train.fold_workers"):
        load_config(None, {"train": {"fold_workers": 0}})
    assert load_config().train.fold_workers == 2


def test_unit_snapshot_leaves_fold_folders_to_their_own_step_logs(tmp_path):
    (tmp_path / "fold1").mkdir()
    (tmp_path / "fold1" / "fold_metrics.json").write_text("{}")
    (tmp_path / "folded").mkdir()  # only fold<k> folders are another log's
    (tmp_path / "folded" / "x.json").write_text("{}")
    (tmp_path / "metrics.json").write_text("{}")
    assert set(snapshot(tmp_path, folds=False)) == {"metrics.json", "folded/x.json"}
    assert "fold1/fold_metrics.json" in snapshot(tmp_path)


def test_only_the_step_owning_the_folds_records_their_files(tmp_path):
    def other_process_writes_a_fold(ctx):  # what a worker does while a unit step runs
        (tmp_path / "fold1").mkdir(exist_ok=True)
        (tmp_path / "fold1" / "fold_metrics.json").write_text("{}")
        (tmp_path / "a.json").write_text("{}")

    def pool(ctx):
        (tmp_path / "metrics.json").write_text("{}")

    run_steps([Step("step_a", other_process_writes_a_fold), Step("step_folds", pool, owns_folds=True)],
              None, tmp_path)
    outputs = StepLog.load(tmp_path / "steps.json").outputs
    assert set(outputs["step_a"]) == {"a.json"}
    assert set(outputs["step_folds"]) == {"metrics.json", "fold1/fold_metrics.json"}


def test_memory_estimate_counts_the_worker_processes():
    from qcascade.validate import estimate_memory_bytes

    one = estimate_memory_bytes(load_config(None, {"train": {"fold_workers": 1}}), None)
    two = estimate_memory_bytes(load_config(None, {"train": {"fold_workers": 2}}), None)
    first = estimate_memory_bytes(load_config(None, {"train": {"folds": "first"}}), None)
    assert one["processes"] == first["processes"] == 1 and two["processes"] == 3
    assert two["total"] == pytest.approx(3 * one["total"])


def test_a_worker_s_data_error_reaches_the_main_process_naming_the_file(tmp_path):
    from qcascade.data.discover import discover
    from qcascade.data.synthetic import make_cohort, write_swec_short
    from qcascade.fold_pool import FoldPool, unit_folds

    write_swec_short(make_cohort(n_patients=1, n_seizures=3, seed=1), tmp_path / "data")
    recs = discover("swec-short", tmp_path / "data")["ID1"]
    bad = tmp_path / "data" / "ID1" / "Sz1.mat"
    bad.write_bytes(b"not a MAT file")
    cfg = load_config(None, {"data": {"dataset": "swec-short", "data_dir": str(tmp_path / "data")},
                             "hls": {"enabled": False}})
    (tmp_path / "run").mkdir()
    folds = unit_folds(cfg, recs)
    assert len(folds) == 3
    with pytest.raises(DataError, match="Sz1.mat"):
        with FoldPool(cfg, tmp_path / "run") as pool:
            pool.submit("ID1", recs, folds[:1])
            pool.wait("ID1", [0])


def test_every_fold_runs_in_a_fresh_worker_process(tmp_path):
    """One worker, three folds: three processes, none of them this one (a fold's memory leaves
    with its process; docs/long_term.md)."""
    import os

    from qcascade.fold_pool import FoldPool
    from qcascade.folds import Fold
    from qcascade.train_steps import TRAIN_STEPS

    cfg = load_config(None, {"train": {"fold_workers": 1}, "hls": {"enabled": False}})
    unit = tmp_path / "run" / "ID1"
    folds = [None, Fold(1, {"test": []}), Fold(2, {"test": []})]
    for d in [unit, unit / "fold1", unit / "fold2"]:  # steps done: a worker only starts and returns
        d.mkdir(parents=True)
        log = StepLog.load(d / "steps.json")
        for step in TRAIN_STEPS:
            log.mark(step.name, 1.0, {})
    with FoldPool(cfg, tmp_path / "run") as pool:
        pool.submit("ID1", [], folds)
        pool.wait("ID1", [0, 1, 2])
        pids = [pool.worker_pids[("ID1", k)] for k in range(3)]
    assert len(set(pids)) == 3 and os.getpid() not in pids


def test_long_term_folds_never_train_in_the_main_process():
    from qcascade.fold_pool import pool_workers

    long = {"data": {"dataset": "swec-long", "data_dir": "/nonexistent"}}
    assert pool_workers(load_config(None, {**long, "train": {"fold_workers": 1}})) == 1
    assert pool_workers(load_config(None, {**long, "train": {"folds": "first"}})) == 0
    assert pool_workers(load_config(None, {"train": {"fold_workers": 1}})) == 0  # in-process for the others
    assert pool_workers(load_config()) == 2


def _run(args):
    proc = subprocess.run([sys.executable, str(ROOT / "train_qkeras.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _results(unit: Path) -> dict:
    """Everything a fold computes (timings and paths aside)."""
    m = json.loads((unit / "metrics.json").read_text())
    return {"test": m["test"], "folds": [{k: v for k, v in f.items() if k != "dir"} for f in m["folds"]],
            "fold_stats": m["fold_stats"]}


@pytest.mark.slow
def test_worker_processes_give_the_results_of_one_process(tmp_path):
    base = {"data": {"synthetic": {"n_patients": 1, "n_seizures": 3}}, "model": {"train_candidates": False},
            "train": {"epochs_stage1": 1, "epochs_stage2": 1, "epochs_stage3": 1}, "hls": {"enabled": False}}
    runs = {}
    for workers in (1, 2):
        cfg = tmp_path / f"w{workers}.yaml"
        cfg.write_text(yaml.safe_dump({**base, "train": {**base["train"], "fold_workers": workers}}))
        proc = _run(["--config", str(cfg), "--out", str(tmp_path / f"run{workers}")])
        assert "fold 3/3" in proc.stderr
        runs[workers] = tmp_path / f"run{workers}" / "ID1"
    assert _results(runs[2]) == _results(runs[1])
    steps = json.loads((runs[2] / "steps.json").read_text())
    assert any(rel.startswith("fold2/") for rel in steps["outputs"]["step_folds"])
    assert not any(re.match(r"fold\d+/", rel) for s, out in steps["outputs"].items() if s != "step_folds"
                   for rel in out)


def test_tf_threads_reach_tensorflow_in_the_main_process_and_the_workers():
    """train.tf_threads: set before TensorFlow starts (env for spawned workers, API where imported)."""
    code = ("import os, sys\n"
            "from qcascade.runtime import limit_tf_threads\n"
            "limit_tf_threads(int(sys.argv[1]))\n"
            "import tensorflow as tf\n"
            "tf.constant(1.0) + 1.0\n"  # the runtime starts here
            "from multiprocessing import get_context\n"
            "env = get_context('spawn').Pool(1).apply(os.getenv, ('TF_NUM_INTRAOP_THREADS',))\n"
            "print(os.environ.get('TF_NUM_INTRAOP_THREADS'), os.environ.get('TF_NUM_INTEROP_THREADS'), env)\n")
    out = {}
    for n in (1, 0):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")}
        proc = subprocess.run([sys.executable, "-c", code, str(n)], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[n] = proc.stdout.split()[-3:]
    assert out[1] == ["1", "1", "1"] and out[0] == ["None", "None", "None"]
    with pytest.raises(ConfigError, match="train.tf_threads"):
        load_config(None, {"train": {"tf_threads": -1}})
    assert load_config().train.tf_threads == 1


def test_numpy_arrays_use_base_pages_in_the_main_process_and_the_workers():
    """NumPy's huge-page advice is off in the run's process and its spawned workers, unless the
    user set NUMPY_MADVISE_HUGEPAGE (docs/evaluation.md, "Time")."""
    code = ("import os\n"
            "import numpy as np\n"  # imported before the call, as the CLI does
            "from qcascade.runtime import numpy_base_pages\n"
            "numpy_base_pages()\n"
            "from multiprocessing import get_context\n"
            "probe = 'import numpy as np; print(int(np.core.multiarray._get_madvise_hugepage()))'\n"
            "child = get_context('spawn').Pool(1).apply(os.getenv, ('NUMPY_MADVISE_HUGEPAGE',))\n"
            "import subprocess, sys\n"
            "grandchild = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True).stdout.strip()\n"
            "print(int(np.core.multiarray._get_madvise_hugepage()), child, grandchild)\n")
    out = {}
    for preset in (None, "1"):
        env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
        if preset is not None:
            env["NUMPY_MADVISE_HUGEPAGE"] = preset
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[preset] = proc.stdout.split()[-3:]
    assert out[None] == ["0", "0", "0"]
    assert out["1"] == ["1", "1", "1"]  # the user's own setting is left alone


def test_workers_keep_the_run_s_working_directory_when_the_main_process_moves(tmp_path, monkeypatch):
    """A relative run directory still works for workers started while the main process is in
    another folder (hls4ml's compile() moves it into an HLS project while g++ builds): the
    demo once stopped with BrokenProcessPool there."""
    from qcascade.fold_pool import FoldPool
    from qcascade.folds import Fold
    from qcascade.progress import LOG_NAME
    from qcascade.train_steps import TRAIN_STEPS

    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, {"train": {"fold_workers": 1}, "hls": {"enabled": False}})
    unit = Path("run") / "ID1"
    folds = [None, Fold(1, {"test": []})]
    for d in [unit, unit / "fold1"]:  # steps done: a worker only starts and returns
        d.mkdir(parents=True)
        log = StepLog.load(d / "steps.json")
        for step in TRAIN_STEPS:
            log.mark(step.name, 1.0, {})
    with FoldPool(cfg, Path("run")) as pool:
        (tmp_path / "hls_project").mkdir()
        os.chdir(tmp_path / "hls_project")  # workers start after this
        pool.submit("ID1", [], folds)
        pool.wait("ID1", [0, 1])
    assert (tmp_path / "run" / LOG_NAME).exists() and not (tmp_path / "hls_project" / "run").exists()
