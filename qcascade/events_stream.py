"""Continuous-recording scoring: k-of-n smoothing, events over whole hours, routing per hour.

Long-term hours are consecutive files of one timeline (``Recording.info["start_s"]``): a seizure
crossing an hour boundary is one event, and false alarms per hour divide by every tested hour.

* :func:`smooth_k_of_n`: a window is called ictal when at least ``k`` of the last ``n`` window
  decisions (itself included) of the same continuous segment were ictal. Causal, so a detector
  can run it online: a shift register of the last ``n`` decisions. It runs **host-side** (on the
  top level's per-window decisions), not in the generated FPGA top level.
* :func:`choose_smoothing`: ``(k, n)`` chosen on validation windows only (see its doc).
* :func:`segment_times`: each window's continuous segment and time within it.
* :func:`continuous_events`, :func:`routing_per_hour`: the metrics written to ``metrics.json``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

#: The ``(k, n)`` grid searched on validation; ``(1, 1)`` = no smoothing.
SMOOTHING_GRID = tuple((k, n) for n in (1, 2, 3, 4, 5, 6, 8, 10) for k in range(1, n + 1))


def segment_times(record_ids: Sequence, start_s: np.ndarray, record_start_s: Mapping[str, float],
                  gap_s: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Continuous segments of windows ordered by record then time.

    Args:
        record_ids: ``(n,)`` record of each window.
        start_s: ``(n,)`` window start in seconds from its record's start.
        record_start_s: record id -> start of the record on the patient's timeline (s).
        gap_s: a jump between consecutive windows larger than this many strides starts a new segment.

    Returns:
        ``(segment (n,) int64, t (n,) float64 seconds from the segment's start)``.
    """
    rids = np.asarray(record_ids).astype(str)
    t_abs = np.asarray(start_s, np.float64) + np.array([float(record_start_s.get(r, 0.0)) for r in rids])
    if len(t_abs) == 0:
        return np.zeros(0, np.int64), t_abs
    d = np.diff(t_abs)
    hop = float(np.median(d[d > 0])) if np.any(d > 0) else 1.0
    new = np.concatenate([[True], (d <= 0) | (d > gap_s * hop)])
    seg = np.cumsum(new) - 1
    first = t_abs[np.flatnonzero(new)]
    return seg.astype(np.int64), t_abs - first[seg]


def smooth_k_of_n(pred: np.ndarray, k: int, n: int, segment: np.ndarray | None = None) -> np.ndarray:
    """``(m,)`` int: 1 where at least ``k`` of the last ``n`` decisions of the segment were 1.

    The window history restarts at each segment start (as the gate's previous decision does).
    """
    pred = np.asarray(pred).astype(np.int64).ravel()
    if n == 1:
        return (pred >= k).astype(np.int64)
    seg = np.zeros(len(pred), np.int64) if segment is None else np.asarray(segment)
    out = np.zeros(len(pred), np.int64)
    for s in np.unique(seg):
        idx = np.flatnonzero(seg == s)
        c = np.concatenate([[0], np.cumsum(pred[idx])])
        lo = np.maximum(np.arange(1, len(idx) + 1) - n, 0)
        out[idx] = (c[1:] - c[lo] >= k).astype(np.int64)
    return out


def continuous_events(y: np.ndarray, pred: np.ndarray, segment: np.ndarray, t: np.ndarray) -> dict:
    """SzCORE event metrics over continuous segments (:func:`qcascade.evaluation.event_metrics`).

    ``hours`` is the total time covered by the windows, ``fa_per_hour`` / ``fa_per_24h`` divide
    by it, ``mean_delay_s`` is the detection delay.
    """
    from qcascade.evaluation import event_metrics

    return event_metrics(y, pred, t, segment)


def choose_smoothing(y: np.ndarray, pred: np.ndarray, segment: np.ndarray, t: np.ndarray,
                     grid: Sequence[tuple[int, int]] = SMOOTHING_GRID) -> dict:
    """The ``(k, n)`` of ``grid`` for validation decisions ``pred``.

    Rule: keep the settings that detect as many validation seizures as the best one, then take
    the fewest false alarms, then the shortest mean delay, then the smallest ``n``. With no
    validation seizure detected at all, no smoothing is chosen (``(1, 1)``).

    Returns:
        ``{"k", "n", "val_events": event metrics at the choice, "val_events_raw": without smoothing}``.
    """
    rows = []
    for k, n in grid:
        ev = continuous_events(y, smooth_k_of_n(pred, k, n, segment), segment, t)
        rows.append((k, n, ev))
    raw = next(ev for k, n, ev in rows if (k, n) == (1, 1)) if (1, 1) in grid else rows[0][2]
    best_det = max(ev["n_detected"] for _, _, ev in rows)
    if best_det == 0:
        return {"k": 1, "n": 1, "val_events": raw, "val_events_raw": raw}
    keep = [r for r in rows if r[2]["n_detected"] == best_det]
    k, n, ev = min(keep, key=lambda r: (r[2]["n_false_alarms"],
                                        r[2]["mean_delay_s"] if r[2]["mean_delay_s"] is not None else 1e9, r[1]))
    return {"k": int(k), "n": int(n), "val_events": ev, "val_events_raw": raw}


def routing_per_hour(routed: np.ndarray, record_ids: Sequence, start_s: np.ndarray,
                     record_start_s: Mapping[str, float]) -> list[dict]:
    """Share of windows routed to the complex model per clock hour of the recording.

    Returns:
        ``[{"hour": h (0-based, from the start of hour 1), "n_windows", "routing_rate"}]`` sorted by hour.
    """
    rids = np.asarray(record_ids).astype(str)
    t_abs = np.asarray(start_s, np.float64) + np.array([float(record_start_s.get(r, 0.0)) for r in rids])
    hours = np.floor(t_abs / 3600.0).astype(np.int64)
    routed = np.asarray(routed).astype(bool)
    return [{"hour": int(h), "n_windows": int(np.sum(hours == h)), "routing_rate": float(routed[hours == h].mean())}
            for h in np.unique(hours)]


def merge_hour_rows(rows: Sequence[Mapping]) -> list[dict]:
    """Rows of :func:`routing_per_hour` from several folds, one per clock hour (sorted): folds whose
    test files share a clock hour (files not aligned to clock hours) are pooled window-weighted."""
    by_hour: dict[int, list] = {}
    for r in rows:
        by_hour.setdefault(int(r["hour"]), []).append(r)
    out = []
    for h in sorted(by_hour):
        n = sum(int(r["n_windows"]) for r in by_hour[h])
        routed = sum(float(r["routing_rate"]) * int(r["n_windows"]) for r in by_hour[h])
        out.append({"hour": h, "n_windows": n, "routing_rate": routed / n if n else 0.0})
    return out


def routing_summary(rows: Sequence[Mapping]) -> dict:
    """Mean, min and max of the hourly routing rates (``rows`` from :func:`routing_per_hour`)."""
    rates = [r["routing_rate"] for r in rows]
    if not rates:
        return {"hours": 0, "mean": None, "min": None, "max": None}
    return {"hours": len(rates), "mean": float(np.mean(rates)), "min": float(np.min(rates)),
            "max": float(np.max(rates))}


def longterm_markdown(test: Mapping) -> str:
    """Report section of a long-term unit: events over whole hours and the routing rate per hour."""
    def f(v, d=3):
        return "n/a" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))

    ev, raw, post = test["events"], test.get("events_raw", {}), test.get("postprocess", {})
    lines = ["### Continuous hours (long-term)",
             f"Cascade decisions smoothed {post.get('k', 1)}-of-{post.get('n', 1)} (chosen on validation, host-side): "
             f"{ev['n_detected']} of {ev['n_events']} seizures detected, {ev['n_false_alarms']} false alarm(s) in "
             f"{ev['hours']:.2f} h tested: FA/h {f(ev['fa_per_hour'])}, FA/24 h {f(ev['fa_per_24h'])}, "
             f"mean detection delay {f(ev['mean_delay_s'], 1)} s. Unsmoothed: {raw.get('n_detected', 'n/a')} detected, "
             f"{raw.get('n_false_alarms', 'n/a')} false alarm(s).", ""]
    rows = test.get("routing_per_hour", [])
    if rows:
        s = routing_summary(rows)
        lines += [f"Routing rate per hour (share of windows the complex model runs) over {s['hours']} h: "
                  f"mean {f(s['mean'])}, min {f(s['min'])}, max {f(s['max'])}.", "",
                  "| hour | windows | routing rate |", "|---|---|---|"]
        lines += [f"| {r['hour']} | {r['n_windows']} | {f(r['routing_rate'])} |" for r in rows]
    return "\n".join(lines)
