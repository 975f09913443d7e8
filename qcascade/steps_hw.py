"""Hardware-side build steps: hls4ml conversion, C simulation of the cascade, hardware summary.

Submodels of one design get distinct hls4ml project names and C++ namespaces (they are compiled
into one top level). The measured hls4ml configuration of each submodel is written to
``<unit>/hls/<name>_config.yaml`` and conversion reads it back from there, so a user can edit it and
run ``qcascade convert --run ...`` again; it is regenerated only when the deployed model changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil

import numpy as np

from qcascade.config import config_hash
from qcascade.io_utils import atomic_write_json, atomic_write_text
from qcascade.steps_train import deploy_info, deployed_models, windows

log = logging.getLogger(__name__)

SUBMODELS = {  # name -> (hls4ml project name, C++ namespace)
    "simple": ("qc_simple", "qc_simple_ns"),
    "complex": ("qc_complex", "qc_complex_ns"),
}


def _model_hash(ctx) -> str:
    h = hashlib.sha256()
    for f in ("simple.h5", "complex.h5", "deploy.json"):
        h.update((ctx.unit_dir / "deploy" / f).read_bytes())
    return h.hexdigest()[:16]


def hw_settings(ctx, template: str) -> dict:
    """Part, clock, ReuseFactor, Strategy: the run config where set, else ``hls_configs/<template>.yaml``."""
    from qcascade.hls.convert import load_template

    t = load_template(template)
    h = ctx.cfg.hls
    return {"part": h.part or t.get("Part", "xcu250-figd2104-2L-e"),
            "clock_period": float(h.clock_period_ns or t.get("ClockPeriod", 5.0)),
            "reuse_factor": int(h.reuse_factor or t.get("Model", {}).get("ReuseFactor", 1)),
            "strategy": h.strategy or t.get("Model", {}).get("Strategy", "Latency")}


def _hls_config(ctx, name: str, model, calib_X: np.ndarray) -> dict:
    from qcascade.hls.convert import load_template, make_hls_config, read_hls_config_yaml, write_hls_config_yaml

    path = ctx.path("hls", f"{name}_config.yaml")
    template = f"simple_{ctx.cfg.model.simple_model}" if name == "simple" else "complex"
    project, namespace = SUBMODELS[name]
    s = hw_settings(ctx, template)
    tmpl = load_template(template)
    tmpl.update({"Part": s["part"], "ClockPeriod": s["clock_period"]})  # run config wins over template
    tmpl.setdefault("Model", {}).update({"ReuseFactor": s["reuse_factor"], "Strategy": s["strategy"]})
    # Regenerate when the deployed model or the template changes; keep hand edits otherwise.
    stamp = _model_hash(ctx) + hashlib.sha256(json.dumps(tmpl, sort_keys=True).encode()).hexdigest()[:8]
    if path.exists():
        cfg = read_hls_config_yaml(path)
        if cfg.get("qcascade_model_hash") == stamp:
            log.info("using %s (delete it to measure the precisions again)", path)
            return cfg
    cfg = make_hls_config(model, ctx.cfg.quant, calib_X, project_name=project, namespace=namespace,
                          part=s["part"], clock_period=s["clock_period"], reuse_factor=s["reuse_factor"],
                          strategy=s["strategy"], io_type=ctx.cfg.hls.io_type, overrides=tmpl)
    cfg["qcascade_model_hash"] = stamp
    write_hls_config_yaml(cfg, path)
    return read_hls_config_yaml(path)


def build_jobs() -> int:
    """Concurrent g++ builds: one per core, at most one per submodel."""
    return max(1, min(len(SUBMODELS), os.cpu_count() or 1))


def hls_models(ctx, compile: bool = True) -> dict:
    """Convert (and compile) both submodels from their YAML configs; cached per process."""
    from qcascade.hls.convert import compile_models, convert_model

    if "hls" in ctx.cache:
        return ctx.cache["hls"]
    from qcascade.hls.convert import read_hls_config_yaml

    for name in SUBMODELS:  # hand-edited configs are checked before models and windows are loaded
        if (ctx.unit_dir / "hls" / f"{name}_config.yaml").exists():
            read_hls_config_yaml(ctx.unit_dir / "hls" / f"{name}_config.yaml")
    simple_m, complex_m = deployed_models(ctx)
    e = deploy_info(ctx)["selected_electrode"]
    calib = windows(ctx)["train"].X[:256]
    out = {}
    for name, model, X in (("simple", simple_m, calib[:, :, e:e + 1]), ("complex", complex_m, calib)):
        cfg = _hls_config(ctx, name, model, X)
        project, namespace = SUBMODELS[name]
        prj_dir = ctx.unit_dir / "hls" / name
        if prj_dir.exists():
            shutil.rmtree(prj_dir)  # generated code only; its config lives in <name>_config.yaml
        cfg = {k: v for k, v in cfg.items() if k != "qcascade_model_hash"}
        out[name] = convert_model(model, cfg, prj_dir, project_name=project, namespace=namespace,
                                  io_type=ctx.cfg.hls.io_type, compile=False)
    if compile:
        compile_models(list(out.values()), jobs=build_jobs())
    ctx.cache["hls"] = out
    return out


def step_convert(ctx) -> None:
    models = hls_models(ctx)
    atomic_write_json(ctx.path("hls", "convert.json"), {
        name: {"project_dir": str(ctx.unit_dir / "hls" / name), "project_name": SUBMODELS[name][0],
               "namespace": SUBMODELS[name][1],
               "compile_seconds": getattr(m, "qcascade_compile_seconds", None)}
        for name, m in models.items()})


def _csim_windows(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Test-window indices for C simulation: every ictal window up to half of ``n``, rest spread."""
    rng = np.random.default_rng(seed)
    ictal, other = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    take_i = rng.choice(ictal, min(len(ictal), n // 2), replace=False) if len(ictal) else ictal
    take_o = rng.choice(other, min(len(other), n - len(take_i)), replace=False)
    return np.sort(np.concatenate([take_i, take_o]))


def step_csim(ctx) -> None:
    """hls4ml C simulation per submodel and the generated cascade top level, vs QKeras."""
    from qcascade.hls.csim import csim_markdown, run_csim
    from qcascade.hls.toplevel import generate_toplevel
    from qcascade.steps_train import gate_rule
    from qcascade.training.gate import cascade_decide

    models = hls_models(ctx)
    simple_m, complex_m = deployed_models(ctx)
    dep = deploy_info(ctx)
    te = windows(ctx)["test"]
    idx = _csim_windows(te.y, ctx.cfg.hls.csim_windows, ctx.cfg.train.seed)
    top_dir = ctx.unit_dir / "hls" / "cascade_top"
    X = te.X[idx]
    predictions: dict = {}  # QKeras / hls4ml logits do not depend on tau: computed once
    rule = gate_rule(dep.get("gate"), te)
    full = np.load(ctx.unit_dir / "test_logits.npz")  # deployed QKeras models on every test window

    def simulate(tau: float, out_json):
        # The prev_cls input of each simulated window: its predecessor's final class in the
        # QKeras cascade over the whole test recording (the windows simulated are a subset).
        prev = cascade_decide(full["simple"], full["complex"], tau, **rule)["prev_cls"][idx]
        # Regenerating for another tau recompiles only the top level and testbench.
        generate_toplevel(top_dir, simple_prj=ctx.unit_dir / "hls" / "simple", simple_project=SUBMODELS["simple"][0],
                          simple_namespace=SUBMODELS["simple"][1], complex_prj=ctx.unit_dir / "hls" / "complex",
                          complex_project=SUBMODELS["complex"][0], complex_namespace=SUBMODELS["complex"][1],
                          electrode=dep["selected_electrode"], tau=tau, n_times=ctx.cfg.data.n_times,
                          n_chans=ctx.cfg.data.n_chans, config_hash=config_hash(ctx.cfg),
                          part=hw_settings(ctx, "complex")["part"],
                          clock_period=hw_settings(ctx, "complex")["clock_period"], tb_windows=X[:4],
                          gate_rule=rule["rule"], tb_prev_cls=prev[:4])
        return run_csim(simple_keras=simple_m, complex_keras=complex_m, simple_hls=models["simple"],
                        complex_hls=models["complex"], electrode=dep["selected_electrode"], tau=tau,
                        X_test=X, toplevel_dir=top_dir, out_json=out_json, jobs=build_jobs(),
                        prediction_cache=predictions, prev_cls=prev)

    # The calibrated tau may route (almost) nothing or everything; a probe tau at the median
    # confidence of the C-simulated simple model exercises both paths of the top level. The
    # deployed top level (calibrated tau) is generated last, so it is what stays on disk.
    z = models["simple"].predict(np.ascontiguousarray(X[:, :, dep["selected_electrode"]:][:, :, :1]))
    z = np.asarray(z, np.float64).reshape(len(X), -1)
    probe_tau = float(np.clip(np.round(np.tanh(np.median(np.abs(z[:, 1] - z[:, 0])) / 2), 3), 0.001, 0.999))
    probe = simulate(probe_tau, ctx.path("csim_probe_tau.json"))
    res = simulate(dep["tau"], ctx.path("csim.json"))
    atomic_write_text(ctx.path("csim.md"), csim_markdown(res) + "\n\n### Probe tau (both paths exercised)\n\n"
                      + csim_markdown(probe))
    mpath = ctx.unit_dir / "metrics.json"
    metrics = json.loads(mpath.read_text())
    metrics["csim"] = {
        name: {"decision_agreement": res[name]["decision_agreement"],
               "max_abs_logit_error": res[name]["max_abs_logit_error"]} for name in ("simple", "complex")}
    metrics["csim"]["cascade"] = {k: res["cascade"][k] for k in
                                  ("decision_agreement", "routing_agreement", "gate_agreement_cpp_vs_python")}
    metrics["csim"]["n_windows"] = int(len(idx))
    metrics["csim"]["probe_tau"] = {"tau": probe_tau, "routed_windows": probe["cascade"]["routed_windows"],
                                    **{k: probe["cascade"][k] for k in
                                       ("decision_agreement", "routing_agreement", "gate_agreement_cpp_vs_python")}}
    atomic_write_json(mpath, metrics)


def write_hw_summary(ctx) -> dict | None:
    """Latency/resources per submodel and for the cascade: vendor reports where they exist,
    else the analytic ESTIMATE (labelled so)."""
    from qcascade.hls.estimate import estimate_from_layers
    from qcascade.hls.reports import parse_hls_dir, summarize_cascade
    from qcascade.hls.toplevel import MANIFEST, load_manifest
    from qcascade.models.counting import count_macs

    if not (ctx.unit_dir / "deploy" / "deploy.json").exists():
        return None
    simple_m, complex_m = deployed_models(ctx)
    metrics_path = ctx.unit_dir / "metrics.json"
    routing = json.loads(metrics_path.read_text())["test"]["cascade"]["routing_rate"] if metrics_path.exists() else 1.0
    top_dir = ctx.unit_dir / "hls" / "cascade_top"
    dirs = {}
    if (top_dir / MANIFEST).exists():
        from qcascade.hls.synth import design_dirs

        dirs = design_dirs(top_dir)  # vendor reports of `qcascade synth` land in these folders
    stages, rules = {}, None
    settings = {"simple": hw_settings(ctx, f"simple_{ctx.cfg.model.simple_model}"),
                "complex": hw_settings(ctx, "complex")}
    clock = settings["complex"]["clock_period"]
    for name, model in (("simple", simple_m), ("complex", complex_m)):
        rep = parse_hls_dir(dirs[name]) if name in dirs and dirs[name].exists() else None
        if rep and (rep.get("csynth") or rep.get("vsynth")):
            stages[name] = rep
        else:
            est = estimate_from_layers(count_macs(model)["per_layer"], settings[name]["reuse_factor"], clock)
            rules = est.get("rules")
            stages[name] = est
    cascade = summarize_cascade(stages["simple"], stages["complex"], routing, clock)
    summary = {"simple": _flat(stages["simple"]), "complex": _flat(stages["complex"]), "cascade": cascade,
               "rules": rules if cascade.get("source") == "ESTIMATE" else None, "settings": settings}
    if "cascade" in dirs and dirs["cascade"].exists():
        top_rep = parse_hls_dir(dirs["cascade"])
        if top_rep and (top_rep.get("csynth") or top_rep.get("vsynth")):
            summary["cascade_top"] = _flat(top_rep)
    if (top_dir / MANIFEST).exists():
        buf = load_manifest(top_dir).get("window_buffer")
        if buf:
            summary["window_buffer"] = {"bits": buf.get("bits"), "bram_18k": buf.get("bram18k_estimate")}
    if cascade.get("source") == "ESTIMATE":
        summary["vendor_note"] = ("No Vitis HLS / Vivado reports in this run: numbers are an analytic ESTIMATE. "
                                  f"Run `qcascade synth --run {ctx.run_dir}` where `vitis-run` and `vivado` "
                                  f"are on PATH, then `qcascade report --run {ctx.run_dir}`.")
    atomic_write_json(ctx.path("hw_summary.json"), summary)
    return summary


def _flat(stage: dict) -> dict:
    """One row per block for the report, from a parse_hls_dir result or an estimate."""
    if stage.get("source") == "ESTIMATE":
        return {"source": "ESTIMATE", **{k: stage.get(k) for k in
                                         ("latency_cycles", "ii", "lut", "ff", "dsp", "bram_18k")}}
    cs, vs = stage.get("csynth") or {}, stage.get("vsynth") or {}
    res = vs or cs
    return {"source": "vivado synth" if vs else "csynth", "latency_cycles": cs.get("latency_worst"),
            "ii": cs.get("ii"), "lut": res.get("lut"), "ff": res.get("ff"), "dsp": res.get("dsp"),
            "bram_18k": res.get("bram_18k")}
