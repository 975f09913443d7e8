"""The Vitis testbench can fail: expected results, a corrupted line, TLAST, the closed loop and
the Vitis-configuration build (one link, weights compiled in, C++14) against the g++ C simulation."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from qcascade.hls import csim
from qcascade.hls import testbench as tb
from qcascade.hls import toplevel as tl
from qcascade.gate import cascade_decide
from test_csim import ELECTRODE, median_tau, windows
from test_toplevel import build_tiny_projects, toplevel_kwargs

T, C = 64, 4


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    projects = build_tiny_projects(root / "prj", T, C)
    X = windows(120, T, C, seed=5)
    tau = median_tau(projects["simple"]["keras"], X)
    top = root / "top"
    tl.generate_toplevel(top, gate_rule="confirm_changes",
                         **toplevel_kwargs(projects, T, C, electrode=ELECTRODE, tau=tau))
    tl.build_csim(top, jobs=2)
    zs = projects["simple"]["keras"].predict(X[:, :, ELECTRODE:ELECTRODE + 1], verbose=0)
    zc = projects["complex"]["keras"].predict(X, verbose=0)
    return {"top": top, "X": X, "tau": tau, "zs": zs, "zc": zc}


def test_select_tb_windows_routed_and_both_prev():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, (300, 2))
    prev = np.zeros(300, int)  # a recording without a seizure: prev is always 0
    idx, sel = tb.select_tb_windows(z, prev, 0.5, "confirm_changes", n=16, min_routed=4)
    assert len(idx) == 16 and set(sel.tolist()) == {0, 1}
    from qcascade.gate import simple_is_final
    assert (~simple_is_final(z[idx], 0.5, "confirm_changes", sel)).sum() >= 4
    idx, sel = tb.select_tb_windows(z, prev, 0.5, "confidence", n=16, min_routed=4)
    assert (~simple_is_final(z[idx], 0.5, "confidence")).sum() >= 4


def test_testbench_fails_on_a_corrupted_expected_line(built):
    top = built["top"]
    prev = cascade_decide(built["zs"], built["zc"], built["tau"], rule="confirm_changes")["prev_cls"]
    idx, sel = tb.select_tb_windows(built["zs"], prev, built["tau"], "confirm_changes", n=16, min_routed=4)
    info = tb.write_tb_data(top, built["X"][idx], sel)
    assert info["n_windows"] == 16 and info["n_routed"] >= 4 and info["prev_cls_values"] == [0, 1]
    ok = tb.run_tb(top)
    assert ok.returncode == 0, ok.stderr
    assert "PASS: all 16 windows" in ok.stdout
    expected = top / tl.TB_EXPECTED
    lines = expected.read_text().splitlines()
    good = lines[5]
    fields = good.split()
    fields[0] = str(1 - int(fields[0]))  # flip the class of one window
    lines[5] = " ".join(fields)
    expected.write_text("\n".join(lines) + "\n")
    bad = tb.run_tb(top)
    assert bad.returncode == 1 and "MISMATCH window 5" in bad.stderr
    lines[5] = good
    expected.write_text("\n".join(lines[:-1]) + "\n")  # one line missing
    assert tb.run_tb(top).returncode == 1
    expected.write_text("\n".join(lines) + "\n")
    assert tb.run_tb(top).returncode == 0


def test_closed_loop_matches_python_cascade(built):
    res = tb.closed_loop(built["top"], built["X"], tau=built["tau"], rule="confirm_changes",
                         keras_simple=built["zs"], keras_complex=built["zc"])
    assert res["agreement_with_python_on_cpp_logits"] == 1.0
    assert res["agreement_with_keras_cascade"] >= 0.95
    assert 0 < res["n_routed"] < len(built["X"])


def test_vitis_style_build_is_bit_exact_with_gcc_csim(built):
    """One link, weights compiled in, -std=c++14 -O0 (as design.tcl hands the design to Vitis)."""
    top = built["top"]
    prev = cascade_decide(built["zs"], built["zc"], built["tau"], rule="confirm_changes")["prev_cls"]
    idx, sel = tb.select_tb_windows(built["zs"], prev, built["tau"], "confirm_changes", n=16, min_routed=4)
    tb.write_tb_data(top, built["X"][idx], sel)  # expected: the g++ csim (shared libraries, text weights)
    cmd = tb.vitis_style_command(top)
    assert "-std=c++14" in cmd and "-DQCASCADE_WEIGHTS_INLINE" in cmd and "cascade_tb.cpp" in cmd
    exe = tb.build_vitis_style(top)
    proc = subprocess.run([str(exe)], cwd=top, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr  # every line equal to the g++ csim's
    assert "PASS" in proc.stdout


def test_blend_candidates_only_when_the_gate_routes_too_little():
    class Margin:  # a stand-in simple model: logits (0, mean of the window)
        def predict(self, x, verbose=0):
            m = x.mean(axis=(1, 2))
            return np.stack([np.zeros_like(m), m], 1)

    rng = np.random.default_rng(1)
    y = np.array([0] * 20 + [1] * 20)
    X = np.where(y[:, None, None] == 1, 3.0, -3.0) + rng.normal(0, 0.1, (40, 8, 2))
    z = Margin().predict(X)
    prev = np.zeros(40, int)
    extra = tb.blend_candidates(X, y, z, prev, 0.5, "confidence", Margin(), 0)
    assert extra is not None and len(extra["X"]) >= 4  # blends sit at margin ~0: routed
    assert tb.blend_candidates(X, y, z, prev, 0.5, "confirm_changes", Margin(), 0) is None
    assert tb.blend_candidates(X, y, np.zeros((40, 2)), prev, 0.5, "confidence", Margin(), 0) is None


def test_probe_gate_in_cpp_matches_python(built, tmp_path):
    """The probe (every P-th window goes to the complex model) in the generated C++: the closed loop
    keeps the gap inside the design, and loaded gaps (prev_gap) decide like the Python gate."""
    import shutil

    top = tmp_path / "top_probe"
    man = tl.load_manifest(built["top"])
    prj = {r: {"prj": man[r]["source_dir"], "project": man[r]["project"], "namespace": man[r]["namespace"]}
           for r in ("simple", "complex")}
    tau = 0.0  # every window is confident: only prev changes and the probe route
    tl.generate_toplevel(top, gate_rule="confirm_changes", gate_probe=4,
                         **toplevel_kwargs(prj, T, C, electrode=ELECTRODE, tau=tau))
    assert "#define QCASCADE_GATE_PROBE_EVERY 4" in (top / "cascade_top.h").read_text()
    assert "prev_gap" in (top / "cascade_top.cpp").read_text()
    shutil.copytree(built["top"] / "csim_build", top / "csim_build", dirs_exist_ok=True)  # reuse model objects
    tl.build_csim(top, jobs=2)
    X = built["X"][:40]
    res = tb.closed_loop(top, X, tau=tau, rule="confirm_changes", keras_simple=built["zs"][:40],
                         keras_complex=built["zc"][:40])
    assert res["agreement_with_python_on_cpp_logits"] == 1.0
    with_probe = cascade_decide(built["zs"][:40], built["zc"][:40], tau, rule="confirm_changes", probe_every=4)
    without = cascade_decide(built["zs"][:40], built["zc"][:40], tau, rule="confirm_changes")
    assert with_probe["routed"].sum() > without["routed"].sum()  # the probe routed windows the rule did not
    assert with_probe["gap"].max() <= 3
    # Loaded state: each window gets its own prev_cls and gap; the gate must decide like Python.
    gaps = np.arange(16) % 5  # 3 and 4 must route whatever the simple model says
    prev = with_probe["prev_cls"][:16]
    info = tb.write_tb_data(top, X[:16], prev, gaps)
    cpp = csim.run_cascade_binary(top, X[:16], prev_cls=prev, gap=gaps)
    from qcascade.gate import simple_is_final
    final = simple_is_final(cpp["simple_logits"], tau, "confirm_changes", prev, gaps, 4)
    assert np.array_equal(~final, cpp["used_complex"])
    assert cpp["used_complex"][gaps >= 3].all()
    assert info["n_routed"] == int(cpp["used_complex"].sum())
    assert tb.run_tb(top).returncode == 0


def test_recheck_gate_in_cpp_matches_python(built, tmp_path):
    """The recheck (an unsure "interictal" of the complex model makes the next window a probe) in
    the generated C++: the closed loop keeps it in the gap state and decides like the Python walk."""
    import shutil

    from qcascade.gate import quantize_recheck

    top = tmp_path / "top_recheck"
    man = tl.load_manifest(built["top"])
    prj = {r: {"prj": man[r]["source_dir"], "project": man[r]["project"], "namespace": man[r]["namespace"]}
           for r in ("simple", "complex")}
    tau, probe = 0.0, 5  # every simple answer is confident: only the probe and the recheck route
    X, zs, zc = built["X"][:60], built["zs"][:60], built["zc"][:60]
    margin = np.abs(zc[:, 0] - zc[:, 1])
    tau_c = float(np.tanh(np.median(margin) / 2))  # about half of the complex answers are unsure
    tl.generate_toplevel(top, gate_rule="confidence", gate_probe=probe, gate_recheck=tau_c,
                         **toplevel_kwargs(prj, T, C, electrode=ELECTRODE, tau=tau))
    cpp_src, header = (top / "cascade_top.cpp").read_text(), (top / "cascade_top.h").read_text()
    assert "#define QCASCADE_GATE_RECHECK 1" in header and "complex_unsure_interictal" in cpp_src
    width = tl.load_manifest(top)["complex"]["result"]["elem"]
    assert tl.load_manifest(top)["gate"]["recheck"]["raw"] == quantize_recheck(tau_c, width["width"],
                                                                               width["integer"])["raw"]
    shutil.copytree(built["top"] / "csim_build", top / "csim_build", dirs_exist_ok=True)  # reuse model objects
    tl.build_csim(top, jobs=2)
    res = tb.closed_loop(top, X, tau=tau, rule="confidence", keras_simple=zs, keras_complex=zc)
    assert res["agreement_with_python_on_cpp_logits"] == 1.0
    with_recheck = cascade_decide(zs, zc, tau, rule="confidence", probe_every=probe, recheck_tau=tau_c)
    without = cascade_decide(zs, zc, tau, rule="confidence", probe_every=probe)
    assert with_recheck["routed"].sum() > without["routed"].sum()  # the recheck routed windows the probe did not
    assert res["agreement_with_keras_cascade"] >= 0.9
    with pytest.raises(tl.ConfigError, match="needs a probe"):
        tl.generate_toplevel(tmp_path / "bad", gate_rule="confidence", gate_recheck=0.5,
                             **toplevel_kwargs(prj, T, C, electrode=ELECTRODE, tau=tau))


@pytest.mark.parametrize("rule,hold,hold_max", [("confidence", 3, 0), ("confirm_changes", 3, 0),
                                                ("confirm_changes", 1, 5)])
def test_hold_gate_in_cpp_matches_python(built, tmp_path, rule, hold, hold_max):
    """The hold (after a routed window the complex model calls ictal against the simple model, the
    next H windows are routed; growing to M) in the generated C++: the closed loop keeps the counter
    inside the design, and loaded counters (prev_hold) decide like the Python gate."""
    import shutil

    from qcascade.gate import simple_is_final

    top = tmp_path / f"top_hold_{rule}_{hold}_{hold_max}"
    man = tl.load_manifest(built["top"])
    prj = {r: {"prj": man[r]["source_dir"], "project": man[r]["project"], "namespace": man[r]["namespace"]}
           for r in ("simple", "complex")}
    tau, probe = built["tau"], 6
    ceiling = max(hold, hold_max)
    X, zs, zc = built["X"][:60], built["zs"][:60], built["zc"][:60]
    tl.generate_toplevel(top, gate_rule=rule, gate_probe=probe, gate_hold=hold, gate_hold_max=hold_max,
                         **toplevel_kwargs(prj, T, C, electrode=ELECTRODE, tau=tau))
    header, cpp_src = (top / "cascade_top.h").read_text(), (top / "cascade_top.cpp").read_text()
    assert f"#define QCASCADE_GATE_HOLD {hold}\n" in header and "prev_hold" in cpp_src
    assert f"#define QCASCADE_GATE_HOLD_MAX {ceiling}\n" in header
    assert tl.load_manifest(top)["gate"]["hold"] == hold and tl.load_manifest(top)["gate"]["hold_max"] == ceiling
    shutil.copytree(built["top"] / "csim_build", top / "csim_build", dirs_exist_ok=True)  # reuse model objects
    tl.build_csim(top, jobs=2)
    res = tb.closed_loop(top, X, tau=tau, rule=rule, keras_simple=zs, keras_complex=zc)
    assert res["agreement_with_python_on_cpp_logits"] == 1.0
    with_hold = cascade_decide(zs, zc, tau, rule=rule, probe_every=probe, hold=hold, hold_max=hold_max)
    without = cascade_decide(zs, zc, tau, rule=rule, probe_every=probe)
    assert with_hold["held"].max() >= hold  # the hold started at least once on these windows
    assert with_hold["held"].max() <= ceiling
    if ceiling > hold:  # the count grew past H on these windows, so the closed loop compared the growth
        assert with_hold["held"].max() > hold
    assert with_hold["routed"].sum() > without["routed"].sum()
    # Loaded state: each window gets its own counter; held > 0 must route whatever the simple model says.
    held = np.arange(16) % (ceiling + 1)
    prev, gaps = with_hold["prev_cls"][:16], np.zeros(16, np.int64)
    info = tb.write_tb_data(top, X[:16], prev, gaps, held=held)
    cpp = csim.run_cascade_binary(top, X[:16], prev_cls=prev, gap=gaps, held=held)
    final = simple_is_final(cpp["simple_logits"], tau, rule, prev, gaps, probe, held=held)
    assert np.array_equal(~final, cpp["used_complex"])
    assert cpp["used_complex"][held > 0].all()
    assert info["n_routed"] == int(cpp["used_complex"].sum())
    assert tb.run_tb(top).returncode == 0
    # A counter above the hold is not a state the design can be in: the testbench refuses it.
    tl.write_windows(top / "csim_data" / "bad.f32", X[:2], T, C, prev_cls=prev[:2], gap=gaps[:2],
                     held=np.array([0, ceiling + 1]))
    exe = top / tl.load_manifest(top)["csim_exe"]
    proc = subprocess.run([str(exe), str(top / "csim_data" / "bad.f32"), str(top / "csim_data" / "bad.txt"), "-1", "-"],
                          cwd=top, capture_output=True, text=True)
    assert proc.returncode == 2 and "more than the hold's ceiling" in proc.stderr


def test_fused_gate_in_cpp_matches_python(built, tmp_path):
    """Late fusion (train.gate_fuse = 2**-k) in the generated C++: a routed window is decided on the complex
    difference plus the simple one shifted, and the recheck and the hold read that answer; the closed loop
    decides like the Python walk on every window."""
    import shutil

    from qcascade.gate_fixed import fused_difference

    man = tl.load_manifest(built["top"])
    prj = {r: {"prj": man[r]["source_dir"], "project": man[r]["project"], "namespace": man[r]["namespace"]}
           for r in ("simple", "complex")}
    tau, probe, hold, hold_max = built["tau"], 5, 2, 4
    X, zs, zc = built["X"][:60], built["zs"][:60], built["zc"][:60]
    tau_c = float(np.tanh(np.median(np.abs(zc[:, 0] - zc[:, 1])) / 2))
    # The largest shift whose fusion still flips a complex answer on these windows (the test must see one).
    flips = {k: int(((fused_difference(zs, zc, 2.0 ** -k) > 0) != (zc[:, 1] > zc[:, 0])).sum()) for k in range(4)}
    k = max(s for s, n in flips.items() if n)
    top = tmp_path / "top_fuse"
    gate = dict(gate_rule="confirm_changes", gate_probe=probe, gate_recheck=tau_c, gate_hold=hold, gate_hold_max=hold_max)
    tl.generate_toplevel(top, gate_fuse=2.0 ** -k, **gate, **toplevel_kwargs(prj, T, C, electrode=ELECTRODE, tau=tau))
    header, entry = (top / "cascade_top.h").read_text(), tl.load_manifest(top)["gate"]["fuse"]
    assert "#define QCASCADE_GATE_FUSE 1\n" in header and f"#define QCASCADE_GATE_FUSE_SHIFT {k}\n" in header
    assert entry["shift"] == k and entry["fuse"] == 2.0 ** -k
    shutil.copytree(built["top"] / "csim_build", top / "csim_build", dirs_exist_ok=True)  # reuse model objects
    tl.build_csim(top, jobs=2, werror=True)
    res = tb.closed_loop(top, X, tau=tau, rule="confirm_changes", keras_simple=zs, keras_complex=zc)
    assert res["agreement_with_python_on_cpp_logits"] == 1.0
    assert res["agreement_with_keras_cascade"] >= 0.9
    kw = dict(rule="confirm_changes", probe_every=probe, recheck_tau=tau_c, hold=hold, hold_max=hold_max)
    fused, plain = cascade_decide(zs, zc, tau, fuse=2.0 ** -k, **kw), cascade_decide(zs, zc, tau, **kw)
    assert (fused["pred"] != plain["pred"]).any()  # so the closed loop compared decisions the fusion changed
    with pytest.raises(tl.ConfigError, match="gate_fuse"):
        tl.generate_toplevel(tmp_path / "bad", gate_fuse=0.3, **toplevel_kwargs(prj, T, C, electrode=ELECTRODE, tau=tau))


@pytest.mark.parametrize("after, expected", [("ceiling", [False] * 5 + [True, False, False]),
                                             ("grown", [True, True, False, False, False, True, False, False])])
def test_ictal_stride_in_cpp_matches_python(built, tmp_path, after, expected):
    """The ictal stride (train.gate_ictal_every) in the generated C++: where the hold has reached its ceiling
    (or grown past H: train.gate_ictal_after), a window with gap < K - 1 keeps the ictal state unrouted and
    the hold count as it was; the closed loop and loaded states decide like the Python gate."""
    import shutil

    from qcascade.gate import simple_is_final

    man = tl.load_manifest(built["top"])
    prj = {r: {"prj": man[r]["source_dir"], "project": man[r]["project"], "namespace": man[r]["namespace"]}
           for r in ("simple", "complex")}
    tau, probe, hold, hold_max, k = built["tau"], 1, 1, 6, 3  # a probe on every window: only the stride skips
    X, zs, zc = built["X"][:60], built["zs"][:60], built["zc"][:60]
    kw = dict(rule="confirm_changes", probe_every=probe, hold=hold, hold_max=hold_max)
    strided = cascade_decide(zs, zc, tau, ictal_every=k, ictal_after=after, **kw)
    plain = cascade_decide(zs, zc, tau, **kw)
    assert strided["routed"].sum() < plain["routed"].sum()  # the stride skipped windows on these logits
    top = tmp_path / "top_stride"
    tl.generate_toplevel(top, gate_rule="confirm_changes", gate_probe=probe, gate_hold=hold, gate_hold_max=hold_max,
                         gate_ictal_every=k, gate_ictal_after=after,
                         **toplevel_kwargs(prj, T, C, electrode=ELECTRODE, tau=tau))
    min_held = hold_max if after == "ceiling" else hold + 1
    assert f"#define QCASCADE_GATE_ICTAL_EVERY {k}\n" in (top / "cascade_top.h").read_text()
    assert f"#define QCASCADE_GATE_ICTAL_MIN_HELD {min_held}\n" in (top / "cascade_top.h").read_text()
    assert tl.load_manifest(top)["gate"]["ictal_every"] == k
    assert tl.load_manifest(top)["gate"]["ictal_min_held"] == min_held
    shutil.copytree(built["top"] / "csim_build", top / "csim_build", dirs_exist_ok=True)  # reuse model objects
    tl.build_csim(top, jobs=2, werror=True)
    res = tb.closed_loop(top, X, tau=tau, rule="confirm_changes", keras_simple=zs, keras_complex=zc)
    assert res["agreement_with_python_on_cpp_logits"] == 1.0
    # Loaded states: ictal, the hold above and at H, gap below and at K - 1.
    prev = np.array([1, 1, 1, 1, 0, 1, 1, 0])
    held = np.array([2, 5, 1, 3, 3, 6, 2, 0])
    gaps = np.array([0, 1, 0, 2, 0, 0, 5, 0])
    carried = tl.carried_reference(prev, gaps, held, min_held, k)
    assert carried.tolist() == expected
    cpp = csim.run_cascade_binary(top, X[:8], prev_cls=prev, gap=gaps, held=held)
    final = simple_is_final(cpp["simple_logits"], tau, "confirm_changes", prev, gaps, probe, held=held)
    assert np.array_equal(~final & ~carried, cpp["used_complex"])
    assert (cpp["cls"][carried] == 1).all()
    with pytest.raises(tl.ConfigError, match="gate_ictal_every"):
        tl.generate_toplevel(tmp_path / "bad", gate_rule="confirm_changes", gate_hold=2, gate_hold_max=2,
                             gate_ictal_every=2, **toplevel_kwargs(prj, T, C, electrode=ELECTRODE, tau=tau))
