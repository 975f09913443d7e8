"""The stress cohort: seeded, in range, multifocal zones apart, dead channels flat, line noise where
the ground truth says, morphologies as described, and readable as the SWEC short-term layout."""

import json

import numpy as np
import pytest
from scipy.signal import welch

from qcascade.data import discover
from qcascade.data.stress import cohort_plan, make_stress_cohort, make_stress_patient, write_stress_cohort
from qcascade.data.stress_signals import MORPHOLOGIES, discharge

FS = 512
SHORT = dict(pre_ictal_s=20.0, post_ictal_s=20.0, seizure_s=(15.0, 25.0))


@pytest.fixture(scope="module")
def multifocal():
    return make_stress_patient("ID1", seed=5, n_electrodes=40, n_seizures=4, multifocal=True, **SHORT)


def test_same_seed_identical_different_seed_differs():
    a = make_stress_patient("ID1", 3, 24, 2, **SHORT)
    b = make_stress_patient("ID1", 3, 24, 2, **SHORT)
    c = make_stress_patient("ID1", 4, 24, 2, **SHORT)
    for ra, rb in zip(a.recordings, b.recordings):
        assert np.array_equal(ra.eeg, rb.eeg) and ra.artefacts == rb.artefacts and ra.onset_zone == rb.onset_zone
    assert not np.array_equal(a.recordings[0].eeg[:2000], c.recordings[0].eeg[:2000])
    x, y = make_stress_cohort(2, seed=1, n_multifocal=1, **SHORT), make_stress_cohort(2, seed=1, n_multifocal=1, **SHORT)
    assert all(np.array_equal(r.eeg, s.eeg) for p, q in zip(x.patients, y.patients)
               for r, s in zip(p.recordings, q.recordings))


@pytest.mark.parametrize("seed", range(6))
def test_cohort_plan_in_range_and_spanning(seed):
    plan = cohort_plan(8, seed, n_multifocal=2)
    n_el = [p["n_electrodes"] for p in plan]
    n_sz = [p["n_seizures"] for p in plan]
    assert all(24 <= n <= 128 for n in n_el) and all(2 <= n <= 8 for n in n_sz)
    assert min(n_el) <= 30 and max(n_el) >= 104  # stratified: the extreme strata are always drawn
    assert min(n_sz) <= 2 + 1 and max(n_sz) >= 8 - 1
    assert sum(p["multifocal"] for p in plan) == 2
    assert cohort_plan(8, seed) == plan and cohort_plan(8, seed + 100) != plan


def test_multifocal_zones_differ_and_seizures_alternate(multifocal):
    p = multifocal
    assert p.multifocal and len(p.onset_zones) == 2
    za, zb = p.onset_zones
    assert not set(za) & set(zb) and abs(za[0] - zb[0]) >= max(8, p.n_electrodes // 3)
    assert p.soz_electrodes == sorted(za + zb)
    for k, rec in enumerate(p.recordings):
        own, other = p.onset_zones[k % 2], p.onset_zones[1 - k % 2]
        assert rec.onset_zone == own and rec.spread in ("focal", "spreading")
        assert set(own) <= set(rec.involved) and not set(other) & set(rec.involved)
        assert rec.morphology == p.morphologies[k % 2]


def test_dead_flat_noisy_loud_and_outside_the_zones():
    seen_dead = seen_noisy = 0
    for seed in range(6):
        p = make_stress_patient("ID1", seed, 32, 2, **SHORT)
        assert not set(p.dead_electrodes + p.noisy_electrodes) & set(p.soz_electrodes)
        for rec in p.recordings:
            x = rec.eeg
            assert np.isfinite(x).all()
            for e in p.dead_electrodes:
                assert np.ptp(x[:, e]) == 0.0
            live = [e for e in range(32) if e not in p.dead_electrodes]
            sd = np.median(np.abs(np.diff(x[:, live], axis=0)), axis=0)
            median = np.median(sd)
            for e in p.noisy_electrodes:  # broadband noise: far more sample-to-sample change
                assert sd[live.index(e)] > 2 * median
        seen_dead += len(p.dead_electrodes)
        seen_noisy += len(p.noisy_electrodes)
    assert seen_dead and seen_noisy


def test_line_noise_peak_at_mains_frequency():
    checked = set()
    for seed in range(8):
        p = make_stress_patient("ID1", seed, 32, 1, **SHORT)
        if not p.line_noise_electrodes:
            continue
        x = p.recordings[0].eeg
        f, pxx = welch(x.T, FS, nperseg=2048, average="median")  # robust to artefact bursts and the seizure
        hz = p.line_freq_hz
        at = np.argmin(np.abs(f - hz))
        side = (np.abs(f - hz) > 3) & (np.abs(f - hz) < 10)
        live = [e for e in range(32) if e not in p.dead_electrodes]
        ratio = dict(zip(live, pxx[live, at] / np.median(pxx[live][:, side], axis=1)))
        # A noisy (broadband) electrode may bury its line noise; the others must show a sharp peak.
        hit = [e for e in p.line_noise_electrodes if e not in p.noisy_electrodes]
        clean = [e for e in live if e not in p.line_noise_electrodes]
        assert hit and min(ratio[e] for e in hit) > 10 and np.median([ratio[e] for e in clean]) < 3
        checked.add(hz)
    assert checked == {50.0, 60.0}


@pytest.mark.parametrize("morph", MORPHOLOGIES)
def test_morphologies(morph):
    w, n_fast = discharge(np.random.default_rng(0), morph, 60 * FS)
    assert w.shape == (60 * FS,) and np.isfinite(w).all() and np.sqrt(np.mean(w[n_fast:] ** 2)) == pytest.approx(1, rel=1e-3)

    def dominant(seg):
        f, pxx = welch(seg, FS, nperseg=1024)
        return f[np.argmax(pxx * (f > 1))]

    if morph == "lvfa_spike_wave":
        assert n_fast > 0 and dominant(w[:n_fast]) > 18 and np.std(w[:n_fast]) < 0.5 * np.std(w[n_fast:])
        assert dominant(w[-20 * FS:]) < dominant(w[n_fast:n_fast + 10 * FS])  # slowing
    elif morph == "rhythmic_theta_delta":
        assert n_fast == 0 and 4.5 <= dominant(w[:8 * FS]) <= 8.5 and 1.5 <= dominant(w[-10 * FS:]) <= 4.5
    elif morph == "polyspike":
        f, pxx = welch(w, FS, nperseg=1024)
        assert pxx[(f > 12) & (f < 30)].sum() > 0.05 * pxx.sum()  # the fast spikes inside each burst
    else:
        assert dominant(w[:10 * FS]) < dominant(w[-20 * FS:])  # periodic spikes that accelerate


def test_written_layout_read_by_swec_short(tmp_path):
    out = write_stress_cohort(tmp_path, n_patients=2, seed=2, n_multifocal=1, electrode_range=(24, 30),
                              seizure_range=(2, 3), pre_ictal_s=180.0, post_ictal_s=180.0, seizure_s=(10.0, 12.0))
    truth = json.loads((out / "ground_truth.json").read_text())
    recs = discover("swec-short", out)
    assert sorted(recs) == ["ID1", "ID2"] == sorted(truth["patients"])
    assert len(truth["multifocal_patients"]) == 1
    for pid, rs in recs.items():
        t = truth["patients"][pid]
        assert len(rs) == len(t["recordings"]) and 2 <= len(rs) <= 3
        for r in rs:
            assert r.ictal_spans == [tuple(s) for s in t["recordings"][r.record_id]["ictal_spans"]]
            assert np.flatnonzero(r.dead_electrodes()).tolist() == t["dead_electrodes"]
            assert r.n_electrodes == t["n_electrodes"]
        zones = [tuple(t["recordings"][r.record_id]["onset_zone"]) for r in rs]
        assert len(set(zones)) == (2 if t["multifocal"] else 1)
