"""Tests of the analytic ESTIMATE (qcascade.hls.estimate) on tiny layer lists computed by hand."""

from __future__ import annotations

import pytest

from qcascade.hls.estimate import estimate_from_layers

# io_stream model: conv(16b x 16b) -> relu -> conv(8b weights x 6b input) -> dense(16b x 16b), RF = 2.
LAYERS = [
    {"name": "conv1", "class_name": "QConv1D", "n_mult": 3 * 1 * 8, "weight_bits": 16, "input_bits": 16,
     "input_length": 130, "n_out_channels": 8},
    {"name": "relu1", "class_name": "QActivation", "n_mult": 0, "weight_bits": None, "input_bits": None,
     "input_length": 128},
    {"name": "conv2", "class_name": "QConv1D", "n_mult": 3 * 8 * 8, "weight_bits": 8, "input_bits": 6,
     "input_length": 130},
    {"name": "dense", "class_name": "QDense", "n_mult": 8 * 1, "weight_bits": 16, "input_bits": 16,
     "input_length": None},
]


def test_estimate_by_hand():
    est = estimate_from_layers(LAYERS, reuse_factor=2, clock_ns=5.0)
    per = {layer["name"]: layer for layer in est["per_layer"]}
    # conv1: 24 products / RF 2 = 12 multipliers, 16x16 -> 1 DSP each; 130 steps x II 2 = 260 cycles.
    assert (per["conv1"]["parallel_mults"], per["conv1"]["dsp"], per["conv1"]["lut_mult"]) == (12, 12, 0)
    assert per["conv1"]["latency_cycles"] == 260
    # relu: no products, II 1: 128 cycles.
    assert (per["relu1"]["dsp"], per["relu1"]["ii"], per["relu1"]["latency_cycles"]) == (0, 1, 128)
    # conv2: 192 / 2 = 96 multipliers, 8x6 bits -> LUTs, ceil(48 / 2) = 24 LUTs each = 2304.
    assert (per["conv2"]["on_dsp"], per["conv2"]["dsp"], per["conv2"]["lut_mult"]) == (False, 0, 2304)
    assert per["conv2"]["latency_cycles"] == 260
    # dense (one shot): 8 / 2 = 4 DSPs, RF + 1 = 3 cycles.
    assert (per["dense"]["dsp"], per["dense"]["latency_cycles"], per["dense"]["streamed"]) == (4, 3, False)

    assert est["source"] == "ESTIMATE"
    assert (est["dsp"], est["lut_mult"]) == (16, 2304)
    assert est["latency_cycles"] == 260 + 128 + 260 + 3 == 651
    assert est["latency_ns"] == pytest.approx(651 * 5.0)
    assert est["latency_cycles_lower_bound"] == 260 + 3  # slowest streamed layer + one-shot layers
    assert est["latency_ns_lower_bound"] == pytest.approx(263 * 5.0)
    assert (est["latency_best"], est["latency_worst"], est["ii"]) == (263, 651, 260)
    assert (est["lut"], est["ff"], est["bram_18k"], est["clock_est_ns"]) == (None, None, None, None)
    assert est["rules"] and all(isinstance(rule, str) for rule in est["rules"])


def test_wide_product_takes_several_dsps_and_known_ii():
    # 32-bit input x 16-bit weight: ceil(32/27) * ceil(16/18) = 2 DSP48E2 per product.
    layer = {"name": "c", "class_name": "Conv1D", "n_mult": 10, "weight_bits": 16, "input_bits": 32,
             "input_length": 50, "ii": 3}
    est = estimate_from_layers([layer], reuse_factor=1, clock_ns=4.0)
    assert (est["dsp"], est["per_layer"][0]["dsp_per_mult"]) == (20, 2)
    assert est["latency_cycles"] == est["latency_cycles_lower_bound"] == 150  # achieved II 3 given


def test_threshold_is_exclusive():
    # 10 x 16 bits: not both > 10 -> LUTs, ceil(160 / 2) = 80 LUTs per multiplier, RF 4 -> 1 multiplier.
    layer = {"name": "d", "class_name": "Dense", "n_mult": 4, "weight_bits": 10, "input_bits": 16,
             "input_length": None}
    est = estimate_from_layers([layer], reuse_factor=4, clock_ns=5.0)
    assert (est["dsp"], est["lut_mult"], est["latency_cycles"]) == (0, 80, 5)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="reuse_factor"):
        estimate_from_layers(LAYERS, reuse_factor=0, clock_ns=5.0)
    with pytest.raises(ValueError, match="'conv1'.*'input_length'"):
        estimate_from_layers([{"name": "conv1", "n_mult": 3}], reuse_factor=1, clock_ns=5.0)
    assert estimate_from_layers([], reuse_factor=1, clock_ns=5.0)["latency_cycles"] == 0
