"""Window features of qcascade.data.morphology on known signals, and the stress cohort against the
real Bonn sets where ``<repo>/../shared/data/bonn`` (or ``QCASCADE_BONN_DIR``) is present."""

import os
from pathlib import Path

import numpy as np
import pytest

from qcascade.data.morphology import FEATURES, bonn_features, cohort_features, summarize, window_features

REAL = Path(os.environ.get("QCASCADE_BONN_DIR") or Path(__file__).resolve().parents[2] / "shared/data/bonn")
T = np.arange(512) / 512


def _feature(w, name):
    return window_features(np.atleast_2d(w))[:, FEATURES.index(name)]


@pytest.mark.parametrize("hz,band", [(2, "delta"), (6, "theta"), (10, "alpha"), (20, "beta"), (35, "gamma")])
def test_band_fractions_of_a_sine(hz, band):
    assert _feature(np.sin(2 * np.pi * hz * T), band)[0] > 0.9


def test_speed_ignores_gain_and_rises_with_frequency():
    speed = [_feature(np.sin(2 * np.pi * hz * T), "log_ll_per_sd")[0] for hz in (2, 6, 20)]
    assert speed[0] < speed[1] < speed[2]
    assert _feature(7 * np.sin(2 * np.pi * 6 * T), "log_ll_per_sd")[0] == pytest.approx(speed[1], abs=1e-9)


def test_amplitude_line_length_and_kurtosis():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((200, 512))
    assert np.median(_feature(noise, "log_sd")) == pytest.approx(0, abs=0.01)
    assert np.median(_feature(3 * noise, "log_ll") - _feature(noise, "log_ll")) == pytest.approx(np.log10(3), abs=0.01)
    assert abs(np.median(_feature(noise, "kurtosis"))) < 0.2
    spikes = np.zeros(512)
    spikes[::128] = 10.0
    assert _feature(spikes + 0.1 * noise[0], "kurtosis")[0] > 10


_NEEDS_BONN = pytest.mark.skipif(not (REAL / "bonn_eeg.zip").is_file() and not (REAL / "E_S").is_dir(),
                                 reason=f"Bonn data not found at {REAL} (set QCASCADE_BONN_DIR)")


@pytest.fixture(scope="module")
def cohorts():
    """Bonn's features and a small stress and default cohort's (3 patients; seed 1 has a
    ``hypersynchronous`` patient, the slowest morphology)."""
    from qcascade.data.stress import iter_stress_patients
    from qcascade.data.synthetic import make_patient

    bonn = bonn_features(REAL)
    stress = cohort_features(iter_stress_patients(3, seed=1, n_multifocal=1, pre_ictal_s=60, post_ictal_s=90), 1)
    default = cohort_features([make_patient("ID1", seed=1, n_seizures=2, pre_ictal_s=60, post_ictal_s=90)], 1)
    return bonn, stress, default


@_NEEDS_BONN
def test_stress_cohort_resembles_bonn_more_than_the_default_cohort(cohorts):
    """The calibration documented in docs/stress_cohort.md, on a small cohort (3 patients)."""
    bonn, stress, default = cohorts
    rows = summarize({"stress/ictal": stress["ictal"], "stress/interictal": stress["interictal"],
                      "default/interictal": default["interictal"]}, bonn)
    for f in ("log_ll", "delta", "theta", "beta"):  # seizure-free background: close to Bonn C+D
        assert rows["stress/interictal"][f]["ks"] < 0.25, f
    assert rows["stress/interictal"]["delta"]["ks"] < rows["default/interictal"]["delta"]["ks"]
    e = summarize({"e": bonn["ictal"]}, bonn)["e"]["log_sd"]
    assert 0.3 < rows["stress/ictal"]["log_sd"]["median"] <= e["q75"]  # ictal amplitude: Bonn E's range


@_NEEDS_BONN
def test_every_morphology_is_as_fast_as_some_real_seizures(cohorts):
    """Each generated morphology's median speed (line length over amplitude) lies inside the central
    98 % of Bonn E's ictal windows: a waveform slower or faster than any real seizure would test the
    gate against something no recording has (docs/stress_cohort.md, "How fast")."""
    bonn, stress, _ = cohorts
    i = FEATURES.index("log_ll_per_sd")
    lo, hi = np.percentile(bonn["ictal"][:, i], [1, 99])
    assert "hypersynchronous" in stress["morphology"]
    for m, feats in stress["morphology"].items():
        assert lo <= np.median(feats[:, i]) <= hi, (m, np.median(feats[:, i]), lo, hi)
