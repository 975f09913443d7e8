"""Quantization policy, declared once, mapped to both QKeras quantizers and hls4ml ``ap_fixed`` types.

One bit width per *layer group* (``block1``, ``attention``, ``dwsep``, ``classifier``, ``simple``)
determines both sides of the conversion:

* QKeras ``quantized_bits(b, i, alpha=1)`` has ``i`` integer bits *excluding* the sign, i.e. the
  grid ``k * 2**-(b-1-i)`` on ``[-2**i, 2**i)``;
* hls4ml/Vitis ``ap_fixed<b, i+1, AP_RND_CONV, AP_SAT>`` is the same grid (``i+1`` includes the sign),
  with convergent rounding (= ``tf.round``, half to even) and saturation (never wrap-around).

Integer bits come from measured ranges (:func:`profile_ranges` on calibration windows, then
:func:`int_bits_for_range`), not guesses. The defaults below are only used before a model has been
profiled. This module imports TensorFlow lazily: the dataclass is embedded in the YAML run config.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from qcascade.errors import ConfigError
from qcascade.strict_yaml import check_fields

GROUPS = ("block1", "attention", "dwsep", "classifier", "simple")


@dataclass(frozen=True)
class QuantPolicy:
    """Bit widths per layer group (plain fields: serialised as the ``quant:`` YAML section).

    Attributes:
        block1_bits: first conv of the complex model (sees all 128 electrodes).
        attention_bits: CBAM channel + temporal attention (MLP, convs, sigmoid, scaled maps).
        dwsep_bits: depthwise-separable conv blocks 2/3/4 of the complex model (weights + ReLUs).
        classifier_bits: final Dense layers.
        simple_bits: every layer of the single-channel models A/B/C (8 measured to be enough? see
            the report in ``qcascade.models.summary``; 16 is the safe default).
        bias_bits, bias_int_bits: biases of every layer during training (wide: a bias costs one
            adder, not a multiplier); folded export biases get measured integer bits.
        input_bits, input_int_bits: the input sample type ``ap_fixed<input_bits, input_int_bits+1>``
            (inputs are z-scored iEEG; 5 integer bits = +-32 sigma, saturating beyond).
        logit_bits, logit_int_bits: the output (logit) type, fixed so that cascade thresholds on
            ``|z1 - z0|`` are stable across retrainings: ``ap_fixed<16, 6>`` = +-32, LSB 2**-10.
        weight_int_bits: integer bits of trainable weights during training (|w| < 2**i); folded
            export weights get measured integer bits instead (see ``models.folding``).
        relu_int_bits: default integer bits of ReLU outputs before profiling.
        headroom: factor applied to measured max-abs before choosing integer bits.
        wide_bits: width of internal linear results (conv/dense sums, pooled values, products)
            in the generated hls4ml config; their integer bits are measured.
    """

    block1_bits: int = 16
    attention_bits: int = 16
    dwsep_bits: int = 8
    classifier_bits: int = 16
    simple_bits: int = 16
    bias_bits: int = 16
    bias_int_bits: int = 5
    input_bits: int = 16
    input_int_bits: int = 5
    logit_bits: int = 16
    logit_int_bits: int = 5
    weight_int_bits: int = 0
    relu_int_bits: int = 4
    headroom: float = 1.5
    wide_bits: int = 32

    def __post_init__(self) -> None:
        check_fields(self, "quant")  # types, as for a YAML file
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "headroom":
                if not (math.isfinite(v) and v >= 1.0):
                    raise ConfigError(f"quant.headroom must be a number >= 1, got {v!r}")
            elif v < 0:
                raise ConfigError(f"quant.{f.name} must be a non-negative int, got {v!r}")
        for g in GROUPS:
            if not 2 <= self.bits(g) <= 32:
                raise ConfigError(f"quant.{g}_bits must be in 2..32, got {self.bits(g)}")
            # Every group's activation quantizers start at relu_int_bits integer bits (the
            # profiled ranges usually need as many) plus a sign and at least one fraction bit;
            # a narrower group fails only after training, when the models are folded.
            need = max(self.relu_int_bits, self.weight_int_bits) + 2
            if self.bits(g) < need:
                raise ConfigError(f"quant.{g}_bits: {self.bits(g)} bits cannot hold the "
                                  f"{max(self.relu_int_bits, self.weight_int_bits)} integer bits "
                                  "(quant.relu_int_bits / quant.weight_int_bits) + sign + 1 fraction bit its "
                                  f"quantizers need; use >= {need}")
        for width, integer in (("bias_bits", "bias_int_bits"), ("input_bits", "input_int_bits"),
                               ("logit_bits", "logit_int_bits")):
            if getattr(self, integer) + 2 > getattr(self, width):
                raise ConfigError(f"quant.{width}: {getattr(self, width)} bits cannot hold quant.{integer} = "
                                  f"{getattr(self, integer)} integer bits + sign + 1 fraction bit")
        if not 8 <= self.wide_bits <= 64:
            raise ConfigError(f"quant.wide_bits must be in 8..64, got {self.wide_bits}")

    def bits(self, group: str) -> int:
        """Bit width of a layer group (one of :data:`GROUPS`)."""
        if group not in GROUPS:
            raise ConfigError(f"unknown quantization group {group!r}; expected one of {GROUPS}")
        return int(getattr(self, f"{group}_bits"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "QuantPolicy":
        """Build from a YAML mapping; unknown keys and wrong types are a :class:`ConfigError`."""
        from qcascade.strict_yaml import from_dict

        return from_dict(cls, d, path="quant")


@dataclass(frozen=True)
class FixedType:
    """``ap_[u]fixed<integer+frac, integer, AP_RND_CONV, AP_SAT>`` (``integer`` includes the sign)."""

    signed: bool
    integer: int
    frac: int

    def __str__(self) -> str:
        return f"{'fixed' if self.signed else 'ufixed'}<{self.integer + self.frac},{self.integer},RND_CONV,SAT>"


def quantizer_type(q) -> FixedType | None:
    """hls4ml type that a QKeras quantizer produces (None for no quantizer)."""
    if q is None:
        return None
    name = getattr(q, "__name__", None) or q.__class__.__name__
    if name == "quantized_bits":
        i, b = int(q.integer), int(q.bits)
        return FixedType(True, i + 1, b - 1 - i) if q.keep_negative else FixedType(False, i, b - i)
    if name == "quantized_relu":
        return FixedType(False, int(q.integer), int(q.bits) - int(q.integer))
    if name == "quantized_sigmoid":
        return FixedType(False, 0, int(q.bits))
    if name == "binary":
        return FixedType(True, 2, 0)
    raise ConfigError(f"unsupported quantizer {name!r}")


def int_bits_for_range(max_abs: float, headroom: float = 1.0, max_int: int = 24) -> int:
    """Smallest ``i >= 0`` with ``2**i > max_abs * headroom`` (integer bits excluding sign).

    ``quantized_bits(b, i)`` saturates at ``2**i - lsb``, so the range must be strictly inside.

    Args:
        max_abs: measured maximum absolute value (>= 0).
        headroom: multiplicative margin (1.5 keeps ~50 % headroom for unseen windows).
        max_int: upper clamp.
    """
    v = float(max_abs) * float(headroom)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"max_abs must be finite and >= 0, got {max_abs}")
    if v < 1.0:
        return 0
    return int(min(max_int, math.floor(math.log2(v)) + 1))


def ap_fixed_str(width: int, int_bits_excl_sign: int, signed: bool = True, rnd: str = "RND_CONV",
                 sat: str = "SAT") -> str:
    """hls4ml precision string for ``width`` bits with ``i`` integer bits (sign excluded).

    Example: ``ap_fixed_str(16, 5) == 'fixed<16,6,RND_CONV,SAT>'``.
    """
    integer = int_bits_excl_sign + 1 if signed else int_bits_excl_sign
    kind = "fixed" if signed else "ufixed"
    return f"{kind}<{int(width)},{int(integer)},{rnd},{sat}>"


def ap_fixed_for(policy: QuantPolicy, group: str, int_bits: int, signed: bool = True) -> str:
    """hls4ml type of a value in ``group`` with ``int_bits`` (excluding sign): ``ap_fixed<b, i+1>``."""
    return ap_fixed_str(policy.bits(group), int_bits, signed=signed)


def qkeras_quantizer(policy: QuantPolicy, group: str, int_bits: int):
    """QKeras ``quantized_bits(b, int_bits, alpha=1)`` for ``group`` (scale fixed to 1 so the
    hls4ml type is exactly ``ap_fixed<b, int_bits+1>``)."""
    return quantized_bits_(policy.bits(group), int_bits)


def quantized_bits_(bits: int, int_bits: int):
    """``quantized_bits(bits, int_bits, alpha=1)`` (keep_negative), imported lazily."""
    from qkeras import quantized_bits

    if int_bits > bits - 1:
        raise ConfigError(f"{int_bits} integer bits do not fit in {bits} bits")
    return quantized_bits(bits, int_bits, alpha=1)


def relu_quantizer(policy: QuantPolicy, group: str, int_bits: int | None = None):
    """QKeras ``quantized_relu(b, i)`` = hls4ml ``ap_ufixed<b, i, RND_CONV, SAT>``."""
    from qkeras import quantized_relu

    i = policy.relu_int_bits if int_bits is None else int_bits
    return quantized_relu(policy.bits(group), i)


def sigmoid_quantizer(policy: QuantPolicy, group: str = "attention"):
    """Hard sigmoid ``clip(0.5 x + 0.5, 0, 1)`` on ``b`` bits (= hls4ml ``ap_ufixed<b, 0>``)."""
    from qkeras import quantized_sigmoid

    return quantized_sigmoid(policy.bits(group))


def input_quantizer(policy: QuantPolicy):
    """Quantizer of the model input (``ap_fixed<input_bits, input_int_bits+1>``)."""
    return quantized_bits_(policy.input_bits, policy.input_int_bits)


def logit_quantizer(policy: QuantPolicy):
    """Quantizer of the logits (``ap_fixed<logit_bits, logit_int_bits+1>``)."""
    return quantized_bits_(policy.logit_bits, policy.logit_int_bits)


def logit_lsb(policy: QuantPolicy) -> float:
    """Resolution of the logit type: ``2**-(logit_bits - 1 - logit_int_bits)``."""
    return 2.0 ** -(policy.logit_bits - 1 - policy.logit_int_bits)


def profile_ranges(model, X: np.ndarray, batch_size: int = 64,
                   training: bool = False) -> dict[str, dict[str, float]]:
    """Per-layer measured ranges on calibration windows.

    Args:
        model: a functional ``tf.keras.Model``.
        X: calibration windows, shape ``(n, n_times, n_chans)``.
        batch_size: inference batch size.
        training: run BatchNorm on batch statistics (use this to profile an *untrained* model:
            its BN moving statistics are still the identity, batch statistics are what training
            will converge to).

    Returns:
        ``{layer_name: {"out_max_abs": float, "weight_max_abs": float, "bias_max_abs": float}}``;
        ``out_max_abs`` is the max |output| over all windows; ``weight_max_abs`` is over the
        kernels (arrays with ndim >= 2; separable convs: both kernels) and ``bias_max_abs`` over
        1-D weight arrays (biases; for BatchNorm its four vectors); 0 for weightless layers.
    """
    import tensorflow as tf

    layers = [l for l in model.layers]
    outs = [l.output for l in layers]
    probe = tf.keras.Model(model.inputs, outs)
    maxes = np.zeros(len(layers))
    for s in range(0, len(X), batch_size):
        res = probe(np.asarray(X[s:s + batch_size], np.float32), training=training)
        res = res if isinstance(res, (list, tuple)) else [res]
        for k, r in enumerate(res):
            maxes[k] = max(maxes[k], float(np.max(np.abs(r.numpy()))))
    prof: dict[str, dict[str, float]] = {}
    for k, layer in enumerate(layers):
        w = layer.get_weights()
        kern = [a for a in w if a.ndim >= 2] if w else []
        bias = [a for a in w if a.ndim == 1] if w else []
        prof[layer.name] = {
            "out_max_abs": float(maxes[k]),
            "weight_max_abs": float(max((np.max(np.abs(a)) for a in kern), default=0.0)),
            "bias_max_abs": float(max((np.max(np.abs(a)) for a in bias), default=0.0)),
        }
    return prof


def relu_int_bits_from_profile(profile: dict[str, dict[str, float]], policy: QuantPolicy,
                               model=None) -> dict[str, int]:
    """Integer bits for every ReLU/``quantized_bits`` activation layer of a profiled model.

    The activation layer's *input* range is what the quantizer must hold; since ReLU is monotone
    and ``|quantized_bits(x)| <= |x|`` up to saturation, the measured output max-abs is a lower bound
    and we take the producer's output range when ``model`` is given.

    Returns:
        ``{layer_name: int_bits}`` to pass as ``int_bits=`` to the model builders.
    """
    res: dict[str, int] = {}
    producers: dict[str, str] = {}
    if model is not None:
        for layer in model.layers:
            inb = layer.inbound_nodes[0].inbound_layers if layer.inbound_nodes else []
            inb = inb if isinstance(inb, list) else [inb]
            if len(inb) == 1:
                producers[layer.name] = inb[0].name
    for name, p in profile.items():
        if name.endswith("_relu") or name.endswith("_q"):
            src = producers.get(name)
            m = profile[src]["out_max_abs"] if src in profile else p["out_max_abs"]
            res[name] = int_bits_for_range(m, policy.headroom)
    return res
