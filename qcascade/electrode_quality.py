"""Electrodes the deployed single-channel path must not read: mains interference and broadband noise.

Both are judged per electrode against the patient's other electrodes, as in the PREP pipeline's
bad-channel criteria (Bigdely-Shamlo et al. 2015): a statistic per 1-s window, its median over
the *interictal* training windows (so artefacts, which cover a minority of them, do not move it),
then a robust z-score across electrodes (median and MAD). An electrode is flagged when
``z > z_threshold``. Ictal windows are left out because training oversamples them (about half of
the training windows are ictal), and a seizure with fast activity then lifts the median of its
own onset zone: the zone was flagged "noisy" and could not be deployed (docs/generalisation.md,
round 52).

- **line noise**: power in the 1-Hz bin at 50 or 60 Hz over the median of the bins 3-8 Hz either
  side (log10), the larger of the two mains frequencies;
- **noisy**: power in the top band ``[0.75, 0.98] * Nyquist`` over power in 1-30 Hz (log10): white
  or amplifier noise lifts the top of the spectrum that iEEG background leaves orders of magnitude
  lower.

The flags only restrict which electrode the ChannelSelector may deploy; the complex model still
reads every live electrode. Measurements on the stress cohort: docs/generalisation.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

MIN_ELECTRODES = 8  # a robust z-score across fewer electrodes says nothing
_MAD_FLOOR = 0.05  # decades: identical electrodes must not turn a tiny spread into a flag
_LINE_HZ = (50.0, 60.0)


@dataclass
class ElectrodeQuality:
    """Per-electrode flags of :func:`assess_electrodes` (indices into the padded electrode axis).

    Attributes:
        line_noise: electrodes flagged for mains interference.
        noisy: electrodes flagged for broadband noise.
        z_line, z_noise: ``(n_chans,)`` robust z-scores (0 for masked electrodes).
        skipped: why nothing was judged (too few live electrodes), else None.

    The median electrode has z = 0, so at least half of the live electrodes stay deployable.
    """

    line_noise: list = field(default_factory=list)
    noisy: list = field(default_factory=list)
    z_line: list = field(default_factory=list)
    z_noise: list = field(default_factory=list)
    skipped: str | None = None

    @property
    def excluded(self) -> list[int]:
        """Electrodes the selector may not deploy."""
        return sorted(set(self.line_noise) | set(self.noisy))

    def deployable(self, mask: np.ndarray) -> np.ndarray:
        """``mask`` without :attr:`excluded` (``(n_chans,)`` bool)."""
        out = np.asarray(mask, bool).copy()
        out[self.excluded] = False
        return out

    def summary(self) -> dict:
        """JSON-ready record without the per-electrode z-scores."""
        d = asdict(self)
        d.pop("z_line"), d.pop("z_noise")
        d["excluded"] = self.excluded
        return d


def _robust_z(v: np.ndarray) -> np.ndarray:
    med = np.median(v)
    mad = max(1.4826 * float(np.median(np.abs(v - med))), _MAD_FLOOR)
    return (v - med) / mad


def window_statistics(X: np.ndarray, sfreq: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-window log10 line-noise ratio and log10 top-band/low-band ratio.

    Args:
        X: ``(n_windows, n_times, n_electrodes)`` windows.
        sfreq: sampling rate, Hz.

    Returns:
        ``(line, noise)``, each ``(n_windows, n_electrodes)``.
    """
    X = np.asarray(X, np.float32)
    freqs = np.fft.rfftfreq(X.shape[1], 1.0 / sfreq)
    power = np.abs(np.fft.rfft(X - X.mean(axis=1, keepdims=True), axis=1)) ** 2  # (n, f, e)
    tiny = 1e-30
    line = []
    for f0 in _LINE_HZ:
        if f0 + 8 >= sfreq / 2:
            continue
        peak = power[:, np.abs(freqs - f0) <= 0.5 * (freqs[1] - freqs[0]) + 1e-9].mean(axis=1)
        side = (np.abs(freqs - f0) >= 3) & (np.abs(freqs - f0) <= 8)
        line.append(np.log10(peak + tiny) - np.log10(np.median(power[:, side], axis=1) + tiny))
    nyq = sfreq / 2
    top = power[:, (freqs >= 0.75 * nyq) & (freqs <= 0.98 * nyq)].sum(axis=1)
    low = power[:, (freqs >= 1) & (freqs <= 30)].sum(axis=1)
    noise = np.log10(top + tiny) - np.log10(low + tiny)
    line_ratio = np.max(line, axis=0) if line else np.zeros_like(noise)
    return line_ratio, noise


def assess_electrodes(X: np.ndarray, mask: np.ndarray, sfreq: float, z_threshold: float = 5.0,
                      max_windows: int = 256, y: np.ndarray | None = None) -> ElectrodeQuality:
    """Flag live electrodes with mains interference or broadband noise on windows ``X``.

    Args:
        X: ``(n_windows, n_times, n_chans)`` training windows (any per-electrode affine scaling).
        mask: ``(n_chans,)`` bool live electrodes.
        sfreq: sampling rate, Hz.
        z_threshold: robust z-score above which an electrode is flagged.
        max_windows: evenly spaced windows used (bounds time and memory).
        y: ``(n_windows,)`` labels (1 = ictal); given, only the windows labelled 0 are used
            (all windows if none is).

    Returns:
        The :class:`ElectrodeQuality`; nothing is flagged with fewer than ``MIN_ELECTRODES`` live.
    """
    mask = np.asarray(mask, bool)
    n_chans = len(mask)
    live = np.flatnonzero(mask)
    zeros = [0.0] * n_chans
    if len(live) < MIN_ELECTRODES:
        return ElectrodeQuality(z_line=zeros, z_noise=zeros,
                                skipped=f"{len(live)} live electrode(s), fewer than {MIN_ELECTRODES}")
    rows = np.arange(len(X)) if y is None else np.flatnonzero(np.asarray(y) == 0)
    if not len(rows):
        rows = np.arange(len(X))
    pick = rows[np.unique(np.linspace(0, len(rows) - 1, min(max_windows, len(rows))).astype(int))]
    line_med = np.zeros(len(live))
    noise_med = np.zeros(len(live))
    for lo in range(0, len(live), 16):  # bounded temporaries: (windows, freqs, 16)
        cols = live[lo:lo + 16]
        line, noise = window_statistics(np.asarray(X)[pick][:, :, cols], sfreq)
        line_med[lo:lo + len(cols)] = np.median(line, axis=0)
        noise_med[lo:lo + len(cols)] = np.median(noise, axis=0)
    z_line, z_noise = np.zeros(n_chans), np.zeros(n_chans)
    z_line[live], z_noise[live] = _robust_z(line_med), _robust_z(noise_med)
    return ElectrodeQuality(line_noise=np.flatnonzero(z_line > z_threshold).tolist(),
                            noisy=np.flatnonzero(z_noise > z_threshold).tolist(),
                            z_line=np.round(z_line, 2).tolist(), z_noise=np.round(z_noise, 2).tolist())
