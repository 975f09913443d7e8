"""bench.replay_fold_choice: the per-fold choice on validation, pooled as the pipeline pools."""

import numpy as np
import pytest
from test_folds import _fake_fold

from bench.replay_fold_choice import format_replay, replay, validation_f1
from qcascade.errors import DataError
from qcascade.folds import pool_folds
from qcascade.io_utils import atomic_save_npz


def _run(root, seed, val_hits):
    """A two-fold unit whose complex-only model gets ``val_hits[k]`` of fold k's 10 ictal validation windows."""
    rng = np.random.default_rng(seed)
    unit = root / "P"
    for k, hits in enumerate(val_hits):
        d = unit if k == 0 else unit / f"fold{k}"
        (d / "deploy").mkdir(parents=True, exist_ok=True)
        _fake_fold(d, rng, 100 + 50 * k, f"r{k}")
        y = np.r_[np.zeros(40), np.ones(10)].astype(int)
        pred = np.r_[np.zeros(40), np.ones(hits), np.zeros(10 - hits)].astype(int)
        z = np.c_[1 - pred, pred].astype(float)
        atomic_save_npz(d / "val_logits.npz", y=y, complex_only=z, complex=z, simple=z)
    return unit


def test_each_fold_comes_from_the_run_better_on_validation_and_pools_like_the_pipeline(tmp_path):
    a = _run(tmp_path / "a", 0, [9, 4])
    b = _run(tmp_path / "b", 1, [5, 8])
    assert validation_f1(a) == pytest.approx(window_metrics_f1(9))
    res = replay(a, b)
    assert res["choice"] == [0, 1]
    want = pool_folds([a, b / "fold1"])["test"]
    assert res["pooled"]["chosen"]["cascade"]["f1"] == pytest.approx(want["cascade"]["f1"])
    assert res["pooled"]["chosen"]["complex_only"]["f1"] == pytest.approx(want["complex_only"]["f1"])
    assert res["pooled"]["a"]["cascade"]["f1"] == pytest.approx(pool_folds([a, a / "fold1"])["test"]["cascade"]["f1"])
    assert "0.95/0.67, 0.57/0.89*" in format_replay(res, ("mixed", "hybrid"))


def test_ties_keep_the_first_run_and_other_fold_plans_are_refused(tmp_path):
    a = _run(tmp_path / "a", 0, [7, 7])
    b = _run(tmp_path / "b", 1, [7, 7])
    assert replay(a, b)["choice"] == [0, 0]
    c = _run(tmp_path / "c", 2, [7])
    with pytest.raises(DataError, match="folds"):
        replay(a, c)


def window_metrics_f1(hits):
    return 2 * hits / (hits + 10)


def test_electrode_rule_replay_takes_each_fold_from_the_run_that_deployed_the_rules_electrode(tmp_path):
    import json

    from bench.replay_electrode_choice import replay as replay_electrode

    s = _run(tmp_path / "s", 0, [9, 4])
    e = _run(tmp_path / "e", 1, [5, 8])
    choices = [([12, 15], [4.0, 1.0]), ([45, 43], [None, 27.0])]  # fold 0: 3 s earlier; fold 1: selector untimed
    for d_s, d_e, (top, lat) in zip((s, s / "fold1"), (e, e / "fold1"), choices):
        (d_s / "selection.json").write_text(json.dumps({"selected_electrode": top[0]}))
        (d_e / "selection.json").write_text(json.dumps({"selected_electrode": top[1], "electrode_choice": {
            "top": top, "median_latency_s": lat}}))
    res = replay_electrode(s, e, margin_s=2.0, top_k=2)
    assert res["electrodes"] == [(12, 15, 15), (45, 43, 45)]
    want = pool_folds([e, s / "fold1"])["test"]
    assert res["pooled"]["rule"]["cascade"] == pytest.approx(want["cascade"]["f1"])
    assert replay_electrode(s, e, margin_s=3.5, top_k=2)["electrodes"][0] == (12, 15, 12)
    # the weight floor (round 49): fold 0's earlier electrode weighs 10 % of the selector's own
    sel = json.loads((e / "selection.json").read_text())
    sel["mean_weights"] = [0.0] * 12 + [0.5, 0.0, 0.0, 0.05]
    (e / "selection.json").write_text(json.dumps(sel))
    sel1 = json.loads((e / "fold1" / "selection.json").read_text())
    (e / "fold1" / "selection.json").write_text(json.dumps({**sel1, "mean_weights": [0.0] * 43 + [0.2, 0.0, 0.6]}))
    assert replay_electrode(s, e, margin_s=2.0, top_k=2, min_weight=0.25)["electrodes"][0] == (12, 15, 12)
    assert replay_electrode(s, e, margin_s=2.0, top_k=2, min_weight=0.05)["electrodes"][0] == (12, 15, 15)
    (e / "fold1" / "selection.json").write_text(json.dumps(sel1))
    with pytest.raises(DataError, match="no mean_weights"):
        replay_electrode(s, e, margin_s=2.0, top_k=2, min_weight=0.25)  # fold 1 records no weights
    (s / "fold1" / "selection.json").write_text(json.dumps({"selected_electrode": 7}))
    with pytest.raises(DataError, match="neither run"):
        replay_electrode(s, e, margin_s=2.0, top_k=2)
