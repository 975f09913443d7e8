"""Data analysis before training: which electrodes separate seizures, and does a cascade pay off?

For each patient, every window is reduced to cheap per-electrode features; from those:

* **separability**: per electrode, the best single-feature AUC (direction-free, ``max(AUC, 1-AUC)``)
  over line length, energy, variance, peak, zero crossings and band powers; electrodes ranked;
* **difficulty**: a one-electrode logistic regression (line length, energy, zero crossings of the
  best electrode), cross-validated across recordings; the share of windows it settles confidently
  (``|p1 - p0| > tau``) is what a cascade's cheap stage could keep from the big model;
* **simple-model candidate**: cross-validated balanced accuracy of band energies + MLP (B) and of
  variance/peak/zero crossings + linear (C) on the best electrode; if neither reaches
  ``MIN_FEATURE_BACC`` the raw-signal 1D CNN (A) is recommended;
* electrode correlations, ictal vs non-ictal Welch spectra and band powers.

Outputs (atomic): ``analysis.json``, ``analysis.md`` and PNG plots in ``out_dir``.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from qcascade.data.amplitude import amplitude_spread, window_mads
from qcascade.data.swec import SFREQ, Recording
from qcascade.data.windows import iter_window_batches
from qcascade.errors import DataError
from qcascade.io_utils import atomic_save_figure, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

BANDS = {"delta": (1, 4), "theta": (4, 8), "alpha": (8, 13), "beta": (13, 30), "gamma": (30, 100)}
FEATURES = ["line_length", "energy", "variance", "peak", "zero_crossings", *(f"bp_{b}" for b in BANDS)]
TAUS = (0.5, 0.7, 0.8, 0.9)
DEFAULT_TAU = 0.8
MIN_FEATURE_BACC = 0.80  # below this, hand-made features are not enough: recommend the CNN (A)
C_TOLERANCE = 0.02  # C (cheapest) is preferred to B unless B is better by more than this


def window_psd(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed one-sided PSD of windows ``(b, n_times, n_el)`` -> ``(freqs, (b, n_freqs, n_el))``.

    Identical to ``scipy.signal.welch(X, SFREQ, nperseg=n_times, axis=1)`` (one segment per window),
    computed directly because welch's generic path is ~6x slower here.
    """
    n_times = X.shape[1]
    win = np.hanning(n_times + 1)[:-1].astype(np.float32)  # periodic Hann, as scipy's get_window
    centred = X - X.mean(axis=1, keepdims=True)
    psd = np.abs(np.fft.rfft(centred * win[:, None], axis=1)) ** 2 / (SFREQ * (win ** 2).sum())
    psd[:, 1:(n_times + 1) // 2] *= 2
    return np.fft.rfftfreq(n_times, 1 / SFREQ), psd


def window_features(X: np.ndarray, psd: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per-electrode features of windows ``(b, n_times, n_el)`` -> ``(b, n_el, len(FEATURES))``.

    Energies and powers are log10 (so linear models see ratios); zero crossings are a rate.
    """
    freqs, power = psd if psd is not None else window_psd(X)
    centred = X - X.mean(axis=1, keepdims=True)
    eps = 1e-12
    line_length = np.abs(np.diff(X, axis=1)).mean(axis=1)
    energy = (X.astype(np.float64) ** 2).mean(axis=1)
    variance = centred.astype(np.float64).var(axis=1)
    peak = np.abs(centred).max(axis=1)
    zc = np.diff(np.signbit(centred), axis=1).mean(axis=1)
    bands = [power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in BANDS.values()]
    feats = [line_length, energy, variance, peak]
    return np.stack([np.log10(f + eps) for f in feats] + [zc] + [np.log10(b + eps) for b in bands], axis=-1)


def _auc(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rank AUC of ``scores`` ``(n, ...)`` for labels ``y`` ``(n,)`` along axis 0."""
    ranks = rankdata(scores, axis=0)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    return (ranks[y == 1].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _cv_proba(features: np.ndarray, y: np.ndarray, groups: np.ndarray, model: str, seed: int) -> np.ndarray:
    """Out-of-fold P(ictal), folds by recording when there are >= 2 recordings."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GroupKFold, StratifiedKFold
    from threadpoolctl import threadpool_limits

    n_groups = len(np.unique(groups))
    if n_groups >= 2:
        folds = GroupKFold(n_splits=min(5, n_groups)).split(features, y, groups)
    else:
        folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(features, y)
    proba = np.zeros(len(y))
    with threadpool_limits(1), warnings.catch_warnings():  # threaded BLAS: tiny fits ~10x slower
        warnings.simplefilter("ignore", ConvergenceWarning)  # a rough fit is enough for a ranking
        _fit_folds(folds, features, y, model, seed, proba)
    return proba


def _fit_folds(folds, features, y, model, seed, proba) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    for train, test in folds:
        if model == "mlp":
            clf = MLPClassifier((16,), solver="lbfgs", max_iter=500, random_state=seed)
        else:
            clf = LogisticRegression(class_weight="balanced", max_iter=1000)
        pipe = make_pipeline(StandardScaler(), clf)
        if len(np.unique(y[train])) < 2:
            proba[test] = y[train].mean()
            continue
        pipe.fit(features[train], y[train])
        proba[test] = pipe.predict_proba(features[test])[:, 1]


def _balanced_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    pred = proba >= 0.5
    return float(0.5 * (pred[y == 1].mean() + (~pred[y == 0]).mean()))


def analyze_patient(recordings: list[Recording], stride: int = 512, ictal_overlap: float = 0.5,
                    seed: int = 0) -> dict:
    """All per-patient statistics (see the module docstring); arrays are returned as lists."""
    n_el = recordings[0].n_electrodes
    feats, labels, groups = [], [], []
    psd_sum, psd_n = None, np.zeros(2)
    gram, total, n_corr = np.zeros((n_el, n_el)), np.zeros(n_el), 0
    amplitude = {}  # per recording: median over non-ictal windows and live electrodes of each window's MAD
    for g, rec in enumerate(recordings):
        live, mads = ~rec.dead_electrodes(), []
        for X, y, _ in iter_window_batches(rec, 512, stride, ictal_overlap):
            mads.append(window_mads(X, y, live))  # in the same pass as the other statistics
            freqs, psd = window_psd(X)  # (b, n_freqs, n_el)
            feats.append(window_features(X, (freqs, psd)).astype(np.float32))
            labels.append(y)
            groups.append(np.full(len(y), g))
            psd_sum = np.zeros((2,) + psd.shape[1:]) if psd_sum is None else psd_sum
            for c in (0, 1):
                psd_sum[c] += psd[y == c].sum(axis=0)
                psd_n[c] += (y == c).sum()
            sub = X[::4].reshape(-1, n_el).astype(np.float64)  # every 4th window is plenty
            gram += sub.T @ sub
            total += sub.sum(axis=0)
            n_corr += len(sub)
        mads = np.concatenate(mads)
        amplitude[rec.record_id] = round(float(np.median(mads)), 4) if len(mads) else None
    F, y, groups = np.concatenate(feats), np.concatenate(labels).astype(np.int64), np.concatenate(groups)
    if y.min() == y.max():
        raise DataError(f"patient {recordings[0].patient_id}: windows of one class only; cannot analyse")
    auc = _auc(F.reshape(len(F), -1), y).reshape(n_el, len(FEATURES))
    sep_all = np.maximum(auc, 1 - auc)
    dead = np.zeros(n_el, bool)
    for rec in recordings:
        dead |= rec.dead_electrodes()
    separability = np.where(dead, 0.0, sep_all.max(axis=1))
    ranking = np.argsort(-separability, kind="stable")
    best = int(ranking[0])
    f = {name: F[:, best, i] for i, name in enumerate(FEATURES)}
    cheap = np.stack([f["line_length"], f["energy"], f["zero_crossings"]], axis=1)
    proba = _cv_proba(cheap, y, groups, "linear", seed)
    confidence = np.abs(2 * proba - 1)
    correct = (proba >= 0.5) == (y == 1)
    difficulty = {str(tau): {"easy_fraction": float((confidence > tau).mean()),
                             "accuracy_easy": float(correct[confidence > tau].mean()) if (confidence > tau).any() else None,
                             "accuracy_hard": float(correct[confidence <= tau].mean()) if (confidence <= tau).any() else None}
                  for tau in TAUS}
    stats_c = np.stack([f["variance"], f["peak"], f["zero_crossings"]], axis=1)
    band_b = np.stack([f[f"bp_{b}"] for b in BANDS], axis=1)
    candidates = {"C": _balanced_accuracy(y, _cv_proba(stats_c, y, groups, "linear", seed)),
                  "B": _balanced_accuracy(y, _cv_proba(band_b, y, groups, "mlp", seed)),
                  "cheap_stage": _balanced_accuracy(y, proba)}
    mean = total / n_corr
    cov = gram / n_corr - np.outer(mean, mean)
    sd = np.sqrt(np.clip(np.diag(cov), 1e-12, None))
    psd_mean = psd_sum / np.maximum(psd_n, 1)[:, None, None]
    band_power = {b: {"ictal_log10": float(np.log10(psd_mean[1, (freqs >= lo) & (freqs < hi), best].sum() + 1e-12)),
                      "nonictal_log10": float(np.log10(psd_mean[0, (freqs >= lo) & (freqs < hi), best].sum() + 1e-12))}
                  for b, (lo, hi) in BANDS.items()}
    return {"n_electrodes": n_el, "n_windows": int(len(y)), "n_ictal_windows": int(y.sum()),
            "ranking": ranking.tolist(), "separability": np.round(separability, 4).tolist(),
            "best_feature": [FEATURES[i] for i in sep_all.argmax(axis=1)],
            "auc_best_electrode": {name: round(float(auc[best, i]), 4) for i, name in enumerate(FEATURES)},
            "dead_electrodes": np.flatnonzero(dead).tolist(),
            "amplitude_by_recording": amplitude, "amplitude_spread": amplitude_spread(amplitude.values()),
            "difficulty": difficulty, "candidates_balanced_accuracy": candidates, "band_power": band_power,
            "correlation": np.round(cov / np.outer(sd, sd), 3).tolist(),
            "_psd": {"freqs": freqs.tolist(), "ictal": psd_mean[1, :, best].tolist(),
                     "nonictal": psd_mean[0, :, best].tolist()},
            "soz_electrodes": recordings[0].info.get("soz_electrodes")}


def recommend(candidates: dict) -> tuple[str, str]:
    """Pick A/B/C from mean balanced accuracies ``{"B": x, "C": y}``; returns ``(model, reason)``."""
    b, c = candidates["B"], candidates["C"]
    if max(b, c) < MIN_FEATURE_BACC:
        return "A", (f"neither band energies + MLP (B, {b:.3f}) nor statistics + linear (C, {c:.3f}) reach "
                     f"{MIN_FEATURE_BACC:.2f} balanced accuracy on the best electrode: learn features from "
                     f"the raw signal with the small 1D CNN")
    if c >= b - C_TOLERANCE:
        return "C", (f"statistics + linear (C, {c:.3f}) is within {C_TOLERANCE:.2f} of band energies + MLP "
                     f"(B, {b:.3f}) and is by far the cheapest in hardware")
    return "B", (f"band energies + MLP (B, {b:.3f}) beats statistics + linear (C, {c:.3f}) by more than "
                 f"{C_TOLERANCE:.2f}; the FIR bank is worth its cost")


def run_analysis(patients: dict[str, list[Recording]], out_dir, stride: int = 512, ictal_overlap: float = 0.5,
                 seed: int = 0, plots: bool = True) -> dict:
    """Analyse every patient, write ``analysis.json``, ``analysis.md`` and plots; return the JSON dict.

    Args:
        patients: ``{patient_id: recordings}`` from :func:`qcascade.data.discover`.
        out_dir: output folder (created).
        stride: window hop in samples (windows are 512 samples).
        ictal_overlap: ictal fraction for a window to count as ictal.
        seed: seeds the cross-validated models.
        plots: write PNG plots.
    """
    if not patients:
        raise DataError("no patients to analyse")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_patient = {}
    for pid in sorted(patients):
        log.info("analysing %s (%d recordings)", pid, len(patients[pid]))
        per_patient[pid] = analyze_patient(patients[pid], stride, ictal_overlap, seed)
    weights = np.array([p["n_windows"] for p in per_patient.values()], float)
    mean_of = lambda get: float(np.average([get(p) for p in per_patient.values()], weights=weights))  # noqa: E731
    easy = {str(t): mean_of(lambda p, t=t: p["difficulty"][str(t)]["easy_fraction"]) for t in TAUS}
    easy_acc = {str(t): mean_of(lambda p, t=t: p["difficulty"][str(t)]["accuracy_easy"] or 0.0) for t in TAUS}
    cand = {k: mean_of(lambda p, k=k: p["candidates_balanced_accuracy"][k]) for k in ("B", "C", "cheap_stage")}
    model, reason = recommend(cand)
    for p in per_patient.values():
        p["recommended_simple_model"] = recommend(p["candidates_balanced_accuracy"])[0]
    if plots:
        _plots(per_patient, easy, out_dir)
    result = {"patients": {pid: {k: v for k, v in p.items() if not k.startswith("_")} for pid, p in per_patient.items()},
              "easy_fraction": easy[str(DEFAULT_TAU)], "easy_fraction_tau": DEFAULT_TAU,
              "easy_fraction_by_tau": easy, "easy_accuracy_by_tau": easy_acc, "candidates_balanced_accuracy": cand,
              "recommended_simple_model": model, "recommendation_reason": reason,
              "params": {"n_times": 512, "stride": stride, "ictal_overlap": ictal_overlap, "seed": seed}}
    atomic_write_json(out_dir / "analysis.json", result)
    atomic_write_text(out_dir / "analysis.md", _markdown(result))
    return result


def _markdown(r: dict) -> str:
    lines = ["# Data analysis", "",
             f"**Recommended simple model: {r['recommended_simple_model']}** — {r['recommendation_reason']}.", "",
             f"Cascade: the one-electrode cheap stage settles {r['easy_fraction']:.1%} of windows confidently "
             f"(|p1 - p0| > {r['easy_fraction_tau']}); cross-validated balanced accuracy "
             f"{r['candidates_balanced_accuracy']['cheap_stage']:.3f}. "
             + ("A cascade pays off: most windows never reach the big model." if r["easy_fraction"] >= 0.5 else
                "Fewer than half the windows are easy: a cascade saves little."), "",
             "| tau | easy fraction | accuracy on easy windows |", "|---|---|---|"]
    lines += [f"| {t} | {v:.3f} | {r['easy_accuracy_by_tau'][t]:.3f} |" for t, v in r["easy_fraction_by_tau"].items()]
    lines += ["", "| patient | electrodes | windows (ictal) | top electrodes | best AUC | SOZ | B bacc | C bacc | easy@tau "
              "| amplitude spread |", "|---|---|---|---|---|---|---|---|---|---|"]
    for pid, p in r["patients"].items():
        top = p["ranking"][:3]
        cand = p["candidates_balanced_accuracy"]
        lines.append(f"| {pid} | {p['n_electrodes']} | {p['n_windows']} ({p['n_ictal_windows']}) | {top} | "
                     f"{p['separability'][top[0]]:.3f} | {p['soz_electrodes'] if p['soz_electrodes'] is not None else '-'} | "
                     f"{cand['B']:.3f} | {cand['C']:.3f} | {p['difficulty'][str(r['easy_fraction_tau'])]['easy_fraction']:.3f} | "
                     + (f"x{p['amplitude_spread']:.2f} |" if p["amplitude_spread"] else "- |"))
    lines += ["", "Amplitude spread: the largest over the smallest recording's median non-ictal amplitude (MAD). "
              "Gain that drifts between recordings is what `data.input_scaling: causal_robust` is for "
              "(docs/input_scaling.md).",
              "", "Band power, ictal minus non-ictal on the best electrode (dB):", "",
              "| patient | " + " | ".join(BANDS) + " |", "|---|" + "---|" * len(BANDS)]
    for pid, p in r["patients"].items():
        bp = p["band_power"]
        lines.append(f"| {pid} | " + " | ".join(f"{10 * (bp[b]['ictal_log10'] - bp[b]['nonictal_log10']):+.1f}"
                                                 for b in BANDS) + " |")
    lines += ["", "Plots: `separability_<ID>.png`, `spectra_<ID>.png`, `correlation_<ID>.png`, `difficulty.png`.", ""]
    return "\n".join(lines)


def _savefig(fig, path: Path) -> None:
    atomic_save_figure(fig, path, dpi=100)


def _plots(per_patient: dict, easy: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for pid, p in per_patient.items():
        sep, soz = np.array(p["separability"]), set(p["soz_electrodes"] or [])
        fig, ax = plt.subplots(figsize=(max(6, len(sep) * 0.12), 3), layout="constrained")
        ax.bar(range(len(sep)), sep, color=["tab:red" if e in soz else "tab:blue" for e in range(len(sep))])
        ax.set(xlabel="electrode", ylabel="best-feature AUC", ylim=(0.5, 1.0),
               title=f"{pid}: per-electrode separability" + (" (red = SOZ)" if soz else ""))
        _savefig(fig, out_dir / f"separability_{pid}.png")
        plt.close(fig)
        psd = p["_psd"]
        fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
        ax.semilogy(psd["freqs"], psd["nonictal"], label="non-ictal")
        ax.semilogy(psd["freqs"], psd["ictal"], label="ictal")
        ax.set(xlabel="frequency (Hz)", ylabel="PSD (signal units$^2$/Hz)", xlim=(0, 150), title=f"{pid}: electrode {p['ranking'][0]}")
        ax.legend()
        _savefig(fig, out_dir / f"spectra_{pid}.png")
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(4.5, 4), layout="constrained")
        im = ax.imshow(np.array(p["correlation"]), vmin=-1, vmax=1, cmap="RdBu_r")
        fig.colorbar(im, ax=ax)
        ax.set(title=f"{pid}: electrode correlation", xlabel="electrode", ylabel="electrode")
        _savefig(fig, out_dir / f"correlation_{pid}.png")
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
    ax.plot([float(t) for t in easy], list(easy.values()), marker="o")
    ax.set(xlabel="tau (|p1 - p0| threshold)", ylabel="easy fraction", ylim=(0, 1),
           title="windows settled by the one-electrode stage")
    _savefig(fig, out_dir / "difficulty.png")
    plt.close(fig)


def add_analyze_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``qcascade analyze`` options to ``parser``."""
    parser.add_argument("--dataset", choices=["synthetic", "swec-short", "swec-long", "bonn"], default="synthetic")
    parser.add_argument("--data-dir", default=None, help="dataset folder (synthetic: generated in memory if absent)")
    parser.add_argument("--out", required=True, help="output folder for analysis.json/.md and plots")
    parser.add_argument("--patients", nargs="*", default=None, help="patient folder names (default: all)")
    parser.add_argument("--stride", type=int, default=512, help="window hop in samples at 512 Hz")
    parser.add_argument("--ictal-overlap", type=float, default=0.5, help="ictal fraction for an ictal window")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def analyze_main(args: argparse.Namespace) -> int:
    """Run the analysis for parsed ``args``; prints a one-line summary. Returns an exit code."""
    from qcascade.data import discover

    patients = discover(args.dataset, args.data_dir, args.patients)
    result = run_analysis(patients, args.out, args.stride, args.ictal_overlap, args.seed)
    print(f"analysis written to {args.out}: easy fraction {result['easy_fraction']:.3f}, "
          f"recommended simple model {result['recommended_simple_model']}")
    return 0
