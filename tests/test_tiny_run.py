"""One tiny run of train_qkeras.py (hardware steps off), checked two ways.

* Every state file (what ``steps.json`` lists under ``outputs``) has exactly one writing step.
  ``steps.json`` keeps only the latest writer of a file, so the run records each step's writes
  as they happen: a second step rewriting a file (as ``step_evaluate``, ``step_folds`` and
  ``step_csim`` once all wrote ``metrics.json``) fails here.
* The console is quiet: no TF/CUDA registration errors, no Python or library warnings, one
  progress bar (the environment's ``TF_CPP_MIN_LOG_LEVEL`` is removed, as for a user).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data": {"synthetic": {"n_patients": 1, "n_seizures": 3}}, "model": {"train_candidates": False},
        "train": {"epochs_stage1": 1, "epochs_stage2": 1, "epochs_stage3": 1, "folds": "first"},
        "hls": {"enabled": False}}
# The CLI, with each step's written files recorded (unit folder, file) -> [steps].
SPY = """
import json, sys
from qcascade import rundir
from qcascade.cli import train_entry
writers, real = {}, rundir._run_tracked
def spy(step, ctx, steplog, names, unit_dir):
    written = real(step, ctx, steplog, names, unit_dir)
    for rel in written:
        writers.setdefault(str(unit_dir) + "|" + rel, []).append(step.name)
    return written
rundir._run_tracked = spy
rc = train_entry(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump(writers, f)
sys.exit(rc)
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    cfg = tmp / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", SPY, str(tmp / "writers.json"), "--config", str(cfg),
                           "--out", str(tmp / "run")], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp / "run", json.loads((tmp / "writers.json").read_text()), proc.stderr


def test_every_output_file_has_exactly_one_writing_step(tiny_run):
    from qcascade.artifacts import Deployment

    run, writers, _ = tiny_run
    shared = {k: v for k, v in writers.items() if len(set(v)) > 1}
    assert not shared, shared
    unit = run / "ID1"
    outputs = json.loads((unit / "steps.json").read_text())["outputs"]
    listed: dict[str, list] = {}
    for step, files in outputs.items():
        for rel in files:
            listed.setdefault(rel, []).append(step)
    assert {rel: s for rel, s in listed.items() if len(s) != 1} == {}
    assert set(listed) == {k.split("|", 1)[1] for k in writers if k.split("|", 1)[0] == str(unit)}
    assert listed["metrics.json"] == ["step_folds"] and listed["fold_metrics.json"] == ["step_evaluate"]
    assert listed["deploy/deploy.json"] == ["step_calibrate"] and listed["selection.json"] == ["step_select_electrode"]
    m = json.loads((unit / "metrics.json").read_text())
    assert m["tau"] == Deployment.load(unit).tau and "csim" not in m


NOISE = re.compile(r"cuda|cudnn|cufft|cublas|tensorrt|unable to register|warning", re.IGNORECASE)


def test_complex_only_baseline_is_the_cascade_complex_model_not_trained_again(tiny_run):
    run, _, _ = tiny_run
    base = json.loads((run / "ID1" / "baselines.json").read_text())
    assert base["complex_only"]["trained_separately"] is False
    assert base["complex_only"]["history"]["source"] == "cascade stages 2-3"
    m = json.loads((run / "ID1" / "metrics.json").read_text())
    assert m["complex_vs_complex_only"]["max_abs_logit_diff"] == 0.0
    assert m["test"]["complex_only"] == m["test"]["cascade_complex"]


def test_console_shows_no_tf_noise_no_warnings_and_one_progress_bar(tiny_run):
    run, _, stderr = tiny_run
    lines = [ln.strip() for ln in re.split(r"[\r\n]+", stderr) if ln.strip()]
    assert [ln for ln in lines if NOISE.search(ln)] == []
    bars = [ln for ln in lines if re.search(r"\d+%\|", ln)]
    assert bars and all(ln.startswith(f"{run.name}:") for ln in bars), bars  # the run's bar only
    assert bars[-1].startswith(f"{run.name}: 100%"), bars[-1]
    assert not [ln for ln in lines if re.match(r"Epoch \d+/\d+|\d+/\d+ \[[=>.]+\]", ln)]  # no Keras progbars


def test_validation_logits_replay_the_deployed_gate_choice(tiny_run):
    """``val_logits.npz`` holds what the gate was chosen on: walking the deployed rule over it at
    the deployed tau gives the validation F1 and routing the choice recorded."""
    from qcascade.artifacts import Deployment, ValidationScores
    from qcascade.evaluation import window_metrics
    from qcascade.gate import cascade_decide

    run, writers, _ = tiny_run
    unit = run / "ID1"
    assert writers[f"{unit}|val_logits.npz"] == ["step_calibrate"]
    v, dep = ValidationScores.load(unit), Deployment.load(unit)
    n_val = json.loads((unit / "data.json").read_text())["n_windows"]["val"]
    assert v.simple.shape == v.complex.shape == v.complex_only.shape == (n_val, 2) and len(v.y) == n_val
    sentinel = dict(sentinel=v.sentinel, sentinel_every=dep.sentinel["every"],
                    sentinel_interictal_only=dep.sentinel["interictal_only"]) if dep.sentinel else {}
    dec = cascade_decide(v.simple, v.complex, dep.tau, rule=dep.gate, probe_every=dep.probe_every,
                         recheck_tau=dep.recheck_tau, hold=dep.hold, hold_max=dep.hold_max, fuse=dep.fuse, record_ids=v.record_ids,
                         start_s=v.start_s,
                         **sentinel)
    chosen = dep.choices["gate"]["candidates"][dep.choices["gate"]["chosen"]]
    assert window_metrics(v.y, None, dec["pred"])["f1"] == pytest.approx(chosen["f1"])
    assert float(np.mean(dec["routed"])) == pytest.approx(chosen["routing_rate"])
    # The probe follows from the training seizures the electrode does not see (train.gate_unseen_*).
    from qcascade.config_train import TrainConfig

    unseen = dep.choices["unseen_seizures"]
    assert unseen["per_seizure"] and set(unseen["per_seizure"]) <= set(json.loads((unit / "data.json").read_text())["records"]["train"])
    weak = unseen["weak_simple"]  # train.gate_weak_simple_*: scored on the deployed validation logits
    assert weak["simple_val_f1"] == pytest.approx(dep.fit_gap["val"]["simple"])
    assert weak["complex_only_val_f1"] == pytest.approx(dep.fit_gap["val"]["complex_only"])
    assert weak["gap"] == TrainConfig().gate_weak_simple_gap
    assert unseen["probe_every"] == (TrainConfig().gate_unseen_probe_every if unseen["unseen"] or weak["weak"] else 0)
    # The fold's own period is the first candidate of train.gate_probe_choices (default 16, 8).
    assert list(dep.choices["probe"]["candidates"])[0] == str(unseen["probe_every"])
    assert dep.probe_every == dep.choices["probe"]["chosen"]
    assert "training seizures the electrode does not see" in (unit / "report.md").read_text()


def _recalibrated(tiny_run, tmp_path, **train) -> Path:
    """A copy of the tiny run with ``train`` settings, rerun from step_calibrate; its unit folder."""
    import shutil

    run, _, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cfg = yaml.safe_load((copy / "config.yaml").read_text())
    cfg["train"].update(train)
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(ROOT / "train_qkeras.py"), "--config", str(copy / "config.yaml"),
                           "--out", str(copy), "--from-step", "step_calibrate"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return copy / "ID1"


@pytest.mark.parametrize("interictal_only", [False, True])
def test_sentinel_rerun_from_calibration_records_and_replays_its_decisions(tiny_run, tmp_path, interictal_only):
    """The tiny run recalibrated with the gate's sentinel and a hold (probe off): the deployment
    records both and counts the sentinel's operations, both score files keep where it was up (and
    the test file the hold's counter), and walking the deployed gate over them reproduces the
    validation choice and the test decisions. With ``train.gate_sentinel_interictal_only`` the
    deployment, the walk and the report carry it; that run also sets ``train.gate_sentinel_watch:
    complex``, so the sentinel reads the complex model's electrodes and the simple model's, and
    counts only their operations."""
    from qcascade.artifacts import Deployment, ValidationScores, WindowScores
    from qcascade.evaluation import window_metrics
    from qcascade.gate import cascade_decide
    from qcascade.sentinel import sentinel_ops

    unit = _recalibrated(tiny_run, tmp_path, gate_sentinel_ratio=2.0, gate_probe_every=0, gate_probe_choices=[],
                         gate_hold=2, gate_sentinel_interictal_only=interictal_only,
                         gate_sentinel_watch="complex" if interictal_only else "all")
    dep, v, ws = Deployment.load(unit), ValidationScores.load(unit), WindowScores.load(unit)
    complex_electrodes = json.loads((unit / "complex_electrodes.json").read_text())["electrodes"]
    watch = sorted(set(complex_electrodes) | {dep.selected_electrode}) if interictal_only else None
    assert dep.sentinel["watch"] == watch and (watch is None or 16 <= len(watch) <= 17)
    assert dep.probe_every == 0 and dep.sentinel["ratio"] == 2.0 and dep.hold == 2 and dep.hold_max == 8
    assert dep.choices["gate"]["chosen"].endswith("+sentinel+hold2")
    assert dep.sentinel["ops"] == sentinel_ops(len(watch) if watch else 128, 512)
    assert dep.macs_every_window == dep.macs_simple + dep.sentinel["ops"]
    assert v.sentinel.dtype == bool and ws.sentinel.shape == ws.y.shape and ws.sentinel.any()
    assert dep.sentinel["interictal_only"] is interictal_only
    kw = dict(rule=dep.gate, sentinel_every=dep.sentinel["every"], hold=dep.hold, hold_max=dep.hold_max,
              sentinel_interictal_only=interictal_only, fuse=dep.fuse)
    dv = cascade_decide(v.simple, v.complex, dep.tau, record_ids=v.record_ids, start_s=v.start_s, sentinel=v.sentinel, **kw)
    chosen = dep.choices["gate"]["candidates"][dep.choices["gate"]["chosen"]]
    assert window_metrics(v.y, None, dv["pred"])["f1"] == pytest.approx(chosen["f1"])
    dt = cascade_decide(ws.simple, ws.complex, dep.tau, record_ids=ws.record_ids, start_s=ws.start_s,
                        sentinel=ws.sentinel, **kw)
    assert np.array_equal(dt["pred"], ws.pred) and np.array_equal(dt["routed"], ws.routed)
    assert np.array_equal(dt["held"], ws.held) and ws.held.max() <= 8
    m = json.loads((unit / "metrics.json").read_text())
    assert m["sentinel"] == dep.sentinel and m["test"]["cascade"]["avg_macs_per_window"] == pytest.approx(
        dep.macs_every_window + m["test"]["cascade"]["routing_rate"] * dep.macs_complex)
    reasons = m["test"]["cascade"]["routing_reasons"]
    assert reasons["n_routed"] == int(ws.routed.sum()) == sum(c["windows"] for c in reasons["by_reason"].values())
    report = (unit / "report.md").read_text()
    assert "sentinel up at 2 electrodes over 2x" in report and ", hold 2, growing to 8." in report
    assert (f"among the {len(watch)} it reads" in report) if watch else "it reads" not in report
    assert "Routed test windows by their first reason" in report
    assert ("that the simple model calls interictal" in report) is interictal_only


def test_earliest_of_top_is_the_default_and_records_what_decided(tiny_run, tmp_path):
    """The default ``model.electrode_choice: earliest_of_top`` deploys one of the selector's top-k and
    records the latencies that chose it; ``selector``, rerun from the stage-1 checkpoint, deploys
    the selector's own electrode and records no choice."""
    import shutil

    from qcascade.artifacts import Selection

    run, _, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cfg = yaml.safe_load((copy / "config.yaml").read_text())
    assert cfg["model"]["electrode_choice"] == "earliest_of_top"
    cfg["model"].update(electrode_choice="selector")
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(ROOT / "train_qkeras.py"), "--config", str(copy / "config.yaml"),
                           "--out", str(copy), "--from-step", "step_select_electrode", "--until-step",
                           "step_select_electrode"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    sel, by_selector = Selection.load(run / "ID1"), Selection.load(copy / "ID1")
    choice = sel.electrode_choice
    assert by_selector.electrode_choice is None and by_selector.selected_electrode == choice["selector_electrode"]
    assert sel.selected_electrode == choice["electrode"] and sel.selected_electrode in choice["top"]
    assert len(choice["top"]) == cfg["model"]["electrode_choice_top_k"] and choice["n_seizures"] >= 1
    lat = dict(zip(choice["top"], choice["median_latency_s"]))
    if choice["rule"].startswith("earliest_of_top"):
        first = lat[choice["selector_electrode"]]
        assert lat[sel.selected_electrode] <= first - choice["margin_s"]
        ratio = dict(zip(choice["top"], choice["weight_ratio"]))
        assert ratio[sel.selected_electrode] >= choice["min_weight_ratio"] == cfg["model"]["electrode_choice_min_weight"]
        assert lat[sel.selected_electrode] == min(t for e, t in lat.items()
                                                  if t is not None and ratio[e] >= choice["min_weight_ratio"])
    else:
        assert sel.selected_electrode == choice["selector_electrode"]


def test_second_threshold_rerun_from_calibration_is_deployed_walked_and_reported(tiny_run, tmp_path):
    """``train.gate_tau_interictal: keep``: the deployment records the second threshold and its
    validation sweep, it is what calibrate_tau_interictal gives on the stored validation scores,
    and walking the gate with it reproduces the stored test decisions."""
    from qcascade.artifacts import Deployment, ValidationScores, WindowScores
    from qcascade.gate import cascade_decide
    from qcascade.training.tau import calibrate_tau_interictal

    unit = _recalibrated(tiny_run, tmp_path, gate_tau_interictal="keep")
    dep, v, ws = Deployment.load(unit), ValidationScores.load(unit), WindowScores.load(unit)
    assert dep.tau_interictal is not None and 0.0 <= dep.tau_interictal <= dep.tau
    sweep = dep.choices["tau_interictal"]["sweep"]
    assert dep.choices["tau_interictal"]["mode"] == "keep" and any(r["tau_interictal"] == dep.tau_interictal for r in sweep)
    kw = dict(rule=dep.gate, probe_every=dep.probe_every, recheck_tau=dep.recheck_tau, hold=dep.hold,
              hold_max=dep.hold_max, fuse=dep.fuse)
    if dep.sentinel:
        kw.update(sentinel_every=dep.sentinel["every"], sentinel_interictal_only=dep.sentinel["interictal_only"])
    again, _ = calibrate_tau_interictal(v.simple, v.complex, v.y, dep.tau, dep.tau_sweep_val, "keep",
                                        record_ids=v.record_ids, start_s=v.start_s,
                                        sentinel=v.sentinel if dep.sentinel else None, **kw)
    assert again == dep.tau_interictal
    dt = cascade_decide(ws.simple, ws.complex, dep.tau, record_ids=ws.record_ids, start_s=ws.start_s,
                        sentinel=ws.sentinel if dep.sentinel else None, tau_interictal=dep.tau_interictal, **kw)
    assert np.array_equal(dt["pred"], ws.pred) and np.array_equal(dt["routed"], ws.routed)
    m = json.loads((unit / "metrics.json").read_text())
    assert m["tau_interictal"] == dep.tau_interictal
    assert f"where it says interictal, tau = {dep.tau_interictal:.3f}" in (unit / "report.md").read_text()


def test_fusion_is_deployed_walked_and_reported_and_a_rerun_turns_it_off(tiny_run, tmp_path):
    """``train.gate_fuse`` (default 1/4): the deployment and metrics record it, tau is calibrated against the
    fused complex-only's validation F1, walking the deployed gate with the fusion reproduces the stored test
    decisions, and report.md names it; rerun from calibration with ``gate_fuse: 0``, all of it is unfused."""
    from qcascade.artifacts import Deployment, ValidationScores, WindowScores
    from qcascade.evaluation import window_metrics
    from qcascade.gate import cascade_decide
    from qcascade.gate_args import deployed_gate
    from qcascade.gate_fixed import fused_difference

    unit = tiny_run[0] / "ID1"
    dep, v, ws = Deployment.load(unit), ValidationScores.load(unit), WindowScores.load(unit)
    assert dep.fuse == 0.25
    ref = window_metrics(v.y, None, (fused_difference(v.simple, v.complex_only, 0.25) > 0).astype(int))
    for row in dep.tau_sweep_val:  # held to the fused complex-only (its F1, or a better row's with "best")
        assert row["reference_sensitivity"] == pytest.approx(ref["sensitivity"])
        assert row["reference_f1"] >= (ref["f1"] or 0.0) - 1e-12
    kw = deployed_gate(dep, ws, None, ws.sentinel if dep.sentinel else None)
    assert kw["fuse"] == 0.25
    dt = cascade_decide(ws.simple, ws.complex, dep.tau, **kw)
    assert np.array_equal(dt["pred"], ws.pred) and np.array_equal(dt["routed"], ws.routed)
    m = json.loads((unit / "metrics.json").read_text())
    assert m["fuse"] == 0.25
    assert "`train.gate_fuse`" in (unit / "report.md").read_text()
    off = _recalibrated(tiny_run, tmp_path, gate_fuse=0.0)
    dep, ws = Deployment.load(off), WindowScores.load(off)
    assert dep.fuse == 0.0 and json.loads((off / "metrics.json").read_text())["fuse"] == 0.0
    dt = cascade_decide(ws.simple, ws.complex, dep.tau, **deployed_gate(dep, ws, None, ws.sentinel if dep.sentinel else None))
    assert np.array_equal(dt["pred"], ws.pred) and np.array_equal(dt["routed"], ws.routed)
    assert "`train.gate_fuse`" not in (off / "report.md").read_text()


def test_ictal_stride_rerun_from_calibration_is_deployed_walked_and_reported(tiny_run, tmp_path):
    """``train.gate_ictal_every: 2``: the deployment and metrics record it, walking the deployed gate with the
    stride reproduces the stored test decisions, and report.md names it."""
    from qcascade.artifacts import Deployment, WindowScores
    from qcascade.gate import cascade_decide
    from qcascade.gate_args import deployed_gate

    unit = _recalibrated(tiny_run, tmp_path, gate_ictal_every=2)
    dep, ws = Deployment.load(unit), WindowScores.load(unit)
    assert dep.ictal_every == 2 and dep.hold_max > dep.hold > 0
    kw = deployed_gate(dep, ws, None, ws.sentinel if dep.sentinel else None)
    assert kw["ictal_every"] == 2
    dt = cascade_decide(ws.simple, ws.complex, dep.tau, **kw)
    assert np.array_equal(dt["pred"], ws.pred) and np.array_equal(dt["routed"], ws.routed)
    assert json.loads((unit / "metrics.json").read_text())["ictal_every"] == 2
    assert "`train.gate_ictal_every`" in (unit / "report.md").read_text()


def test_probe_choice_deploys_and_reports_the_chosen_period(tiny_run):
    """``train.gate_probe_choices`` (default 16, 8, with the complex-only reference): every candidate
    period is recorded at its own tau, the deployed probe and tau are the chosen candidate's, walking
    the deployed gate reproduces the stored test decisions, and report.md names the choice."""
    from qcascade.artifacts import Deployment, WindowScores
    from qcascade.gate import cascade_decide
    from qcascade.steps_choose import choose_probe_period

    run, _, _ = tiny_run
    unit = run / "ID1"
    dep, ws = Deployment.load(unit), WindowScores.load(unit)
    choice = dep.choices["probe"]
    own = dep.choices["unseen_seizures"]["probe_every"]
    assert list(choice["candidates"]) == [str(p) for p in dict.fromkeys([own, 16, 8])]
    rows = {int(p): r for p, r in choice["candidates"].items()}
    assert choose_probe_period(rows)[0] == choice["chosen"] == dep.probe_every
    assert dep.tau == rows[dep.probe_every]["tau"] and dep.choices["gate"]["chosen"].startswith(
        "confirm_changes" + (f"+probe{dep.probe_every}" if dep.probe_every else ""))
    kw = dict(rule=dep.gate, probe_every=dep.probe_every, recheck_tau=dep.recheck_tau, hold=dep.hold,
              hold_max=dep.hold_max, tau_interictal=dep.tau_interictal, fuse=dep.fuse)
    if dep.sentinel:
        kw.update(sentinel=ws.sentinel, sentinel_every=dep.sentinel["every"],
                  sentinel_interictal_only=dep.sentinel["interictal_only"])
    dt = cascade_decide(ws.simple, ws.complex, dep.tau, record_ids=ws.record_ids, start_s=ws.start_s, **kw)
    assert np.array_equal(dt["pred"], ws.pred) and np.array_equal(dt["routed"], ws.routed)
    assert f"fold 0: {dep.probe_every or 'none'} (of " in (unit / "report.md").read_text()


def test_routing_budget_rerun_records_its_choice_and_the_replay_reproduces_it(tiny_run, tmp_path):
    """``train.tau_routing_budget`` rerun from step_calibrate: the deployment records the budget and why
    the calibrated tau stays (the tiny run's validation is best at tau 0, which no tau routes less than;
    tests/test_routing_budget.py and tests/test_replay_gate_settings.py cover a budget that binds), the
    replay of the stored logits reproduces the deployment, and report.md says so."""
    from bench.replay_gate_settings import replay_unit
    from qcascade.artifacts import Deployment

    unit = _recalibrated(tiny_run, tmp_path, tau_routing_budget=0.001, tau_routing_budget_max_f1_loss=1.0,
                         tau_routing_budget_fallback="least_routing")
    dep = Deployment.load(unit)
    rec = dep.choices["routing_budget"]
    assert rec["budget"] == 0.001 and rec["max_f1_loss"] == 1.0 and dep.tau == rec["tau"] == rec["calibrated_tau"]
    assert rec["fallback"] == {"mode": "least_routing"}  # the config reaches it; nothing routes less, so it never ran
    calibrated = next(r for r in dep.tau_sweep_val if r["tau"] == rec["calibrated_tau"])
    assert calibrated["routing_rate"] > 0.001 and not rec["applied"] and "no tau routes less" in rec["reason"]
    res = replay_unit(unit, {"deployed": {}, "b": {"budget": 0.5}})  # "deployed" raises unless it reproduces
    assert res["deployed"]["taus"] == [dep.tau] == res["b"]["taus"]
    report = (unit / "report.md").read_text()
    assert "validation routing budget 0.001 (`train.tau_routing_budget`): exceeded on 1 of 1 fold(s)" in report
