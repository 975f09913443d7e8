"""Plain 2-class training with the custom loop: the baselines' trainer (complex-only, simple alone)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from qcascade.training.loop import (DistStep, EpochCallback, ReleasableData, class_weights, global_batch_for,
                                    kernels, make_predict_fn, optimizer_for, predict_in_batches, reseed_dropout,
                                    reset_optimizer, run_epochs)
from qcascade.training.monitor import MIN_SCORE, KeepBest, f1_counts

__all__ = ["fit_classifier"]


def fit_classifier(
    model: tf.keras.Model,
    X: np.ndarray,
    y: np.ndarray,
    schedule: Sequence[tuple[int, float]],
    *,
    strategy: Optional[tf.distribute.Strategy] = None,
    batch_size: int = 64,
    seed: int = 0,
    phase_seeds: Optional[Sequence[int]] = None,
    class_weighting: str = "balanced",
    X_val: Optional[np.ndarray] = None,
    y_val: Optional[np.ndarray] = None,
    callbacks: Sequence[EpochCallback] = (),
    verbose: int = 1,
    desc: str = "",
    augment: Optional[Callable[[int], Callable]] = None,
    restore_best: Sequence[bool] = (),
    weight_decay: float = 0.0,
    restore_best_min_f1: float = MIN_SCORE,
    after_phase: Optional[Callable[[int], None]] = None,
    sample_weight: Optional[np.ndarray] = None,
) -> dict[str, list]:
    """Train a plain 2-class classifier with the custom loop (class-weighted CE).

    Args:
        model: ``(batch, *X.shape[1:]) -> (batch, 2)`` logits, built in ``strategy.scope()``.
        X: ``(n, ...)`` float32 windows; y: ``(n,)`` labels in {0, 1}.
        schedule: ``[(epochs, learning_rate), ...]`` phases, each with a fresh Adam (mirrors
            the cascade, where every stage starts a new optimizer).
        strategy, batch_size, seed, class_weighting: as in :class:`~qcascade.training.TrainConfig`.
        phase_seeds: global, shuffle and dropout seed of each phase (default ``seed + 7919 * phase``);
            the baselines pass the seeds of the cascade stages they mirror (:func:`stage_seed`).
        X_val, y_val: optional validation windows (val accuracy/F1 logged per epoch).
        callbacks, verbose, desc: see :func:`run_epochs`.
        augment: ``seed -> (x, idx) -> x`` training-batch transform (e.g.
            :func:`qcascade.training.augment.augmenter_for`), called once with an int64
            ``tf.Variable`` that holds each phase's seed in turn; None trains on the windows as
            they are.
        restore_best: per phase, keep the weights of its epoch with the best ``val_f1``
            (:class:`KeepBest`; needs validation windows); missing entries mean False.
        weight_decay: decoupled weight decay of the model's kernels (:func:`optimizer_for`).
        restore_best_min_f1: below this best validation F1 the last epoch is kept (:class:`KeepBest`).
        after_phase: called with the phase index after each phase (and its best-epoch restore;
            also for a phase of 0 epochs), e.g. the BatchNorm refresh the cascade makes after
            each stage, so that the next phase validates with what the mirrored stage sees.
        sample_weight: optional ``(n,)`` factor on each window's class weight.

    Returns:
        History ``{name: [per epoch]}`` over all phases (``loss``, ``train_f1``, ``windows_per_s``,
        ``val_*``, ``best_epoch``: per epoch, True for each phase's restored epoch).
    """
    from qcascade.evaluation import window_metrics  # local: evaluation imports sklearn

    strategy = strategy or tf.distribute.get_strategy()
    X_t = ReleasableData(X)
    y_np = np.asarray(y).astype(np.int32)
    y_t = tf.convert_to_tensor(y_np)
    w = class_weights(y_np, class_weighting)[y_np]
    if sample_weight is not None:
        if np.shape(sample_weight) != y_np.shape:
            raise ValueError(f"sample_weight: shape {np.shape(sample_weight)}, expected {y_np.shape}")
        w = (w * np.asarray(sample_weight, np.float32)).astype(np.float32)
    w_t = tf.convert_to_tensor(w)
    gb = global_batch_for(len(y_np), batch_size, strategy.num_replicas_in_sync)
    predict = make_predict_fn(lambda x: model(x, training=False), X.shape[1:])

    def on_epoch_end(_epoch):
        if X_val is None:
            return {}
        logits = predict_in_batches(predict, X_val)
        m = window_metrics(y_val, logits, logits.argmax(1))
        return {"val_f1": m["f1"], "val_sensitivity": m["sensitivity"], "val_accuracy": m["accuracy"]}

    if phase_seeds is None:
        phase_seeds = [seed + 7919 * phase for phase in range(len(schedule))]
    if len(phase_seeds) != len(schedule):
        raise ValueError(f"{len(phase_seeds)} phase seeds for {len(schedule)} schedule phases")
    # One optimizer, augmenter seed and traced step for all phases; each phase resets them to
    # what a fresh start would have, so the phases train exactly as separately traced ones did
    # (the trace, not the epochs, was the larger cost of a short phase).
    opt = optimizer_for(strategy, schedule[0][1], model.trainable_variables, weight_decay, kernels(model))
    aug_seed = tf.Variable(0, dtype=tf.int64, trainable=False)
    aug = augment(aug_seed) if augment is not None else None

    def replica_step(idx):
        x, yb, wb = X_t.gather(idx), tf.gather(y_t, idx), tf.gather(w_t, idx)
        if aug is not None:
            x = aug(x, idx)
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=logits)
            loss = tf.reduce_sum(ce * wb) / gb
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return {"total": loss, **f1_counts("train", yb, logits)}

    step = DistStep(strategy, replica_step)
    history: dict[str, list] = {}
    for phase, ((epochs, lr), phase_seed) in enumerate(zip(schedule, phase_seeds)):
        if epochs <= 0:
            if after_phase is not None:
                after_phase(phase)
            continue
        reset_optimizer(opt, lr)
        aug_seed.assign(int(phase_seed))
        # What a cascade stage does at its start: the tf.data shuffle order depends on the global
        # seed too, so it is set here, not just the shuffle op's seed.
        tf.keras.utils.set_random_seed(int(phase_seed))
        reseed_dropout(model, phase_seed)
        keep = None
        if phase < len(restore_best) and restore_best[phase] and X_val is not None:
            keep = KeepBest([model], lambda logs: logs.get("val_f1"), min_score=restore_best_min_f1)
        h = run_epochs(strategy, step, len(y_np), gb, epochs, phase_seed,
                       on_epoch_end=on_epoch_end, callbacks=list(callbacks) + ([keep] if keep else []),
                       verbose=verbose, desc=f"{desc} phase {phase + 1}")
        best = keep.restore() if keep is not None else None
        if after_phase is not None:
            after_phase(phase)
        h["best_epoch"] = [e == best for e in range(epochs)]
        h["lr"] = [lr] * epochs
        for k, v in h.items():
            history.setdefault(k, []).extend(v)
    X_t.release()
    if "total" in history:
        history["loss"] = history.pop("total")
    return history
