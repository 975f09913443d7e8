"""Long-term recordings: signal cache, lazy windows, training sample, hour-level splits, events."""

from __future__ import annotations

import os

import numpy as np
import pytest

from qcascade.data import build_windowsets, discover
from qcascade.data.longterm_cache import LazyWindows, SignalFile, ensure_cached, predict_batched
from qcascade.data.longterm_synth import write_long_patient
from qcascade.data.longterm_windows import build_longterm_windowsets, sample_training
from qcascade.errors import DataError
from qcascade.events_stream import (choose_smoothing, continuous_events, longterm_markdown, routing_per_hour,
                                    segment_times, smooth_k_of_n)
from qcascade.folds import fold_plan
from qcascade.longterm_splits import assign_hour_groups, count_tested_hours

SEG = 60.0  # seconds per "hour" file in these tests


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """8 files of 60 s, 3 electrodes at 1024 Hz (decimated), 3 seizures of 12 s (some cross files)."""
    root = tmp_path_factory.mktemp("lt")
    write_long_patient(root, "ID01", hours=8 * SEG / 3600, n_electrodes=3, fs=1024.0, segment_s=SEG,
                       n_seizures=3, seizure_s=12.0, n_soz=1, seed=3)
    return root


def _recs(folder):
    return discover("swec-long", folder, segment_s=SEG)["ID01"]


def test_cache_is_written_once_and_rewritten_when_damaged(folder, tmp_path):
    rec = _recs(folder)[0]
    path = ensure_cached(rec, tmp_path)
    arr = np.load(path)
    np.testing.assert_array_equal(arr, rec.load())
    stamp = path.stat().st_mtime_ns
    assert ensure_cached(rec, tmp_path).stat().st_mtime_ns == stamp  # reused (resume)
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 100)
    ensure_cached(rec, tmp_path)
    np.testing.assert_array_equal(np.load(path), arr)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_lazy_windows_equal_the_in_memory_windows(folder, tmp_path):
    recs = _recs(folder)
    splits = {"train": recs[:4], "val": recs[4:6], "test": recs[6:]}
    lazy, _ = build_longterm_windowsets(splits, tmp_path, n_chans=8)
    ref, norm = build_windowsets(splits, n_chans=8)
    te = lazy["test"]
    te.X.normalizer = norm  # same statistics: the windows themselves must match bit for bit
    assert isinstance(te.X, LazyWindows) and te.X.shape == ref["test"].X.shape
    np.testing.assert_array_equal(np.asarray(te.X), ref["test"].X)
    np.testing.assert_array_equal(te.y, ref["test"].y)
    np.testing.assert_array_equal(te.record_ids, ref["test"].record_ids)
    np.testing.assert_allclose(te.start_s, ref["test"].start_s)
    one = te.X[:, :, 1:2]
    assert isinstance(one, LazyWindows) and one.shape == (len(te), 512, 1)
    np.testing.assert_array_equal(one[3:9], ref["test"].X[3:9, :, 1:2])
    np.testing.assert_array_equal(te.X[[40, 2, 17], :, 0], ref["test"].X[[40, 2, 17], :, 0])
    batches = list(te.X.batches(50))
    assert [len(b) for b in batches] == [50, 50, 20] and np.array_equal(np.concatenate(batches), ref["test"].X)


def test_streamed_predictions_equal_in_memory_predictions(folder, tmp_path):
    import tensorflow as tf

    recs = _recs(folder)
    sets, _ = build_longterm_windowsets({"train": recs[:4], "val": recs[4:6], "test": recs[6:]}, tmp_path, n_chans=8)
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((512, 8), name="x")
    out = tf.keras.layers.Dense(2, name="logits")(tf.keras.layers.GlobalAveragePooling1D(name="pool")(inp))
    model = tf.keras.Model(inp, out)
    te = sets["test"]
    streamed = predict_batched(model, te.X, batch_size=32)
    whole = model.predict(np.asarray(te.X), batch_size=256, verbose=0)
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-6)


def test_whole_set_conversion_is_refused_above_the_limit(folder, tmp_path, monkeypatch):
    import qcascade.data.longterm_cache as lc

    recs = _recs(folder)
    sets, _ = build_longterm_windowsets({"train": recs[:4], "val": recs[4:6], "test": recs[6:]}, tmp_path, n_chans=8)
    monkeypatch.setattr(lc, "MAX_MATERIALISE_BYTES", 512 * 8 * 4 * 10)
    with pytest.raises(DataError, match="batches"):
        np.asarray(sets["test"].X)
    assert sets["test"].X[:10].shape == (10, 512, 8)


def test_training_sample_holds_every_ictal_window_and_is_seeded():
    y = np.zeros(1000, np.int64)
    y[100:120] = 1
    a, b = sample_training(y, 4, seed=1), sample_training(y, 4, seed=1)
    np.testing.assert_array_equal(a, b)
    assert set(np.flatnonzero(y)) <= set(a.tolist()) and len(a) == 20 + 80 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, sample_training(y, 4, seed=2))
    assert len(sample_training(y[95:125], 4, seed=0)) == 30  # fewer interictal windows than asked: all of them


def test_training_sample_is_capped_keeping_the_class_ratio():
    y = np.zeros(20000, np.int64)
    y[1000:1600] = 1  # 600 ictal windows: 3000 in the uncapped sample
    a = sample_training(y, 4, seed=1, max_windows=500)
    np.testing.assert_array_equal(a, sample_training(y, 4, seed=1, max_windows=500))
    assert len(a) == 500 and int(y[a].sum()) == 100 and np.all(np.diff(a) > 0)
    # Under the cap the sample is the uncapped one, draw for draw.
    np.testing.assert_array_equal(sample_training(y, 4, seed=1, max_windows=3000), sample_training(y, 4, seed=1))
    assert len(sample_training(y[:1300], 4, seed=0, max_windows=100)) == 100


def test_train_and_monitor_sets_stay_under_the_cap(folder, tmp_path):
    recs = _recs(folder)
    splits = {"train": recs[:4], "val": recs[4:6], "test": recs[6:]}
    full, _ = build_longterm_windowsets(splits, tmp_path, n_chans=8, max_train_windows=None)
    capped, _ = build_longterm_windowsets(splits, tmp_path, n_chans=8, max_train_windows=20)
    assert len(full["train"]) > 20 and len(capped["train"]) == 20 and capped["train"].X.shape == (20, 512, 8)
    assert len(capped["val_monitor"]) <= 20 and capped["train"].y.sum() == 4
    assert len(capped["test"]) == len(full["test"])  # evaluation still sees every window
    sub = full["test"].X.take([5, 1, 9])
    assert isinstance(sub, LazyWindows)
    np.testing.assert_array_equal(np.asarray(sub), full["test"].X[[5, 1, 9]])


def test_memory_estimate_of_a_long_term_run_stops_growing_at_the_cap():
    from types import SimpleNamespace

    from qcascade.config import load_config
    from qcascade.validate import estimate_memory_bytes

    def est(n_seizures, cap):
        cfg = load_config(overrides={"data": {"dataset": "swec-long", "data_dir": "/x", "n_chans": 64,
                                              "long_term": {"max_train_windows": cap}}})
        recs = [SimpleNamespace(n_samples=3600 * 512, ictal_spans=[(0, 60 * 512)]) for _ in range(n_seizures)]
        return estimate_memory_bytes(cfg, {"ID01": recs})["windows"]

    assert est(4, 10**6) < est(40, 10**6)  # uncapped: grows with the seizures
    assert est(40, 1000) == est(400, 1000) < est(40, 10**6)


def test_analysis_reads_a_bounded_number_of_hours_seizure_hours_first():
    from types import SimpleNamespace

    from qcascade.steps_longterm import ANALYSIS_MAX_RECORDS, analysis_records

    recs = [SimpleNamespace(k=k, ictal_spans=[(0, 1)] if k in (3, 9, 17, 30) else []) for k in range(40)]
    got = [r.k for r in analysis_records(recs)]
    assert got == [3, 9, 17, 30] and ANALYSIS_MAX_RECORDS == 4
    assert [r.k for r in analysis_records(recs[:6], limit=3)] == [0, 1, 3]
    assert len(analysis_records(recs * 10)) == ANALYSIS_MAX_RECORDS  # no growth with the hours


def test_folds_sharing_a_clock_hour_pool_into_one_row():
    from qcascade.events_stream import merge_hour_rows

    rows = [{"hour": 1, "n_windows": 100, "routing_rate": 0.5}, {"hour": 0, "n_windows": 300, "routing_rate": 0.1},
            {"hour": 0, "n_windows": 100, "routing_rate": 0.5}]
    assert merge_hour_rows(rows) == [{"hour": 0, "n_windows": 400, "routing_rate": pytest.approx(0.2)},
                                     {"hour": 1, "n_windows": 100, "routing_rate": 0.5}]


def test_shared_cache_folder_is_refused_for_another_data_folder(tmp_path):
    from qcascade.steps_data import claim_cache_dir

    cache = claim_cache_dir(tmp_path / "cache" / "ID01", tmp_path / "a")
    assert (cache / "SOURCE").read_text().strip() == str((tmp_path / "a").resolve())
    assert claim_cache_dir(tmp_path / "cache" / "ID01", tmp_path / "a") == cache
    with pytest.raises(DataError, match="data.long_term.cache_dir"):
        claim_cache_dir(tmp_path / "cache" / "ID01", tmp_path / "b")


def test_training_memory_does_not_grow_with_seizure_free_hours(tmp_path):
    sizes = []
    for n_files in (6, 12):
        root = tmp_path / f"n{n_files}"
        write_long_patient(root, "ID01", hours=n_files * SEG / 3600, n_electrodes=2, fs=512.0, segment_s=SEG,
                           n_seizures=3, seizure_s=10.0, seed=0)
        recs = discover("swec-long", root, segment_s=SEG)["ID01"]
        folds = fold_plan(recs) if assign_hour_groups(recs) else None
        sets, _ = build_longterm_windowsets(folds[0].splits, tmp_path / f"c{n_files}", n_chans=4)
        sizes.append((sets["train"].X.nbytes, len(sets["test"]) + len(sets["val"])))
    assert sizes[0][0] == sizes[1][0]  # the in-memory training set: ictal windows x (1 + 4)
    assert sizes[1][1] > sizes[0][1]  # while the streamed hours grow


@pytest.mark.parametrize("n_files", [8, 11])
def test_loso_hours_tests_every_hour_exactly_once(folder, tmp_path, n_files):
    if n_files == 8:
        recs = _recs(folder)
    else:
        write_long_patient(tmp_path, "ID01", hours=n_files * SEG / 3600, n_electrodes=2, fs=512.0, segment_s=SEG,
                           n_seizures=4, seizure_s=30.0, seed=5)
        recs = discover("swec-long", tmp_path, segment_s=SEG)["ID01"]
    n = assign_hour_groups(recs, "loso_hours")
    folds = fold_plan(recs, "all")
    assert len(folds) == n >= 3
    assert count_tested_hours(folds) == {r.record_id: 1 for r in recs}
    for f in folds:
        test_sz = {s for r in f.splits["test"] for s in r.seizure_ids}
        train_sz = {s for r in f.splits["train"] for s in r.seizure_ids}
        assert test_sz and not test_sz & train_sz  # a seizure crossing a file boundary stays together
        assert f.splits["val"] and not {r.record_id for r in f.splits["val"]} & {r.record_id for r in f.splits["test"]}


def test_time_ordered_trains_on_the_first_seizures_and_tests_every_later_hour(folder):
    recs = _recs(folder)
    assert assign_hour_groups(recs, "time_ordered", train_seizures=2) == 1
    folds = fold_plan(recs, "all")
    assert len(folds) == 1
    sp = folds[0].splits
    last_train = max(recs.index(r) for r in sp["train"] + sp["val"])
    assert [recs.index(r) for r in sp["test"]] == list(range(last_train + 1, len(recs)))
    assert max(recs.index(r) for r in sp["train"]) < min(recs.index(r) for r in sp["val"])
    assert {s for r in sp["test"] for s in r.seizure_ids} == {"ID01_sz3"}
    with pytest.raises(DataError, match="time_ordered"):
        assign_hour_groups(recs, "time_ordered", train_seizures=3)


def test_too_few_seizures_for_hour_folds_is_an_error(tmp_path):
    write_long_patient(tmp_path, "ID01", hours=4 * SEG / 3600, n_electrodes=2, fs=512.0, segment_s=SEG,
                       n_seizures=2, seizure_s=10.0)
    with pytest.raises(DataError, match="loso_hours needs >= 3"):
        assign_hour_groups(discover("swec-long", tmp_path, segment_s=SEG)["ID01"])


def test_k_of_n_smoothing():
    p = np.array([1, 0, 1, 1, 0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(smooth_k_of_n(p, 1, 1), p)
    np.testing.assert_array_equal(smooth_k_of_n(p, 2, 3), [0, 0, 1, 1, 1, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(smooth_k_of_n(p, 3, 3), [0, 0, 0, 0, 0, 0, 0, 0, 1, 0])
    seg = np.array([0] * 5 + [1] * 5)  # history restarts at a segment start
    np.testing.assert_array_equal(smooth_k_of_n(p, 2, 2, seg), [0, 0, 0, 1, 0, 0, 0, 1, 1, 0])


def test_events_run_over_consecutive_hours_and_count_every_hour():
    # Two 1-h files back to back; one seizure crosses the boundary; one isolated false alarm.
    starts = np.concatenate([np.arange(3600.0), np.arange(3600.0)])
    rids = np.array(["ID01_1h"] * 3600 + ["ID01_2h"] * 3600)
    y = np.zeros(7200, int)
    y[3580:3640] = 1
    pred = y.copy()
    pred[1000] = 1
    seg, t = segment_times(rids, starts, {"ID01_1h": 0.0, "ID01_2h": 3600.0})
    assert np.all(seg == 0) and t[-1] == 7199.0
    ev = continuous_events(y, pred, seg, t)
    assert {"hours", "fa_per_hour", "fa_per_24h", "sensitivity", "mean_delay_s"} <= set(ev)
    assert ev["n_events"] == 1 and ev["n_detected"] == 1 and ev["n_false_alarms"] == 1
    assert ev["hours"] == pytest.approx(2.0) and ev["fa_per_hour"] == pytest.approx(0.5)
    assert ev["fa_per_24h"] == pytest.approx(12.0)
    choice = choose_smoothing(y, pred, seg, t)
    assert (choice["k"], choice["n"]) != (1, 1) and choice["val_events"]["n_false_alarms"] == 0
    assert choice["val_events"]["n_detected"] == 1
    rows = routing_per_hour(pred.astype(bool), rids, starts, {"ID01_1h": 0.0, "ID01_2h": 3600.0})
    assert [r["hour"] for r in rows] == [0, 1] and rows[0]["routing_rate"] == pytest.approx(21 / 3600)
    md = longterm_markdown({"events": ev, "events_raw": ev, "postprocess": {"k": 1, "n": 1}, "routing_per_hour": rows})
    assert "2.00 h tested" in md and "| 1 | 3600 |" in md


def test_signal_file_reads_rows_without_mapping(folder, tmp_path):
    rec = _recs(folder)[1]
    f = SignalFile(ensure_cached(rec, tmp_path))
    full = rec.load()
    np.testing.assert_array_equal(f.read(100, 700), full[100:700])
    maps = open(f"/proc/{os.getpid()}/maps").read() if os.path.exists(f"/proc/{os.getpid()}/maps") else ""
    assert str(f.path) not in maps


@pytest.mark.slow
def test_long_term_run_resumes_without_redoing_finished_folds_and_scores_every_hour(tmp_path):
    """A tiny swec-long run killed in fold 1 resumes there; metrics cover every tested hour."""
    import json
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    data = tmp_path / "data"
    write_long_patient(data, "ID01", hours=6 * SEG / 3600, n_electrodes=3, fs=512.0, segment_s=SEG,
                       n_seizures=3, seizure_s=12.0, n_soz=1, seed=1)
    cfg = tmp_path / "lt.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"dataset": "swec-long", "data_dir": str(data), "n_chans": 8, "long_term": {"segment_s": SEG}},
        "model": {"train_candidates": False}, "hls": {"enabled": False},
        # One fold worker, folds in turn (each in a fresh process): "killed in fold 1" then means
        # fold 0 is complete. Resume with two fold workers: tests/test_e2e_folds.py.
        "train": {"epochs_stage1": 1, "epochs_stage2": 1, "epochs_stage3": 1, "fold_workers": 1}}))
    out = tmp_path / "run"
    cmd = [sys.executable, str(root / "train_qkeras.py"), "--config", str(cfg), "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    fold1 = out / "ID01" / "fold1" / "steps.json"
    deadline = time.time() + 3600
    while time.time() < deadline and proc.poll() is None:
        if fold1.exists() and len(json.loads(fold1.read_text())["completed"]) >= 2:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and its fold worker at once
            break
        time.sleep(1)
    proc.wait()
    assert fold1.exists(), "the run never reached fold 1"
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed in fold 1"
    assert "step_evaluate" not in json.loads(fold1.read_text())["completed"]  # killed part-way
    before = {p: json.loads(p.read_text())["timings_s"] for p in [out / "ID01" / "steps.json", fold1]}
    # Files written by the finished folds/steps: a recomputation would rewrite them.
    written = {p: p.stat().st_mtime_ns for p in [out / "ID01" / "fold_metrics.json", out / "ID01" / "data.json",
                                                  out / "ID01" / "fold1" / "data.json"]}
    cache = {p.name: p.stat().st_mtime_ns for p in (out / "ID01" / "window_cache").iterdir()}
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-2000:]
    for p, timings in before.items():
        after = json.loads(p.read_text())["timings_s"]
        assert {k: after[k] for k in timings} == timings  # finished steps were not recomputed
    assert {p.name: p.stat().st_mtime_ns for p in (out / "ID01" / "window_cache").iterdir()} == cache
    assert {p: p.stat().st_mtime_ns for p in written} == written
    assert "step_evaluate" in json.loads(fold1.read_text())["completed"]  # and fold 1 was finished
    m = json.loads((out / "ID01" / "metrics.json").read_text())
    ev = m["test"]["events"]
    assert ev["hours"] == pytest.approx(6 * SEG / 3600, rel=1e-6)  # every hour tested once
    assert "fa_per_hour" in ev and "fa_per_24h" in ev and "events_raw" in m["test"] and "postprocess" in m["test"]
    assert len(m["folds"]) == 3
    assert sorted(r["hour"] for r in m["test"]["routing_per_hour"]) == [0]  # six 60-s files: clock hour 0
    assert m["test"]["routing_per_hour"][0]["n_windows"] == m["n_test_windows_pooled"]
