"""The per-electrode normaliser fitted on a unit's training windows (median/IQR or mean/SD)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from qcascade.io_utils import atomic_path, atomic_write_json


@dataclass
class Normalizer:
    """Per-electrode affine normalisation ``(x - center) / scale``; masked electrodes become 0.

    Attributes:
        center, scale: ``(n_chans,)`` float32.
        mask: ``(n_chans,)`` bool, electrodes kept (others are zeroed).
        method: ``"robust"`` (median, IQR / 1.349) or ``"zscore"`` (mean, std).
        fitted_on: record ids of the windows the statistics came from (provenance).
    """

    center: np.ndarray
    scale: np.ndarray
    mask: np.ndarray
    method: str = "robust"
    fitted_on: tuple[str, ...] = ()

    @classmethod
    def fit(cls, X: np.ndarray, mask: np.ndarray, method: str = "robust", fitted_on: Sequence[str] = (),
            max_windows: int = 2000, seed: int = 0, rows: np.ndarray | None = None) -> "Normalizer":
        """Fit on ``X`` ``(n_windows, n_times, n_chans)``; ``mask`` is ``(n_chans,)`` or per window
        ``(n_windows, n_chans)`` (pooled patients). At most ``max_windows`` random windows are used,
        drawn from ``rows`` (None: all)."""
        if method not in ("robust", "zscore"):
            raise ValueError(f"normalization must be 'robust' or 'zscore', got {method!r}")
        n_chans = X.shape[-1]
        win_mask = np.broadcast_to(mask, (len(X), n_chans))
        rows = np.arange(len(X)) if rows is None else np.asarray(rows)
        pick = rows[np.random.default_rng(seed).permutation(len(rows))[:max_windows]]
        center, scale = np.zeros(n_chans, np.float32), np.ones(n_chans, np.float32)
        for c in np.flatnonzero(win_mask.any(axis=0)):
            rows = pick[win_mask[pick, c]]
            values = X[rows, :, c].ravel().astype(np.float64)
            if method == "robust":
                q25, q50, q75 = np.percentile(values, [25, 50, 75])
                center[c], s = q50, (q75 - q25) / 1.349
            else:
                center[c], s = values.mean(), values.std()
            scale[c] = s if s > 1e-12 else 1.0
        return cls(center, scale, win_mask.any(axis=0).copy(), method, tuple(sorted(set(fitted_on))))

    def transform(self, X: np.ndarray, mask: np.ndarray | None = None, inplace: bool = False) -> np.ndarray:
        """Normalise ``(..., n_chans)``; electrodes outside ``mask`` (default ``self.mask``) are zeroed."""
        out = X if inplace else X.astype(np.float32, copy=True)
        out -= self.center
        out /= self.scale
        out[..., ~(self.mask if mask is None else mask)] = 0.0
        return out

    def to_dict(self) -> dict:
        return {"method": self.method, "center": self.center.tolist(), "scale": self.scale.tolist(),
                "mask": self.mask.tolist(), "fitted_on": list(self.fitted_on)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        return cls(np.asarray(d["center"], np.float32), np.asarray(d["scale"], np.float32),
                   np.asarray(d["mask"], bool), d["method"], tuple(d.get("fitted_on", ())))

    def save(self, path) -> Path:
        """Write atomically: ``.npz`` (NumPy arrays) or anything else as JSON."""
        path = Path(path)
        if path.suffix != ".npz":
            return atomic_write_json(path, self.to_dict())
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, center=self.center, scale=self.scale, mask=self.mask, method=np.str_(self.method),
                     fitted_on=np.array(self.fitted_on, dtype=str))
        return path

    @classmethod
    def load(cls, path) -> "Normalizer":
        path = Path(path)
        if path.suffix != ".npz":
            return cls.from_dict(json.loads(path.read_text()))
        with np.load(path) as z:
            return cls(z["center"], z["scale"], z["mask"], str(z["method"]), tuple(z["fitted_on"].tolist()))
