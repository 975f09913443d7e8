"""A small, deterministic synthetic iEEG cohort with known seizure-onset zones (SOZ).

Each patient has its own electrode count, laid out as a strip (neighbouring indices are neighbouring
contacts) with an SOZ of 2-4 adjacent electrodes. Each recording follows the SWEC short-term layout
(pre-ictal, one seizure, post-ictal) and contains:

* aperiodic background: Lorentzian 1/f^chi noise (knee 1 Hz, band-limited to 120 Hz like SWEC's
  0.5-120 Hz acquisition filter), spatially smoothed so neighbours correlate, with a slow
  amplitude modulation (state changes) so a fixed threshold is not enough;
* interictal spikes, most frequent in the SOZ;
* artefacts: movement bursts and 50 Hz line-noise bursts across most electrodes, and rhythmic
  4-7 Hz bursts (chewing-like) that resemble ictal discharges: the hard negatives;
* a seizure: low-voltage fast activity (20-40 Hz chirp, low amplitude: hard positives) in the SOZ,
  then rhythmic spike-wave discharges slowing from ~8 Hz to ~3 Hz that spread to neighbouring
  electrodes with a delay and weaker amplitude, then post-ictal suppression.

The background follows the FFT construction of :func:`neurodsp.sim.sim_powerlaw`, vectorised over
electrodes and driven by a ``numpy.random.Generator`` (neurodsp draws from the global NumPy state
and simulates one signal at a time, which is ~30x slower for a cohort). The same seed gives
identical arrays; patient ``i`` does not depend on how many patients are generated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft as sp_fft
from scipy.signal import resample_poly

from qcascade.data.matwrite import write_mat
from qcascade.data.swec import Recording
from qcascade.io_utils import atomic_write_json

SFREQ = 512.0
_UV = 40.0  # background standard deviation, microvolts


@dataclass
class SyntheticRecording:
    """One seizure recording: ``eeg`` is ``(n_samples, n_electrodes)`` float32 in microvolts at 512 Hz
    (Fortran-ordered: each electrode is contiguous); spans are ``(start, stop)`` sample indices, stop
    exclusive."""

    record_id: str
    eeg: np.ndarray = field(repr=False)
    ictal_spans: list[tuple[int, int]]
    artefact_spans: list[tuple[int, int]]


@dataclass
class SyntheticPatient:
    patient_id: str
    n_electrodes: int
    soz_electrodes: list[int]  # 0-based column indices
    recordings: list[SyntheticRecording]
    sfreq: float = SFREQ


@dataclass
class SyntheticCohort:
    patients: list[SyntheticPatient]
    seed: int


def _powerlaw(rng, n_times: int, n_signals: int, exponent: float = -2.5, knee_hz: float = 1.0,
              max_hz: float = 120.0) -> np.ndarray:
    """``(n_signals, n_times)`` aperiodic noise (not normalised), power ``1 / (knee^chi + f^chi)``.

    White noise has i.i.d. complex Gaussian Fourier coefficients, so they are drawn directly, and
    only below ``max_hz`` (the rest would be filtered out anyway).
    """
    n_fft = sp_fft.next_fast_len(n_times, real=True)
    freqs = sp_fft.rfftfreq(n_fft, 1 / SFREQ)
    n_used = int(np.searchsorted(freqs, max_hz, side="right"))
    amp = (1.0 / np.sqrt(knee_hz ** -exponent + freqs[1:n_used] ** -exponent)).astype(np.float32)
    spec = np.zeros((n_signals, len(freqs)), np.complex64)
    spec[:, 1:n_used] = rng.standard_normal((n_signals, n_used - 1), dtype=np.float32) * amp
    spec[:, 1:n_used] += 1j * rng.standard_normal((n_signals, n_used - 1), dtype=np.float32) * amp
    return sp_fft.irfft(spec, n=n_fft, axis=-1, workers=-1)[:, :n_times]


def _smooth(rng, n_times: int, n_signals: int, cutoff_hz: float, step: int = 32) -> np.ndarray:
    """Slow unit-variance noise (Gaussian spectrum below ``cutoff_hz``), ``(n_signals, n_times)``.

    Drawn at ``512 / step`` Hz and held (cutoffs are far below that rate).
    """
    n_slow = n_times // step + 1
    n_fft = sp_fft.next_fast_len(n_slow, real=True)
    freqs = sp_fft.rfftfreq(n_fft, step / SFREQ)
    spec = sp_fft.rfft(rng.standard_normal((n_signals, n_fft)), axis=-1) * np.exp(-(freqs / cutoff_hz) ** 2)
    slow = sp_fft.irfft(spec, n=n_fft, axis=-1)[:, :n_slow]
    slow /= slow.std(axis=1, keepdims=True)
    return np.repeat(slow.astype(np.float32), step, axis=1)[:, :n_times]


def _spike_wave(phase: np.ndarray, sharpness: np.ndarray | float) -> np.ndarray:
    """Periodic spike-and-wave waveform of a running phase (radians), roughly unit RMS."""
    spike = np.exp(sharpness * (np.cos(phase) - 1.0))
    wave = -0.35 * np.cos(phase - 2.4)
    return 2.0 * (spike - spike.mean()) + wave


def _add_spikes(rng, eeg: np.ndarray, rates_per_min: np.ndarray, amp: float) -> None:
    t = np.arange(int(0.3 * SFREQ)) / SFREQ
    kernel = -np.exp(-((t - 0.03) / 0.012) ** 2) + 0.35 * np.exp(-((t - 0.15) / 0.05) ** 2)
    duration_min = len(eeg) / SFREQ / 60
    for e, rate in enumerate(rates_per_min):
        for start in rng.integers(0, len(eeg) - len(kernel), rng.poisson(rate * duration_min)):
            eeg[start:start + len(kernel), e] += amp * rng.uniform(0.7, 1.3) * kernel


def _add_artefacts(rng, eeg: np.ndarray, rate_per_min: float) -> list[tuple[int, int]]:
    n_times, n_el = eeg.shape
    spans = []
    for _ in range(rng.poisson(rate_per_min * n_times / SFREQ / 60)):
        kind = rng.choice(["movement", "line", "rhythmic"], p=[0.45, 0.2, 0.35])
        dur = int(rng.uniform(*{"movement": (0.5, 3), "line": (2, 8), "rhythmic": (1.5, 5)}[kind]) * SFREQ)
        start = int(rng.integers(0, n_times - dur))
        hit = rng.random(n_el) < rng.uniform(0.6, 1.0)
        t = np.arange(dur) / SFREQ
        taper = np.sin(np.pi * np.arange(dur) / dur)[:, None] ** 0.5
        if kind == "movement":
            slow = _smooth(rng, dur, 1, 2.0, step=8).T * rng.uniform(5, 10)
            muscle = _powerlaw(rng, dur, int(hit.sum()), exponent=0.0).T  # broadband, below 120 Hz
            burst = slow + muscle / muscle.std() * rng.uniform(1, 2.5)
        elif kind == "line":
            burst = np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi))[:, None] * rng.uniform(1.5, 3.5)
            burst = np.repeat(burst, hit.sum(), axis=1)
        else:
            phase = 2 * np.pi * rng.uniform(4, 7) * t
            burst = _spike_wave(phase, 2.0)[:, None] * rng.uniform(2.5, 5) * rng.uniform(0.6, 1.0, hit.sum())
        eeg[start:start + dur, hit] += burst * taper
        spans.append((start, start + dur))
    return sorted(spans)


def _add_seizure(rng, eeg: np.ndarray, onset: int, offset: int, soz: list[int], spread_radius: int,
                 profile: dict) -> None:
    """Add a seizure to ``eeg`` ``(n_times, n_el)`` (background std units) in place."""
    n_times, n_el = eeg.shape
    dur = (offset - onset) / SFREQ
    lvfa = float(np.clip(0.15 * dur, 3.0, 8.0))
    t = np.arange(offset - onset) / SFREQ
    # Low-voltage fast activity in the SOZ, with background decrement.
    n_fast = int((t < lvfa).sum())
    f_fast = profile["f_fast"] - 12.0 * t[:n_fast] / lvfa
    fast = np.sin(2 * np.pi * np.cumsum(f_fast) / SFREQ) * np.linspace(0.35, 0.8, n_fast)
    # Rhythmic discharges slowing from f_start to f_end, growing, then fading before the end.
    tr = np.clip(t - lvfa, 0, None) / max(dur - lvfa, 1e-9)
    phase = 2 * np.pi * np.cumsum(profile["f_start"] * (profile["f_end"] / profile["f_start"]) ** tr) / SFREQ
    envelope = np.clip((t - lvfa) / 3.0, 0, 1) * np.where(tr > 0.85, 1 - 4.5 * (tr - 0.85), 1.0)
    discharge = _spike_wave(phase, 2.0 + 4.0 * tr) * envelope
    post = int(min(20 * SFREQ, n_times - offset))
    for e in range(n_el):
        dist = min(abs(e - s) for s in soz)
        if dist > spread_radius:
            continue
        eeg[offset:offset + post, e] *= np.linspace(0.5, 1.0, post, dtype=np.float32)  # post-ictal
        if dist == 0:
            eeg[onset:onset + n_fast, e] *= 0.6
            eeg[onset:onset + n_fast, e] += fast * rng.uniform(0.8, 1.2)
        a = profile["amp"] * rng.uniform(0.85, 1.15) * profile["decay"] ** dist
        delay = int(dist * profile["delay_s"] * SFREQ * rng.uniform(0.8, 1.2))
        if delay < len(t):  # recruited later and weaker with distance from the SOZ
            eeg[onset + delay:offset, e] += a * discharge[:len(t) - delay]


def make_patient(patient_id: str = "ID1", seed: int = 0, n_electrodes: int | None = None,
                 n_seizures: int = 4, pre_ictal_s: float = 180.0, post_ictal_s: float = 180.0,
                 seizure_s: tuple[float, float] = (20.0, 60.0), electrode_range: tuple[int, int] = (24, 64),
                 artefact_rate_per_min: float = 0.8) -> SyntheticPatient:
    """One synthetic patient with ``n_seizures`` short-term recordings.

    Args:
        patient_id: e.g. ``"ID1"``.
        seed: determines everything (same seed -> identical arrays).
        n_electrodes: electrode count (24-128); default drawn from ``electrode_range``.
        n_seizures: recordings, one seizure each.
        pre_ictal_s, post_ictal_s: seconds before/after the seizure.
        seizure_s: (min, max) seizure duration, seconds.
        electrode_range: inclusive range for a drawn electrode count.
        artefact_rate_per_min: mean artefacts per minute.
    """
    rng = np.random.default_rng(seed)
    n_el = int(n_electrodes or rng.integers(electrode_range[0], electrode_range[1] + 1))
    if not 4 <= n_el <= 128:
        raise ValueError(f"n_electrodes must be in [4, 128], got {n_el}")
    soz_size = int(rng.integers(2, 5))
    first = int(rng.integers(1, n_el - soz_size))
    soz = list(range(first, first + soz_size))
    profile = {"f_fast": rng.uniform(30, 40), "f_start": rng.uniform(7, 9), "f_end": rng.uniform(2.5, 3.5),
               "amp": rng.uniform(4, 6), "decay": rng.uniform(0.45, 0.6), "delay_s": rng.uniform(1.5, 3.0)}
    spread = int(rng.integers(2, 5))
    gains = rng.uniform(0.7, 1.3, n_el).astype(np.float32)
    spike_rates = np.where(np.isin(np.arange(n_el), soz), 6.0, 0.3)
    recordings = []
    for k in range(1, n_seizures + 1):
        r = np.random.default_rng([seed, k])
        dur = r.uniform(*seizure_s)
        n_times = int(round((pre_ictal_s + dur + post_ictal_s) * SFREQ))
        onset, offset = int(round(pre_ictal_s * SFREQ)), n_times - int(round(post_ictal_s * SFREQ))
        noise = _powerlaw(r, n_times, n_el + 2)
        # Neighbouring contacts share activity (volume conduction), plus a common component.
        bg = noise[1:-1] * 0.5
        bg += 0.3 * (noise[:-2] + noise[2:])
        bg += 0.25 * noise[:1]
        bg /= bg.std(axis=1, keepdims=True)
        # Slow state changes modulate the amplitude: globally and per electrode.
        state = _smooth(r, n_times, n_el, 0.05)
        state *= 0.15
        state += 0.3 * _smooth(r, n_times, 1, 0.03)
        bg *= np.exp(state, out=state)
        eeg = bg.T  # (n_times, n_el) view of the electrode-major array
        _add_seizure(r, eeg, onset, offset, soz, spread, profile)
        _add_spikes(r, eeg, spike_rates, amp=3.0)
        artefacts = _add_artefacts(r, eeg, artefact_rate_per_min)
        eeg *= _UV * gains
        recordings.append(SyntheticRecording(f"{patient_id}_Sz{k}", eeg,
                                             [(onset, offset)], artefacts))
    return SyntheticPatient(patient_id, n_el, soz, recordings)


def make_cohort(n_patients: int = 3, seed: int = 0, n_seizures: int = 4, **patient_kwargs) -> SyntheticCohort:
    """``n_patients`` patients ``ID1..IDn``; ``patient_kwargs`` go to :func:`make_patient`."""
    patients = [make_patient(f"ID{i + 1}", seed=int(np.random.SeedSequence([seed, i]).generate_state(1)[0]),
                             n_seizures=n_seizures, **patient_kwargs) for i in range(n_patients)]
    return SyntheticCohort(patients, seed)


def cohort_recordings(cohort: SyntheticCohort) -> dict:
    """In-memory :class:`~qcascade.data.swec.Recording` objects per patient (no disk)."""
    out = {}
    for p in cohort.patients:
        out[p.patient_id] = [
            Recording(p.patient_id, r.record_id, None, SFREQ, len(r.eeg), p.n_electrodes, list(r.ictal_spans),
                      (r.record_id,), data=r.eeg, info={"soz_electrodes": list(p.soz_electrodes)})
            for r in p.recordings]
    return out


def ground_truth(cohort: SyntheticCohort) -> dict:
    """JSON-able ground truth: SOZ electrodes and ictal/artefact spans (samples at 512 Hz)."""
    return {"seed": cohort.seed, "sfreq": SFREQ, "patients": {
        p.patient_id: {"n_electrodes": p.n_electrodes, "soz_electrodes": p.soz_electrodes,
                       "recordings": {r.record_id: {"ictal_spans": r.ictal_spans, "artefact_spans": r.artefact_spans}
                                      for r in p.recordings}} for p in cohort.patients}}


def write_swec_short(cohort: SyntheticCohort, out_dir, mat_version: str = "5", compress: bool = False) -> Path:
    """Write ``<out_dir>/ID<n>/Sz<k>.mat`` (``EEG`` samples x electrodes, single) + ``ground_truth.json``."""
    out_dir = Path(out_dir)
    for p in cohort.patients:
        for k, r in enumerate(p.recordings, start=1):
            write_mat(out_dir / p.patient_id / f"Sz{k}.mat", {"EEG": r.eeg}, mat_version, compress)
    atomic_write_json(out_dir / "ground_truth.json", ground_truth(cohort))
    return out_dir


def write_swec_long(cohort: SyntheticCohort, out_dir, mat_version: str = "7.3", sfreq: float = 512.0,
                    segment_s: float = 3600.0, compress: bool = False) -> Path:
    """Write the long-term layout: each patient's recordings back to back, cut into ``segment_s`` files.

    ``<out_dir>/IDn/IDn_<h>h.mat`` holds ``EEG`` electrodes x samples at ``sfreq`` (512 or 1024;
    1024 Hz is made by polyphase upsampling); ``IDn_info.mat`` holds ``fs``, ``seizure_begin`` and
    ``seizure_end`` in seconds from the start of file 1. Seizures may cross file boundaries.
    """
    out_dir, up = Path(out_dir), int(round(sfreq / SFREQ))
    for p in cohort.patients:
        eeg = np.concatenate([r.eeg for r in p.recordings])
        offsets = np.cumsum([0] + [len(r.eeg) for r in p.recordings])
        spans = np.array([(o + s0, o + s1) for o, r in zip(offsets, p.recordings) for s0, s1 in r.ictal_spans])
        seg = int(round(segment_s * SFREQ))
        for h, start in enumerate(range(0, len(eeg), seg), start=1):
            part = eeg[start:start + seg]
            if up > 1:
                part = resample_poly(part, up, 1, axis=0).astype(np.float32)
            write_mat(out_dir / p.patient_id / f"{p.patient_id}_{h}h.mat", {"EEG": part.T}, mat_version, compress)
        write_mat(out_dir / p.patient_id / f"{p.patient_id}_info.mat",
                  {"fs": np.array([[float(sfreq)]]), "seizure_begin": spans[:, 0] / SFREQ,
                   "seizure_end": spans[:, 1] / SFREQ}, mat_version)
    atomic_write_json(out_dir / "ground_truth.json", ground_truth(cohort))
    return out_dir
