"""Analytic latency/DSP estimate of an hls4ml design, used only where no vendor report exists.

Every number this module returns is labelled ``"source": "ESTIMATE"``. It is a back-of-the-envelope
model, not a substitute for C synthesis; real reports (see :mod:`qcascade.hls.reports`) win.

Input: one dict per layer, in dataflow order, with the fields

=================  ===========================================================================
``name``           layer name (str)
``class_name``     Keras/QKeras class, e.g. ``"QConv1D"``, ``"QDense"``, ``"Activation"`` (str)
``n_mult``         multiplications per window position (conv: kernel x in_ch x out_ch; dense:
                   n_in x n_out; 0 for layers without products such as ReLU or padding)
``weight_bits``    total bit width of the weights (ignored when ``n_mult`` is 0)
``input_bits``     total bit width of the layer input (ignored when ``n_mult`` is 0)
``input_length``   padded number of time steps the layer consumes in ``io_stream``, or ``None``
                   for a layer computed in one shot (io_parallel, or a dense after pooling)
``ii``             optional: achieved II per input step if already known (e.g. from an earlier
                   csynth); default ``reuse_factor`` for layers with products, 1 otherwise
=================  ===========================================================================

Other keys (e.g. ``n_out_channels``) are ignored.

Rules (also returned under ``"rules"``):

1. Parallel multipliers of a layer = ceil(n_mult / ReuseFactor).
2. A product goes to DSPs only if both operands are wider than ``DSP_MIN_BITS`` = 10 bits; it then
   takes ceil(wide / 27) x ceil(narrow / 18) DSPs (DSP48E2 27x18 multiplier). Narrower products are
   built in LUTs at about ceil(weight_bits x input_bits / 2) LUTs each (a generic array multiplier;
   constant weights, as in the Latency strategy, are often cheaper: zero and power-of-two weights
   cost almost nothing).
3. A streamed layer (``input_length`` set) needs at least input_length x II cycles (one input step
   per II, pipeline fill ignored): a lower bound. A one-shot layer takes ReuseFactor + 1 cycles
   (RF multiply rounds plus one output register), also a lower bound.
4. Total latency ``latency_cycles`` = sum over layers (no overlap between layers: an upper estimate
   for dataflow designs); ``latency_cycles_lower_bound`` = slowest streamed layer + sum of one-shot
   layers (streamed layers overlap in a dataflow pipeline). ``ii`` = slowest layer interval.
5. FF, BRAM, the LUTs of adders/control and the estimated clock are not modelled (``None``).
"""

from __future__ import annotations

import math

DSP_MIN_BITS = 10
DSP_A_BITS, DSP_B_BITS = 27, 18

RULES = [
    "parallel multipliers per layer = ceil(n_mult / ReuseFactor)",
    f"a product uses DSPs only if weight_bits > {DSP_MIN_BITS} and input_bits > {DSP_MIN_BITS}; "
    f"then ceil(wide/{DSP_A_BITS}) * ceil(narrow/{DSP_B_BITS}) DSP48E2 per multiplier",
    "narrower products go to LUTs: ~ceil(weight_bits * input_bits / 2) LUTs per multiplier "
    "(generic array multiplier; constant weights are often cheaper)",
    "streamed layer latency >= input_length * II (II = ReuseFactor, or 1 without products; "
    "pipeline fill ignored): a lower bound",
    "one-shot layer latency ~ ReuseFactor + 1 cycles: a lower bound",
    "latency_cycles = sum over layers (no overlap); latency_cycles_lower_bound = slowest streamed "
    "layer + sum of one-shot layers (streamed layers overlap in dataflow)",
    "FF, BRAM, adder/control LUTs and clock are not modelled (None)",
]


def _required(layer: dict, key: str, index: int) -> object:
    if key not in layer:
        raise ValueError(f"layer {layer.get('name', index)!r}: missing field {key!r}")
    return layer[key]


def _layer_estimate(layer: dict, index: int, reuse_factor: int) -> dict:
    name = _required(layer, "name", index)
    n_mult = int(_required(layer, "n_mult", index))
    input_length = _required(layer, "input_length", index)
    if n_mult < 0 or (input_length is not None and int(input_length) < 1):
        raise ValueError(f"layer {name!r}: n_mult must be >= 0 and input_length >= 1 or None")
    parallel = math.ceil(n_mult / reuse_factor)
    dsp_per_mult = lut_per_mult = 0
    if n_mult:
        weight_bits = int(_required(layer, "weight_bits", index))
        input_bits = int(_required(layer, "input_bits", index))
        if weight_bits > DSP_MIN_BITS and input_bits > DSP_MIN_BITS:
            wide, narrow = max(weight_bits, input_bits), min(weight_bits, input_bits)
            dsp_per_mult = math.ceil(wide / DSP_A_BITS) * math.ceil(narrow / DSP_B_BITS)
        else:
            lut_per_mult = math.ceil(weight_bits * input_bits / 2)
    ii = int(layer.get("ii") or (reuse_factor if n_mult else 1))
    streamed = input_length is not None
    latency = int(input_length) * ii if streamed else reuse_factor + 1
    return {
        "name": name,
        "class_name": layer.get("class_name"),
        "streamed": streamed,
        "n_mult": n_mult,
        "parallel_mults": parallel,
        "on_dsp": dsp_per_mult > 0,
        "dsp_per_mult": dsp_per_mult,
        "dsp": parallel * dsp_per_mult,
        "lut_mult": parallel * lut_per_mult,
        "ii": ii,
        "latency_cycles": latency,
        "interval_cycles": latency if streamed else reuse_factor,
    }


def estimate_from_layers(layers: list[dict], reuse_factor: int, clock_ns: float) -> dict:
    """Estimate latency, DSPs and multiplier LUTs of a model from its layer list (rules in module doc).

    Args:
        layers: layer dicts in dataflow order (fields in the module docstring).
        reuse_factor: hls4ml ReuseFactor (>= 1), the same for every layer.
        clock_ns: target clock period in ns.

    Returns:
        ``{"source": "ESTIMATE", "latency_cycles", "latency_ns", "latency_cycles_lower_bound",
        "latency_ns_lower_bound", "dsp", "lut_mult", "rules", "per_layer"}`` plus the csynth keys
        ``latency_best`` (= lower bound), ``latency_worst`` (= latency_cycles), ``ii``, ``lut``,
        ``ff``, ``bram_18k``, ``clock_est_ns`` (the unmodelled ones ``None``) and ``clock_target_ns``.

    Raises:
        ValueError: bad reuse_factor/clock_ns, or a layer lacks a field or has a negative count.
    """
    if int(reuse_factor) < 1:
        raise ValueError(f"reuse_factor must be >= 1, got {reuse_factor}")
    if clock_ns <= 0:
        raise ValueError(f"clock_ns must be > 0, got {clock_ns}")
    per_layer = [_layer_estimate(layer, i, int(reuse_factor)) for i, layer in enumerate(layers)]
    total = sum(layer["latency_cycles"] for layer in per_layer)
    streamed = [layer["latency_cycles"] for layer in per_layer if layer["streamed"]]
    one_shot = sum(layer["latency_cycles"] for layer in per_layer if not layer["streamed"])
    lower = max(streamed, default=0) + one_shot
    return {
        "source": "ESTIMATE",
        "latency_cycles": total,
        "latency_ns": total * clock_ns,
        "latency_cycles_lower_bound": lower,
        "latency_ns_lower_bound": lower * clock_ns,
        "dsp": sum(layer["dsp"] for layer in per_layer),
        "lut_mult": sum(layer["lut_mult"] for layer in per_layer),
        "latency_best": lower,
        "latency_worst": total,
        "ii": max((layer["interval_cycles"] for layer in per_layer), default=None),
        "lut": None,
        "ff": None,
        "bram_18k": None,
        "clock_est_ns": None,
        "clock_target_ns": clock_ns,
        "reuse_factor": int(reuse_factor),
        "rules": list(RULES),
        "per_layer": per_layer,
    }
