"""Do the generated seizures look like real ones? 1-s window features of the stress cohort and the
default synthetic cohort against the Bonn intracranial sets (E ictal, C+D seizure-free).

Every signal is brought to Bonn's conditions first: band-limited to 0.53-40 Hz (Bonn's acquisition
band; 4th-order Butterworth, zero phase) at 512 Hz (Bonn resampled, see :mod:`qcascade.data.bonn`),
then scaled so that seizure-free activity has unit median window standard deviation: per recording
and electrode for the generated cohorts (their amplitude scale differs on purpose), globally for
Bonn (its segments carry no patient or electrode label). Features of each 512-sample window:

* ``log_ll``: log10 line length (mean absolute difference) of the scaled window;
* ``log_sd``: log10 standard deviation of the scaled window;
* ``delta, theta, alpha, beta, gamma``: fraction of 0.5-40 Hz power in 0.5-4, 4-8, 8-13, 13-30, 30-40 Hz;
* ``kurtosis``: excess kurtosis (spiky windows are large);
* ``log_ll_per_sd``: ``log_ll - log_sd``, how fast the window is whatever its amplitude (a slow discharge
  raises the amplitude more than the line length, and the gate's sentinel reads line length).

Groups: generated ictal windows on the onset-zone electrodes (Bonn E was selected where all sites
were ictal), generated seizure-free windows on live, non-noisy electrodes away from artefacts (Bonn
C and D were selected free of artefacts), and generated artefact windows (the hard negatives)::

    python -m qcascade.data.morphology --bonn ../shared/data/bonn [--seed 0] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

FEATURES = ("log_ll", "log_sd", "delta", "theta", "alpha", "beta", "gamma", "kurtosis", "log_ll_per_sd")
_BANDS = {"delta": (0.5, 4), "theta": (4, 8), "alpha": (8, 13), "beta": (13, 30), "gamma": (30, 40)}
FS, N = 512, 512


def band_limit(x: np.ndarray) -> np.ndarray:
    """``(n_times, n)`` -> 0.53-40 Hz band-limited float64 copy (zero phase)."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [0.53, 40.0], btype="band", fs=FS, output="sos")
    return sosfiltfilt(sos, np.asarray(x, np.float64), axis=0)


def windows(x: np.ndarray) -> np.ndarray:
    """``(n_times,)`` -> ``(n_windows, 512)`` non-overlapping 1-s windows."""
    n = len(x) // N
    return x[: n * N].reshape(n, N)


def window_features(w: np.ndarray) -> np.ndarray:
    """``(n_windows, 512)`` scaled windows -> ``(n_windows, len(FEATURES))`` float64."""
    from scipy.stats import kurtosis

    ll = np.abs(np.diff(w, axis=1)).mean(axis=1)
    sd = w.std(axis=1)
    spec = np.abs(np.fft.rfft((w - w.mean(axis=1, keepdims=True)) * np.hanning(N), axis=1)) ** 2
    f = np.fft.rfftfreq(N, 1 / FS)
    total = spec[:, (f >= 0.5) & (f < 40)].sum(axis=1) + 1e-30
    bands = [spec[:, (f >= lo) & (f < hi)].sum(axis=1) / total for lo, hi in _BANDS.values()]
    log_ll, log_sd = np.log10(ll + 1e-12), np.log10(sd + 1e-12)
    return np.column_stack([log_ll, log_sd, *bands, kurtosis(w, axis=1), log_ll - log_sd])


def bonn_features(data_dir) -> dict[str, np.ndarray]:
    """``{"ictal": (n, F), "interictal": (n, F)}`` for Bonn E and C+D."""
    from qcascade.data.bonn import read_segments, resample_to_512

    segs = read_segments(data_dir, ("C", "D", "E"))
    filt = {k: band_limit(resample_to_512(v)) for k, v in segs.items()}
    ref = np.median(np.concatenate([windows(x).std(axis=1) for k, x in filt.items() if k[0] != "S"]))
    out = {"ictal": [], "interictal": []}
    for k, x in filt.items():
        out["ictal" if k[0] == "S" else "interictal"].append(window_features(windows(x / ref)))
    return {g: np.concatenate(v) for g, v in out.items()}


def patient_features(patient, rng, max_background: int = 6) -> dict[str, list]:
    """Window features of one generated patient (default or stress cohort).

    Ictal: windows fully inside the seizure on the onset-zone electrodes (``onset_zone`` of the
    recording, else ``soz_electrodes``). Interictal and artefact: windows outside the seizure and
    the 60 s after it, on up to ``max_background`` random live, non-noisy electrodes per recording,
    split by whether an artefact span touches the window. Returns ``{group: [(n, F) arrays],
    "morphology": [(morphology, (n, F))]}``.
    """
    out = {"ictal": [], "interictal": [], "artefact": [], "morphology": []}
    dead = set(getattr(patient, "dead_electrodes", [])) | set(getattr(patient, "noisy_electrodes", []))
    for rec in patient.recordings:
        zone = list(getattr(rec, "onset_zone", None) or patient.soz_electrodes)
        (on, off), = rec.ictal_spans
        starts = np.arange(len(rec.eeg) // N) * N
        inside = (starts >= on) & (starts + N <= off)
        quiet = (starts + N <= on) | (starts >= off + 60 * FS)
        touched = np.zeros(len(starts), bool)
        for a0, a1 in rec.artefact_spans:
            touched |= (starts < a1) & (starts + N > a0)
        live = [e for e in range(patient.n_electrodes) if e not in dead and e not in zone]
        picks = rng.choice(live, min(max_background, len(live)), replace=False).tolist()
        for e in zone + picks:
            x = band_limit(rec.eeg[:, e])
            ref = np.median(windows(x)[quiet & ~touched].std(axis=1))
            feats = window_features(windows(x / ref))
            if e in zone:
                out["ictal"].append(feats[inside])
                out["morphology"].append((getattr(rec, "morphology", "default"), feats[inside]))
            else:
                out["interictal"].append(feats[quiet & ~touched])
                out["artefact"].append(feats[quiet & touched])
    return out


def cohort_features(patients, seed: int = 0) -> dict:
    """Concatenate :func:`patient_features` over an iterable of patients (generated one at a time)."""
    rng = np.random.default_rng(seed)
    acc = {"ictal": [], "interictal": [], "artefact": [], "morphology": {}}
    for p in patients:
        part = patient_features(p, rng)
        for g in ("ictal", "interictal", "artefact"):
            acc[g] += part[g]
        for m, f in part["morphology"]:
            acc["morphology"].setdefault(m, []).append(f)
    out = {g: np.concatenate(acc[g]) if acc[g] else np.zeros((0, len(FEATURES)))
           for g in ("ictal", "interictal", "artefact")}
    out["morphology"] = {m: np.concatenate(v) for m, v in sorted(acc["morphology"].items())}
    return out


def summarize(groups: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict:
    """Median, quartiles and the two-sample KS distance to a reference group, per feature.

    Args:
        groups: name -> ``(n, F)`` features; reference: name -> ``(n, F)`` (compared by ``pairs``).
    """
    from scipy.stats import ks_2samp

    pairs = {"ictal": "ictal", "interictal": "interictal", "artefact": "interictal"}
    out = {}
    for name, feats in groups.items():
        ref = reference.get(pairs.get(name.split("/")[-1], "ictal"))
        row = {"n_windows": int(len(feats))}
        for i, f in enumerate(FEATURES):
            q = np.percentile(feats[:, i], [25, 50, 75]) if len(feats) else [np.nan] * 3
            row[f] = {"q25": float(q[0]), "median": float(q[1]), "q75": float(q[2])}
            if ref is not None and len(feats):
                row[f]["ks"] = float(ks_2samp(feats[:, i], ref[:, i]).statistic)
        out[name] = row
    return out


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def compare(bonn_dir, seed: int = 0, n_patients: int = 8) -> dict:
    """The whole comparison: Bonn, the default cohort and the stress cohort (defaults, ``seed``)."""
    from qcascade.data.stress import iter_stress_patients
    from qcascade.data.synthetic import make_patient

    bonn = bonn_features(bonn_dir)
    default_seeds = [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(3)]  # as make_cohort
    default = cohort_features((make_patient(f"ID{i + 1}", seed=s, n_seizures=5) for i, s in enumerate(default_seeds)),
                              seed)
    stress = cohort_features(iter_stress_patients(n_patients, seed), seed)
    groups = {f"bonn/{g}": f for g, f in bonn.items()}
    for name, c in (("default", default), ("stress", stress)):
        groups.update({f"{name}/{g}": c[g] for g in ("ictal", "interictal", "artefact")})
    groups.update({f"stress-{m}/ictal": f for m, f in stress["morphology"].items()})
    table = summarize(groups, bonn)
    ll = FEATURES.index("log_ll")
    aucs = {name: _auc(c["ictal"][:, ll], c["interictal"][:, ll]) for name, c in
            (("bonn", bonn), ("default", default), ("stress", stress))}
    aucs["stress: ictal vs artefact"] = _auc(stress["ictal"][:, ll], stress["artefact"][:, ll])
    aucs["default: ictal vs artefact"] = _auc(default["ictal"][:, ll], default["artefact"][:, ll])
    return {"groups": table, "line_length_auc": aucs, "seed": seed, "n_patients": n_patients}


def to_markdown(res: dict) -> str:
    """Two tables: medians [quartiles] per group and feature, and KS distances to the Bonn group."""
    g = res["groups"]
    lines = ["| group | windows | " + " | ".join(FEATURES) + " |", "|---|---|" + "---|" * len(FEATURES)]
    for name, row in g.items():
        cells = [f"{row[f]['median']:.2f} [{row[f]['q25']:.2f}, {row[f]['q75']:.2f}]" for f in FEATURES]
        lines.append(f"| {name} | {row['n_windows']} | " + " | ".join(cells) + " |")
    lines += ["", "KS distance to Bonn (ictal groups vs E, seizure-free and artefact groups vs C+D; 0 = same "
              "distribution, 1 = disjoint):", "", "| group | " + " | ".join(FEATURES) + " |",
              "|---|" + "---|" * len(FEATURES)]
    for name, row in g.items():
        if not name.startswith("bonn"):
            lines.append(f"| {name} | " + " | ".join(f"{row[f]['ks']:.2f}" for f in FEATURES) + " |")
    lines += ["", "Window AUC of line length alone (scaled as above):", ""]
    lines += [f"- {k}: {v:.3f}" for k, v in res["line_length_auc"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qcascade.data.morphology", description=__doc__.splitlines()[0])
    p.add_argument("--bonn", required=True, help="the Bonn folder (zip or extracted sets)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-patients", type=int, default=8)
    p.add_argument("--json", help="also write the full result here")
    args = p.parse_args(argv)
    res = compare(args.bonn, args.seed, args.n_patients)
    print(to_markdown(res))
    if args.json:
        from qcascade.io_utils import atomic_write_json

        atomic_write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
