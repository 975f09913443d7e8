"""Parameters and multiply-accumulates (MACs) per window, per layer and in total.

Conventions (per window, batch size 1):

* conv: ``macs = out_len * k * c_in * c_out``; separable conv: depthwise ``out_len * k * c_in`` plus
  pointwise ``out_len * c_in * c_out``; dense: ``n_in * n_out``;
* elementwise Multiply: one multiplication per output element; inference-mode BatchNorm (training
  graph only): one per element; pooling, additions, activations, data movement: 0;
* ``n_mult`` = multiplications needed for one output time step (what a fully parallel, reuse-factor
  1, io_stream hls4ml layer instantiates; divide by the reuse factor for a resource estimate);
* ``input_length`` = output time steps the layer iterates over (1 for dense / global layers);
* ``weight_bits`` = kernel quantizer width (0 without weights); ``input_bits`` = width of the data
  entering the layer: from an hls4ml config (``HLSConfig.LayerName.<producer>.Precision.result``) when
  given, else the width of the closest upstream QKeras activation quantizer.
Frozen constant kernels (FIR bank, +-1 selectors, all-ones broadcast) are counted like trained ones
but flagged ``trainable=False``: HLS may simplify multiplications by 0/+-1.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

_PASS = {"Reshape", "Permute", "UpSampling1D", "Dropout", "Flatten", "ZeroPadding1D", "MaxPooling1D",
         "GlobalMaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "Concatenate", "Add",
         "Subtract", "Multiply", "BatchNormalization"}


def _inbound(layer) -> list:
    if not layer.inbound_nodes:
        return []
    ins = layer.inbound_nodes[0].inbound_layers
    return ins if isinstance(ins, list) else [ins]


def _quant_bits(q) -> int:
    if q is None:
        return 32
    name = getattr(q, "__name__", None) or q.__class__.__name__
    return 2 if name == "binary" else int(getattr(q, "bits", 32))


def _width_from_cfg(hls_cfg: dict | None, name: str) -> int | None:
    if not hls_cfg:
        return None
    layers = hls_cfg.get("HLSConfig", hls_cfg).get("LayerName", {})
    prec = (layers.get(name) or {}).get("Precision", {})
    m = re.search(r"<\s*(\d+)", str(prec.get("result", "")))
    return int(m.group(1)) if m else None


def _upstream_bits(layer, hls_cfg: dict | None) -> int:
    """Width of the data entering ``layer`` (see module docstring)."""
    ins = _inbound(layer)
    if not ins:
        return 0
    src = ins[0]
    w = _width_from_cfg(hls_cfg, src.name)
    if w is not None:
        return w
    seen = 0
    while seen < 100:
        cls = src.__class__.__name__
        if cls == "QActivation":
            return _quant_bits(src.quantizer)
        if cls == "InputLayer":
            return 32
        nxt = _inbound(src)
        if not nxt:
            return 32
        src = max(nxt, key=lambda l: _quant_bits(getattr(l, "quantizer", None))
                  if l.__class__.__name__ == "QActivation" else 0)
        seen += 1
    return 32


def _steps(shape) -> int:
    return int(shape[1]) if len(shape) == 3 else 1


def layer_count(layer, hls_cfg: dict | None = None) -> dict[str, Any]:
    """Count one layer (see module docstring for the conventions)."""
    cls = layer.__class__.__name__
    out_shape = layer.output_shape
    in_shape = layer.input_shape if not isinstance(layer.input_shape, list) else layer.input_shape[0]
    params = int(layer.count_params())
    macs = n_mult = wbits = 0
    steps = _steps(out_shape)
    if cls in ("QConv1D", "Conv1D"):
        k, cin, cout = layer.kernel.shape
        n_mult = int(k * cin * cout)
        macs = steps * n_mult
        wbits = _quant_bits(getattr(layer, "kernel_quantizer_internal", None))
    elif cls in ("QSeparableConv1D", "SeparableConv1D"):
        k, cin, _ = layer.depthwise_kernel.shape
        cout = layer.pointwise_kernel.shape[-1]
        n_mult = int(k * cin + cin * cout)
        macs = steps * n_mult
        wbits = max(_quant_bits(getattr(layer, "depthwise_quantizer_internal", None)),
                    _quant_bits(getattr(layer, "pointwise_quantizer_internal", None)))
    elif cls in ("QDense", "Dense"):
        n_in, n_out = layer.kernel.shape
        n_mult = macs = int(n_in * n_out)
        wbits = _quant_bits(getattr(layer, "kernel_quantizer_internal", None))
    elif cls in ("Multiply", "BatchNormalization"):
        n_mult = int(out_shape[-1])
        macs = int(np.prod(out_shape[1:]))
    elif cls not in _PASS and cls not in ("QActivation", "InputLayer", "Activation"):
        raise ValueError(f"layer {layer.name!r}: no counting rule for {cls}")
    return {"name": layer.name, "class_name": cls, "macs": int(macs), "params": params,
            "n_mult": int(n_mult), "weight_bits": int(wbits),
            "input_bits": int(_upstream_bits(layer, hls_cfg)) if cls != "InputLayer" else 0,
            "input_length": int(steps), "output_shape": [int(d) for d in out_shape[1:]],
            "trainable": bool(layer.trainable and params > 0),
            "in_shape": [int(d) for d in in_shape[1:]] if in_shape else []}


def count_macs(model, hls_cfg: dict | None = None) -> dict[str, Any]:
    """Per-layer and total MACs / parameters of ``model`` for one window.

    Args:
        model: functional Keras model (training or export graph).
        hls_cfg: optional :func:`qcascade.hls.convert.make_hls_config` result for exact input widths.

    Returns:
        ``{"total": int, "params": int, "per_layer": [{"name", "class_name", "macs", "params",
        "n_mult", "weight_bits", "input_bits", "input_length", "output_shape", "trainable",
        "in_shape"}, ...]}`` in graph order.
    """
    per = [layer_count(l, hls_cfg) for l in model.layers]
    return {"total": int(sum(p["macs"] for p in per)), "params": int(model.count_params()),
            "per_layer": per}


def count_params(model) -> dict[str, int]:
    """``{"total", "trainable", "non_trainable"}`` parameter counts."""
    tr = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    tot = int(model.count_params())
    return {"total": tot, "trainable": tr, "non_trainable": tot - tr}
