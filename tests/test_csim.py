"""C simulation of the cascade with g++: C++ gate == Python gate, agreement with Keras.

The fast case builds the C++ cascade for tiny 64x4 models and compares it with the Keras
cascade; the slow case runs the whole ``run_csim`` (hls4ml compile and predict, 512x8 windows).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from qcascade.errors import ConfigError, QCascadeError
from qcascade.gate import logit_threshold
from qcascade.hls import csim
from qcascade.hls import toplevel as tl
from test_toplevel import build_tiny_projects, toplevel_kwargs

ELECTRODE = 1


def windows(n: int, n_times: int, n_chans: int, seed: int = 0) -> np.ndarray:
    # On a 2^-8 grid inside the input type's range, so hls4ml's input quantization is exact.
    return np.round(np.random.default_rng(seed).normal(0, 1, (n, n_times, n_chans)) * 256) / 256


def median_tau(simple_keras, X: np.ndarray) -> float:
    """tau whose logit threshold is the median Keras margin: about half the windows are routed."""
    z = simple_keras.predict(X[:, :, ELECTRODE:ELECTRODE + 1], verbose=0)
    return float(np.tanh(np.median(np.abs(z[:, 1] - z[:, 0])) / 2))


def keras_cascade(projects: dict, X: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    zs = projects["simple"]["keras"].predict(X[:, :, ELECTRODE:ELECTRODE + 1], verbose=0)
    zc = projects["complex"]["keras"].predict(X, verbose=0)
    confident = tl.gate_reference(zs[:, 0], zs[:, 1], tau, "confidence")
    return np.where(confident, zs.argmax(1), zc.argmax(1)), ~confident


def test_cpp_cascade_matches_keras_fast(tmp_path):
    """Default-run case (tiny 64x4 models, ~1 min): C++ cascade vs Keras and vs the Python gate."""
    T, C, n = 64, 4, 200
    projects = build_tiny_projects(tmp_path / "prj", T, C)
    X = windows(n, T, C)
    tau = median_tau(projects["simple"]["keras"], X)
    top = tmp_path / "top"
    tl.generate_toplevel(top, **toplevel_kwargs(projects, T, C, electrode=ELECTRODE, tau=tau))
    exe = tl.build_csim(top, werror=True, jobs=2)
    assert exe.is_file()
    print("g++ build seconds:", json.loads((top / csim.BUILD / "build_times.json").read_text()))

    cpp = csim.run_cascade_binary(top, X)
    routed = cpp["used_complex"]
    assert 0 < routed.sum() < n
    python_gate = tl.gate_reference(cpp["simple_logits"][:, 0], cpp["simple_logits"][:, 1], tau, "confidence")
    assert np.array_equal(python_gate, ~routed)  # 100 %
    assert np.all(np.isnan(cpp["complex_logits"][~routed])) and not np.any(np.isnan(cpp["complex_logits"][routed]))
    k_dec, k_routed = keras_cascade(projects, X, tau)
    assert np.mean(routed == k_routed) >= 0.99
    assert np.mean(cpp["cls"] == k_dec) >= 0.99

    # tau placed exactly on observed C++ margins: the strict '>' must match Python there too.
    margins = np.sort(np.abs(cpp["simple_logits"][:, 1] - cpp["simple_logits"][:, 0]))
    for margin in (margins[n // 2],):  # one more top-level build (~10 s): keep the default run short
        edge_tau = float(np.tanh(margin / 2))  # 2*atanh(tau) is the margin to within an ulp
        tl.generate_toplevel(top, **toplevel_kwargs(projects, T, C, electrode=ELECTRODE, tau=edge_tau))
        tl.build_csim(top, werror=True)
        times = json.loads((top / csim.BUILD / "build_times.json").read_text())
        assert "simple_mdl.o" not in times["rebuilt"] and "complex_mdl.o" not in times["rebuilt"]  # not recompiled
        assert "cascade_top.o" in times["rebuilt"]
        assert times["seconds"]["complex_mdl.o"] > 0  # the time of the build that made it
        edge = csim.run_cascade_binary(top, X)
        py = tl.gate_reference(edge["simple_logits"][:, 0], edge["simple_logits"][:, 1], edge_tau, "confidence")
        assert np.array_equal(py, ~edge["used_complex"])

    # Two thresholds: where the simple model says interictal, 2*atanh(tau_i) < 2*atanh(tau), placed
    # exactly on an observed C++ margin so the strict '>' is exercised on that side too.
    d = cpp["simple_logits"][:, 1] - cpp["simple_logits"][:, 0]
    below = np.sort(-d[(d < 0) & (-d <= logit_threshold(tau))])
    assert len(below) >= 3
    tau_i = float(np.tanh(below[len(below) // 2] / 2))
    tl.generate_toplevel(top, gate_tau_interictal=tau_i, **toplevel_kwargs(projects, T, C, electrode=ELECTRODE, tau=tau))
    assert tl.load_manifest(top)["gate"]["tau_interictal"] == tau_i
    tl.build_csim(top, werror=True)
    two = csim.run_cascade_binary(top, X)
    py = tl.gate_reference(two["simple_logits"][:, 0], two["simple_logits"][:, 1], tau, "confidence",
                           tau_interictal=tau_i)
    assert np.array_equal(py, ~two["used_complex"])  # 100 %
    assert two["used_complex"].sum() < routed.sum()  # it keeps more of the simple model's "interictal" answers
    assert np.array_equal(two["used_complex"][d > 0], routed[d > 0])  # and none of its "ictal" ones
    with pytest.raises(ConfigError, match="gate_tau_interictal"):
        tl.generate_toplevel(top, gate_tau_interictal=min(1.0, tau + 0.01),
                             **toplevel_kwargs(projects, T, C, electrode=ELECTRODE, tau=tau))

    # Rules that read the previous decision: the top level takes each window's prev_cls.
    prev = (np.random.default_rng(3).random(n) < 0.4).astype(int)
    for rule in ("confirm_changes", "confirm_ictal_hold"):
        tl.generate_toplevel(top, gate_rule=rule, **toplevel_kwargs(projects, T, C, electrode=ELECTRODE, tau=tau))
        assert "QCASCADE_GATE_USES_PREV 1" in (top / "cascade_top.h").read_text()
        tl.build_csim(top, werror=True)
        with pytest.raises(QCascadeError, match="prev_cls"):
            csim.run_cascade_binary(top, X)
        out = csim.run_cascade_binary(top, X, prev_cls=prev)
        zs = out["simple_logits"]
        py = tl.gate_reference(zs[:, 0], zs[:, 1], tau, rule, prev)
        assert np.array_equal(py, ~out["used_complex"]), rule  # 100 %
        assert (~out["used_complex"]).any() and out["used_complex"].any()
        final_cls = zs[~out["used_complex"]].argmax(1)
        assert np.array_equal(final_cls, prev[~out["used_complex"]])  # only continuations are final
    with pytest.raises(ConfigError, match="gate_rule"):
        tl.generate_toplevel(top, gate_rule="hold", **toplevel_kwargs(projects, T, C, electrode=ELECTRODE, tau=tau))

    # Regenerated for another tau but not rebuilt: the stale binary must not be run.
    tl.generate_toplevel(top, **toplevel_kwargs(projects, T, C, electrode=ELECTRODE, tau=tau))
    with pytest.raises(QCascadeError, match="older than the generated sources"):
        csim.run_cascade_binary(top, X)

    # A failing step in a parallel build names the step and its compiler message.
    (top / "cascade_tb.cpp").write_text("this is not C++;\n")
    with pytest.raises(QCascadeError, match=r"(?s)build step cascade_tb.o failed.*error"):
        tl.build_csim(top, jobs=2)
    assert not (top / csim.BUILD / "cascade_tb.o.cmd").exists()  # the failed step is not stamped done


def test_hls4ml_models_predict_through_the_csim_build(tmp_path, monkeypatch):
    """One C++ build per run: written (not compiled) hls4ml models predict through the C
    simulation's libraries, bit for bit like hls4ml's own compile(), from any working folder."""
    T, C, n = 64, 4, 40
    own = build_tiny_projects(tmp_path / "own", T, C, compile=True)
    X = windows(n, T, C)
    expected = {"simple": own["simple"]["hls"].predict(np.ascontiguousarray(X[:, :, ELECTRODE:ELECTRODE + 1])),
                "complex": own["complex"]["hls"].predict(X)}
    written = build_tiny_projects(tmp_path / "written", T, C)
    models = {role: written[role]["hls"] for role in ("simple", "complex")}
    top = tmp_path / "top"
    tl.generate_toplevel(top, **toplevel_kwargs(written, T, C, electrode=ELECTRODE, tau=0.5))
    with pytest.raises(QCascadeError, match="not built"):
        csim.use_csim_build(models, top)
    tl.build_csim(top, jobs=2)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the weights are read relative to the top level, not the cwd
    csim.use_csim_build(models, top)
    got = {"simple": models["simple"].predict(np.ascontiguousarray(X[:, :, ELECTRODE:ELECTRODE + 1])),
           "complex": models["complex"].predict(X)}
    for role in ("simple", "complex"):
        assert np.array_equal(np.asarray(got[role]), np.asarray(expected[role])), role
        assert np.abs(np.asarray(got[role])).max() > 0, role
    assert not list((top / csim.BUILD).glob(".lib*")), "the private copies are deleted once loaded"
    cpp = csim.run_cascade_binary(top, X.astype(np.float32))
    assert np.array_equal(cpp["simple_logits"], np.asarray(got["simple"], np.float64).reshape(n, -1))

    swapped = {"simple": models["complex"]}
    with pytest.raises(QCascadeError, match="regenerate the top level"):
        csim.use_csim_build(swapped, top)


def test_run_cascade_binary_requires_build(tmp_path):
    with pytest.raises(QCascadeError):
        csim.run_cascade_binary(tmp_path, np.zeros((1, 4, 2)))


@pytest.mark.slow
def test_run_csim_full(tmp_path):
    """Tiny models at the real window length: hls4ml vs QKeras, C++ cascade vs Keras cascade."""
    T, C, n = 512, 8, 200
    projects = build_tiny_projects(tmp_path / "prj", T, C, compile=True)
    X = windows(n, T, C)
    tau = median_tau(projects["simple"]["keras"], X)
    top = tmp_path / "top"
    tl.generate_toplevel(top, **toplevel_kwargs(projects, T, C, electrode=ELECTRODE, tau=tau))
    tl.build_csim(top, jobs=2)
    print("g++ build seconds:", json.loads((top / csim.BUILD / "build_times.json").read_text()))
    result = csim.run_csim(simple_keras=projects["simple"]["keras"], complex_keras=projects["complex"]["keras"],
                           simple_hls=projects["simple"]["hls"], complex_hls=projects["complex"]["hls"],
                           electrode=ELECTRODE, tau=tau, X_test=X, toplevel_dir=top, out_json=tmp_path / "csim.json")
    print(json.dumps(result, indent=1))
    c = result["cascade"]
    assert c["gate_agreement_cpp_vs_python"] == 1.0
    assert 0 < c["routed_windows"] < n
    assert c["routing_agreement"] >= 0.99 and c["decision_agreement"] >= 0.99
    assert c["cpp_vs_hls4ml_simple_max_abs"] == 0.0 and c["cpp_vs_hls4ml_complex_max_abs"] == 0.0
    for name in ("simple", "complex"):
        assert result[name]["decision_agreement"] >= 0.99
        if result[name]["decision_agreement"] < 1.0:
            assert result[name]["trace"]["layers"]
    assert json.loads((tmp_path / "csim.json").read_text())["cascade"]["routed_windows"] == c["routed_windows"]
    from qcascade.hls.csim_report import csim_markdown

    md = csim_markdown(result)
    assert "routing agreement" in md and "| simple |" in md
    with pytest.raises(QCascadeError):  # generated for another tau
        csim.run_csim(simple_keras=None, complex_keras=None, simple_hls=None, complex_hls=None, electrode=ELECTRODE,
                      tau=tau / 2, X_test=X, toplevel_dir=top, out_json=tmp_path / "x.json")


@pytest.mark.slow
def test_trace_names_first_diverging_layer(tmp_path):
    """A deliberately narrow conv result type must be named as the first diverging layer."""
    import hls4ml

    from test_toplevel import hls_config, tiny_model

    model = tiny_model(64, 4, "complex", 2)
    cfg = hls_config(model)
    cfg["LayerName"]["complex_conv"]["Precision"]["result"] = "fixed<6,1>"  # wraps: far off Keras
    hm = hls4ml.converters.convert_from_keras_model(model, hls_config=cfg, output_dir=str(tmp_path / "bad"),
                                                    project_name="bad_mdl", namespace="bad_ns", backend="Vitis",
                                                    io_type="io_stream")
    trace = csim.trace_first_divergence(model, hm, windows(4, 64, 4).astype(np.float32), tmp_path / "trace")
    assert trace["first_diverging_layer"] == "complex_conv"
    assert [layer["name"] for layer in trace["layers"]][:2] == ["complex_conv", "complex_relu"]
