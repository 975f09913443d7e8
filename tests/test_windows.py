"""Windowing, padding, normalisation and splits: exact labels and no test data in training."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from qcascade.data import (
    Normalizer,
    Recording,
    build_windowsets,
    check_no_leak,
    discover,
    iter_window_batches,
    loso_folds,
    make_cross_patient_splits,
    make_patient_splits,
    window_starts_labels,
)
from qcascade.data.resample import decimate_stream
from qcascade.data.synthetic import make_cohort, write_swec_long
from qcascade.errors import DataError

FS = 512


def memory_recording(pid, rid, n_samples, n_el, spans, seizure_ids=None, seed=0, offset=0.0):
    data = np.random.default_rng(seed).standard_normal((n_samples, n_el)).astype(np.float32) + offset
    return Recording(pid, rid, None, FS, n_samples, n_el, list(spans),
                     tuple(seizure_ids if seizure_ids is not None else ([rid] if spans else [])), data=data)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 5000), stride=st.sampled_from([64, 128, 256, 512]),
       overlap=st.sampled_from([0.25, 0.5, 0.75, 1.0]),
       spans=st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 800)), max_size=3))
def test_labels_follow_the_overlap_rule(n, stride, overlap, spans):
    spans = sorted((s, s + d) for s, d in spans)
    merged = []  # spans in a recording never overlap
    for s0, s1 in spans:
        if merged and s0 <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(s1, merged[-1][1]))
        else:
            merged.append((s0, s1))
    starts, labels = window_starts_labels(n, merged, 512, stride, overlap)
    expected_starts = list(range(0, n - 512 + 1, stride))
    assert starts.tolist() == expected_starts
    for start, label in zip(starts.tolist(), labels.tolist()):
        inside = sum(len(set(range(start, start + 512)) & set(range(s0, s1))) for s0, s1 in merged)
        assert label == int(inside >= overlap * 512)


@settings(max_examples=25, deadline=None)
@given(chunk=st.integers(1, 3000), n=st.integers(1, 4000))
def test_decimation_in_chunks_equals_whole_array(chunk, n):
    x = np.random.default_rng(n).standard_normal((n, 2))
    out = np.concatenate(list(decimate_stream((x[i:i + chunk] for i in range(0, n, chunk)), 2, 2)))
    np.testing.assert_allclose(out, resample_poly(x, 1, 2, axis=0), atol=1e-5)


@pytest.mark.parametrize("chunk,batch", [(512, 7), (1000, 256), (30 * 512, 3)])
def test_batches_are_exact_slices_and_nonictal_thinning(chunk, batch):
    rec = memory_recording("P", "P_r1", 20 * FS + 77, 3, [(5 * FS + 100, 9 * FS)])
    data = rec.data
    X, y, starts = map(np.concatenate, zip(*iter_window_batches(rec, 512, 256, 0.5, batch_size=batch,
                                                                   chunk_samples=chunk)))
    exp_starts, exp_labels = window_starts_labels(rec.n_samples, rec.ictal_spans, 512, 256, 0.5)
    assert np.array_equal(starts, exp_starts) and np.array_equal(y, exp_labels)
    assert all(np.array_equal(x, data[s:s + 512]) for x, s in zip(X, starts))
    _, y2, s2 = map(np.concatenate, zip(*iter_window_batches(rec, 512, 256, 0.5, nonictal_stride=1024,
                                                             chunk_samples=chunk)))
    keep = (exp_labels == 1) | (exp_starts % 1024 == 0)
    assert np.array_equal(s2, exp_starts[keep]) and np.array_equal(y2, exp_labels[keep])


def patient(pid="P1", n_rec=4, n_el=5, seed=0):
    return [memory_recording(pid, f"{pid}_Sz{k}", 30 * FS, n_el, [(10 * FS, 15 * FS)], seed=seed + k,
                             offset=float(k)) for k in range(1, n_rec + 1)]


def test_loso_split_and_provenance_no_test_window_reaches_training():
    recs = patient()
    splits = make_patient_splits(recs, test_seizure="P1_Sz2", val_seizure=-1)
    assert [r.record_id for r in splits["test"]] == ["P1_Sz2"]
    assert [r.record_id for r in splits["val"]] == ["P1_Sz4"]
    sets, norm = build_windowsets(splits, n_chans=8, stride=256)
    train_ids = set(sets["train"].record_ids)
    assert train_ids == {"P1_Sz1", "P1_Sz3"}
    assert not train_ids & (set(sets["test"].record_ids) | set(sets["val"].record_ids))
    assert set(norm.fitted_on) == train_ids  # normalisation saw training windows only
    # The statistics are exactly those of the training recordings (offset k is per recording).
    train_raw = np.concatenate([r.data for r in splits["train"]])
    np.testing.assert_allclose(norm.center[:5], np.median(train_raw, axis=0), atol=0.05)
    assert norm.mask.tolist() == [True] * 5 + [False] * 3
    for ws in sets.values():
        assert ws.X.shape[1:] == (512, 8) and ws.X.dtype == np.float32
        assert np.all(ws.X[:, :, 5:] == 0) and ws.mask.tolist() == norm.mask.tolist()
        assert set(np.unique(ws.start_s * FS % 256)) == {0}
    test_windows = sets["test"]
    assert test_windows.y.sum() == sum(window_starts_labels(30 * FS, [(10 * FS, 15 * FS)], 512, 256)[1])


def test_leaky_split_is_refused():
    recs = patient()
    with pytest.raises(DataError, match="split leak"):
        check_no_leak({"train": recs[:2], "test": recs[1:2]})
    # Two recordings of one seizure (crossing a long-term file boundary) must stay together.
    a = memory_recording("P", "P_1h", 30 * FS, 2, [(25 * FS, 30 * FS)], ["P_sz1"])
    b = memory_recording("P", "P_2h", 30 * FS, 2, [(0, 5 * FS)], ["P_sz1"])
    with pytest.raises(DataError, match="split leak"):
        check_no_leak({"train": [a], "test": [b]})


def test_loso_on_long_term_keeps_a_crossing_seizure_together(tmp_path):
    cohort = make_cohort(1, seed=3, n_seizures=3, pre_ictal_s=20, post_ictal_s=20, electrode_range=(24, 24))
    write_swec_long(cohort, tmp_path, "7.3", segment_s=45)
    recs = discover("swec-long", tmp_path, segment_s=45)["ID1"]
    crossing = [s for s in {s for r in recs for s in r.seizure_ids}
                if sum(s in r.seizure_ids for r in recs) > 1]
    assert crossing, "the layout should produce a seizure crossing a file boundary"
    for test_seizure, splits in loso_folds(recs):
        check_no_leak(splits)
        assert {r.record_id for r in recs if test_seizure in r.seizure_ids} <= {r.record_id for r in splits["test"]}
        assert not any(test_seizure in r.seizure_ids for r in splits["train"] + splits["val"])


def test_cross_patient_split_pools_patients_with_their_own_masks():
    patients = {"P1": patient("P1", 3, 5), "P2": patient("P2", 3, 7, seed=10), "P3": patient("P3", 3, 6, seed=20)}
    splits = make_cross_patient_splits(patients, "P2")
    assert {r.patient_id for r in splits["test"]} == {"P2"} and {r.patient_id for r in splits["val"]} == {"P3"}
    sets, norm = build_windowsets(splits, n_chans=8)
    assert set(sets["train"].patient_ids) == {"P1"} and set(norm.fitted_on) <= {r.record_id for r in patients["P1"]}
    assert sets["test"].patient_masks["P2"].sum() == 7
    assert np.all(sets["test"].X[:, :, 7] == 0)
    with pytest.raises(DataError, match="not found"):
        make_cross_patient_splits(patients, "P9")


def test_split_errors():
    with pytest.raises(DataError, match="needs >= 3"):
        make_patient_splits(patient(n_rec=2))
    with pytest.raises(DataError, match="not found"):
        make_patient_splits(patient(), test_seizure="nope")
    with pytest.raises(DataError, match="exceed n_chans"):
        build_windowsets(make_patient_splits(patient(n_el=9)), n_chans=8)


def test_normalizer_roundtrip_and_transform(tmp_path):
    X = np.random.default_rng(0).standard_normal((40, 512, 4)).astype(np.float32) * [1, 2, 3, 0] + [0, 5, -5, 7]
    mask = np.array([True, True, True, False])
    norm = Normalizer.fit(X, mask, "zscore", ["r1"])
    out = norm.transform(X)
    np.testing.assert_allclose(out[..., :3].mean(axis=(0, 1)), 0, atol=1e-4)
    np.testing.assert_allclose(out[..., :3].std(axis=(0, 1)), 1, atol=1e-3)
    assert np.all(out[..., 3] == 0)
    for name in ("norm.json", "norm.npz"):
        loaded = Normalizer.load(norm.save(tmp_path / name))
        np.testing.assert_array_equal(loaded.transform(X), out)
        assert loaded.fitted_on == ("r1",) and loaded.method == "zscore"
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_tf_dataset_adapter():
    recs = patient()
    sets, norm = build_windowsets(make_patient_splits(recs), n_chans=8)
    from qcascade.data import as_tf_dataset

    X, y = next(iter(as_tf_dataset(sets["train"], batch_size=4)))
    assert tuple(X.shape) == (4, 512, 8)
    X, y = next(iter(as_tf_dataset((recs[:1], norm), batch_size=5, n_chans=8)))
    assert tuple(X.shape) == (5, 512, 8) and y.dtype.name == "int64"


def test_sub_stride_ictal_training_windows():
    """data.train_ictal_stride_s: more ictal training windows; non-ictal ones and val/test as before."""
    recs = patient(n_rec=3)
    splits = make_patient_splits(recs, test_seizure="P1_Sz2", val_seizure=-1)
    base, _ = build_windowsets(splits, n_chans=8, stride=512, train_nonictal_stride=1024)
    fine, _ = build_windowsets(splits, n_chans=8, stride=512, train_nonictal_stride=1024, train_ictal_stride=128)
    for name in ("val", "test"):
        assert np.array_equal(fine[name].X, base[name].X) and np.array_equal(fine[name].start_s, base[name].start_s)
    tr, b = fine["train"], base["train"]
    starts = np.round(tr.start_s * FS).astype(int)
    assert np.array_equal(tr.y == 0, (starts % 1024 == 0) & (tr.y == 0))  # non-ictal stay on their grid
    assert np.array_equal(np.sort(b.start_s[b.y == 0]), np.sort(tr.start_s[tr.y == 0]))
    assert set(starts[tr.y == 1] % 128) == {0} and len(set(starts[tr.y == 1] % 512)) == 4
    assert tr.y.sum() > 3 * b.y.sum()
    rec = splits["train"][0]
    for x, s, rid in zip(tr.X, starts, tr.record_ids):
        if rid == rec.record_id and s % 512:
            raw = np.zeros((512, 8), np.float32)
            raw[:, :5] = rec.data[s:s + 512]
            assert np.array_equal(x[:, 5:], raw[:, 5:])  # padding stays zero
    with pytest.raises(ValueError, match="train_ictal_stride"):
        build_windowsets(splits, n_chans=8, stride=512, train_ictal_stride=200)
