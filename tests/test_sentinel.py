"""The gate's sentinel (qcascade.sentinel) and how the gate walks with it (qcascade.gate)."""

from __future__ import annotations

import numpy as np
import pytest

from qcascade.config import load_config
from qcascade.errors import ConfigError
from qcascade.gate import cascade_decide, simple_is_final
from qcascade.sentinel import (RATIO_ONE, WARMUP, SentinelSpec, input_codes, line_lengths, sentinel_ops, sentinel_up,
                               sentinel_walk)

SPEC = SentinelSpec(ratio=3.0, electrodes=2, memory_shift=3, every=4)


def test_line_length_is_the_sum_of_absolute_steps_per_electrode():
    codes = np.array([[[0, 5], [3, 5], [1, -5], [4, 0]]])  # (1 window, 4 samples, 2 electrodes)
    assert line_lengths(codes, stride=1).tolist() == [[3 + 2 + 3, 0 + 10 + 5]]
    assert line_lengths(codes, stride=2).tolist() == [[1, 10]]  # samples 0 and 2
    assert line_lengths(np.repeat(codes, 4, axis=1)).tolist() == [[3 + 2 + 3, 0 + 10 + 5]]  # the default stride 4


def test_input_codes_are_exact_for_quantized_inputs_and_saturate():
    frac = 16 - 1 - 5
    X = np.array([[[-3.0, 1.5 + 2.0 ** -frac, 40.0, -40.0]]], np.float32)
    assert input_codes(X, 16, 5).tolist() == [[[-3 * 2 ** frac, int(1.5 * 2 ** frac) + 1, 2 ** 15 - 1, -2 ** 15]]]


def _walk(L, first=None, spec=SPEC):
    first = np.r_[True, np.zeros(len(L) - 1, bool)] if first is None else first
    return sentinel_walk(np.asarray(L), spec, first)


def test_up_needs_enough_electrodes_above_ratio_times_their_own_baseline():
    base = [100, 100, 100, 0]  # the last electrode is dead
    L = [base] * 8 + [[400, 400, 100, 0], [400, 100, 100, 0], [301, 300, 100, 0], [400, 400, 100, 900]]
    up, count = _walk(L, spec=SentinelSpec(ratio=3.0, electrodes=2, memory_shift=15, every=1))  # a still baseline
    assert count.tolist()[8:] == [2, 1, 1, 3]  # 300 is not > 3 x 100; the dead electrode counts once alive
    assert up.tolist() == [False] * 8 + [True, False, False, True]


def test_never_up_during_warmup_and_the_state_restarts_with_each_recording():
    L = np.full((2 * WARMUP + 2, 3), 100)
    L[1] = L[WARMUP + 2] = 1000  # a jump inside each recording's warm-up
    L[WARMUP + 1] = 1  # the second recording's first window sets a tiny baseline
    first = np.zeros(len(L), bool)
    first[[0, WARMUP + 1]] = True
    up, count = _walk(L, first)
    assert count[1] == 3 and not up[:WARMUP].any()
    assert count[WARMUP + 2] == 3 and not up[WARMUP + 1:2 * WARMUP + 1].any()
    assert up[2 * WARMUP + 1]  # 100 > 3 x the young second baseline, after its warm-up


def test_persist_counts_only_runs_of_up_windows_and_restarts_with_each_recording():
    L = np.full((30, 3), 100)
    L[[8, 9]] = 1000  # a 2-window artefact
    L[14:20] = 1000  # a 6-window event
    L[24:27] = 1000  # 3 windows, of which the first starts the second recording
    first = np.zeros(30, bool)
    first[[0, 24]] = True
    spec = SentinelSpec(ratio=3.0, electrodes=3, memory_shift=15, every=1, persist=3)
    up, count = sentinel_walk(L, spec, first)
    bare, _ = sentinel_walk(L, SentinelSpec(ratio=3.0, electrodes=3, memory_shift=15, every=1), first)
    assert np.flatnonzero(bare).tolist() == [8, 9] + list(range(14, 20))  # 24-26: the new recording's warm-up
    assert np.flatnonzero(up).tolist() == [16, 17, 18, 19]  # from the event's third window on
    assert count[8] == 3  # the count is the electrodes above, whatever the run
    with pytest.raises(ValueError, match="persist"):
        SentinelSpec(ratio=3.0, electrodes=3, memory_shift=5, every=1, persist=256)


def test_stay_keeps_the_sentinel_up_while_enough_electrodes_stay_above_the_lower_ratio():
    """Up at 3x on 3 electrodes; with stay 1.5 it stays up while 3 electrodes are above 1.5x, ends
    when one drops, does not start at the lower ratio alone, and restarts with each recording."""
    L = np.full((30, 4), 100)
    L[10:12, :3] = 400  # the onset: 4x on three electrodes
    L[12:16, :3] = 200  # then 2x: above 1.5x, not 3x
    L[16, :2] = 200  # only two electrodes left above: the stay ends
    L[20:23, :3] = 200  # 2x without an onset: never up
    L[24, :3] = 400  # up in the first window after the second recording's warm-up ...
    L[25:27, :3] = 200  # ... and staying
    first = np.zeros(30, bool)
    first[[0, 18]] = True
    spec = SentinelSpec(ratio=3.0, electrodes=3, memory_shift=15, every=1, stay_ratio=1.5)
    up, count = sentinel_walk(L, spec, first)
    bare, bare_count = sentinel_walk(L, SentinelSpec(ratio=3.0, electrodes=3, memory_shift=15, every=1), first)
    assert np.flatnonzero(bare).tolist() == [10, 11, 24]
    assert np.flatnonzero(up).tolist() == [10, 11, 12, 13, 14, 15, 24, 25, 26]
    assert np.array_equal(count, bare_count)  # the count stays the electrodes above the ratio
    assert spec.stay_code == 24 and spec.as_dict()["stay_code"] == 24
    assert SentinelSpec.from_dict({k: v for k, v in spec.as_dict().items() if k != "stay_ratio"}).stay_code == 0
    with pytest.raises(ValueError, match="stay_ratio"):
        SentinelSpec(ratio=3.0, electrodes=3, memory_shift=5, every=1, stay_ratio=3.0)


def test_own_electrode_raises_the_sentinel_alone_after_persist_windows():
    """The simple model's electrode (2) alone above 1.5x for 3 windows raises the sentinel with
    persist 2 (on the second and third), one window above does not, other electrodes alone do not,
    and the run restarts with each recording."""
    L = np.full((30, 4), 100)
    L[8:11, 2] = 200  # 2x on the own electrode only: up on 9 and 10
    L[13, 2] = 200  # one window: never up
    L[15:18, 0] = 200  # another electrode alone: never up
    L[22, 2] = 200  # the second recording: its first window above after the warm-up ...
    L[23:25, 2] = 200  # ... and two more: up on 23 and 24
    first = np.zeros(30, bool)
    first[[0, 17]] = True
    spec = SentinelSpec(ratio=3.0, electrodes=2, memory_shift=15, every=1, persist=2, own_ratio=1.5, own_electrode=2)
    up, count = sentinel_walk(L, spec, first)
    assert np.flatnonzero(up).tolist() == [9, 10, 23, 24]
    assert not count.any()  # the count stays the electrodes above the (main) ratio
    assert not sentinel_walk(L, SentinelSpec(ratio=3.0, electrodes=2, memory_shift=15, every=1, persist=2), first)[0].any()
    assert (spec.own_code, spec.as_dict()["own_electrode"]) == (24, 2)
    assert vars(SentinelSpec.from_dict(spec.as_dict())) == vars(spec)
    old = {k: v for k, v in spec.as_dict().items() if not k.startswith("own")}  # a deployment from before round 41
    assert SentinelSpec.from_dict(old).own_code == 0
    with pytest.raises(ValueError, match="simple model's electrode"):
        SentinelSpec(ratio=3.0, electrodes=2, memory_shift=5, every=1, own_ratio=1.5)
    with pytest.raises(ValueError, match="own_electrode 7"):
        sentinel_walk(L, SentinelSpec(ratio=3.0, electrodes=2, memory_shift=5, every=1, own_ratio=1.5, own_electrode=7),
                      first)


def test_baseline_is_a_clipped_shift_average():
    """B += (min(L, 2B) - B) >> shift: one huge window moves it by at most B >> shift."""
    L = np.array([[800], [10 ** 6], [800]])
    spec = SentinelSpec(ratio=1.5, electrodes=1, memory_shift=3, every=1)
    _, count = sentinel_walk(L, spec, np.array([True, False, False]))
    # After window 1: B = 800 + (1600 - 800) >> 3 = 900; window 2 (800) is not above 1.5 x 900.
    assert count.tolist() == [0, 1, 0]
    L2 = np.array([[800], [10 ** 6], [1351]])
    _, count2 = sentinel_walk(L2, spec, np.array([True, False, False]))
    assert count2[2] == int(RATIO_ONE * 1351 > spec.ratio_code * 900) == 1


def test_sentinel_up_does_not_depend_on_the_order_windows_are_given_in():
    rng = np.random.default_rng(0)
    n, t, c = 40, 32, 6
    X = (rng.standard_normal((n, t, c)) * 0.1).astype(np.float32)
    X[25:30, :, :3] *= 20  # a burst on three electrodes of recording "a"
    rec = np.array(["a"] * 30 + ["b"] * 10)
    start = np.r_[np.arange(30), np.arange(10)].astype(float)
    up = sentinel_up(X, rec, start, SPEC, 16, 5)
    assert up[25] and not up[:25].any()
    perm = rng.permutation(n)
    assert np.array_equal(sentinel_up(X[perm], rec[perm], start[perm], SPEC, 16, 5), up[perm])


def test_sentinel_up_codes_only_the_samples_it_reads_with_the_same_result():
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((300, 64, 8)) * 0.2).astype(np.float32)
    X[200:215, 1::4, :4] *= 30  # a burst on samples the subsampled line length skips
    X[250:260, ::4, :4] *= 30  # and one on samples it reads
    first = np.r_[True, np.zeros(299, bool)]
    full = sentinel_walk(line_lengths(input_codes(X, 16, 5)), SPEC, first)[0]
    assert full[250] and not full[200:215].any()
    assert np.array_equal(sentinel_up(X, None, None, SPEC, 16, 5), full)


def test_gate_routes_one_window_in_every_while_the_sentinel_is_up():
    n = 12
    zs = np.tile([[3.0, -3.0]], (n, 1))  # a confident "interictal" simple model
    zc = np.tile([[-1.0, 1.0]], (n, 1))
    up = np.zeros(n, bool)
    up[2:10] = True
    off = cascade_decide(zs, zc, 0.5, rule="confidence")
    assert not off["routed"].any()
    dec = cascade_decide(zs, zc, 0.5, rule="confidence", sentinel=up, sentinel_every=4)
    # gap counts unrouted windows: routed when up and gap >= 3 (windows 3 and 7), then gap restarts.
    assert np.flatnonzero(dec["routed"]).tolist() == [3, 7]
    every1 = cascade_decide(zs, zc, 0.5, rule="confidence", sentinel=up, sentinel_every=1)
    assert np.array_equal(every1["routed"], up)
    # confirm_changes: once the complex model calls the seizure, the simple model's "interictal"
    # is a change of state, so the complex model keeps it to the end of the sentinel's look.
    cc = cascade_decide(zs, zc, 0.5, rule="confirm_changes", sentinel=up, sentinel_every=4)
    assert np.flatnonzero(cc["routed"]).tolist() == list(range(3, n))
    with pytest.raises(ValueError, match="sentinel must have shape"):
        cascade_decide(zs, zc, 0.5, sentinel=up[:-1])


def test_sentinel_interictal_only_routes_no_window_the_simple_model_calls_ictal():
    """``sentinel_interictal_only``: while up, the sentinel routes only windows the simple model calls
    interictal; the windows it no longer routes are exactly the sentinel's windows on which the
    simple model said ictal (the rule and the hold still route theirs)."""
    n = 16
    zs = np.tile([[3.0, -3.0]], (n, 1))  # confidently interictal ...
    zs[8:12] = [-3.0, 3.0]  # ... but confidently ictal on windows 8-11
    zc = np.tile([[3.0, -3.0]], (n, 1))  # the complex model agrees: nothing is ever a seizure
    up = np.ones(n, bool)
    every = cascade_decide(zs, zc, 0.5, rule="confidence", sentinel=up, sentinel_every=2)
    only = cascade_decide(zs, zc, 0.5, rule="confidence", sentinel=up, sentinel_every=2, sentinel_interictal_only=True)
    assert np.flatnonzero(every["routed"]).tolist() == [1, 3, 5, 7, 9, 11, 13, 15]
    # Windows 9 and 11 (simple: ictal) are not routed; the gap keeps counting, so 12 is.
    assert np.flatnonzero(only["routed"]).tolist() == [1, 3, 5, 7, 12, 14]
    for rule in ("confidence", "confirm_changes"):
        for hold in (0, 2):
            rng = np.random.default_rng(hold)
            a, b = rng.standard_normal((60, 2)), rng.standard_normal((60, 2))
            sen = rng.random(60) < 0.5
            kw = dict(rule=rule, sentinel=sen, sentinel_every=2, hold=hold)
            on = cascade_decide(a, b, 0.2, **kw, sentinel_interictal_only=True)
            # The vectorised rule gives the walk's decisions on the walk's own state.
            final = simple_is_final(a, 0.2, rule, on["prev_cls"], on["gap"], 0, sen, 2, on["held"] if hold else None,
                                    sentinel_interictal_only=True)
            assert np.array_equal(~final, on["routed"])


def test_sentinel_without_up_windows_decides_like_no_sentinel():
    rng = np.random.default_rng(1)
    zs, zc = rng.standard_normal((50, 2)), rng.standard_normal((50, 2))
    for rule in ("confidence", "confirm_changes", "confirm_ictal_hold"):
        for probe in (0, 5):
            a = cascade_decide(zs, zc, 0.3, rule=rule, probe_every=probe)
            b = cascade_decide(zs, zc, 0.3, rule=rule, probe_every=probe, sentinel=np.zeros(50, bool), sentinel_every=3)
            assert np.array_equal(a["pred"], b["pred"]) and np.array_equal(a["routed"], b["routed"])


def test_sentinel_cost_counts_every_sample_of_every_electrode():
    assert sentinel_ops(128, 512) == 128 * 127 + 2 * 128  # 128 samples of each electrode read


@pytest.mark.parametrize("key,value,match", [
    ("gate_sentinel_ratio", 1.0, "gate_sentinel_ratio"),
    ("gate_sentinel_memory", 24, "power of 2"),
    ("gate_sentinel_every", 0, "gate_sentinel_every"),
    ("gate_sentinel_electrodes", 0, "gate_sentinel_electrodes"),
    ("gate_sentinel_persist", 0, "gate_sentinel_persist"),
    ("gate_sentinel_persist", 256, "8-bit counter"),
    ("gate_sentinel_stay_ratio", 1.0, "gate_sentinel_stay_ratio"),
    ("gate_sentinel_stay_ratio", 2.5, "gate_sentinel_stay_ratio"),  # not below the ratio (default 2.5)
    ("gate_sentinel_stay_ratio", 1.02, "sixteenths"),
    ("gate_sentinel_own_ratio", 1.0, "gate_sentinel_own_ratio"),
    ("gate_sentinel_own_ratio", 3.5, "gate_sentinel_own_ratio"),
    ("gate_sentinel_own_ratio", 1.02, "sixteenths"),
])
def test_config_rejects_bad_sentinel_values(key, value, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides={"train": {key: value}, "hls": {"enabled": False}})


def test_config_gives_the_spec_with_or_without_the_hardware_flow():
    assert load_config(overrides={"train": {"gate_sentinel_ratio": 3.0}}).hls.enabled  # the C++ top level has it
    cfg = load_config(overrides={"train": {"gate_sentinel_ratio": 2.5, "gate_sentinel_memory": 32},
                                 "hls": {"enabled": False}})
    spec = cfg.train.sentinel_spec()
    # The default since round 37: 2 electrodes over 2.5x (ratio code 2.5 * 16); one window in 8 while up since round 60.
    assert (spec.ratio_code, spec.memory_shift, spec.electrodes, spec.every) == (40, 5, 2, 8)
    assert vars(load_config().train.sentinel_spec()) == vars(spec)  # on by default (round 17)
    assert load_config(overrides={"train": {"gate_sentinel_ratio": 0}}).train.sentinel_spec() is None
    # The simple model's own electrode over 1.75x: the default since round 41, once an electrode is chosen.
    own = cfg.train.sentinel_spec(8, electrode=5)
    assert (own.own_code, own.own_electrode) == (28, 5) and spec.own_code == 0
    off = load_config(overrides={"train": {"gate_sentinel_own_ratio": 0}}).train.sentinel_spec(8, electrode=5)
    assert off.own_code == 0 and off.own_electrode is None


def _recordings(T: int, C: int, n: int = 24, seed: int = 0):
    """Two recordings of ``n`` windows on the ap_fixed<16,6> grid, with bursts on 3 electrodes and
    one on electrode 1 alone."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 0.4, (2 * n, T, C))
    for start in (10, 15, n + 12, n + 19):  # a few windows of large, fast activity
        X[start:start + 3, :, 1:4] *= 6.0
    X[n + 6:n + 9, :, 1] *= 3.0  # electrode 1 alone: only its own watch can see it
    X[n:] *= 4.0  # the second recording is louder: a baseline carried over from the first misleads
    X[n:, :, 5] = 0.0  # a dead electrode in the second recording
    X = np.round(X * 2 ** 10) / 2 ** 10  # the model input grid: codes map exactly
    record_ids = np.repeat(["a", "b"], n)
    start_s = np.tile(np.arange(n, dtype=float), 2)
    return X.astype(np.float32), record_ids, start_s


@pytest.mark.parametrize("interictal_only,persist,stay,own,watch", [
    (False, 1, 0.0, 0.0, None), (True, 1, 0.0, 0.0, None), (True, 2, 0.0, 0.0, None), (True, 2, 1.25, 0.0, None),
    (True, 2, 0.0, 1.5, None), (True, 1, 0.0, 1.5, (1, 2, 6, 7))])
def test_cpp_top_level_computes_the_python_sentinel_and_gate(tmp_path, interictal_only, persist, stay, own, watch):
    """The generated design with the sentinel, fed two recordings in time order with the gate state
    kept inside the design: its sentinel bit equals qcascade.sentinel's on every window, and its
    decisions equal qcascade.gate.cascade_decide walked on the design's own logits with that sentinel.
    Without the recording-start input at the second recording, the sentinel differs (the check can fail).
    With ``interictal_only`` the design routes like the Python gate with it, and not like the gate without.
    With ``persist`` 2 the design's run counter drops the first window of every burst, as the Python walk does.
    With a stay ratio the design's sentinel stays up after a burst where the Python walk's does.
    With an own ratio the design's sentinel is also up where the simple model's electrode alone rose.
    With a watch list the design reads only those electrodes, like the Python sentinel: a burst on
    three electrodes of which it watches two does not raise it."""
    from test_toplevel import build_tiny_projects, toplevel_kwargs

    from qcascade.hls import csim
    from qcascade.hls import toplevel as tl

    T, C = 64, 8
    # The simple model's classes swapped: it calls the bursts ictal, so the sentinel's windows include
    # windows the simple model calls ictal (which interictal_only does not route).
    projects = build_tiny_projects(tmp_path / "prj", T, C, swap_simple_classes=True)
    X, rid, start = _recordings(T, C)
    if watch:  # a burst on three electrodes of which the list holds two: seen only without the list
        X[6:9, :, 5:8] *= 6.0
    spec = SentinelSpec(ratio=2.5, electrodes=3, memory_shift=2, every=3, interictal_only=interictal_only,
                        persist=persist, stay_ratio=stay, own_ratio=own, own_electrode=1 if own else None, watch=watch)
    top = tmp_path / "top"
    kw = toplevel_kwargs(projects, T, C, electrode=1, tau=0.6)
    tl.generate_toplevel(top, sentinel=spec.as_dict(), tb_windows=X[:4], **kw)
    header = (top / "cascade_top.h").read_text()
    assert "QCASCADE_GATE_SENTINEL 1" in header and "sentinel_reset" in header and "prev_gap" in header
    assert f"QCASCADE_GATE_SENTINEL_INTERICTAL_ONLY {int(interictal_only)}" in header
    assert f"SENTINEL_PERSIST = {persist};" in header
    assert f"SENTINEL_STAY_CODE = {round(stay * 16)};" in header
    assert f"SENTINEL_OWN_CODE = {round(own * 16)};" in header
    assert f"SENTINEL_N_WATCH = {len(watch) if watch else C};" in header
    assert f"QCASCADE_SENTINEL_WATCH_ALL {int(watch is None)}" in header
    if watch:
        assert "sentinel_watch_list[SENTINEL_N_WATCH] = {1, 2, 6, 7};" in (top / "cascade_top.cpp").read_text()
    man = tl.load_manifest(top)
    assert man["gate"]["sentinel"]["ratio_code"] == 40 and man["gate"]["has_gap"] and man["gate"]["uses_prev"]
    tl.build_csim(top, werror=True, jobs=2)
    first = np.r_[True, rid[1:] != rid[:-1]]
    keep = np.where(first, 0, 2)  # load prev_cls 0 (and gap 0) at a recording's start, then closed loop
    cpp = csim.run_cascade_binary(top, X, prev_cls=keep, gap=np.zeros(len(X), np.int64), scale_reset=first)
    up = sentinel_up(X, rid, start, spec, 16, 5)
    assert 2 <= up.sum() < len(X) // 2
    assert np.array_equal(cpp["sentinel"], up)
    if watch:  # as the sentinel on those electrodes' columns, and unlike the one reading every electrode
        columns = SentinelSpec(2.5, 3, 2, 3, interictal_only, persist, own_ratio=own, own_electrode=0)
        assert np.array_equal(up, sentinel_up(X[:, :, list(watch)], rid, start, columns, 16, 5))
        every = SentinelSpec(2.5, 3, 2, 3, interictal_only, persist, own_ratio=own, own_electrode=1)
        assert np.any(sentinel_up(X, rid, start, every, 16, 5)[6:9] & ~up[6:9])
    elif own:  # more windows than without the own electrode, every one of those among them
        bare = sentinel_up(X, rid, start, SentinelSpec(2.5, 3, 2, 3, interictal_only, persist), 16, 5)
        assert up.sum() > bare.sum() and not np.any(bare & ~up)
    if persist > 1 and not stay and not own:  # fewer windows than without the run counter, all of them up without it too
        bare = sentinel_up(X, rid, start, SentinelSpec(2.5, 3, 2, 3, interictal_only), 16, 5)
        assert up.sum() < bare.sum() and not np.any(up & ~bare)
    if stay:  # more windows than without the stay, every one of those among them
        gone = sentinel_up(X, rid, start, SentinelSpec(2.5, 3, 2, 3, interictal_only, persist), 16, 5)
        assert up.sum() > gone.sum() and not np.any(gone & ~up)
    zc = np.nan_to_num(cpp["complex_logits"])
    walk = dict(rule="confidence", record_ids=rid, start_s=start, sentinel=up, sentinel_every=spec.every)
    py = cascade_decide(cpp["simple_logits"], zc, 0.6, **walk, sentinel_interictal_only=interictal_only)
    assert np.array_equal(py["routed"], cpp["used_complex"]) and np.array_equal(py["pred"], cpp["cls"])
    other = cascade_decide(cpp["simple_logits"], zc, 0.6, **walk, sentinel_interictal_only=not interictal_only)
    assert not np.array_equal(other["routed"], cpp["used_complex"])
    # The sentinel routes windows the confidence rule alone would not (unless they are all simple-ictal).
    alone = cascade_decide(cpp["simple_logits"], zc, 0.6, rule="confidence", record_ids=rid, start_s=start)
    assert np.any(py["routed"] & ~alone["routed"]) != interictal_only
    stale = csim.run_cascade_binary(top, X, prev_cls=keep, gap=np.zeros(len(X), np.int64),
                                    scale_reset=np.arange(len(X)) == 0)
    assert not np.array_equal(stale["sentinel"], up)
    # The Vitis testbench passes against its own expected results with the sentinel's seventh field.
    from qcascade.hls.testbench import run_tb, write_tb_data

    tb = write_tb_data(top, X[:16], np.zeros(16, np.int64), np.zeros(16, np.int64))
    assert tb["n_sentinel_up"] == int(up[:16].sum()) > 0  # the testbench reaches the sentinel's path
    assert run_tb(top).returncode == 0
    with pytest.raises(ConfigError, match="electrodes"):
        tl.generate_toplevel(tmp_path / "bad", sentinel={**spec.as_dict(), "electrodes": C + 1}, **kw)
    if own:  # the design's own electrode is the simple model's
        with pytest.raises(ConfigError, match="own_electrode 2"):
            tl.generate_toplevel(tmp_path / "bad2", sentinel={**spec.as_dict(), "own_electrode": 2}, **kw)


def test_gap_saturates_like_the_16_bit_counter_of_the_top_level():
    """Without a probe the gap grows while the sentinel stays down; it stops at 65535 (the C++
    ``gate_gap_t``), so the gap state written for the design never wraps."""
    from qcascade.gate import MAX_PROBE

    n = MAX_PROBE + 10
    zs = np.tile([[2.0, -2.0]], (n, 1))  # confidently interictal: never routed by the rule
    up = np.zeros(n, bool)
    up[-1] = True
    out = cascade_decide(zs, zs, 0.5, rule="confidence", sentinel=up, sentinel_every=4)
    assert out["gap"].max() == MAX_PROBE and out["gap"][-1] == MAX_PROBE
    assert out["routed"].tolist() == [False] * (n - 1) + [True]


def test_sentinel_is_off_where_there_are_fewer_electrodes_than_it_counts():
    """One-electrode data (Bonn) with the default sentinel: it could never be up, so the unit
    calibrates and deploys the bare rules (and the top level gets no sentinel to refuse)."""
    from types import SimpleNamespace

    from qcascade.config_train import TrainConfig
    from qcascade.steps_choose import choose_gate_variant, gate_candidates

    train = TrainConfig(gate="confirm_changes", tau_grid_size=5, gate_hold=0)
    # The default counts 2 electrodes (round 37): one-electrode data gets none.
    assert train.sentinel_spec(1) is None and train.sentinel_spec(2) is not None
    assert TrainConfig(gate_sentinel_electrodes=3).sentinel_spec(2) is None
    assert train.sentinel_spec(3) is not None and train.sentinel_spec() is not None
    variants = gate_candidates(train, train.gate_probe_every, sentinel=False)
    assert [v[0] for v in variants] == ["confidence", "confirm_changes", "confirm_ictal_hold"]
    n = 40
    y = np.zeros(n, int)
    y[10:20] = 1
    zs = np.stack([np.where(y == 1, -2.0, 2.0), np.where(y == 1, 2.0, -2.0)], 1)
    va = SimpleNamespace(y=y, record_ids=np.zeros(n, int), start_s=np.arange(n, dtype=float))
    sweep = [{"tau": 0.5, "f1": 1.0, "sensitivity": 1.0, "specificity": 1.0, "routing_rate": 0.0}]
    calibrated = {v[0]: (0.5, sweep) for v in variants}
    rec = choose_gate_variant(train, calibrated, variants, va, zs, zs, int(y.sum()), None, sentinel=False)
    assert rec["chosen"] == "confirm_changes"
    # Without the unit's flag only sentinel variants qualify, and none was calibrated.
    with pytest.raises(ValueError, match="no candidates"):
        choose_gate_variant(train, calibrated, variants, va, zs, zs, int(y.sum()))


def test_watch_reads_only_the_listed_electrodes_and_is_checked():
    """With ``watch`` the sentinel is the one on those electrodes' columns (the own electrode named by
    its number, found among them); the spec refuses lists it could not use, survives ``as_dict``, and
    a deployment written before the key reads every electrode. The hardware cost counts the watched
    electrodes' cycles."""
    from qcascade.hls.sentinel_hw import deployed_sentinel_cost, sentinel_cost

    X, rid, start = _recordings(64, 8)
    X[6:9, :, 5:8] *= 6.0  # a burst on three electrodes of which the list below holds one
    spec = SentinelSpec(2.5, 3, 2, 3, own_ratio=1.5, own_electrode=3, watch=[0, 1, 2, 3, 6])
    assert spec.own_column == 3 and spec.n_watched(8) == 5 and SentinelSpec(2.5, 2, 2, 3).n_watched(8) == 8
    columns = SentinelSpec(2.5, 3, 2, 3, own_ratio=1.5, own_electrode=3)
    up = sentinel_up(X, rid, start, spec, 16, 5)
    assert up[10:13].all() and np.array_equal(up, sentinel_up(X[:, :, [0, 1, 2, 3, 6]], rid, start, columns, 16, 5))
    assert not up[6:9].any() and sentinel_up(X, rid, start, columns, 16, 5)[6:9].all()
    assert vars(SentinelSpec.from_dict(spec.as_dict())) == vars(spec) and spec.as_dict()["watch"] == [0, 1, 2, 3, 6]
    old = {k: v for k, v in spec.as_dict().items() if k != "watch"}
    assert SentinelSpec.from_dict(old).watch is None
    for bad, match in (([3, 0, 1], "increasing"), ([1, 1, 2], "increasing"), ([3, 4], "fewer than electrodes"),
                       ([0, 1, 4], "own_electrode 3")):
        with pytest.raises(ValueError, match=match):
            SentinelSpec(2.5, 3, 2, 3, own_ratio=1.5, own_electrode=3, watch=bad)
    with pytest.raises(ValueError, match="electrode 9"):
        sentinel_up(X, rid, start, SentinelSpec(2.5, 2, 2, 3, watch=[0, 9]), 16, 5)
    cost = deployed_sentinel_cost(spec.as_dict(), 512, 128)
    assert cost["extra_cycles"] == sentinel_cost(512, 5)["extra_cycles"] == 128 * 5 + 5
    assert cost["lut"] < deployed_sentinel_cost({**spec.as_dict(), "watch": None}, 512, 128)["lut"]


def test_config_watch_key_gives_the_spec_of_the_listed_electrodes():
    """``train.gate_sentinel_watch`` takes ``all`` or ``complex``; the spec gets the list it is given,
    and none when the list has fewer electrodes than the sentinel counts."""
    assert load_config().train.gate_sentinel_watch == "complex"  # the default since round 57
    cfg = load_config(overrides={"train": {"gate_sentinel_watch": "all"}})
    assert cfg.train.gate_sentinel_watch == "all"
    with pytest.raises(ConfigError, match="gate_sentinel_watch"):
        load_config(overrides={"train": {"gate_sentinel_watch": "some"}})
    spec = cfg.train.sentinel_spec(128, electrode=40, watch=[40, 7, 12])
    assert spec.watch == (7, 12, 40) and spec.own_column == 2
    assert cfg.train.sentinel_spec(128, electrode=40, watch=[40]) is None
