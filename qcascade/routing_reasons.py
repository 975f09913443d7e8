"""Why the gate sent each window to the complex model, and what those windows changed.

The deployed gate (:func:`qcascade.gate.cascade_decide`) routes a window when any of its
conditions holds. Each routed window is counted once, under the first of :data:`REASONS` that
holds for it, read from the state the gate saw (``prev_cls``, ``gap``, ``held``):

* ``unsure``: the simple model is not confident, ``|z1 - z0| <= 2*atanh(tau)`` (with a second
  threshold, ``-2*atanh(tau_interictal) <= z1 - z0 <= 2*atanh(tau)``);
* ``change``: ``confirm_changes``, a confident answer that changes the previous window's class;
* ``ictal``: ``confirm_ictal_hold``, a confident "ictal", or any window after an ictal one;
* ``hold``: the hold still runs (``held > 0``);
* ``sentinel``: the sentinel is up and its period has come round;
* ``probe``: the blind probe's period has come round (also the window after a recheck).

Per reason: the routed ``windows``, the ``ictal`` ones among them, and what the complex model did
with them where the two models disagree: ``mended`` (the complex model is right), ``harmed``
(the simple model was right). Where they agree, routing changed nothing but the cost.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from qcascade.gate import check_rule, logit_threshold
from qcascade.gate_fixed import fused_difference

__all__ = ["REASONS", "routing_reasons", "sum_routing_reasons", "routing_reason_rows"]

REASONS: tuple[str, ...] = ("unsure", "change", "ictal", "hold", "sentinel", "probe")
_COUNTS = ("windows", "ictal", "mended", "harmed")


def routing_reasons(simple_logits: np.ndarray, complex_logits: np.ndarray, y: np.ndarray, tau: float,
                    decisions: Mapping[str, np.ndarray], *, rule: str, probe_every: int = 0,
                    sentinel: Optional[np.ndarray] = None, sentinel_every: int = 1,
                    sentinel_interictal_only: bool = False, tau_interictal: Optional[float] = None,
                    fuse: float = 0.0, **_other_gate_args) -> dict:
    """Routed windows counted by their first reason.

    Args:
        simple_logits, complex_logits: ``(n, 2)`` logits the gate was walked on.
        y: ``(n,)`` labels.
        tau: the deployed threshold.
        decisions: :func:`qcascade.gate.cascade_decide`'s output (``routed``, ``prev_cls``,
            ``gap``, ``held``, each ``(n,)``), or a :class:`~qcascade.artifacts.WindowScores` as a dict.
        rule, probe_every, sentinel, sentinel_every, sentinel_interictal_only, tau_interictal, fuse: the gate's arguments
            (:func:`qcascade.gate_args.gate_rule`); the others (hold, recordings) are read from ``decisions``.

    Returns:
        ``{"n_windows", "n_routed", "by_reason": {reason: {"windows", "ictal", "mended", "harmed"}}}``.

    Raises:
        ValueError: a routed window that no condition of the gate explains (the decisions are not
            this gate's).
    """
    zs, zc = np.asarray(simple_logits, np.float64), np.asarray(complex_logits, np.float64)
    y = np.asarray(y).astype(int).ravel()
    routed = np.asarray(decisions["routed"], bool).ravel()
    n = len(routed)
    d = zs[:, 1] - zs[:, 0]
    s_cls, c_cls = (d > 0).astype(int), (fused_difference(zs, zc, fuse) > 0).astype(int)
    prev = np.asarray(decisions["prev_cls"]).ravel()
    gap = np.asarray(decisions["gap"]).ravel()
    held = decisions.get("held")
    held = np.zeros(n, int) if held is None else np.asarray(held).ravel()
    thr_i = logit_threshold(tau if tau_interictal is None else tau_interictal)
    unsure = ~((d > logit_threshold(tau)) | (-d > thr_i))
    rule = check_rule(rule)
    conditions = {
        "unsure": unsure,
        "change": ~unsure & (s_cls != prev) if rule == "confirm_changes" else np.zeros(n, bool),
        "ictal": ~unsure & ((s_cls == 1) | (prev == 1)) if rule == "confirm_ictal_hold" else np.zeros(n, bool),
        "hold": held > 0,
        "sentinel": np.zeros(n, bool),
        "probe": (gap >= probe_every - 1) if probe_every else np.zeros(n, bool),
    }
    if sentinel is not None:
        up = np.asarray(sentinel, bool).ravel() & (gap >= int(sentinel_every) - 1)
        conditions["sentinel"] = up & (s_cls == 0) if sentinel_interictal_only else up
    mended, harmed = (c_cls != s_cls) & (c_cls == y), (c_cls != s_cls) & (s_cls == y)
    left = routed.copy()
    out = {}
    for reason in REASONS:
        k = left & conditions[reason]
        out[reason] = {"windows": int(k.sum()), "ictal": int((k & (y == 1)).sum()),
                       "mended": int((k & mended).sum()), "harmed": int((k & harmed).sum())}
        left &= ~k
    if left.any():
        raise ValueError(f"{int(left.sum())} routed window(s) (first at index {int(np.flatnonzero(left)[0])}) that "
                         f"no condition of the {rule!r} gate explains: the decisions are not this gate's")
    return {"n_windows": int(n), "n_routed": int(routed.sum()), "by_reason": out}


def sum_routing_reasons(parts: Sequence[Optional[dict]]) -> Optional[dict]:
    """Several window sets' :func:`routing_reasons` added up (None if any part lacks them)."""
    if not parts or any(p is None for p in parts):
        return None
    return {"n_windows": sum(p["n_windows"] for p in parts), "n_routed": sum(p["n_routed"] for p in parts),
            "by_reason": {r: {c: sum(p["by_reason"].get(r, {}).get(c, 0) for p in parts) for c in _COUNTS}
                          for r in REASONS}}


def routing_reason_rows(reasons: dict) -> list[list]:
    """Table rows (reason, windows, share of all windows, ictal, mended, harmed) of the reasons
    that routed any window, then the total."""
    n = max(reasons["n_windows"], 1)
    rows = [[r, c["windows"], f"{c['windows'] / n:.3f}", c["ictal"], c["mended"], c["harmed"]]
            for r, c in reasons["by_reason"].items() if c["windows"]]
    tot = {c: sum(v[c] for v in reasons["by_reason"].values()) for c in _COUNTS}
    return rows + [["all", tot["windows"], f"{tot['windows'] / n:.3f}", tot["ictal"], tot["mended"], tot["harmed"]]]
