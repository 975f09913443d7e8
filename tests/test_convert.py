"""hls4ml conversion (Vitis, io_stream): explicit types, YAML configs, C-simulation agreement.

Agreement criteria for every registered model (slow cases) and the simple_C smoke case:

* class decisions agree on >= 99 % of a few hundred synthetic windows;
* max |logit_hls - logit_keras| <= k LSB of the logit type ``ap_fixed<16,6>`` (LSB 2**-10). Both
  sides end in the same ``logits`` quantizer (RND_CONV, SAT), so identical upstream values give 0.
  Differences come only from QKeras computing in float32 (sums of up to 640 products, and
  ``quantized_relu`` casts its input to float32) while the design is exact fixed point: at a
  quantizer rounding tie a 16-bit activation flips by one LSB (p ~ 2**-11 per element).
  - simple models (16 bit throughout): such a flip moves a logit by a fraction of an LSB, which
    rounds to <= 1 LSB; k = 2 (measured max 1 LSB);
  - complex: a 16-bit flip entering the 8-bit blocks can flip an 8-bit ReLU (LSB 2**-6..2**-4 =
    16-64 logit LSB) that is then attenuated by the pointwise weights and the 16x64 global average;
    k = 16 = 0.0156 (measured max 8 LSB; traced with ``trace_divergence``: block1_conv is identical,
    the first difference is a 1-LSB flip at ``block1_relu``). 0.0156 is < 1 % of the cascade's
    logit gate 2*atanh(0.8) = 2.2.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import hls4ml  # noqa: F401
import tensorflow as tf

from qcascade.config import ModelConfig  # noqa: E402
from qcascade.errors import ConfigError, QCascadeError  # noqa: E402
from qcascade.hls.compare import compare_keras_hls, lsb, trace_divergence  # noqa: E402
from qcascade.hls.convert import (TEMPLATE_DIR, compile_models, convert_model, load_template,  # noqa: E402
                                  make_hls_config, read_hls_config_yaml, validate_identifier,
                                  write_hls_config_yaml)
from qcascade.models import MODEL_REGISTRY, build_model  # noqa: E402
from qcascade.models.folding import fold_batchnorm  # noqa: E402
from qcascade.models.summary import convert_and_compare, model_inputs, trained_export_model  # noqa: E402

# Every registered model must appear here (checked by a fast test below).
CONVERSION_CASES = ["simple_A", "simple_B", "simple_C", "complex"]
# Builder variants of the complex model other than the config default (checked below).
COMPLEX_VARIANT_CASES = ["shared", "hybrid"]
# The shared first block measured 29 LSB (0.028) at 100 % decision agreement on 100 windows
# (docs/generalisation.md); the flips are not traced yet, so its bound is its own.
MAX_LSB_VARIANT = {"shared": 32, "hybrid": 32}
TRAIN_EPOCHS = {"simple_A": 3, "simple_B": 3, "simple_C": 3, "complex": 2}
MAX_LSB = {"simple_A": 2, "simple_B": 2, "simple_C": 2, "complex": 16}


def _check(res: dict, policy, name: str) -> None:
    logit_lsb = 2.0 ** -(policy.logit_bits - 1 - policy.logit_int_bits)
    print(f"\n[{name}] agreement={res['decision_agreement']:.4f} n={res['n']} "
          f"max_err={res['max_abs_logit_error']:.3g} ({res['max_abs_logit_error'] / logit_lsb:.1f} LSB) "
          f"compile={res.get('compile_s', 0):.1f}s keras_classes={res['keras_class_counts']}")
    assert res["decision_agreement"] >= 0.99, res
    assert res["max_abs_logit_error"] <= MAX_LSB[name] * logit_lsb, res


def test_every_registered_model_has_a_conversion_case():
    assert sorted(CONVERSION_CASES) == sorted(MODEL_REGISTRY)


def test_every_complex_block1_variant_has_a_conversion_case():
    from qcascade.models.complex import BLOCK1_VARIANTS

    # The default variant is the registry case "complex" above; the others are cases here.
    assert sorted(COMPLEX_VARIANT_CASES + [ModelConfig().complex_block1]) == sorted(BLOCK1_VARIANTS)


@pytest.mark.slow
@pytest.mark.parametrize("block1", COMPLEX_VARIANT_CASES)
def test_complex_variant_conversion_agrees_with_qkeras(block1, windows, policy, tmp_path):
    """The non-default first blocks of the complex model (``model.complex_block1``) convert too."""
    X = model_inputs("complex", windows)
    _, export, _ = trained_export_model("complex", policy, X, windows["y"], epochs=TRAIN_EPOCHS["complex"],
                                        block1=block1)
    assert {l.name for l in export.layers} >= {"block1_conv", "block1_relu"}
    res = convert_and_compare("complex", export, policy, X, tmp_path)
    logit_lsb = 2.0 ** -(policy.logit_bits - 1 - policy.logit_int_bits)
    assert res["decision_agreement"] >= 0.99, res
    assert res["max_abs_logit_error"] <= MAX_LSB_VARIANT[block1] * logit_lsb, res
    assert min(res["keras_class_counts"]) > 0, "decisions are trivially constant"


@pytest.mark.slow
@pytest.mark.parametrize("name", CONVERSION_CASES)
def test_conversion_agrees_with_qkeras(name, windows, policy, tmp_path):
    X = model_inputs(name, windows)
    t0 = time.perf_counter()
    _, export, _ = trained_export_model(name, policy, X, windows["y"], epochs=TRAIN_EPOCHS[name])
    t_train = time.perf_counter() - t0
    res = convert_and_compare(name, export, policy, X, tmp_path)
    print(f"[{name}] train={t_train:.1f}s convert+compile+compare={time.perf_counter() - t0 - t_train:.1f}s")
    _check(res, policy, name)
    assert min(res["keras_class_counts"]) > 0, "decisions are trivially constant"


@pytest.mark.slow
@pytest.mark.parametrize("first_stride", [8])
def test_simple_a_first_stride_conversion_agrees_with_qkeras(first_stride, windows, policy, tmp_path):
    """Candidate A with its first decimation in the conv (``model.simple_a_first_stride``) converts too."""
    X = model_inputs("simple_A", windows)
    _, export, _ = trained_export_model("simple_A", policy, X, windows["y"], epochs=TRAIN_EPOCHS["simple_A"],
                                        first_stride=first_stride)
    assert export.get_layer("a1_conv").strides == (first_stride,)
    res = convert_and_compare("simple_A", export, policy, X, tmp_path)
    _check(res, policy, "simple_A")
    assert min(res["keras_class_counts"]) > 0, "decisions are trivially constant"


def test_smoke_simple_c_conversion(windows, policy, tmp_path):
    """Cheapest full path in the default run: train 1 epoch, fold, convert, g++, compare."""
    X = model_inputs("simple_C", windows)
    _, export, _ = trained_export_model("simple_C", policy, X[:160], windows["y"][:160], epochs=1)
    res = convert_and_compare("simple_C", export, policy, X, tmp_path)
    _check(res, policy, "simple_C")
    assert res["compile_s"] > 0
    cfg = res["cfg"]
    assert (tmp_path / "simple_C" / "firmware" / "simple_c_prj.cpp").exists()
    assert "namespace simple_c_ns" in (tmp_path / "simple_C" / "firmware" / "simple_c_prj.cpp").read_text()
    assert cfg["IOType"] == "io_stream" and cfg["Part"] == "xcu250-figd2104-2L-e"


@pytest.fixture(scope="module")
def folded_c(policy):
    m = build_model("simple_C", policy, n_chans=1)
    return fold_batchnorm(m, policy)


def _calib(n=32, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 512, 1)).astype(np.float32)


def test_concurrent_compile_gives_working_models(folded_c, policy, tmp_path):
    """Two projects of one design built by concurrent g++ jobs both load and predict like Keras."""
    X = _calib(48, seed=3)
    models = []
    for i in range(2):
        cfg = make_hls_config(folded_c, policy, X, project_name=f"cc{i}_prj", namespace=f"cc{i}_ns")
        models.append(convert_model(folded_c, cfg, tmp_path / f"cc{i}", project_name=f"cc{i}_prj",
                                    namespace=f"cc{i}_ns", compile=False))
    compile_models(models, jobs=2)
    z = [np.asarray(m.predict(np.ascontiguousarray(X, dtype=np.float64))).reshape(len(X), -1) for m in models]
    np.testing.assert_array_equal(z[0], z[1])
    k = folded_c.predict(X, verbose=0)
    assert np.mean(z[0].argmax(1) == k.argmax(1)) >= 0.95
    assert all(m.qcascade_compile_seconds > 0 for m in models)
    assert all(any((tmp_path / f"cc{i}" / "firmware").glob(f"cc{i}_prj-*.so")) for i in range(2))


def test_config_has_explicit_types_for_logits_pools_and_merges(folded_c, policy):
    cfg = make_hls_config(folded_c, policy, _calib(), project_name="c_prj", namespace="c_ns")
    layers = cfg["HLSConfig"]["LayerName"]
    assert "softmax" not in str(cfg).lower()
    # Logits: the last layer's quantizer type; the auto-inserted <name>_linear of the classifier
    # carries the same type as the classifier itself.
    assert layers["logits"]["Precision"]["result"].startswith("fixed<16,6,RND_CONV,SAT")
    assert layers["classifier_linear"]["Precision"]["result"] == layers["classifier"]["Precision"]["result"]
    for name in ("mean", "mean_square", "zc_agree"):  # GAP accumulators: wide, saturating
        acc = layers[name]["Precision"]["accum"]
        assert "SAT" in acc and int(acc.split("<")[1].split(",")[0]) >= 20, acc
    for name in ("sq", "variance", "abs", "zc_prod", "features"):
        assert "RND_CONV,SAT" in layers[name]["Precision"]["result"], name
    # Exact product type for x*x: 2 x the input's 10 fractional bits.
    assert layers["sq"]["Precision"]["result"].startswith("fixed<")
    assert lsb(layers["sq"]["Precision"]["result"]) == 2.0 ** -20


def test_yaml_round_trip_and_templates(folded_c, policy, tmp_path):
    cfg = make_hls_config(folded_c, policy, _calib(), project_name="c_prj", namespace="c_ns",
                          overrides={"Model": {"ReuseFactor": 4, "Strategy": "Resource"},
                                     "LayerName": {"logits": {"Precision": {"result": "fixed<18,7,RND_CONV,SAT>"}}}})
    assert cfg["HLSConfig"]["Model"]["Strategy"] == "Resource"
    assert cfg["HLSConfig"]["LayerName"]["classifier"]["ReuseFactor"] == 4
    assert cfg["HLSConfig"]["LayerName"]["logits"]["Precision"]["result"] == "fixed<18,7,RND_CONV,SAT>"
    path = write_hls_config_yaml(cfg, tmp_path / "cfg.yaml")
    assert read_hls_config_yaml(path) == cfg
    for name in MODEL_REGISTRY:
        assert (TEMPLATE_DIR / f"{name}.yaml").exists(), name
        t = load_template(name)
        assert t["IOType"] == "io_stream" and t["Model"]["Strategy"] in ("auto", "Latency", "Resource")
        assert "Part" not in t  # the target profile sets the part
    # "auto" (sized later) leaves the keyword defaults in the measured config, never the string.
    auto = make_hls_config(folded_c, policy, _calib(), project_name="c_prj", namespace="c_ns",
                           overrides={"Model": {"ReuseFactor": "auto", "Strategy": "auto"}})
    assert auto["HLSConfig"]["Model"]["ReuseFactor"] == 1 and auto["HLSConfig"]["Model"]["Strategy"] == "Latency"
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError):
        read_hls_config_yaml(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError):
        make_hls_config(folded_c, policy, _calib(), project_name="c_prj", namespace="c_ns",
                        overrides={"Nonsense": 1})


@pytest.mark.parametrize("bad", ["", "1abc", "a-b", "namespace", "class", "a b", "x__y", None, "_ns2", "a\n"])
def test_identifier_validation(bad):
    with pytest.raises(ConfigError):
        validate_identifier(bad, "project_name")


def test_identifiers_ok():
    assert validate_identifier("simple_prj", "p") == "simple_prj"
    assert validate_identifier("ns2_x", "p") == "ns2_x"


def test_softmax_models_are_rejected(policy):
    inp = tf.keras.Input((512, 1), name="window")
    out = tf.keras.layers.Dense(2, activation="softmax", name="dense")(tf.keras.layers.Flatten()(inp))
    with pytest.raises(QCascadeError):
        make_hls_config(tf.keras.Model(inp, out), policy, _calib(), project_name="p", namespace="n")


@pytest.mark.slow
def test_trace_finds_first_diverging_layer(folded_c, policy, tmp_path):
    """A deliberately wrapping type on ``peak`` must be reported as the first diverging layer."""
    X = _calib(64, seed=3) * 3
    cfg = make_hls_config(folded_c, policy, X, project_name="c_prj", namespace="c_ns",
                          overrides={"LayerName": {"peak": {"Precision": {"result": "fixed<6,1,TRN,WRAP>",
                                                                          "accum": "fixed<6,1,TRN,WRAP>"}}}})
    hls_model = convert_model(folded_c, cfg, tmp_path / "prj", project_name="c_prj", namespace="c_ns")
    res = compare_keras_hls(folded_c, hls_model, X, trace_on_disagreement=False)
    assert res["max_abs_logit_error"] > 0.01
    tr = trace_divergence(folded_c, hls_model, X[:4])
    assert tr["first_diverging_layer"] == "peak", tr["trace"]


def test_a_missing_template_is_an_error_not_empty():
    """A template that is not there must not silently drop the precisions and sizing."""
    with pytest.raises(ConfigError, match="no_such_model.yaml"):
        load_template("no_such_model")


def test_the_wheel_ships_templates_targets_and_flow_scripts(tmp_path):
    """``pip wheel .`` carries hls_configs/ (with targets/), vivado_scripts/ and the C++ templates."""
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(root)], check=True, capture_output=True)
    names = zipfile.ZipFile(next(tmp_path.glob("qcascade-*.whl"))).namelist()
    for f in sorted(p.name for p in (root / "hls_configs").glob("*.yaml")):
        assert f"qcascade/resources/hls_configs/{f}" in names
    for f in sorted(p.name for p in (root / "hls_configs" / "targets").glob("*.yaml")):
        assert f"qcascade/resources/hls_configs/targets/{f}" in names
    for f in sorted(p.name for p in (root / "vivado_scripts").iterdir()):
        assert f"qcascade/resources/vivado_scripts/{f}" in names
    for f in sorted(p.name for p in (root / "qcascade" / "hls" / "templates").iterdir()):
        assert f"qcascade/hls/templates/{f}" in names
