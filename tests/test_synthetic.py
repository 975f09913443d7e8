"""The synthetic cohort: deterministic, known ground truth, and the structure the brief asks for."""

import time

import numpy as np
import pytest
from neurodsp.spectral import compute_spectrum

from qcascade.data.synthetic import cohort_recordings, ground_truth, make_cohort, make_patient

SFREQ = 512


def line_length(x):
    return np.abs(np.diff(x, axis=0)).mean(axis=0)


@pytest.fixture(scope="module")
def patient():
    return make_patient("ID7", seed=3, n_electrodes=40, n_seizures=2, pre_ictal_s=90, post_ictal_s=90)


def test_same_seed_identical_arrays_different_seed_differs():
    kwargs = dict(n_electrodes=24, n_seizures=1, pre_ictal_s=20, post_ictal_s=20)
    a, b = make_patient("ID1", seed=11, **kwargs), make_patient("ID1", seed=11, **kwargs)
    c = make_patient("ID1", seed=12, **kwargs)
    assert a.soz_electrodes == b.soz_electrodes
    assert np.array_equal(a.recordings[0].eeg, b.recordings[0].eeg)
    assert a.recordings[0].ictal_spans == b.recordings[0].ictal_spans
    assert not np.array_equal(a.recordings[0].eeg[:1000], c.recordings[0].eeg[:1000])


def test_cohort_patients_do_not_depend_on_cohort_size():
    kwargs = dict(n_seizures=1, pre_ictal_s=20, post_ictal_s=20, electrode_range=(24, 30))
    small, large = make_cohort(1, seed=4, **kwargs), make_cohort(2, seed=4, **kwargs)
    assert np.array_equal(small.patients[0].recordings[0].eeg, large.patients[0].recordings[0].eeg)
    assert [p.patient_id for p in large.patients] == ["ID1", "ID2"]


def test_layout_and_ground_truth(patient):
    assert patient.n_electrodes == 40
    soz = patient.soz_electrodes
    assert 2 <= len(soz) <= 4 and soz == list(range(soz[0], soz[0] + len(soz)))
    assert 0 <= soz[0] and soz[-1] < patient.n_electrodes
    for rec in patient.recordings:
        assert rec.eeg.dtype == np.float32 and rec.eeg.shape[1] == 40
        (start, stop), = rec.ictal_spans
        assert start == 90 * SFREQ and stop == len(rec.eeg) - 90 * SFREQ
        assert 20 * SFREQ <= stop - start <= 60 * SFREQ
        assert np.isfinite(rec.eeg).all()
    gt = ground_truth(make_cohort(1, seed=0, n_seizures=1, pre_ictal_s=20, post_ictal_s=20))
    assert set(gt["patients"]["ID1"]) == {"n_electrodes", "soz_electrodes", "recordings"}


def test_background_is_aperiodic_one_over_f(patient):
    rec = patient.recordings[0]
    far = max(range(patient.n_electrodes), key=lambda e: min(abs(e - s) for s in patient.soz_electrodes))
    # The longest artefact-free stretch before the seizure (artefacts are broadband on purpose).
    clean = np.ones(rec.ictal_spans[0][0], bool)
    for s0, s1 in rec.artefact_spans:
        clean[s0:s1] = False
    change = np.flatnonzero(np.diff(np.r_[0, clean.astype(int), 0]))
    _, a, b = max((b - a, a, b) for a, b in zip(change[::2], change[1::2]))
    assert b - a > 10 * SFREQ
    freqs, power = compute_spectrum(rec.eeg[a:b, far].astype(float), SFREQ, nperseg=1024)
    band = (freqs >= 4) & (freqs <= 60)
    slope = np.polyfit(np.log10(freqs[band]), np.log10(power[band]), 1)[0]
    assert -3.5 < slope < -1.5


def test_soz_electrodes_are_the_most_separable(patient):
    for rec in patient.recordings:
        (start, stop), = rec.ictal_spans
        ratio = line_length(rec.eeg[start:stop]) / line_length(rec.eeg[: start - 10 * SFREQ])
        top = set(np.argsort(-ratio)[: len(patient.soz_electrodes)].tolist())
        assert top == set(patient.soz_electrodes)


def _dominant_hz(x):
    freqs, power = compute_spectrum(x.astype(float), SFREQ, nperseg=1024)
    band = (freqs >= 1.5) & (freqs <= 45)
    return freqs[band][np.argmax(power[band])]


def test_seizure_evolves_fast_onset_then_slowing_discharges_that_spread(patient):
    rec, soz = patient.recordings[0], patient.soz_electrodes
    (start, stop), = rec.ictal_spans
    e = soz[len(soz) // 2]
    # Low-voltage fast activity: more 20-40 Hz power in the first 3 s than before the seizure.
    f_pre, p_pre = compute_spectrum(rec.eeg[start - 4 * SFREQ:start - SFREQ, e].astype(float), SFREQ, nperseg=512)
    f_on, p_on = compute_spectrum(rec.eeg[start:start + 3 * SFREQ, e].astype(float), SFREQ, nperseg=512)
    fast = (f_on >= 20) & (f_on <= 40)
    assert p_on[fast].sum() > 2 * p_pre[fast].sum()
    # Rhythm slows: early rhythmic phase faster than the late one.
    n = stop - start
    early = _dominant_hz(rec.eeg[start + int(0.3 * n):start + int(0.5 * n), e])
    late = _dominant_hz(rec.eeg[start + int(0.7 * n):start + int(0.85 * n), e])
    assert early > late and 2 <= late <= 5
    # Spread: an electrode two contacts away is weaker.
    neighbour = soz[-1] + 2 if soz[-1] + 2 < patient.n_electrodes else soz[0] - 2
    seiz = slice(start + int(0.4 * n), start + int(0.8 * n))
    assert 0 < line_length(rec.eeg[seiz, neighbour]) < line_length(rec.eeg[seiz, e])


def test_in_memory_recordings_match_arrays():
    cohort = make_cohort(1, seed=2, n_seizures=1, pre_ictal_s=20, post_ictal_s=20)
    rec = cohort_recordings(cohort)["ID1"][0]
    assert rec.path is None and rec.info["soz_electrodes"] == cohort.patients[0].soz_electrodes
    assert np.array_equal(rec.load(), cohort.patients[0].recordings[0].eeg)


@pytest.mark.slow
def test_default_cohort_is_small_and_fast():
    t0 = time.perf_counter()
    cohort = make_cohort()
    assert time.perf_counter() - t0 < 20
    assert len(cohort.patients) == 3 and all(len(p.recordings) == 4 for p in cohort.patients)
    assert len({p.n_electrodes for p in cohort.patients}) > 1
