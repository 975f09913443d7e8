"""The picture a clinician looks at first: one timeline per test record.

Top to bottom, on one time axis (seconds from the record start): the deployed electrode's trace
(decimated, normalised units) with the true seizure span shaded; the simple and complex models'
ictal confidence ``p1`` with the windows the gate routed to the complex model marked; the final
cascade decisions; and the SzCORE events as timescoring scored them (detected and missed seizures,
false alarms).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np


def _p1(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    return 1.0 / (1.0 + np.exp(-(z[:, 1] - z[:, 0])))


def scored_events(y: np.ndarray, pred: np.ndarray, start_s: np.ndarray, hop_s: float) -> dict:
    """SzCORE events of one record (timescoring defaults), as :func:`evaluation.event_metrics` scores them.

    Args:
        y, pred: ``(n,)`` labels and decisions in {0, 1}, in time order.
        start_s: ``(n,)`` window starts in seconds.
        hop_s: seconds each window covers on the time axis.

    Returns:
        ``{"detected": [(on, off), ...], "missed": [...], "false_alarms": [...], "true_alarms": [...]}``
        in seconds (reference events for detected/missed, hypothesis events for the alarms).
    """
    from timescoring.annotations import Annotation
    from timescoring.scoring import EventScoring

    fs = 1.0
    n = int(np.ceil((start_s.max() + hop_s) * fs)) if len(start_s) else 1

    def mask(flags):
        m = np.zeros(n, bool)
        for s in start_s[np.asarray(flags, bool)]:
            m[int(round(s * fs)):max(int(round((s + hop_s) * fs)), int(round(s * fs)) + 1)] = True
        return m

    param = EventScoring.Parameters()
    score = EventScoring(Annotation(mask(y), fs), Annotation(mask(pred), fs), param)
    f = score.fs
    tp = np.asarray(score.tpMask, bool)

    def hit(on, off):
        return bool(np.any(tp[max(0, round(on * f)):round(off * f)]))

    out = {"detected": [], "missed": [], "false_alarms": [], "true_alarms": []}
    hyp = np.asarray(score.hyp.mask, bool)
    for on, off in score.ref.events:
        # timescoring's rule: the hypothesis covers more than minOverlap of the extended event
        a, b = max(0.0, on - param.toleranceStart), off + param.toleranceEnd
        covered = np.sum(hyp[round(a * f):round(b * f)]) / f / (b - a)
        out["detected" if covered > param.minOverlap + 1e-6 else "missed"].append((float(on), float(off)))
    for on, off in score.hyp.events:
        out["true_alarms" if hit(on, off) else "false_alarms"].append((float(on), float(off)))
    return out


MAX_TRACE_POINTS = 200_000  # trace samples drawn per record at most
TRACE_CHUNK = 1024  # windows of the trace read at a time


class WindowColumn:
    """``X[rows, :, electrode]`` read on slicing, so a caller need not hold a record's trace.

    Args:
        X: ``(n, n_times, n_chans)`` windows (an array or a lazy window store).
        rows: ``(m,)`` window indices in time order; electrode: column.
    """

    def __init__(self, X, rows: np.ndarray, electrode: int):
        self.X, self.rows, self.electrode = X, np.asarray(rows), int(electrode)
        self.shape = (len(self.rows), X.shape[1])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, sl: slice) -> np.ndarray:
        return np.asarray(self.X[self.rows[sl], :, self.electrode])


def decimated_trace(trace, start_s: np.ndarray, sfreq: float, n_keep: int,
                    decimate: int) -> tuple[np.ndarray, np.ndarray]:
    """Times and samples of the trace to draw: every ``decimate``-th sample of the first ``n_keep``
    samples of each window, at most ``MAX_TRACE_POINTS`` (decimation raised if needed).

    Hours of test windows (long-term) must not scale memory or the drawn path, so the trace is read
    ``TRACE_CHUNK`` windows at a time.

    Args:
        trace: ``(n, n_times)`` array or :class:`WindowColumn`; start_s: ``(n,)`` window starts.

    Returns:
        ``(t, x)``, each ``(m,)`` with ``m <= MAX_TRACE_POINTS``.
    """
    n = len(start_s)
    decimate = max(decimate, -(-n * n_keep // MAX_TRACE_POINTS))
    keep = np.arange(0, n * n_keep, decimate)
    t = start_s[keep // n_keep] + (keep % n_keep) / sfreq
    x = np.empty(len(keep), np.float32)
    for lo in range(0, n, TRACE_CHUNK):
        hi = min(n, lo + TRACE_CHUNK)
        a, b = np.searchsorted(keep, [lo * n_keep, hi * n_keep])
        x[a:b] = np.asarray(trace[lo:hi])[:, :n_keep].ravel()[keep[a:b] - lo * n_keep]
    return t, x


def plot_record_timeline(path: str | Path, *, trace: np.ndarray, sfreq: float, start_s: np.ndarray,
                         y: np.ndarray, simple_logits: np.ndarray, complex_logits: np.ndarray,
                         routed: np.ndarray, pred: np.ndarray, tau: float, title: str = "",
                         decimate: int = 8) -> Path:
    """Write one record's timeline PNG.

    Args:
        path: output PNG.
        trace: ``(n, n_times)`` the deployed electrode's samples of each window, in time order
            (an array or a :class:`WindowColumn`; read ``TRACE_CHUNK`` windows at a time).
        sfreq: samples per second of ``trace``.
        start_s: ``(n,)`` window starts in seconds (ascending).
        y, pred, routed: ``(n,)`` labels, cascade decisions and routing flags.
        simple_logits, complex_logits: ``(n, 2)`` logits of the deployed models.
        tau: the deployed confidence threshold (drawn as the band ``|p1 - p0| <= tau``).
        title: figure title.
        decimate: keep every ``decimate``-th sample of the trace (drawing only); more when the
            record has more than ``MAX_TRACE_POINTS`` samples.

    Returns:
        ``Path(path)``.
    """
    from qcascade.evaluation import _pyplot
    from qcascade.io_utils import atomic_save_figure

    plt = _pyplot()
    start_s = np.asarray(start_s, np.float64)
    hop = float(np.median(np.diff(start_s))) if len(start_s) > 1 else trace.shape[1] / sfreq
    n_keep = max(1, min(trace.shape[1], int(round(hop * sfreq))))  # non-overlapping part of each window
    t, x = decimated_trace(trace, start_s, sfreq, n_keep, decimate)
    ev = scored_events(y, pred, start_s, hop)
    fig, axes = plt.subplots(4, 1, figsize=(11, 6.2), sharex=True,
                             gridspec_kw={"height_ratios": [2.2, 1.6, 0.5, 0.8]})
    ax = axes[0]
    ax.plot(t, x, lw=0.4, color="k")
    for on, off in ev["detected"] + ev["missed"]:
        for a in axes:
            a.axvspan(on, off, color="tab:red", alpha=0.12, lw=0)
    ax.set_ylabel("electrode\n(normalised)")
    ax.set_title(title, fontsize=9)
    ax = axes[1]
    ax.plot(start_s, _p1(simple_logits), lw=0.8, color="tab:blue", label="simple p(ictal)")
    ax.plot(start_s, _p1(complex_logits), lw=0.8, color="tab:orange", label="complex p(ictal)")
    ax.axhspan((1 - tau) / 2, (1 + tau) / 2, color="grey", alpha=0.15, lw=0, label=f"|p1-p0| <= tau={tau:.2f}")
    r = np.asarray(routed, bool)
    ax.scatter(start_s[r], np.full(r.sum(), 1.04), s=4, marker="|", color="tab:orange", label="routed")
    ax.set_ylim(-0.05, 1.1)
    ax.set_ylabel("confidence")
    ax.legend(fontsize=6, ncol=4, loc="upper left")
    ax = axes[2]
    ax.fill_between(start_s, 0, np.asarray(pred, float), step="post", color="tab:purple", lw=0)
    ax.set_yticks([])
    ax.set_ylabel("decision", rotation=0, ha="right", va="center", fontsize=8)
    ax = axes[3]
    rows = (("detected", "tab:green", 2), ("missed", "tab:red", 2), ("true_alarms", "tab:green", 1),
            ("false_alarms", "tab:red", 1))
    for key, color, level in rows:
        for on, off in ev[key]:
            ax.plot([on, max(off, on + hop)], [level, level], lw=5, color=color, solid_capstyle="butt")
    ax.set_yticks([1, 2], ["alarms", "seizures"], fontsize=7)
    ax.set_ylim(0.4, 2.6)
    ax.set_xlabel("time from record start (s)")
    ax.set_title(f"SzCORE events (green: detected / true alarm, red: missed / false alarm): "
                 f"{len(ev['detected'])} detected, {len(ev['missed'])} missed, "
                 f"{len(ev['false_alarms'])} false alarm(s)", fontsize=7)
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=100)
    plt.close(fig)
    return Path(path)


def timeline_name(record_id: str) -> str:
    """File name of a record's timeline (safe characters only)."""
    return "timeline_" + re.sub(r"[^A-Za-z0-9_.-]", "_", str(record_id)) + ".png"


def plot_test_timelines(out_dir: Path, te, electrode: int, simple_logits: np.ndarray, complex_logits: np.ndarray,
                        routed: np.ndarray, pred: np.ndarray, tau: float, unit: str,
                        max_records: int = 20) -> list[str]:
    """One :func:`plot_record_timeline` per test record of window set ``te`` (at most
    ``max_records``, records holding a seizure first: a fold of many short segments would
    otherwise draw hundreds of figures).

    Args:
        out_dir: folder of the PNGs.
        te: the test :class:`qcascade.data.WindowSet` (``X (n, n_times, n_chans)``).
        electrode: the deployed electrode (column of ``te.X``).
        simple_logits, complex_logits: ``(n, 2)``; routed, pred: ``(n,)``.
        tau: deployed threshold; unit: for titles.

    Returns:
        The PNG file names written, in record order.
    """
    recs = list(dict.fromkeys(te.record_ids.tolist()))
    if len(recs) > max_records:  # e.g. Bonn: ~50 short segments per fold; seizure records first
        ictal = set(te.record_ids[te.y == 1].tolist())
        recs = sorted(recs, key=lambda r: r not in ictal)[:max_records]
    names = []
    for rec in recs:
        sel = np.flatnonzero(te.record_ids == rec)
        sel = sel[np.argsort(te.start_s[sel], kind="stable")]
        name = timeline_name(rec)
        plot_record_timeline(Path(out_dir) / name, trace=WindowColumn(te.X, sel, electrode), sfreq=512.0,
                             start_s=te.start_s[sel], y=te.y[sel], simple_logits=simple_logits[sel],
                             complex_logits=complex_logits[sel], routed=routed[sel], pred=pred[sel], tau=tau,
                             title=f"{unit}: test record {rec}, electrode {electrode}")
        names.append(name)
    return names
