"""Levers against memorising few seizures (docs/generalisation.md): augmentation, best-on-validation
weights, training F1 per epoch, weight decay, and the electrode-agnostic first block."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from qcascade.config import ModelConfig, load_config
from qcascade.config_train import TrainConfig
from qcascade.errors import ConfigError
from qcascade.models import build_model
from qcascade.models.complex import build_complex
from qcascade.quant import QuantPolicy
from qcascade.training.augment import Augmenter, augmenter_for
from qcascade.training.classifier import fit_classifier
from qcascade.training.loop import kernels, optimizer_for
from qcascade.training.monitor import KeepBest, f1_counts, with_train_f1


def _x(n=6, t=64, c=5, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, t, c)).astype(np.float32)
    x[:, :, -1] = 0.0  # a padded electrode
    return tf.constant(x)


def test_augmenter_is_seeded_by_stage_seed_and_batch_indices():
    aug = Augmenter(seed=7)
    x, idx = _x(), tf.constant([3, 1, 4, 0, 5, 2], tf.int32)
    a, b = aug(x, idx).numpy(), aug(x, idx).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, x.numpy())
    other_batch = aug(x, tf.constant([2, 1, 4, 0, 5, 3], tf.int32)).numpy()
    other_seed = Augmenter(seed=8)(x, idx).numpy()
    assert not np.allclose(a, other_batch) and not np.allclose(a, other_seed)


def test_augmenter_identity_when_off_and_padding_stays_zero():
    x, idx = _x(), tf.range(6)
    off = Augmenter(scale=1.0, electrode_gain=1.0, electrode_dropout=0.0, noise=0.0)
    assert not off.active
    np.testing.assert_array_equal(off(x, idx).numpy(), x.numpy())
    y = Augmenter(noise=0.5)(x, idx).numpy()
    assert np.all(y[:, :, -1] == 0.0)  # noise is never added where the input has no electrode


def test_augmenter_ranges():
    x, idx = tf.ones((200, 8, 3)), tf.range(200)
    s = Augmenter(scale=2.0, electrode_gain=1.0, electrode_dropout=0.0, noise=0.0)(x, idx).numpy()
    assert np.allclose(s, s[:, :1, :1])  # one factor per window
    assert 0.5 - 1e-6 <= s.min() and s.max() <= 2.0 + 1e-6 and s.max() / s.min() > 3
    d = Augmenter(scale=1.0, electrode_gain=1.0, electrode_dropout=0.3, noise=0.0)(x, idx).numpy()
    zero = (d[:, 0, :] == 0).mean()
    assert 0.2 < zero < 0.4 and np.all((d == 0) | (d == 1))
    assert np.all(d == d[:, :1, :])  # an electrode is dropped for the whole window


def test_time_stretch_changes_the_rhythm_within_its_range_and_keeps_padding_zero():
    n, t = 64, 512
    phase = np.random.default_rng(0).uniform(0, 2 * np.pi, (n, 1))
    x = np.sin(2 * np.pi * 8 * np.arange(t)[None, :] / t + phase)[:, :, None].repeat(2, 2).astype(np.float32)
    x[:, :, 1] = 0.0  # a padded electrode
    aug = Augmenter(scale=1.0, electrode_gain=1.0, electrode_dropout=0.0, noise=0.0, time_stretch=2.0)
    assert aug.active
    y = aug(tf.constant(x), tf.range(n)).numpy()
    cycles = ((y[:, :-1, 0] * y[:, 1:, 0]) < 0).sum(1) / 2  # 8 cycles before
    assert 3 <= cycles.min() and cycles.max() <= 17  # factors in [1/2, 2]
    assert cycles.min() < 6 and cycles.max() > 11  # both slower and faster windows are drawn
    assert np.abs(y).max() <= 1.0 + 1e-5  # interpolation never overshoots
    assert np.all(y[:, :, 1] == 0.0)
    same = Augmenter(scale=1.0, electrode_gain=1.0, electrode_dropout=0.0, noise=0.0, time_stretch=1.0 + 1e-9)
    np.testing.assert_allclose(same(tf.constant(x), tf.range(n)).numpy(), x, atol=1e-5)  # factor 1: identity


def test_sign_flip_flips_whole_windows_at_its_rate():
    x, idx = tf.ones((400, 8, 3)), tf.range(400)
    y = Augmenter(scale=1.0, electrode_gain=1.0, electrode_dropout=0.0, noise=0.0, sign_flip=0.3)(x, idx).numpy()
    assert np.all(np.abs(y) == 1.0) and np.all(y == y[:, :1, :1])  # one sign per window
    assert 0.2 < (y[:, 0, 0] < 0).mean() < 0.4


def test_augmenter_for_reads_the_config():
    cfg = TrainConfig(aug_scale=1.5, aug_electrode_gain=1.1, aug_electrode_dropout=0.2, aug_noise=0.3,
                      aug_time_stretch=1.3, aug_sign_flip=0.4)
    assert augmenter_for(cfg, 11) == Augmenter(1.5, 1.1, 0.2, 0.3, 11, 1.3, 0.4)


@pytest.mark.parametrize("key, value", [("aug_scale", 0.5), ("aug_electrode_gain", 11.0),
                                        ("aug_electrode_dropout", 1.0), ("aug_noise", -0.1),
                                        ("aug_time_stretch", 0.9), ("aug_sign_flip", 1.5),
                                        ("weight_decay", -1e-4), ("restore_best", 1)])
def test_bad_train_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"train.{key}"):
        TrainConfig(**{key: value})


def test_bad_model_values_name_the_key():
    with pytest.raises(ConfigError, match="model.complex_block1"):
        load_config(None, {"model": {"complex_block1": "wide"}})
    with pytest.raises(ConfigError, match="model.complex_shared_filters"):
        ModelConfig(complex_shared_filters=0)
    with pytest.raises(ConfigError, match="complex_block1"):
        build_complex(QuantPolicy(), 64, 4, block1="wide")
    with pytest.raises(ConfigError, match="model.simple_a_filters"):
        ModelConfig(simple_a_filters=1)
    with pytest.raises(ConfigError, match="model.simple_a_first_stride"):
        load_config(None, {"model": {"simple_a_first_stride": 3}})


def test_model_options_reach_only_their_model():
    m = ModelConfig(simple_a_filters=8, simple_a_first_stride=8, complex_shared_filters=4)
    assert m.model_options("simple_A") == {"filters": 8, "first_stride": 8}
    assert m.model_options("simple_B") == {} and m.model_options("simple_C") == {}
    assert m.model_options("complex")["shared_filters"] == 4


def test_train_f1_from_batch_counts():
    y = tf.constant([1, 1, 0, 0])
    logits = tf.constant([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    c = {k: float(v) for k, v in f1_counts("train", y, logits).items()}
    assert c == {"train_tp": 1.0, "train_fp": 1.0, "train_fn": 1.0}
    out = with_train_f1({"total": 0.3, **c})
    assert out == {"total": 0.3, "train_f1": 0.5}
    assert with_train_f1({"a_tp": 0.0, "a_fp": 0.0, "a_fn": 0.0}) == {"a_f1": None}


def test_keep_best_restores_the_best_epoch_ties_keep_the_later():
    m = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
    keep = KeepBest([m], lambda logs: logs.get("val"))
    for epoch, score in enumerate([0.2, 0.9, None, 0.9, 0.5]):
        m.set_weights([np.full((2, 1), epoch, np.float32), np.zeros(1, np.float32)])
        keep(epoch, {"val": score})
    assert keep.restore() == 3
    assert np.all(m.get_weights()[0] == 3)
    assert KeepBest([m], lambda logs: None).restore() is None


def test_keep_best_keeps_the_last_epoch_when_no_epoch_reaches_min_score():
    m = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
    keep = KeepBest([m], lambda logs: logs.get("val"), min_score=0.3)
    for epoch, score in enumerate([0.0, 0.17, 0.0, 0.0]):  # a blind validation seizure: noise peaks
        m.set_weights([np.full((2, 1), epoch, np.float32), np.zeros(1, np.float32)])
        keep(epoch, {"val": score})
    assert keep.restore() == 3 and np.all(m.get_weights()[0] == 3)
    m.set_weights([np.full((2, 1), 4, np.float32), np.zeros(1, np.float32)])
    keep(4, {"val": 0.3})  # one epoch reaches the floor: the best epoch is restored again
    m.set_weights([np.full((2, 1), 9, np.float32), np.zeros(1, np.float32)])
    assert keep.restore() == 4 and np.all(m.get_weights()[0] == 4)


def test_weight_decay_shrinks_kernels_only():
    m = tf.keras.Sequential([tf.keras.layers.Dense(3, input_shape=(2,), bias_initializer="ones")])
    before = [w.copy() for w in m.get_weights()]
    opt = optimizer_for(tf.distribute.get_strategy(), 0.1, m.trainable_variables, 0.5, kernels(m))
    opt.apply_gradients(zip([tf.zeros_like(v) for v in m.trainable_variables], m.trainable_variables))
    k, b = m.get_weights()
    np.testing.assert_allclose(k, before[0] * (1 - 0.1 * 0.5), rtol=1e-5)
    np.testing.assert_array_equal(b, before[1])


def test_fit_classifier_logs_train_f1_and_restores_best_epoch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 16, 2)).astype(np.float32)
    y = (X[:, :, 0].mean(1) > 0).astype(int)
    tf.keras.utils.set_random_seed(0)
    m = tf.keras.Sequential([tf.keras.layers.Flatten(input_shape=(16, 2)), tf.keras.layers.Dense(2)])
    h = fit_classifier(m, X, y, [(2, 1e-2), (3, 1e-2)], batch_size=16, X_val=X[:32], y_val=y[:32],
                       verbose=0, restore_best=[False, True], augment=lambda s: Augmenter(seed=s))
    assert len(h["train_f1"]) == 5 and all(0 <= v <= 1 for v in h["train_f1"])
    assert not any(h["best_epoch"][:2]) and sum(h["best_epoch"][2:]) == 1
    best = 2 + h["best_epoch"][2:].index(True)
    assert h["val_f1"][best] == max(h["val_f1"][2:])


def test_shared_block1_has_no_electrode_specific_weights():
    """The shared first block's weights do not grow with the electrode count; the mixed one's do."""
    pol = QuantPolicy()
    shared = [build_model("complex", pol, n_times=64, n_chans=c, block1="shared").count_params() for c in (4, 16)]
    mixed = [build_model("complex", pol, n_times=64, n_chans=c, block1="mixed").count_params() for c in (4, 16)]
    assert shared[0] == shared[1] and mixed[1] > mixed[0]
    m = build_model("complex", pol, n_times=64, n_chans=4, block1="shared")
    assert m.get_layer("block1_conv").kernel.shape[1] == 1  # one input channel: every electrode alike
    # Permuting the electrodes does not change the output (max and mean over electrodes).
    x = np.random.default_rng(0).normal(size=(3, 64, 4)).astype(np.float32)
    a, b = m(x, training=False).numpy(), m(x[:, :, ::-1], training=False).numpy()
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_pipeline_builds_the_configured_block1():
    for block1 in ("shared", "mixed", "hybrid"):
        opts = dataclasses.replace(ModelConfig(), complex_block1=block1).model_options("complex")
        assert opts == {"block1": block1, "shared_filters": 8}
        names = {l.name for l in build_model("complex", QuantPolicy(), n_times=64, n_chans=4, **opts).layers}
        assert ("block1_mix_conv" in names) == (block1 != "mixed")
        assert ("block1_mixed_conv" in names) == (block1 == "hybrid")
