"""Export graph: fold every BatchNormalization into an adjacent linear layer, drop Dropout.

Folding (inference-mode BN ``y = gamma (z - mu) / sqrt(var + eps) + beta``, ``s = gamma/sqrt(var+eps)``):

* **backward** (BN directly after QConv1D / QDense / QSeparableConv1D whose only consumer is the BN,
  linear activation): ``W' = Q(W) * s`` on the output-channel axis (the *pointwise* kernel of a
  separable conv), ``b' = s * (Q(b) - mu) + beta`` (``Q(b) = 0`` when the layer had no bias);
* **forward** (BN followed by a QDense that is its only consumer, e.g. the band-power / feature BNs
  of simple B/C): ``W' = s[:, None] * Q(W)``, ``b' = Q(b) + (beta - mu * s) @ Q(W)``.

``Q`` is the layer's training quantizer, so folding starts from the weights the trained forward pass
actually used. The folded weights are re-quantized by QKeras ``quantized_bits(b, i, alpha=1)`` with
the *same bit width b* as the original kernel quantizer and ``i = int_bits_for_range(max|W'|)``
(measured on the folded weights themselves, no headroom needed: they are known exactly); biases get
``quantized_bits(policy.bias_bits, int_bits_for_range(max|b'|))``. hls4ml reads these quantizers,
so its weight types are exactly ``ap_fixed<b, i+1>`` and Keras and hls4ml use identical weights.
The result is numerically the training model up to that one re-rounding of the folded weights.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from qcascade.data.aligned import aligned_take
from qcascade.errors import ConfigError, QCascadeError
from qcascade.io_utils import save_keras_h5
from qcascade.quant import QuantPolicy
from qcascade.tensors import as_tensor

_LINEAR = {"QConv1D", "QDense", "QSeparableConv1D"}


def _quant_cfg(q) -> dict:
    return {"class_name": q.__class__.__name__, "config": q.get_config(),
            "__passive_serialization__": True}


def _q_np(q, w: np.ndarray | None) -> np.ndarray | None:
    """Apply a QKeras quantizer (None = identity) to a numpy array."""
    if w is None or q is None:
        return w
    return np.asarray(q(w.astype(np.float32)).numpy(), np.float64)


def _bn_scale_shift(bn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns ``(s, mu, beta)`` of an inference-mode BatchNormalization."""
    cfg = bn.get_config()
    w = list(bn.get_weights())
    gamma = w.pop(0) if cfg["scale"] else np.ones_like(w[-1])
    beta = w.pop(0) if cfg["center"] else np.zeros_like(w[-1])
    mu, var = w
    return gamma / np.sqrt(var + cfg["epsilon"]), mu, beta


def _graph(cfg: dict) -> tuple[dict, dict]:
    layers = {l["name"]: l for l in cfg["layers"]}
    consumers: dict[str, list[str]] = {n: [] for n in layers}
    for l in cfg["layers"]:
        for node in l["inbound_nodes"]:
            for ref in node:
                consumers[ref[0]].append(l["name"])
    return layers, consumers


def _bypass(cfg: dict, name: str) -> None:
    """Remove single-input layer ``name`` from a functional config, rewiring its consumers."""
    layers = {l["name"]: l for l in cfg["layers"]}
    src = layers[name]["inbound_nodes"][0][0]
    for l in cfg["layers"]:
        for node in l["inbound_nodes"]:
            for ref in node:
                if ref[0] == name:
                    ref[0], ref[1], ref[2] = src[0], src[1], src[2]
    for ref in cfg["output_layers"]:
        if ref[0] == name:
            ref[0], ref[1], ref[2] = src[0], src[1], src[2]
    cfg["layers"] = [l for l in cfg["layers"] if l["name"] != name]


def _legacy_arch(model) -> dict:
    """Model config exactly as ``model.save('x.h5')`` writes it.

    The ``.h5`` (legacy) serialisation is the one ``qkeras.utils.load_qmodel`` reads back; plain
    ``get_config()``/``to_json()`` configs of ``QActivation`` do not deserialise in Keras 2.14, so we
    go through a temporary ``.h5`` file.
    """
    import h5py

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.h5")
        save_keras_h5(model, path)
        with h5py.File(path, "r") as f:
            raw = f.attrs["model_config"]
    return json.loads(raw.decode() if hasattr(raw, "decode") else raw)


def fold_batchnorm(model, policy: QuantPolicy | None = None, *, drop_dropout: bool = True):
    """Return an equivalent export model without BatchNormalization (and without Dropout).

    Args:
        model: trained functional ``tf.keras.Model`` built by :mod:`qcascade.models`.
        policy: quantization policy (``bias_bits`` of folded biases); default ``QuantPolicy()``.
        drop_dropout: remove Dropout layers (identity at inference; hls4ml drops them too).

    Returns:
        A new ``tf.keras.Model`` with the same input/output shapes and layer names minus the BNs.

    Raises:
        QCascadeError: a BN is neither after a foldable linear layer nor before a QDense.
    """
    import tensorflow as tf
    from keras.src.saving.legacy import model_config
    from qkeras.utils import _add_supported_quantized_objects

    from qcascade.quant import int_bits_for_range, quantized_bits_

    policy = policy or QuantPolicy()
    arch = _legacy_arch(model)
    cfg = arch["config"]
    layers, consumers = _graph(cfg)
    new_w: dict[str, list[np.ndarray]] = {}

    for name, lc in list(layers.items()):
        if lc["class_name"] != "BatchNormalization":
            continue
        bn = model.get_layer(name)
        s, mu, beta = _bn_scale_shift(bn)
        src = lc["inbound_nodes"][0][0][0]
        dst = consumers[name]
        prev = model.get_layer(src)
        if (layers[src]["class_name"] in _LINEAR and consumers[src] == [name]
                and layers[src]["config"].get("activation") in (None, "linear")):
            target, kind = prev, "backward"
        elif len(dst) == 1 and layers[dst[0]]["class_name"] == "QDense":
            target, kind = model.get_layer(dst[0]), "forward"
        else:
            raise QCascadeError(f"cannot fold BatchNormalization {name!r} (after {src!r}, before {dst})")
        tcfg = layers[target.name]["config"]
        sep = layers[target.name]["class_name"] == "QSeparableConv1D"
        kq = target.pointwise_quantizer_internal if sep else target.kernel_quantizer_internal
        w = target.get_weights()
        kern = _q_np(kq, w[1] if sep else w[0])
        bias = _q_np(target.bias_quantizer_internal, w[-1]) if tcfg["use_bias"] else 0.0
        if kind == "backward":
            kern_f = kern * s
            bias_f = s * (bias - mu) + beta
        else:
            kern_f = kern * s[:, None]
            bias_f = bias + (beta - mu * s) @ kern
        bits = int(kq.bits) if kq is not None else policy.bits("classifier")
        try:
            kq_new = quantized_bits_(bits, int_bits_for_range(np.max(np.abs(kern_f))))
            bq_new = quantized_bits_(policy.bias_bits, int_bits_for_range(np.max(np.abs(bias_f))))
        except ConfigError as exc:
            raise ConfigError(f"layer {target.name!r}: its BatchNorm-folded weights need more bits ({exc}); "
                              "raise the quant.*_bits of its group (or quant.bias_bits)") from None
        tcfg["pointwise_quantizer" if sep else "kernel_quantizer"] = _quant_cfg(kq_new)
        tcfg["bias_quantizer"] = _quant_cfg(bq_new)
        tcfg["use_bias"] = True
        new_w[target.name] = ([w[0]] if sep else []) + [kern_f, np.asarray(bias_f).reshape(-1)]
        _bypass(cfg, name)
        layers, consumers = _graph(cfg)

    if drop_dropout:
        for name, lc in list(layers.items()):
            if lc["class_name"] == "Dropout":
                _bypass(cfg, name)

    objs: dict = {}
    _add_supported_quantized_objects(objs)
    # Same path as the .h5 loader (it needs the custom-object scope for nested quantizer dicts).
    from keras.src.saving.legacy import serialization
    from keras.src.saving.legacy.saved_model.utils import keras_option_scope

    from qcascade.models import without_autograph

    with serialization.SharedObjectLoadingScope(), tf.keras.utils.custom_object_scope(objs), \
            keras_option_scope(save_traces=False, in_tf_saved_model_scope=True):
        folded = without_autograph(model_config.model_from_config)(arch, custom_objects=objs)
    for layer in folded.layers:
        if layer.name in new_w:
            layer.set_weights([np.asarray(a, np.float32) for a in new_w[layer.name]])
        elif layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return folded


def refresh_batchnorm(model, X: np.ndarray, batch_size: int = 512) -> None:
    """Set every BN's moving mean/variance to the exact statistics of its input on ``X``, in place.

    Short trainings leave the moving averages lagging behind the weights (inference-mode outputs
    then collapse to one class although training accuracy is high). BNs are refreshed in graph
    order, each with the already refreshed upstream BNs, so the statistics are those of the final
    inference graph. Call before :func:`fold_batchnorm`.

    Args:
        model: functional model with BatchNormalization layers.
        X: ``(n, n_times, n_chans)`` training (or calibration) windows.
        batch_size: inference batch size (the whole of :func:`bn_sample` at once: each call is eager).
    """
    import tensorflow as tf

    for layer in model.layers:
        if layer.__class__.__name__ != "BatchNormalization":
            continue
        probe = tf.keras.Model(model.inputs, layer.input)
        s1 = s2 = n = 0
        for i in range(0, len(X), batch_size):
            a = probe(as_tensor(np.asarray(X[i:i + batch_size], np.float32)), training=False).numpy()
            a = a.astype(np.float64).reshape(-1, a.shape[-1])
            s1, s2, n = s1 + a.sum(0), s2 + (a * a).sum(0), n + len(a)
        mean = s1 / n
        var = np.maximum(s2 / n - mean * mean, 0.0)
        w = layer.get_weights()
        w[-2], w[-1] = mean.astype(np.float32), var.astype(np.float32)
        layer.set_weights(w)


def bn_sample(X: np.ndarray, n: int = 512) -> np.ndarray:
    """``n`` windows evenly spaced over ``X`` (all of them if fewer): the BN refresh input.

    Each window gives every BN channel ``n_times``-ish activations, so 512 windows estimate the
    statistics closely, and the refresh (one forward pass per BN layer) costs a quarter of what
    2048 windows cost; evenly spaced rather than the first ones, so every record contributes.
    """
    if len(X) <= n:
        return X
    return aligned_take(X, np.linspace(0, len(X) - 1, n).round().astype(int))


def has_batchnorm(model) -> bool:
    """True if any layer of ``model`` is a BatchNormalization."""
    return any(l.__class__.__name__ == "BatchNormalization" for l in model.layers)


__all__ = ["bn_sample", "fold_batchnorm", "has_batchnorm", "refresh_batchnorm"]
