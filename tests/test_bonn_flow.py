"""The Bonn flow: one-electrode default, the subset option, the pooled window metrics beside the
reference (on hand-made fold files), and the whole flow on a small subset of the real data through
C simulation (slow; skipped where ``<repo>/../shared/data/bonn`` or ``QCASCADE_BONN_DIR`` is absent)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from qcascade.config import config_hash, load_config
from qcascade.data.bonn_eval import CANDIDATES, bonn_markdown, pooled_window_metrics
from qcascade.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("QCASCADE_BONN_DIR") or ROOT.parent / "shared/data/bonn")


def test_bonn_defaults_to_one_electrode_and_others_to_128():
    assert load_config(None, {"data": {"dataset": "bonn", "data_dir": "x"}}).data.n_chans == 1
    assert load_config(None, {}).data.n_chans == 128
    assert load_config(None, {"data": {"dataset": "bonn", "data_dir": "x", "n_chans": 4}}).data.n_chans == 4
    # The new keys left at their defaults do not change the hash of an existing run's config.
    cfg = load_config(None, {})
    assert config_hash(cfg) == config_hash(load_config(None, {"data": {"n_chans": 128}}))


def test_segments_per_set_must_leave_a_segment_of_each_set_per_fold():
    cfg = load_config(None, {"data": {"dataset": "bonn", "data_dir": "x", "bonn": {"segments_per_set": 6,
                                                                                    "n_folds": 3}}})
    assert cfg.data.bonn.segments_per_set == 6
    with pytest.raises(ConfigError, match="data.bonn.segments_per_set"):
        load_config(None, {"data": {"dataset": "bonn", "data_dir": "x", "bonn": {"segments_per_set": 2}}})


def _fold(d: Path, y, simple, cplx, routed, pred, feature, cand_logits, val_f1):
    d.mkdir(parents=True, exist_ok=True)
    y = np.asarray(y)
    np.savez(d / "test_logits.npz", y=y, simple=np.asarray(simple, float), complex=np.asarray(cplx, float),
             complex_only=np.asarray(cplx, float), routed=np.asarray(routed), pred=np.asarray(pred),
             feature=np.asarray(feature, float))
    (d / "baselines").mkdir(exist_ok=True)
    for c in CANDIDATES:
        np.save(d / "baselines" / f"{c}_test_logits.npy", np.asarray(cand_logits[c], float))
    (d / "baselines.json").write_text(json.dumps({c: {"history": {"val_f1": [0.1, val_f1[c]]}} for c in CANDIDATES}))


def _two(p1):
    """Logits ``(n, 2)`` whose argmax is 1 where ``p1`` is True."""
    return [[0.0, 1.0] if p else [1.0, 0.0] for p in p1]


def test_pooled_window_metrics_pool_every_fold_and_pick_the_candidate_on_validation(tmp_path):
    unit = tmp_path / "bonn"
    good, bad = _two([1, 1, 0, 0]), _two([0, 0, 1, 1])
    cands = {"simple_A": good, "simple_B": bad, "simple_C": good}
    _fold(unit, [1, 1, 0, 0], simple=good, cplx=bad, routed=[0, 0, 0, 1], pred=[1, 1, 0, 1],
          feature=[0.9, 0.2, 0.1, 0.3], cand_logits=cands, val_f1={"simple_A": 0.5, "simple_B": 0.9, "simple_C": 0.6})
    _fold(unit / "fold1", [1, 0, 0, 0], simple=_two([1, 0, 0, 0]), cplx=_two([1, 0, 0, 0]), routed=[0, 0, 0, 0],
          pred=[1, 0, 0, 0], feature=[0.8, 0.1, 0.1, 0.1],
          cand_logits={c: _two([1, 0, 0, 0]) for c in CANDIDATES},
          val_f1={"simple_A": 0.5, "simple_B": 0.8, "simple_C": 0.6})
    res = pooled_window_metrics(unit)
    assert res["n_folds"] == 2 and res["n_windows"] == 8
    cas = res["models"]["cascade"]  # pooled: tp 3, fp 1, fn 0, tn 4
    assert cas["accuracy"] == pytest.approx(7 / 8) and cas["f1"] == pytest.approx(6 / 7)
    # class-weighted: ictal F1 6/7 (support 3), non-ictal F1 8/9 (support 5)
    assert cas["f1_weighted"] == pytest.approx((3 * 6 / 7 + 5 * 8 / 9) / 8)
    assert res["models"]["simple_B"]["f1"] == pytest.approx(1 / 3)  # tp 1, fp 2, fn 2
    assert res["models"]["feature_baseline"]["f1"] == pytest.approx(0.8)  # threshold 0.5: tp 2, fn 1
    assert res["best_candidate_on_val"] == "simple_B"  # by validation F1, although it is worst on test
    text = bonn_markdown({**res, "reference": {k: {"accuracy": 0.9, "f1": 0.9, "f1_weighted": 0.95, "auc": 0.99,
                                                   "n_windows": 8} for k in ("line_length_native", "line_length_512hz")}})
    assert "deployed cascade 0.857 (< reference)" in text
    assert "best simple candidate on validation (simple_B)" in text and "F1 (class-weighted" in text
    assert res["candidate_folds"] == [0, 1]
    # The candidate study runs on the deployed fold only: candidates pool over the folds that have them.
    for c in CANDIDATES:
        (unit / "fold1" / "baselines" / f"{c}_test_logits.npy").unlink()
    res = pooled_window_metrics(unit)
    assert res["candidate_folds"] == [0] and res["models"]["simple_B"]["n_windows"] == 4
    assert res["models"]["simple_B"]["f1"] == 0.0 and res["models"]["cascade"]["n_windows"] == 8
    assert res["candidate_val_f1"]["simple_B"] == pytest.approx(0.9)


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason=f"Bonn data not found at {REAL} (set QCASCADE_BONN_DIR)")
def test_bonn_flow_on_a_subset_runs_all_folds_through_csim(tmp_path):
    cfg = tmp_path / "bonn_small.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"bonn": {"segments_per_set": 6, "n_folds": 3}},
        "train": {"epochs_stage1": 1, "epochs_stage2": 1, "epochs_stage3": 1, "folds": "all"},
        "hls": {"csim_windows": 10}}))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(ROOT / "train_qkeras.py"), "--config", str(cfg), "--dataset", "bonn",
                           "--data-dir", str(REAL), "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=3000)
    assert proc.returncode == 0, proc.stderr[-4000:]
    unit = out / "bonn"
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["n_chans"] == 1  # not padded to 128
    m = json.loads((unit / "metrics.json").read_text())
    assert len(m["folds"]) == 3 and m["n_test_windows_pooled"] == 18 * 23  # 6 segments x 3 sets, 23 windows each
    tested = [r for f in m["folds"] for r in f["test_records"]]
    assert len(tested) == len(set(tested)) == 18  # every segment tested exactly once
    assert m["selected_electrode"] == 0 and (unit / "csim.json").exists() and "csim" not in m
    res = json.loads((unit / "bonn_windows.json").read_text())
    assert res["n_windows"] == res["reference"]["line_length_512hz"]["n_windows"] == 18 * 23
    assert set(res["models"]) >= {"cascade", "feature_baseline", *CANDIDATES}
    assert res["models"]["cascade"]["f1"] == pytest.approx(m["test"]["cascade"]["f1"])
    report = (unit / "report.md").read_text()
    assert "Bonn: window metrics beside the line-length reference" in report
    summary = json.loads((out / "summary.json").read_text())["units"][0]
    assert summary["csim_cascade_decision_agreement"] >= 0.95
