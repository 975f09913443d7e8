"""End-to-end runs of train_qkeras.py (slow: minutes each; `make test-slow`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from qcascade.steps_hw import PROBE_MIN_WINDOWS

ROOT = Path(__file__).resolve().parents[1]


def _run(args, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "train_qkeras.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.mark.slow
def test_quick_profile_ends_with_hls_projects_csim_and_report(tmp_path):
    out = tmp_path / "quick"
    _run(["--quick", "--out", str(out)], tmp_path)
    unit = out / "ID1"
    for f in ("metrics.json", "csim.json", "report.md", "hw_summary.json", "deploy/simple.h5",
              "hls/simple/firmware/qc_simple.cpp", "hls/complex/firmware/qc_complex.cpp",
              "hls/cascade_top/cascade_top.cpp", "hls/cascade_top/cascade_tb.cpp"):
        assert (unit / f).exists(), f
    m = json.loads((unit / "metrics.json").read_text())
    assert m["selected_electrode"] in m["soz_electrodes"]
    # With the default loss the complex-only baseline is the cascade's complex model, not retrained.
    assert m["complex_vs_complex_only"] == {"max_abs_logit_diff": 0.0, "decision_agreement": 1.0,
                                            "trained_separately": False}
    assert m["test"]["cascade_complex"] == m["test"]["complex_only"]
    assert "not trained twice" in (unit / "report.md").read_text()
    c = json.loads((unit / "csim.json").read_text())  # C simulation lives in csim.json only
    assert "csim" not in m
    assert c["simple"]["decision_agreement"] >= 0.995 and c["complex"]["decision_agreement"] >= 0.995
    assert c["cascade"]["routing_agreement"] >= 0.99
    assert c["cascade"]["gate_agreement_cpp_vs_python"] == 1.0
    routed, n_csim = c["cascade"]["routed_windows"], c["cascade"]["n_windows"]
    if "skipped" in c["probe_tau"]:  # the calibrated tau already compares both paths of the top level
        assert min(routed, n_csim - routed) >= PROBE_MIN_WINDOWS, c["probe_tau"]
        assert not (unit / "csim_probe_tau.json").exists()
    else:
        assert 0 < c["probe_tau"]["routed_windows"] < n_csim
        assert c["probe_tau"]["gate_agreement_cpp_vs_python"] == 1.0
    # The default (low-power) target: the sized design fits and meets the real-time budget.
    hw = json.loads((unit / "hw_summary.json").read_text())
    assert hw["target"]["name"] == "xc7z020" and hw["fits"] is True, hw["problems"]
    assert hw["realtime_margin"] >= 100
    assert all(layer["parallel_products"] <= 4096 for layer in hw["layers"])
    # The Vitis testbench data reach the complex path and both prev_cls values; the closed loop agrees.
    cs = json.loads((unit / "csim.json").read_text())
    assert cs["vitis_tb"]["n_windows"] >= 16 and cs["vitis_tb"]["n_routed"] >= 4
    if m.get("gate", "confidence") != "confidence":
        assert cs["vitis_tb"]["prev_cls_values"] == [0, 1]
    assert cs["closed_loop"]["agreement_with_python_on_cpp_logits"] == 1.0
    assert (unit / "hls" / "cascade_top" / "tb_data" / "cascade_expected.txt").exists()
    # The default gate has the sentinel: the top level computes it like Python, on every window.
    sentinel = json.loads((unit / "deploy" / "deploy.json").read_text())["sentinel"]
    assert sentinel["ratio"] == 2.5 and sentinel["interictal_only"] is True  # rounds 37 and 29's defaults
    # Round 57's default: it reads the complex model's electrodes and the simple model's, from a list.
    assert sentinel["watch"] == sorted(set(json.loads((unit / "complex_electrodes.json").read_text())["electrodes"])
                                       | {m["selected_electrode"]})
    header = (unit / "hls" / "cascade_top" / "cascade_top.h").read_text()
    assert "#define QCASCADE_GATE_SENTINEL_INTERICTAL_ONLY 1" in header
    assert "#define QCASCADE_SENTINEL_WATCH_ALL 0" in header and f"SENTINEL_N_WATCH = {len(sentinel['watch'])};" in header
    assert cs["cascade"]["sentinel_agreement_cpp_vs_python"] == 1.0 and cs["closed_loop"]["sentinel_agreement"] == 1.0
    # The per-target bench re-sizes the same design, the sentinel's cycles and LUTs included.
    from bench.bench_hardware import estimate_unit

    again = estimate_unit(unit, "xc7z020", 1.0, 100.0, 512, 128)
    assert again["cascade"]["sentinel"] == hw["cascade"]["sentinel"]
    assert (again["cascade"]["latency_cycles"], again["cascade"]["lut"]) == (hw["cascade"]["latency_cycles"],
                                                                           hw["cascade"]["lut"])
    # Every stage trains on every training window, the sub-stride ictal ones included (round 11).
    n_train = json.loads((unit / "data.json").read_text())["n_windows"]["train"]
    per_stage = [json.loads((unit / f"history_stage{s}.json").read_text())["train_windows"] for s in (1, 2, 3)]
    assert per_stage == [n_train] * 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["units"][0]["patient"] == "ID1"
    # A finished run is not redone.
    log_size = (out / "run.log").stat().st_size  # step lines go to the run's full log (appended)
    _run(["--quick", "--out", str(out)], tmp_path)
    assert "step_csim: already done, skipped" in (out / "run.log").read_bytes()[log_size:].decode()


@pytest.mark.slow
def test_quick_profile_with_the_blind_probe_instead_of_the_sentinel(tmp_path):
    """The gate of before round 17 (a probe every 20 windows, no sentinel), with the hardware flow:
    the top level has the probe's gap and no sentinel, and C simulation agrees with Python."""
    cfg = tmp_path / "probe.yaml"
    cfg.write_text(yaml.safe_dump({"train": {"gate_probe_every": 20, "gate_sentinel_ratio": 0}}))
    out = tmp_path / "quick"
    _run(["--quick", "--config", str(cfg), "--out", str(out)], tmp_path)
    unit = out / "ID1"
    dep = json.loads((unit / "deploy" / "deploy.json").read_text())
    assert not dep["sentinel"] and dep["probe_every"] == 20
    man = json.loads((unit / "hls" / "cascade_top" / "cascade_manifest.json").read_text())
    assert not man["gate"].get("sentinel") and man["gate"]["has_gap"]
    assert "#define QCASCADE_GATE_SENTINEL 0" in (unit / "hls" / "cascade_top" / "cascade_top.h").read_text()
    c = json.loads((unit / "csim.json").read_text())
    assert "sentinel_agreement_cpp_vs_python" not in c["cascade"]
    assert c["cascade"]["gate_agreement_cpp_vs_python"] == 1.0 and c["cascade"]["decision_agreement"] == 1.0
    assert c["closed_loop"]["agreement_with_python_on_cpp_logits"] == 1.0
    hw = json.loads((unit / "hw_summary.json").read_text())
    assert "sentinel" not in hw["cascade"] and hw["fits"] is True


@pytest.mark.slow
def test_pooled_cascade_over_two_patients(tmp_path):
    cfg = tmp_path / "pooled.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"synthetic": {"n_patients": 2, "n_seizures": 3}}, "model": {"train_candidates": False},
        "train": {"epochs_stage1": 2, "epochs_stage2": 2, "epochs_stage3": 1}, "hls": {"enabled": False}}))
    out = tmp_path / "pooled"
    _run(["--config", str(cfg), "--pooled", "--out", str(out)], tmp_path)
    m = json.loads((out / "pooled" / "metrics.json").read_text())
    data = json.loads((out / "pooled" / "data.json").read_text())
    assert m["patient"] == "pooled"
    assert {r.split("_")[0] for r in data["records"]["test"]} == {"ID1", "ID2"}  # each patient's last seizure
    assert data["mask"][m["selected_electrode"]]


@pytest.mark.slow
def test_two_fresh_runs_with_one_seed_are_identical(tmp_path):
    """Seeds make runs reproducible: two fresh processes train the same models and metrics
    (regression: unseeded integer-bit profiling gave each fresh run another complex model)."""
    cfg = tmp_path / "small.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"synthetic": {"n_patients": 1, "n_seizures": 3}}, "model": {"train_candidates": False},
        "train": {"epochs_stage1": 2, "epochs_stage2": 2, "epochs_stage3": 1}, "hls": {"enabled": False}}))
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        _run(["--config", str(cfg), "--out", str(out), "--until-step", "step_evaluate"], tmp_path)
    for f in ("checkpoints/int_bits_complex.json", "history_stage2.json", "baselines.json", "fold_metrics.json"):
        a, b = (json.loads((out / "ID1" / f).read_text()) for out in runs)
        for d in (a, b):  # wall-clock entries differ by nature
            if isinstance(d, dict):
                d.pop("seconds", None), d.pop("windows_per_s", None)
                for v in d.values():
                    if isinstance(v, dict) and "history" in v:
                        v["history"].pop("seconds", None), v["history"].pop("windows_per_s", None)
        assert a == b, f
