"""Per-target hardware ESTIMATE of a finished run's cascade: DSP, BRAM, LUT, latency, energy per window.

For every profile in ``hls_configs/targets/`` the run's measured hls configs (precisions) are
sized again for that target (:func:`qcascade.hls.design.plan_configs`), converted in memory, given
the safe FIFO depths, and estimated (:func:`qcascade.hls.design.hw_summary`); nothing in the run
folder changes. ``python -m bench.bench_hardware RUN_DIR`` prints the section.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def estimate_unit(unit_dir: Path, target_name: str, stride_s: float, safety: float, n_times: int,
                  n_chans: int) -> dict:
    """hw_summary of one run unit re-sized for ``target_name`` (in memory)."""
    from qcascade.hls.convert import read_hls_config_yaml
    from qcascade.hls.design import describe_config, hw_summary, plan_configs
    from qcascade.hls.sizing import fifo_depths
    from qcascade.hls.targets import load_target
    from qcascade.models import load_model

    from qcascade.artifacts import Deployment
    from qcascade.hls.sentinel_hw import deployed_sentinel_cost

    target = load_target(target_name)
    run_summary = json.loads((unit_dir / "hw_summary.json").read_text())
    if (run_summary.get("cascade") or {}).get("input_scaling"):
        raise ValueError(f"{unit_dir / 'hw_summary.json'}: the design scales its input in hardware; "
                         "bench_hardware does not re-size the scaling lanes, so it would leave them out")
    # The gate's sentinel runs in the top level on every window: its cycles and LUTs count on every target.
    sentinel = Deployment.load(unit_dir).sentinel
    has_sentinel = bool(sentinel)
    extra_cycles = deployed_sentinel_cost(sentinel, n_times, n_chans)["extra_cycles"] if has_sentinel else 0
    models = {n: load_model(unit_dir / "deploy" / f"{n}.h5") for n in ("simple", "complex")}
    cfgs = {}
    for name in models:
        cfg = {k: v for k, v in read_hls_config_yaml(unit_dir / "hls" / f"{name}_config.yaml").items()
               if not k.startswith("qcascade_")}
        cfg = copy.deepcopy(cfg)
        cfg.update(Part=target.part, ClockPeriod=target.clock_period_ns)
        for lcfg in cfg["HLSConfig"].get("LayerName", {}).values():
            lcfg.pop("ReuseFactor", None)
            lcfg.pop("Strategy", None)
        cfgs[name] = cfg
    plan = plan_configs(cfgs, lambda n, c: describe_config(n, models[n], c), templates={}, old={}, target=target,
                        clock_ns=target.clock_period_ns, window_period_s=stride_s, safety=safety, n_times=n_times,
                        extra_cycles=extra_cycles)
    tables = {}
    for name, cfg in cfgs.items():
        rows = describe_config(name, models[name], {k: v for k, v in cfg.items() if not k.startswith("qcascade_")})
        depths = fifo_depths(rows)
        for row in rows:
            for o in row["outputs"]:
                o["depth"] = depths[o["name"]]
        tables[name] = rows
    metrics = json.loads((unit_dir / "metrics.json").read_text())
    sample_bits = next(r["result_bits"] for r in tables["complex"] if r["kind"] == "input")
    summary = hw_summary(tables, target=target, clock_ns=target.clock_period_ns, window_period_s=stride_s,
                         routing_rate=metrics["test"]["cascade"]["routing_rate"], n_times=n_times, n_chans=n_chans,
                         sample_bits=sample_bits,
                         sentinel=deployed_sentinel_cost(sentinel, n_times, n_chans, sample_bits))
    summary["plan"] = plan
    return summary


def run(run_dir: Path | None = None) -> str:
    """The BENCHMARKS.md section for ``run_dir`` (default: bench/out/full, else bench/out/quick)."""
    from qcascade.config import load_config
    from qcascade.hls.targets import available_targets

    if run_dir is None:
        run_dir = next((p for p in (ROOT / "bench" / "out" / "full", ROOT / "bench" / "out" / "quick")
                        if (p / "summary.json").exists()), None)
        if run_dir is None:
            return "No finished run in bench/out/full or bench/out/quick: run the `full` or `quick` section first.\n"
    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    units = [u["patient"] for u in json.loads((run_dir / "summary.json").read_text())["units"]]
    head = ["target", "part", "clock ns", "unit", "DSP", "BRAM18K", "LUT", "DSP / BRAM / LUT used",
            "worst latency (cycles)", "worst latency (ms)", "real-time margin", "max parallel products",
            "E simple (nJ)", "E complex (nJ)",
            "E cascade / window (nJ)", "simple / complex energy", "routing rate", "fits"]
    shown = run_dir.relative_to(ROOT) if run_dir.is_relative_to(ROOT) else run_dir
    lines = [f"Run `{shown}` re-sized for each "
             f"target in memory (`python -m bench.bench_hardware {run_dir}`; the rules are in `hw_summary.json`). "
             f"Budget: window stride {cfg.data.stride_s} s / realtime_safety {cfg.hls.realtime_safety:g}. "
             "All numbers are the analytic ESTIMATE (no Vitis/Vivado here). Energy is dynamic energy only, from "
             "per-operation constants that do not depend on the part (static power needs Vivado report_power); "
             "cascade = E_simple + buffer write + routing rate x (E_complex + buffer replay).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for target in available_targets():
        for unit in units:
            s = estimate_unit(run_dir / unit, target, cfg.data.stride_s, cfg.hls.realtime_safety,
                              cfg.data.n_times, cfg.data.n_chans)
            c, e, t = s["cascade"], s["energy"], s["target"]
            u = c["utilisation"]
            row = [target, t["part"], t["clock_period_ns"], unit, c["dsp"], c["bram_18k"], c["lut"],
                   f"{100 * u['dsp']:.0f} / {100 * u['bram_18k']:.0f} / {100 * u['lut']:.0f} %",
                   c["latency_cycles"], f"{c['latency_cycles'] * t['clock_period_ns'] * 1e-6:.2f}",
                   f"{s['realtime_margin']:.1f}", max(x["parallel_products"] for x in s["layers"]),
                   f"{e['simple_nj']:.0f}", f"{e['complex_nj']:.0f}", f"{e['cascade_nj_per_window']:.0f}",
                   f"{e['simple_fraction_of_complex']:.3f}", f"{e['routing_rate']:.3f}", s["fits"]]
            lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n\n"


if __name__ == "__main__":
    print(run(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
