"""The hard cascade gate: which windows the complex model decides, in Python.

The simple model's logits ``z`` give ``p1 - p0 = tanh((z1 - z0) / 2)``, so every rule on the
probabilities is a rule on the logit difference ``d = z1 - z0`` with ``T = 2 * atanh(tau)``
(``tau = 1``: ``T = inf``). Three switches make the rule (``TrainConfig.gate_*``):

* **confidence** (both switches off, the textbook cascade): the simple answer is final when
  ``|p1 - p0| > tau``, i.e. ``|d| > T``; otherwise the complex model decides.
* ``confirm_ictal``: only a confident *interictal* answer is final, ``p0 - p1 > tau``
  (``-d > T``). Every window the simple model calls ictal, or is unsure about, is decided by
  the complex model: a one-electrode model's alarms are confirmed by the all-electrode one.
* ``hold``: after a window is decided ictal, the next window of the same recording goes to the
  complex model whatever the simple model says, until the complex model calls a window
  interictal. A seizure in progress stays with the model that sees every electrode.

Why the two switches exist (measured, BENCHMARKS.md): the single-electrode model's errors are
often *confident* -- ictal windows under a movement artefact, or late phases of a seizure longer
than any training seizure, that it calls interictal with ``|p1 - p0| > 0.96``. No tau routes
them, so the textbook gate lost up to 0.04 F1 against the complex model on every window. Those
errors fall inside seizures the simple model has already flagged, which is what ``hold``
catches; ``confirm_ictal`` removes the simple model's confident false alarms. The cost is
routing about the seizure burden plus the false-alarm rate (a few % on long recordings).

The generated C++ top level (``qcascade.hls.toplevel``) implements the same rule: the hold
needs the previous window's final class, which the host (or stream controller) passes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["GateRule", "simple_is_final", "cascade_decide", "cascade_predict"]


@dataclass(frozen=True)
class GateRule:
    """The gate's switches (see the module docstring); the default is the textbook gate."""

    confirm_ictal: bool = False
    hold: bool = False

    @classmethod
    def from_config(cls, train_cfg) -> "GateRule":
        """The rule of a :class:`~qcascade.training.TrainConfig`."""
        return cls(confirm_ictal=bool(train_cfg.gate_confirm_ictal), hold=bool(train_cfg.gate_hold))

    def describe(self) -> str:
        """A short name for reports: ``confidence``, ``confirm``, ``confidence+hold``, ``confirm+hold``."""
        return ("confirm" if self.confirm_ictal else "confidence") + ("+hold" if self.hold else "")


def simple_is_final(simple_logits: np.ndarray, tau: float, confirm_ictal: bool = False) -> np.ndarray:
    """``(n,)`` bool: the simple model's answer is final on this window (before the hold).

    Args:
        simple_logits: ``(n, 2)`` logits.
        tau: threshold in [0, 1].
        confirm_ictal: only a confident interictal answer is final.
    """
    from qcascade.training.tau import logit_threshold

    z = np.asarray(simple_logits, np.float64)
    d = z[:, 1] - z[:, 0]
    margin = -d if confirm_ictal else np.abs(d)
    return margin > logit_threshold(tau)


def _sequence_order(n: int, record_ids: Optional[np.ndarray], start_s: Optional[np.ndarray]):
    """Window indices in time order and, per position, whether it starts a new recording."""
    if record_ids is None:
        return np.arange(n), np.r_[True, np.zeros(max(n - 1, 0), bool)][:n]
    rec = np.asarray(record_ids).astype(str)
    start = np.arange(n, dtype=np.float64) if start_s is None else np.asarray(start_s, np.float64)
    if rec.shape != (n,) or start.shape != (n,):
        raise ValueError(f"record_ids and start_s must have shape ({n},), got {rec.shape} and {start.shape}")
    order = np.lexsort((start, rec))
    first = np.r_[True, rec[order][1:] != rec[order][:-1]][:n]
    return order, first


def cascade_decide(simple_logits: np.ndarray, complex_logits: np.ndarray, tau: float, *,
                   confirm_ictal: bool = False, hold: bool = False,
                   record_ids: Optional[np.ndarray] = None,
                   start_s: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """Hard-gated cascade decisions.

    Args:
        simple_logits: ``(n, 2)`` logits of the simple model (on the deployed electrode).
        complex_logits: ``(n, 2)`` logits of the complex model (only read where routed).
        tau: confidence threshold in [0, 1].
        confirm_ictal, hold: the gate's switches (module docstring).
        record_ids, start_s: ``(n,)`` recording and start time of each window, for the hold:
            windows are taken in time order within each recording and the hold never crosses
            recordings. Without them, the windows are one recording in the given order.

    Returns:
        ``pred`` ``(n,) int64`` final class, ``routed`` ``(n,) bool`` (the complex model
        decided), ``prev_cls`` ``(n,) int64`` the final class of the previous window of the same
        recording (0 for a recording's first window): what the C++ top level's hold input gets.
    """
    zs = np.asarray(simple_logits, np.float64)
    zc = np.asarray(complex_logits, np.float64)
    if zs.shape != zc.shape or zs.ndim != 2 or zs.shape[1] != 2:
        raise ValueError(f"expected two (n, 2) logit arrays, got {zs.shape} and {zc.shape}")
    final = simple_is_final(zs, tau, confirm_ictal)
    s_cls, c_cls = zs.argmax(1), zc.argmax(1)  # ties -> class 0, like the C++ `z1 > z0`
    n = len(zs)
    prev = np.zeros(n, np.int64)
    order, first = _sequence_order(n, record_ids, start_s)
    if not hold:
        routed = ~final
        pred = np.where(routed, c_cls, s_cls).astype(np.int64)
        prev[order[1:]] = np.where(first[1:], 0, pred[order[:-1]])
        return {"pred": pred, "routed": routed, "prev_cls": prev}
    routed = np.zeros(n, bool)
    pred = np.zeros(n, np.int64)
    last = 0
    for pos, i in enumerate(order.tolist()):  # sequential: each decision depends on the last
        p = 0 if first[pos] else last
        prev[i] = p
        r = p == 1 or not final[i]
        routed[i] = r
        last = int(c_cls[i] if r else s_cls[i])
        pred[i] = last
    return {"pred": pred, "routed": routed, "prev_cls": prev}


def cascade_predict(simple_logits: np.ndarray, complex_logits: np.ndarray, tau: float,
                    **rule) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, routed)`` of :func:`cascade_decide` (same arguments)."""
    out = cascade_decide(simple_logits, complex_logits, tau, **rule)
    return out["pred"], out["routed"]
