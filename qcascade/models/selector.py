"""Learnable electrode selector (training only; imports TensorFlow): ``(batch, 512, 128)`` -> ``(batch, 512, 1)``.

The deployed design reads ONE fixed electrode (a channel multiplexer in hardware, an integer index
saved with the model); this layer is never exported. It scores every electrode as

    score_c(x) = logit_c + s(log line length_c(x), log variance_c(x))

(``logit_c`` a learnable per-electrode logit, ``s`` a tiny MLP shared over electrodes, initialised to
output 0), masks dead electrodes with ``-inf``, and mixes the electrodes with
``w = softmax(score / T)``; the temperature ``T`` is a non-trainable ``tf.Variable`` the trainer
anneals (the selection learns slowly at T = 1). Optional Gumbel noise makes training-time selections
stochastic (Gumbel-softmax).

**Deployment** (:func:`deployed_electrode`): because the hardware cannot switch electrodes per
window, the content term can only act through its average over the training windows: the deployed
electrode is ``argmax_c mean_n w_c(x_n)`` over *unmasked* electrodes (the electrode that carried the
largest share of the training-time mixture), at the current temperature, without Gumbel noise.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from qcascade.errors import ConfigError
from qcascade.tensors import as_tensor

_EPS = 1e-6


class ChannelSelector(tf.keras.layers.Layer):
    """Keras layer: ``selector(x, electrode_mask) -> (channel, weights)``.

    Args:
        n_chans: electrodes (128).
        hidden: width of the content scorer.
        temperature: initial softmax temperature (``selector.temperature.assign(t)`` to anneal).
        content: include the content-aware term.
        gumbel: add Gumbel noise to the scores when ``training``.

    Call:
        x: ``(batch, n_times, n_chans)`` windows; electrode_mask: ``(n_chans,)`` or
        ``(batch, n_chans)`` bool. Returns ``(batch, n_times, 1)`` and weights ``(batch, n_chans)``.
    """

    def __init__(self, n_chans: int = 128, hidden: int = 8, temperature: float = 1.0,
                 content: bool = True, gumbel: bool = False, **kwargs):
        kwargs.setdefault("name", "channel_selector")
        super().__init__(**kwargs)
        self.n_chans, self.hidden, self.content, self.gumbel = n_chans, hidden, content, gumbel
        self.temperature = tf.Variable(float(temperature), trainable=False, dtype=tf.float32,
                                       name="temperature")
        self.scorer_hidden = tf.keras.layers.Dense(hidden, activation="relu", name="scorer_hidden")
        # Zero output kernel: the content term starts at 0, i.e. a uniform selection.
        self.scorer_out = tf.keras.layers.Dense(1, kernel_initializer="zeros", name="scorer_out")

    def build(self, input_shape):
        self.electrode_logits = self.add_weight(name="electrode_logits", shape=(self.n_chans,),
                                                initializer="zeros", trainable=True)
        self.scorer_hidden.build((None, self.n_chans, 2))
        self.scorer_out.build((None, self.n_chans, self.hidden))
        super().build(input_shape)

    def content_score(self, x):
        """Per-window content term from log line length and log variance, ``(batch, n_chans)``."""
        ll = tf.reduce_mean(tf.abs(x[:, 1:, :] - x[:, :-1, :]), axis=1)
        var = tf.math.reduce_variance(x, axis=1)
        feats = tf.stack([tf.math.log(ll + _EPS), tf.math.log(var + _EPS)], axis=-1)
        return self.scorer_out(self.scorer_hidden(feats))[..., 0]

    def scores(self, x, electrode_mask):
        """Masked scores ``(batch, n_chans)``: ``-inf`` on masked electrodes."""
        score = self.electrode_logits[None, :]
        if self.content:
            score = score + self.content_score(x)
        else:
            score = tf.tile(score, [tf.shape(x)[0], 1])
        mask = tf.broadcast_to(tf.cast(electrode_mask, tf.bool), tf.shape(score))
        return tf.where(mask, score, tf.fill(tf.shape(score), float("-inf")))

    def call(self, x, electrode_mask, training=None):
        s = self.scores(x, electrode_mask)
        if self.gumbel and training:
            u = tf.random.uniform(tf.shape(s), 1e-9, 1.0)
            s = s - tf.math.log(-tf.math.log(u))
        w = tf.nn.softmax(s / self.temperature, axis=-1)
        y = tf.reduce_sum(x * w[:, None, :], axis=-1, keepdims=True)
        return y, w

    def get_config(self):
        cfg = super().get_config()
        cfg.update(n_chans=self.n_chans, hidden=self.hidden, content=self.content,
                   gumbel=self.gumbel, temperature=float(self.temperature.numpy()))
        return cfg


def selection_entropy(weights):
    """Mean entropy (nats) of selection weights ``(batch, n_chans)``; 0 = one-hot (the sparsity
    loss). Masked electrodes have weight 0 and contribute 0."""
    w = tf.convert_to_tensor(weights)
    ent = -tf.reduce_sum(tf.where(w > 0, w * tf.math.log(tf.maximum(w, 1e-30)), 0.0), axis=-1)
    return tf.reduce_mean(ent)


def mean_selection_weights(selector, X: np.ndarray, mask: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Average weights ``(n_chans,)`` over windows ``X`` ``(n, n_times, n_chans)`` (no Gumbel)."""
    acc = np.zeros(X.shape[-1], np.float64)
    for i in range(0, len(X), batch_size):
        _, w = selector(as_tensor(np.asarray(X[i:i + batch_size], np.float32)), np.asarray(mask, bool), training=False)
        acc += np.asarray(w, np.float64).sum(0)
    return acc / len(X)


def deployed_electrode(selector, X_train: np.ndarray, mask: np.ndarray) -> int:
    """Hard selection of exactly one unmasked electrode (see module docstring).

    Args:
        selector: trained :class:`ChannelSelector`.
        X_train: training windows ``(n, n_times, n_chans)``.
        mask: ``(n_chans,)`` bool, live electrodes.

    Returns:
        The electrode index (ties: lowest index).

    Raises:
        ConfigError: no electrode is unmasked.
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ConfigError("electrode mask selects no electrode")
    w = mean_selection_weights(selector, X_train, mask)
    w = np.where(mask, w, -np.inf)
    return int(np.argmax(w))


def attach_selector(single_channel_model, mask: np.ndarray, n_times: int = 512, **selector_kw):
    """Training graph ``(batch, n_times, n_chans) -> [logits, weights]`` (never exported).

    Returns:
        ``(model, selector)``; add ``selection_entropy(weights)`` to the loss for sparsity.
    """
    mask = np.asarray(mask, bool)
    sel = ChannelSelector(n_chans=len(mask), **selector_kw)
    from qcascade.models import without_autograph

    @without_autograph
    def build():
        inp = tf.keras.Input((n_times, len(mask)), name="windows")
        ch, w = sel(inp, tf.constant(mask))
        return tf.keras.Model(inp, [single_channel_model(ch), w], name="selector_training")

    return build(), sel


def plot_selection_weights(weights: np.ndarray, mask: np.ndarray, path, title: str = "") -> None:
    """Bar plot of selection weights ``(n_chans,)`` or ``(batch, n_chans)`` (averaged); masked
    electrodes grey, the arg-max electrode red. Written atomically to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qcascade.io_utils import atomic_save_figure

    w = np.asarray(weights, np.float64)
    w = w.mean(0) if w.ndim == 2 else w
    mask = np.asarray(mask, bool)
    colors = np.where(mask, "tab:blue", "lightgrey").astype(object)
    if mask.any():
        colors[int(np.argmax(np.where(mask, w, -np.inf)))] = "tab:red"
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.bar(np.arange(len(w)), w, color=list(colors), width=1.0)
    ax.set_xlabel("electrode")
    ax.set_ylabel("mean selection weight")
    ax.set_title(title or "electrode selection weights")
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=100)
