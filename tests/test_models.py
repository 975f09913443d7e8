"""Model registry, export-graph constraints, .h5 round trip, BN folding and MAC counting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tensorflow as tf
import qkeras  # noqa: F401

from qcascade.errors import ConfigError  # noqa: E402
from qcascade.models import (MODEL_REGISTRY, SINGLE_CHANNEL, build_calibrated_model, build_model,  # noqa: E402
                             load_model, rebuild_with_int_bits)
from qcascade.models.counting import count_macs, count_params  # noqa: E402
from qcascade.models.folding import fold_batchnorm, has_batchnorm, refresh_batchnorm  # noqa: E402
from qcascade.quant import QuantPolicy  # noqa: E402

# Layer classes hls4ml 1.3.0 converts correctly in io_stream (facts note), plus training-only
# BatchNormalization/Dropout which fold_batchnorm removes.
EXPORTABLE = {"InputLayer", "QActivation", "QConv1D", "QSeparableConv1D", "QDense", "AveragePooling1D",
              "GlobalAveragePooling1D", "GlobalMaxPooling1D", "MaxPooling1D", "Reshape", "Permute",
              "UpSampling1D", "Concatenate", "Multiply", "Add", "Subtract", "ZeroPadding1D"}
TRAINING_ONLY = {"BatchNormalization", "Dropout"}


def _kw(name):
    return {"n_chans": 1} if name in SINGLE_CHANNEL else {}


def _x(name, n=4, seed=0):
    c = 1 if name in SINGLE_CHANNEL else 128
    return np.random.default_rng(seed).normal(size=(n, 512, c)).astype(np.float32)


def _randomize_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            g, b, mu, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2.0, g.shape), rng.normal(0, 0.3, b.shape),
                               rng.normal(0, 0.3, mu.shape), rng.uniform(0.3, 3.0, var.shape)])


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_model_builds_runs_and_is_exportable(name, policy):
    m = build_model(name, policy, **_kw(name))
    y = m(_x(name), training=False).numpy()
    assert y.shape == (4, 2) and np.all(np.isfinite(y))
    classes = {l.__class__.__name__ for l in m.layers}
    assert classes <= EXPORTABLE | TRAINING_ONLY, classes - EXPORTABLE - TRAINING_ONLY
    names = [l.name for l in m.layers]
    assert len(names) == len(set(names)) and "input" not in names  # hls4ml reserves "input"
    assert m.layers[-1].name == "logits"  # logits out, no softmax
    for layer in m.layers:  # no shared layers: every layer is called exactly once
        assert len(layer.inbound_nodes) <= 1, layer.name
    f = fold_batchnorm(m, policy)
    assert not has_batchnorm(f)
    assert {l.__class__.__name__ for l in f.layers} <= EXPORTABLE


def test_build_model_rejects_bad_requests(policy):
    with pytest.raises(ConfigError):
        build_model("nope", policy)
    with pytest.raises(ConfigError):
        build_model("simple_A", policy, n_chans=4)


@pytest.mark.parametrize("name", ["simple_B", "complex"])
def test_h5_round_trip_is_exact(name, policy, tmp_path):
    m = build_model(name, policy, **_kw(name))
    _randomize_bn(m)
    X = _x(name, n=3)
    for model in (m, fold_batchnorm(m, policy)):
        path = tmp_path / f"{model.name}_{len(model.layers)}.h5"
        model.save(path)
        back = load_model(path)
        np.testing.assert_array_equal(model.predict(X, verbose=0), back.predict(X, verbose=0))


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_fold_batchnorm_matches_training_graph(name):
    """Fold math check at 24 bits: every quantizer's LSB is tiny, so the only differences are the
    re-rounding of folded weights (relative 2**-23) and occasional 1-LSB ReLU flips (2**-19): 1e-3 on
    logits of O(1-10) is ~100x the largest difference seen and far below any real fold bug."""
    p24 = QuantPolicy(block1_bits=24, attention_bits=24, dwsep_bits=24, classifier_bits=24,
                      simple_bits=24, bias_bits=24, input_bits=24, logit_bits=24)
    m = build_model(name, p24, **_kw(name))
    _randomize_bn(m, seed=1)
    X = _x(name, n=8, seed=2)
    y, z = m.predict(X, verbose=0), fold_batchnorm(m, p24).predict(X, verbose=0)
    assert np.max(np.abs(y - z)) < 1e-3


@pytest.mark.parametrize("name", sorted(SINGLE_CHANNEL))
def test_fold_at_policy_bits_within_few_logit_lsb(name, policy):
    """At 16 bits the folded weights are re-rounded once: logits differ by a few LSB at most."""
    m = build_model(name, policy, n_chans=1)
    _randomize_bn(m, seed=3)
    X = _x(name, n=64, seed=4)
    y, z = m.predict(X, verbose=0), fold_batchnorm(m, policy).predict(X, verbose=0)
    assert np.max(np.abs(y - z)) <= 4 * 2.0 ** -10
    assert np.mean(y.argmax(1) == z.argmax(1)) >= 0.95


def test_refresh_batchnorm_sets_exact_statistics(policy):
    m = build_model("simple_A", policy, n_chans=1)
    X = _x("simple_A", n=16, seed=5)
    refresh_batchnorm(m, X)
    bn = m.get_layer("a1_bn")
    a = tf.keras.Model(m.inputs, bn.input)(X).numpy().reshape(-1, bn.input.shape[-1])
    np.testing.assert_allclose(bn.moving_mean.numpy(), a.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), a.var(0), rtol=1e-3, atol=1e-6)


def test_rebuild_with_int_bits_keeps_weights(policy):
    m = build_model("simple_A", policy, n_chans=1)
    m2 = rebuild_with_int_bits(m, "simple_A", policy, {"a1_relu": 2}, n_chans=1)
    assert m2.get_layer("a1_relu").quantizer.integer == 2
    np.testing.assert_array_equal(m.get_layer("a2_conv").get_weights()[0],
                                  m2.get_layer("a2_conv").get_weights()[0])


@pytest.mark.parametrize("filters", [8, 12])
def test_simple_a_width_scales_every_conv(policy, filters):
    f = fold_batchnorm(build_model("simple_A", policy, n_chans=1, filters=filters), policy)
    per = {r["name"]: r for r in count_macs(f)["per_layer"]}
    assert per["a1_conv"]["macs"] == 256 * 15 * 1 * filters
    assert per["a2_conv"]["macs"] == 32 * 7 * filters * 2 * filters
    assert per["a3_conv"]["macs"] == 8 * 3 * 2 * filters * 4 * filters
    assert per["classifier"]["macs"] == 4 * filters * 2


@pytest.mark.parametrize("first_stride", [1, 2, 4, 8])
def test_simple_a_first_stride_moves_the_first_decimation_into_the_conv(policy, first_stride):
    f = fold_batchnorm(build_model("simple_A", policy, n_chans=1, first_stride=first_stride), policy)
    per = {r["name"]: r for r in count_macs(f)["per_layer"]}
    assert per["a1_conv"]["macs"] == 512 // first_stride * 15 * 8
    # the later layers see 64 steps whatever the stride
    assert f.get_layer("a2_conv").input_shape[1] == 64 and per["a2_conv"]["macs"] == 32 * 7 * 8 * 16
    assert ("a1_pool" in per) == (first_stride < 8)
    X = np.random.default_rng(0).normal(size=(4, 512, 1)).astype(np.float32)
    assert f.predict(X, verbose=0).shape == (4, 2)


def test_simple_a_first_strides_are_the_divisors_of_its_decimation(policy):
    from qcascade.config import SIMPLE_A_FIRST_STRIDES
    from qcascade.models.simple import A_FIRST_DECIMATION

    assert SIMPLE_A_FIRST_STRIDES == tuple(d for d in range(1, A_FIRST_DECIMATION + 1) if A_FIRST_DECIMATION % d == 0)
    with pytest.raises(ValueError, match="first_stride"):
        build_model("simple_A", policy, n_chans=1, first_stride=3)


def test_count_macs_simple_a(policy):
    f = fold_batchnorm(build_model("simple_A", policy, n_chans=1, filters=16), policy)
    c = count_macs(f)
    per = {r["name"]: r for r in c["per_layer"]}
    # 512 -> stride 2 'same' -> 256 outputs x 16 filters x 15 taps x 1 input channel.
    assert per["a1_conv"]["macs"] == 256 * 15 * 1 * 16 and per["a1_conv"]["n_mult"] == 15 * 16
    assert per["a2_conv"]["macs"] == 32 * 7 * 16 * 32
    assert per["a3_conv"]["macs"] == 8 * 3 * 32 * 64
    assert per["classifier"]["macs"] == 64 * 2 and per["classifier"]["input_length"] == 1
    assert c["total"] == 61440 + 114688 + 49152 + 128
    assert c["params"] == count_params(f)["total"] == sum(r["params"] for r in c["per_layer"])
    assert per["a2_conv"]["weight_bits"] == 16 and per["a2_conv"]["input_bits"] == 16
    assert set(per["a1_conv"]) >= {"name", "class_name", "macs", "params", "n_mult", "weight_bits",
                                   "input_bits", "input_length"}


@pytest.mark.parametrize("block1, steps", [("shared", 65), ("mixed", 128), ("hybrid", 65)])
def test_count_macs_complex_groups(policy, block1, steps):
    f = fold_batchnorm(build_model("complex", policy, block1=block1), policy)
    per = {r["name"]: r for r in count_macs(f)["per_layer"]}
    assert per["block1_conv"]["weight_bits"] == 16
    if block1 == "shared":  # 8 filters of 16 taps on every electrode's 65 outputs, then the 3-tap mix
        assert per["block1_conv"]["macs"] == 128 * 65 * 16 * 8
        assert per["block1_mix_conv"]["weight_bits"] == 16 and per["block1_mix_conv"]["macs"] == 65 * 3 * 16 * 32
    if block1 == "hybrid":  # the shared bank, plus the mixed k5 s4 conv on the padded 520 samples
        assert per["block1_conv"]["macs"] == 128 * 65 * 16 * 8
        assert per["block1_mixed_conv"]["weight_bits"] == 16 and per["block1_mixed_conv"]["macs"] == 130 * 5 * 128 * 32
        assert per["block1_mix_conv"]["macs"] == 65 * 3 * (16 + 32) * 32
    assert per["block2_dw"]["weight_bits"] == 8 and per["block3_dw"]["input_bits"] == 8
    assert per["block2_dw"]["macs"] == steps * (5 * 32 + 32 * 48)
    assert per["cbam_ch_scale"]["macs"] == steps * 32  # elementwise products
    assert 1e6 < count_macs(f)["total"] < 1e7  # "a few M MACs / window" on 2 CPU cores


def test_policy_bits_reach_the_layers():
    p = dataclasses.replace(QuantPolicy(), simple_bits=8)
    m = build_model("simple_A", p, n_chans=1)
    assert m.get_layer("a2_conv").kernel_quantizer_internal.bits == 8
    assert m.get_layer("a2_relu").quantizer.bits == 8
    c = build_model("complex", QuantPolicy())
    assert c.get_layer("block3_dw").depthwise_quantizer_internal.bits == 8
    assert c.get_layer("cbam_ch_mlp2").kernel_quantizer_internal.bits == 16
    assert c.get_layer("cbam_t_sigmoid").quantizer.bits == 16
    assert c.get_layer("block1_conv").kernel_quantizer_internal.bits == 16


def test_calibrated_int_bits_do_not_depend_on_earlier_rng_use(policy):
    """The profiling network's random init decides the integer bits: it must be seeded.

    Regression: unseeded, a fresh run measured other ReLU integer bits for the complex model
    than the run before it (e.g. block1_relu 5 vs 6), so seeded runs were not reproducible.
    """
    import tensorflow as tf

    X = np.random.default_rng(0).normal(size=(32, 512, 8)).astype(np.float32)
    measured = []
    for disturb in (1, 2, 3):
        tf.keras.utils.set_random_seed(disturb)  # what earlier code in the process left behind
        tf.random.uniform([disturb * 7])
        measured.append(build_calibrated_model("complex", policy, X, seed=0, n_times=512, n_chans=8)[1])
    assert measured[0] == measured[1] == measured[2]
    other = [build_calibrated_model("complex", policy, X, seed=s, n_times=512, n_chans=8)[1] for s in (1, 2, 3)]
    assert any(ib != measured[0] for ib in other), "int bits insensitive to the init: test cannot fail"
    from qcascade.models import calibrate_int_bits

    assert calibrate_int_bits("complex", policy, X, seed=0, n_times=512, n_chans=8) == measured[0]
    assert calibrate_int_bits("complex", policy, X, seed=1, n_times=512, n_chans=8) == other[0]


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_dropout_draws_from_a_seeded_generator(name, policy):
    """Dropout masks come from ``tf.random.Generator`` state (a variable), seeded per run.

    Regression: with Keras 2's default legacy stateful dropout op, fresh runs with one seed
    trained identical complex models for 5 epochs and then drew other masks (stage-2 loss apart
    in the 5th decimal from epoch 6 in three concurrent runs; identical with dropout 0).
    """
    import tensorflow as tf

    kw = {} if name in SINGLE_CHANNEL else {"n_chans": 8}
    draws = []
    for _ in range(2):
        tf.keras.utils.set_random_seed(0)
        model = build_model(name, policy, n_times=512, **kw)
        drops = [lay for lay in model.layers if isinstance(lay, tf.keras.layers.Dropout)]
        for lay in drops:
            assert lay._random_generator._rng_type == "stateful", lay.name
        x = tf.ones((4, 512, 1 if name in SINGLE_CHANNEL else 8))
        draws.append([model(x, training=True).numpy() for _ in range(3)])
    for a, b in zip(*draws):
        np.testing.assert_array_equal(a, b)
    if any(isinstance(lay, tf.keras.layers.Dropout) for lay in model.layers):
        assert not np.array_equal(draws[0][0], draws[0][1]), "masks repeat every call: not a fresh draw"


@pytest.mark.parametrize("name", ["simple_A", "complex"])
def test_building_without_autograph_gives_the_same_model(name, policy):
    """build_model traces the layers unconverted (faster); the model must compute the same function
    as one built with AutoGraph's conversion, in training and in inference mode."""
    tf.keras.utils.set_random_seed(3)
    converted = MODEL_REGISTRY[name](policy, **_kw(name))  # AutoGraph on: Keras' default
    tf.keras.utils.set_random_seed(3)
    plain = build_model(name, policy, **_kw(name))
    assert [w.name for w in converted.weights] == [w.name for w in plain.weights]
    rng = np.random.default_rng(4)
    weights = [rng.normal(0, 0.5, w.shape).astype(np.float32) if "variance" not in w.name
               else rng.uniform(0.5, 2.0, w.shape).astype(np.float32) for w in converted.weights]
    converted.set_weights(weights)
    plain.set_weights(weights)
    x = _x(name, seed=5)
    for training in (False, True):
        a, b = converted(x, training=training).numpy(), plain(x, training=training).numpy()
        assert np.abs(a).sum() > 0 and np.array_equal(a, b), training
