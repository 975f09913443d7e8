"""Bonn window metrics of a finished run beside the line-length reference (report.md and the bench).

Bonn segments are isolated 23.6 s pieces, each wholly ictal (set E) or wholly seizure-free (C, D),
so event scoring is degenerate there (one event per ictal segment, detected by any one window):
**window** accuracy, F1 and AUC pooled over the 10 folds are the primary numbers, as in SOURCES.txt.
Two F1s are given so the comparison with SOURCES.txt's 0.954 is like for like: the ictal class's F1
(what ``metrics.json`` reports) and the support-weighted F1 over both classes (what SOURCES.txt's
"F1" is; see docs/bonn.md).

Every model's pooled predictions come from the run's own files: ``test_logits.npz`` (deployed
simple, cascade, complex-only, feature baseline) and ``baselines/simple_<X>_test_logits.npy`` (the
three simple candidates) of every fold folder that has them: the candidate study (which simple model
to deploy) runs on every fold with ``model.candidate_folds: all`` (configs/bonn.yaml), on the
deployed fold 0 only otherwise, so the candidates are pooled over the folds holding their logits
(``candidate_folds``), while the deployed simple path (``simple_only``) is pooled over all folds.
The best simple candidate is chosen on **validation** (mean over those folds of the exported
model's validation F1), never on the test folds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from qcascade.folds import candidate_val_f1

CANDIDATES = ("simple_A", "simple_B", "simple_C")
MODELS = ("cascade", "simple_only", "complex_only", "cascade_complex", "feature_baseline") + CANDIDATES


def fold_dirs_of(unit_dir: Path) -> list[Path]:
    """The unit folder (fold 0) and its ``fold<k>`` folders that hold test logits, in fold order."""
    unit_dir = Path(unit_dir)
    extra = sorted((p for p in unit_dir.glob("fold*") if p.is_dir() and p.name[4:].isdigit()),
                   key=lambda p: int(p.name[4:]))
    return [d for d in [unit_dir, *extra] if (d / "test_logits.npz").exists()]


def _window_metrics(y: np.ndarray, score: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy, ictal-class F1, class-weighted F1 and AUC of ``(n,)`` labels, scores and 0/1 predictions."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    return {"accuracy": float(accuracy_score(y, pred)), "f1": float(f1_score(y, pred, zero_division=0.0)),
            "f1_weighted": float(f1_score(y, pred, average="weighted", zero_division=0.0)),
            "auc": float(roc_auc_score(y, score)) if len(set(y.tolist())) == 2 else None}


def pooled_window_metrics(unit_dir: Path) -> dict:
    """Pooled test-window metrics of every model over the folds of a finished Bonn unit.

    Returns:
        ``{"n_folds", "n_windows", "models": {name: {accuracy, f1, f1_weighted, auc, n_windows}},
        "candidate_folds": [fold index, ...],
        "candidate_val_f1": {name: mean over folds}, "best_candidate_on_val": name}``.
    """
    dirs = fold_dirs_of(unit_dir)
    if not dirs:
        raise FileNotFoundError(f"{unit_dir}: no test_logits.npz (run the training steps first)")
    ys, scores, preds = {m: [] for m in MODELS}, {m: [] for m in MODELS}, {m: [] for m in MODELS}
    cand_folds = []
    val_f1 = {c: [] for c in CANDIDATES}
    for k, d in enumerate(dirs):
        z = np.load(d / "test_logits.npz")
        routed = z["routed"].astype(bool)
        logits = {"simple_only": z["simple"], "complex_only": z["complex_only"], "cascade_complex": z["complex"],
                  "cascade": np.where(routed[:, None], z["complex"], z["simple"])}
        base = json.loads((d / "baselines.json").read_text()) if (d / "baselines.json").exists() else {}
        if all((d / "baselines" / f"{c}_test_logits.npy").exists() for c in CANDIDATES):
            cand_folds.append(k)
        for c in CANDIDATES:
            f = d / "baselines" / f"{c}_test_logits.npy"
            if k in cand_folds:
                logits[c] = np.load(f)
                v = candidate_val_f1(base.get(c, {}))
                if v is not None:
                    val_f1[c].append(v)
        for m, v in logits.items():
            scores[m].append(v[:, 1] - v[:, 0])  # logit margin: monotone in P(ictal), so AUC is unchanged
            preds[m].append(z["pred"] if m == "cascade" else v.argmax(1))
            ys[m].append(z["y"])
        ys["feature_baseline"].append(z["y"])
        scores["feature_baseline"].append(z["feature"])
        preds["feature_baseline"].append((z["feature"] >= 0.5).astype(int))
    models = {m: {**_window_metrics(np.concatenate(ys[m]), np.concatenate(scores[m]), np.concatenate(preds[m])),
                  "n_windows": int(sum(map(len, ys[m])))} for m in MODELS if ys[m]}
    cand_val = {c: float(np.mean(v)) for c, v in val_f1.items() if v and len(v) == len(cand_folds)}
    return {"n_folds": len(dirs), "n_windows": models["cascade"]["n_windows"], "models": models,
            "candidate_folds": cand_folds, "candidate_val_f1": cand_val,
            "best_candidate_on_val": max(cand_val, key=cand_val.get) if cand_val else None}


def write_bonn_comparison(unit_dir: Path, data_dir, sets: Sequence[str], n_folds: int, seed: int,
                          per_set: int | None = None) -> dict:
    """Pooled metrics of the run plus the line-length reference on the same folds -> ``bonn_windows.json``."""
    from qcascade.data.bonn_reference import line_length_reference
    from qcascade.io_utils import atomic_write_json

    out = pooled_window_metrics(unit_dir)
    ref = line_length_reference(data_dir, sets, native=True, n_folds=n_folds, seed=seed, per_set=per_set)
    ref512 = line_length_reference(data_dir, sets, native=False, n_folds=n_folds, seed=seed, per_set=per_set)
    out["reference"] = {k: {m: r[m] for m in ("accuracy", "f1", "f1_weighted", "auc", "n_windows")}
                        for k, r in (("line_length_native", ref), ("line_length_512hz", ref512))}
    atomic_write_json(Path(unit_dir) / "bonn_windows.json", out)
    return out


def _folds_text(cf: list, n: int) -> str:
    if len(cf) == n:
        return f"every fold ({n}), pooled like the other models"
    return f"fold(s) {', '.join(map(str, cf)) or 'none'} only (the candidate study ran on the deployed fold)"


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def bonn_markdown(res: dict) -> str:
    """The comparison table of :func:`write_bonn_comparison`'s dict, with the done-when verdicts."""
    ref = res["reference"]["line_length_native"]
    rows = [("line length + logistic regression (reference, 174-sample windows, 9 groups train)", ref),
            ("line length + logistic regression (512 Hz windows)", res["reference"]["line_length_512hz"])]
    names = {"cascade": "deployed cascade", "simple_only": "deployed simple (cascade's simple path)",
             "complex_only": "complex model alone", "cascade_complex": "cascade's complex path on every window",
             "feature_baseline": "feature baseline (line length, energy, band powers + LR)",
             "simple_A": "simple candidate A", "simple_B": "simple candidate B", "simple_C": "simple candidate C"}
    rows += [(names[m], res["models"][m]) for m in MODELS if m in res["models"]]
    cf = res.get("candidate_folds", [])
    lines = [f"Window metrics pooled over {res['n_folds']} folds ({res['n_windows']} test windows, each scored by "
             "the fold that held its segment out). Window metrics are primary on Bonn: every segment is wholly "
             "ictal or wholly seizure-free, so event scoring is one event per ictal segment. The simple "
             f"candidates A/B/C are trained alone on {_folds_text(cf, res['n_folds'])}; the deployed simple path is "
             "pooled over all folds.", "",
             "| model | test windows | accuracy | F1 (ictal class) | F1 (class-weighted, as SOURCES.txt) | AUC |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {r.get('n_windows', '')} | {_f(r['accuracy'])} | {_f(r['f1'])} | {_f(r['f1_weighted'])} "
              f"| {_f(r['auc'])} |" for n, r in rows]
    best = res.get("best_candidate_on_val")
    lines += ["", "Simple candidates' validation F1 (mean over folds, each exported model): "
              + ", ".join(f"{c} {_f(v)}" for c, v in res.get("candidate_val_f1", {}).items())
              + (f"; best on validation: **{best}**." if best else ".")]
    cas = res["models"].get("cascade")
    for label, key in (("ictal-class F1", "f1"), ("class-weighted F1", "f1_weighted")):
        r = ref[key]
        verdict = [f"deployed cascade {_f(cas[key])} ({'>=' if cas[key] >= r else '<'} reference)"] if cas else []
        simple = res["models"].get("simple_only")
        if simple:
            verdict.append(f"deployed simple path {_f(simple[key])} ({'>=' if simple[key] >= r else '<'} reference)")
        if best and best in res["models"]:
            b = res["models"][best][key]
            verdict.append(f"best simple candidate on validation ({best}) {_f(b)} ({'>=' if b >= r else '<'} reference)")
        lines.append(f"- {label}: reference {_f(r)}; " + "; ".join(verdict) + f"; SOURCES.txt 0.954 (class-weighted).")
    return "\n".join(lines) + "\n"
