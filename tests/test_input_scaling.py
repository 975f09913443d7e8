"""Causal input scaling (data.input_scaling: causal_robust): causality, per-recording reset,
amplitude invariance, the windowing path (thinned training windows see their recording's past), the
config, and the generated C++ top level computing the same numbers bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from qcascade.config import load_config
from qcascade.data import Recording, build_windowsets, iter_padded_batches
from qcascade.data.scaling import CausalScaler, ScalingSpec, scale_sequence
from qcascade.errors import ConfigError

T, C = 64, 4


def drifting(n=40, seed=0, gain=1.0):
    """Raw windows (n, T, C) in uV: offsets per electrode, one flat electrode, an artefact."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 25.0, (n, T, C)) * gain + np.array([5.0, -20.0, 0.0, 40.0])
    X[:, :, 2] = 7.0
    X[n // 2, 5:9, :] += 4000.0
    return X.astype(np.float32)


def scaler(memory_shift=3, mask=(1, 1, 0, 1)):
    return CausalScaler(ScalingSpec(n_times=T, memory_shift=memory_shift), np.zeros(C), np.full(C, 50.0),
                        np.asarray(mask, bool))


def test_output_depends_only_on_the_recordings_past():
    X = drifting()
    Y = scale_sequence(X, scaler())
    for k in (1, 17, 39):
        X2 = X.copy()
        X2[k:] = X2[k:] * 7.0 - 300.0  # a different future from window k on
        Y2 = scale_sequence(X2, scaler())
        assert np.array_equal(Y[:k], Y2[:k])
        assert not np.array_equal(Y[k], Y2[k])
    # The statistics of window k are used from window k + 1 on (not by window k itself).
    X3 = X.copy()
    X3[5, 0, 0] += 100.0  # one sample: only that output changes in window 5, the rest from window 6
    Y3 = scale_sequence(X3, scaler())
    changed = Y3[5] != Y[5]
    assert np.array_equal(Y[:5], Y3[:5]) and changed[0, 0] and changed.sum() == 1
    assert not np.array_equal(Y[6], Y3[6])
    assert np.array_equal(Y[:, :, 2], np.zeros_like(Y[:, :, 2]))  # masked electrode


def test_reset_starts_each_recording_afresh():
    a, b = drifting(20, seed=1), drifting(25, seed=2, gain=4.0)
    both = np.concatenate([a, b])
    reset = np.zeros(len(both), bool)
    reset[len(a)] = True
    Y = scale_sequence(both, scaler(), reset)
    assert np.array_equal(Y[:len(a)], scale_sequence(a, scaler()))
    assert np.array_equal(Y[len(a):], scale_sequence(b, scaler()))
    assert not np.array_equal(scale_sequence(both, scaler())[len(a):], Y[len(a):])  # no reset: a's state leaks


def test_amplitude_of_a_recording_cancels_after_warm_up():
    """The point of the scaling: a recording recorded 4x louder gives (almost) the same inputs."""
    X = drifting(40)
    X[X.shape[0] // 2] = X[0]  # no artefact here: compare clean windows
    Y1 = scale_sequence(X, scaler())
    Y4 = scale_sequence(X * 4.0, scaler())
    late = slice(8, None)
    rel = np.abs(Y4[late] - Y1[late]).mean() / np.abs(Y1[late]).mean()
    assert rel < 0.01
    first = np.abs(Y4[0]).mean() / np.abs(Y1[0]).mean()  # window 0 uses the initial state
    assert first > 3.0


def memory_recording(rid, n_samples, gain, seed, spans=()):
    rng = np.random.default_rng(seed)
    data = (rng.standard_normal((n_samples, 3)) * 20.0 * gain + 3.0).astype(np.float32)
    return Recording("P", rid, None, 512, n_samples, 3, list(spans), (rid,) if spans else (), data=data)


def test_thinned_training_windows_carry_their_recordings_causal_scale():
    recs = [memory_recording(f"P_Sz{k}", 40 * 512, gain, k, [(20 * 512, 25 * 512)])
            for k, gain in ((1, 1.0), (2, 3.0), (3, 0.5))]
    spec = ScalingSpec(n_times=512, memory_shift=2)
    splits = {"train": recs[:2], "val": [], "test": recs[2:]}
    sets, norm = build_windowsets(splits, n_chans=4, stride=512, train_nonictal_stride=2048,
                                  input_scaling="causal_robust", scaling_spec=spec)
    train = sets["train"]
    for rec in recs[:2]:
        full = np.zeros((rec.n_samples // 512, 512, 4), np.float32)
        full[:, :, :3] = rec.data[:len(full) * 512].reshape(len(full), 512, 3)
        ref = scale_sequence(full, CausalScaler(spec, norm.center, norm.scale, norm.mask))
        rows = np.flatnonzero(train.record_ids == rec.record_id)
        starts = np.round(train.start_s[rows] * 512).astype(int) // 512
        assert len(rows) < len(full)  # thinned
        assert np.array_equal(train.X[rows], ref[starts])
    # Louder recordings are not louder inputs: median |x| per recording within 15 %.
    med = [np.median(np.abs(train.X[train.record_ids == r.record_id][5:, :, :3])) for r in recs[:2]]
    assert abs(med[0] / med[1] - 1) < 0.15
    with pytest.raises(ValueError, match="input_scaling"):
        build_windowsets(splits, n_chans=4, input_scaling="median")
    # Streaming a recording (long-term evaluation) scales it exactly like the window sets.
    streamed = np.concatenate([X for X, *_ in iter_padded_batches(recs[2:], norm, n_chans=4, batch_size=7,
                                                                   scaling_spec=spec)])
    assert np.array_equal(streamed, sets["test"].X)


@pytest.mark.parametrize("data, match", [
    ({"input_scaling": "causal"}, "input_scaling"),
    ({"scaling_memory_windows": 48}, "scaling_memory_windows"),
    ({"scaling_memory_windows": 0}, "scaling_memory_windows"),
    ({"input_scaling": "causal_robust", "n_times": 480}, "power of two"),
])
def test_config_is_validated(data, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides={"data": data})


def test_spec_from_config_follows_the_input_type():
    cfg = load_config(overrides={"data": {"input_scaling": "causal_robust", "scaling_memory_windows": 128},
                               "quant": {"input_bits": 12, "input_int_bits": 4}})
    spec = ScalingSpec.from_config(cfg.data, cfg.quant)
    assert (spec.memory_shift, spec.out_bits, spec.out_int_bits, spec.out_frac) == (7, 12, 4, 7)


def test_cpp_top_level_scales_like_python(tmp_path):
    """The design with scaling, fed raw windows of two recordings, equals the design without it fed
    the Python-scaled windows: same logits, classes and routing on every window (bit-exact), with one
    lane, lanes that divide the electrodes and lanes that do not (the last group is partial)."""
    from test_toplevel import build_tiny_projects, toplevel_kwargs

    from qcascade.hls import csim, scaling_hw
    from qcascade.hls import toplevel as tl

    projects = build_tiny_projects(tmp_path / "prj", T, C)
    X = np.concatenate([drifting(30, seed=3), drifting(30, seed=4, gain=6.0)])
    X[40, :, 1] = 9000.0  # saturates the scaled input
    reset = np.zeros(len(X), bool)
    reset[[0, 30]] = True
    init = {"memory_shift": 3, "center": np.zeros(C), "scale": np.full(C, 50.0),
            "mask": np.array([1, 1, 0, 1], bool)}
    kw = toplevel_kwargs(projects, T, C, electrode=1, tau=0.6)
    hw, host = tmp_path / "hw", tmp_path / "host"
    tl.generate_toplevel(host, **kw)
    tl.build_csim(host, werror=True, jobs=2)
    assert "scale_reset" not in (host / "cascade_top.h").read_text()
    b = None
    # Regenerating hw for another lane count recompiles only the top level (the model copies are kept).
    for lanes in (2, 3, 1):
        tl.generate_toplevel(hw, input_scaling={**init, "lanes": lanes}, tb_windows=X[:4], **kw)
        header = (hw / "input_scaling.h").read_text()
        assert "QCASCADE_INPUT_SCALING 1" in header and f"SCALE_LANES = {lanes};" in header
        assert ("cyclic factor=" in (hw / "cascade_top.cpp").read_text()) == (lanes > 1)
        assert tl.load_manifest(hw)["input_scaling"]["lanes"] == lanes
        assert "scale_reset" in (hw / "cascade_top.h").read_text()
        tl.build_csim(hw, werror=True, jobs=2)
        if b is None:
            Y = scale_sequence(X, scaling_hw.reference_scaler(tl.load_manifest(hw)), reset)
            assert Y.max() == 32 - 2 ** -10  # saturation exercised
            b = csim.run_cascade_binary(host, Y)
        a = csim.run_cascade_binary(hw, X, scale_reset=reset)
        assert 0 < a["used_complex"].sum() < len(X)
        assert np.array_equal(a["cls"], b["cls"]) and np.array_equal(a["used_complex"], b["used_complex"]), lanes
        assert np.array_equal(a["simple_logits"], b["simple_logits"]), lanes
        assert np.array_equal(np.nan_to_num(a["complex_logits"]), np.nan_to_num(b["complex_logits"])), lanes
    # The comparison can fail: the design without the reset at window 30 answers differently.
    c = csim.run_cascade_binary(hw, X)
    assert not np.array_equal(c["simple_logits"][30:], a["simple_logits"][30:])
    with pytest.raises(ConfigError, match="input_scaling"):
        tl.generate_toplevel(tmp_path / "bad", input_scaling={"memory_shift": 3}, **kw)
    for bad in (0, C + 1, 1.5, True):
        with pytest.raises(ConfigError, match="lanes"):
            tl.generate_toplevel(tmp_path / "bad", input_scaling={**init, "lanes": bad}, **kw)


def test_sub_stride_ictal_training_windows_keep_the_hardware_state():
    """data.train_ictal_stride_s: ictal training windows cut every 128 samples are scaled with the
    state of the last 512-sample window before them; the state runs over the 512 grid only."""
    recs = [memory_recording(f"P_Sz{k}", 40 * 512, gain, k, [(20 * 512, 25 * 512)])
            for k, gain in ((1, 1.0), (2, 3.0))]
    spec = ScalingSpec(n_times=512, memory_shift=2)
    splits = {"train": recs[:1], "val": [], "test": recs[1:]}
    kw = dict(n_chans=4, stride=512, train_nonictal_stride=1024, input_scaling="causal_robust", scaling_spec=spec)
    coarse, norm = build_windowsets(splits, **kw)
    fine, norm2 = build_windowsets(splits, train_ictal_stride=128, **kw)
    rec, tr = recs[0], fine["train"]
    assert np.array_equal(norm.center, norm2.center) and np.array_equal(norm.scale, norm2.scale)
    full = np.zeros((rec.n_samples // 512, 512, 4), np.float32)
    full[:, :, :3] = rec.data[:len(full) * 512].reshape(len(full), 512, 3)
    ref = CausalScaler(spec, norm2.center, norm2.scale, norm2.mask)
    grid = scale_sequence(full, ref)
    starts = np.round(tr.start_s * 512).astype(int)
    off = starts % 512 != 0
    assert off.sum() > 0 and np.all(tr.y[off] == 1)  # only ictal windows between the grid
    assert np.array_equal(tr.X[~off], grid[starts[~off] // 512])
    for i in np.flatnonzero(off)[:6]:
        s = starts[i]
        st = CausalScaler(spec, norm2.center, norm2.scale, norm2.mask)
        scale_sequence(full[:s // 512 + 1], st)  # the state after the last grid window before s
        w = np.zeros((512, 4), np.float32)
        w[:, :3] = rec.data[s:s + 512]
        assert np.array_equal(tr.X[i], st.scale(w))
    assert np.array_equal(fine["test"].X, coarse["test"].X)  # test windows are untouched
    assert fine["train"].y.sum() > 3 * coarse["train"].y.sum()
