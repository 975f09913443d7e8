"""SWEC-ETHZ loaders on small files written in tmp_path: layouts, MAT versions, rates, bad input."""

import logging
import tracemalloc

import numpy as np
import pytest
import scipy.io
from scipy.signal import resample_poly

from qcascade.data import discover, discover_long, discover_short, iter_windows, patient_mask
from qcascade.data.matio import open_matrix
from qcascade.data.matwrite import write_mat
from qcascade.errors import DataError

FS = 512
VERSIONS = [("5", False), ("5", True), ("7.3", False)]


def expected_windows(n_samples, spans, n_times=512, stride=512, overlap=0.5):
    """Windows and labels computed the slow, obvious way."""
    out = []
    start = 0
    while start + n_times <= n_samples:
        inside = sum(max(0, min(start + n_times, s1) - max(start, s0)) for s0, s1 in spans)
        out.append((start, int(inside / n_times >= overlap)))
        start += stride
    return out


def signal(n_samples, n_el, seed=0):
    return np.random.default_rng(seed).standard_normal((n_samples, n_el)).astype(np.float32) * 50


@pytest.mark.parametrize("version,compress", VERSIONS)
@pytest.mark.parametrize("stride,overlap", [(512, 0.5), (256, 1.0)])
def test_short_term_windows_and_labels_exact(tmp_path, version, compress, stride, overlap):
    n = 360 * FS + 20 * FS + 100  # 3 min + 20.2 s seizure + 3 min
    eeg = signal(n, 3)
    write_mat(tmp_path / "ID1" / "Sz1.mat", {"EEG": eeg}, version, compress)
    write_mat(tmp_path / "ID1" / "Sz2.mat", {"EEG": eeg[: n - 300]}, version, compress)
    recs = discover("swec-short", tmp_path)["ID1"]
    assert [r.record_id for r in recs] == ["ID1_Sz1", "ID1_Sz2"]
    rec = recs[0]
    assert (rec.n_samples, rec.n_electrodes, rec.ictal_spans) == (n, 3, [(180 * FS, n - 180 * FS)])
    assert recs[1].ictal_spans == [(180 * FS, n - 300 - 180 * FS)]
    got = [(start, label) for _, label, start in iter_windows(rec, 512, stride, overlap)]
    assert got == expected_windows(n, rec.ictal_spans, 512, stride, overlap)
    assert len(got) == (n - 512) // stride + 1
    assert np.array_equal(rec.load(), eeg)
    window, _, start = next(iter_windows(rec, 512, stride, overlap))
    assert np.array_equal(window, eeg[:512])


def write_long(root, pid, hours, info, version="7.3", fs=FS, compress=False):
    for h, eeg in enumerate(hours, start=1):
        write_mat(root / pid / f"{pid}_{h}h.mat", {"EEG": eeg.T}, version, compress)
    if info is not None:
        write_mat(root / pid / f"{pid}_info.mat", info, version)


@pytest.mark.parametrize("version,compress", VERSIONS + [("7.3", True)])
def test_long_term_spans_cross_file_boundaries(tmp_path, version, compress):
    seg = 60  # seconds per file (3600 in SWEC)
    hours = [signal(seg * FS, 4, h) for h in range(3)]
    info = {"fs": FS, "seizure_begin": np.array([50.0, 130.0]), "seizure_end": np.array([75.5, 140.0])}
    write_long(tmp_path, "ID02", hours, info, version, compress=compress)
    recs = discover_long(tmp_path, segment_s=seg)["ID02"]
    assert [r.record_id for r in recs] == ["ID02_1h", "ID02_2h", "ID02_3h"]
    assert recs[0].ictal_spans == [(50 * FS, 60 * FS)] and recs[0].seizure_ids == ("ID02_sz1",)
    assert recs[1].ictal_spans == [(0, int(15.5 * FS))] and recs[1].seizure_ids == ("ID02_sz1",)
    assert recs[2].ictal_spans == [(10 * FS, 20 * FS)] and recs[2].seizure_ids == ("ID02_sz2",)
    for rec, eeg in zip(recs, hours):
        got = [(start, label) for _, label, start in iter_windows(rec, 512, 384, 0.5)]
        assert got == expected_windows(len(eeg), rec.ictal_spans, 512, 384, 0.5)
        assert np.array_equal(rec.load(), eeg)


@pytest.mark.parametrize("version,compress", VERSIONS)
def test_long_term_1024_hz_is_resampled_streaming_equals_whole(tmp_path, version, compress):
    fs, seg = 1024, 30
    t = np.arange(seg * fs + 7) / fs
    eeg = np.stack([np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 300 * t), np.cos(2 * np.pi * 3 * t)], 1)
    info = {"fs": fs, "seizure_begin": np.array([10.0]), "seizure_end": np.array([20.25])}
    write_long(tmp_path, "ID03", [eeg.astype(np.float32)], info, version, fs=fs, compress=compress)
    rec = discover("swec-long", tmp_path, segment_s=seg)["ID03"][0]
    assert rec.sfreq == 1024 and rec.n_samples == -(-len(t) // 2)
    assert rec.ictal_spans == [(10 * FS, int(20.25 * FS))]
    whole = resample_poly(eeg.astype(np.float32).astype(np.float64), 1, 2, axis=0)
    for chunk in (100, 777, 30 * 512):
        streamed = np.concatenate(list(rec.iter_chunks(chunk)))
        np.testing.assert_allclose(streamed, whole, atol=1e-4)
    mid = slice(1000, -1000)
    assert np.abs(streamed[mid, 1]).max() < 1e-3  # 300 Hz is above the new Nyquist: removed
    np.testing.assert_allclose(streamed[mid, 0], np.sin(2 * np.pi * 10 * np.arange(len(whole)) / FS)[mid], atol=1e-3)
    got = [(s, y) for _, y, s in iter_windows(rec)]
    assert got == expected_windows(rec.n_samples, rec.ictal_spans)


def test_v5_streaming_reader_matches_scipy(tmp_path):
    rng = np.random.default_rng(0)
    for shape in [(5, 3001), (3001, 5)]:
        for dtype in (np.float64, np.int16):
            for compress in (False, True):
                a = (rng.standard_normal(shape) * 100).astype(dtype)
                path = write_mat(tmp_path / "x.mat", {"fs": 512, "EEG": a}, "5", compress)
                ref = scipy.io.loadmat(path)["EEG"]
                axis = int(np.argmax(shape))
                with open_matrix(path) as m:
                    parts = [m.read(axis, s, min(s + 1000, shape[axis])) for s in range(0, shape[axis], 1000)]
                np.testing.assert_array_equal(np.concatenate(parts), (ref.T if axis == 1 else ref).astype(np.float32))


def test_transposed_file_is_read_with_a_warning(tmp_path, caplog):
    n = 370 * FS
    eeg = signal(n, 4)
    write_mat(tmp_path / "ID1" / "Sz1.mat", {"EEG": eeg.T}, "5")  # electrodes x samples: wrong here
    with caplog.at_level(logging.WARNING):
        rec = discover_short(tmp_path)["ID1"][0]
    assert "transposed" in caplog.text and "Sz1.mat" in caplog.text
    assert (rec.n_samples, rec.n_electrodes) == (n, 4)
    assert np.array_equal(rec.load(), eeg)


def test_ambiguous_shape_is_refused(tmp_path):
    write_mat(tmp_path / "ID1" / "Sz1.mat", {"EEG": signal(600, 300)}, "5")
    with pytest.raises(DataError, match=r"Sz1\.mat.*cannot tell samples from electrodes"):
        discover_short(tmp_path)


def test_missing_eeg_variable(tmp_path):
    write_mat(tmp_path / "ID1" / "Sz1.mat", {"data": signal(1000, 2)}, "5")
    write_mat(tmp_path / "ID2" / "Sz1.mat", {"data": signal(1000, 2)}, "7.3")
    for pid in ("ID1", "ID2"):
        with pytest.raises(DataError, match=rf"{pid}.Sz1\.mat: variable 'EEG' missing"):
            discover_short(tmp_path, patients=[pid])


def test_all_nan_electrode_is_masked_with_warning(tmp_path, caplog):
    eeg = signal(370 * FS, 4)
    eeg[:, 2] = np.nan
    write_mat(tmp_path / "ID1" / "Sz1.mat", {"EEG": eeg}, "7.3")
    rec = discover_short(tmp_path)["ID1"][0]
    with caplog.at_level(logging.WARNING):
        mask = patient_mask([rec], n_chans=8)
    assert "[2]" in caplog.text and "masked" in caplog.text
    assert mask.tolist() == [True, True, False, True, False, False, False, False]
    data = rec.load()
    assert np.all(data[:, 2] == 0) and np.array_equal(data[:, [0, 1, 3]], eeg[:, [0, 1, 3]])


def test_sporadic_nan_raises_or_is_zero_filled(tmp_path, caplog):
    eeg = signal(370 * FS, 3)
    eeg[200 * FS + 5, 1] = np.nan
    eeg[300 * FS, 0] = np.inf
    write_mat(tmp_path / "ID1" / "Sz1.mat", {"EEG": eeg}, "5")
    rec = discover_short(tmp_path)["ID1"][0]
    with pytest.raises(DataError, match=r"Sz1\.mat: NaN/Inf sample.*electrode.*\[1\], first at sample 102405"):
        rec.load()
    rec = discover_short(tmp_path, nan_policy="zero")["ID1"][0]
    with caplog.at_level(logging.WARNING):
        data = rec.load()
    assert "zero-filled 2 NaN/Inf" in caplog.text
    assert data[200 * FS + 5, 1] == 0 and data[300 * FS, 0] == 0 and np.isfinite(data).all()


def test_inconsistent_electrode_counts(tmp_path):
    write_mat(tmp_path / "ID1" / "Sz1.mat", {"EEG": signal(370 * FS, 4)}, "5")
    write_mat(tmp_path / "ID1" / "Sz2.mat", {"EEG": signal(370 * FS, 3)}, "5")
    with pytest.raises(DataError, match=r"Sz2\.mat: 3 electrodes, but .*Sz1\.mat has 4"):
        discover_short(tmp_path)


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_truncated_and_corrupt_files(tmp_path, version):
    path = write_mat(tmp_path / "ID1" / "Sz1.mat", {"EEG": signal(370 * FS, 2)}, version)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"Sz1\.mat.*(truncated|corrupt)"):
        discover_short(tmp_path)[
            "ID1"][0].load()
    path.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DataError, match=r"Sz1\.mat"):
        discover_short(tmp_path)


def test_missing_info_file_and_bad_info(tmp_path):
    write_long(tmp_path, "ID05", [signal(20 * FS, 2)], None)
    with pytest.raises(DataError, match=r"ID05_info\.mat: info file missing"):
        discover_long(tmp_path, segment_s=20)
    write_mat(tmp_path / "ID05" / "ID05_info.mat", {"fs": FS, "seizure_begin": np.array([5.0])}, "5")
    with pytest.raises(DataError, match=r"ID05_info\.mat: variable\(s\) \['seizure_end'\] missing"):
        discover_long(tmp_path, segment_s=20)
    write_mat(tmp_path / "ID05" / "ID05_info.mat",
              {"fs": 500, "seizure_begin": np.array([5.0]), "seizure_end": np.array([6.0])}, "5")
    with pytest.raises(DataError, match=r"ID05_1h\.mat: sampling rate 500"):
        discover_long(tmp_path, segment_s=20)


def test_recording_shorter_than_a_window(tmp_path):
    info = {"fs": FS, "seizure_begin": np.array([0.1]), "seizure_end": np.array([0.3])}
    write_long(tmp_path, "ID06", [signal(300, 4)], info)
    rec = discover_long(tmp_path)["ID06"][0]
    with pytest.raises(DataError, match=r"ID06_1h\.mat: 0\.59 s is shorter than one window"):
        list(iter_windows(rec))


def test_missing_folders(tmp_path):
    with pytest.raises(DataError, match="not found"):
        discover_short(tmp_path / "nope")
    with pytest.raises(DataError, match="no patient folders"):
        discover_short(tmp_path)
    (tmp_path / "ID1").mkdir()
    with pytest.raises(DataError, match="ID9.*not found"):
        discover_short(tmp_path, patients=["ID9"])
    with pytest.raises(DataError, match=r"ID1: no Sz<k>\.mat files"):
        discover_short(tmp_path)


def test_split_patient_folders(tmp_path):
    for pid in ("ID4a", "ID4b"):
        write_mat(tmp_path / pid / "Sz1.mat", {"EEG": signal(370 * FS, 3)}, "5")
    assert sorted(discover_short(tmp_path)) == ["ID4a", "ID4b"]
    merged = discover_short(tmp_path, merge_suffixed=True)
    assert [r.record_id for r in merged["ID4"]] == ["ID4a_Sz1", "ID4b_Sz1"]


def test_streaming_memory_does_not_grow_with_length(tmp_path):
    peaks = []
    for minutes in (3, 9):
        eeg = np.tile(signal(1024, 32), (minutes * 60, 1))
        info = {"fs": 1024, "seizure_begin": np.array([30.0]), "seizure_end": np.array([50.0])}
        write_long(tmp_path / str(minutes), "ID07", [eeg], info, fs=1024)
        rec = discover_long(tmp_path / str(minutes))["ID07"][0]
        del eeg
        tracemalloc.start()
        n = sum(1 for _ in iter_windows(rec))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert n == minutes * 60
    assert peaks[1] < 1.2 * peaks[0]
    assert peaks[1] < 0.6 * 9 * 60 * 1024 * 32 * 4  # chunks (30 s), not the recording, set the peak
