"""Complex multi-electrode CNN with CBAM attention: ``(batch, 512, 128)`` -> 2 logits.

Built only from layers that hls4ml 1.3.0 converts *correctly in io_stream* (see the shared facts
note): no broadcasting Multiply, no shared layers, no Lambda.

Shapes (n_times=512, n_chans=128, F=32 block-1 filters, S=8 shared filters)::

    input 512x128 -> input_quant
    block1 "shared" (model.complex_block1: shared): one temporal filter bank used on every electrode, then
            pooled over electrodes, so no weight belongs to an electrode:
            ZeroPadding 4+4 -> 520x128 -> Permute -> 128x520
            -> Reshape (128*520)x1 (electrode after electrode, each between zeros)
            -> QConv1D k16 s8 (1->S) -> BN -> ReLU16                (128*65)xS
            -> Reshape 128x(65*S) (one row per electrode)
            -> GlobalMax + GlobalAverage over electrodes -> Reshape 65xS each -> Concat 65x2S
            -> QConv1D k3 (2S->F) -> BN -> ReLU16                   65xF   [block1, 16 bit]
            (the rest runs on 65 steps instead of 128: 65 -> 32 -> 16 -> 8)
    block1 "hybrid": the shared block, and beside it on the padded input a mixed branch
            QConv1D k5 s4 (128->F) -> BN -> ReLU16 -> MaxPool2       65xF
            joined before the mixing conv: Concat 65x(2S+F) -> QConv1D k3 (2S+F->F) ...
    block1 ("mixed", the default): QConv1D k5 s4 (128->F) -> BN -> ReLU16  128xF
    CBAM channel: GAP, GMP -> Reshape(1,F) each -> Concat -> 2xF
                  -> 1x1 QConv1D F->F/4 -> ReLU -> 1x1 QConv1D F/4->F -> GAP (mean over avg|max)
                  -> hard sigmoid -> Reshape(1,F) -> UpSampling1D(128) -> Multiply  128xF
    CBAM temporal: Permute -> 128x... GAP/GMP over channels -> Reshape(128,1) each -> Concat 128x2
                  -> QConv1D k7 (2->1) -> hard sigmoid -> frozen all-ones 1x1 conv (1->F)
                  -> Multiply -> cbam_q                                     [attention, 16 bit]
    block2..4: QSeparableConv1D (k5/k5/k3) -> BN -> ReLU8 -> MaxPool2       [dwsep, 8 bit]
               128xF -> 64x48 -> 32x64 -> 16x64
    GAP -> QDense(2) -> logits                                              [classifier, 16 bit]

Why "shared" (docs/generalisation.md): the mixed first conv gives every electrode its own
weights (128x5xF), so with 2-4 training seizures it learns where *these* seizures were; a seizure
in another zone (multifocal patients) or on other contacts is new to it. The shared bank learns
what ictal activity looks like on any electrode; max over electrodes keeps the strongest
electrode's response, the mean the widespread activity (artefacts, spread). The output does not
change when the electrodes are permuted. It is built from 1-D layers only (the electrodes laid
out one after another, each between zero pads so the filter never reaches a neighbour), which
every part of the toolchain (folding, MAC counting, hls4ml types and sizing) already handles.

The CBAM MLP is "shared" between the avg- and max-pooled descriptors by stacking them as two
time steps of a 1x1-conv MLP (one layer, applied once). Averaging the two MLP outputs instead of
summing them only halves the sigmoid's input scale, which training absorbs.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from qcascade import quant
from qcascade.errors import ConfigError
from qcascade.models.simple import BN_MOMENTUM, _Ctx, classifier_head, frozen_conv, model_input
from qcascade.quant import QuantPolicy

BLOCK1_FILTERS = 32
BLOCK1_VARIANTS = ("shared", "mixed", "hybrid")
SHARED_FILTERS = 8
SHARED_KERNEL = 16
# Stride 8 (64 feature samples per second): the shared bank's outputs are electrodes x steps x S,
# and their elementwise work (BatchNorm, ReLU, pooling) dominates training time; at stride 4 a
# training step cost 5.7x the mixed model's (measured, docs/generalisation.md).
SHARED_STRIDE = 8
# Zero samples around each electrode's window, so that the filter laid over the electrodes one
# after another never reaches a neighbour's samples: with "same" padding, kernel 16 and stride 8
# an output reaches 4 samples back and 4 ahead, and 2P must keep the segment a multiple of the stride.
SHARED_PAD = 4
MIX_KERNEL = 3
DWSEP = (("block2", 48, 5), ("block3", 64, 5), ("block4", 64, 3))
CBAM_REDUCTION = 4
CBAM_KERNEL = 7


def _cbam(x, ctx: _Ctx, n_steps: int, n_filt: int):
    """CBAM on a ``(n_steps, n_filt)`` map; returns the re-weighted map, same shape."""
    import tensorflow as tf
    from qkeras import QActivation, QConv1D

    L, p = tf.keras.layers, ctx.policy
    g = "attention"
    # Channel attention.
    avg = L.Reshape((1, n_filt), name="cbam_ch_avg_r")(L.GlobalAveragePooling1D(name="cbam_ch_avg")(x))
    mx = L.Reshape((1, n_filt), name="cbam_ch_max_r")(L.GlobalMaxPooling1D(name="cbam_ch_max")(x))
    d = L.Concatenate(axis=1, name="cbam_ch_stack")([avg, mx])  # (2, F): [avg; max]
    d = QConv1D(max(1, n_filt // CBAM_REDUCTION), 1, kernel_quantizer=ctx.wq(g),
                bias_quantizer=ctx.bq(), name="cbam_ch_mlp1")(d)
    d = ctx.relu("cbam_ch_mlp1_relu", g)(d)
    d = QConv1D(n_filt, 1, kernel_quantizer=ctx.wq(g), bias_quantizer=ctx.bq(), name="cbam_ch_mlp2")(d)
    d = L.GlobalAveragePooling1D(name="cbam_ch_sum")(d)  # (F,) = (mlp(avg) + mlp(max)) / 2
    a = QActivation(quant.sigmoid_quantizer(p, g), name="cbam_ch_sigmoid")(d)
    a = L.UpSampling1D(n_steps, name="cbam_ch_bcast")(L.Reshape((1, n_filt), name="cbam_ch_r")(a))
    x = L.Multiply(name="cbam_ch_scale")([x, a])
    x = ctx.qbits("cbam_ch_q", p.relu_int_bits, g)(x)
    # Temporal attention: mean and max over channels, via Permute + global pooling over "time".
    t = L.Permute((2, 1), name="cbam_t_perm")(x)  # (F, T)
    tm = L.Reshape((n_steps, 1), name="cbam_t_avg_r")(L.GlobalAveragePooling1D(name="cbam_t_avg")(t))
    tx = L.Reshape((n_steps, 1), name="cbam_t_max_r")(L.GlobalMaxPooling1D(name="cbam_t_max")(t))
    s = L.Concatenate(axis=-1, name="cbam_t_stack")([tm, tx])  # (T, 2)
    s = QConv1D(1, CBAM_KERNEL, padding="same", kernel_quantizer=ctx.wq(g), bias_quantizer=ctx.bq(),
                name="cbam_t_conv")(s)
    s = QActivation(quant.sigmoid_quantizer(p, g), name="cbam_t_sigmoid")(s)
    # Broadcast (T,1) -> (T,F) by a frozen all-ones 1x1 conv (exact: weights 1.0, no bias).
    s = frozen_conv(s, ctx, "cbam_t_bcast", np.ones((1, 1, n_filt)), int_bits=1, bits=p.bits(g))
    x = L.Multiply(name="cbam_t_scale")([x, s])
    return ctx.qbits("cbam_q", p.relu_int_bits, g)(x)


def _shared_block1(x, ctx: _Ctx, n_times: int, n_chans: int, n_shared: int, n_filt: int,
                   hybrid: bool = False):
    """Electrode-agnostic first block: ``(T, C)`` -> ``((T + 2 * SHARED_PAD) / SHARED_STRIDE, n_filt)``.

    ``hybrid``: the mixing conv also reads a mixed (electrode-specific) branch on the same padded
    input, k5 s4 over all electrodes then max over pairs of steps, ``(n_steps, n_filt)``.

    Returns:
        ``(x, n_steps)``.
    """
    import tensorflow as tf
    from qkeras import QConv1D

    L = tf.keras.layers
    n_seg = n_times + 2 * SHARED_PAD  # one electrode's samples between its zero pads
    n_steps = n_seg // SHARED_STRIDE
    padded = L.ZeroPadding1D(SHARED_PAD, name="block1_pad")(x)  # (T + 2P, C)
    x = L.Permute((2, 1), name="block1_perm")(padded)  # (C, T + 2P)
    x = L.Reshape((n_chans * n_seg, 1), name="block1_flat")(x)
    x = QConv1D(n_shared, SHARED_KERNEL, strides=SHARED_STRIDE, padding="same", use_bias=False,
                kernel_quantizer=ctx.wq("block1"), name="block1_conv")(x)  # (C * n_steps, S)
    x = L.BatchNormalization(momentum=BN_MOMENTUM, name="block1_bn")(x)
    x = ctx.relu("block1_relu", "block1")(x)
    x = L.Reshape((n_chans, n_steps * n_shared), name="block1_elec")(x)  # one row per electrode
    mx = L.Reshape((n_steps, n_shared), name="block1_emax_r")(L.GlobalMaxPooling1D(name="block1_emax")(x))
    mean = L.Reshape((n_steps, n_shared), name="block1_emean_r")(L.GlobalAveragePooling1D(name="block1_emean")(x))
    x = L.Concatenate(axis=-1, name="block1_estack")([mx, mean])  # (n_steps, 2S)
    if hybrid:  # two binary concatenations: hls4ml's Concatenate takes two inputs
        # The conv's "same" padding spelled out as a layer: hls4ml 1.3.0 (io_stream) inserts its own
        # padding after the clone of ``padded`` and still feeds the conv the unpadded copy
        # (docs/generalisation.md, round 19; cf. hls4ml#309).
        m = L.ZeroPadding1D((0, 1), name="block1_mixed_pad")(padded)  # (T + 2P + 1, C)
        m = QConv1D(n_filt, 5, strides=SHARED_STRIDE // 2, padding="valid", use_bias=False,
                    kernel_quantizer=ctx.wq("block1"), name="block1_mixed_conv")(m)  # (2 n_steps, F)
        m = L.BatchNormalization(momentum=BN_MOMENTUM, name="block1_mixed_bn")(m)
        m = ctx.relu("block1_mixed_relu", "block1")(m)
        m = L.MaxPooling1D(2, name="block1_mixed_pool")(m)  # (n_steps, F)
        x = L.Concatenate(axis=-1, name="block1_hstack")([x, m])  # (n_steps, 2S + F)
    x = QConv1D(n_filt, MIX_KERNEL, padding="same", use_bias=False, kernel_quantizer=ctx.wq("block1"),
                name="block1_mix_conv")(x)
    x = L.BatchNormalization(momentum=BN_MOMENTUM, name="block1_mix_bn")(x)
    return ctx.relu("block1_mix_relu", "block1")(x), n_steps


def build_complex(policy: QuantPolicy, n_times: int = 512, n_chans: int = 128, *,
                  int_bits: Mapping[str, int] | None = None, dropout: float = 0.2,
                  block1_filters: int = BLOCK1_FILTERS, block1: str = "mixed",
                  shared_filters: int = SHARED_FILTERS, electrode_mask=None):
    """Build the complex model (see module docstring for the layer list and groups).

    Args:
        policy: quantization policy (groups block1/attention/dwsep/classifier).
        n_times: samples per window (divisible by 32).
        n_chans: electrodes.
        int_bits: per-layer integer-bit overrides from profiling (``*_relu`` / ``*_q`` names).
        dropout: before the classifier (training only; removed at export).
        block1_filters: F.
        block1: ``"mixed"`` (the first design: one conv mixing all electrodes), ``"shared"``
            (one temporal filter bank for every electrode, pooled over electrodes) or ``"hybrid"``
            (the shared bank and a mixed branch side by side, joined by the mixing conv).
        shared_filters: S, filters of the shared bank (``block1`` shared or hybrid).
        electrode_mask: ``(n_chans,)`` bool, the electrodes the model reads
            (``model.complex_electrodes``); the others' rows of the first conv's kernel are zero
            from the start and after every update (:class:`~qcascade.models.electrode_mask.ElectrodeMask`).
            ``block1: mixed`` only. None: every electrode.

    Raises:
        ConfigError: unknown ``block1``, ``shared_filters < 1``, or an ``electrode_mask`` of the
            wrong length, reading no electrode, or with a first block other than ``mixed``.
    """
    import tensorflow as tf
    from qkeras import QConv1D, QSeparableConv1D

    if block1 not in BLOCK1_VARIANTS:
        raise ConfigError(f"model.complex_block1: {block1!r} is not one of {BLOCK1_VARIANTS}")
    if shared_filters < 1:
        raise ConfigError(f"model.complex_shared_filters: must be >= 1, got {shared_filters}")
    if block1 != "mixed" and n_times < 64:
        raise ConfigError(f"data.n_times: the {block1} first block needs >= 64 samples, got {n_times} "
                          "(model.complex_block1: mixed takes 32)")
    if electrode_mask is not None:
        electrode_mask = np.asarray(electrode_mask, bool)
        if block1 != "mixed":
            raise ConfigError(f"model.complex_electrodes: needs model.complex_block1: mixed, got {block1!r} "
                              "(the shared bank has no electrode-specific weights to zero)")
        if electrode_mask.shape != (n_chans,) or not electrode_mask.any():
            raise ConfigError(f"model.complex_electrodes: the electrode mask must be {n_chans} booleans with "
                              f"at least one true, got shape {electrode_mask.shape} with {int(electrode_mask.sum())} true")
    L = tf.keras.layers
    ctx = _Ctx(policy, "block1", int_bits)
    inp, x = model_input(policy, n_times, n_chans)
    n_steps = n_times // 4
    if block1 in ("shared", "hybrid"):
        x, n_steps = _shared_block1(x, ctx, n_times, n_chans, shared_filters, block1_filters,
                                    hybrid=block1 == "hybrid")
    else:
        kq, constraint = ctx.wq("block1"), None
        if electrode_mask is not None:
            from qcascade.models.electrode_mask import ElectrodeMask, qkeras_clip

            constraint = ElectrodeMask(electrode_mask, qkeras_clip(kq))
        conv = QConv1D(block1_filters, 5, strides=4, padding="same", use_bias=False,
                       kernel_quantizer=kq, kernel_constraint=constraint, name="block1_conv")
        x = conv(x)
        if constraint is not None:  # the constraint acts after each update; the first forward pass needs it too
            conv.kernel.assign(constraint(conv.kernel))
        x = L.BatchNormalization(momentum=BN_MOMENTUM, name="block1_bn")(x)
        x = ctx.relu("block1_relu", "block1")(x)
    x = _cbam(x, ctx, n_steps, block1_filters)
    for name, filters, k in DWSEP:
        x = QSeparableConv1D(filters, k, padding="same", use_bias=False,
                             depthwise_quantizer=ctx.wq("dwsep"), pointwise_quantizer=ctx.wq("dwsep"),
                             name=f"{name}_dw")(x)
        x = L.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        x = ctx.relu(f"{name}_relu", "dwsep")(x)
        x = L.MaxPooling1D(2, name=f"{name}_pool")(x)
    x = L.GlobalAveragePooling1D(name="gap")(x)
    x = L.Dropout(dropout, name="dropout")(x)
    return tf.keras.Model(inp, classifier_head(x, ctx, "classifier"), name="complex")
