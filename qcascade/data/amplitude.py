"""A recording's amplitude and its spread between recordings: the gain drift that ``qcascade
analyze`` reports and that ``data.input_scaling: auto`` decides on (docs/input_scaling.md).

A recording's amplitude is the median, over every 4th non-ictal window and its live electrodes,
of each window's median absolute deviation: robust to seizures, artefact bursts and dead channels.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np

__all__ = ["window_mads", "recording_amplitude", "amplitude_spread", "choose_input_scaling"]

EVERY = 4  # every 4th window: the medians cost ~0.5 s per 256 windows of 128 electrodes


def window_mads(X: np.ndarray, y: np.ndarray, live: np.ndarray) -> np.ndarray:
    """MADs of every :data:`EVERY`-th non-ictal window of a batch.

    Args:
        X: ``(b, n_times, n_electrodes)`` raw windows (batch positions 0, EVERY, 2*EVERY, ... are read).
        y: ``(b,)`` labels.
        live: ``(n_electrodes,)`` bool, the electrodes to read.

    Returns:
        ``(k * n_live,)`` the MAD of each read window and live electrode.
    """
    quiet = X[::EVERY][np.asarray(y)[::EVERY] == 0][:, :, live]
    return np.median(np.abs(quiet - np.median(quiet, axis=1, keepdims=True)), axis=1).ravel()


def recording_amplitude(rec, n_times: int = 512, stride: int = 512, ictal_overlap: float = 0.5) -> Optional[float]:
    """The recording's amplitude (module docstring); None when it has no non-ictal window read."""
    from qcascade.data.windows import iter_window_batches

    live = ~rec.dead_electrodes()
    mads = [window_mads(X, y, live) for X, y, _ in iter_window_batches(rec, n_times, stride, ictal_overlap)]
    mads = np.concatenate(mads) if mads else np.zeros(0)
    return round(float(np.median(mads)), 4) if len(mads) else None


def amplitude_spread(values: Iterable[Optional[float]]) -> Optional[float]:
    """Largest over smallest recording amplitude; None with fewer than two recordings measured."""
    v = [x for x in values if x]
    return round(max(v) / min(v), 3) if len(v) >= 2 else None


def choose_input_scaling(records: Sequence, *, n_times: int, stride: int, ictal_overlap: float,
                         min_spread: float, memory_windows: int, one_recording: str = "train_stats") -> dict:
    """``data.input_scaling: auto``: ``causal_robust`` where the gain drifts between recordings.

    ``causal_robust`` when the amplitude spread of ``records`` is at least ``min_spread`` and the
    recordings are long enough to scale from their own past (median length at least
    ``memory_windows`` windows); ``train_stats`` otherwise. Where fewer than two recordings have
    non-ictal windows, no spread can be measured: long enough recordings get ``one_recording``.

    Args:
        records: the recordings the choice may see (a fold's training and validation recordings,
            never its test recording).
        one_recording: ``train_stats`` or ``causal_robust`` (``data.scaling_auto_one_recording``).

    Returns:
        ``{"input_scaling", "amplitude_spread", "amplitude_by_recording", "median_windows",
        "min_spread", "one_recording", "reason"}``.
    """
    amp = {r.record_id: recording_amplitude(r, n_times, stride, ictal_overlap) for r in records}
    spread = amplitude_spread(amp.values())
    n_win = float(np.median([max(0, (r.n_samples - n_times) // stride + 1) for r in records])) if records else 0.0
    if one_recording not in ("train_stats", "causal_robust"):
        raise ValueError(f"one_recording must be train_stats or causal_robust, got {one_recording!r}")
    if n_win < memory_windows:
        choice, reason = "train_stats", (f"recordings of {n_win:g} windows (median) are shorter than the scaling "
                                         f"memory of {memory_windows}: no past to scale from")
    elif spread is None:
        choice, reason = one_recording, ("fewer than two recordings with non-ictal windows: no drift to measure "
                                         f"(data.scaling_auto_one_recording: {one_recording})")
    elif spread >= min_spread:
        choice, reason = "causal_robust", f"amplitude spread x{spread:g} >= x{min_spread:g}"
    else:
        choice, reason = "train_stats", f"amplitude spread x{spread:g} < x{min_spread:g}"
    return {"input_scaling": choice, "amplitude_spread": spread, "amplitude_by_recording": amp,
            "median_windows": n_win, "min_spread": float(min_spread), "one_recording": one_recording, "reason": reason}
