"""The input-scaling part of the generated top level (``input_scaling.h``).

With ``data.input_scaling: causal_robust`` the top level takes raw samples and scales them itself,
with the arithmetic of :class:`qcascade.data.scaling.CausalScaler` (its docstring defines it).
This module turns the scaling parameters into the template values, checks that the models' input
type is the grid the Python reference produces, describes the design's extra input
(``scale_reset``) for the manifest, and estimates what the scaling costs (:func:`scaling_cost`).
"""

from __future__ import annotations

import math

import numpy as np

from qcascade.data import scaling as sc
from qcascade.errors import ConfigError
from qcascade.hls.estimate import dsp_per_product

# scale_reset: like prev_load, read once per call: a valid-qualified input or an AXI-Lite register.
SCALE_PRAGMAS = {
    "ap_ctrl_hs": "#pragma HLS INTERFACE ap_vld port=scale_reset",
    "s_axilite": "#pragma HLS INTERFACE s_axilite port=scale_reset bundle=control",
}


def scaling_spec(input_scaling: dict, n_times: int, input_elem: dict) -> sc.ScalingSpec:
    """The :class:`~qcascade.data.scaling.ScalingSpec` of a design whose model input type is ``input_elem``."""
    if not input_elem["signed"] or input_elem["width"] < 2:
        raise ConfigError(f"input scaling: model input type {input_elem['text']} must be a signed ap_fixed")
    return sc.ScalingSpec(n_times=n_times, memory_shift=int(input_scaling["memory_shift"]),
                          out_bits=input_elem["width"], out_int_bits=input_elem["integer"] - 1)


def template_values(input_scaling: dict | None, n_times: int, n_chans: int, input_elem: dict, control: str) -> dict:
    """Substitutions for ``input_scaling.h.in`` and the scaling hooks of the top level and testbench.

    Args:
        input_scaling: None (inputs arrive scaled) or ``{"memory_shift": int, "center": (n_chans,),
            "scale": (n_chans,), "mask": (n_chans,) bool}``: the initial state (the training
            normaliser) and the electrodes kept; optional ``"lanes"``: electrodes scaled per cycle
            (``SCALE_LANES``, 1 to ``n_chans``; default 1, the smallest design), chosen from the
            real-time budget by :func:`qcascade.hls.sizing.scale_lanes_for`.
        n_times, n_chans: window shape; input_elem: the models' input element type (parsed).
        control: block-level protocol (``ap_ctrl_hs`` or ``s_axilite``).

    Raises:
        ConfigError: missing or malformed fields, or a window length that is not a power of two.
    """
    off = {"enabled": 0, "mode": "train_stats", "description": "inputs arrive scaled by the host",
           "scale_param": "", "scale_pragma": "", "scale_arg": "", "scale_lanes": 1, "scale_partition": ""}
    if input_scaling is None:
        return {**off, **{k: 0 for k in ("raw_bits", "raw_frac", "raw_int", "log2_n", "memory_shift", "mant",
                                          "out_bits", "out_frac", "clip_shift", "center_clip_shift",
                                          "min_scale")}, "center0": "", "scale0": "", "keep": ""}
    missing = {"memory_shift", "center", "scale", "mask"} - set(input_scaling)
    if missing:
        raise ConfigError(f"input_scaling: missing {sorted(missing)}")
    spec = scaling_spec(input_scaling, n_times, input_elem)
    arrays = [np.asarray(input_scaling[k]).ravel() for k in ("center", "scale", "mask")]
    if any(a.shape != (n_chans,) for a in arrays) or not all(np.all(np.isfinite(a)) for a in arrays[:2]):
        raise ConfigError(f"input_scaling: center, scale and mask must be {n_chans} finite values each")
    m0, s0 = sc.init_state(arrays[0], arrays[1])
    keep = arrays[2].astype(bool)
    lanes = check_lanes(input_scaling.get("lanes", 1), n_chans)
    # Lane l reads and writes electrodes l, l + lanes, ...: one bank per lane (cyclic).
    partition = "\n    ".join(f"#pragma HLS ARRAY_PARTITION variable={v} cyclic factor={lanes} dim=1"
                               for v in ("coef", "sum_x", "sum_abs")) if lanes > 1 else ""
    return {"enabled": 1, "mode": "causal_robust",
            "description": "per-electrode center and scale of the recording's past windows (docs/input_scaling.md)",
            "raw_bits": sc.RAW_BITS, "raw_frac": sc.RAW_FRAC, "raw_int": sc.RAW_BITS - sc.RAW_FRAC,
            "log2_n": spec.log2_n, "memory_shift": spec.memory_shift, "mant": sc.MANT,
            "out_bits": spec.out_bits, "out_frac": spec.out_frac, "clip_shift": sc.CLIP_SHIFT,
            "center_clip_shift": sc.CENTER_CLIP_SHIFT, "min_scale": sc.MIN_SCALE,
            "center0": ", ".join(str(int(v)) for v in m0), "scale0": ", ".join(str(int(v)) for v in s0),
            "keep": ", ".join("true" if k else "false" for k in keep),
            "scale_param": ", ap_uint<1> scale_reset", "scale_pragma": SCALE_PRAGMAS[control],
            "scale_arg": ", ap_uint<1>(reset)", "scale_lanes": lanes, "scale_partition": partition}


def check_lanes(lanes, n_chans: int) -> int:
    """``SCALE_LANES``: an integer in ``[1, n_chans]`` (ConfigError otherwise)."""
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or not 1 <= int(lanes) <= n_chans:
        raise ConfigError(f"input_scaling: lanes must be an integer in [1, {n_chans}], got {lanes!r}")
    return int(lanes)


def manifest_entry(input_scaling: dict | None, n_times: int, input_elem: dict) -> dict:
    """``input_scaling`` of ``cascade_manifest.json``: what the C simulation needs to feed the design."""
    if input_scaling is None:
        return {"mode": "train_stats"}
    spec = scaling_spec(input_scaling, n_times, input_elem)
    return {"mode": "causal_robust", "memory_shift": spec.memory_shift, "out_bits": spec.out_bits,
            "lanes": int(input_scaling.get("lanes", 1)),
            "out_int_bits": spec.out_int_bits, "raw_type": f"ap_fixed<{sc.RAW_BITS},{sc.RAW_BITS - sc.RAW_FRAC}>",
            "center": [float(v) for v in np.ravel(input_scaling["center"])],
            "scale": [float(v) for v in np.ravel(input_scaling["scale"])],
            "mask": [bool(v) for v in np.ravel(input_scaling["mask"])]}


def reference_scaler(manifest: dict) -> sc.CausalScaler:
    """The Python scaler the generated design reproduces (from its manifest)."""
    e = manifest["input_scaling"]
    spec = sc.ScalingSpec(n_times=manifest["n_times"], memory_shift=e["memory_shift"], out_bits=e["out_bits"],
                          out_int_bits=e["out_int_bits"])
    return sc.CausalScaler(spec, np.asarray(e["center"]), np.asarray(e["scale"]), np.asarray(e["mask"], bool))


# ---------------------------------------------------------------- cost ESTIMATE (not synthesised)
# The reciprocal of scale_coefs: a (MANT + RAW_BITS + 1)-bit by RAW_BITS-bit division. Counted as a
# divider producing one quotient bit per cycle, plus a read of the state and a write of the
# coefficient; the loop over electrodes is not pipelined, so the divisions are sequential.
DIV_NUM_BITS = sc.MANT + sc.RAW_BITS + 1
COEF_CYCLES_PER_CHAN = DIV_NUM_BITS + 2
# scale_update: read m and s, clip and shift (combinational), write: ~3 cycles an electrode (rough).
UPDATE_CYCLES_PER_CHAN = 3
COEF_BITS = sc.RAW_BITS + (sc.MANT + 1) + 6  # scale_coef_t: m, r, sh


COST_RULE = ("input scaling in the top level (causal_robust): SCALE_LANES products a cycle (DSPs by the width "
             "rule, 25 x 18 each), read_window n_times * ceil(n_chans / lanes) cycles instead of n_times, plus per "
             f"window the state reset (n_chans), n_chans sequential divisions ({COEF_CYCLES_PER_CHAN} cycles each: "
             f"{DIV_NUM_BITS}-bit numerator, one bit a cycle) and the state update ({UPDATE_CYCLES_PER_CHAN} each); "
             "added to the worst-case and expected latency; LUT rough from operand widths; lanes: the smallest "
             "power of two within the sizing budget")


def lane_choices(n_chans: int) -> list[int]:
    """Candidate ``SCALE_LANES``: the powers of two in ``[1, n_chans]``, ascending."""
    return [1 << k for k in range(int(n_chans).bit_length()) if 1 << k <= n_chans]


def _ram(depth: int, width: int) -> dict:
    """Rough storage of a small random-access array: registers up to 2 words, else LUTRAM
    (one RAM64X1 LUT per bit of width and 64 words). Vitis may pick block RAM instead."""
    if depth <= 2:
        return {"lut": 0, "ff": depth * width}
    return {"lut": width * math.ceil(depth / 64), "ff": 0}


def scaling_cost(n_times: int, n_chans: int, lanes: int, family: str = "", sample_bits: int = 16) -> dict:
    """ESTIMATE of the causal input scaling in the top level with ``lanes`` electrodes per cycle.

    Cycles (``cascade_top.cpp.in``): ``read_window`` takes ``n_times * ceil(n_chans / lanes)``
    cycles instead of ``n_times`` (``extra_read_cycles``), plus ``ceil(n_chans / lanes)`` to clear the
    window's sums; before the window, ``scale_coefs`` resets the state (``n_chans`` cycles, on a
    recording's first window; counted always, the worst case) and computes ``n_chans`` reciprocals one
    after the other (:data:`COEF_CYCLES_PER_CHAN` each); after it, ``scale_update``
    (:data:`UPDATE_CYCLES_PER_CHAN` each). ``extra_cycles`` is all of that beyond the ``n_times`` of
    the unscaled read.

    DSP: one product per lane, ``(RAW_BITS + 1)``-bit difference by the 17 low reciprocal bits
    (18 signed), by :func:`qcascade.hls.estimate.dsp_per_product`. LUT: ROUGH, from operand widths
    (one LUT per bit of each adder, comparator and the 2:1 choices; per lane the group multiplexer
    ``24 x ceil(groups / 4)``; one array divider ``DIV_NUM_BITS x RAW_BITS``; the state ``2 x 24 x
    n_chans`` bits, the coefficients and sums as LUTRAM or registers). FF: the row of
    ``sample_bits``-bit scaled samples and register-sized arrays only. Nothing was synthesised.
    """
    lanes = check_lanes(lanes, n_chans)
    groups = math.ceil(n_chans / lanes)
    raw, mant = sc.RAW_BITS, sc.MANT
    log2_n = max(0, int(n_times - 1).bit_length())
    sum_bits = raw + 2 + log2_n
    prod_bits = raw + mant + 3
    dsp = lanes * dsp_per_product(raw + 1, mant + 1, family)
    # Per lane: x - m, two sums, |d|, the top-bit add, rounding, saturation (two compares, a choice).
    lane_lut = (raw + 1) + 2 * sum_bits + (raw + 1) + prod_bits + prod_bits + 3 * sample_bits + raw * math.ceil(groups / 4)
    div_lut = DIV_NUM_BITS * raw
    update_lut = 8 * (raw + 8)  # clip (4 compares), center step, two shifts-and-adds, final clamp
    mems = [_ram(n_chans, raw), _ram(n_chans, raw)]  # state m, s
    mems += [_ram(groups, w) for w in (COEF_BITS, sum_bits, sum_bits) for _ in range(lanes)]
    row_ff = n_chans * sample_bits  # the time step's scaled samples (registers)
    read = n_times * groups
    window = groups + n_chans + n_chans * COEF_CYCLES_PER_CHAN + n_chans * UPDATE_CYCLES_PER_CHAN
    return {"source": "ESTIMATE", "lanes": lanes, "groups": groups, "dsp": dsp,
            "lut": lanes * lane_lut + div_lut + update_lut + sum(m["lut"] for m in mems),
            "ff": row_ff + sum(m["ff"] for m in mems), "bram_18k": 0, "read_cycles": read,
            "extra_read_cycles": read - n_times, "window_cycles": window, "divisions": n_chans,
            "extra_cycles": read - n_times + window,
            "note": "causal input scaling in the top level: cycles from the code, LUT rough, not synthesised"}
