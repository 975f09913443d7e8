"""The cascade design for one target: per-layer ReuseFactor/Strategy in the hls configs, and the
hardware summary (``hw_summary.json``) with fit, real-time margin and energy per window.

:func:`plan_configs` turns the measured hls4ml configurations of both models into sized ones
(:mod:`qcascade.hls.sizing`); values a user set win: ``hls.reuse_factor`` / ``hls.strategy`` of
the run config, ``Model.ReuseFactor`` or ``LayerName.<layer>.ReuseFactor`` / ``Strategy`` in
``hls_configs/<submodel>.yaml``, and edits of the run's ``hls/<submodel>_config.yaml`` (a value
that differs from the one qcascade wrote there, recorded under ``qcascade_auto``).
:func:`hw_summary` estimates (or reads vendor reports for) both models and the cascade.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from qcascade.errors import ConfigError
from qcascade.hls import estimate as est
from qcascade.hls import scaling_hw, sentinel_hw, sizing
from qcascade.hls.convert import hls4ml_quirks
from qcascade.hls.targets import Target

log = logging.getLogger(__name__)
AUTO = "auto"


def _fixed_rf(cfg: dict, template: dict, old: dict | None, global_rf: int | None) -> dict[str, int]:
    """ReuseFactors the user fixed, by HLSConfig LayerName key (``"*"``: every layer)."""
    fixed: dict[str, int] = {}
    if global_rf is not None:
        return {"*": int(global_rf)}
    model_rf = (template.get("Model") or {}).get("ReuseFactor", AUTO)
    if model_rf != AUTO:
        if isinstance(model_rf, bool) or not isinstance(model_rf, int) or model_rf < 1:
            raise ConfigError(f"hls_configs: Model.ReuseFactor must be 'auto' or an integer >= 1, got {model_rf!r}")
        fixed["*"] = model_rf
    for name, lcfg in (template.get("LayerName") or {}).items():
        if isinstance(lcfg, dict) and "ReuseFactor" in lcfg:
            fixed[name] = int(lcfg["ReuseFactor"])
    if old:
        auto = old.get("qcascade_auto") or {}
        for name, lcfg in ((old.get("HLSConfig") or {}).get("LayerName") or {}).items():
            rf = (lcfg or {}).get("ReuseFactor") if isinstance(lcfg, dict) else None
            if name in auto and rf is not None and int(rf) != int(auto[name]):
                fixed.setdefault(name, int(rf))  # edited by hand after qcascade wrote it
    return fixed


def plan_configs(cfgs: dict[str, dict], describe, *, templates: dict[str, dict], old: dict[str, dict | None],
                 target: Target, clock_ns: float, window_period_s: float, safety: float, n_times: int,
                 global_rf: int | None = None, global_strategy: str | None = None,
                 scaling_chans: int | None = None, extra_cycles: int = 0) -> dict:
    """Size both models' hls configs in place; return the plan.

    Args:
        cfgs: ``{"simple": cfg, "complex": cfg}`` from :func:`qcascade.hls.convert.make_hls_config`.
        describe: ``describe(name, cfg) -> layer table`` (converts in memory, see
            :func:`qcascade.hls.sizing.describe_graph`).
        templates: the ``hls_configs/<submodel>.yaml`` mappings; ``old``: the run's previous configs.
        target, clock_ns: FPGA target and clock; ``window_period_s``: window stride in seconds;
        ``safety``: real-time safety factor; ``n_times``: window length.
        global_rf / global_strategy: ``hls.reuse_factor`` / ``hls.strategy`` of the run config.
        scaling_chans: ``n_chans`` when the top level scales its input (``data.input_scaling:
            causal_robust``; its cycles share the budget, :func:`qcascade.hls.sizing.choose_scaled`),
            else None.
        extra_cycles: other cycles of the top level that share the budget on every window (the
            gate's sentinel, :func:`qcascade.hls.sentinel_hw.sentinel_cost`).

    Returns:
        ``{"budget_cycles", "latency_cycles", "meets_budget", "plan": {"simple": {layer: rf}, ...},
        "scale_lanes"}`` (``scale_lanes`` None without input scaling).
    """
    tables, fixed = {}, {}
    for name, cfg in cfgs.items():
        tables[name] = describe(name, cfg)
        user = _fixed_rf(cfg, templates.get(name) or {}, old.get(name), global_rf)
        for row in tables[name]:
            key = row["config_name"]
            rf = user.get(key, user.get("*"))
            if rf is not None and row["kind"] in ("matmul", "merge"):
                fixed[(name, key)] = rf
    budget = sizing.budget_cycles(window_period_s, clock_ns, safety)
    if scaling_chans:
        res = sizing.choose_scaled(tables, budget_cycles=budget, n_times=n_times, n_chans=scaling_chans,
                                   clock_ns=clock_ns, family=target.family, fixed=fixed, extra_cycles=extra_cycles)
    else:
        res = sizing.choose_reuse(tables, budget_cycles=budget, n_times=n_times, clock_ns=clock_ns,
                                  family=target.family, fixed=fixed, extra_cycles=extra_cycles)
    plan: dict[str, dict[str, int]] = {"simple": {}, "complex": {}}
    for (name, key), rf in res["plan"].items():
        plan[name][key] = rf
    for name, cfg in cfgs.items():
        hc = cfg["HLSConfig"]
        hc.setdefault("Model", {}).update({"ReuseFactor": 1, "Strategy": global_strategy or "Latency"})
        layers = hc.setdefault("LayerName", {})
        tmpl_layers = (templates.get(name) or {}).get("LayerName") or {}
        model_strategy = ((templates.get(name) or {}).get("Model") or {}).get("Strategy", AUTO)
        for key, rf in plan[name].items():
            lcfg = layers.setdefault(key, {})
            lcfg["ReuseFactor"] = int(rf)
            strategy = ((tmpl_layers.get(key) or {}).get("Strategy") or global_strategy
                        or (None if model_strategy == AUTO else model_strategy))
            lcfg["Strategy"] = strategy or ("Latency" if rf == 1 else "Resource")
        cfg["qcascade_auto"] = dict(plan[name])
    return {"budget_cycles": budget, "latency_cycles": res["latency_cycles"], "meets_budget": res["meets_budget"],
            "plan": plan, "scale_lanes": res.get("scale_lanes")}


def describe_config(name: str, model, cfg: dict) -> list[dict]:
    """Layer table of ``model`` converted in memory with hls config ``cfg`` (nothing written or compiled)."""
    import tempfile

    import hls4ml

    with tempfile.TemporaryDirectory(prefix="qcascade_sizing_") as tmp:
        with hls4ml_quirks():
            g = hls4ml.converters.convert_from_keras_model(
                model, output_dir=tmp, project_name=cfg["ProjectName"], namespace=cfg["Namespace"],
                backend="Vitis", hls_config=copy.deepcopy(cfg["HLSConfig"]), io_type=cfg["IOType"],
                part=cfg["Part"], clock_period=cfg["ClockPeriod"])
        return sizing.describe_graph(g, name)


def _vendor_block(rep: dict) -> dict | None:
    cs, vs = rep.get("csynth") or {}, rep.get("vsynth") or {}
    if not (cs or vs):
        return None
    res = vs or cs
    return {"source": "vivado synth" if vs else "csynth", "latency_cycles": cs.get("latency_worst"),
            "ii": cs.get("ii"), "lut": res.get("lut"), "ff": res.get("ff"), "dsp": res.get("dsp"),
            "bram_18k": res.get("bram_18k")}


def hw_summary(tables: dict[str, list[dict]], *, target: Target, clock_ns: float, window_period_s: float,
               routing_rate: float, n_times: int, n_chans: int, sample_bits: int,
               vendor: dict[str, dict] | None = None, power: dict[str, dict] | None = None,
               scale_lanes: dict | None = None, sentinel: dict | None = None) -> dict:
    """``hw_summary.json`` content: target, per-block figures, layers, fit, margin, energy.

    Args:
        tables: ``{"simple": rows, "complex": rows}`` layer tables (with the built ReuseFactors and
            FIFO depths).
        target, clock_ns: FPGA target and clock; ``window_period_s``: window stride.
        routing_rate: test-set fraction of windows routed to the complex model.
        n_times / n_chans / sample_bits: window shape and input sample width (window buffer).
        vendor: optional ``parse_hls_dir`` results per block (``simple``/``complex``/``cascade``);
            their numbers replace the estimate's for that block.
        power: optional :func:`qcascade.hls.power.parse_power_report` results per block.
        scale_lanes: with input scaling in the top level, :func:`qcascade.hls.sizing.scale_lanes_for`'s
            choice; its cost (:func:`qcascade.hls.scaling_hw.scaling_cost`, an ESTIMATE even next to
            vendor reports of the models) is counted in the cascade. None: no scaling, nothing added.
        sentinel: with the gate's sentinel in the top level, its cost
            (:func:`qcascade.hls.sentinel_hw.sentinel_cost`, an ESTIMATE), counted like the scaling's.

    Returns:
        ``{"target", "simple", "complex", "cascade", "layers", "fits", "problems",
        "realtime_margin", "energy", "budget", "rules"}``.
    """
    family = target.family
    models = {name: est.estimate_model(rows, clock_ns, family) for name, rows in tables.items()}
    scaling = None
    if scale_lanes:
        scaling = {**scaling_hw.scaling_cost(n_times, n_chans, scale_lanes["lanes"], family, sample_bits),
                   "budget_cycles": scale_lanes["budget_cycles"], "meets_budget": scale_lanes["meets_budget"]}
    cas = est.estimate_cascade(models["simple"], models["complex"], n_times=n_times, n_chans=n_chans,
                               sample_bits=sample_bits, routing_rate=routing_rate, clock_ns=clock_ns,
                               window_period_s=window_period_s, target=target.as_dict(), scaling=scaling,
                               sentinel=sentinel)
    blocks = {}
    for name in ("simple", "complex"):
        m = models[name]
        blocks[name] = {"source": "ESTIMATE", **{k: m[k] for k in ("dsp", "bram_18k", "lut", "ff_fifo",
                                                                   "latency_cycles", "ii", "macs", "energy_nj",
                                                                   "fifo_bits", "max_parallel_products")}}
    blocks["cascade"] = {"source": "ESTIMATE", **{k: cas[k] for k in (
        "dsp", "bram_18k", "lut", "latency_cycles", "ii", "expected_latency_cycles", "routing_rate",
        "energy_nj_per_window", "utilisation")}, "window_buffer": cas["window_buffer"]}
    if scaling:
        blocks["cascade"]["input_scaling"] = scaling
    if sentinel:
        blocks["cascade"]["sentinel"] = sentinel
    for name, rep in (vendor or {}).items():
        flat = _vendor_block(rep) if rep else None
        if flat:
            blocks[name] = {**flat, "estimate": blocks.get(name)}
    summary_cascade = dict(cas)
    vend = {n: b for n, b in blocks.items() if b.get("source") != "ESTIMATE"}
    if {"simple", "complex"} <= set(vend) and all(vend[n].get("latency_cycles") for n in ("simple", "complex")):
        extras = [e for e in (scaling, sentinel) if e]
        worst = (vend["simple"]["latency_cycles"] + vend["complex"]["latency_cycles"] + 2 * n_times
                 + sum(e["extra_cycles"] for e in extras))
        summary_cascade["realtime_margin"] = window_period_s / (worst * clock_ns * 1e-9)
        summary_cascade["latency_cycles"] = worst
        for k in ("dsp", "bram_18k", "lut"):
            vals = [vend[n].get(k) for n in ("simple", "complex")]
            if None not in vals:
                summary_cascade[k] = sum(vals) + cas["window_buffer"].get(k, 0) + sum(e[k] for e in extras)
        summary_cascade["problems"] = est.fit_problems(summary_cascade, target.as_dict())
    energy = {"source": "ESTIMATE", "simple_nj": models["simple"]["energy_nj"],
              "complex_nj": models["complex"]["energy_nj"], "buffer_write_nj": cas["window_buffer"]["write_energy_nj"],
              "buffer_read_nj": cas["window_buffer"]["read_energy_nj"], "routing_rate": routing_rate,
              "cascade_nj_per_window": cas["energy_nj_per_window"],
              "simple_fraction_of_complex": cas["simple_energy_fraction_of_complex"],
              "note": "dynamic energy of the arithmetic and of stream/buffer traffic; constants in rules"}
    if power and all(power.get(n) for n in ("simple", "complex")):
        e = {n: power[n]["total_w"] * blocks[n]["latency_cycles"] * clock_ns for n in ("simple", "complex")
             if blocks[n].get("latency_cycles")}
        if len(e) == 2:  # W x ns = nJ
            energy = {"source": "vivado report_power", "simple_nj": e["simple"], "complex_nj": e["complex"],
                      "routing_rate": routing_rate, "cascade_nj_per_window": e["simple"] + routing_rate * e["complex"],
                      "simple_fraction_of_complex": e["simple"] / e["complex"] if e["complex"] else None,
                      "power_w": {n: power[n]["total_w"] for n in ("simple", "complex")}, "estimate": energy}
    layers = [{"model": name, "name": p["name"], "config_name": p["config_name"], "kind": p["kind"],
               "reuse_factor": p["reuse_factor"], "strategy": p["strategy"],
               "parallel_products": p["parallel_products"], "dsp": p["dsp"], "bram_18k": p["bram_18k"],
               "lut": p["lut"], "latency_cycles": p["latency_cycles"]}
              for name, m in models.items() for p in m["per_layer"] if p["kind"] in ("matmul", "merge")]
    problems = summary_cascade["problems"]
    return {"target": target.as_dict(), "simple": blocks["simple"], "complex": blocks["complex"],
            "cascade": blocks["cascade"], "layers": layers, "fits": not problems, "problems": problems,
            "realtime_margin": summary_cascade["realtime_margin"], "energy": energy,
            "budget": {"window_period_s": window_period_s, "clock_period_ns": clock_ns,
                       "worst_latency_cycles": summary_cascade["latency_cycles"]},
            "rules": list(est.RULES) + ([scaling_hw.COST_RULE] if scaling else [])
            + ([sentinel_hw.COST_RULE] if sentinel else [])}


def fit_banner(summary: dict) -> str | None:
    """A loud one-paragraph warning when the design does not fit its target (else None)."""
    if summary.get("fits", True):
        return None
    t = summary["target"]
    return (f"**DESIGN DOES NOT FIT {t['name']} ({t['part']})**: " + "; ".join(summary["problems"])
            + ". Raise ReuseFactors (hls_configs/*.yaml, hls.reuse_factor), pick a larger hls.target, or "
            "relax hls.realtime_safety.")


def copy_tables(tables: dict) -> dict:
    """Deep copy (the sizing updates rows in place)."""
    return copy.deepcopy(tables)


def read_layers(path: Path) -> list[dict]:
    """Read ``hls/<name>_layers.json``."""
    import json

    return json.loads(Path(path).read_text())
