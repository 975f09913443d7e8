"""Hardware-side build steps: hls4ml conversion, C simulation of the cascade, hardware summary.

Submodels of one design get distinct hls4ml project names and C++ namespaces (they are compiled
into one top level). The measured hls4ml configuration of each submodel is written to
``<unit>/hls/<name>_config.yaml`` and conversion reads it back from there, so a user can edit it and
run ``qcascade convert --run ...`` again; it is regenerated only when the deployed model changes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil

import numpy as np

from qcascade.artifacts import Deployment, WindowScores, deployed_models, deployment
from qcascade.config import config_hash
from qcascade.errors import DataError
from qcascade.errors import ConfigError, QCascadeError
from qcascade.io_utils import atomic_write_json, atomic_write_text
from qcascade.steps_data import input_scaling, windows
from qcascade.gate_args import deployed_gate
from qcascade.steps_scaling import design_windows, hw_input_scaling
from qcascade.steps_tb import loop_record, vitis_tb

log = logging.getLogger(__name__)

# Each path of the top level is compared with QKeras on at least this many C-simulated windows.
PROBE_MIN_WINDOWS = 4
SUBMODELS = {  # name -> (hls4ml project name, C++ namespace)
    "simple": ("qc_simple", "qc_simple_ns"),
    "complex": ("qc_complex", "qc_complex_ns"),
}


def _model_hash(ctx) -> str:
    h = hashlib.sha256()
    dep = deployment(ctx)
    for f in (dep.simple_path, dep.complex_path, Deployment.FILE):
        h.update((ctx.unit_dir / f).read_bytes())
    return h.hexdigest()[:16]


def hw_settings(ctx, template: str) -> dict:
    """Target, part, clock: the run config's ``hls.target`` (clock overridable by ``hls.clock_period_ns``).

    A template ``hls_configs/<template>.yaml`` may not name another part than the target's.
    """
    from qcascade.hls.convert import TEMPLATE_DIR, load_template
    from qcascade.hls.targets import load_target, resolve_part

    h = ctx.cfg.hls
    target = load_target(h.target)
    t = load_template(template)
    if t.get("Part") not in (None, target.part):
        raise ConfigError(f"{TEMPLATE_DIR / (template + '.yaml')}: Part {t['Part']!r} disagrees with hls.target "
                          f"{target.name!r} ({target.part}); remove Part (the target sets it)")
    return {"target": target.name, "part": resolve_part(target, h.part),
            "clock_period": float(h.clock_period_ns or t.get("ClockPeriod") or target.clock_period_ns),
            "reuse_factor": h.reuse_factor or (t.get("Model") or {}).get("ReuseFactor", "auto"),
            "strategy": h.strategy or (t.get("Model") or {}).get("Strategy", "auto")}


def _templates(ctx) -> dict[str, str]:
    # deploy.json: with model.simple_model: auto the choice is made at calibration
    return {"simple": f"simple_{deployment(ctx).simple_model}", "complex": "complex"}


def _hls_configs(ctx, models: dict, calib: dict) -> dict[str, dict]:
    """The run's hls configs (``hls/<name>_config.yaml``): measured types, sized ReuseFactors.

    Regenerated when the deployed models, the templates or the hls settings change; hand edits of
    a ReuseFactor in the file survive a regeneration (see :mod:`qcascade.hls.design`).
    """
    from qcascade.hls.convert import load_template, make_hls_config, read_hls_config_yaml, write_hls_config_yaml
    from qcascade.hls.design import describe_config, plan_configs
    from qcascade.hls.targets import load_target

    h = ctx.cfg.hls
    settings = {name: hw_settings(ctx, t) for name, t in _templates(ctx).items()}
    templates = {name: load_template(t) for name, t in _templates(ctx).items()}
    stamp_of = {"t": templates, "s": settings, "safety": h.realtime_safety, "stride": ctx.cfg.data.stride_s}
    scaled = input_scaling(ctx) == "causal_robust"
    if scaled:  # its cycles share the budget (only then: other runs keep their stamps)
        stamp_of["scaling"] = ["causal_robust", ctx.cfg.data.n_chans]
    extra = _sentinel_cycles(ctx)
    if extra:  # so do the sentinel's
        stamp_of["sentinel_cycles"] = extra
    key = json.dumps(stamp_of, sort_keys=True, default=str)
    stamp = _model_hash(ctx) + hashlib.sha256(key.encode()).hexdigest()[:8]
    paths = {name: ctx.path("hls", f"{name}_config.yaml") for name in models}
    old = {name: read_hls_config_yaml(p) if p.exists() else None for name, p in paths.items()}
    if all(o is not None and o.get("qcascade_model_hash") == stamp for o in old.values()):
        log.info("using %s (delete them to measure the precisions and size the layers again)",
                 ", ".join(str(p) for p in paths.values()))
        return old
    cfgs = {}
    for name, model in models.items():
        project, namespace = SUBMODELS[name]
        s, tmpl = settings[name], copy.deepcopy(templates[name])
        tmpl.update({"Part": s["part"], "ClockPeriod": s["clock_period"]})  # the target wins over the template
        tmpl.pop("Model", None)  # ReuseFactor/Strategy: sized below
        cfgs[name] = make_hls_config(model, ctx.cfg.quant, calib[name], project_name=project, namespace=namespace,
                                     part=s["part"], clock_period=s["clock_period"], io_type=h.io_type,
                                     overrides=tmpl)
    rf = settings["complex"]["reuse_factor"] if h.reuse_factor else None
    plan = plan_configs(cfgs, lambda name, cfg: describe_config(name, models[name], cfg), templates=templates, old=old,
                        target=load_target(h.target), clock_ns=settings["complex"]["clock_period"],
                        window_period_s=ctx.cfg.data.stride_s, safety=h.realtime_safety,
                        n_times=ctx.cfg.data.n_times, global_rf=rf, global_strategy=h.strategy,
                        scaling_chans=ctx.cfg.data.n_chans if scaled else None, extra_cycles=extra)
    log.info("sized for %s: worst-case cascade ~%d cycles (budget %d)%s", h.target, plan["latency_cycles"],
             plan["budget_cycles"], f", input scaling {plan['scale_lanes']} lane(s)" if scaled else "")
    if not plan["meets_budget"]:
        log.warning("the sized design misses the real-time budget: ~%d > %d cycles (fixed ReuseFactors, or a "
                    "budget no ReuseFactor%s meets)", plan["latency_cycles"], plan["budget_cycles"],
                    " or lane count" if scaled else "")
    for name, cfg in cfgs.items():
        cfg["qcascade_model_hash"] = stamp
        write_hls_config_yaml(cfg, paths[name])
    return {name: read_hls_config_yaml(p) for name, p in paths.items()}


def hw_scale_lanes(ctx, tables: dict[str, list[dict]]) -> dict | None:
    """``SCALE_LANES`` of the built design (:func:`qcascade.hls.sizing.scale_lanes_for` on its layer
    tables); None unless the top level scales its input."""
    from qcascade.hls.sizing import budget_cycles, cascade_latency, scale_lanes_for
    from qcascade.hls.targets import load_target

    d = ctx.cfg.data
    if input_scaling(ctx) != "causal_robust":
        return None
    clock, family = hw_settings(ctx, "complex")["clock_period"], load_target(ctx.cfg.hls.target).family
    return scale_lanes_for(cascade_latency(tables, d.n_times, clock, family),
                           budget_cycles=budget_cycles(d.stride_s, clock, ctx.cfg.hls.realtime_safety),
                           n_times=d.n_times, n_chans=d.n_chans, family=family, extra_cycles=_sentinel_cycles(ctx))


def _sentinel_cycles(ctx) -> int:
    """Cycles of the gate's sentinel in the top level on every window (0 without it)."""
    from qcascade.hls.sentinel_hw import deployed_sentinel_cost

    d = ctx.cfg.data
    cost = deployed_sentinel_cost(deployment(ctx).sentinel, d.n_times, d.n_chans)
    return cost["extra_cycles"] if cost else 0


def _layer_tables(ctx) -> dict[str, list[dict]] | None:
    paths = {name: ctx.unit_dir / "hls" / f"{name}_layers.json" for name in SUBMODELS}
    if not all(p.exists() for p in paths.values()):
        return None  # not converted (yet)
    return {name: json.loads(p.read_text()) for name, p in paths.items()}


def build_jobs() -> int:
    """Concurrent g++ builds: one per core, at most one per submodel."""
    return max(1, min(len(SUBMODELS), os.cpu_count() or 1))


def hls_models(ctx) -> dict:
    """Convert both submodels from their YAML configs and write their projects; cached per process.

    The C++ is compiled once, by ``step_csim``'s C-simulation build, which the models then
    predict through (:func:`qcascade.hls.csim.use_csim_build`).
    Stream FIFOs get the safe depths of :func:`qcascade.hls.sizing.fifo_depths`; each model's layer
    table (ReuseFactors, FIFO depths, widths) goes to ``hls/<name>_layers.json`` for the estimate.
    """
    from qcascade.hls.convert import convert_model, hls4ml_quirks
    from qcascade.hls.sizing import apply_fifo_depths, describe_graph, fifo_depths

    if ctx.artifacts.hls is not None:
        return ctx.artifacts.hls
    from qcascade.hls.convert import read_hls_config_yaml

    for name in SUBMODELS:  # hand-edited configs are checked before models and windows are loaded
        if (ctx.unit_dir / "hls" / f"{name}_config.yaml").exists():
            read_hls_config_yaml(ctx.unit_dir / "hls" / f"{name}_config.yaml")
    simple_m, complex_m = deployed_models(ctx)
    e = deployment(ctx).selected_electrode
    calib = windows(ctx)["train"].X[:256]
    models = {"simple": simple_m, "complex": complex_m}
    cfgs = _hls_configs(ctx, models, {"simple": calib[:, :, e:e + 1], "complex": calib})
    out = {}
    for name, model in models.items():
        project, namespace = SUBMODELS[name]
        prj_dir = ctx.unit_dir / "hls" / name
        if prj_dir.exists():
            shutil.rmtree(prj_dir)  # generated code only; its config lives in <name>_config.yaml
        cfg = {k: v for k, v in cfgs[name].items() if not k.startswith("qcascade_")}
        out[name] = convert_model(model, cfg, prj_dir, project_name=project, namespace=namespace,
                                  io_type=ctx.cfg.hls.io_type, compile=False)
        table = describe_graph(out[name], name)
        depths = fifo_depths(table)
        apply_fifo_depths(out[name], depths)
        for row in table:
            for o in row["outputs"]:
                o["depth"] = depths[o["name"]]
        atomic_write_json(ctx.path("hls", f"{name}_layers.json"), table)
    with hls4ml_quirks():  # the writer serialises the Keras model again
        for m in out.values():
            m.write()
    ctx.artifacts.hls = out
    return out


def step_convert(ctx) -> None:
    models = hls_models(ctx)
    atomic_write_json(ctx.path("hls", "convert.json"), {
        name: {"project_dir": str(ctx.unit_dir / "hls" / name), "project_name": SUBMODELS[name][0],
               "namespace": SUBMODELS[name][1],
               "compiled_by": "step_csim"}
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
    from qcascade.hls.csim import build_csim, run_csim, use_csim_build
    from qcascade.hls.csim_report import csim_markdown
    from qcascade.hls.toplevel import generate_toplevel
    from qcascade.gate import cascade_decide

    models = hls_models(ctx)
    simple_m, complex_m = deployed_models(ctx)
    dep = deployment(ctx)
    te = windows(ctx)["test"]
    idx = _csim_windows(te.y, ctx.cfg.hls.csim_windows, ctx.cfg.train.seed)
    top_dir = ctx.unit_dir / "hls" / "cascade_top"
    X = te.X[idx]
    predictions: dict = {}  # QKeras / hls4ml logits do not depend on tau: computed once
    attached: list = []
    scores = WindowScores.load(ctx.unit_dir)  # deployed QKeras models on every test window
    rule = deployed_gate(dep, te, ctx.cfg.quant, scores.sentinel)
    full = {"simple": scores.simple, "complex": scores.complex}
    sentinel = dep.sentinel or None

    scaling = hw_input_scaling(ctx)
    if scaling is not None:
        tables = _layer_tables(ctx)
        if tables is None:
            raise DataError(f"{ctx.unit_dir / 'hls'}: no *_layers.json; run step_convert before step_csim")
        scaling["lanes"] = hw_scale_lanes(ctx, tables)["lanes"]
    in_order = scaling is not None or sentinel is not None
    if in_order:  # the design's state spans windows (scaling, sentinel): whole recordings, in time order
        raw, raw_rows, raw_reset = design_windows(ctx, te, sorted(set(te.record_ids[idx].tolist())), scaling is not None)
        pos = {int(r): i for i, r in enumerate(raw_rows)}

    def simulate(tau: float, out_json):
        # The prev_cls input of each simulated window: its predecessor's final class in the
        # QKeras cascade over the whole test recording (the windows simulated are a subset).
        # A probe tau below the deployed second threshold takes the second threshold down with it.
        tau_i = None if rule.get("tau_interictal") is None else min(rule["tau_interictal"], tau)
        state = cascade_decide(full["simple"], full["complex"], tau, **{**rule, "tau_interictal": tau_i})
        prev_all, gap_all, held_all = state["prev_cls"], state["gap"], state["held"]
        prev, gap, held = prev_all[idx], gap_all[idx], held_all[idx]
        cpp_input = None if not in_order else {
            "X": raw, "prev_cls": prev_all[raw_rows], "gap": gap_all[raw_rows], "held": held_all[raw_rows],
            "scale_reset": raw_reset, "rows": [pos[int(i)] for i in idx]}
        # Regenerating for another tau recompiles only the top level and testbench.
        generate_toplevel(top_dir, simple_prj=ctx.unit_dir / "hls" / "simple", simple_project=SUBMODELS["simple"][0],
                          simple_namespace=SUBMODELS["simple"][1], complex_prj=ctx.unit_dir / "hls" / "complex",
                          complex_project=SUBMODELS["complex"][0], complex_namespace=SUBMODELS["complex"][1],
                          electrode=dep.selected_electrode, tau=tau, n_times=ctx.cfg.data.n_times,
                          n_chans=ctx.cfg.data.n_chans, config_hash=config_hash(ctx.cfg),
                          part=hw_settings(ctx, "complex")["part"],
                          clock_period=hw_settings(ctx, "complex")["clock_period"],
                          tb_windows=X[:4] if not in_order else raw[:4], gate_rule=rule["rule"],
                          tb_prev_cls=prev[:4] if not in_order else prev_all[raw_rows[:4]],
                          gate_probe=rule["probe_every"], gate_recheck=rule["recheck_tau"],
                          tb_gap=gap[:4] if not in_order else gap_all[raw_rows[:4]],
                          gate_hold=rule["hold"], gate_hold_max=rule["hold_max"], gate_tau_interictal=tau_i, gate_fuse=rule["fuse"], gate_ictal_every=rule["ictal_every"],
                          gate_ictal_after=rule["ictal_after"],
                          tb_held=held[:4] if not in_order else held_all[raw_rows[:4]],
                          tb_scale_reset=None if not in_order else raw_reset[:4], input_scaling=scaling, sentinel=sentinel)
        build_csim(top_dir, jobs=build_jobs())
        if not attached:  # the models' libraries do not depend on tau: attached after the first build
            use_csim_build(models, top_dir)
            attached.append(True)
        return run_csim(simple_keras=simple_m, complex_keras=complex_m, simple_hls=models["simple"],
                        complex_hls=models["complex"], electrode=dep.selected_electrode, tau=tau,
                        X_test=X, toplevel_dir=top_dir, out_json=out_json, jobs=build_jobs(),
                        prediction_cache=predictions, prev_cls=prev, gap=gap, held=held, cpp_input=cpp_input,
                        sentinel=None if sentinel is None else rule["sentinel"][idx])

    # The calibrated tau may route (almost) nothing or everything of the C-simulated windows; then a
    # probe tau at the median confidence of the simple model on them exercises both paths of the top
    # level (the deployed top level, calibrated tau, is generated last, so it stays on disk). Where
    # the calibrated tau already exercises both, the probe would only repeat it.
    routed = int(cascade_decide(full["simple"], full["complex"], dep.tau, **rule)["routed"][idx].sum())
    probe = None
    if min(routed, len(idx) - routed) < PROBE_MIN_WINDOWS:
        z = simple_m.predict(np.ascontiguousarray(X[:, :, dep.selected_electrode:][:, :, :1]), verbose=0)
        z = np.asarray(z, np.float64).reshape(len(X), -1)
        probe_tau = float(np.clip(np.round(np.tanh(np.median(np.abs(z[:, 1] - z[:, 0])) / 2), 3), 0.001, 0.999))
        probe = simulate(probe_tau, ctx.path("csim_probe_tau.json"))
    else:
        ctx.path("csim_probe_tau.json").unlink(missing_ok=True)  # a resumed step's stale probe
    res = simulate(dep.tau, ctx.path("csim.json"))
    res.update(vitis_tb(top_dir, te, full, dep.tau, rule, simple_m, dep.selected_electrode,
                         design_windows(ctx, te, [loop_record(te)], scaling is not None)[0] if in_order else None))
    # The probe's summary travels in csim.json (its only writer is this step), so the report and
    # summary read every C-simulation number from one file.
    if probe is None:
        res["probe_tau"] = {"skipped": f"the calibrated tau routes {routed} of the {len(idx)} C-simulated windows "
                                       f"(both paths at least {PROBE_MIN_WINDOWS})"}
    else:
        res["probe_tau"] = {"tau": probe_tau, "routed_windows": probe["cascade"]["routed_windows"],
                            **{k: probe["cascade"][k] for k in
                               ("decision_agreement", "routing_agreement", "gate_agreement_cpp_vs_python")}}
    atomic_write_json(ctx.path("csim.json"), res)
    md = csim_markdown(res)
    if probe is not None:
        md += "\n\n### Probe tau (both paths exercised)\n\n" + csim_markdown(probe)
    atomic_write_text(ctx.path("csim.md"), md)


def write_hw_summary(ctx) -> dict | None:
    """``hw_summary.json``: target, per-block resources/latency, layers, fit, real-time margin, energy.

    Vendor reports (``qcascade synth``) replace the analytic ESTIMATE for the blocks they cover. A
    design that does not fit its target is logged as an error; with ``strict`` it is refused
    (:class:`~qcascade.errors.QCascadeError`, after the summary is written).
    """
    from qcascade.hls.design import fit_banner, hw_summary
    from qcascade.hls.power import find_power_report, parse_power_report
    from qcascade.hls.sentinel_hw import deployed_sentinel_cost
    from qcascade.hls.reports import parse_hls_dir
    from qcascade.hls.targets import load_target
    from qcascade.hls.toplevel import MANIFEST, load_manifest

    tables = _layer_tables(ctx)
    if tables is None:
        return None
    metrics_path = ctx.unit_dir / "metrics.json"
    routing = json.loads(metrics_path.read_text())["test"]["cascade"]["routing_rate"] if metrics_path.exists() else 1.0
    top_dir = ctx.unit_dir / "hls" / "cascade_top"
    vendor, power = {}, {}
    sentinel = load_manifest(top_dir)["gate"].get("sentinel") if (top_dir / MANIFEST).exists() else None
    if (top_dir / MANIFEST).exists():
        from qcascade.hls.synth import design_dirs

        for name, d in design_dirs(top_dir).items():  # where `qcascade synth` puts vendor reports
            if d.exists():
                vendor[name] = parse_hls_dir(d)
                rpt = find_power_report(d)
                power[name] = parse_power_report(rpt) if rpt else None
    settings = hw_settings(ctx, "complex")
    sample_bits = next(r["result_bits"] for r in tables["complex"] if r["kind"] == "input")
    summary = hw_summary(tables, target=load_target(ctx.cfg.hls.target), clock_ns=settings["clock_period"],
                         window_period_s=ctx.cfg.data.stride_s, routing_rate=routing, n_times=ctx.cfg.data.n_times,
                         n_chans=ctx.cfg.data.n_chans, sample_bits=sample_bits, vendor=vendor, power=power,
                         scale_lanes=hw_scale_lanes(ctx, tables),
                         sentinel=deployed_sentinel_cost(sentinel, ctx.cfg.data.n_times, ctx.cfg.data.n_chans,
                                                         sample_bits))
    if summary["cascade"]["source"] == "ESTIMATE":
        summary["vendor_note"] = ("No Vitis HLS / Vivado reports in this run: numbers are an analytic ESTIMATE. "
                                  f"Run `qcascade synth --run {ctx.run_dir}` where `vitis-run` and `vivado` "
                                  f"are on PATH, then `qcascade report --run {ctx.run_dir}`.")
    atomic_write_json(ctx.path("hw_summary.json"), summary)
    banner = fit_banner(summary)
    if banner:
        log.error("%s", banner.replace("**", ""))
        if ctx.cfg.hls.strict:
            raise QCascadeError(f"hls.strict: {banner.replace('**', '')}")
    return summary
