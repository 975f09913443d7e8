"""The stress cohort: a seeded, domain-randomised iEEG cohort that is harder and more varied than
the default one (:mod:`qcascade.data.synthetic`, left unchanged).

Drawn per patient: 24-128 electrodes and 2-8 seizures (stratified over the cohort, larger implants
get fewer seizures to bound disk space), one onset zone of 2-5 adjacent contacts or, for
multifocal patients, two zones at least a third of the strip apart whose seizures alternate;
two of four seizure morphologies (:mod:`qcascade.data.stress_signals`); focal, spreading or
generalised seizures (multifocal ones never reach the other zone); post-ictal suppression; an
aperiodic background with its own exponent; interictal spikes, frequent on the onset zones;
seizure-like artefacts (movement, electrode pops, EMG/chewing bursts); 50 or 60 Hz line noise on
some electrodes; dead (flat) and noisy electrodes outside the zones; a different amplitude scale
and DC offsets in every recording.

Written in the SWEC short-term layout by :func:`qcascade.data.synthetic.write_swec_short`, so
``--dataset swec-short --data-dir DIR`` reads it, with ``ground_truth.json`` holding the onset
zone of every seizure, the multifocal patients, and every artefact::

    python -m qcascade.data.stress --out DIR [--seed 0] [--n-patients 8] [--n-multifocal 2]

Patient ``i`` depends on ``(seed, i)`` and the cohort plan only; the same seed gives identical files.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qcascade.data.stress_signals import (MORPHOLOGIES, add_artefacts, add_line_noise, add_seizure,
                                          add_spikes)
from qcascade.data.synthetic import (SFREQ, SyntheticCohort, SyntheticPatient, SyntheticRecording, _powerlaw,
                                     _smooth, write_swec_short)
from qcascade.io_utils import atomic_write_json

_UV = 40.0  # background standard deviation before the recording's scale, microvolts


@dataclass
class StressRecording(SyntheticRecording):
    """A :class:`SyntheticRecording` with the seizure's ground truth."""

    onset_zone: list[int] = field(default_factory=list)
    morphology: str = ""
    spread: str = ""
    involved: list[int] = field(default_factory=list)
    scale: float = 1.0
    artefacts: list[dict] = field(default_factory=list)


@dataclass
class StressPatient(SyntheticPatient):
    """``soz_electrodes`` is the union of ``onset_zones`` (one zone, or two when multifocal)."""

    onset_zones: list[list[int]] = field(default_factory=list)
    multifocal: bool = False
    dead_electrodes: list[int] = field(default_factory=list)
    noisy_electrodes: list[int] = field(default_factory=list)
    line_noise_electrodes: list[int] = field(default_factory=list)
    line_freq_hz: float = 50.0
    morphologies: list[str] = field(default_factory=list)


def cohort_plan(n_patients: int = 8, seed: int = 0, n_multifocal: int = 2,
                electrode_range: tuple[int, int] = (24, 128), seizure_range: tuple[int, int] = (2, 8)) -> list[dict]:
    """Electrodes, seizures and multifocality per patient: ``[{"n_electrodes", "n_seizures", "multifocal"}]``.

    Electrode counts are stratified log-uniform over ``electrode_range`` and seizure counts
    stratified uniform over ``seizure_range``, so a cohort of 8 spans both ranges; the largest
    implants get the fewest seizures (disk and time stay bounded), then the patients are shuffled.
    """
    if not 0 <= n_multifocal <= n_patients:
        raise ValueError(f"n_multifocal must be in [0, n_patients], got {n_multifocal}")
    (e_lo, e_hi), (s_lo, s_hi) = electrode_range, seizure_range
    if not (4 <= e_lo <= e_hi <= 128 and 2 <= s_lo <= s_hi):
        raise ValueError(f"bad ranges: electrodes {electrode_range}, seizures {seizure_range}")
    rng = np.random.default_rng([seed, 0x5757])
    u = (rng.permutation(n_patients) + rng.random(n_patients)) / n_patients
    n_el = np.sort(np.round(e_lo * (e_hi / e_lo) ** u).astype(int))
    v = (rng.permutation(n_patients) + rng.random(n_patients)) / n_patients
    n_sz = np.sort(s_lo + np.floor(v * (s_hi - s_lo + 1)).astype(int))[::-1]
    order = rng.permutation(n_patients)
    multi = set(rng.choice(n_patients, n_multifocal, replace=False).tolist())
    return [{"n_electrodes": int(n_el[j]), "n_seizures": int(n_sz[j]), "multifocal": i in multi}
            for i, j in enumerate(order)]


def _zones(rng, n_el: int, multifocal: bool) -> list[list[int]]:
    size = int(rng.integers(2, 6))
    if not multifocal:
        first = int(rng.integers(1, n_el - size))
        return [list(range(first, first + size))]
    min_gap = max(8, n_el // 3)  # distance between the zones' first contacts
    starts = [(a, b) for a in range(1, n_el - size) for b in range(1, n_el - size) if b - a >= min_gap + size]
    a, b = starts[int(rng.integers(len(starts)))]
    zones = [list(range(a, a + size)), list(range(b, b + size))]
    return zones if rng.random() < 0.5 else zones[::-1]


def _background(r, n_times: int, n_el: int, exponent: float, knee_hz: float, state_sd: float) -> np.ndarray:
    """``(n_times, n_el)`` float32 unit-std aperiodic background, neighbours correlated, slowly modulated."""
    noise = _powerlaw(r, n_times, n_el + 2, exponent=exponent, knee_hz=knee_hz)
    bg = noise[1:-1] * 0.5
    bg += 0.3 * (noise[:-2] + noise[2:])
    bg += 0.25 * noise[:1]
    bg /= bg.std(axis=1, keepdims=True)
    state = _smooth(r, n_times, n_el, 0.05)
    state *= state_sd
    state += 0.3 * _smooth(r, n_times, 1, 0.03)
    bg *= np.exp(state, out=state)
    return bg.T


def make_stress_patient(patient_id: str, seed: int, n_electrodes: int, n_seizures: int, multifocal: bool = False,
                        pre_ictal_s: float = 180.0, post_ictal_s: float = 180.0,
                        seizure_s: tuple[float, float] = (15.0, 90.0)) -> StressPatient:
    """One stress patient with ``n_seizures`` short-term recordings (one seizure each).

    Args:
        patient_id: e.g. ``"ID1"``.
        seed: determines everything (same seed -> identical arrays).
        n_electrodes: 24-128 (fewer works, down to 16 for a multifocal patient).
        n_seizures: recordings; a multifocal patient's seizures alternate between its two zones.
        multifocal: two distant onset zones.
        pre_ictal_s, post_ictal_s: seconds before/after the seizure (180 s in the SWEC layout).
        seizure_s: (min, max) seizure duration, seconds.
    """
    rng = np.random.default_rng(seed)
    n_el = int(n_electrodes)
    if not 16 <= n_el <= 128:
        raise ValueError(f"n_electrodes must be in [16, 128], got {n_el}")
    zones = _zones(rng, n_el, multifocal)
    in_zone = sorted({e for z in zones for e in z})
    near = {e + d for e in in_zone for d in (-1, 0, 1)}
    others = rng.permutation([e for e in range(n_el) if e not in near])
    n_dead, n_noisy = int(rng.integers(0, 4)), int(rng.integers(0, 4))
    dead, noisy = sorted(others[:n_dead].tolist()), sorted(others[n_dead:n_dead + n_noisy].tolist())
    live = [e for e in range(n_el) if e not in dead]
    n_line = int(rng.integers(1, max(2, n_el // 8) + 1)) if rng.random() < 0.75 else 0
    line = sorted(rng.choice(live, n_line, replace=False).tolist())
    line_hz = float(rng.choice([50.0, 60.0]))
    morphs = [str(m) for m in rng.choice(MORPHOLOGIES, 2, replace=False)]
    # Exponent and knee measured against Bonn C+D band powers (docs/stress_cohort.md).
    exponent, knee_hz, state_sd = rng.uniform(-3.2, -2.5), rng.uniform(2.0, 6.0), rng.uniform(0.1, 0.3)
    base_amp, spike_rate, artefact_rate = rng.uniform(2.5, 8.0), rng.uniform(3, 15), rng.uniform(0.8, 2.5)
    gains = rng.uniform(0.5, 1.5, n_el).astype(np.float32)
    spike_rates = np.full(n_el, rng.uniform(0.1, 0.5))
    spike_rates[in_zone] = spike_rate
    spike_rates[dead] = 0.0
    gap = abs(zones[-1][0] - zones[0][0]) - len(zones[0])
    recordings = []
    for k in range(1, n_seizures + 1):
        r = np.random.default_rng([seed, k])
        dur = r.uniform(*seizure_s)
        n_times = int(round((pre_ictal_s + dur + post_ictal_s) * SFREQ))
        onset, offset = int(round(pre_ictal_s * SFREQ)), n_times - int(round(post_ictal_s * SFREQ))
        eeg = _background(r, n_times, n_el, exponent, knee_hz, state_sd)
        zi = (k - 1) % len(zones) if multifocal else 0
        spread = str(r.choice(["focal", "spreading"] if multifocal else ["focal", "spreading", "generalised"],
                              p=[0.5, 0.5] if multifocal else [0.35, 0.45, 0.2]))
        amp = base_amp * r.uniform(0.7, 1.3) if r.random() > 0.15 else r.uniform(1.0, 2.0)  # some subtle
        morph = morphs[zi] if multifocal else morphs[int(r.random() < 0.3)]
        sz = add_seizure(r, eeg, onset, offset, zones[zi], morph, spread, amp, postictal=r.random() < 0.7,
                         max_radius=max(1, gap // 2) if multifocal else None)
        add_spikes(r, eeg, spike_rates, amp=r.uniform(2.5, 4.0))
        artefacts = add_artefacts(r, eeg, artefact_rate, avoid=dead)
        add_line_noise(r, eeg, line, line_hz)
        for e in noisy:
            eeg[:, e] += r.standard_normal(n_times, dtype=np.float32) * r.uniform(3, 8)
        scale = float(np.exp(r.uniform(np.log(0.4), np.log(2.5))))
        eeg *= _UV * scale * gains * r.uniform(0.9, 1.1, n_el).astype(np.float32)
        eeg += r.uniform(-20, 20, n_el).astype(np.float32)  # DC offsets
        eeg[:, dead] = r.uniform(-50, 50, len(dead)).astype(np.float32)  # flat: disconnected contact
        recordings.append(StressRecording(
            f"{patient_id}_Sz{k}", eeg, [(onset, offset)], [tuple(a["span"]) for a in artefacts],
            onset_zone=zones[zi], morphology=morph, spread=spread, involved=sz["involved"], scale=scale,
            artefacts=artefacts))
    return StressPatient(patient_id, n_el, in_zone, recordings, onset_zones=zones, multifocal=multifocal,
                         dead_electrodes=dead, noisy_electrodes=noisy, line_noise_electrodes=line,
                         line_freq_hz=line_hz, morphologies=morphs)


def _patient_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([seed, 0x57, i]).generate_state(1)[0])


def iter_stress_patients(n_patients: int = 8, seed: int = 0, n_multifocal: int = 2, **kwargs):
    """Yield the cohort's :class:`StressPatient` one at a time (``ID1..IDn``); ``kwargs`` go to
    :func:`make_stress_patient`, except ``electrode_range`` / ``seizure_range`` (:func:`cohort_plan`)."""
    ranges = {k: kwargs.pop(k) for k in ("electrode_range", "seizure_range") if k in kwargs}
    for i, plan in enumerate(cohort_plan(n_patients, seed, n_multifocal, **ranges)):
        yield make_stress_patient(f"ID{i + 1}", _patient_seed(seed, i), plan["n_electrodes"], plan["n_seizures"],
                                  plan["multifocal"], **kwargs)


def make_stress_cohort(n_patients: int = 8, seed: int = 0, n_multifocal: int = 2, **kwargs) -> SyntheticCohort:
    """The whole cohort in memory (small cohorts and tests; :func:`write_stress_cohort` streams)."""
    return SyntheticCohort(list(iter_stress_patients(n_patients, seed, n_multifocal, **kwargs)), seed)


def patient_truth(p: StressPatient) -> dict:
    """JSON-able ground truth of one patient (a superset of the default cohort's)."""
    return {"n_electrodes": p.n_electrodes, "soz_electrodes": p.soz_electrodes, "onset_zones": p.onset_zones,
            "multifocal": p.multifocal, "dead_electrodes": p.dead_electrodes, "noisy_electrodes": p.noisy_electrodes,
            "line_noise_electrodes": p.line_noise_electrodes, "line_freq_hz": p.line_freq_hz,
            "morphologies": p.morphologies,
            "recordings": {r.record_id: {"ictal_spans": r.ictal_spans, "artefact_spans": r.artefact_spans,
                                         "onset_zone": r.onset_zone, "morphology": r.morphology, "spread": r.spread,
                                         "involved": r.involved, "scale": r.scale, "artefacts": r.artefacts}
                           for r in p.recordings}}


def write_stress_cohort(out_dir, n_patients: int = 8, seed: int = 0, n_multifocal: int = 2, **kwargs) -> Path:
    """Write the cohort patient by patient (bounded memory) in the SWEC short-term layout.

    ``<out_dir>/ID<n>/Sz<k>.mat`` and ``<out_dir>/ground_truth.json``:
    ``{"generator": "stress", "seed", "sfreq", "multifocal_patients": [...], "patients": {id: ...}}``
    (see :func:`patient_truth`).
    """
    out_dir = Path(out_dir)
    truth = {"generator": "stress", "seed": seed, "sfreq": SFREQ, "multifocal_patients": [], "patients": {}}
    for p in iter_stress_patients(n_patients, seed, n_multifocal, **kwargs):
        write_swec_short(SyntheticCohort([p], seed), out_dir)  # the MAT files; ground truth follows
        truth["patients"][p.patient_id] = patient_truth(p)
        if p.multifocal:
            truth["multifocal_patients"].append(p.patient_id)
    atomic_write_json(out_dir / "ground_truth.json", truth)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qcascade.data.stress", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (SWEC short-term layout)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-patients", type=int, default=8)
    p.add_argument("--n-multifocal", type=int, default=2)
    args = p.parse_args(argv)
    if args.n_patients < 1 or not 0 <= args.n_multifocal <= args.n_patients:
        p.error("need --n-patients >= 1 and 0 <= --n-multifocal <= --n-patients")
    t0 = time.perf_counter()
    write_stress_cohort(args.out, args.n_patients, args.seed, args.n_multifocal)
    import json

    truth = json.loads((args.out / "ground_truth.json").read_text())
    for pid, t in truth["patients"].items():
        print(f"{pid}: {t['n_electrodes']} electrodes, {len(t['recordings'])} seizures, zones {t['onset_zones']}"
              f"{' (multifocal)' if t['multifocal'] else ''}, {'/'.join(t['morphologies'])}")
    size = sum(f.stat().st_size for f in args.out.rglob("*.mat"))
    print(f"wrote {args.out} ({size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
