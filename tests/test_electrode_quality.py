"""Electrode quality flags (mains, broadband noise) and the worst-case separability prior."""

from __future__ import annotations

import numpy as np
import pytest

from qcascade.data.stress import make_stress_patient
from qcascade.data.windows import WindowSet
from qcascade.electrode_quality import MIN_ELECTRODES, assess_electrodes
from qcascade.selector_prior import auc_per_column, electrode_separability, raw_line_length

SFREQ = 512.0


def _windows(eeg: np.ndarray, n_times: int = 512) -> np.ndarray:
    n = len(eeg) // n_times
    return eeg[:n * n_times].reshape(n, n_times, eeg.shape[1])


@pytest.mark.parametrize("seed", range(6))
def test_flags_equal_the_stress_generators_ground_truth(seed):
    """Line-noise and noisy electrodes of a stress patient (seizure, spikes, artefacts, scale and
    DC differences included) are flagged exactly, and no onset-zone electrode is flagged noisy."""
    p = make_stress_patient("ID1", seed, 32, 2)
    X = _windows(p.recordings[0].eeg)
    mask = np.ones(X.shape[-1], bool)
    mask[p.dead_electrodes] = False
    X[:, :, ~mask] = 0.0
    q = assess_electrodes(X, mask, SFREQ)
    assert q.line_noise == sorted(p.line_noise_electrodes)
    assert q.noisy == sorted(p.noisy_electrodes)
    assert not set(q.noisy) & set(p.soz_electrodes)
    assert q.excluded == sorted(set(p.line_noise_electrodes) | set(p.noisy_electrodes))
    assert not q.deployable(mask)[q.excluded].any() and q.deployable(mask).sum() == mask.sum() - len(q.excluded)


def test_clean_electrodes_with_a_seizure_are_not_flagged():
    """Fast ictal activity on the onset zone in a minority of windows must not flag it."""
    p = make_stress_patient("ID2", 0, 24, 2)
    eeg = p.recordings[0].eeg.copy()
    X = _windows(eeg)
    clean = [e for e in range(24) if e not in p.line_noise_electrodes + p.noisy_electrodes + p.dead_electrodes]
    mask = np.zeros(24, bool)
    mask[clean] = True
    q = assess_electrodes(X, mask, SFREQ)
    assert q.excluded == [] and q.line_noise == [] and q.noisy == []


def test_too_few_electrodes_are_not_judged():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 512, 16)).astype(np.float32)
    X[:, :, 0] += 5 * np.sin(2 * np.pi * 50 * np.arange(512) / SFREQ)
    mask = np.zeros(16, bool)
    mask[:MIN_ELECTRODES - 1] = True
    q = assess_electrodes(X, mask, SFREQ)
    assert q.skipped and q.excluded == []
    mask[:MIN_ELECTRODES] = True
    assert assess_electrodes(X, mask, SFREQ).line_noise == [0]


def test_auc_per_column_equals_sklearn_with_ties():
    """The rank-based AUC of every electrode at once is sklearn's, ties counted as 1/2."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=(300, 12)) + 0.5 * y[:, None] * np.arange(12) / 12, 1)  # many ties
    scores[:, 3] = 1.0  # all tied: 0.5
    want = [roc_auc_score(y, scores[:, j]) for j in range(scores.shape[1])]
    np.testing.assert_allclose(auc_per_column(y, scores), want, rtol=0, atol=1e-12)


def test_separability_is_the_worst_case_over_training_recordings():
    """Electrode 0 separates both recordings, electrode 1 only the first: the prior prefers 0."""
    rng = np.random.default_rng(2)
    n = 40
    X = rng.normal(size=(2 * n, 64, 3)).astype(np.float32)
    y = np.tile(np.repeat([0, 1], n // 2), 2)
    rec = np.repeat(["r1", "r2"], n)
    X[y == 1, :, 0] *= 3.0
    X[(y == 1) & (rec == "r1"), :, 1] *= 5.0
    ws = WindowSet(X, y, np.array([True, True, False]), rec, np.zeros(2 * n), np.repeat("P", 2 * n))
    sep = electrode_separability(ws)
    assert sep[0] == pytest.approx(1.0) and sep[1] < 0.5 and sep[2] == 0.0
    pooled = electrode_separability(WindowSet(X, y, ws.mask, np.repeat("r", 2 * n), ws.start_s, ws.patient_ids))
    assert pooled[1] > sep[1]  # pooled over one record it looked separable
    assert electrode_separability(ws, np.array([False, True, False]))[0] == 0.0


def test_separability_counts_a_rise_in_line_length_only():
    """An electrode that is quieter in ictal windows (e.g. its interictal part carries the artefact
    bursts) is not an onset electrode, however well it separates: it scores 0."""
    rng = np.random.default_rng(3)
    n = 40
    X = rng.normal(size=(n, 64, 2)).astype(np.float32)
    y = np.repeat([0, 1], n // 2)
    X[y == 1, :, 0] *= 3.0  # the seizure's electrode
    X[y == 0, :, 1] *= 3.0  # louder outside the seizure
    ws = WindowSet(X, y, np.array([True, True]), np.repeat("r", n), np.zeros(n), np.repeat("P", n))
    sep = electrode_separability(ws)
    assert sep[0] == pytest.approx(1.0) and sep[1] == 0.0


def test_prior_under_causal_scaling_reads_the_raw_line_length():
    """A long seizure louder on electrode 0: the causal scaler divides it by its own recent
    amplitude, so the scaled windows lose the contrast; the raw line length keeps it."""
    from qcascade.data import build_windowsets
    from qcascade.data.scaling import ScalingSpec
    from qcascade.data.swec import Recording
    from qcascade.errors import DataError

    recs = []
    for k in range(2):
        rng = np.random.default_rng(10 + k)
        data = (rng.standard_normal((240 * 512, 3)) * 20.0).astype(np.float32)
        data[60 * 512:180 * 512, 0] *= 4.0  # a 2-minute seizure on electrode 0
        recs.append(Recording("P", f"P_Sz{k}", None, 512, len(data), 3, [(60 * 512, 180 * 512)], (f"P_Sz{k}",),
                              data=data))
    sets, _ = build_windowsets({"train": recs, "val": [], "test": []}, n_chans=4, stride=512,
                               train_nonictal_stride=2048, input_scaling="causal_robust",
                               scaling_spec=ScalingSpec(n_times=512, memory_shift=2))
    ws = sets["train"]
    raw = raw_line_length(recs, ws, n_times=512, stride=512, ictal_overlap=0.5)
    for i in (0, len(ws.y) // 2, len(ws.y) - 1):  # the very windows of ws, in the raw recordings
        rec = recs[int(ws.record_ids[i][-1])]
        start = int(round(ws.start_s[i] * 512))
        assert np.allclose(raw[i, :3], np.abs(np.diff(rec.data[start:start + 512], axis=0)).mean(0))
    assert np.all(raw[:, 3] == 0)  # padding electrode
    scaled, from_raw = electrode_separability(ws), electrode_separability(ws, line_length=raw)
    assert from_raw[0] > 0.9 and scaled[0] < from_raw[0] - 0.3
    with pytest.raises(DataError, match="P_Sz1"):
        raw_line_length(recs[:1], ws, n_times=512, stride=512, ictal_overlap=0.5)


def test_report_names_the_excluded_electrodes():
    from qcascade.report_settings import quality_line as _quality_line

    assert "line noise [3, 9]" in _quality_line({"line_noise": [3, 9], "noisy": [], "skipped": None})
    assert "broadband noise none" in _quality_line({"line_noise": [3, 9], "noisy": [], "skipped": None})
    assert "not judged" in _quality_line({"line_noise": [], "noisy": [], "skipped": "1 live electrode(s)"})
    assert "not checked" in _quality_line(None)


def _mostly_ictal_windows(seed: int = 0):
    """``(X, y, zone, noisy)``: 16 electrodes of 1/f^2 background; in 60 % of the windows (labelled
    ictal, as training oversamples them) the zone carries a fast spike train; one electrode carries
    white amplifier noise throughout."""
    rng = np.random.default_rng(seed)
    n_win, n_times, n_el = 120, 512, 16
    X = np.cumsum(rng.normal(size=(n_win, n_times, n_el)), axis=1).astype(np.float32)
    X -= X.mean(axis=1, keepdims=True)
    y = (np.arange(n_win) % 5 < 3).astype(np.int64)
    zone, noisy = [3, 4, 5], 12
    spikes = np.zeros(n_times, np.float32)
    spikes[::16] = 1.0  # 32 Hz spike train: energy up to Nyquist
    for w in np.flatnonzero(y):
        X[w, :, zone] += 40.0 * np.roll(spikes, int(rng.integers(16)))[None, :]
    X[:, :, noisy] += 3.0 * rng.normal(size=(n_win, n_times)).astype(np.float32)
    return X, y, zone, noisy


def test_ictal_windows_do_not_flag_their_onset_zone():
    """With most windows ictal the zone's fast activity flags it when every window counts; the
    interictal windows alone flag only the noisy electrode."""
    X, y, zone, noisy = _mostly_ictal_windows()
    mask = np.ones(X.shape[-1], bool)
    assert set(zone) <= set(assess_electrodes(X, mask, SFREQ).noisy)
    q = assess_electrodes(X, mask, SFREQ, y=y)
    assert q.noisy == [noisy] and q.line_noise == []
    assert assess_electrodes(X, mask, SFREQ, y=np.ones_like(y)).noisy == assess_electrodes(X, mask, SFREQ).noisy


def test_the_deployable_mask_is_judged_on_interictal_training_windows():
    """``steps_fit.electrode_quality`` passes the training labels, so the onset zone stays deployable."""
    from types import SimpleNamespace

    from qcascade.steps_fit import electrode_quality

    X, y, zone, noisy = _mostly_ictal_windows()
    n = len(y)
    train = WindowSet(X, y, np.ones(X.shape[-1], bool), np.array(["r"] * n), np.arange(n, dtype=float),
                      np.array(["p"] * n))
    ctx = SimpleNamespace(unit="p", cfg=SimpleNamespace(data=SimpleNamespace(sfreq=SFREQ, dataset="swec-short")),
                          artifacts=SimpleNamespace(electrode_quality=None, data=SimpleNamespace(sets={"train": train})))
    assert electrode_quality(ctx).excluded == [noisy]
