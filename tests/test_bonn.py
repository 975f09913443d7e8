"""Bonn loader: layouts (zip as shipped, extracted folders), labels, folds, resampling, bad input, and
the line-length reference on the real data where ``<repo>/../shared/data/bonn`` (or
``QCASCADE_BONN_DIR``) is present."""

import hashlib
import os
import zipfile
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from qcascade.config import load_config
from qcascade.data import build_windowsets, discover
from qcascade.data.bonn import N_NATIVE, N_RESAMPLED, discover_bonn, fold_splits, read_segments, resample_to_512
from qcascade.errors import ConfigError, DataError

REAL = Path(os.environ.get("QCASCADE_BONN_DIR") or Path(__file__).resolve().parents[2] / "shared/data/bonn")
FOLDERS = {"A": "A_Z", "B": "B_O", "C": "C_N", "D": "D_F", "E": "E_S"}
N_PER_SET = 6


def _segment(letter: str, k: int) -> np.ndarray:
    rng = np.random.default_rng([ord(letter), k])
    x = rng.normal(0, 30, N_NATIVE)
    if letter == "E":  # rhythmic, large: trivially separable
        x += 200 * np.sin(2 * np.pi * 4.0 * np.arange(N_NATIVE) / 173.61)
    return np.round(x).astype(int)


def _text(x) -> bytes:
    return "".join(f"{v}\r\n" for v in x).encode()


def _files(sets="ACDE", upper_c=True):
    out = {}
    for s in sets:
        for k in range(1, N_PER_SET + 1):
            ext = "TXT" if (s == "C" and upper_c) else "txt"  # the shipped zip has C_N/N001.TXT
            out[f"{FOLDERS[s]}/{FOLDERS[s][-1]}{k:03d}.{ext}"] = _text(_segment(s, k))
    return out


def _write_zip(root: Path, files: dict, sha: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "bonn_eeg.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    if sha:
        (root / "SHA256SUMS").write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  bonn_eeg.zip\n")
    return path


def _write_dir(root: Path, files: dict) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_zip_and_folders_give_the_same_labelled_recordings(tmp_path):
    files = _files()
    a = discover("bonn", _write_zip(tmp_path / "z", files).parent, n_folds=3)["bonn"]
    b = discover_bonn(_write_dir(tmp_path / "d", files), n_folds=3)["bonn"]
    assert [r.record_id for r in a] == [r.record_id for r in b]
    assert len(a) == 3 * N_PER_SET  # default sets C, D, E; A is present but not loaded
    for ra, rb in zip(a, b):
        assert np.array_equal(ra.load(), rb.load()) and ra.info == rb.info
        assert ra.patient_id == "bonn" and ra.n_electrodes == 1 and ra.n_samples == N_RESAMPLED == 12083
        assert ra.load().shape == (12083, 1)
        ictal = ra.info["set"] == "E"
        assert ra.record_id.startswith("bonn_S" if ictal else ("bonn_N", "bonn_F"))
        assert ra.ictal_spans == ([(0, 12083)] if ictal else [])
        assert ra.seizure_ids == ((ra.record_id,) if ictal else ())
    assert {r.info["set"] for r in discover_bonn(tmp_path / "z", sets=["A", "E"], n_folds=3)["bonn"]} == {"A", "E"}


def test_fold_groups_stratified_seeded_and_independent_of_other_sets(tmp_path):
    root = _write_dir(tmp_path, _files())
    recs = discover_bonn(root, n_folds=3, seed=1)["bonn"]
    for s in "CDE":  # each fold holds N_PER_SET / 3 segments of every set
        counts = np.bincount([r.info["fold_group"] for r in recs if r.info["set"] == s], minlength=3)
        assert counts.tolist() == [N_PER_SET // 3] * 3
    again = discover_bonn(root, n_folds=3, seed=1)["bonn"]
    assert [r.info["fold_group"] for r in again] == [r.info["fold_group"] for r in recs]
    other = discover_bonn(root, n_folds=3, seed=2)["bonn"]
    assert [r.info["fold_group"] for r in other] != [r.info["fold_group"] for r in recs]
    more = {r.record_id: r.info["fold_group"] for r in discover_bonn(root, sets="ACDE", n_folds=3, seed=1)["bonn"]}
    assert all(more[r.record_id] == r.info["fold_group"] for r in recs)


def test_resampling_keeps_frequency_and_duration():
    t = np.arange(N_NATIVE) / 173.61
    y = resample_to_512(1000 * np.sin(2 * np.pi * 10.0 * t))
    assert y.shape == (12083,) and y.dtype == np.float32
    spec = np.abs(np.fft.rfft(y[1000:-1000] * np.hanning(len(y) - 2000), n=1 << 18))
    peak_hz = np.argmax(spec) * 512.0 / (1 << 18)
    assert abs(peak_hz - 10.0) < 0.01
    assert np.abs(y[1000:-1000]).max() == pytest.approx(1000, rel=0.01)  # passband gain 1


def test_bonn_unit_flows_through_windowsets(tmp_path):
    recs = discover_bonn(_write_dir(tmp_path, _files()), n_folds=3)["bonn"]
    splits = fold_splits(recs, test_group=0)
    assert {r.info["fold_group"] for r in splits["test"]} == {0} and {r.info["fold_group"] for r in splits["val"]} == {1}
    sets, norm = build_windowsets(splits, n_chans=128, n_times=512, stride=512)
    for name, ws in sets.items():
        assert ws.X.shape == (len(splits[name]) * (12083 // 512), 512, 128)
        assert ws.mask.tolist() == [True] + [False] * 127 and not ws.X[:, :, 1:].any()
        ictal = {r.record_id for r in splits[name] if r.info["set"] == "E"}
        assert np.array_equal(ws.y, np.isin(ws.record_ids, list(ictal)).astype(int))
    with pytest.raises(DataError, match="fold group 7"):
        fold_splits(recs, test_group=7)


@pytest.mark.parametrize("case,match", [
    ("short", "Z002.txt: 4096 samples, expected 4097"),
    ("text", "N003.TXT: line 11 is not an integer: '12.5'"),
    ("missing", r"no files of Bonn set\(s\) \['E'\]"),
    ("badzip", "not a readable zip file"),
    ("sha", "sha256 .* does not match"),
    ("nodir", "Bonn data directory not found"),
])
def test_bad_input_names_the_file(tmp_path, case, match):
    files = _files()
    if case == "short":
        files["A_Z/Z002.txt"] = _text(_segment("A", 2)[:-1])
    if case == "text":
        lines = _text(_segment("C", 3)).split(b"\r\n")
        lines[10] = b"12.5"
        files["C_N/N003.TXT"] = b"\r\n".join(lines)
    if case == "missing":
        files = {k: v for k, v in files.items() if not k.startswith("E_S")}
    root = tmp_path / "bonn"
    zpath = _write_zip(root, files)
    if case == "badzip":
        zpath.write_bytes(b"PK\x03\x04 truncated")
        (root / "SHA256SUMS").unlink()
    if case == "sha":
        (root / "SHA256SUMS").write_text("0" * 64 + "  bonn_eeg.zip\n")
    if case == "nodir":
        root = tmp_path / "absent"
    with pytest.raises(DataError, match=match):
        read_segments(root, sets="ACDE")


def test_config_and_cli_accept_bonn():
    from qcascade.cli import resolve_train_config

    cfg = load_config(None, {"data": {"dataset": "bonn", "data_dir": "x", "bonn": {"sets": ["A", "B", "C", "D", "E"]}}})
    assert cfg.data.bonn.sets == ("A", "B", "C", "D", "E") and cfg.data.bonn.n_folds == 10
    args = Namespace(quick=False, dataset="bonn", data_dir=Path("x"), patient=None, pooled=False, seed=None, config=None)
    assert resolve_train_config(args).data.dataset == "bonn"
    with pytest.raises(ConfigError, match="data.data_dir"):
        load_config(None, {"data": {"dataset": "bonn"}})
    for bad in (["C", "D"], ["E"], ["E", "F"], ["E", "E", "C"]):
        with pytest.raises(ConfigError, match="data.bonn.sets"):
            load_config(None, {"data": {"dataset": "bonn", "data_dir": "x", "bonn": {"sets": bad}}})


needs_real = pytest.mark.skipif(not (REAL / "bonn_eeg.zip").is_file() and not (REAL / "E_S").is_dir(),
                                reason=f"Bonn data not found at {REAL} (set QCASCADE_BONN_DIR)")


@needs_real
def test_real_bonn_counts_and_sha():
    recs = discover("bonn", REAL)["bonn"]
    assert len(recs) == 300 and sum(bool(r.seizure_ids) for r in recs) == 100
    assert {r.info["set"] for r in recs} == {"C", "D", "E"}
    assert np.bincount([r.info["fold_group"] for r in recs]).tolist() == [30] * 10


@needs_real
def test_real_bonn_line_length_reference_reproduced():
    """SOURCES.txt: C+D vs E, line length, accuracy 0.954, (weighted) F1 0.954, AUC 0.990 on 174-sample
    windows. The same recipe on the native windows, then on the pipeline's 512 Hz windows."""
    from qcascade.data.bonn_reference import line_length_reference

    native = line_length_reference(REAL, native=True)
    assert native["n_windows"] == 300 * (N_NATIVE // 174)
    assert abs(native["accuracy"] - 0.954) < 0.01 and abs(native["f1_weighted"] - 0.954) < 0.01
    assert abs(native["auc"] - 0.990) < 0.005
    at512 = line_length_reference(REAL, native=False)
    assert at512["n_windows"] == 300 * (12083 // 512)
    for key in ("accuracy", "f1", "auc"):  # resampling must not change what line length sees
        assert abs(at512[key] - native[key]) < 0.01, key
