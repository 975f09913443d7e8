"""Which electrodes a seizure reaches first: the line-length onset latency of each electrode.

Clinically the seizure onset zone is where the earliest ictal change appears. Here each electrode's
line length (mean absolute first difference over ``win_s`` windows) is compared with its own
pre-ictal baseline (median and MAD-based scale), and its latency is the start of the first run of
``consecutive`` windows above ``threshold`` robust z, searched from ``before_s`` before to
``after_s`` after the annotated onset. Electrodes ranked by their median latency over several
seizures start with the onset zone on the stress cohort (docs/generalisation.md, round 21);
:mod:`bench.bench_onset_latency` measures that against the cohort's ground truth.
"""

from __future__ import annotations

import numpy as np

__all__ = ["onset_latency", "rank_by_onset", "recording_latencies", "earliest_of_top"]

NEVER = np.inf
PRE_ICTAL_S = 180.0  # baseline read before each onset: the short-term layout's whole pre-ictal part


def onset_latency(x: np.ndarray, ictal_start: int, sfreq: float, *, win_s: float = 0.5, threshold: float = 5.0,
                  consecutive: int = 3, before_s: float = 5.0, after_s: float = 30.0,
                  baseline_gap_s: float = 10.0, max_fraction: float = 1.0) -> np.ndarray:
    """Seconds from the annotated onset to each electrode's first sustained line-length rise.

    Args:
        x: ``(n_samples, n_chans)`` one recording.
        ictal_start: the annotated onset, a sample index of ``x``.
        sfreq: sampling rate of ``x`` in Hz.
        win_s: line-length window length (non-overlapping windows).
        threshold: robust z (``(ll - median) / (1.4826 * MAD)``) a window must exceed.
        consecutive: windows in a row above ``threshold``.
        before_s, after_s: the search interval around the onset.
        baseline_gap_s: the baseline ends this long before the onset (pre-ictal changes stay out).
        max_fraction: a window where more than this fraction of the (non-flat) electrodes is above
            ``threshold`` does not count for any electrode (a movement artefact, not a focal onset);
            1.0 keeps every window.

    Returns:
        ``(n_chans,)`` float: latency in seconds (negative: before the annotation); ``inf`` where the
        electrode never rises in the interval, and for flat electrodes.

    Raises:
        ValueError: when the recording has less than 5 s of baseline before the onset.
    """
    x = np.asarray(x, np.float64)
    w = int(round(win_s * sfreq))
    n = x.shape[0] // w
    w0 = int(ictal_start) // w
    n_base = w0 - int(round(baseline_gap_s / win_s))
    if n_base * win_s < 5.0:
        raise ValueError(f"onset at {ictal_start / sfreq:.1f} s leaves {max(n_base, 0) * win_s:.1f} s of baseline "
                         f"(at least 5 s needed, ending {baseline_gap_s:.0f} s before the onset)")
    ll = np.abs(np.diff(x[: n * w].reshape(n, w, -1), axis=1)).mean(1)
    base = ll[:n_base]
    med = np.median(base, 0)
    scale = 1.4826 * np.median(np.abs(base - med), 0)
    flat = scale <= 1e-12 * np.maximum(np.abs(med), 1.0)
    z = (ll - med) / np.where(flat, 1.0, scale)
    lo = max(w0 - int(round(before_s / win_s)), n_base)
    hi = min(w0 + int(round(after_s / win_s)), n)
    above = (z[lo:hi] > threshold) & ~flat
    above &= (above.sum(1, keepdims=True) <= max_fraction * max(int((~flat).sum()), 1))
    above = above.astype(np.int64)
    out = np.full(x.shape[1], NEVER)
    if hi - lo < consecutive:
        return out
    runs = np.lib.stride_tricks.sliding_window_view(above, consecutive, axis=0).sum(-1) == consecutive
    hit = runs.any(0) & ~flat
    out[hit] = (runs[:, hit].argmax(0) + lo - w0) * win_s
    return out


def rank_by_onset(latencies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Electrodes ordered by median latency over seizures (earliest first; ties keep index order).

    Args:
        latencies: ``(n_seizures, n_chans)`` from :func:`onset_latency`.

    Returns:
        ``(order (n_chans,) int, median (n_chans,) float)``; an electrode that never rose in more
        than half of the seizures has median ``inf``.
    """
    med = np.median(np.asarray(latencies, np.float64), axis=0)
    return np.argsort(med, kind="stable"), med


def recording_latencies(recordings, sfreq: float) -> np.ndarray:
    """``(n_seizures, n_chans)`` latencies of every seizure of ``recordings`` with enough baseline
    (:class:`qcascade.data.swec.Recording`; seizures too close to the recording's start are left out).

    Only the samples around each onset are kept, and a recording that streams
    (``iter_chunks``) is read no further than its last seizure: hour-long files stay out of memory.
    Recordings with fewer electrodes (the patients of a pooled run) get ``NEVER`` in the columns
    they do not have, as their windows get zeros there.
    """
    out = []
    for rec in recordings:
        spans = [(max(0, start - int(round(PRE_ICTAL_S * sfreq))), start + int(round(40.0 * sfreq)), start)
                 for start, _ in rec.ictal_spans
                 if start / sfreq >= 15.0]  # at least 5 s of baseline ending 10 s before the onset
        if not spans:
            continue
        for (lo, _, start), seg in zip(spans, _read_spans(rec, [(lo, hi) for lo, hi, _ in spans])):
            out.append(onset_latency(seg, start - lo, sfreq))
    if not out:  # no seizure with a baseline (Bonn's ictal segments start inside the seizure)
        n_chans = max((int(rec.n_electrodes) for rec in recordings), default=0)
        return np.empty((0, n_chans))
    rows = np.full((len(out), max(len(r) for r in out)), NEVER)
    for row, lat in zip(rows, out):
        row[:len(lat)] = lat
    return rows


def _read_spans(rec, spans: list[tuple[int, int]]) -> list[np.ndarray]:
    """The samples ``[lo, hi)`` of each span of ``rec``, streamed chunk by chunk where it can."""
    if not hasattr(rec, "iter_chunks"):
        x = rec.load()
        return [x[lo:hi] for lo, hi in spans]
    parts: list[list[np.ndarray]] = [[] for _ in spans]
    last = max(hi for _, hi in spans)
    pos = 0
    chunks = rec.iter_chunks()
    try:
        for chunk in chunks:
            end = pos + len(chunk)
            for part, (lo, hi) in zip(parts, spans):
                if lo < end and hi > pos:
                    part.append(chunk[max(lo - pos, 0):min(hi - pos, len(chunk))])
            pos = end
            if pos >= last:
                break
    finally:
        chunks.close()  # closes the file now, not at garbage collection
    return [np.concatenate(p, axis=0) for p in parts]


def earliest_of_top(weights: np.ndarray, mask: np.ndarray, latencies: np.ndarray, top_k: int,
                    margin_s: float = 2.0, min_weight_ratio: float = 0.0,
                    min_seizures: int = 1) -> tuple[int, dict]:
    """The selector's electrode, unless one of its ``top_k`` rises clearly earlier.

    The selector's highest-weighted electrode is kept unless it has a finite median latency and
    another of the ``top_k`` highest-weighted deployable electrodes, weighted at least
    ``min_weight_ratio`` times the selector's electrode, has one at least ``margin_s`` earlier:
    then the earliest of those (ties: the higher weight). With latencies from fewer than
    ``min_seizures`` training seizures the selector's electrode is kept. Why a selector electrode
    without a finite latency is kept: docs/generalisation.md, round 22; why the weight floor:
    round 49; why a seizure count: round 58.

    Args:
        weights: ``(n_chans,)`` the selector's mean weights on training windows.
        mask: ``(n_chans,)`` bool, deployable electrodes.
        latencies: ``(n_seizures, n_chans)`` from the training seizures (may have 0 rows).
        top_k: electrodes considered.
        margin_s: how much earlier another electrode must rise.
        min_weight_ratio: in [0, 1]; an electrode the selector weights less than this times its
            own electrode's weight cannot take its place (0: any of the ``top_k``).
        min_seizures: the fewest training seizures (rows of ``latencies``) the latency may rest on
            (1: any).

    Returns:
        ``(electrode, info)``; ``info`` records the candidates, their median latencies and which
        rule decided.
    """
    w = np.where(np.asarray(mask, bool), np.asarray(weights, np.float64), -np.inf)
    top = [int(e) for e in np.argsort(-w, kind="stable")[:top_k] if np.isfinite(w[e])]
    if not top:
        raise ValueError("earliest_of_top: no deployable electrode")
    n = latencies.shape[0] if np.ndim(latencies) == 2 else 0
    med = np.median(latencies, axis=0) if n else np.full(len(w), NEVER)
    if isinstance(min_seizures, bool) or int(min_seizures) != min_seizures or min_seizures < 1:
        raise ValueError(f"earliest_of_top: min_seizures must be an integer >= 1, got {min_seizures!r}")
    first = top[0]
    few = n < min_seizures
    earlier = [] if few else [e for e in top if np.isfinite(med[first]) and med[e] <= med[first] - margin_s]
    too_light = [e for e in earlier if w[e] < min_weight_ratio * w[first]]
    earlier = [e for e in earlier if e not in too_light]
    if earlier:
        chosen, rule = min(earlier, key=lambda e: (med[e], -w[e])), f"earliest_of_top: {margin_s:g} s earlier"
    else:
        chosen = first
        rule = (f"selector (latencies from {n} training seizure(s), fewer than {int(min_seizures)})" if few
                else "selector (its electrode has no finite latency)" if not np.isfinite(med[first])
                else f"selector (the top electrodes rising {margin_s:g} s earlier weigh less than "
                     f"{min_weight_ratio:g} of its own)" if too_light
                else f"selector (none of the top rises {margin_s:g} s earlier)")
    info = {"rule": rule, "top": top, "median_latency_s": [None if not np.isfinite(med[e]) else float(med[e]) for e in top],
            "n_seizures": int(n), "selector_electrode": first, "electrode": int(chosen), "margin_s": float(margin_s),
            "weight_ratio": [float(w[e] / w[first]) if w[first] > 0 else None for e in top],
            "min_weight_ratio": float(min_weight_ratio), "min_seizures": int(min_seizures)}
    return int(chosen), info
