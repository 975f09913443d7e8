"""Seeded, in-graph augmentation of the complex model's training windows.

With 2-4 training seizures the complex model otherwise sees the same few hundred ictal windows
every epoch and learns them by heart (docs/generalisation.md). Each training batch of
``(b, T, C)`` windows is transformed inside the training step, so nothing extra is stored:

* **amplitude scaling** per window, log-uniform in ``[1/s, s]`` (``aug_scale``): recordings of one
  patient differ in gain (the stress cohort draws x0.4-2.5 per recording);
* **electrode gain** per window and electrode, log-uniform in ``[1/g, g]`` (``aug_electrode_gain``);
* **electrode dropout**: each live electrode is zeroed with probability ``aug_electrode_dropout``
  (dead contacts, and no single electrode can carry the decision);
* **additive Gaussian noise** of SD ``aug_noise`` (inputs are normalised to about unit SD).

Randomness is stateless (``tf.random.stateless_*``) and its seed is a function of the stage seed
and the batch's window indices, which the seeded shuffle fixes: two runs with one ``train.seed``
draw the same transforms, and a resumed stage draws what an uninterrupted one draws. Validation,
test and exported models never see augmentation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

__all__ = ["Augmenter", "augmenter_for"]


@dataclass(frozen=True)
class Augmenter:
    """Transforms of one training stage (see module docstring); ``seed`` is the stage seed.

    Defaults are ``train.aug_*``'s; ``scale = electrode_gain = 1``, ``electrode_dropout = noise = 0``
    is the identity."""

    scale: float = 2.0
    electrode_gain: float = 1.25
    electrode_dropout: float = 0.1
    noise: float = 0.1
    seed: int = 0

    @property
    def active(self) -> bool:
        return self.scale > 1.0 or self.electrode_gain > 1.0 or self.electrode_dropout > 0 or self.noise > 0

    def __call__(self, x: tf.Tensor, idx: tf.Tensor) -> tf.Tensor:
        """Augment a batch.

        Args:
            x: ``(b, T, C)`` float32 windows.
            idx: ``(b,)`` int32 indices of the windows in the training set (the seed source).

        Returns:
            ``(b, T, C)`` float32, same shape.
        """
        if not self.active:
            return x
        b, c = tf.shape(x)[0], tf.shape(x)[2]
        # A batch's indices are a seeded permutation slice: their position-weighted sum is
        # stable across runs and differs between batches and epochs.
        pos = tf.range(1, b + 1, dtype=tf.int64)
        key = tf.reduce_sum(tf.cast(idx, tf.int64) * pos * 2654435761) % (2 ** 31 - 1)
        seeds = [tf.stack([tf.constant(self.seed + k, tf.int64), key]) for k in range(4)]
        if self.scale > 1.0:
            ls = math.log(self.scale)
            x = x * tf.exp(tf.random.stateless_uniform([b, 1, 1], seeds[0], -ls, ls))
        if self.electrode_gain > 1.0:
            lg = math.log(self.electrode_gain)
            x = x * tf.exp(tf.random.stateless_uniform([b, 1, c], seeds[1], -lg, lg))
        if self.electrode_dropout > 0:
            keep = tf.random.stateless_uniform([b, 1, c], seeds[2]) >= self.electrode_dropout
            x = x * tf.cast(keep, x.dtype)
        if self.noise > 0:
            # Padded (all-zero) electrodes stay zero: noise there would be a signal the deployed
            # input never has.
            live = tf.cast(tf.reduce_any(tf.not_equal(x, 0.0), axis=1, keepdims=True), x.dtype)
            x = x + self.noise * live * tf.random.stateless_normal(tf.shape(x), seeds[3])
        return x


def augmenter_for(cfg, seed: int) -> Augmenter:
    """The :class:`Augmenter` of a :class:`~qcascade.config_train.TrainConfig` for one stage seed."""
    return Augmenter(scale=cfg.aug_scale, electrode_gain=cfg.aug_electrode_gain,
                     electrode_dropout=cfg.aug_electrode_dropout, noise=cfg.aug_noise, seed=int(seed))
