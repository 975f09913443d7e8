"""The input-scaling part of the generated top level (``input_scaling.h``).

With ``data.input_scaling: causal_robust`` the top level takes raw samples and scales them itself,
with the arithmetic of :class:`qcascade.data.scaling.CausalScaler` (its docstring defines it).
This module turns the scaling parameters into the template values, checks that the models' input
type is the grid the Python reference produces, and describes the design's extra input
(``scale_reset``) for the manifest.
"""

from __future__ import annotations

import numpy as np

from qcascade.data import scaling as sc
from qcascade.errors import ConfigError

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
            normaliser) and the electrodes kept.
        n_times, n_chans: window shape; input_elem: the models' input element type (parsed).
        control: block-level protocol (``ap_ctrl_hs`` or ``s_axilite``).

    Raises:
        ConfigError: missing or malformed fields, or a window length that is not a power of two.
    """
    off = {"enabled": 0, "mode": "train_stats", "description": "inputs arrive scaled by the host",
           "scale_param": "", "scale_pragma": "", "scale_arg": ""}
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
    return {"enabled": 1, "mode": "causal_robust",
            "description": "per-electrode center and scale of the recording's past windows (docs/input_scaling.md)",
            "raw_bits": sc.RAW_BITS, "raw_frac": sc.RAW_FRAC, "raw_int": sc.RAW_BITS - sc.RAW_FRAC,
            "log2_n": spec.log2_n, "memory_shift": spec.memory_shift, "mant": sc.MANT,
            "out_bits": spec.out_bits, "out_frac": spec.out_frac, "clip_shift": sc.CLIP_SHIFT,
            "center_clip_shift": sc.CENTER_CLIP_SHIFT, "min_scale": sc.MIN_SCALE,
            "center0": ", ".join(str(int(v)) for v in m0), "scale0": ", ".join(str(int(v)) for v in s0),
            "keep": ", ".join("true" if k else "false" for k in keep),
            "scale_param": ", ap_uint<1> scale_reset", "scale_pragma": SCALE_PRAGMAS[control],
            "scale_arg": ", ap_uint<1>(reset)"}


def manifest_entry(input_scaling: dict | None, n_times: int, input_elem: dict) -> dict:
    """``input_scaling`` of ``cascade_manifest.json``: what the C simulation needs to feed the design."""
    if input_scaling is None:
        return {"mode": "train_stats"}
    spec = scaling_spec(input_scaling, n_times, input_elem)
    return {"mode": "causal_robust", "memory_shift": spec.memory_shift, "out_bits": spec.out_bits,
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
