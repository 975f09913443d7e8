"""The analytic ESTIMATE's rules, one layer kind at a time, and the cascade fit check."""

import math

import pytest

from qcascade.hls import estimate as est
from qcascade.hls.targets import load_target


def conv(**kw):
    """block1 of the complex model: k5 x 128 ch -> 32 filters, stride 4, 513 padded steps -> 128."""
    row = {"name": "block1_conv", "kind": "matmul", "in_steps": 513, "out_steps": 128, "products": 5 * 128 * 32,
           "weight_bits": 16, "n_weights": 5 * 128 * 32, "input_bits": 16, "result_bits": 30,
           "reuse_factor": 1, "strategy": "latency", "outputs": []}
    row.update(kw)
    return row


def test_conv_io_stream_latency_strategy():
    e = est.layer_estimate(conv(), family="zynq7")
    assert e["parallel_products"] == 20480 and e["dsp"] == 20480  # 16x16: one DSP48E1 each
    assert e["latency_cycles"] == 513  # the padded input length, not the 128 outputs
    assert e["bram_18k"] == 0  # Latency-strategy weights are constants in the fabric
    assert e["macs"] == 20480 * 128


def test_conv_io_stream_resource_strategy_weights_in_bram():
    e = est.layer_estimate(conv(reuse_factor=2560, strategy="resource"), family="zynq7")
    assert e["parallel_products"] == 8 and e["dsp"] == 8
    assert e["latency_cycles"] == 513 + 128 * 2560
    # 2560 deep x 8*16 = 128 bit wide weights: 1024x18 -> 3 x 8 = 24 blocks, 512x36 -> 5 x 4 = 20 (best)
    assert e["bram_18k"] == est.memory_cost(2560, 128)["bram_18k"] == 20


def test_dsp_width_rules():
    assert est.dsp_per_product(8, 16) == 0  # narrow operand: LUT multiplier
    assert est.dsp_per_product(16, 16, "zynq7") == 1
    assert est.dsp_per_product(26, 16, "zynq7") == 2 and est.dsp_per_product(26, 16, "zynquplus") == 1
    e = est.layer_estimate(conv(weight_bits=8, input_bits=8, result_bits=20), family="zynq7")
    assert e["dsp"] == 0 and e["lut"] == 20480 * (math.ceil(8 * 8 / 2) + 20)


def test_dense_one_shot():
    row = {"name": "classifier", "kind": "matmul", "in_steps": 1, "out_steps": 1, "products": 128,
           "weight_bits": 16, "n_weights": 128, "input_bits": 11, "result_bits": 25}
    assert est.layer_estimate({**row, "reuse_factor": 1, "strategy": "latency"})["latency_cycles"] == 1
    e = est.layer_estimate({**row, "reuse_factor": 128, "strategy": "resource"})
    assert e["latency_cycles"] == 1 + 128 and e["parallel_products"] == 1


def test_depthwise_counts_one_product_per_input():
    # hls4ml describe_graph: depthwise products = k * channels (not k * channels^2)
    row = {"name": "block2_dw_depthwise", "kind": "matmul", "in_steps": 132, "out_steps": 128, "products": 160,
           "weight_bits": 8, "n_weights": 160, "input_bits": 16, "result_bits": 28, "reuse_factor": 32,
           "strategy": "resource", "outputs": [{"name": "dw", "depth": 2, "width_bits": 32 * 28}]}
    e = est.layer_estimate(row)
    assert e["parallel_products"] == 5
    assert e["ff_fifo"] == 2 * 32 * 28  # the 28-bit depthwise output stream, at its real width


def test_pooling_and_data_movement():
    row = {"name": "a1_pool", "kind": "move", "in_steps": 256, "out_steps": 64, "result_bits": 16,
           "outputs": [{"name": "p", "depth": 64, "width_bits": 16 * 16}]}
    e = est.layer_estimate(row)
    assert e["latency_cycles"] == 256 and e["dsp"] == 0 and e["parallel_products"] == 0
    assert e["bram_18k"] == est.memory_cost(64, 256)["bram_18k"] == 8  # 64 x 256 bit: 512x36 -> 8 blocks
    gap = est.layer_estimate({"name": "gap", "kind": "move", "in_steps": 16, "out_steps": 1})
    assert gap["latency_cycles"] == 16


def test_merge_multiply_shares_multipliers_over_reuse():
    row = {"name": "cbam_t_scale", "kind": "merge", "in_steps": 128, "out_steps": 128, "products": 32,
           "weight_bits": 16, "input_bits": 32, "result_bits": 32, "reuse_factor": 8}  # 16 x 32 bit
    e = est.layer_estimate(row, family="zynquplus")
    assert e["parallel_products"] == 4 and e["dsp"] == 4 * 2 and e["latency_cycles"] == 128 * 8


def test_fifo_memory_rules():
    assert est.memory_cost(2, 2048) == {"bits": 4096, "bram_18k": 0, "lut": 0, "ff": 4096}  # registers
    assert est.memory_cost(16, 32) == {"bits": 512, "bram_18k": 0, "lut": 32, "ff": 0}  # one SRL32 per bit
    big = est.memory_cost(513, 128 * 16)  # a second full copy of the window
    assert big["bram_18k"] == 2 * 57 and big["bits"] == 513 * 2048
    assert est.memory_cost(512, 128 * 16)["bram_18k"] == 57
    with pytest.raises(ValueError):
        est.memory_cost(-1, 3)


def test_model_sum_and_errors():
    rows = [conv(reuse_factor=2560, strategy="resource"),
            {"name": "relu", "kind": "move", "in_steps": 128, "out_steps": 128}]
    m = est.estimate_model(rows, clock_ns=10.0, family="zynq7")
    assert m["latency_cycles"] == 513 + 128 * 2560 + 128 and m["latency_ns"] == 10.0 * m["latency_cycles"]
    assert m["ii"] == 513 + 128 * 2560 and m["max_parallel_products"] == 8
    with pytest.raises(ValueError, match="kind"):
        est.layer_estimate({"name": "x", "kind": "weird", "in_steps": 1, "out_steps": 1})
    with pytest.raises(ValueError, match="in_steps"):
        est.layer_estimate({"name": "x", "kind": "move"})
    with pytest.raises(ValueError):
        est.estimate_model(rows, clock_ns=0)


def _model(latency, dsp, bram, lut, energy, parallel=1):
    return {"latency_cycles": latency, "dsp": dsp, "bram_18k": bram, "lut": lut, "energy_nj": energy,
            "max_parallel_products": parallel}


def test_cascade_fit_margin_and_energy():
    t = load_target("xc7z020").as_dict()
    s, c = _model(200_000, 4, 12, 1000, 10.0), _model(600_000, 20, 100, 20_000, 100.0)
    cas = est.estimate_cascade(s, c, n_times=512, n_chans=128, sample_bits=16, routing_rate=0.25, clock_ns=10.0,
                               window_period_s=1.0, target=t)
    worst = 200_000 + 600_000 + 1024
    assert cas["latency_cycles"] == worst
    assert cas["realtime_margin"] == pytest.approx(1.0 / (worst * 10e-9))
    assert cas["bram_18k"] == 12 + 100 + 57  # + the window buffer
    buf = cas["window_buffer"]
    expected = 10 + buf["write_energy_nj"] + 0.25 * (100 + buf["read_energy_nj"])
    assert cas["energy_nj_per_window"] == pytest.approx(expected)
    assert cas["simple_energy_fraction_of_complex"] == pytest.approx(0.1)
    assert cas["fits"] and cas["problems"] == []
    over = est.estimate_cascade(s, _model(600_000, 300, 100, 20_000, 100.0, parallel=5000), n_times=512,
                                n_chans=128, sample_bits=16, routing_rate=0.25, clock_ns=10.0,
                                window_period_s=1.0, target=t)
    assert not over["fits"] and any("dsp" in p for p in over["problems"])
    assert any("4096" in p for p in over["problems"])
    slow = est.estimate_cascade(_model(10**8, 1, 1, 1, 1.0), c, n_times=512, n_chans=128, sample_bits=16,
                                routing_rate=0.0, clock_ns=10.0, window_period_s=1.0, target=t)
    assert slow["realtime_margin"] < 1 and not slow["fits"]


def test_cascade_counts_the_input_scaling():
    """causal_robust in the top level: SCALE_LANES DSPs, the slower read and the per-window divisions
    in both latencies; without it nothing changes."""
    from qcascade.hls import scaling_hw

    t = load_target("xc7z020").as_dict()
    s, c = _model(200_000, 4, 12, 1000, 10.0), _model(600_000, 20, 100, 20_000, 100.0)
    kw = dict(n_times=512, n_chans=128, sample_bits=16, routing_rate=0.25, clock_ns=10.0, window_period_s=1.0,
              target=t)
    off = est.estimate_cascade(s, c, **kw)
    assert est.estimate_cascade(s, c, scaling=None, **kw) == off and "input_scaling" not in off
    assert off["dsp"] == 24 and off["latency_cycles"] == 800_000 + 1024  # as before the scaling existed
    per_window = 128 * (1 + scaling_hw.COEF_CYCLES_PER_CHAN + scaling_hw.UPDATE_CYCLES_PER_CHAN)
    assert scaling_hw.COEF_CYCLES_PER_CHAN == 17 + 24 + 1 + 2  # 42-bit numerator, a bit a cycle
    for lanes, family in ((1, "zynq7"), (8, "zynq7"), (8, "zynquplus")):
        cost = scaling_hw.scaling_cost(512, 128, lanes, family)
        assert cost["dsp"] == lanes  # 25 x 18: one DSP48E1 / DSP48E2 per lane
        groups = 128 // lanes
        assert cost["read_cycles"] == 512 * groups and cost["divisions"] == 128
        assert cost["extra_cycles"] == 512 * (groups - 1) + groups + per_window
        on = est.estimate_cascade(s, c, scaling=cost, **kw)
        assert on["dsp"] == off["dsp"] + lanes and on["lut"] == off["lut"] + cost["lut"] > off["lut"]
        assert on["latency_cycles"] == off["latency_cycles"] + cost["extra_cycles"]
        assert on["expected_latency_cycles"] == off["expected_latency_cycles"] + cost["extra_cycles"]
        assert on["realtime_margin"] < off["realtime_margin"] and on["input_scaling"] is cost
    partial = scaling_hw.scaling_cost(512, 100, 8)
    assert partial["groups"] == 13 and partial["read_cycles"] == 512 * 13  # the last group is partial


def test_cascade_counts_the_gate_sentinel_with_the_input_scaling():
    """The sentinel's pass over the buffer (every 4th time step, one electrode a cycle) and its update:
    no DSP, its cycles in both latencies, added on top of the input scaling's."""
    from qcascade.hls import scaling_hw, sentinel_hw

    t = load_target("xc7z020").as_dict()
    s, c = _model(200_000, 4, 12, 1000, 10.0), _model(600_000, 20, 100, 20_000, 100.0)
    kw = dict(n_times=512, n_chans=128, sample_bits=16, routing_rate=0.25, clock_ns=10.0, window_period_s=1.0,
              target=t)
    off = est.estimate_cascade(s, c, **kw)
    cost = sentinel_hw.sentinel_cost(512, 128)
    assert cost["extra_cycles"] == 128 * 128 + 128 and cost["dsp"] == 0 and cost["lut"] > 0
    stay = sentinel_hw.sentinel_cost(512, 128, stay=True)  # a second comparison in the same pass
    assert stay["extra_cycles"] == cost["extra_cycles"] and stay["lut"] == cost["lut"] + 29 + 8
    own = sentinel_hw.sentinel_cost(512, 128, own=True)  # a comparator and an 8-bit run counter, same pass
    assert own["extra_cycles"] == cost["extra_cycles"] and own["lut"] == cost["lut"] + 29 + 8
    # A deployed sentinel's dict says which watches it has (the bench re-sizing once left the own watch out).
    assert sentinel_hw.deployed_sentinel_cost({"stay_code": 0, "own_code": 28}, 512, 128)["lut"] == own["lut"]
    assert sentinel_hw.deployed_sentinel_cost({"stay_code": 24, "own_code": 28}, 512, 128)["lut"] == own["lut"] + 37
    assert sentinel_hw.deployed_sentinel_cost({"ratio": 2.5}, 512, 128) == cost
    assert sentinel_hw.deployed_sentinel_cost({}, 512, 128) is None
    assert sentinel_hw.sizes(512, 128, 16, 48) == {"steps": 128, "ll_bits": 23, "step_bits": 17, "prod_bits": 29,
                                                   "count_bits": 8}  # 127 full-scale steps fit in 23 bits
    on = est.estimate_cascade(s, c, sentinel=cost, **kw)
    assert on["dsp"] == off["dsp"] and on["lut"] == off["lut"] + cost["lut"] and on["sentinel"] is cost
    assert on["latency_cycles"] == off["latency_cycles"] + cost["extra_cycles"]
    assert on["expected_latency_cycles"] == off["expected_latency_cycles"] + cost["extra_cycles"]
    scaling = scaling_hw.scaling_cost(512, 128, 1)
    both = est.estimate_cascade(s, c, scaling=scaling, sentinel=cost, **kw)
    assert both["latency_cycles"] == off["latency_cycles"] + cost["extra_cycles"] + scaling["extra_cycles"]
