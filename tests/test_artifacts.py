"""Typed step artifacts (qcascade.artifacts) and one writing step per output file."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from qcascade import rundir
from qcascade.artifacts import Artifacts, Deployment, Selection, deployment, save_deployment, selection
from qcascade.cli import train_entry
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


TINY = {"data": {"synthetic": {"n_patients": 1, "n_seizures": 3}}, "model": {"train_candidates": False},
        "train": {"epochs_stage1": 1, "epochs_stage2": 1, "epochs_stage3": 1, "folds": "first"},
        "hls": {"enabled": False}}


def test_every_output_file_has_exactly_one_writing_step(tmp_path, monkeypatch):
    """A run's state files (what steps.json lists under ``outputs``) each have one writing step.

    ``steps.json`` keeps only the latest writer of a file, so the writes are recorded as they
    happen: a second step rewriting a file (as ``step_evaluate``, ``step_folds`` and ``step_csim``
    once all wrote ``metrics.json``) fails here.
    """
    writers: dict[tuple[str, str], set] = {}
    real = rundir._run_tracked

    def spy(step, ctx, steplog, names, unit_dir):
        written = real(step, ctx, steplog, names, unit_dir)
        for rel in written:
            writers.setdefault((str(unit_dir), rel), set()).add(step.name)
        return written

    monkeypatch.setattr(rundir, "_run_tracked", spy)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    run = tmp_path / "run"
    assert train_entry(["--config", str(cfg), "--out", str(run)]) == 0
    shared = {k: v for k, v in writers.items() if len(v) > 1}
    assert not shared, shared
    unit = run / "ID1"
    outputs = json.loads((unit / "steps.json").read_text())["outputs"]
    listed: dict[str, list] = {}
    for step, files in outputs.items():
        for rel in files:
            listed.setdefault(rel, []).append(step)
    assert {rel: s for rel, s in listed.items() if len(s) != 1} == {}
    assert listed["metrics.json"] == ["step_folds"] and listed["fold_metrics.json"] == ["step_evaluate"]
    assert listed["deploy/deploy.json"] == ["step_calibrate"] and listed["selection.json"] == ["step_select_electrode"]
    assert set(listed) == {rel for (d, rel) in writers if d == str(unit)}
    m = json.loads((unit / "metrics.json").read_text())
    assert m["tau"] == Deployment.load(unit).tau and "csim" not in m
