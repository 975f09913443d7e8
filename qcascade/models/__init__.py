"""Model registry: every exportable detector, built from one :class:`~qcascade.quant.QuantPolicy`.

Each registered builder is ``fn(policy, n_times=512, n_chans=..., *, int_bits=None) -> tf.keras.Model``
mapping ``(batch, n_times, n_chans)`` windows to 2 **logits** (no softmax layer). The returned model
is the *training graph* (BatchNorm, Dropout); :func:`qcascade.models.folding.fold_batchnorm` gives the
*export graph* that is converted with hls4ml.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tensorflow as tf

from qcascade.errors import ConfigError
from qcascade.models.complex import build_complex
from qcascade.models.simple import build_simple_a, build_simple_b, build_simple_c
from qcascade.quant import QuantPolicy, profile_ranges, relu_int_bits_from_profile

# Keras 2's default Dropout RNG is a legacy stateful op inside tf.function: two fresh runs with
# one seed drew different masks after a few epochs (measured: stage-2 losses identical for 5
# epochs, then apart; identical for every epoch with dropout 0). tf.random.Generator keeps its
# state in a variable and repeats exactly. Process-global; must precede any layer construction.
tf.keras.backend.experimental.enable_tf_random_generator()

MODEL_REGISTRY: dict[str, Callable[..., Any]] = {
    "simple_A": build_simple_a,
    "simple_B": build_simple_b,
    "simple_C": build_simple_c,
    "complex": build_complex,
}

#: Models whose input is the single selected electrode, ``(batch, n_times, 1)``.
SINGLE_CHANNEL = frozenset({"simple_A", "simple_B", "simple_C"})

#: Quantization groups used by each model (for reports).
MODEL_GROUPS = {
    "simple_A": ("simple",),
    "simple_B": ("simple",),
    "simple_C": ("simple",),
    "complex": ("block1", "attention", "dwsep", "classifier"),
}


def build_model(name: str, policy: QuantPolicy | None = None, **kw):
    """Build a registered model.

    Args:
        name: key of :data:`MODEL_REGISTRY`.
        policy: quantization policy (default ``QuantPolicy()``).
        **kw: ``n_times``, ``n_chans``, ``int_bits`` and builder-specific options.

    Raises:
        ConfigError: unknown model name, or a multi-channel ``n_chans`` for a simple model.
    """
    if name not in MODEL_REGISTRY:
        raise ConfigError(f"unknown model {name!r}; expected one of {sorted(MODEL_REGISTRY)}")
    if name in SINGLE_CHANNEL and kw.get("n_chans", 1) != 1:
        raise ConfigError(f"model {name!r} takes one electrode (n_chans=1), got {kw['n_chans']}")
    return without_autograph(MODEL_REGISTRY[name])(policy or QuantPolicy(), **kw)


def without_autograph(fn):
    """``fn`` with AutoGraph off for the layer calls Keras makes while it builds a functional model.

    The training step already calls the layers unconverted (``tf.function(autograph=False)``), so
    the model is the same; converting the QKeras quantizers' calls only costs time
    (docs/evaluation.md, "Time").
    """
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(fn)


def build_calibrated_model(name: str, policy: QuantPolicy, X_calib: np.ndarray, seed: int = 0, **kw):
    """Build, profile activation ranges on calibration windows, rebuild with measured int bits.

    The freshly initialised network, run with BatchNorm on batch statistics (what training converges
    to), is a proxy for the trained one; ``policy.headroom`` covers growth during training, and
    saturating quantizers keep anything beyond consistent between Keras and hls4ml.

    Args:
        name: registry key.
        policy: quantization policy.
        X_calib: ``(n, n_times, n_chans)`` calibration windows (a few hundred suffice).
        seed: seeds python/numpy/TF (``tf.keras.utils.set_random_seed``) before the profiling
            network is initialised. Its random weights decide the measured integer bits, so
            without a fixed seed they depended on whatever ran before in the process (a fresh
            run then trained a differently quantized complex model than the run before it).
        **kw: forwarded to the builder (not ``int_bits``).

    Returns:
        ``(model, int_bits)`` where ``int_bits`` is ``{layer_name: integer bits}``.
    """
    ib = calibrate_int_bits(name, policy, X_calib, seed, **kw)
    return build_model(name, policy, int_bits=ib, **kw), ib


def calibrate_int_bits(name: str, policy: QuantPolicy, X_calib: np.ndarray, seed: int = 0, **kw) -> dict:
    """The ``int_bits`` of :func:`build_calibrated_model` without building the final model
    (callers that build it later through a factory save one model construction)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(int(seed))
    probe = build_model(name, policy, **kw)
    return relu_int_bits_from_profile(profile_ranges(probe, X_calib, training=True), policy, probe)


def rebuild_with_int_bits(model, name: str, policy: QuantPolicy, int_bits: dict, **kw):
    """Same architecture and weights, new activation integer bits (e.g. re-profiled after a
    warm-up: ``relu_int_bits_from_profile(profile_ranges(model, X), policy, model)``).

    Changing integer bits changes the function (less/more saturation): fine-tune afterwards.
    """
    new = build_model(name, policy, int_bits=int_bits, **kw)
    for layer in new.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return new


def load_model(path: str):
    """Load a model saved with ``model.save(path)`` (``.h5``), QKeras objects included."""
    from qkeras.utils import load_qmodel

    import qcascade.models.electrode_mask  # noqa: F401  registers the complex model's kernel constraint

    return without_autograph(load_qmodel)(str(path), compile=False)


__all__ = ["MODEL_REGISTRY", "MODEL_GROUPS", "SINGLE_CHANNEL", "build_model", "build_calibrated_model", "calibrate_int_bits",
           "rebuild_with_int_bits", "load_model", "without_autograph"]
