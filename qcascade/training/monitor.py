"""Training monitors: per-epoch training F1 from batch counts, and best-on-validation weights."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

__all__ = ["f1_counts", "with_train_f1", "KeepBest", "MIN_SCORE"]

# Validation F1 that at least one epoch must reach for KeepBest to trust the validation windows.
# Measured (docs/generalisation.md, stress cohort): validation seizures from a zone no training
# seizure came from peaked at 0.17-0.26 (noise), and keeping that epoch cost 0.10-0.41 test F1;
# validation seizures the model can see scored >= 0.9, where 0.3 changes nothing.
MIN_SCORE = 0.3


def f1_counts(prefix: str, y: tf.Tensor, logits: tf.Tensor) -> dict[str, tf.Tensor]:
    """``{prefix_tp, prefix_fp, prefix_fn}`` of a batch's argmax decisions (float32 scalars).

    A replica step returns them beside its loss terms; :func:`run_epochs` sums them over the
    epoch's batches and logs ``prefix_f1`` instead: the F1 of the training windows as they were
    trained on (training mode, augmented), at no extra cost.
    """
    pred = tf.cast(tf.argmax(logits, axis=-1), tf.int32)
    yi = tf.cast(y, tf.int32)
    tp = tf.reduce_sum(tf.cast((pred == 1) & (yi == 1), tf.float32))
    fp = tf.reduce_sum(tf.cast((pred == 1) & (yi == 0), tf.float32))
    fn = tf.reduce_sum(tf.cast((pred == 0) & (yi == 1), tf.float32))
    return {f"{prefix}_tp": tp, f"{prefix}_fp": fp, f"{prefix}_fn": fn}


def with_train_f1(logs: dict) -> dict:
    """Replace every ``p_tp, p_fp, p_fn`` triple of epoch logs by ``p_f1`` (None without positives)."""
    out = dict(logs)
    for key in [k for k in logs if k.endswith("_tp")]:
        p = key[:-3]
        if f"{p}_fp" in logs and f"{p}_fn" in logs:
            tp, fp, fn = out.pop(key), out.pop(f"{p}_fp"), out.pop(f"{p}_fn")
            out[f"{p}_f1"] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else None
    return out


class KeepBest:
    """Epoch callback that keeps the weights of the epoch with the best validation score.

    Training on 2-4 seizures, validation F1 often peaks early and the last epoch is the most
    memorised one. Call :meth:`restore` after the last epoch.

    Args:
        models: the models whose weights (BatchNorm statistics included) are snapshotted.
        monitor: epoch logs -> score (higher is better) or None (epoch not comparable). Ties
            keep the later epoch: equal validation F1 after more training on the same windows.
        min_score: if no epoch reaches it, the validation windows give no guidance (e.g. a
            multifocal patient's validation seizure starts in a zone no training seizure came
            from, and every epoch scores about 0) and the last epoch's weights are kept: the
            "best" epoch would be whichever one noise favoured (docs/generalisation.md).
    """

    def __init__(self, models: Sequence[tf.keras.Model], monitor: Callable[[dict], Optional[float]],
                 min_score: float = MIN_SCORE):
        self.models, self.monitor, self.min_score = list(models), monitor, float(min_score)
        self.best_epoch: Optional[int] = None
        self.best_score: Optional[float] = None
        self.last_epoch: Optional[int] = None
        self._weights: Optional[list] = None

    def __call__(self, epoch: int, logs: dict) -> None:
        self.last_epoch = int(epoch)
        score = self.monitor(logs)
        if score is None or not np.isfinite(score):
            return
        if self.best_score is None or score >= self.best_score:
            self.best_epoch, self.best_score = int(epoch), float(score)
            self._weights = [m.get_weights() for m in self.models]

    def restore(self) -> Optional[int]:
        """Load the best epoch's weights; returns the 0-based index of the epoch whose weights the
        models now hold (None: no epoch was scored). Below ``min_score`` nothing is loaded and the
        last epoch's index is returned."""
        if self._weights is None:
            return None
        if self.best_score < self.min_score:
            return self.last_epoch
        for m, w in zip(self.models, self._weights):
            m.set_weights(w)
        return self.best_epoch
