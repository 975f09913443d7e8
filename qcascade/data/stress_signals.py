"""Signal primitives of the stress cohort (:mod:`qcascade.data.stress`): seizure morphologies,
seizure-like artefacts, line noise. All work in background-standard-deviation units at 512 Hz on
``(n_times, n_electrodes)`` float32 arrays, in place, driven by a ``numpy.random.Generator``.

Morphologies (the waveform on onset-zone electrodes; recruited electrodes get the same discharge,
later and weaker):

* ``lvfa_spike_wave``: low-voltage fast activity (a 25-45 Hz chirp with background decrement), then
  rhythmic spike-and-wave that slows from ~8 to ~2.5 Hz and sharpens;
* ``rhythmic_theta_delta``: a sinusoidal rhythm that starts in theta (5-8 Hz), grows and slows to
  delta (2-4 Hz), with a harmonic that makes it asymmetric;
* ``polyspike``: bursts of 3-8 spikes at 12-25 Hz, repeating at 1.5-4 Hz and slowing;
* ``hypersynchronous``: isolated large periodic spikes at ~1 Hz that accelerate to ~3-4 Hz.

Each may end in post-ictal suppression (set by the caller).
"""

from __future__ import annotations

import numpy as np

from qcascade.data.synthetic import SFREQ, _powerlaw, _smooth, _spike_wave

MORPHOLOGIES = ("lvfa_spike_wave", "rhythmic_theta_delta", "polyspike", "hypersynchronous")
ARTEFACTS = ("movement", "pop", "emg_chewing")


def _chirp_phase(f0: float, f1: float, n: int, geometric: bool = True) -> np.ndarray:
    """Running phase (radians) of a rhythm sweeping ``f0 -> f1`` Hz over ``n`` samples."""
    r = np.linspace(0.0, 1.0, n)
    f = f0 * (f1 / f0) ** r if geometric else f0 + (f1 - f0) * r
    return 2 * np.pi * np.cumsum(f) / SFREQ


def discharge(rng, morphology: str, n: int) -> tuple[np.ndarray, int]:
    """The onset-zone waveform of one seizure: ``((n,) float32, n_fast)``, unit RMS after the fast onset.

    ``n_fast`` is the length of a leading low-voltage fast segment (0 when the morphology has
    none), during which the caller attenuates the background (decrement). The caller scales the
    waveform (its RMS is then the amplitude in background standard deviations).
    """
    wave, n_fast = _discharge(rng, morphology, n)
    return (wave / np.sqrt(np.mean(wave[n_fast:] ** 2))).astype(np.float32), n_fast


def _discharge(rng, morphology: str, n: int) -> tuple[np.ndarray, int]:
    t = np.arange(n) / SFREQ
    dur = n / SFREQ
    grow = np.clip(t / rng.uniform(2.0, 6.0), 0, 1)  # recruitment: amplitude builds up
    fade = np.clip((dur - t) / rng.uniform(2.0, 5.0), 0, 1)
    n_fast = 0
    if morphology == "lvfa_spike_wave":
        lvfa = float(np.clip(rng.uniform(0.1, 0.25) * dur, 2.0, 10.0))
        n_fast = min(int(lvfa * SFREQ), n // 2)
        out = np.zeros(n)
        out[:n_fast] = np.sin(_chirp_phase(rng.uniform(30, 45), rng.uniform(18, 25), n_fast, False))
        out[:n_fast] *= np.linspace(0.08, 0.25, n_fast)  # low voltage, relative to the spike-wave
        rest = n - n_fast
        sharp = np.linspace(2.0, 6.0, rest)
        sw = _spike_wave(_chirp_phase(rng.uniform(6.5, 9.0), rng.uniform(3.0, 4.5), rest), sharp) / 2.5
        out[n_fast:] = sw * np.clip(np.arange(rest) / SFREQ / 3.0, 0, 1)
        return (out * fade).astype(np.float32), n_fast
    if morphology == "rhythmic_theta_delta":
        phase = _chirp_phase(rng.uniform(5.0, 8.0), rng.uniform(2.5, 4.5), n)
        out = np.sin(phase) + rng.uniform(0.2, 0.5) * np.sin(2 * phase + rng.uniform(0, np.pi))
        return (out / 1.3 * grow * fade).astype(np.float32), 0
    if morphology == "polyspike":
        slow = _chirp_phase(rng.uniform(3.0, 5.0), rng.uniform(2.0, 3.0), n)
        gate = (np.mod(slow, 2 * np.pi) < 2 * np.pi * rng.uniform(0.35, 0.6)).astype(float)
        fast = np.exp(8.0 * (np.cos(2 * np.pi * rng.uniform(12, 25) * t) - 1.0))
        out = gate * (fast - 0.1) - 0.25 * np.cos(slow - 2.0)  # spikes on a slow wave
        return (out * grow * fade).astype(np.float32), 0
    if morphology == "hypersynchronous":
        phase = _chirp_phase(rng.uniform(1.0, 2.0), rng.uniform(4.0, 6.0), n)
        out = _spike_wave(phase, np.linspace(10.0, 4.0, n)) / 2.5
        return (out * fade).astype(np.float32), 0
    raise ValueError(f"unknown morphology {morphology!r} (have {MORPHOLOGIES})")


def add_seizure(rng, eeg: np.ndarray, onset: int, offset: int, zone: list[int], morphology: str,
                spread: str, amp: float, postictal: bool, max_radius: int | None = None) -> dict:
    """Add one seizure starting in ``zone`` to ``eeg`` ``(n_times, n_el)`` in place.

    Args:
        spread: ``"focal"`` (the zone and its direct neighbours), ``"spreading"`` (recruits
            electrodes up to 3-12 contacts away, later and weaker) or ``"generalised"`` (reaches
            every electrode, within about half the seizure).
        amp: discharge amplitude on the zone, background std units.
        postictal: suppress the involved electrodes for 10-60 s after the offset.
        max_radius: cap on the recruitment radius (multifocal patients: the other zone stays clear).

    Returns:
        ``{"involved": [electrodes], "radius": int}`` for the ground truth.
    """
    n_times, n_el = eeg.shape
    n = offset - onset
    wave, n_fast = discharge(rng, morphology, n)
    radius = {"focal": 1, "spreading": int(rng.integers(3, 13)), "generalised": n_el}[spread]
    radius = radius if max_radius is None else min(radius, max_radius)
    decay = {"focal": 0.45, "spreading": rng.uniform(0.6, 0.8), "generalised": rng.uniform(0.85, 0.95)}[spread]
    per_contact_s = min(rng.uniform(0.8, 2.5), 0.5 * n / SFREQ / max(1, min(radius, n_el)))
    post = int(min(rng.uniform(10, 60) * SFREQ, n_times - offset))
    involved = []
    for e in range(n_el):
        dist = min(abs(e - z) for z in zone)
        if dist > radius:
            continue
        delay = int(dist * per_contact_s * SFREQ * rng.uniform(0.8, 1.2))
        if delay >= n - SFREQ:
            continue
        a = amp * rng.uniform(0.85, 1.15) * max(decay ** dist, 0.15 if spread == "generalised" else 0.0)
        if dist == 0 and n_fast:
            eeg[onset:onset + n_fast, e] *= 0.5  # decrement under the fast activity
        eeg[onset + delay:offset, e] += a * wave[:n - delay]
        if postictal and post > 0:
            eeg[offset:offset + post, e] *= np.linspace(rng.uniform(0.1, 0.35), 1.0, post, dtype=np.float32)
        involved.append(e)
    return {"involved": involved, "radius": int(min(radius, n_el))}


def add_spikes(rng, eeg: np.ndarray, rates_per_min: np.ndarray, amp: float) -> None:
    """Interictal spikes (sharp transient + slow wave), Poisson per electrode."""
    t = np.arange(int(0.3 * SFREQ)) / SFREQ
    kernel = -np.exp(-((t - 0.03) / rng.uniform(0.008, 0.016)) ** 2) + 0.35 * np.exp(-((t - 0.15) / 0.05) ** 2)
    for e in np.flatnonzero(rates_per_min):
        for start in rng.integers(0, len(eeg) - len(kernel), rng.poisson(rates_per_min[e] * len(eeg) / SFREQ / 60)):
            eeg[start:start + len(kernel), e] += amp * rng.uniform(0.6, 1.4) * kernel


def add_artefacts(rng, eeg: np.ndarray, rate_per_min: float, avoid: list[int]) -> list[dict]:
    """Seizure-like artefacts, Poisson in time: ``[{"kind", "span": (start, stop), "electrodes"}]``.

    * movement: large slow deflections plus broadband bursts on (nearly) all electrodes, 0.5-4 s;
    * pop: one electrode jumps and relaxes exponentially, 1-5 times within a few seconds;
    * emg_chewing: 1-2 Hz rhythmic bursts of broadband 20-120 Hz activity on a contiguous block of
      electrodes, 3-12 s (rhythmic and high-frequency: the hardest negative).
    ``avoid`` electrodes (e.g. dead ones) are left untouched.
    """
    n_times, n_el = eeg.shape
    allowed = np.setdiff1d(np.arange(n_el), avoid)
    out = []
    for _ in range(rng.poisson(rate_per_min * n_times / SFREQ / 60)):
        kind = str(rng.choice(ARTEFACTS, p=[0.4, 0.3, 0.3]))
        dur = int(rng.uniform(*{"movement": (0.5, 4), "pop": (1, 5), "emg_chewing": (3, 12)}[kind]) * SFREQ)
        start = int(rng.integers(0, n_times - dur))
        t = np.arange(dur) / SFREQ
        if kind == "movement":
            hit = allowed[rng.random(len(allowed)) < rng.uniform(0.85, 1.0)]
            slow = _smooth(rng, dur, 1, 1.5, step=8).T * rng.uniform(6, 15)
            broad = _powerlaw(rng, dur, len(hit), exponent=-0.5).T
            burst = slow * rng.uniform(0.7, 1.3, len(hit)) + broad / broad.std() * rng.uniform(1, 3)
            eeg[start:start + dur, hit] += burst * np.sqrt(np.clip(np.sin(np.pi * t / t[-1]), 0, 1))[:, None]
        elif kind == "pop":
            hit = allowed[[int(rng.integers(len(allowed)))]]
            for p in np.sort(rng.integers(0, dur, int(rng.integers(1, 6)))):
                step = rng.choice([-1, 1]) * rng.uniform(8, 30)
                eeg[start + p:start + dur, hit[0]] += step * np.exp(-(t[:dur - p]) / rng.uniform(0.05, 0.3))
        else:
            width = max(2, int(n_el * rng.uniform(0.2, 0.6)))
            first = int(rng.integers(0, n_el - width + 1))
            hit = np.intersect1d(np.arange(first, first + width), allowed)
            gate = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(1.0, 2.0) * t)) ** 2
            muscle = _powerlaw(rng, dur, len(hit), exponent=0.0).T
            muscle *= (gate * rng.uniform(2, 5) / muscle.std())[:, None]
            eeg[start:start + dur, hit] += muscle * np.clip(np.hanning(dur), 0, 1)[:, None] ** 0.25
        out.append({"kind": kind, "span": (start, start + dur), "electrodes": [int(e) for e in hit]})
    return sorted(out, key=lambda a: a["span"])


def add_line_noise(rng, eeg: np.ndarray, electrodes: list[int], freq_hz: float) -> None:
    """Mains interference on ``electrodes``: ``freq_hz`` plus a weaker 3rd harmonic (150 or 180 Hz,
    below the 256 Hz Nyquist frequency), with a slowly varying amplitude."""
    n_times = len(eeg)
    t = np.arange(n_times) / SFREQ
    env = np.exp(0.3 * _smooth(rng, n_times, 1, 0.02)[0])
    for e in electrodes:
        ph = 2 * np.pi * freq_hz * t + rng.uniform(0, 2 * np.pi)
        eeg[:, e] += rng.uniform(0.5, 3.0) * env * (np.sin(ph) + 0.2 * np.sin(3 * ph))
