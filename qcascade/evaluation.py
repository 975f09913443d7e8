"""Window-level, cascade-cost and event-level (SzCORE) metrics, plus PNG plot helpers.

Undefined metrics are ``None`` (not NaN) so result dicts are valid JSON: ``auc`` when ``y``
has one class only, ``sensitivity`` without ictal windows, ``specificity`` without
inter-ictal windows, ``f1`` when there is neither a positive label nor a positive prediction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from qcascade.gate import cascade_predict

__all__ = [
    "window_metrics", "cascade_efficiency", "evaluate_cascade", "event_metrics", "sum_events",
    "event_detections", "hidden_events", "sum_hidden",
    "plot_confusion_matrix", "plot_training_curves",
]


def _ratio(num: float, den: float) -> Optional[float]:
    return float(num) / float(den) if den > 0 else None


def _scores(prob_or_logits: np.ndarray) -> np.ndarray:
    """Ranking score for the ictal class: ``z1 - z0`` for ``(n, 2)`` logits, else as given."""
    s = np.asarray(prob_or_logits, np.float64)
    if s.ndim == 2:
        if s.shape[1] != 2:
            raise ValueError(f"expected (n, 2) logits or (n,) scores, got shape {s.shape}")
        return s[:, 1] - s[:, 0]  # monotone in p1, so the AUC is the same as on probabilities
    return s.ravel()


def window_metrics(y: np.ndarray, prob_or_logits: Optional[np.ndarray], pred: np.ndarray) -> dict:
    """Per-window classification metrics.

    Args:
        y: ``(n,)`` true labels in {0, 1}.
        prob_or_logits: ``(n,)`` ictal probability/score or ``(n, 2)`` logits (for the AUC);
            None -> ``auc`` is None.
        pred: ``(n,)`` hard predictions in {0, 1}.

    Returns:
        ``{"accuracy", "sensitivity", "specificity", "f1", "auc"}`` (floats or None).
    """
    y = np.asarray(y).astype(int).ravel()
    pred = np.asarray(pred).astype(int).ravel()
    if y.shape != pred.shape:
        raise ValueError(f"y {y.shape} and pred {pred.shape} differ in shape")
    tp = int(np.sum((y == 1) & (pred == 1)))
    tn = int(np.sum((y == 0) & (pred == 0)))
    fp = int(np.sum((y == 0) & (pred == 1)))
    fn = int(np.sum((y == 1) & (pred == 0)))
    auc = None
    if prob_or_logits is not None and 0 < y.sum() < len(y):
        from sklearn.metrics import roc_auc_score

        auc = float(roc_auc_score(y, _scores(prob_or_logits)))
    return {
        "accuracy": _ratio(tp + tn, len(y)),
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "auc": auc,
    }


def cascade_efficiency(routed: np.ndarray, macs_simple: float, macs_complex: float) -> dict:
    """Average inference cost of the cascade.

    Args:
        routed: ``(n,)`` bool, True where the complex model was run.
        macs_simple: MACs of the simple path (always run; the deployed selector is an index).
        macs_complex: MACs of the complex model.

    Returns:
        ``{"routing_rate", "avg_macs_per_window" (= simple + routing_rate * complex),
        "macs_ratio_vs_complex" (= complex / avg; > 1 means cheaper than complex-only)}``.
    """
    routed = np.asarray(routed, bool).ravel()
    rate = float(routed.mean()) if routed.size else 0.0
    avg = float(macs_simple) + rate * float(macs_complex)
    return {"routing_rate": rate, "avg_macs_per_window": avg,
            "macs_ratio_vs_complex": _ratio(macs_complex, avg)}


def evaluate_cascade(simple_logits: np.ndarray, complex_logits: np.ndarray, y: np.ndarray,
                     tau: float, macs_simple: float, macs_complex: float, **rule: Any) -> dict:
    """Hard-gated cascade metrics: :func:`window_metrics` merged with :func:`cascade_efficiency`.

    ``rule`` (``rule``, ``record_ids``, ``start_s``) goes to :func:`qcascade.gate.cascade_decide`,
    whose default rule is the pipeline's. The AUC uses the logits of whichever model answered each window.
    """
    pred, routed = cascade_predict(simple_logits, complex_logits, tau, **rule)
    logits = np.where(routed[:, None], complex_logits, simple_logits)
    out = window_metrics(y, logits, pred)
    out.update(cascade_efficiency(routed, macs_simple, macs_complex))
    out["tau"] = float(tau)
    return out


def _windows_to_mask(starts: np.ndarray, flags: np.ndarray, ends: np.ndarray, n_samples: int,
                     fs: float) -> np.ndarray:
    mask = np.zeros(n_samples, bool)
    for s, e in zip(starts[flags], ends[flags]):
        mask[int(round(s * fs)):max(int(round(e * fs)), int(round(s * fs)) + 1)] = True
    return mask


def event_metrics(
    y_true_windows: np.ndarray,
    y_pred_windows: np.ndarray,
    window_starts_s: np.ndarray,
    record_ids: Sequence,
    fs: float = 1.0,
    window_s: Optional[float] = None,
    params: Optional[Mapping[str, float]] = None,
) -> dict:
    """SzCORE event scoring (``timescoring``), per record, aggregated over records.

    Each window covers ``[start, start + window_s)``; if ``window_s`` is None it covers up to
    the next window's start in its record (the last one gets the median hop), i.e. windows are
    treated as non-overlapping hops. Windows are rasterised to a mask at ``fs`` Hz per record
    (time 0 = record start), reference and hypothesis alike, then scored with
    ``timescoring.scoring.EventScoring`` and its default (SzCORE) parameters: 30 s tolerance
    before / 60 s after, any overlap, events split at 5 min and merged when < 90 s apart.

    Args:
        y_true_windows: ``(n,)`` labels in {0, 1}.
        y_pred_windows: ``(n,)`` predictions in {0, 1}.
        window_starts_s: ``(n,)`` window start times in seconds from the record start.
        record_ids: ``(n,)`` record identifier of each window (any hashable).
        fs: rasterisation rate of the annotation masks in Hz (1 Hz suits 1 s hops).
        window_s: window duration in seconds, or None (see above).
        params: overrides of ``EventScoring.Parameters`` (e.g. ``{"toleranceStart": 30}``).

    Returns:
        ``{"sensitivity": sum TP / sum reference events (None if no events),
        "fa_per_hour": sum FP / total hours, "fa_per_24h": the same per 24 h (SzCORE's unit),
        "mean_delay_s": mean over detected reference
        events of max(0, first predicted ictal time within [onset - toleranceStart, offset]
        - onset) (None if none detected), "n_events", "n_detected", "n_false_alarms",
        "hours"}``. Delays use the reference events before timescoring's merge/split.
    """
    from timescoring.annotations import Annotation
    from timescoring.scoring import EventScoring

    y_true = np.asarray(y_true_windows).astype(bool).ravel()
    y_pred = np.asarray(y_pred_windows).astype(bool).ravel()
    starts = np.asarray(window_starts_s, np.float64).ravel()
    recs = np.asarray(record_ids).ravel()
    if not (len(y_true) == len(y_pred) == len(starts) == len(recs)):
        raise ValueError("event_metrics: inputs must all have the same length")
    param = EventScoring.Parameters(**dict(params or {}))
    tp = ref_true = fp = n_delay = 0
    delays: list[float] = []
    seconds = 0.0
    for rec in dict.fromkeys(recs.tolist()):  # first-seen order, deterministic
        sel = np.flatnonzero(recs == rec)
        sel = sel[np.argsort(starts[sel], kind="stable")]
        st = starts[sel]
        if window_s is not None:
            ends = st + window_s
        else:
            hop = float(np.median(np.diff(st))) if len(st) > 1 else 1.0
            ends = np.append(st[1:], st[-1] + hop)
        n_samples = int(np.ceil(ends.max() * fs))
        ref_mask = _windows_to_mask(st, y_true[sel], ends, n_samples, fs)
        hyp_mask = _windows_to_mask(st, y_pred[sel], ends, n_samples, fs)
        ref, hyp = Annotation(ref_mask, fs), Annotation(hyp_mask, fs)
        score = EventScoring(ref, hyp, param)
        tp += int(score.tp)
        ref_true += int(score.refTrue)
        fp += int(score.fp)
        seconds += n_samples / fs
        hyp_on = st[y_pred[sel]]
        for onset, offset in ref.events:
            hits = hyp_on[(hyp_on >= onset - param.toleranceStart) & (hyp_on <= offset)]
            if hits.size:
                delays.append(max(0.0, float(hits.min()) - onset))
    n_delay = len(delays)
    return {
        "sensitivity": _ratio(tp, ref_true),
        "fa_per_hour": _ratio(fp, seconds / 3600.0),
        "fa_per_24h": _ratio(fp, seconds / 86400.0),
        "mean_delay_s": float(np.mean(delays)) if n_delay else None,
        "n_events": ref_true,
        "n_detected": tp,
        "n_false_alarms": fp,
        "hours": seconds / 3600.0,
    }


def sum_events(parts: Sequence[Mapping[str, Any]]) -> dict:
    """Pool :func:`event_metrics` results of disjoint test sets (e.g. the folds of a patient).

    Counts and hours are summed; rates are recomputed from the sums; the mean delay is the mean
    over all detected events (each part's mean weighted by its detections).

    Args:
        parts: results of :func:`event_metrics`.

    Returns:
        A dict with the keys of :func:`event_metrics`.
    """
    n_ev = sum(int(p["n_events"]) for p in parts)
    n_det = sum(int(p["n_detected"]) for p in parts)
    n_fa = sum(int(p["n_false_alarms"]) for p in parts)
    hours = float(sum(float(p["hours"]) for p in parts))
    delayed = [(p["mean_delay_s"], int(p["n_detected"])) for p in parts if p.get("mean_delay_s") is not None]
    n_d = sum(w for _, w in delayed)
    return {"sensitivity": _ratio(n_det, n_ev), "fa_per_hour": _ratio(n_fa, hours),
            "fa_per_24h": _ratio(n_fa, hours / 24.0),
            "mean_delay_s": sum(d * w for d, w in delayed) / n_d if n_d else None,
            "n_events": n_ev, "n_detected": n_det, "n_false_alarms": n_fa, "hours": hours}


def event_detections(y_true_windows: np.ndarray, preds: Mapping[str, np.ndarray], window_starts_s: np.ndarray,
                     record_ids: Sequence, fs: float = 1.0) -> list[dict]:
    """Which model detects which reference seizure, event by event (SzCORE scoring per event).

    Each reference event is scored alone against each model's whole hypothesis with
    ``timescoring``'s default parameters (as :func:`event_metrics`), rasterised the same way.

    Args:
        y_true_windows: ``(n,)`` labels; ``preds``: ``{model: (n,) predictions}``.
        window_starts_s, record_ids: ``(n,)`` as for :func:`event_metrics`.

    Returns:
        One dict per reference event, in record then time order:
        ``{"record", "onset_s", "offset_s", "detected": {model: bool}}``.
    """
    from timescoring.annotations import Annotation
    from timescoring.scoring import EventScoring

    y = np.asarray(y_true_windows).astype(bool).ravel()
    starts = np.asarray(window_starts_s, np.float64).ravel()
    recs = np.asarray(record_ids).ravel()
    param = EventScoring.Parameters()
    out = []
    for rec in dict.fromkeys(recs.tolist()):
        sel = np.flatnonzero(recs == rec)
        sel = sel[np.argsort(starts[sel], kind="stable")]
        st = starts[sel]
        hop = float(np.median(np.diff(st))) if len(st) > 1 else 1.0
        ends = np.append(st[1:], st[-1] + hop)
        n_samples = int(np.ceil(ends.max() * fs))
        ref = Annotation(_windows_to_mask(st, y[sel], ends, n_samples, fs), fs)
        hyps = {k: Annotation(_windows_to_mask(st, np.asarray(v).astype(bool).ravel()[sel], ends, n_samples, fs), fs)
                for k, v in preds.items()}
        for onset, offset in ref.events:
            one = np.zeros(n_samples, bool)
            one[int(round(onset * fs)):int(round(offset * fs))] = True
            ref_one = Annotation(one, fs)
            out.append({"record": str(rec), "onset_s": float(onset), "offset_s": float(offset),
                        "detected": {k: EventScoring(ref_one, h, param).tp > 0 for k, h in hyps.items()}})
    return out


def hidden_events(y_true_windows: np.ndarray, cascade_pred: np.ndarray, reference_pred: np.ndarray,
                  window_starts_s: np.ndarray, record_ids: Sequence) -> dict:
    """Seizures the reference model (a complex model on every window) detects and the cascade misses.

    Args:
        y_true_windows, cascade_pred, reference_pred, window_starts_s, record_ids: ``(n,)`` each.

    Returns:
        ``{"n_events", "n_reference_detected", "n_missed_but_reference_detected", "missed": [{"record",
        "onset_s", "offset_s"}]}``.
    """
    ev = event_detections(y_true_windows, {"cascade": cascade_pred, "reference": reference_pred},
                          window_starts_s, record_ids)
    missed = [{k: e[k] for k in ("record", "onset_s", "offset_s")} for e in ev
              if e["detected"]["reference"] and not e["detected"]["cascade"]]
    return {"n_events": len(ev), "n_reference_detected": sum(e["detected"]["reference"] for e in ev),
            "n_missed_but_reference_detected": len(missed), "missed": missed}


def sum_hidden(parts: Sequence[Mapping[str, Any]]) -> dict:
    """Pool :func:`hidden_events` results of disjoint test sets (e.g. folds)."""
    return {"n_events": sum(int(p["n_events"]) for p in parts),
            "n_reference_detected": sum(int(p["n_reference_detected"]) for p in parts),
            "n_missed_but_reference_detected": sum(int(p["n_missed_but_reference_detected"]) for p in parts),
            "missed": [m for p in parts for m in p["missed"]]}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(y: np.ndarray, pred: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Write a 2x2 confusion-matrix PNG (rows: true, columns: predicted; counts and row %)."""
    from qcascade.io_utils import atomic_save_figure

    plt = _pyplot()
    y = np.asarray(y).astype(int).ravel()
    pred = np.asarray(pred).astype(int).ravel()
    cm = np.array([[np.sum((y == t) & (pred == p)) for p in (0, 1)] for t in (0, 1)])
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(cm, cmap="Blues")
    for t in (0, 1):
        row = max(cm[t].sum(), 1)
        for p in (0, 1):
            ax.text(p, t, f"{cm[t, p]}\n{100 * cm[t, p] / row:.1f}%", ha="center", va="center",
                    color="white" if cm[t, p] > cm.max() / 2 else "black")
    ax.set_xticks([0, 1], ["inter-ictal", "ictal"])
    ax.set_yticks([0, 1], ["inter-ictal", "ictal"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=120)
    return Path(path)


def plot_training_curves(histories: Mapping[str, Mapping[str, Sequence[Any]]], path: str | Path,
                         keys: Sequence[str] = ("total", "simple", "complex", "routing", "sparsity"),
                         val_keys: Sequence[str] = ("val_simple_f1", "val_complex_f1",
                                                    "val_cascade_f1", "val_routing_rate")) -> Path:
    """Write a PNG of loss terms (left) and validation metrics (right) over consecutive stages.

    Args:
        histories: ``{stage_name: history}`` as returned by ``CascadeTrainer.run_stage``
            (per-epoch lists; missing or None values are skipped).
        path: output PNG.
        keys, val_keys: which history entries to draw.
    """
    from qcascade.io_utils import atomic_save_figure

    plt = _pyplot()
    fig, (ax_l, ax_v) = plt.subplots(1, 2, figsize=(10, 3.8))
    offset = 0
    labelled: set[str] = set()
    for name, h in histories.items():
        n = max((len(v) for v in h.values() if isinstance(v, list)), default=0)
        for ax, ks in ((ax_l, keys), (ax_v, val_keys)):
            for i, k in enumerate(ks):
                vals = h.get(k) or []
                pts = [(offset + e + 1, v) for e, v in enumerate(vals) if v is not None]
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, marker=".", color=f"C{i}",
                            label=None if k in labelled else k)
                    labelled.add(k)
        if n:
            offset += n
            for ax in (ax_l, ax_v):
                ax.axvline(offset + 0.5, color="grey", lw=0.5, ls=":")
    ax_l.set_yscale("symlog", linthresh=1e-2)
    for ax, t in ((ax_l, "training loss terms"), (ax_v, "validation")):
        ax.set_xlabel("epoch (all stages)")
        ax.set_title(t)
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=120)
    return Path(path)
