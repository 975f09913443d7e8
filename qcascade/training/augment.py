"""Seeded, in-graph augmentation of the complex model's training windows.

With 2-4 training seizures the complex model otherwise sees the same few hundred ictal windows
every epoch and learns them by heart (docs/generalisation.md). Each training batch of
``(b, T, C)`` windows is transformed inside the training step, so nothing extra is stored:

* **amplitude scaling** per window, log-uniform in ``[1/s, s]`` (``aug_scale``): recordings of one
  patient differ in gain (the stress cohort draws x0.4-2.5 per recording);
* **electrode gain** per window and electrode, log-uniform in ``[1/g, g]`` (``aug_electrode_gain``);
* **electrode dropout**: each live electrode is zeroed with probability ``aug_electrode_dropout``
  (dead contacts, and no single electrode can carry the decision);
* **additive noise** of SD ``aug_noise``, uniform (cheaper to draw than Gaussian; inputs are
  normalised to about unit SD);
* **time stretch** per window by a log-uniform factor in ``[1/f, f]`` (``aug_time_stretch``),
  linearly interpolated about the window's centre and mirrored at its edges: the same seizure
  pattern slower or faster, since a patient's seizures differ in rhythm and a model trained on
  two or three of them otherwise learns their exact frequencies;
* **sign flip** of the whole window with probability ``aug_sign_flip`` (all electrodes at once,
  as a change of reference polarity would): a spike is a spike whichever way it points.

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
    """Transforms of one training stage (see module docstring); ``seed`` is the stage seed (an
    int, or an int64 ``tf.Variable`` that a step traced once reads at every call).

    Defaults are ``train.aug_*``'s; ``scale = electrode_gain = 1``, ``electrode_dropout = noise = 0``
    is the identity."""

    scale: float = 2.0
    electrode_gain: float = 1.25
    electrode_dropout: float = 0.1
    noise: float = 0.1
    seed: "int | tf.Variable" = 0
    time_stretch: float = 1.0
    sign_flip: float = 0.0

    @property
    def active(self) -> bool:
        return (self.scale > 1.0 or self.electrode_gain > 1.0 or self.electrode_dropout > 0 or self.noise > 0
                or self.time_stretch > 1.0 or self.sign_flip > 0)

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
        seeds = [tf.stack([tf.cast(self.seed, tf.int64) + k, key]) for k in range(6)]
        if self.time_stretch > 1.0:
            x = self._stretch(x, seeds[4])
        # Scale, gain and dropout are one (b, 1, C) factor and one pass over the batch: each
        # extra full-size multiply costs as much as a tenth of the complex model's train step.
        factor = tf.ones([b, 1, c], x.dtype)
        if self.scale > 1.0:
            ls = math.log(self.scale)
            factor *= tf.exp(tf.random.stateless_uniform([b, 1, 1], seeds[0], -ls, ls))
        if self.electrode_gain > 1.0:
            lg = math.log(self.electrode_gain)
            factor *= tf.exp(tf.random.stateless_uniform([b, 1, c], seeds[1], -lg, lg))
        if self.electrode_dropout > 0:
            keep = tf.random.stateless_uniform([b, 1, c], seeds[2]) >= self.electrode_dropout
            factor *= tf.cast(keep, x.dtype)
        if self.sign_flip > 0:
            flip = tf.random.stateless_uniform([b, 1, 1], seeds[5]) < self.sign_flip
            factor *= tf.where(flip, -1.0, 1.0)
        if self.noise > 0:
            # Padded (all-zero) electrodes stay zero: noise there would be a signal the deployed
            # input never has.
            live = tf.cast(tf.reduce_any(tf.not_equal(x, 0.0), axis=1, keepdims=True), x.dtype)
            # Uniform noise of SD ``noise`` (half-width sqrt(3) SD): the same regulariser, and
            # cheaper to draw than Gaussian noise (docs/evaluation.md, "Time").
            half = self.noise * math.sqrt(3.0)
            return x * factor + live * tf.random.stateless_uniform(tf.shape(x), seeds[3], -half, half)
        return x * factor

    def _stretch(self, x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """``(b, T, C)`` windows resampled in time by a log-uniform factor per window (> 1:
        faster), about the window's centre, mirrored where the stretched window reads past an edge."""
        b, t = tf.shape(x)[0], tf.shape(x)[1]
        lf = math.log(self.time_stretch)
        f = tf.exp(tf.random.stateless_uniform([b, 1], seed, -lf, lf))
        last = tf.cast(t - 1, tf.float32)
        centre = 0.5 * last
        pos = centre + (tf.cast(tf.range(t), tf.float32)[None, :] - centre) * f  # (b, T)
        # Mirror into [0, T-1]: a triangle wave of period 2 (T-1).
        pos = last - tf.abs(tf.math.floormod(pos, 2.0 * last) - last)
        lo = tf.clip_by_value(tf.cast(tf.floor(pos), tf.int32), 0, t - 1)
        hi = tf.minimum(lo + 1, t - 1)
        w = (pos - tf.cast(lo, tf.float32))[:, :, None]
        return (tf.gather(x, lo, axis=1, batch_dims=1) * (1.0 - w)
                + tf.gather(x, hi, axis=1, batch_dims=1) * w)


def augmenter_for(cfg, seed) -> Augmenter:
    """The :class:`Augmenter` of a :class:`~qcascade.config_train.TrainConfig` for one stage seed
    (an int or an int64 ``tf.Variable``)."""
    return Augmenter(scale=cfg.aug_scale, electrode_gain=cfg.aug_electrode_gain,
                     electrode_dropout=cfg.aug_electrode_dropout, noise=cfg.aug_noise,
                     seed=seed if isinstance(seed, tf.Variable) else int(seed),
                     time_stretch=cfg.aug_time_stretch, sign_flip=cfg.aug_sign_flip)
