"""Analytic latency / DSP / LUT / BRAM / energy ESTIMATE of an hls4ml io_stream design.

Used only where no vendor report exists; every result is labelled ``"source": "ESTIMATE"``. Real
reports (:mod:`qcascade.hls.reports`) win. The input is the layer table of
:func:`qcascade.hls.sizing.describe_graph` (one dict per hls4ml layer, from the converted model
graph, so padding layers, stream clones and the split of separable convolutions are counted as
hls4ml builds them):

==================  ==========================================================================
``name``            hls4ml layer name
``kind``            ``matmul`` (Conv1D, DepthwiseConv1D, PointwiseConv1D, Dense), ``merge``
                    (elementwise Multiply/Add/Concatenate), ``move`` (everything else), ``input``
``in_steps``        stream words the layer reads (padded input length for convolutions)
``out_steps``       stream words it writes
``products``        multiplications for one output word at ReuseFactor 1
``weight_bits``     weight width (0 without weights; for a Multiply the narrower operand);
                    ``n_weights`` number of weights
``input_bits``      widest input element; ``result_bits`` output element width
``reuse_factor``    / ``strategy`` (``latency`` or ``resource``)
``outputs``         ``[{"name", "depth", "width_bits"}]``: the output streams (FIFO depth in words,
                    word width = channels x element bits); the model's input port has none
==================  ==========================================================================

The rules are listed in :data:`RULES` (and copied into ``hw_summary.json``).
"""

from __future__ import annotations

import math

DSP_MIN_BITS = 10
# Multiplier port widths: DSP48E1 (7-series) 25x18, DSP48E2 (UltraScale+) 27x18.
DSP_PORTS = {"zynq7": (25, 18), "artix7": (25, 18), "kintex7": (25, 18)}
DSP_PORTS_DEFAULT = (27, 18)
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
# Vitis HLS config_storage defaults: a FIFO goes to block RAM only above auto_srl_max_bits = 1024
# bits and auto_srl_max_depth = 2 words; smaller ones are shift registers (SRL).
SMALL_MEMORY_BITS = 1024
SRL_MAX_DEPTH = 2
MAX_PARALLEL_PRODUCTS = 4096  # hls4ml's guideline for one unrolled layer

# Energy constants: Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm): 8x8-bit integer
# multiply 0.2 pJ (32x32: 3.1 pJ, i.e. ~ width product / 64 * 0.2 pJ), 32-bit add 0.1 pJ,
# 64-bit read from an 8 KB SRAM 10 pJ. FPGA/ASIC dynamic power ratio ~12 (Kuon & Rose,
# "Measuring the gap between FPGAs and ASICs", FPGA 2006, 90 nm; smaller with hard blocks).
E_MULT_PJ_PER_BIT2 = 0.2 / 64
E_ADD_PJ_PER_BIT = 0.1 / 32
E_SRAM_PJ_PER_BIT = 10.0 / 64
FPGA_OVER_ASIC = 12.0

RULES = [
    f"matmul layers (conv, depthwise, pointwise, dense): parallel products = ceil(products / ReuseFactor); "
    f"none may exceed {MAX_PARALLEL_PRODUCTS}",
    "merge (elementwise Multiply): one product per channel, shared over ReuseFactor cycles: ceil(channels / RF)",
    f"a product uses DSPs if both operands are wider than {DSP_MIN_BITS} bits: ceil(wide/A) * ceil(narrow/B) "
    "with A x B = 25 x 18 (DSP48E1, 7-series) or 27 x 18 (DSP48E2); else ~ceil(w_bits * in_bits / 2) LUTs",
    "one accumulation adder per parallel product: result_bits LUTs",
    "io_stream latency: Latency strategy in_steps * RF (the input loop is pipelined at II = RF); Resource "
    "strategy in_steps + out_steps * RF (one dense_resource call of RF cycles per output word); merge "
    "in_steps * RF; other layers max(in_steps, out_steps) (one word per cycle)",
    "model latency_cycles = sum over layers (no dataflow overlap: an upper estimate); ii = slowest layer",
    f"memories (Resource weights: RF deep x ceil(n_weights/RF)*w_bits wide; stream FIFOs: depth x word bits): "
    f"<= {SRL_MAX_DEPTH} words in registers (FF), <= {SMALL_MEMORY_BITS} bits in SRLs (width * ceil(depth/32) "
    "LUTs; Vitis config_storage defaults), else BRAM18K at the best aspect ratio "
    "(16Kx1 ... 512x36); Latency-strategy weights are constants in the fabric (0 BRAM)",
    "FF: only register FIFOs are counted (ff_fifo); pipeline registers, conv line buffers, control logic and "
    "the achieved clock are not modelled",
    "energy: MACs * (w_bits*in_bits*0.2/64 pJ + result_bits*0.1/32 pJ) + FIFO/buffer bits written and read "
    "* 10/64 pJ, times 12 for FPGA vs ASIC (Horowitz ISSCC 2014 45 nm; Kuon & Rose FPGA 2006); dynamic "
    "energy only: static power is device and temperature dependent (use Vivado report_power)",
]


def memory_cost(depth: int, width: int) -> dict:
    """Storage of a ``depth`` x ``width``-bit memory: ``{"bits", "bram_18k", "lut"}``.

    Memories of at most :data:`SRL_MAX_DEPTH` words are registers (``ff`` bits); others of at most
    :data:`SMALL_MEMORY_BITS` bits shift registers (one SRL32 LUT per bit of width per 32 words);
    larger ones BRAM18K at the aspect ratio that needs the fewest blocks.
    """
    depth, width = int(depth), int(width)
    if depth < 0 or width < 0:
        raise ValueError(f"memory shape must be non-negative, got {depth} x {width}")
    bits = depth * width
    if bits == 0:
        return {"bits": 0, "bram_18k": 0, "lut": 0, "ff": 0}
    if depth <= SRL_MAX_DEPTH:
        return {"bits": bits, "bram_18k": 0, "lut": 0, "ff": bits}  # registers
    if bits <= SMALL_MEMORY_BITS:
        # One SRL32 LUT per bit of width and 32 words of depth.
        return {"bits": bits, "bram_18k": 0, "lut": width * math.ceil(depth / 32), "ff": 0}
    blocks = min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BRAM18_SHAPES)
    return {"bits": bits, "bram_18k": blocks, "lut": 0, "ff": 0}


def dsp_per_product(weight_bits: int, input_bits: int, family: str = "") -> int:
    """DSP slices for one product of the given operand widths (0: built in LUTs)."""
    if weight_bits <= DSP_MIN_BITS or input_bits <= DSP_MIN_BITS:
        return 0
    a, b = DSP_PORTS.get(family, DSP_PORTS_DEFAULT)
    wide, narrow = max(weight_bits, input_bits), min(weight_bits, input_bits)
    return math.ceil(wide / a) * math.ceil(narrow / b)


def _req(layer: dict, key: str):
    if key not in layer:
        raise ValueError(f"layer {layer.get('name', '?')!r}: missing field {key!r}")
    return layer[key]


def layer_estimate(layer: dict, family: str = "") -> dict:
    """Latency, parallel products, DSP, LUT, BRAM, MACs and energy of one layer (rules in :data:`RULES`)."""
    name, kind = _req(layer, "name"), _req(layer, "kind")
    in_steps, out_steps = int(_req(layer, "in_steps")), int(_req(layer, "out_steps"))
    rf = int(layer.get("reuse_factor") or 1)
    strategy = str(layer.get("strategy") or "latency").lower()
    if rf < 1 or in_steps < 0 or out_steps < 0:
        raise ValueError(f"layer {name!r}: reuse_factor must be >= 1 and steps >= 0")
    products = int(layer.get("products") or 0)
    wbits, ibits = int(layer.get("weight_bits") or 0), int(layer.get("input_bits") or 0)
    rbits = int(layer.get("result_bits") or 0)
    parallel = math.ceil(products / rf) if products else 0
    if kind == "matmul":
        latency = in_steps + out_steps * rf if strategy == "resource" else in_steps * rf
        op_bits = wbits
    elif kind == "merge":
        latency, op_bits = in_steps * rf, wbits or ibits  # weight_bits: the narrower operand
    elif kind in ("move", "input"):
        latency, op_bits, parallel = (0 if kind == "input" else max(in_steps, out_steps)), 0, 0
    else:
        raise ValueError(f"layer {name!r}: unknown kind {kind!r}")
    dsp_each = dsp_per_product(op_bits, ibits, family) if parallel else 0
    lut_mult = 0 if dsp_each or not parallel else parallel * math.ceil(op_bits * ibits / 2)
    lut = lut_mult + parallel * rbits
    bram = ff = 0
    weights_bits = int(layer.get("n_weights") or 0) * wbits
    if kind == "matmul" and strategy == "resource" and weights_bits:
        mem = memory_cost(rf, math.ceil(int(layer["n_weights"]) / rf) * wbits)
        bram, lut, ff = bram + mem["bram_18k"], lut + mem["lut"], ff + mem["ff"]
    fifo_bits = 0
    for out in layer.get("outputs") or []:
        mem = memory_cost(int(out["depth"]), int(out["width_bits"]))
        bram, lut, fifo_bits = bram + mem["bram_18k"], lut + mem["lut"], fifo_bits + mem["bits"]
        ff += mem["ff"]
    macs = products * out_steps
    # Every word written to an output stream is read once; its width is channels x element bits.
    stream_bits = sum(int(o["width_bits"]) for o in layer.get("outputs") or []) * out_steps
    e_mac = op_bits * ibits * E_MULT_PJ_PER_BIT2 + rbits * E_ADD_PJ_PER_BIT
    energy_pj = FPGA_OVER_ASIC * (macs * e_mac + 2 * stream_bits * E_SRAM_PJ_PER_BIT)
    return {"name": name, "config_name": layer.get("config_name", name), "class_name": layer.get("class_name"),
            "kind": kind, "reuse_factor": rf, "strategy": strategy, "parallel_products": parallel,
            "dsp": parallel * dsp_each, "lut": lut, "bram_18k": bram, "ff_fifo": ff, "fifo_bits": fifo_bits,
            "weight_bits_total": weights_bits, "latency_cycles": latency, "macs": macs,
            "energy_nj": energy_pj / 1000.0}


def estimate_model(layers: list[dict], clock_ns: float, family: str = "") -> dict:
    """Sum of :func:`layer_estimate` over a model's layers.

    Args:
        layers: the layer table (module docstring), in dataflow order.
        clock_ns: clock period in ns.
        family: target family (DSP port widths), e.g. ``"zynq7"``.

    Returns:
        ``{"source": "ESTIMATE", "latency_cycles", "latency_ns", "ii", "dsp", "lut", "bram_18k",
        "ff": None, "fifo_bits", "macs", "energy_nj", "max_parallel_products", "per_layer": [...]}``.
    """
    if not clock_ns > 0:
        raise ValueError(f"clock_ns must be > 0, got {clock_ns}")
    per = [layer_estimate(layer, family) for layer in layers]
    total = sum(p["latency_cycles"] for p in per)
    return {"source": "ESTIMATE", "latency_cycles": total, "latency_ns": total * clock_ns,
            "ii": max((p["latency_cycles"] for p in per), default=0),
            **{k: sum(p[k] for p in per) for k in ("dsp", "lut", "bram_18k", "ff_fifo", "fifo_bits", "macs")},
            "ff": None, "energy_nj": sum(p["energy_nj"] for p in per),
            "max_parallel_products": max((p["parallel_products"] for p in per), default=0),
            "clock_target_ns": clock_ns, "per_layer": per}


def window_buffer(n_times: int, n_chans: int, sample_bits: int) -> dict:
    """The cascade top level's window buffer: memory cost and per-window write+read energy (nJ)."""
    mem = memory_cost(n_times, n_chans * sample_bits)
    # Written once per window; read back only for routed windows (the energy of one read is given).
    e_pass = FPGA_OVER_ASIC * mem["bits"] * E_SRAM_PJ_PER_BIT / 1000.0
    return {**mem, "write_energy_nj": e_pass, "read_energy_nj": e_pass}


def estimate_cascade(simple: dict, complex_: dict, *, n_times: int, n_chans: int, sample_bits: int,
                     routing_rate: float, clock_ns: float, window_period_s: float, target: dict,
                     scaling: dict | None = None, sentinel: dict | None = None) -> dict:
    """The cascade: both models, the window buffer, latency, real-time margin, energy and fit.

    Worst-case latency = read the window through the simple model (``n_times + L_simple``), replay
    it (``n_times``) through the complex model (``L_complex``). Energy per window =
    ``E_simple + E_buffer_write + routing_rate * (E_complex + E_buffer_read)``.

    ``scaling``: the input scaling in the top level (``data.input_scaling: causal_robust``), as
    :func:`qcascade.hls.scaling_hw.scaling_cost` gives it: its ``dsp``, ``lut``, ``bram_18k`` are
    added, and its ``extra_cycles`` to the worst-case and the expected latency (every window is
    scaled). None (inputs arrive scaled): nothing is added. ``sentinel``: the gate's sentinel in the
    top level (:func:`qcascade.hls.sentinel_hw.sentinel_cost`), added the same way (every window pays it).

    Returns:
        ``dsp``, ``bram_18k``, ``lut``, ``latency_cycles`` (worst case), ``expected_latency_cycles``,
        ``ii``, ``realtime_margin`` (window period / worst-case latency), ``energy_nj_per_window``,
        ``simple_energy_fraction_of_complex``, ``utilisation`` and ``fits`` (DSP, BRAM and LUT within
        the target; FF not modelled).
    """
    if not 0.0 <= routing_rate <= 1.0:
        raise ValueError(f"routing_rate must be in [0, 1], got {routing_rate}")
    buf = window_buffer(n_times, n_chans, sample_bits)
    extras = [e for e in (scaling, sentinel) if e]
    extra = sum(e["extra_cycles"] for e in extras)
    worst = simple["latency_cycles"] + complex_["latency_cycles"] + 2 * n_times + extra
    expected = simple["latency_cycles"] + n_times + extra + routing_rate * (complex_["latency_cycles"] + n_times)
    totals = {k: simple[k] + complex_[k] + buf.get(k, 0) + sum(e[k] for e in extras)
              for k in ("dsp", "bram_18k", "lut")}
    util = {k: totals[k] / target[k] for k in ("dsp", "bram_18k", "lut")}
    energy = (simple["energy_nj"] + buf["write_energy_nj"]
              + routing_rate * (complex_["energy_nj"] + buf["read_energy_nj"]))
    out = {"source": "ESTIMATE", **totals, "ff": None,
            "latency_cycles": worst, "latency_ns": worst * clock_ns,
            "expected_latency_cycles": expected, "expected_latency_ns": expected * clock_ns,
            "ii": worst, "routing_rate": routing_rate, "window_buffer": buf,
            "realtime_margin": window_period_s / (worst * clock_ns * 1e-9) if worst else math.inf,
            "energy_nj_per_window": energy,
            "energy_nj_simple": simple["energy_nj"], "energy_nj_complex": complex_["energy_nj"],
            "simple_energy_fraction_of_complex": (simple["energy_nj"] / complex_["energy_nj"]
                                                  if complex_["energy_nj"] else None),
            "utilisation": util, "max_parallel_products": max(simple["max_parallel_products"],
                                                              complex_["max_parallel_products"])}
    if scaling:
        out["input_scaling"] = scaling
    if sentinel:
        out["sentinel"] = sentinel
    out["problems"] = fit_problems(out, target)
    out["fits"] = not out["problems"]
    return out


def fit_problems(cascade: dict, target: dict) -> list[str]:
    """Why a design does not fit: over a capacity, over 4096 parallel products, or too slow."""
    problems = [f"{k}: {cascade[k]:,} > {target[k]:,} on {target['name']}"
                for k in ("dsp", "bram_18k", "lut") if cascade[k] > target[k]]
    if cascade["max_parallel_products"] > MAX_PARALLEL_PRODUCTS:
        problems.append(f"a layer unrolls {cascade['max_parallel_products']:,} products (> {MAX_PARALLEL_PRODUCTS})")
    if cascade["realtime_margin"] < 1.0:
        problems.append(f"worst-case latency exceeds the window period (margin {cascade['realtime_margin']:.3g})")
    return problems
