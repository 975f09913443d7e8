"""Cascade loss: simple CE + routing-weighted complex CE + routing penalty + selector sparsity.

``L = a1*L_simple + a2*L_complex + a3*L_routing + a4*L_sparsity`` with

* ``L_simple``: class-weighted cross-entropy of the simple model on every window.
* ``r = sigmoid(k * (tau - |p1 - p0|))``: the soft, differentiable gate, i.e. the probability
  that the window is routed to the complex model (``|p1 - p0| = |tanh((z1 - z0) / 2)|``);
  with gate rule ``confirm_ictal_hold`` (only confident interictal answers can be final,
  :mod:`qcascade.gate`) ``r = sigmoid(k * (tau + p1 - p0))``. The parts of the rules
  that read the previous window's decision have no per-window soft form:
  ``complex_weight_floor`` covers the windows they route.
* ``L_complex``: class-weighted cross-entropy of the complex model, each window weighted by
  ``stop_gradient(r)``, normalised by the batch size (NOT by ``sum(r)``), so a confident simple
  model (``r -> 0`` everywhere) makes the term vanish. ``r`` is a *data weight* here: letting
  the gradient flow into the gate would teach the simple model to stop routing exactly the
  windows the complex model finds hard, the opposite of what a cascade wants. The gate is
  shaped by ``L_simple`` (confidently wrong is expensive) and ``L_routing``.
* ``L_routing``: mean ``r`` = expected share of windows sent to the complex model.
* ``L_sparsity``: entropy of the selector weights divided by ``log(n_active_electrodes)``,
  so it lies in [0, 1] whatever the electrode count (0 for a one-hot selection).

Every term is returned as ``sum over the local batch / global_batch_size`` so that summing the
per-replica values (what ``MirroredStrategy`` does to gradients) gives the global mean.
"""

from __future__ import annotations

import math
from typing import Optional

import tensorflow as tf

from qcascade.config_train import TrainConfig
from qcascade.gate import DEFAULT_RULE, check_rule

__all__ = ["soft_routing", "selection_entropy", "weighted_ce", "cascade_loss_terms",
           "per_window_gate_terms", "frozen_gate_loss_terms"]

_EPS = 1e-12
_TRAIN = TrainConfig()  # library defaults are the defaults the pipeline runs (train: section)


def soft_routing(simple_logits: tf.Tensor, tau: float, sharpness: float,
                 rule: str = DEFAULT_RULE) -> tf.Tensor:
    """Probability of routing each window to the complex model.

    Args:
        simple_logits: ``(batch, 2)`` logits of the simple model.
        tau: confidence threshold in (0, 1); the hard gate routes when ``|p1 - p0| <= tau``
            (rule ``confirm_ictal_hold``: when ``p0 - p1 <= tau``).
        sharpness: slope ``k`` of the sigmoid; ``k -> inf`` recovers the hard gate.
        rule: the deployed gate rule (:data:`qcascade.gate.GATE_RULES`); its per-window part is
            softened (``confirm_changes`` routes like ``confidence`` window by window).

    Returns:
        ``(batch,)`` float32 in (0, 1).
    """
    z = tf.cast(simple_logits, tf.float32)
    # softmax over 2 classes: p1 - p0 = tanh((z1 - z0) / 2), numerically safe for large logits.
    p_diff = tf.tanh((z[:, 1] - z[:, 0]) / 2.0)
    confidence = -p_diff if check_rule(rule) == "confirm_ictal_hold" else tf.abs(p_diff)
    return tf.sigmoid(sharpness * (tau - confidence))


def selection_entropy(weights: tf.Tensor, n_active: Optional[int] = None) -> tf.Tensor:
    """Per-window entropy of the selector weights, optionally normalised to [0, 1].

    Args:
        weights: ``(batch, n_chans)`` non-negative, rows summing to 1 (masked electrodes 0).
        n_active: number of unmasked electrodes; if given, divide by ``log(max(n_active, 2))``.

    Returns:
        ``(batch,)`` float32 entropy (nats, or normalised); 0 for one-hot rows.
    """
    w = tf.cast(weights, tf.float32)
    # 0 * log(0) := 0; the clip keeps the gradient finite for exactly-zero weights.
    h = -tf.reduce_sum(w * tf.math.log(tf.clip_by_value(w, _EPS, 1.0)), axis=-1)
    if n_active is not None:
        h = h / math.log(max(int(n_active), 2))
    return h


def weighted_ce(y: tf.Tensor, logits: tf.Tensor, sample_weight: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Per-window sparse softmax cross-entropy times ``sample_weight``.

    Args:
        y: ``(batch,)`` int labels in {0, 1}.
        logits: ``(batch, 2)``.
        sample_weight: ``(batch,)`` or None.

    Returns:
        ``(batch,)`` float32.
    """
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(y, tf.int32), logits=tf.cast(logits, tf.float32))
    if sample_weight is not None:
        ce = ce * tf.cast(sample_weight, tf.float32)
    return ce


def cascade_loss_terms(
    y: tf.Tensor,
    simple_logits: tf.Tensor,
    complex_logits: Optional[tf.Tensor],
    sel_weights: Optional[tf.Tensor],
    sample_weight: Optional[tf.Tensor] = None,
    *,
    a_simple: float = _TRAIN.a_simple,
    a_complex: float = _TRAIN.a_complex,
    a_routing: float = _TRAIN.a_routing,
    a_sparsity: float = _TRAIN.a_sparsity,
    tau: float = _TRAIN.tau,
    sharpness: float = _TRAIN.gate_sharpness,
    n_active: Optional[int] = None,
    global_batch_size: Optional[int] = None,
    complex_weight_floor: float = _TRAIN.complex_weight_floor,
    rule: str = DEFAULT_RULE,
    simple_sample_weight: Optional[tf.Tensor] = None,
) -> dict[str, tf.Tensor]:
    """All cascade loss terms for one (local) batch.

    Args:
        y: ``(batch,)`` labels in {0, 1}.
        simple_logits: ``(batch, 2)`` simple-model logits.
        complex_logits: ``(batch, 2)`` complex-model logits, or None (stage 1: term is 0).
        sel_weights: ``(batch, n_chans)`` selector weights, or None (sparsity term is 0).
        sample_weight: ``(batch,)`` class weights, or None for 1.
        a_simple, a_complex, a_routing, a_sparsity: term weights.
        tau, sharpness, rule: soft-gate parameters (see :func:`soft_routing`).
        n_active: unmasked electrode count for the entropy normalisation.
        global_batch_size: divisor for the batch sums; defaults to this batch's size
            (pass the global size under a distribution strategy).
        complex_weight_floor: each window's complex CE is weighted by
            ``floor + (1 - floor) * r`` (see :func:`complex_weights`); 0 = routed windows only.
        simple_sample_weight: ``(batch,)`` weights of the simple model's CE alone
            (``train.simple_interictal_weight``); None: ``sample_weight``.

    Returns:
        Dict of scalar float32 tensors: ``simple``, ``complex``, ``routing``, ``sparsity``
        (unweighted terms) and ``total`` (weighted sum, the value to differentiate).
    """
    gbs = tf.cast(tf.shape(y)[0] if global_batch_size is None else global_batch_size, tf.float32)
    r = soft_routing(simple_logits, tau, sharpness, rule)
    w_simple = sample_weight if simple_sample_weight is None else simple_sample_weight
    l_simple = tf.reduce_sum(weighted_ce(y, simple_logits, w_simple)) / gbs
    l_routing = tf.reduce_sum(r) / gbs
    if complex_logits is None:
        l_complex = tf.constant(0.0)
    else:
        ce_c = weighted_ce(y, complex_logits, sample_weight)
        l_complex = tf.reduce_sum(complex_weights(r, complex_weight_floor) * ce_c) / gbs
    if sel_weights is None:
        l_sparsity = tf.constant(0.0)
    else:
        l_sparsity = tf.reduce_sum(selection_entropy(sel_weights, n_active)) / gbs
    total = a_simple * l_simple + a_complex * l_complex + a_routing * l_routing + a_sparsity * l_sparsity
    return {"total": total, "simple": l_simple, "complex": l_complex,
            "routing": l_routing, "sparsity": l_sparsity}


def complex_weights(r: tf.Tensor, floor: float = _TRAIN.complex_weight_floor) -> tf.Tensor:
    """Per-window weight of the complex model's CE: ``floor + (1 - floor) * r``, no gradient to r.

    ``floor = 0`` trains the complex model on routed windows only. The simple model is more
    confident on its training windows than on unseen ones, so the windows the deployed gate
    routes at test time are under-represented among the routed *training* windows; a floor keeps
    every window in the complex model's training with the routed ones weighted up.
    """
    r = tf.stop_gradient(r)
    return r if floor == 0.0 else floor + (1.0 - floor) * r


def per_window_gate_terms(y, simple_logits, sel_weights, sample_weight=None, *, tau: float = _TRAIN.tau,
                          sharpness: float = _TRAIN.gate_sharpness, n_active: Optional[int] = None,
                          rule: str = DEFAULT_RULE) -> dict[str, tf.Tensor]:
    """Per-window ``r``, weighted simple CE and selector entropy, each ``(n,)``.

    With the selector and simple model frozen (stage 2) these are constants, so the trainer
    computes them once per stage instead of re-running both models every step.
    """
    return {"r": soft_routing(simple_logits, tau, sharpness, rule),
            "simple_ce": weighted_ce(y, simple_logits, sample_weight),
            "entropy": selection_entropy(sel_weights, n_active)}


def frozen_gate_loss_terms(
    y: tf.Tensor, complex_logits: tf.Tensor, r: tf.Tensor, simple_ce: tf.Tensor, entropy: tf.Tensor,
    sample_weight: Optional[tf.Tensor] = None, *, a_simple: float = _TRAIN.a_simple,
    a_complex: float = _TRAIN.a_complex, a_routing: float = _TRAIN.a_routing,
    a_sparsity: float = _TRAIN.a_sparsity, global_batch_size: Optional[int] = None,
    complex_weight_floor: float = _TRAIN.complex_weight_floor,
) -> dict[str, tf.Tensor]:
    """:func:`cascade_loss_terms` from precomputed per-window gate terms (same values).

    Args:
        y: ``(batch,)`` labels; complex_logits: ``(batch, 2)``.
        r, simple_ce, entropy: ``(batch,)`` from :func:`per_window_gate_terms`.
        sample_weight, a_*, global_batch_size, complex_weight_floor: as in :func:`cascade_loss_terms`.
    """
    gbs = tf.cast(tf.shape(y)[0] if global_batch_size is None else global_batch_size, tf.float32)
    l_simple = tf.reduce_sum(simple_ce) / gbs
    l_routing = tf.reduce_sum(r) / gbs
    l_sparsity = tf.reduce_sum(entropy) / gbs
    l_complex = tf.reduce_sum(complex_weights(r, complex_weight_floor)
                              * weighted_ce(y, complex_logits, sample_weight)) / gbs
    total = a_simple * l_simple + a_complex * l_complex + a_routing * l_routing + a_sparsity * l_sparsity
    return {"total": total, "simple": l_simple, "complex": l_complex,
            "routing": l_routing, "sparsity": l_sparsity}
