"""Single-channel detectors A/B/C: input ``(batch, 512, 1)`` -> 2 logits ``(batch, 2)``.

Every graph here is exported to hls4ml as is (after :func:`qcascade.models.folding.fold_batchnorm`):
explicit, uniquely named layers only (no Lambda, no custom layers, no shared layers). Naming
conventions used by the quantization tooling: ``*_relu`` = ``quantized_relu`` activation,
``*_q`` = ``quantized_bits`` activation (integer bits overridable from profiling), ``logits`` =
the final ``quantized_bits`` on the logits (type fixed by the policy).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from qcascade import quant
from qcascade.quant import QuantPolicy

BN_MOMENTUM = 0.9  # 0.99 leaves moving statistics unmoved in short trainings (facts note)
FIR_BANDS = (("delta", 0.5, 4.0), ("theta", 4.0, 8.0), ("alpha", 8.0, 13.0), ("beta", 13.0, 30.0),
             ("gamma", 30.0, 100.0))
A_FIRST_DECIMATION = 8  # candidate A's first block: conv stride x pooling
FIR_TAPS = 129  # 1-s windows cannot resolve 0.5 Hz anyway; 129 taps ~ 6 Hz transition at fs=512


class _Ctx:
    """Per-build helper: the policy, a group, and profiled integer-bit overrides."""

    def __init__(self, policy: QuantPolicy, group: str, int_bits: Mapping[str, int] | None):
        self.policy, self.group, self.int_bits = policy, group, dict(int_bits or {})

    def ib(self, name: str, default: int) -> int:
        return int(self.int_bits.get(name, default))

    def wq(self, group: str | None = None):
        return quant.qkeras_quantizer(self.policy, group or self.group, self.policy.weight_int_bits)

    def bq(self):
        return quant.quantized_bits_(self.policy.bias_bits, self.policy.bias_int_bits)

    def relu(self, name: str, group: str | None = None, default: int | None = None):
        from qkeras import QActivation

        g = group or self.group
        i = self.ib(name, self.policy.relu_int_bits if default is None else default)
        # Narrow groups (8 bit) cannot hold every measured range: saturate, keep 2 fraction bits.
        i = min(i, self.policy.bits(g) - 2)
        return QActivation(quant.relu_quantizer(self.policy, g, i), name=name)

    def qbits(self, name: str, default_int: int, group: str | None = None):
        from qkeras import QActivation

        g = group or self.group
        i = min(self.ib(name, default_int), self.policy.bits(g) - 3)
        return QActivation(quant.qkeras_quantizer(self.policy, g, i), name=name)


def model_input(policy: QuantPolicy, n_times: int, n_chans: int):
    """``Input`` + the input quantizer (``input_quant``) so Keras sees the hls4ml input type."""
    import tensorflow as tf
    from qkeras import QActivation

    inp = tf.keras.Input((n_times, n_chans), name="window")  # "input" is reserved by hls4ml
    return inp, QActivation(quant.input_quantizer(policy), name="input_quant")(inp)


def conv_bn_relu(x, ctx: _Ctx, name: str, filters: int, kernel: int, strides: int = 1,
                 group: str | None = None):
    """QConv1D (no bias: BN follows) -> BatchNorm -> quantized ReLU."""
    import tensorflow as tf
    from qkeras import QConv1D

    x = QConv1D(filters, kernel, strides=strides, padding="same", use_bias=False,
                kernel_quantizer=ctx.wq(group), name=f"{name}_conv")(x)
    x = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return ctx.relu(f"{name}_relu", group)(x)


def classifier_head(x, ctx: _Ctx, group: str | None = None, name: str = "classifier"):
    """QDense(2) -> ``logits`` quantizer (``ap_fixed<logit_bits, logit_int_bits+1>``)."""
    from qkeras import QActivation, QDense

    x = QDense(2, kernel_quantizer=ctx.wq(group), bias_quantizer=ctx.bq(), name=name)(x)
    return QActivation(quant.logit_quantizer(ctx.policy), name="logits")(x)


def frozen_conv(x, ctx: _Ctx, name: str, kernel: np.ndarray, int_bits: int, strides: int = 1,
                bits: int | None = None):
    """Non-trainable QConv1D with a fixed kernel ``(k, c_in, c_out)``, no bias, 'valid' padding."""
    from qkeras import QConv1D

    k = np.asarray(kernel, np.float64)
    bits = bits or ctx.policy.bits(ctx.group)
    layer = QConv1D(k.shape[2], k.shape[0], strides=strides, padding="valid", use_bias=False,
                    kernel_initializer=_constant(k), trainable=False,
                    kernel_quantizer=quant.quantized_bits_(bits, int_bits), name=name)
    return layer(x)


def _constant(a: np.ndarray):
    import tensorflow as tf

    # Constant(np.ndarray) breaks .h5 reload ("Unknown object: '__numpy__'"): pass a list.
    return tf.keras.initializers.Constant(np.asarray(a).tolist())


def build_simple_a(policy: QuantPolicy, n_times: int = 512, n_chans: int = 1, *,
                   int_bits: Mapping[str, int] | None = None, dropout: float = 0.2, filters: int = 8,
                   first_stride: int = 2):
    """Small CNN: 3 x (conv-BN-ReLU) with pooling, GAP, dropout, Dense(2).

    Shapes (n_times=512, filters=F, first_stride=S): 512x1 -> conv k15 sS -> (512/S)xF ->
    pool(8/S) -> 64xF -> conv k7 s2 -> 32x2F -> pool4 -> 8x2F -> conv k3 -> 8x4F -> GAP -> 4F ->
    Dense -> 2. The first block decimates by 8 whatever S is; S only moves that decimation from
    the pooling into the convolution (no ``a1_pool`` layer when S = 8). MACs grow as F^2 (S=2:
    F=16: 225 k; F=8: 72 k; S=8, F=8: 49 k).
    """
    import tensorflow as tf

    if first_stride < 1 or A_FIRST_DECIMATION % first_stride:
        raise ValueError(f"first_stride must divide {A_FIRST_DECIMATION}, got {first_stride}")
    ctx = _Ctx(policy, "simple", int_bits)
    inp, x = model_input(policy, n_times, n_chans)
    x = conv_bn_relu(x, ctx, "a1", filters, 15, strides=first_stride)
    if first_stride < A_FIRST_DECIMATION:
        x = tf.keras.layers.AveragePooling1D(A_FIRST_DECIMATION // first_stride, name="a1_pool")(x)
    x = conv_bn_relu(x, ctx, "a2", 2 * filters, 7, strides=2)
    x = tf.keras.layers.AveragePooling1D(4, name="a2_pool")(x)
    x = conv_bn_relu(x, ctx, "a3", 4 * filters, 3)
    x = tf.keras.layers.GlobalAveragePooling1D(name="gap")(x)
    x = tf.keras.layers.Dropout(dropout, name="dropout")(x)
    return tf.keras.Model(inp, classifier_head(x, ctx), name="simple_A")


def fir_bank(fs: float = 512.0, numtaps: int = FIR_TAPS) -> np.ndarray:
    """Band-pass FIR bank (``scipy.signal.firwin``, Hamming) as a conv kernel ``(numtaps, 1, 5)``."""
    from scipy.signal import firwin

    taps = [firwin(numtaps, [lo, hi], pass_zero=False, fs=fs) for _, lo, hi in FIR_BANDS]
    return np.stack(taps, axis=-1)[:, None, :]


def build_simple_b(policy: QuantPolicy, n_times: int = 512, n_chans: int = 1, *,
                   int_bits: Mapping[str, int] | None = None):
    """Band energies without FFT: FIR bank -> square -> mean -> BN -> MLP 5-16-2.

    No log compression (no log in hls4ml): a BatchNorm on the 5 band powers normalises their scale
    and is folded into ``mlp1`` at export. The FIR conv is strided by 2 (the mean of squares needs no
    full-rate output): ``(512-129)//2 + 1 = 192`` samples x 5 bands.
    """
    import tensorflow as tf
    from qkeras import QDense

    ctx = _Ctx(policy, "simple", int_bits)
    inp, x = model_input(policy, n_times, n_chans)
    x = frozen_conv(x, ctx, "fir_bank", fir_bank(), int_bits=0, strides=2)
    x = ctx.qbits("fir_q", 3)(x)
    x = tf.keras.layers.Multiply(name="square")([x, x])
    x = ctx.qbits("square_q", 6)(x)
    x = tf.keras.layers.GlobalAveragePooling1D(name="band_power")(x)
    x = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="band_bn")(x)
    x = QDense(16, kernel_quantizer=ctx.wq(), bias_quantizer=ctx.bq(), name="mlp1")(x)
    x = ctx.relu("mlp1_relu")(x)
    return tf.keras.Model(inp, classifier_head(x, ctx), name="simple_B")


def build_simple_c(policy: QuantPolicy, n_times: int = 512, n_chans: int = 1, *,
                   int_bits: Mapping[str, int] | None = None):
    """Three hand-made features -> BN -> Dense(3->2).

    * variance = mean(x^2) - mean(x)^2 (GAP, Multiply, Subtract);
    * peak = max_t |x| with |x| = ReLU(x) + ReLU(-x) (negation = frozen 1x1 conv with weight -1);
    * zero crossings: sign agreement s(t) s(t+1) averaged over t (signs from ``binary``
      activations of two frozen k=2 convs selecting x[t] and x[t+1]); the crossing rate is
      ``(1 - mean) / 2``, an affine map that the Dense absorbs.
    """
    import tensorflow as tf
    from qkeras import QActivation

    ctx = _Ctx(policy, "simple", int_bits)
    L = tf.keras.layers
    inp, x = model_input(policy, n_times, n_chans)
    sq = ctx.qbits("sq_q", 2 * policy.input_int_bits)(L.Multiply(name="sq")([x, x]))
    mean_sq = L.GlobalAveragePooling1D(name="mean_square")(sq)
    mean = L.GlobalAveragePooling1D(name="mean")(x)
    var = L.Subtract(name="variance")([mean_sq, L.Multiply(name="mean_sq")([mean, mean])])
    pos = ctx.relu("pos_relu", default=policy.input_int_bits)(x)
    neg = frozen_conv(x, ctx, "negate", -np.ones((1, 1, 1)), int_bits=1)
    neg = ctx.relu("neg_relu", default=policy.input_int_bits)(neg)
    peak = L.GlobalMaxPooling1D(name="peak")(L.Add(name="abs")([pos, neg]))
    x0 = frozen_conv(x, ctx, "zc_now", np.array([1.0, 0.0]).reshape(2, 1, 1), int_bits=1)
    x1 = frozen_conv(x, ctx, "zc_next", np.array([0.0, 1.0]).reshape(2, 1, 1), int_bits=1)
    s0 = QActivation("binary", name="zc_sign_now")(x0)
    s1 = QActivation("binary", name="zc_sign_next")(x1)
    zc = L.GlobalAveragePooling1D(name="zc_agree")(L.Multiply(name="zc_prod")([s0, s1]))
    # hls4ml merges exactly two tensors per layer.
    feats = L.Concatenate(name="features")([L.Concatenate(name="features_vp")([var, peak]), zc])
    feats = L.BatchNormalization(momentum=BN_MOMENTUM, name="feat_bn")(feats)
    return tf.keras.Model(inp, classifier_head(feats, ctx), name="simple_C")


def fit_linear_head(model, X: np.ndarray, y: np.ndarray, feature_layer: str = "features") -> bool:
    """Start a linear detector's ``classifier`` at the class-balanced logistic regression of its
    standardised features (what its ``feat_bn`` gives at the start of training).

    Candidate C is a linear model on three statistics. From random weights, a patient with few
    training windows gets too few steps for the model to turn round when its initial direction
    points the wrong way (validation AUC 0.02 on a patient whose statistics separate the classes;
    docs/generalisation.md, round 53).

    Args:
        model: built, untrained model with a ``feature_layer`` ``(b, k)`` output, then
            ``BatchNormalization`` and ``classifier`` ``Dense(k -> 2)``.
        X: ``(n, n_times, 1)`` training windows; y: ``(n,)`` labels.

    Returns:
        False (nothing changed) when ``y`` holds one class only.
    """
    import tensorflow as tf
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        return False
    features = tf.keras.Model(model.input, model.get_layer(feature_layer).output)
    # eager calls on chunks: Model.predict's tracing costs ~2 s here, the features ~0.2 s
    feats = np.concatenate([features(X[i:i + 1024], training=False).numpy() for i in range(0, len(X), 1024)])
    feats = feats.astype(np.float64)
    std = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    reg = LogisticRegression(class_weight="balanced", max_iter=2000).fit(std, y)
    w, b = reg.coef_[0], float(reg.intercept_[0])
    # Trainable weights are quantized to |w| < 1 (quant.weight_int_bits 0): shrink w and b together,
    # which keeps the decision boundary, rather than let the quantizer clip some weights only.
    shrink = min(1.0, 0.9 / max(float(np.abs(w).max()) / 2, 1e-12))
    w, b = w * shrink, b * shrink
    # z1 - z0 = w . std + b, split evenly between the two logits
    model.get_layer("classifier").set_weights([np.stack([-w / 2, w / 2], axis=1).astype(np.float32),
                                               np.array([-b / 2, b / 2], np.float32)])
    return True
