"""Quantization policy: one bit width per group -> identical QKeras and ap_fixed grids."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from qcascade.errors import ConfigError
from qcascade.quant import (GROUPS, QuantPolicy, ap_fixed_for, ap_fixed_str, int_bits_for_range,
                            logit_lsb)


def test_quant_module_does_not_import_tensorflow():
    code = "import sys, qcascade.quant; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_policy_defaults_and_groups():
    p = QuantPolicy()
    assert {g: p.bits(g) for g in GROUPS} == {"block1": 16, "attention": 16, "dwsep": 8,
                                              "classifier": 16, "simple": 16}
    assert QuantPolicy.from_dict(p.to_dict()) == p
    with pytest.raises(ConfigError):
        QuantPolicy.from_dict({"dwsep_bits": 8, "typo_bits": 3})
    with pytest.raises(ConfigError):
        QuantPolicy(dwsep_bits=1)
    with pytest.raises(ConfigError):
        QuantPolicy(simple_bits="16")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        p.bits("nope")


@pytest.mark.parametrize("max_abs,expected", [(0.0, 0), (0.3, 0), (0.999, 0), (1.0, 1), (1.5, 1),
                                              (2.0, 2), (3.9, 2), (4.0, 3), (100.0, 7)])
def test_int_bits_for_range(max_abs, expected):
    # quantized_bits(b, i) holds [-2**i, 2**i - lsb]: the value must be strictly below 2**i.
    assert int_bits_for_range(max_abs) == expected


def test_int_bits_headroom_and_errors():
    assert int_bits_for_range(3.0, headroom=1.5) == 3
    with pytest.raises(ValueError):
        int_bits_for_range(float("nan"))


def test_ap_fixed_strings():
    p = QuantPolicy()
    assert ap_fixed_for(p, "dwsep", 3) == "fixed<8,4,RND_CONV,SAT>"
    assert ap_fixed_for(p, "block1", 5) == "fixed<16,6,RND_CONV,SAT>"
    assert ap_fixed_str(16, 4, signed=False) == "ufixed<16,4,RND_CONV,SAT>"
    assert logit_lsb(p) == 2.0 ** -10


@pytest.mark.parametrize("bits,int_bits", [(16, 0), (16, 5), (8, 3), (8, 0)])
def test_qkeras_grid_equals_ap_fixed_grid(bits, int_bits):
    """quantized_bits(b, i, alpha=1) rounds to the ap_fixed<b, i+1> grid and saturates."""
    import qkeras  # noqa: F401
    from qcascade.quant import quantized_bits_

    q = quantized_bits_(bits, int_bits)
    lsb = 2.0 ** -(bits - 1 - int_bits)
    lo, hi = -(2.0 ** int_bits), 2.0 ** int_bits - lsb
    x = np.random.default_rng(0).uniform(2 * lo, 2 * hi, 4000).astype(np.float32)
    y = np.asarray(q(x))
    assert np.all(y >= lo) and np.all(y <= hi)
    np.testing.assert_allclose(y / lsb, np.round(y / lsb), atol=1e-6)
    inside = (x > lo) & (x < hi)
    assert np.max(np.abs(y[inside] - x[inside])) <= lsb / 2 + 1e-7
    np.testing.assert_allclose(y[x >= hi], hi)
    np.testing.assert_allclose(y[x <= lo], lo)


def test_hls4ml_reads_the_same_types():
    """hls4ml's own quantizer->type mapping agrees with ours (incl. RND_CONV / SAT)."""
    import hls4ml  # noqa: F401
    from hls4ml.utils.config import _get_precision_from_quantizer

    from qcascade.quant import quantized_bits_, quantizer_type, relu_quantizer, sigmoid_quantizer

    p = QuantPolicy()
    for q in (quantized_bits_(16, 5), quantized_bits_(8, 2), relu_quantizer(p, "dwsep", 3),
              relu_quantizer(p, "simple", 4), sigmoid_quantizer(p)):
        ours = quantizer_type(q)
        theirs = _get_precision_from_quantizer({"class_name": q.__class__.__name__, "config": q.get_config()})
        assert (theirs.width, theirs.integer, theirs.signed) == (ours.integer + ours.frac, ours.integer,
                                                                 ours.signed)
        assert "RND_CONV" in str(theirs.rounding_mode) and "SAT" in str(theirs.saturation_mode)


def test_profile_ranges_and_relu_int_bits():
    import qkeras  # noqa: F401
    import tensorflow as tf
    from qkeras import QActivation

    from qcascade.quant import profile_ranges, relu_int_bits_from_profile, relu_quantizer

    p = QuantPolicy()
    inp = tf.keras.Input((16, 1))
    x = tf.keras.layers.Conv1D(2, 3, padding="same", name="c", kernel_initializer="ones")(inp)
    out = QActivation(relu_quantizer(p, "simple", 6), name="c_relu")(x)
    m = tf.keras.Model(inp, out)
    X = np.full((4, 16, 1), 2.0, np.float32)
    prof = profile_ranges(m, X)
    assert prof["c"]["out_max_abs"] == pytest.approx(6.0)
    assert prof["c"]["weight_max_abs"] == pytest.approx(1.0)
    ib = relu_int_bits_from_profile(prof, p, m)
    assert ib == {"c_relu": int_bits_for_range(6.0, p.headroom)} == {"c_relu": 4}
