"""qcascade.onset_latency and bench.bench_onset_latency: the earliest electrode of a seizure."""

import json

import numpy as np
import pytest

from bench.bench_onset_latency import evaluate, held_out_top
from qcascade.io_utils import atomic_write_json
from qcascade.onset_latency import onset_latency, rank_by_onset

FS = 512


def _seizure(seed, onset_s=30, n_s=60, rises=((1, 0.0), (2, 3.0)), n_chans=5, artefact_s=None):
    """Noise whose electrode e rises x8 at ``onset_s + delay`` for each ``(e, delay)``; electrode
    n_chans - 1 is flat; ``artefact_s``: a 2-s burst on every electrode."""
    x = np.random.default_rng(seed).standard_normal((FS * n_s, n_chans))
    for e, delay in rises:
        x[int(FS * (onset_s + delay)):, e] *= 8
    if artefact_s is not None:
        x[FS * artefact_s:FS * (artefact_s + 2), :-1] *= 20
    x[:, -1] = 0.0
    return x


def test_latency_is_the_first_sustained_rise_and_flat_or_quiet_electrodes_never_rise():
    lat = onset_latency(_seizure(0), FS * 30, FS)
    assert lat[1] == 0.0 and lat[2] == 3.0
    assert np.isinf(lat[0]) and np.isinf(lat[3]) and np.isinf(lat[4])
    late = onset_latency(_seizure(0, rises=((1, 40.0),)), FS * 30, FS, after_s=30)
    assert np.isinf(late[1])  # outside the search interval


def test_a_burst_on_every_electrode_is_ignored_only_with_max_fraction():
    x = _seizure(1, artefact_s=40)
    lat = onset_latency(x, FS * 30, FS)
    assert lat[0] == lat[3] == 10.0 and lat[1] == 0.0
    lat = onset_latency(x, FS * 30, FS, max_fraction=0.5)
    assert lat[1] == 0.0 and lat[2] == 3.0 and np.isinf(lat[0]) and np.isinf(lat[3])


def test_too_little_baseline_is_an_error():
    with pytest.raises(ValueError, match="baseline"):
        onset_latency(_seizure(0), FS * 12, FS)


def test_ranking_uses_the_median_and_held_out_ranks_from_the_other_seizures():
    lat = np.array([[0.0, 5.0, np.inf], [9.0, 1.0, np.inf], [8.0, 2.0, 0.0]])
    order, med = rank_by_onset(lat)
    assert list(order) == [1, 0, 2] and med[1] == 2.0 and np.isinf(med[2])
    assert held_out_top(lat) == [1, 1, 1]
    assert held_out_top(lat[:1]) == [0]  # one seizure: ranked from itself


def test_bench_counts_held_out_electrodes_in_the_onset_zone(tmp_path):
    from qcascade.data.matwrite import write_mat

    # the files hold 180 s before and after the seizure (the short-term layout): onset at 180 s
    for k, delays in enumerate([((2, 0.0), (1, 2.0)), ((2, 1.0), (1, 2.0)), ((1, 0.0), (2, 0.5))]):
        path = tmp_path / "ID1" / f"Sz{k + 1}.mat"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_mat(path, {"EEG": _seizure(k, onset_s=180, n_s=400, rises=delays).astype(np.float32)})
    atomic_write_json(tmp_path / "ground_truth.json", {"patients": {"ID1": {"soz_electrodes": [2]}}})
    run = tmp_path / "run" / "ID1"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"folds": [{"selected_electrode": 2}, {"selected_electrode": 1}]}))
    (r,) = evaluate(tmp_path, tmp_path / "run")
    assert r["held_out"] == [2, 2, 2] and r["held_out_in_zone"] == 3
    assert r["deployed"] == [2, 1] and r["deployed_in_zone"] == 1


def test_earliest_of_top_overrides_the_selector_only_for_a_clearly_earlier_electrode():
    from qcascade.onset_latency import earliest_of_top

    w = np.array([0.05, 0.6, 0.2, 0.1, 0.05])
    mask = np.array([True, True, True, True, False])
    # selector's electrode 1 rises at 4.25 s (median), 2 at 1.0 s, 3 never, 4 is masked
    lat = np.array([[0.0, 4.0, 1.0, np.inf, 0.0], [0.5, 4.5, 1.0, 0.5, 0.0]])
    e, info = earliest_of_top(w, mask, lat, top_k=3)
    assert e == 2 and info["top"] == [1, 2, 3] and info["selector_electrode"] == 1
    assert info["median_latency_s"] == [4.25, 1.0, None] and info["rule"].startswith("earliest_of_top")
    assert earliest_of_top(w, mask, lat, top_k=3, margin_s=3.5)[0] == 1  # 3.25 s earlier is not enough
    assert earliest_of_top(w, mask, lat, top_k=1)[0] == 1
    untimed = lat.copy()
    untimed[:, 1] = np.inf  # the selector's electrode never rises: an artefact-ridden seizure, keep it
    e, info = earliest_of_top(w, mask, untimed, top_k=3)
    assert e == 1 and info["rule"].startswith("selector (its electrode has no finite latency")
    assert earliest_of_top(w, mask, np.zeros((0, 5)), top_k=3)[0] == 1  # no seizure with a baseline


def test_earliest_of_top_with_a_weight_floor_never_moves_to_an_electrode_the_selector_all_but_rejected():
    """With ``min_weight_ratio`` (off by default): seed 10's ID2 (round 49), where an off-zone
    electrode the selector weighs at 6 % of its own, rising before the onset, took the place of an
    onset-zone electrode."""
    from qcascade.onset_latency import earliest_of_top

    w = np.array([0.514, 0.328, 0.088, 0.029, 0.017])  # ID2's top 5, in the selector's order
    mask = np.ones(5, bool)
    lat = np.array([[1.0, 1.0, 1.5, -1.5, 2.5]])
    e, info = earliest_of_top(w, mask, lat, top_k=5)
    assert e == 3  # the default: no floor
    e, info = earliest_of_top(w, mask, lat, top_k=5, min_weight_ratio=0.25)
    assert e == 0 and "weigh less than 0.25" in info["rule"] and info["min_weight_ratio"] == 0.25
    assert info["weight_ratio"] == pytest.approx(list(w / w[0]))
    lat_heavy = np.array([[4.0, 1.0, 1.5, -1.5, 2.5]])  # electrode 1 (64 % of the top) rises 3 s earlier
    e, info = earliest_of_top(w, mask, lat_heavy, top_k=5, min_weight_ratio=0.25)
    assert e == 1 and info["rule"].startswith("earliest_of_top")  # the earlier, lighter 3 is passed over
    assert earliest_of_top(w, mask, lat_heavy, top_k=5, min_weight_ratio=0.7)[0] == 0
    assert earliest_of_top(w, mask, lat_heavy, top_k=5, min_weight_ratio=0.0)[0] == 3


def test_earliest_of_top_with_a_seizure_count_keeps_the_selector_on_one_training_seizure():
    """With ``min_seizures`` (1 by default): seed 22's ID2 (round 58), whose one training seizure
    had an off-zone electrode weighted 0.0004 of the selector's rising 4.5 s before the onset."""
    from qcascade.onset_latency import earliest_of_top

    w = np.array([0.478, 0.391, 0.129, 0.0016, 0.0002])  # ID2's top 5, in the selector's order
    mask = np.ones(5, bool)
    one = np.array([[0.0, 0.0, 2.0, np.inf, -4.5]])
    assert earliest_of_top(w, mask, one, top_k=5)[0] == 4  # the default: any seizure count
    e, info = earliest_of_top(w, mask, one, top_k=5, min_seizures=2)
    assert e == 0 and info["min_seizures"] == 2 and info["n_seizures"] == 1
    assert info["rule"] == "selector (latencies from 1 training seizure(s), fewer than 2)"
    two = np.vstack([one, [[0.5, 0.0, 2.0, np.inf, -3.0]]])  # a second seizure: the early riser again
    e, info = earliest_of_top(w, mask, two, top_k=5, min_seizures=2)
    assert e == 4 and info["rule"].startswith("earliest_of_top")
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="min_seizures"):
            earliest_of_top(w, mask, two, top_k=5, min_seizures=bad)


def test_recording_latencies_reads_each_seizure_with_enough_baseline():
    from qcascade.data.swec import Recording
    from qcascade.onset_latency import earliest_of_top, recording_latencies

    x = _seizure(3, onset_s=60, n_s=100).astype(np.float32)
    rec = Recording("P", "P_Sz1", None, FS, len(x), x.shape[1], [(FS * 60, FS * 70), (FS * 5, FS * 8)], data=x)
    lat = recording_latencies([rec], FS)
    assert lat.shape == (1, 5) and lat[0, 1] == 0.0 and lat[0, 2] == 3.0
    # No seizure with a baseline (a segment that starts inside its seizure, as Bonn's set E does, or
    # no seizure at all): no rows, and earliest_of_top keeps the selector's electrode.
    inside = Recording("P", "P_E1", None, FS, len(x), x.shape[1], [(0, len(x))], data=x)
    none = recording_latencies([inside], FS)
    assert none.shape == (0, 5) and recording_latencies([], FS).shape == (0, 0)
    e, info = earliest_of_top(np.arange(5.0), np.ones(5, bool), none, top_k=3)
    assert e == 4 and info["n_seizures"] == 0
    # A pooled run's patients have different electrode counts: the narrower one never rises in the
    # columns it does not have (its windows are zero there). This crashed every pooled run.
    narrow = Recording("Q", "Q_Sz1", None, FS, len(x), 3, [(FS * 60, FS * 70)], data=np.ascontiguousarray(x[:, :3]))
    both = recording_latencies([rec, narrow], FS)
    assert both.shape == (2, 5) and np.array_equal(both[0], lat[0])
    assert np.array_equal(both[1, :3], lat[0, :3]) and np.all(np.isinf(both[1, 3:]))


def test_bench_without_ground_truth_names_the_missing_file(tmp_path, capsys):
    from bench.bench_onset_latency import main

    assert main([str(tmp_path)]) == 2
    assert f"{tmp_path / 'ground_truth.json'}: missing" in capsys.readouterr().err


def test_recording_latencies_streams_only_up_to_the_last_seizure():
    """A streamed recording gives the latencies of a whole-file read, and its chunks after the last
    seizure's search interval are never read (hour-long files stay out of memory)."""
    from qcascade.data.swec import Recording
    from qcascade.onset_latency import recording_latencies

    x = np.concatenate([_seizure(4, onset_s=200, n_s=260), _seizure(5, onset_s=30, n_s=600)]).astype(np.float32)
    spans = [(FS * 200, FS * 210), (FS * 290, FS * 300)]
    rec = Recording("P", "P_Sz1", None, FS, len(x), x.shape[1], spans, data=x)

    class Counting:
        ictal_spans = spans
        chunks = 0

        def iter_chunks(self):
            for c in rec.iter_chunks():
                Counting.chunks += 1
                yield c

    class WholeFile:
        ictal_spans = spans

        def load(self):
            return x

    streamed = recording_latencies([Counting()], FS)
    np.testing.assert_array_equal(streamed, recording_latencies([WholeFile()], FS))
    assert streamed.shape == (2, 5) and streamed[0, 1] == 0.0 and streamed[1, 2] == 3.0
    # the last search interval ends at 330 s; 30-s chunks: 11 read of the recording's 29
    assert Counting.chunks == 11
