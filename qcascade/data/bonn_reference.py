"""The classical reference on Bonn: line length of 1-s windows, standardised logistic regression,
k-fold cross-validation grouped by segment (the folds of ``info["fold_group"]``).

SOURCES.txt beside the data reports, for C+D vs E on 174-sample windows at the native rate,
accuracy 0.954, F1 0.954, AUC 0.990. :func:`line_length_reference` repeats that measurement on
native-rate windows (a check of the reader) and on the pipeline's 512-sample windows at 512 Hz (a
check of the resampling). Measured with 10 seeded folds: accuracy and AUC agree, and the reference's
F1 is the *support-weighted* F1 over both classes (0.951 here); the ictal class's own F1, which is
what the pipeline's ``metrics.json`` reports, is 0.925 on the same predictions. Run::

    python -m qcascade.data.bonn_reference --data-dir ../shared/data/bonn [--sets C D E]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

import numpy as np

from qcascade.data.bonn import DEFAULT_SETS, ICTAL_SETS, NATIVE_SFREQ, SETS, assign_fold_groups, read_segments
from qcascade.data.bonn import resample_to_512


def line_length_windows(x: np.ndarray, n_times: int) -> np.ndarray:
    """Mean absolute first difference of each non-overlapping ``n_times`` window of ``x`` ``(n,)``:
    ``(n // n_times,)``."""
    n_win = len(x) // n_times
    w = np.asarray(x[: n_win * n_times], np.float64).reshape(n_win, n_times)
    return np.abs(np.diff(w, axis=1)).mean(axis=1)


def grouped_cv(features: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict:
    """Standardised logistic regression, one model per held-out group; pooled and per-fold metrics.

    Args:
        features: ``(n_windows, n_features)``; y: ``(n_windows,)`` 0/1; groups: ``(n_windows,)`` int.

    Returns:
        ``{"accuracy", "f1", "f1_weighted", "auc"}`` on the pooled held-out predictions (each window
        scored by the model that did not see its segment; ``f1`` is the ictal class's, as in the
        pipeline's metrics, ``f1_weighted`` the support-weighted mean over both classes), plus
        ``"folds"``: the same per group, and ``"n_windows"``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    score = np.zeros(len(y))
    folds = []
    for g in np.unique(groups):
        test = groups == g
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(features[~test], y[~test])
        score[test] = model.decision_function(features[test])
        pred = (score[test] > 0).astype(int)
        folds.append({"group": int(g), "accuracy": float(accuracy_score(y[test], pred)),
                      "f1": float(f1_score(y[test], pred, zero_division=0.0)),
                      "auc": float(roc_auc_score(y[test], score[test])) if len(set(y[test])) == 2 else float("nan")})
    pred = (score > 0).astype(int)
    return {"accuracy": float(accuracy_score(y, pred)), "f1": float(f1_score(y, pred)),
            "f1_weighted": float(f1_score(y, pred, average="weighted")),
            "auc": float(roc_auc_score(y, score)), "n_windows": int(len(y)), "folds": folds}


def line_length_reference(data_dir, sets: Sequence[str] = DEFAULT_SETS, native: bool = True,
                          n_folds: int = 10, seed: int = 0, per_set: int | None = None) -> dict:
    """Line length alone, standardised logistic regression, grouped k-fold CV (see module docstring).

    Args:
        data_dir: the Bonn folder (zip or extracted folders).
        sets: set letters; E is the positive class.
        native: 174-sample windows at 173.61 Hz (True) or 512-sample windows after resampling to 512 Hz.
        n_folds, seed: fold assignment (:func:`qcascade.data.bonn.assign_fold_groups`).
        per_set: only the first ``per_set`` segments of each set (as ``data.bonn.segments_per_set``).

    Returns:
        :func:`grouped_cv`'s dict plus ``"window_samples"`` and ``"rate_hz"``.
    """
    segments = read_segments(data_dir, sets, per_set)
    fold = assign_fold_groups(segments, n_folds, seed)
    ictal_prefixes = {SETS[s] for s in ICTAL_SETS}
    n_times = int(round(NATIVE_SFREQ)) if native else 512  # 174 samples ~ 1.002 s at 173.61 Hz
    feats, ys, gs = [], [], []
    for seg_id, x in segments.items():
        ll = line_length_windows(x if native else resample_to_512(x), n_times)
        feats.append(ll)
        ys.append(np.full(len(ll), int(seg_id[0] in ictal_prefixes)))
        gs.append(np.full(len(ll), fold[seg_id]))
    out = grouped_cv(np.concatenate(feats)[:, None], np.concatenate(ys), np.concatenate(gs))
    out.update(window_samples=n_times, rate_hz=NATIVE_SFREQ if native else 512.0)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qcascade.data.bonn_reference", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rows = {}
    for native in (True, False):
        r = line_length_reference(args.data_dir, args.sets, native, args.folds, args.seed)
        f1s = [f["f1"] for f in r["folds"]]
        rows["native" if native else "512Hz"] = r
        if not args.json:
            print(f"{'+'.join(args.sets)}: {r['window_samples']}-sample windows at {r['rate_hz']:g} Hz, "
                  f"{r['n_windows']} windows: accuracy {r['accuracy']:.3f} F1 {r['f1']:.3f} "
                  f"(weighted over classes {r['f1_weighted']:.3f}) AUC {r['auc']:.3f} "
                  f"(F1 over folds {np.mean(f1s):.3f} +- {np.std(f1s):.3f})")
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
