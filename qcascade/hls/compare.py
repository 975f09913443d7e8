"""Keras (QKeras) vs hls4ml C simulation: logits compared, the first diverging layer traced.

Also the float64 evaluation of a QKeras model (:func:`keras_float64_predict`), the closer
reference for the design's exact fixed-point sums.
"""

from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path

import numpy as np

from qcascade.errors import ConfigError
from qcascade.hls.convert import convert_model


def hls_predict(hls_model, X: np.ndarray) -> np.ndarray:
    """``hls_model.predict`` on ``(n, n_times, n_chans)`` windows -> ``(n, 2)`` logits."""
    y = hls_model.predict(np.ascontiguousarray(X, dtype=np.float64))
    return np.asarray(y, dtype=np.float64).reshape(len(X), -1)


@contextlib.contextmanager
def _floatx64():
    import tensorflow as tf

    old = tf.keras.backend.floatx()
    tf.keras.backend.set_floatx("float64")
    try:
        yield
    finally:
        tf.keras.backend.set_floatx(old)


def _float64_copy(model):
    """Same graph, weights and quantizers with float64 layers (call under :func:`_floatx64`)."""
    import tensorflow as tf
    from keras.src.saving.legacy import model_config, serialization
    from keras.src.saving.legacy.saved_model.utils import keras_option_scope
    from qkeras.utils import _add_supported_quantized_objects

    from qcascade.models.folding import _legacy_arch

    arch = _legacy_arch(model)
    objs: dict = {}
    _add_supported_quantized_objects(objs)
    for layer in arch["config"]["layers"]:
        layer["config"]["dtype"] = "float64"
    with serialization.SharedObjectLoadingScope(), tf.keras.utils.custom_object_scope(objs), \
            keras_option_scope(save_traces=False, in_tf_saved_model_scope=True):
        m64 = model_config.model_from_config(arch, custom_objects=objs)
    m64.set_weights([w.astype(np.float64) for w in model.get_weights()])
    return m64


def _predict64(model, X: np.ndarray, batch_size: int = 32):
    outs = [model(np.asarray(X[i:i + batch_size], np.float64), training=False)
            for i in range(0, len(X), batch_size)]
    if isinstance(outs[0], (list, tuple)):
        return [np.concatenate([o[k].numpy() for o in outs]) for k in range(len(outs[0]))]
    return np.concatenate([o.numpy() for o in outs])


def keras_float64_predict(model, X: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Run ``model`` with float64 arithmetic (same weights and quantizers) -> ``(n, 2)``.

    Keras' float32 sums over many products (e.g. 640 per output of block 1) are off by ~1e-6, which
    flips a 16-bit quantizer at rounding ties and then 8-bit ReLUs downstream (up to 8 logit LSB
    measured on the complex model); the fixed-point design computes these sums exactly, and so does
    float64. Caveat: QKeras' ``quantized_relu`` casts its input to float32 internally, so ties at
    ReLU quantizers can still flip (measured: block1 conv outputs identical to the C simulation in
    float64, 1-LSB flips at ``block1_relu``). A diagnostic, not a bit-exact reference.
    """
    with _floatx64():
        return _predict64(_float64_copy(model), X, batch_size)


def compare_keras_hls(keras_model, hls_model, X: np.ndarray, *, trace_on_disagreement: bool = True,
                      trace_n: int = 8, float64_reference: bool = False) -> dict:
    """Compare Keras (QKeras) logits with hls4ml C-simulation logits.

    Args:
        keras_model: the Keras model that was converted (export graph).
        hls_model: compiled hls4ml model.
        X: ``(n, n_times, n_chans)`` windows.
        trace_on_disagreement: if any decision differs, re-convert with tracing and locate the
            first diverging layer (costs one more compile).
        trace_n: number of disagreeing windows traced.
        float64_reference: also compare with the same QKeras model evaluated in float64
            (:func:`keras_float64_predict`), the exact reference for the fixed-point arithmetic.

    Returns:
        ``{"decision_agreement", "max_abs_logit_error", "mean_abs_logit_error", "n",
        "keras_class_counts"}`` against Keras float32 (``predict``), plus ``"f64_decision_agreement"``
        / ``"f64_max_abs_logit_error"`` and, on disagreement, ``"first_diverging_layer"`` / ``"trace"``.
    """
    X = np.asarray(X, np.float32)
    yk = keras_model.predict(X, verbose=0, batch_size=64).astype(np.float64)
    yh = hls_predict(hls_model, X)
    err = np.abs(yk - yh)
    dec_k, dec_h = yk.argmax(1), yh.argmax(1)
    res = {"decision_agreement": float(np.mean(dec_k == dec_h)), "max_abs_logit_error": float(err.max()),
           "mean_abs_logit_error": float(err.mean()), "n": int(len(X)),
           "keras_class_counts": np.bincount(dec_k, minlength=2).tolist()}
    if float64_reference:
        y64 = keras_float64_predict(keras_model, X)
        res["f64_decision_agreement"] = float(np.mean(y64.argmax(1) == dec_h))
        res["f64_max_abs_logit_error"] = float(np.abs(y64 - yh).max())
    bad = np.flatnonzero(dec_k != dec_h)
    if len(bad) and trace_on_disagreement and getattr(hls_model, "qcascade_args", None):
        res.update(trace_divergence(keras_model, hls_model, X[bad[:trace_n]]))
    return res


def trace_divergence(keras_model, hls_model, X: np.ndarray, rel_tol: float = 1e-3,
                     float64: bool = False) -> dict:
    """Per-layer max |hls4ml - Keras| on ``X``; the first layer above ``rel_tol`` (relative to
    ``max(1, max|keras|)``) diverges. ``float64`` compares with a float64 evaluation of the model."""
    import tensorflow as tf

    args = dict(hls_model.qcascade_args)
    if not args.pop("traced"):
        args["out_dir"] = Path(args["out_dir"]).with_name(Path(args["out_dir"]).name + "_trace")
        m = args.pop("model")
        hls_model = convert_model(m, args.pop("hls_cfg"), args.pop("out_dir"), trace=True, **args)
    _, traces = hls_model.trace(np.ascontiguousarray(X, dtype=np.float64))
    names = [n for n in traces if n in {l.name for l in keras_model.layers}]
    with _floatx64() if float64 else contextlib.nullcontext():
        ref = _float64_copy(keras_model) if float64 else keras_model
        probe = tf.keras.Model(ref.inputs, [ref.get_layer(n).output for n in names])
        outs = _predict64(probe, X) if float64 else probe.predict(np.asarray(X, np.float32), verbose=0)
    outs = outs if isinstance(outs, list) else [outs]
    table, first = [], None
    for n, k in zip(names, outs):
        h = np.asarray(traces[n]).reshape(k.shape)
        d = float(np.max(np.abs(h - k)))
        table.append({"layer": n, "max_abs_diff": d, "keras_max_abs": float(np.max(np.abs(k)))})
        if first is None and d > rel_tol * max(1.0, float(np.max(np.abs(k)))):
            first = n
    return {"first_diverging_layer": first, "trace": table}


def lsb(type_str: str) -> float:
    """Resolution of an hls4ml fixed type string such as ``fixed<16,6,RND_CONV,SAT>``."""
    m = re.search(r"fixed<\s*(\d+)\s*,\s*(-?\d+)", type_str)
    if not m:
        raise ConfigError(f"not a fixed-point type: {type_str!r}")
    return math.ldexp(1.0, -(int(m.group(1)) - int(m.group(2))))
