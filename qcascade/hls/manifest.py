"""What the generated top-level folder holds and how to read it: the manifest, the testbench
window file and the Python reference gate. A leaf shared by the generator (:mod:`.toplevel`),
the C simulation (:mod:`.csim`) and the flow scripts (:mod:`.synth`); the window buffer's cost.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from qcascade.errors import QCascadeError
from qcascade.gate import simple_is_final
from qcascade.io_utils import atomic_path

TEMPLATES = Path(__file__).parent / "templates"
MANIFEST = "cascade_manifest.json"


def gate_reference(z0: Any, z1: Any, tau: float, rule: str, prev_cls: Any = None, gap: Any = None,
                   probe_every: int = 0, sentinel: Any = None, sentinel_every: int = 1,
                   held: Any = None, sentinel_interictal_only: bool = False,
                   tau_interictal: float | None = None) -> np.ndarray:
    """Python reference gate: True where the simple model's answer is final.

    ``rule``, ``prev_cls``, ``gap``, ``probe_every``, ``sentinel``, ``sentinel_every``, ``held``,
    ``sentinel_interictal_only`` and ``tau_interictal`` as in
    :func:`qcascade.gate.simple_is_final` (the one definition of the rules; this wrapper takes the
    two logit columns).
    """
    z = np.stack([np.asarray(z0, np.float64).ravel(), np.asarray(z1, np.float64).ravel()], 1)
    return simple_is_final(z, tau, rule, prev_cls, gap, probe_every, sentinel, sentinel_every, held,
                           sentinel_interictal_only, tau_interictal)

def carried_reference(prev_cls: Any, gap: Any, held: Any, min_held: int, ictal_every: int) -> np.ndarray:
    """``(n,)`` bool: the ictal stride keeps the ictal state on these windows (:mod:`qcascade.gate`,
    "Ictal stride"), read from each window's loaded state (``prev_cls``, ``gap``, ``held``, each ``(n,)``);
    ``min_held``: :func:`qcascade.gate.ictal_min_held`."""
    if ictal_every > 1 and (prev_cls is None or gap is None or held is None):
        raise ValueError("the ictal stride needs each window's prev_cls, gap and held")
    return ((np.asarray(prev_cls).ravel() == 1) & (np.asarray(held).ravel() >= min_held)
            & (np.asarray(gap).ravel() < ictal_every - 1))


def window_buffer_cost(n_times: int, n_chans: int, sample_bits: int) -> dict:
    """Bits and a BRAM18K estimate of the window buffer (reshaped to one word per time step).

    The estimate takes the best BRAM18K aspect ratio for an ``n_times`` deep,
    ``n_chans*sample_bits`` wide memory; ``bram18k_lower_bound`` is ``ceil(bits / 18432)``.
    """
    width = n_chans * sample_bits
    shapes = [(16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)]
    best = min(math.ceil(n_times / d) * math.ceil(width / w) for d, w in shapes)
    return {"bits": n_times * width, "word_bits": width, "depth": n_times, "bram18k_estimate": best,
            "bram18k_lower_bound": math.ceil(n_times * width / 18432)}


def load_manifest(top_dir: str | Path) -> dict:
    """Read ``cascade_manifest.json`` of a generated top-level folder."""
    path = Path(top_dir) / MANIFEST
    if not path.is_file():
        raise QCascadeError(f"{path}: not found; run generate_toplevel() first")
    return json.loads(path.read_text())


def side_inputs(manifest: dict, n: int, prev_cls: np.ndarray | None = None, gap: np.ndarray | None = None,
                scale_reset: np.ndarray | None = None, held: np.ndarray | None = None) -> dict:
    """The per-window side inputs the design of ``manifest`` reads, as :func:`write_windows` keywords.

    Inputs the design does not have are None; the ``gap`` (probe or sentinel) and ``held`` (hold)
    default to 0 and the
    recording start (``scale_reset``: read by a design that scales its input or has the sentinel) to
    1 on the first of the ``n`` windows only.
    """
    g = manifest["gate"]
    has_gap = bool(g.get("has_gap", int(g.get("probe_every", 0)) > 0))
    starts = manifest.get("input_scaling", {}).get("mode") == "causal_robust" or bool(g.get("sentinel"))
    return {"prev_cls": prev_cls if g.get("uses_prev") else None,
            "gap": (np.zeros(n, np.int64) if gap is None else gap) if has_gap else None,
            "scale_reset": ((np.arange(n) == 0) if scale_reset is None else scale_reset) if starts else None,
            "held": (np.zeros(n, np.int64) if held is None else held) if int(g.get("hold", 0)) else None}


def write_windows(path: str | Path, windows: np.ndarray, n_times: int, n_chans: int,
                  prev_cls: np.ndarray | None = None, gap: np.ndarray | None = None,
                  scale_reset: np.ndarray | None = None, held: np.ndarray | None = None) -> Path:
    """Write windows ``(n, n_times, n_chans)`` as raw little-endian float32 (testbench input).

    ``prev_cls`` ``(n,)`` goes to ``<path>.prev``, a byte each: 0/1 load that previous class into the
    design's state (prev_load = 1), 2 keeps the state the previous window left (closed loop).
    ``gap`` ``(n,)`` (gate with a probe) goes to ``<path>.gap``, a little-endian uint16 each: the
    probe's gap loaded with it.
    ``scale_reset`` ``(n,)`` goes to ``<path>.reset``, a byte each (designs that scale their input or
    have the sentinel): 1 starts a recording (initial scaling state, the sentinel's baselines), 0
    continues it.
    ``held`` ``(n,)`` (gate with a hold) goes to ``<path>.hold``, a byte each: the hold counter
    loaded with it.
    """
    x = np.asarray(windows)
    if x.ndim != 3 or x.shape[1:] != (n_times, n_chans) or not np.all(np.isfinite(x)):
        raise QCascadeError(f"{path}: windows must be finite with shape (n, {n_times}, {n_chans}), got {x.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if prev_cls is not None:
        prev = np.asarray(prev_cls).ravel()
        if prev.shape != (len(x),) or not np.isin(prev, (0, 1, 2)).all():
            raise QCascadeError(f"{path}.prev: prev_cls must be {len(x)} values in {{0, 1, 2}}, got shape {prev.shape}")
        with atomic_path(path.with_name(path.name + ".prev")) as tmp_prev:
            tmp_prev.write_bytes(prev.astype(np.uint8).tobytes())
    if gap is not None:
        g = np.asarray(gap).ravel()
        if g.shape != (len(x),) or g.min(initial=0) < 0 or g.max(initial=0) > 65535:
            raise QCascadeError(f"{path}.gap: gap must be {len(x)} values in [0, 65535], got shape {g.shape}")
        with atomic_path(path.with_name(path.name + ".gap")) as tmp_gap:
            tmp_gap.write_bytes(g.astype("<u2").tobytes())
    if held is not None:
        h = np.asarray(held).ravel()
        if h.shape != (len(x),) or h.min(initial=0) < 0 or h.max(initial=0) > 255:
            raise QCascadeError(f"{path}.hold: held must be {len(x)} values in [0, 255], got shape {h.shape}")
        with atomic_path(path.with_name(path.name + ".hold")) as tmp_hold:
            tmp_hold.write_bytes(h.astype(np.uint8).tobytes())
    if scale_reset is not None:
        reset = np.asarray(scale_reset).ravel()
        if reset.shape != (len(x),) or not np.isin(reset, (0, 1)).all():
            raise QCascadeError(f"{path}.reset: scale_reset must be {len(x)} values in {{0, 1}}, got shape {reset.shape}")
        with atomic_path(path.with_name(path.name + ".reset")) as tmp_reset:
            tmp_reset.write_bytes(reset.astype(np.uint8).tobytes())
    tmp = path.with_name(f".{path.name}.tmp")
    np.ascontiguousarray(x, dtype="<f4").tofile(tmp)
    tmp.replace(path)
    return path
