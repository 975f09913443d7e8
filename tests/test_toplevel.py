"""Generated cascade top level: validation, gate arithmetic, guard rewriting, g++ -Werror.

``build_tiny_projects`` (also used by test_csim.py and test_synth.py) converts two tiny QKeras
models with hls4ml directly, so these tests do not depend on qcascade.hls.convert.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qcascade.errors import ConfigError
from qcascade.hls import toplevel as tl

LOGIT = "fixed<16,6,RND,SAT>"


def tiny_model(n_times: int, n_chans: int, name: str, seed: int):
    """input (T, C) -> QConv1D(4, stride 4) -> quantized ReLU -> GAP -> QDense(2) logits."""
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QDense, quantized_bits, quantized_relu

    tf.keras.utils.set_random_seed(seed)
    q = quantized_bits(8, 0, alpha=1)
    inp = tf.keras.layers.Input((n_times, n_chans), name=f"{name}_in")
    x = QConv1D(4, 8, strides=4, kernel_quantizer=q, bias_quantizer=q, name=f"{name}_conv")(inp)
    x = QActivation(quantized_relu(8, 3), name=f"{name}_relu")(x)
    x = tf.keras.layers.GlobalAveragePooling1D(name=f"{name}_gap")(x)
    out = QDense(2, kernel_quantizer=q, bias_quantizer=q, name=f"{name}_out")(x)
    return tf.keras.Model(inp, out)


def hls_config(model):
    """Explicit precisions (see the shared hls4ml notes): wide pooling, saturating logits."""
    import hls4ml

    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis")
    for name, layer in cfg["LayerName"].items():
        prec = layer.setdefault("Precision", {})
        if name.endswith("_in"):
            prec["result"] = "fixed<16,6>"
        if name.endswith("_gap"):
            prec.update(accum="fixed<32,16>", result="fixed<24,8>")
        if name.endswith("_out") or name.endswith("_out_linear"):
            prec["result"] = LOGIT
    return cfg


def build_tiny_projects(root: Path, n_times: int = 64, n_chans: int = 4, compile: bool = False,
                        swap_simple_classes: bool = False) -> dict:
    """Convert a tiny simple (T, 1) and complex (T, n_chans) model; return models and folders.

    ``swap_simple_classes``: the simple model's two logits trade places (its "interictal" becomes
    "ictal"), so that a test can reach the simple model's other class.
    """
    import hls4ml

    out = {}
    for role, chans, seed in (("simple", 1, 1), ("complex", n_chans, 2)):
        model = tiny_model(n_times, chans, role, seed)
        if role == "simple" and swap_simple_classes:
            dense = model.get_layer("simple_out")
            kernel, bias = dense.get_weights()
            dense.set_weights([kernel[:, ::-1], bias[::-1]])
        hm = hls4ml.converters.convert_from_keras_model(
            model, hls_config=hls_config(model), output_dir=str(root / role), project_name=f"{role}_mdl",
            namespace=f"{role}_ns", backend="Vitis", io_type="io_stream")
        hm.compile() if compile else hm.write()
        out[role] = {"keras": model, "hls": hm, "prj": root / role, "project": f"{role}_mdl", "namespace": f"{role}_ns"}
    return out


def toplevel_kwargs(projects: dict, n_times: int, n_chans: int, electrode: int = 1, tau: float = 0.5) -> dict:
    s, c = projects["simple"], projects["complex"]
    return dict(simple_prj=s["prj"], simple_project=s["project"], simple_namespace=s["namespace"],
                complex_prj=c["prj"], complex_project=c["project"], complex_namespace=c["namespace"],
                electrode=electrode, tau=tau, n_times=n_times, n_chans=n_chans, config_hash="abc123")


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    return build_tiny_projects(tmp_path_factory.mktemp("prj"), 64, 4)


@pytest.fixture(scope="module")
def generated(projects, tmp_path_factory):
    out = tmp_path_factory.mktemp("top")
    return out, tl.generate_toplevel(out, **toplevel_kwargs(projects, 64, 4))


def test_generated_files_and_manifest(generated):
    out, paths = generated
    for key in ("cascade_top_h", "cascade_top_cpp", "cascade_tb_cpp", "build_csim_sh", "manifest", "tb_input"):
        assert paths[key].is_file(), key
    header = paths["cascade_top_h"].read_text()
    assert "config_hash: abc123" in header
    man = tl.load_manifest(out)
    assert man["simple"]["result"]["elem"]["width"] == 16 and man["simple"]["result"]["elem"]["integer"] == 6
    assert man["window_buffer"] == {"bits": 64 * 4 * 16, "word_bits": 64, "depth": 64, "bram18k_estimate": 2,
                                    "bram18k_lower_bound": 1}
    assert man["gate"]["raw"] == math.floor(2 * math.atanh(0.5) * 2**10)


def test_include_guards_are_unique(generated):
    out, _ = generated
    guards = {}
    for prj in ("simple_mdl", "complex_mdl"):
        for h in (out / "models" / prj / "firmware").glob("**/*.h"):
            if "ap_types" in h.parts or ("nnet_utils" in h.parts and h.name != "nnet_code_gen.h"):
                continue  # shared, identical library headers keep their guards
            m = re.search(r"^#ifndef (\w+)\n#define \1", h.read_text(), re.M)
            assert m, h
            assert m.group(1) not in guards, (h, guards.get(m.group(1)))
            guards[m.group(1)] = h
    assert "QCASCADE_SIMPLE_NS_DEFINES_H_" in guards and "QCASCADE_COMPLEX_NS_DEFINES_H_" in guards
    w = (out / "models/simple_mdl/firmware/weights/w2.h").read_text()
    assert "#if !defined(__SYNTHESIS__) && !defined(QCASCADE_WEIGHTS_INLINE)" in w


def test_generated_cpp_compiles_with_werror(generated):
    out, _ = generated
    ap = out / "models/simple_mdl/firmware/ap_types"
    for src in ("cascade_top.cpp", "cascade_tb.cpp"):
        # -Wno-unknown-pragmas: the HLS pragmas are for Vitis, g++ ignores them.
        proc = subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
                               "-fsyntax-only", "-isystem", str(ap), "-I", str(out), src],
                              cwd=out, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("field,value", [
    ("simple_project", "x; system(\"rm -rf /\")"), ("simple_namespace", "a b"), ("complex_namespace", "std"),
    ("complex_project", "simple_mdl"), ("config_hash", "abc\n#include <evil>"), ("electrode", 4),
    ("electrode", True), ("tau", 1.5), ("tau", float("nan")), ("tau", -0.1), ("n_times", 65), ("n_chans", 3),
    ("simple_namespace", "simple__ns")])
def test_invalid_configuration_is_rejected(projects, tmp_path, field, value):
    kwargs = toplevel_kwargs(projects, 64, 4)
    kwargs[field] = value
    with pytest.raises(ConfigError):
        tl.generate_toplevel(tmp_path, **kwargs)
    assert not (tmp_path / "cascade_top.cpp").exists()


def test_malicious_part_rejected(projects, tmp_path):
    with pytest.raises(ConfigError):
        tl.generate_toplevel(tmp_path, part="xc7z020]; exec rm -rf /; [", **toplevel_kwargs(projects, 64, 4))


@pytest.mark.parametrize("width,integer", [(16, 6), (8, 3), (12, 12), (10, -2)])
def test_quantized_threshold_decides_like_float_gate(width, integer):
    lsb = 2.0 ** (integer - width)
    k = np.arange(-(2**width), 2**width + 1)  # every representable |z1 - z0| (and beyond)
    taus = [0.0, 0.1, 0.5, 0.9, 0.99, 0.999999, math.tanh(37 * lsb / 2), math.tanh(2.0 ** min(integer, 3))]
    for tau in taus:
        q = tl.quantize_threshold(tau, width, integer)
        cpp = np.abs(k) > q["raw"]  # what the C++ comparison computes, in LSB units
        ref = tl.gate_reference(np.zeros(k.size), k * lsb, tau, "confidence")
        assert np.array_equal(cpp, ref), tau
        assert q["value"] == q["raw"] * lsb


@pytest.mark.parametrize("width,integer", [(16, 6), (8, 3)])
def test_quantized_threshold_decides_like_float_gate_confirm_ictal_hold(width, integer):
    """confirm_ictal_hold: the C++ compares z0 - z1 (negated difference) with the same floor constant."""
    lsb = 2.0 ** (integer - width)
    k = np.arange(-(2**width), 2**width + 1)
    for tau in (0.0, 0.3, 0.9, math.tanh(37 * lsb / 2)):
        q = tl.quantize_threshold(tau, width, integer)
        cpp = -k > q["raw"]
        ref = tl.gate_reference(np.zeros(k.size), k * lsb, tau, "confirm_ictal_hold", np.zeros(k.size))
        assert np.array_equal(cpp, ref), tau
        assert ref[k < 0].any() and not ref[k >= 0].any()  # only interictal answers can be final


@pytest.mark.parametrize("width,integer", [(16, 6), (8, 3), (12, 12), (10, -2)])
def test_quantized_recheck_decides_like_the_python_walk(width, integer):
    """The recheck's constant is rounded up: ``z0 - z1 < raw`` in LSBs equals the float walk's
    ``z0 - z1 < 2*atanh(tau_c)`` for every difference, thresholds on an LSB included."""
    from qcascade.gate import cascade_decide, quantize_recheck

    lsb = 2.0 ** (integer - width)
    k = np.arange(-(2**width) + 1, 2**width)  # every z0 - z1 of two ap_fixed<width, integer> logits, in LSBs
    for tau_c in (0.1, 0.5, 0.76, 0.99, math.tanh(37 * lsb / 2), math.tanh(2.0 ** min(integer, 3))):
        q = quantize_recheck(tau_c, width, integer)
        cpp = (k >= 0) & (k < q["raw"])  # complex_unsure_interictal, in LSB units
        assert q["value"] == q["raw"] * lsb
        zc = np.stack([k * lsb, np.zeros(k.size)], 1)
        zs = np.tile([0.0, 9.0], (k.size, 1))  # confident ictal: final under `confidence` unless probed
        # Two-window recordings: the first is routed (gap loaded = P - 1), the second shows the recheck.
        rec = np.arange(k.size).repeat(2).astype(str)
        zc2, zs2 = np.repeat(zc, 2, 0), np.repeat(zs, 2, 0)
        zs2[0::2] = [0.0, 0.0]  # unsure simple model: the first window of each recording is routed
        out = cascade_decide(zs2, zc2, 0.5, rule="confidence", probe_every=5, recheck_tau=tau_c, record_ids=rec,
                             start_s=np.tile([0.0, 1.0], k.size))
        assert out["routed"][0::2].all()
        assert np.array_equal(out["routed"][1::2], cpp), tau_c
        assert np.array_equal(out["gap"][1::2], np.where(cpp, 4, 0))


def test_buffer_cost_full_size():
    cost = tl.window_buffer_cost(512, 128, 16)
    assert cost["bits"] == 1_048_576 and cost["bram18k_estimate"] == 57 and cost["bram18k_lower_bound"] == 57


def test_parse_ap_type():
    assert tl.parse_ap_type("ap_fixed<16,6,AP_RND,AP_SAT,0>")["integer"] == 6
    assert tl.parse_ap_type("ap_uint<8>") == {"text": "ap_uint<8>", "width": 8, "integer": 8, "signed": False}
    with pytest.raises(ConfigError):
        tl.parse_ap_type("float")


def test_regeneration_is_idempotent(projects, generated, tmp_path):
    out, paths = generated
    again = tl.generate_toplevel(tmp_path, **toplevel_kwargs(projects, 64, 4))
    assert again["cascade_top_cpp"].read_text() == paths["cascade_top_cpp"].read_text()
    tl.generate_toplevel(tmp_path, **toplevel_kwargs(projects, 64, 4))  # over its own output
    assert shutil.which("g++")


def test_softmax_output_rejected(projects, tmp_path):
    import hls4ml
    import tensorflow as tf

    model = tiny_model(64, 1, "soft", 4)
    model = tf.keras.Model(model.input, tf.keras.layers.Softmax(name="soft_sm")(model.output))
    hls4ml.converters.convert_from_keras_model(
        model, hls_config=hls_config(model), output_dir=str(tmp_path / "soft"), project_name="soft_mdl",
        namespace="soft_ns", backend="Vitis", io_type="io_stream").write()
    kwargs = toplevel_kwargs(projects, 64, 4)
    kwargs.update(simple_prj=tmp_path / "soft", simple_project="soft_mdl", simple_namespace="soft_ns")
    with pytest.raises(ConfigError, match="softmax"):
        tl.generate_toplevel(tmp_path / "top", **kwargs)


def test_tau_one_routes_every_window():
    # tau = 1 is what calibration picks when only the complex model keeps the quality.
    gate = tl.quantize_threshold(1.0, 16, 6)
    assert gate["raw"] == 2**16 and math.isinf(gate["threshold"])
    z = np.array([[-31.9, 31.9], [0.0, 0.0], [5.0, -5.0]])
    assert not tl.gate_reference(z[:, 0], z[:, 1], 1.0, "confidence").any()
