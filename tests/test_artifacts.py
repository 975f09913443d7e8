"""Typed step artifacts (qcascade.artifacts); one writer per file: tests/test_tiny_run.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from qcascade.artifacts import Artifacts, Deployment, Selection, deployment, save_deployment, selection
from qcascade.errors import RunDirError


def _dep(**kw) -> Deployment:
    base = dict(selected_electrode=3, simple_model="B", tau=0.42, logit_threshold=0.896, macs_simple=1000,
                macs_complex=90000, gate="confirm_changes", gate_variants={"confidence": {"tau": 0.5}})
    return Deployment(**{**base, **kw})


def _ctx(unit_dir: Path):
    return SimpleNamespace(unit_dir=unit_dir, artifacts=Artifacts())


def test_deployment_round_trips_through_deploy_json(tmp_path):
    dep = _dep()
    dep.save(tmp_path)
    raw = json.loads((tmp_path / "deploy" / "deploy.json").read_text())
    # The file keeps the keys earlier runs and readers of deploy.json know.
    assert raw["selected_electrode"] == 3 and raw["macs_complex"] == 90000 and raw["gate"] == "confirm_changes"
    assert raw["simple_path"] == "deploy/simple.h5"
    assert Deployment.load(tmp_path) == dep


def test_deployment_of_a_run_before_the_gate_rules_is_the_confidence_gate(tmp_path):
    raw = {k: v for k, v in vars(_dep()).items() if k not in ("gate", "gate_variants", "simple_path", "complex_path")}
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "deploy.json").write_text(json.dumps({**raw, "gate": None}))
    dep = Deployment.load(tmp_path)
    assert dep.gate == "confidence" and dep.gate_variants == {} and dep.complex_path == "deploy/complex.h5"


def test_missing_record_or_key_names_the_file(tmp_path):
    with pytest.raises(RunDirError, match=r"deploy\.json: missing"):
        Deployment.load(tmp_path)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "deploy.json").write_text(json.dumps({"selected_electrode": 1, "tau": 0.3}))
    with pytest.raises(RunDirError, match=r"deploy\.json: key 'simple_model' missing"):
        Deployment.load(tmp_path)
    (tmp_path / "selection.json").write_text("[1, 2]")
    with pytest.raises(RunDirError, match=r"selection\.json: expected a JSON object"):
        Selection.load(tmp_path)


def test_loaders_use_the_process_copy_and_read_disk_after_a_resume(tmp_path):
    ctx = _ctx(tmp_path)
    save_deployment(ctx, _dep(tau=0.2))
    ctx.artifacts.deployed = object()  # models of an older deployment
    save_deployment(ctx, _dep(tau=0.3))
    assert ctx.artifacts.deployed is None  # a new deployment drops them: they are reloaded from its paths
    assert deployment(ctx).tau == 0.3
    resumed = _ctx(tmp_path)  # a fresh process: nothing in memory
    assert deployment(resumed) == deployment(ctx) and resumed.artifacts.deployment is not None
    Selection(selected_electrode=7, mean_weights=[0.5, 0.5]).save(tmp_path)
    assert selection(resumed).selected_electrode == 7


def test_window_scores_round_trip_and_name_a_missing_array(tmp_path):
    import numpy as np

    from qcascade.artifacts import WindowScores

    n = 5
    z = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    ws = WindowScores(simple=z, complex=-z, complex_only=z + 1, pred=np.array([0, 1, 1, 0, 1]),
                      routed=np.array([1, 0, 0, 1, 0], bool), y=np.array([0, 1, 1, 0, 0]), feature=np.linspace(0, 1, n),
                      start_s=np.arange(n, dtype=float), record_ids=np.array(["a"] * 3 + ["b"] * 2, object))
    ws.save(tmp_path)
    back = WindowScores.load(tmp_path)
    assert back.prev_cls is None and back.routed.dtype == bool  # prev_cls: optional (older runs)
    for name in ("simple", "complex", "complex_only", "pred", "y", "feature", "start_s"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ws, name))
    assert back.record_ids.tolist() == ["a", "a", "a", "b", "b"]
    np.savez(tmp_path / "test_logits.npz", simple=z)
    with pytest.raises(RunDirError, match=r"test_logits\.npz: key 'complex' missing"):
        WindowScores.load(tmp_path)
