"""Target profiles, ReuseFactor sizing from the real-time budget, safe FIFO depths."""

import numpy as np
import pytest

from qcascade.config import load_config
from qcascade.errors import ConfigError
from qcascade.hls import sizing
from qcascade.hls.estimate import MAX_PARALLEL_PRODUCTS, estimate_model
from qcascade.hls.targets import DEFAULT_TARGET, available_targets, load_target, resolve_part


def test_target_profiles():
    assert {"xc7z020", "xczu3eg", "u250"} <= set(available_targets())
    z = load_target("xc7z020")
    assert (z.part, z.dsp, z.bram_18k, z.lut) == ("xc7z020clg400-1", 220, 280, 53200)
    assert load_target("xczu3eg").part == "xczu3eg-sbva484-1-e" and load_target("u250").dsp == 12288
    assert load_config().hls.target == DEFAULT_TARGET == "xc7z020"


def test_target_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown target 'nope'"):
        load_config(overrides={"hls": {"target": "nope"}})
    with pytest.raises(ConfigError, match="hls.part.*disagrees"):
        load_config(overrides={"hls": {"target": "xc7z020", "part": "xcu250-figd2104-2L-e"}})
    assert resolve_part(load_target("u250"), "xcu250-figd2104-2L-e") == "xcu250-figd2104-2L-e"
    (tmp_path / "bad.yaml").write_text("name: bad\npart: x\nfamily: y\ndsp: -1\nbram_18k: 1\nlut: 1\nff: 1\n"
                                       "clock_period_ns: 5\n")
    with pytest.raises(ConfigError, match="bad.yaml: dsp"):
        load_target("bad", tmp_path)
    (tmp_path / "short.yaml").write_text("name: short\n")
    with pytest.raises(ConfigError, match="missing keys"):
        load_target("short", tmp_path)


def test_valid_reuse_factors_are_hls4ml_s():
    rfs = sizing.valid_reuse_factors(640, 32)  # block1: k5 x 128 channels -> 32 filters
    assert rfs[0] == 1 and rfs[-1] == 640 * 32
    assert 2560 in rfs and 5120 in rfs and 3000 not in rfs and 700 not in rfs


def _row(name, inputs, outputs, cls="Activation", steps=(128, 128), kind="move", **kw):
    return {"name": name, "config_name": name, "class_name": cls, "kind": kind, "in_steps": steps[0],
            "out_steps": steps[1], "inputs": inputs,
            "outputs": [{"name": o, "depth": steps[1], "width_bits": 512} for o in outputs], **kw}


def test_fifo_depths_chain_and_fork_join():
    rows = [_row("inp", [], [], cls="Input", kind="input"),
            _row("pad", ["inp"], ["pad"], cls="ZeroPadding1D", steps=(512, 513)),
            _row("conv", ["pad"], ["conv"], cls="Conv1D", steps=(513, 128)),
            _row("clone", ["conv"], ["cpy1", "cpy2"], cls="Clone"),
            _row("gap", ["cpy1"], ["gap"], cls="GlobalPooling1D", steps=(128, 1)),
            _row("bcast", ["gap"], ["bcast"], cls="Resize", steps=(1, 128)),
            _row("scale", ["cpy2", "bcast"], ["scale"], cls="Merge"),
            _row("relu", ["scale"], ["relu"])]
    d = sizing.fifo_depths(rows)
    # The direct branch must buffer the whole tensor while global pooling reads it.
    assert d["cpy2"] == 128
    # Chains and streams behind the barrier are consumed as produced.
    assert d["pad"] == d["conv"] == d["cpy1"] == d["bcast"] == d["relu"] == sizing.CHAIN_FIFO_DEPTH
    assert d["gap"] == 1  # never deeper than hls4ml's own depth
    # Two streaming branches meeting again (no barrier): each branch's stream into the join keeps its
    # depth; the streams before it on the branch are chains (they drain into the full one).
    rows2 = rows[:4] + [_row("c2", ["cpy1"], ["c2"], cls="Conv1D"), _row("add", ["c2", "cpy2"], ["add"], cls="Merge")]
    d2 = sizing.fifo_depths(rows2)
    assert d2["c2"] == d2["cpy2"] == 128
    assert d2["cpy1"] == d2["conv"] == sizing.CHAIN_FIFO_DEPTH
    # The hybrid first block: a long barrier-free branch beside a transpose; only its last stream,
    # the branch's whole (short) output, is deep.
    rows3 = rows[:3] + [_row("fork", ["conv"], ["f1", "f2"], cls="Clone", steps=(128, 128)),
                        _row("perm", ["f1"], ["perm"], cls="Transpose", steps=(128, 128)),
                        _row("emax", ["perm"], ["emax"], cls="GlobalPooling1D", steps=(128, 1)),
                        _row("mconv", ["f2"], ["mconv"], cls="Conv1D", steps=(128, 64)),
                        _row("mpool", ["mconv"], ["mpool"], cls="Pooling1D", steps=(64, 32)),
                        _row("hstack", ["emax", "mpool"], ["hstack"], cls="Concatenate", steps=(32, 32))]
    d3 = sizing.fifo_depths(rows3)
    assert d3["mpool"] == 32
    assert d3["f1"] == d3["f2"] == d3["mconv"] == sizing.CHAIN_FIFO_DEPTH


def _tiny_model():
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QDense, QSeparableConv1D, quantized_bits

    q = quantized_bits(16, 5, alpha=1)
    inp = tf.keras.Input((64, 4), name="x")
    x = QActivation(quantized_bits(16, 5, alpha=1), name="x_q")(inp)
    x = QConv1D(8, 5, strides=2, padding="same", kernel_quantizer=q, bias_quantizer=q, name="c1")(x)
    x = QActivation("quantized_relu(16,6)", name="c1_relu")(x)
    x = QSeparableConv1D(8, 3, padding="same", depthwise_quantizer=quantized_bits(8, 1, alpha=1),
                         pointwise_quantizer=quantized_bits(8, 1, alpha=1), bias_quantizer=q, name="sep")(x)
    x = QActivation("quantized_relu(8,3)", name="sep_relu")(x)
    x = tf.keras.layers.AveragePooling1D(2, name="pool")(x)
    x = tf.keras.layers.GlobalAveragePooling1D(name="gap")(x)
    out = QDense(2, kernel_quantizer=q, bias_quantizer=q, name="logits")(x)
    return tf.keras.Model(inp, out)


def _hls_cfg(model, rf=None):
    from qcascade.hls.convert import make_hls_config
    from qcascade.quant import QuantPolicy

    X = np.random.default_rng(0).normal(size=(32, 64, 4)).astype("float32")
    cfg = make_hls_config(model, QuantPolicy(), X, project_name="tiny", namespace="tiny_ns")
    for name, value in (rf or {}).items():
        cfg["HLSConfig"]["LayerName"].setdefault(name, {}).update(ReuseFactor=value, Strategy="Resource")
    return cfg, X


def _convert(model, cfg, out_dir):
    import hls4ml

    return hls4ml.converters.convert_from_keras_model(
        model, output_dir=str(out_dir), project_name="tiny", namespace="tiny_ns", backend="Vitis",
        hls_config=cfg["HLSConfig"], io_type="io_stream", part=cfg["Part"])


def test_describe_graph_and_choose_reuse(tmp_path):
    model = _tiny_model()
    cfg, _ = _hls_cfg(model)
    rows = sizing.describe_graph(_convert(model, cfg, tmp_path / "p"), "simple")
    by = {r["name"]: r for r in rows}
    assert by["c1"]["in_steps"] == 64 + 3 and by["c1"]["out_steps"] == 32  # the padded input length is read
    assert by["c1"]["products"] == 5 * 4 * 8 and (by["c1"]["n_in"], by["c1"]["n_out"]) == (20, 8)
    assert by["sep_depthwise"]["products"] == 3 * 8 and by["sep_depthwise"]["config_name"] == "sep"
    assert by["sep_pointwise"]["products"] == 8 * 8 and by["sep_pointwise"]["config_name"] == "sep"
    assert by["sep_depthwise"]["result_bits"] > 16  # the wide depthwise output type, not the 16-bit input
    assert by["x"]["kind"] == "input" and by["x"]["outputs"] == []  # a port, not a FIFO
    tables = {"simple": rows}
    loose = sizing.choose_reuse(tables, budget_cycles=1e9, n_times=64, clock_ns=10.0)
    assert loose["meets_budget"] and loose["plan"][("simple", "c1")] == 160  # largest valid: n_in * n_out
    assert loose["plan"][("simple", "sep")] in sizing.valid_reuse_factors(24, 8)
    tight = sizing.choose_reuse(tables, budget_cycles=2000, n_times=64, clock_ns=10.0)
    assert tight["meets_budget"] and tight["latency_cycles"] <= 2000
    assert tight["plan"][("simple", "c1")] < 160
    fixed = sizing.choose_reuse(tables, budget_cycles=2000, n_times=64, clock_ns=10.0,
                                fixed={("simple", "c1"): 160})
    assert fixed["plan"][("simple", "c1")] == 160
    impossible = sizing.choose_reuse(tables, budget_cycles=10, n_times=64, clock_ns=10.0)
    assert not impossible["meets_budget"]
    assert estimate_model(rows, 10.0)["max_parallel_products"] <= MAX_PARALLEL_PRODUCTS


def test_parallel_products_capped():
    row = {"name": "big", "config_name": "big", "kind": "matmul", "class_name": "Conv1D", "in_steps": 513,
           "out_steps": 128, "products": 20480, "n_in": 640, "n_out": 32, "weight_bits": 16, "n_weights": 20480,
           "input_bits": 16, "result_bits": 30, "outputs": [], "inputs": []}
    groups = sizing.layer_groups({"complex": [row]})
    assert min(groups[("complex", "big")]["choices"]) >= 5  # 20480 / 5 = 4096
    res = sizing.choose_reuse({"complex": [row]}, budget_cycles=1, n_times=512, clock_ns=5.0)
    assert not res["meets_budget"] and 20480 / res["plan"][("complex", "big")] <= MAX_PARALLEL_PRODUCTS


@pytest.mark.slow
def test_resource_strategy_large_reuse_compiles_and_agrees(tmp_path):
    """Resource strategy with large ReuseFactors (io_stream conv, separable, dense) is bit-exact with Latency."""
    model = _tiny_model()
    cfg_lat, X = _hls_cfg(model)
    cfg_res, _ = _hls_cfg(model, {"c1": 160, "sep": 8, "logits": 16})
    lat, res = _convert(model, cfg_lat, tmp_path / "lat"), _convert(model, cfg_res, tmp_path / "res")
    assert res.graph["c1"].get_attr("reuse_factor") == 160 and res.graph["c1"].get_attr("strategy") == "resource"
    lat.compile()
    res.compile()
    y_lat = lat.predict(np.ascontiguousarray(X[:16], dtype=np.float64))
    y_res = res.predict(np.ascontiguousarray(X[:16], dtype=np.float64))
    np.testing.assert_array_equal(y_res, y_lat)
    y_k = model.predict(X[:16], verbose=0)
    assert np.mean(np.argmax(y_k, 1) == np.argmax(y_res, 1)) >= 0.9


def _merge_tables(rf=8):
    """One configurable layer (an elementwise Multiply of 8 channels, 100 steps: latency 100 * RF)."""
    row = {"name": "mul", "config_name": "mul", "class_name": "Merge", "kind": "merge", "in_steps": 100,
           "out_steps": 100, "products": 8, "weight_bits": 16, "input_bits": 16, "result_bits": 32,
           "reuse_factor": rf, "strategy": "resource", "inputs": [], "outputs": []}
    return {"complex": [row]}


def test_scale_lanes_from_the_budget():
    """SCALE_LANES: one lane (one multiplier) when the budget allows, more only when the layers cannot
    absorb the scaling's cycles; a budget no lane count meets is reported."""
    from qcascade.hls.scaling_hw import scaling_cost

    n_times, n_chans = 64, 8
    extra = {lanes: scaling_cost(n_times, n_chans, lanes)["extra_cycles"] for lanes in (1, 2, 4, 8)}
    assert extra[1] > extra[2] > extra[4] > extra[8] > 0  # the divisions remain at any lane count
    kw = dict(n_times=n_times, n_chans=n_chans, clock_ns=10.0)
    fast = 2 * n_times + 100  # the layer at ReuseFactor 1

    loose = sizing.choose_scaled(_merge_tables(), budget_cycles=1e9, **kw)
    assert loose["scale_lanes"] == 1 and loose["meets_budget"] and loose["plan"][("complex", "mul")] == 8
    # The scaling's cycles are counted when sizing: without them ReuseFactor 8 would do.
    budget = 2 * n_times + 200 + extra[1]
    assert sizing.choose_reuse(_merge_tables(), budget_cycles=budget, n_times=n_times,
                               clock_ns=10.0)["plan"][("complex", "mul")] == 8
    absorbed = sizing.choose_scaled(_merge_tables(), budget_cycles=budget, **kw)
    assert absorbed["scale_lanes"] == 1 and absorbed["plan"][("complex", "mul")] == 2
    assert absorbed["latency_cycles"] == 2 * n_times + 200 + extra[1]
    # Tight: even at ReuseFactor 1 one lane is too slow; 4 lanes are the fewest that meet it.
    tables = _merge_tables()
    tight = sizing.choose_scaled(tables, budget_cycles=fast + extra[4], **kw)
    assert tight["scale_lanes"] == 4 and tight["meets_budget"] and tight["plan"][("complex", "mul")] == 1
    # The built design's tables give the same choice (what the top level and hw_summary use).
    again = sizing.scale_lanes_for(sizing.cascade_latency(tables, n_times, 10.0), budget_cycles=fast + extra[4],
                                   n_times=n_times, n_chans=n_chans)
    assert again["lanes"] == 4 and again["meets_budget"]
    impossible = sizing.choose_scaled(_merge_tables(), budget_cycles=fast + extra[8] - 1, **kw)
    assert impossible["scale_lanes"] == 8 and not impossible["meets_budget"]
    assert impossible["latency_cycles"] == fast + extra[8]
    none = sizing.scale_lanes_for(fast, budget_cycles=fast, n_times=n_times, n_chans=n_chans)
    assert none["lanes"] == 8 and not none["meets_budget"] and none["latency_cycles"] > none["budget_cycles"]
    # Powers of two up to the electrodes, also when they are not a power of two themselves.
    assert sizing.scale_lanes_for(0, budget_cycles=0, n_times=64, n_chans=100)["lanes"] == 64
