"""End-to-end: all folds, two-seizure patients, the feature baseline and the timelines (slow)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _run(args):
    proc = subprocess.run([sys.executable, str(ROOT / "train_qkeras.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.mark.slow
def test_two_seizure_short_term_folder_runs_to_the_end_with_two_folds(tmp_path):
    from qcascade.data.synthetic import make_cohort, write_swec_short

    data = tmp_path / "data"
    write_swec_short(make_cohort(n_patients=1, n_seizures=2, seed=3), data)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "model": {"train_candidates": False},
        "train": {"epochs_stage1": 2, "epochs_stage2": 1, "epochs_stage3": 1},
        "hls": {"csim_windows": 16}}))
    out = tmp_path / "run"
    proc = _run(["--config", str(cfg), "--dataset", "swec-short", "--data-dir", str(data), "--out", str(out)])
    assert "fold 2/2" in proc.stderr
    unit = out / "ID1"
    m = json.loads((unit / "metrics.json").read_text())
    assert [f["test_records"] for f in m["folds"]] == [["ID1_Sz2"], ["ID1_Sz1"]]
    for f in m["folds"]:
        assert f["val_records"] == [r for r in ("ID1_Sz1", "ID1_Sz2") if r not in f["test_records"]]
    blocks = json.loads((unit / "data.json").read_text())["val_time_blocks"]
    assert blocks[0]["record"] == "ID1_Sz1"
    n = sum(len(f["test"]["events"]) and f["test"]["events"]["n_events"] for f in m["folds"])
    assert m["test"]["events"]["n_events"] == n == 2  # each seizure tested once
    assert set(m["test"]["feature_baseline"]) >= {"accuracy", "sensitivity", "specificity", "f1", "auc"}
    assert "fa_per_24h" in m["test"]["events"] and (unit / "csim.json").exists() and "csim" not in m
    report = (unit / "report.md").read_text()
    assert "feature_baseline" in report and "mean ± sd" in report
    for f in m["folds"]:
        for name in f["timelines"]:
            rel = name if f["dir"] == "." else f"{f['dir']}/{name}"
            assert (unit / rel).exists() and f"({rel})" in report
    summary = json.loads((out / "summary.json").read_text())["units"][0]
    assert summary["n_folds"] == 2 and summary["cascade_f1_fold_sd"] is not None
    # A killed or finished run is not redone, fold by fold.
    log_size = (out / "run.log").stat().st_size  # step lines go to the run's full log (appended)
    _run(["--config", str(cfg), "--dataset", "swec-short", "--data-dir", str(data), "--out", str(out)])
    assert "step_folds: already done, skipped" in (out / "run.log").read_bytes()[log_size:].decode()


@pytest.mark.slow
def test_fold_loop_resumes_inside_the_fold_it_was_in(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"synthetic": {"n_patients": 1, "n_seizures": 3}}, "model": {"train_candidates": False},
        "train": {"epochs_stage1": 1, "epochs_stage2": 1, "epochs_stage3": 1}, "hls": {"enabled": False}}))
    out = tmp_path / "run"
    _run(["--config", str(cfg), "--out", str(out)])
    unit = out / "ID1"
    # Simulate a kill inside fold 2: its last steps are not recorded, fold 1 is complete.
    log = json.loads((unit / "fold2" / "steps.json").read_text())
    log["completed"] = log["completed"][:3]
    (unit / "fold2" / "steps.json").write_text(json.dumps(log))
    stamp = (unit / "fold1" / "fold_metrics.json").stat().st_mtime_ns
    steps = json.loads((unit / "steps.json").read_text())
    steps["completed"].remove("step_folds")
    (unit / "steps.json").write_text(json.dumps(steps))
    log_size = (out / "run.log").stat().st_size
    again = _run(["--config", str(cfg), "--out", str(out)])
    assert "step_train_complex ..." in (out / "run.log").read_bytes()[log_size:].decode()
    assert "fold 3/3" in again.stderr
    assert (unit / "fold1" / "fold_metrics.json").stat().st_mtime_ns == stamp
    m = json.loads((unit / "metrics.json").read_text())
    assert len(m["folds"]) == 3 and sorted(r for f in m["folds"] for r in f["test_records"]) == \
        ["ID1_Sz1", "ID1_Sz2", "ID1_Sz3"]
