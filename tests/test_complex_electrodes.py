"""``model.complex_electrodes``: the complex model reads a subset of electrodes through zero kernel rows."""

from __future__ import annotations

import numpy as np
import pytest

from qcascade.complex_electrodes import electrode_scores, top_electrodes
from qcascade.config import ModelConfig
from qcascade.errors import ConfigError
from qcascade.models import build_model, load_model
from qcascade.models.folding import fold_batchnorm
from qcascade.models.summary import convert_and_compare, trained_export_model


class _Windows:
    def __init__(self, X, y, mask):
        self.X, self.y, self.mask = X, y, mask


def _rising(n=80, n_chans=12, seed=0):
    """Windows where electrodes 3 and 7 get faster (higher line length) in ictal windows, 9 slower."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 64, n_chans)).astype(np.float32)
    t = np.arange(64)
    for e, f in ((3, 0.45), (7, 0.35), (9, 0.02)):
        X[y == 1, :, e] += 3 * np.sin(2 * np.pi * f * t)[None]
    X[y == 0, :, 9] += 3 * np.sin(2 * np.pi * 0.45 * t)[None]  # electrode 9: ictal line length *falls*
    mask = np.ones(n_chans, bool)
    mask[5] = False
    return _Windows(X, y, mask)


def test_scores_rank_the_electrodes_whose_line_length_rises():
    ws = _rising()
    scores = electrode_scores(ws)
    assert scores[5] == -np.inf  # a dead electrode is never read
    assert set(np.argsort(-scores)[:2]) == {3, 7}
    assert scores[9] < 0.2  # a fall is not a rise: one-sided
    keep = top_electrodes(scores, 2)
    assert np.flatnonzero(keep).tolist() == [3, 7]
    assert top_electrodes(scores, 99).sum() == 11  # k above the live electrodes: every live one


def test_one_class_windows_keep_every_live_electrode():
    ws = _rising()
    ws.y = np.zeros_like(ws.y)
    assert top_electrodes(electrode_scores(ws), 4).sum() == 4  # ties to the lower index
    assert np.flatnonzero(top_electrodes(electrode_scores(ws), 4)).tolist() == [0, 1, 2, 3]


def test_config_checks():
    assert ModelConfig().complex_electrodes == 16 and ModelConfig().complex_electrode_count() == 16
    assert ModelConfig(complex_electrodes=0).complex_electrode_count() == 0
    for block1 in ("shared", "hybrid"):  # these read every electrode: the default and 0 are accepted
        assert ModelConfig(complex_block1=block1).complex_electrode_count() == 0
        assert ModelConfig(complex_block1=block1, complex_electrodes=0).complex_electrode_count() == 0
        with pytest.raises(ConfigError, match="complex_electrodes: applies to model.complex_block1: mixed only"):
            ModelConfig(complex_electrodes=8, complex_block1=block1)
    with pytest.raises(ConfigError, match="complex_electrodes"):
        ModelConfig(complex_electrodes=-1)
    with pytest.raises(ConfigError, match="at least one true"):
        build_model("complex", n_times=64, n_chans=8, electrode_mask=np.zeros(8, bool))
    with pytest.raises(ConfigError, match="8 booleans"):
        build_model("complex", n_times=64, n_chans=8, electrode_mask=np.ones(7, bool))


def test_unread_electrodes_stay_zero_and_do_not_change_the_output(policy, tmp_path):
    import tensorflow as tf

    mask = np.zeros(8, bool)
    mask[[1, 4]] = True
    model = build_model("complex", policy, n_times=64, n_chans=8, electrode_mask=mask)
    kernel = model.get_layer("block1_conv").kernel
    assert not np.any(kernel.numpy()[:, ~mask, :]) and np.any(kernel.numpy()[:, mask, :])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 64, 8)).astype(np.float32)
    y = tf.one_hot(np.arange(16) % 2, 2)
    opt = tf.keras.optimizers.Adam(1e-2)
    for _ in range(3):  # the constraint is applied by the optimizer after each update
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(y, model(X, training=True)))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    assert not np.any(kernel.numpy()[:, ~mask, :])
    X2 = X.copy()
    X2[:, :, ~mask] = rng.normal(size=(16, 64, int((~mask).sum())))
    export = fold_batchnorm(model, policy)
    np.testing.assert_array_equal(export(X, training=False).numpy(), export(X2, training=False).numpy())
    model.save(tmp_path / "m.h5")
    again = load_model(tmp_path / "m.h5")
    assert again.get_layer("block1_conv").kernel_constraint.mask == mask.tolist()


@pytest.mark.slow
def test_masked_complex_conversion_agrees_with_qkeras(windows, policy, tmp_path):
    """The design of a complex model with an electrode subset is the usual one with zero weights."""
    from qcascade.models.summary import model_inputs

    X = model_inputs("complex", windows)
    mask = np.zeros(X.shape[-1], bool)
    mask[::4] = True
    _, export, _ = trained_export_model("complex", policy, X, windows["y"], epochs=2, electrode_mask=mask)
    assert not np.any(export.get_layer("block1_conv").get_weights()[0][:, ~mask, :])
    res = convert_and_compare("complex", export, policy, X, tmp_path)
    logit_lsb = 2.0 ** -(policy.logit_bits - 1 - policy.logit_int_bits)
    assert res["decision_agreement"] >= 0.99, res
    assert res["max_abs_logit_error"] <= 16 * logit_lsb, res
    assert min(res["keras_class_counts"]) > 0, "decisions are trivially constant"
