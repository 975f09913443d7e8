"""ChannelSelector: masking, hard deployment choice, and learning the informative electrode."""

from __future__ import annotations

import numpy as np
import pytest

import tensorflow as tf

from qcascade.errors import ConfigError  # noqa: E402
from qcascade.models.selector import (ChannelSelector, attach_selector, deployed_electrode,  # noqa: E402
                                      plot_selection_weights, selection_entropy)

N_CHANS, N_TIMES = 128, 512
N_STEPS = 200


def _mask(n_live=40, dead=(3, 17)):
    m = np.zeros(N_CHANS, bool)
    m[:n_live] = True
    m[list(dead)] = False
    return m


def _labelled_windows(n=256, electrode=23, seed=0, n_live=40):
    """Noise on every live electrode; ictal windows (y=1) add a 6 Hz rhythm on ONE electrode."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, N_TIMES, N_CHANS), np.float32)
    X[:, :, :n_live] = rng.normal(size=(n, N_TIMES, n_live))
    y = np.repeat([0, 1], n // 2)
    t = np.arange(N_TIMES) / 512.0
    phase = rng.uniform(0, 2 * np.pi, n)
    X[y == 1, :, electrode] += 3.0 * np.sin(2 * np.pi * 6 * t[None, :] + phase[y == 1, None])
    return X, y


def test_masked_electrodes_get_zero_weight_and_output_shape():
    mask = _mask()
    sel = ChannelSelector(n_chans=N_CHANS)
    X = np.random.default_rng(1).normal(size=(4, N_TIMES, N_CHANS)).astype(np.float32)
    y, w = sel(X, mask)
    assert y.shape == (4, N_TIMES, 1) and w.shape == (4, N_CHANS)
    w = w.numpy()
    assert np.all(w[:, ~mask] == 0.0)
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-5)
    # Uniform at initialisation (content term starts at 0).
    np.testing.assert_allclose(w[:, mask], 1.0 / mask.sum(), rtol=1e-4)
    np.testing.assert_allclose(float(selection_entropy(w)), np.log(mask.sum()), rtol=1e-4)


def test_hard_selection_is_one_unmasked_electrode_even_if_masked_logit_is_largest():
    mask = _mask()
    sel = ChannelSelector(n_chans=N_CHANS, content=False)
    X = np.random.default_rng(2).normal(size=(8, N_TIMES, N_CHANS)).astype(np.float32)
    sel(X[:1], mask)  # build
    logits = np.zeros(N_CHANS, np.float32)
    logits[3] = 50.0  # masked electrode: must never be chosen
    logits[100] = 40.0  # outside the live range: masked too
    logits[11] = 5.0
    sel.electrode_logits.assign(logits)
    idx = deployed_electrode(sel, X, mask)
    assert isinstance(idx, int) and idx == 11 and mask[idx]
    with pytest.raises(ConfigError):
        deployed_electrode(sel, X, np.zeros(N_CHANS, bool))


def test_selection_entropy_zero_for_one_hot():
    w = np.zeros((2, N_CHANS), np.float32)
    w[:, 5] = 1.0
    assert float(selection_entropy(w)) == pytest.approx(0.0, abs=1e-6)


def test_selector_learns_the_informative_electrode(tmp_path):
    """A few hundred steps with temperature annealing land the selection on the label electrode."""
    electrode, mask = 23, _mask()
    X, y = _labelled_windows(electrode=electrode)
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((N_TIMES, 1))
    # Tiny detector: rhythm power -> logits (a stand-in for simple models, fast to train).
    h = tf.keras.layers.Conv1D(4, 33, strides=4)(inp)
    h = tf.keras.layers.Multiply()([h, h])
    h = tf.keras.layers.GlobalAveragePooling1D()(h)
    head = tf.keras.Model(inp, tf.keras.layers.Dense(2)(h))
    model, sel = attach_selector(head, mask, temperature=1.0)
    opt = tf.keras.optimizers.Adam(0.05)
    ce = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    @tf.function
    def train_step(xb, yb):
        with tf.GradientTape() as tape:
            logits, w = model(xb, training=True)
            loss = ce(yb, logits) + 0.01 * selection_entropy(w)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return tf.reduce_max(tf.reduce_mean(w, 0))

    rng = np.random.default_rng(0)
    for step in range(N_STEPS):
        sel.temperature.assign(max(0.1, 0.98 ** step))
        b = rng.choice(len(X), 32, replace=False)
        train_step(tf.constant(X[b]), tf.constant(y[b]))
    idx = deployed_electrode(sel, X, mask)
    assert idx == electrode
    _, w = sel(X[:64], mask)
    plot_selection_weights(w.numpy(), mask, tmp_path / "sel.png")
    assert (tmp_path / "sel.png").stat().st_size > 1000
