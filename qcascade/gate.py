"""The hard cascade gate: which windows the complex model decides, in Python.

The simple model's logits ``z`` give ``p1 - p0 = tanh((z1 - z0) / 2)``, so every rule on the
probabilities is a rule on the logit difference ``d = z1 - z0`` with ``T = 2 * atanh(tau)``
(``tau = 1``: ``T = inf``). ``s`` is the simple model's class (``d > 0``) and ``prev`` the final
class of the previous window of the same recording (0 at a recording's start). The simple
model's answer is final when (``TrainConfig.gate``):

* ``confidence`` (the textbook cascade): ``|d| > T``, i.e. ``|p1 - p0| > tau``;
* ``confirm_changes`` (default): ``|d| > T`` **and** ``s == prev``. The simple model may only
  *continue* the current state on its own; every change it proposes (a seizure onset, a false
  alarm, a drop-out in the middle of a seizure, the seizure's end) is confirmed or rejected by
  the complex model, which also decides whenever the simple model is unsure;
* ``confirm_ictal_hold``: ``-d > T`` **and** ``prev == 0``: only a confident interictal answer
  outside a seizure is final; every ictal call and every window after an ictal decision goes to
  the complex model (routes the whole seizure).

**Probe** (``probe_every = P > 0``, any rule; ``TrainConfig.gate_probe_every``): the simple
model's answer is never final on a window that follows ``P - 1`` windows of the same recording in
a row that the complex model did not see (``gap >= P - 1``; ``gap`` counts them and restarts at 0
after every routed window and at a recording's start). The complex model so sees at least one window
in every ``P``: a seizure that the one electrode cannot see at all (a multifocal patient's other
onset zone) is still put in front of the complex model; with ``confirm_changes``, once it calls a
probe ictal, the simple model's confident "interictal" is a change of state, so the complex model
keeps the seizure. It costs at most ``1 / P`` of the windows, less where the rule routes anyway.

**Sentinel** (``TrainConfig.gate_sentinel_ratio > 0``; :mod:`qcascade.sentinel`): a look at every
electrode instead of the blind period. While it is *up* (several electrodes' line length jumped
against their own recent past in the recording), the probe period is ``sentinel_every``: the
window is routed when ``gap >= sentinel_every - 1``. It shares the probe's ``gap`` counter, so a
sentinel without a probe (``P = 0``) only routes while it is up. With ``sentinel_interictal_only``
(``TrainConfig.gate_sentinel_interictal_only``) it routes only windows the simple model calls
interictal: it is there to find a seizure the one electrode does not see, and where the simple
model already says ictal, ``confirm_changes`` has had the complex model confirm that state.

**Recheck** (``recheck_tau = tau_c > 0``, with a probe; ``TrainConfig.gate_recheck_tau``): when the
complex model decides a window and its answer is an *unsure* "interictal" (``0 <= p0 - p1 < tau_c``
on its own logits, i.e. ``0 <= z0 - z1 < 2 * atanh(tau_c)``), the next window of the recording is
a probe: ``gap`` is set to ``P - 1`` instead of 0. A seizure that the simple model confidently calls
interictal and that the complex model only half sees (a multifocal patient's far zone) is then
asked again one window later, rather than ``P`` windows later. The C++ top level keeps it in the
same gap counter, so it costs no new state.

**Hold** (``hold = H > 0``, any rule; ``TrainConfig.gate_hold``): after a routed window on which the
complex model says ictal and the simple model said interictal, the next ``H`` windows of the
recording are routed whatever the simple model says (``held``, the windows still held, counts
down and restarts on every such window; 0 at a recording's start). Under
``confirm_changes``, one interictal answer of the complex model inside a seizure that the
electrode cannot see sets ``prev`` to 0, and the simple model's confident "interictal" is then
final on every later window: the complex model never sees the rest of that seizure. The hold
asks it again. The C++ top level keeps ``held`` in an 8-bit counter (``prev_hold`` input).

**Growing hold** (``hold_max = M > H``; ``TrainConfig.gate_hold_max``): such a window restarts the
count at ``min(M, max(H, held + 1))``, so each one in a row holds the seizure a window longer, up to
``M`` (the same C++ counter). ``M <= H`` (e.g. 0): the fixed hold. Why these rules, and not the
textbook one: docs/calibration.md.

**Ictal stride** (``ictal_every = K > 1``, with a growing hold; ``TrainConfig.gate_ictal_every``): while
the final class is ictal (``prev == 1``) and the hold has reached its ceiling (``held == M``: the complex
model said ictal against the simple model on ``M - H + 1`` routed windows in a row; ``ictal_after``
``"ceiling"``) or grown past ``H`` (``held > H``, two such windows; ``"grown"``), a window that follows fewer than
``K - 1`` unrouted windows (``gap < K - 1``) keeps the ictal state without either model deciding it, and
leaves ``held`` as it was. Inside a seizure the simple model misses, the complex model then decides one
window in ``K`` instead of every one; the seizure's end is seen at most ``K - 1`` windows late. An isolated
false alarm of the complex model never grows the hold, so it is not carried. From ``"ceiling"`` a dip of
the complex model meets the hold it would meet without the stride; from ``"grown"`` a shorter one (rounds 63
and 65 of docs/generalisation.md). The C++ top level compares ``held`` with :func:`ictal_min_held`. 1: off.

**Two thresholds** (``tau_interictal = tau_i <= tau``; ``TrainConfig.gate_tau_interictal``): the
simple model is confident when ``d > T`` or ``-d > T_i`` with ``T_i = 2 * atanh(tau_i)``, so it may
keep more of its "interictal" answers than of its "ictal" ones (``confirm_ictal_hold``: ``-d > T_i``).
None: ``T`` on both sides, the rules above. The C++ top level has the second constant.

**Fusion** (``fuse = a``, ``a = 2**-k``; ``TrainConfig.gate_fuse``): a routed window is decided on
``d_c = (z1 - z0)_complex + a * (z1 - z0)_simple`` instead of the complex model's difference
alone, and the recheck and the hold read that decision too. The simple model's confident answer
weighs in against a short false alarm of the complex model, which ``confirm_changes`` would
otherwise turn into a routed stretch (docs/generalisation.md, round 59). In the C++ top level it is
one shift and one add. 0: off, the complex model alone.

The generated C++ top level (``qcascade.hls.toplevel``) implements the same rules with the
fixed-point threshold of :func:`quantize_threshold`; training (the loss, tau calibration),
evaluation and the report import them from here. This module depends on numpy only.
"""

from __future__ import annotations

from typing import Literal, Optional, get_args

import numpy as np

# The thresholds, float and fixed point, live with the C++ constants' rounding; re-exported here.
from qcascade.gate_fixed import fused_difference, logit_threshold, quantize_recheck, quantize_threshold

__all__ = ["GATE_RULES", "GateRule", "GateSetting", "DEFAULT_RULE", "AUTO", "MAX_PROBE", "MAX_HOLD", "DEFAULT_HOLD",
           "DEFAULT_HOLD_MAX", "check_rule", "check_probe", "check_recheck", "check_hold", "check_tau_interictal",
           "check_ictal_every", "ICTAL_AFTER", "ictal_min_held", "hold_ceiling", "uses_prev",
           "uses_state", "training_rule",
           "logit_threshold", "quantize_threshold", "quantize_recheck", "simple_is_final", "cascade_decide",
           "cascade_predict"]

#: The type of ``train.gate`` (the strict config loader checks it and lists the choices).
GateRule = Literal["confidence", "confirm_changes", "confirm_ictal_hold"]
#: The gate rules, in the order of the C++ macro ``QCASCADE_GATE_RULE`` (0, 1, 2).
GATE_RULES: tuple[str, ...] = get_args(GateRule)
#: The rule a run deploys unless ``train.gate`` says otherwise (the config default is this constant).
DEFAULT_RULE = "confirm_changes"
#: ``train.gate: auto``: the rule is chosen per patient on validation (``tau.choose_gate``).
AUTO = "auto"
#: The type of ``train.gate``: a rule, or ``auto``.
GateSetting = Literal[GateRule, "auto"]
#: Largest probe period: the C++ gap counter is 16 bits wide.
MAX_PROBE = 65535
#: Largest hold: the C++ hold counter is 8 bits wide.
MAX_HOLD = 255
#: The hold a run deploys unless ``train.gate_hold`` says otherwise (the config default is this constant).
DEFAULT_HOLD = 2
#: The growing hold's ceiling unless ``train.gate_hold_max`` says otherwise (0: the fixed hold).
DEFAULT_HOLD_MAX = 8
#: The type of ``train.gate_ictal_after``: from which hold the ictal stride carries windows.
IctalAfter = Literal["ceiling", "grown"]
#: Its choices (module docstring, "Ictal stride").
ICTAL_AFTER: tuple[str, ...] = get_args(IctalAfter)


def check_rule(rule: str) -> str:
    """``rule`` if it is one of :data:`GATE_RULES`, else ValueError."""
    if rule not in GATE_RULES:
        raise ValueError(f"gate rule must be one of {GATE_RULES}, got {rule!r}")
    return rule


def uses_prev(rule: str) -> bool:
    """Whether ``rule`` reads the previous window's final class (the C++ ``prev_cls`` input)."""
    return check_rule(rule) != "confidence"


def check_probe(probe_every) -> int:
    """``probe_every`` as an int if it is 0 (off) or in [1, :data:`MAX_PROBE`], else ValueError."""
    if isinstance(probe_every, bool) or not isinstance(probe_every, (int, np.integer)) \
            or not (probe_every == 0 or 1 <= probe_every <= MAX_PROBE):
        raise ValueError(f"probe_every must be 0 (off) or an integer in [1, {MAX_PROBE}], got {probe_every!r}")
    return int(probe_every)


def check_hold(hold) -> int:
    """``hold`` as an int if it is in [0, :data:`MAX_HOLD`] (0: off), else ValueError."""
    if isinstance(hold, bool) or not isinstance(hold, (int, np.integer)) or not 0 <= hold <= MAX_HOLD:
        raise ValueError(f"hold must be an integer in [0, {MAX_HOLD}] (0: off), got {hold!r}")
    return int(hold)


def hold_ceiling(hold: int, hold_max) -> int:
    """The growing hold's ceiling ``M`` for hold ``H``: ``max(H, hold_max)``, so ``hold_max <= H``
    (0, None) is the fixed hold; 0 when the hold is off. ValueError unless both are in [0, MAX_HOLD]."""
    m = 0 if hold_max is None else hold_max
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 0 <= m <= MAX_HOLD:
        raise ValueError(f"hold_max must be an integer in [0, {MAX_HOLD}] (at most hold: the fixed hold), got {m!r}")
    return max(check_hold(hold), int(m)) if hold else 0


def ictal_min_held(hold: int, hold_max: int, ictal_after: str = "ceiling") -> int:
    """The least ``held`` on which the ictal stride carries a window: the ceiling ``M`` (``"ceiling"``) or
    ``H + 1`` (``"grown"``); ValueError for another ``ictal_after``. The C++ ``QCASCADE_GATE_ICTAL_MIN_HELD``."""
    if ictal_after not in ICTAL_AFTER:
        raise ValueError(f"ictal_after must be one of {ICTAL_AFTER}, got {ictal_after!r}")
    return hold_ceiling(hold, hold_max) if ictal_after == "ceiling" else check_hold(hold) + 1


def check_ictal_every(ictal_every, hold: int = 0, hold_max: int = 0) -> int:
    """``ictal_every`` as an int if it is 1 (off) or in [2, :data:`MAX_PROBE`] with a growing hold
    (``hold_max > hold > 0``: only a grown hold lets a window be carried), else ValueError."""
    if isinstance(ictal_every, bool) or not isinstance(ictal_every, (int, np.integer)) \
            or not 1 <= ictal_every <= MAX_PROBE:
        raise ValueError(f"ictal_every must be 1 (off) or an integer in [2, {MAX_PROBE}], got {ictal_every!r}")
    if ictal_every > 1 and not hold_ceiling(hold, hold_max) > check_hold(hold) > 0:
        raise ValueError(f"ictal_every={ictal_every} needs a growing hold (hold_max > hold > 0), got hold={hold}, "
                         f"hold_max={hold_max}: it carries the ictal state only where the hold has grown")
    return int(ictal_every)


def check_recheck(recheck_tau, probe_every) -> float:
    """``recheck_tau`` as a float if it is 0 (off) or in (0, 1) with a probe (the recheck makes the next
    window a probe, so it needs ``probe_every > 0``), else ValueError."""
    if isinstance(recheck_tau, bool) or not isinstance(recheck_tau, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(recheck_tau) < 1.0:
        raise ValueError(f"recheck_tau must be 0 (off) or a number in (0, 1), got {recheck_tau!r}")
    if recheck_tau and not check_probe(probe_every):
        raise ValueError(f"recheck_tau={recheck_tau!r} needs a probe (probe_every > 0): the recheck "
                         "makes the next window a probe")
    return float(recheck_tau)


def uses_state(rule: str, probe_every: int = 0, sentinel: bool = False, hold: int = 0) -> bool:
    """Whether the gate carries state across windows (previous class, the probe's gap, the hold): the C++
    top level then has the ``prev_load``/``prev_cls`` (and, with a probe or the sentinel, ``prev_gap``; with a
    hold, ``prev_hold``) inputs and keeps the state itself between windows."""
    return uses_prev(rule) or check_probe(probe_every) > 0 or bool(sentinel) or check_hold(hold) > 0


def training_rule(gate: str) -> str:
    """The rule of the training-time soft gate for ``train.gate`` (``auto`` trains with the default)."""
    return DEFAULT_RULE if gate == AUTO else check_rule(gate)


def check_tau_interictal(tau_interictal, tau: float) -> float:
    """``tau_interictal`` as a float if it is in [0, ``tau``], else ValueError: the second threshold
    only ever lets the simple model keep more of its "interictal" answers."""
    t = float(tau_interictal)
    if not 0.0 <= t <= float(tau) + 1e-12:
        raise ValueError(f"tau_interictal must be in [0, tau={tau}], got {tau_interictal!r}")
    return t


def simple_is_final(simple_logits: np.ndarray, tau: float, rule: str,
                    prev_cls: Optional[np.ndarray] = None, gap: Optional[np.ndarray] = None,
                    probe_every: int = 0, sentinel: Optional[np.ndarray] = None,
                    sentinel_every: int = 1, held: Optional[np.ndarray] = None,
                    sentinel_interictal_only: bool = False, tau_interictal: Optional[float] = None) -> np.ndarray:
    """``(n,)`` bool: the simple model's answer is final on this window.

    Args:
        simple_logits: ``(n, 2)`` logits.
        tau: threshold in [0, 1].
        rule: one of :data:`GATE_RULES`.
        prev_cls: ``(n,)`` the previous window's final class; required unless ``rule`` is
            ``confidence``.
        gap: ``(n,)`` windows in a row before this one that the complex model did not see;
            required when ``probe_every > 0``.
        probe_every: the probe period ``P`` (0: no probe); ``gap >= P - 1`` routes the window.
        sentinel: ``(n,)`` bool, the sentinel was up (None: no sentinel); ``sentinel & (gap >=
            sentinel_every - 1)`` routes the window (needs ``gap``).
        held: ``(n,)`` windows the hold still routes (None: no hold); ``held > 0`` routes the window.
        sentinel_interictal_only: the sentinel routes only windows the simple model calls
            interictal (``z1 <= z0``).
        tau_interictal: the threshold on windows the simple model calls interictal (``d <= 0``);
            None: ``tau`` on both sides (module docstring, "Two thresholds").
    """
    z = np.asarray(simple_logits, np.float64)
    d = z[:, 1] - z[:, 0]
    thr = logit_threshold(tau)
    thr_i = thr if tau_interictal is None else logit_threshold(check_tau_interictal(tau_interictal, tau))
    if (check_probe(probe_every) or sentinel is not None) and gap is None:
        raise ValueError(f"probe_every={probe_every} or a sentinel needs gap")
    probe_ok = np.ones(len(d), bool) if not probe_every else np.asarray(gap).ravel() < probe_every - 1
    if sentinel is not None:
        asks = np.asarray(sentinel, bool).ravel() & (np.asarray(gap).ravel() >= sentinel_every - 1)
        probe_ok &= ~(asks & (d <= 0)) if sentinel_interictal_only else ~asks
    if held is not None:
        probe_ok &= np.asarray(held).ravel() == 0
    confident = (d > thr) | (-d > thr_i)
    if check_rule(rule) == "confidence":
        return confident & probe_ok
    if prev_cls is None:
        raise ValueError(f"gate rule {rule!r} needs prev_cls")
    prev = np.asarray(prev_cls).ravel()
    if rule == "confirm_changes":
        return confident & ((d > 0).astype(int) == prev) & probe_ok
    return (-d > thr_i) & (prev == 0) & probe_ok


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
                   rule: str = DEFAULT_RULE, record_ids: Optional[np.ndarray] = None,
                   start_s: Optional[np.ndarray] = None, probe_every: int = 0,
                   recheck_tau: float = 0.0, sentinel: Optional[np.ndarray] = None,
                   sentinel_every: int = 1, hold: int = 0, hold_max: int = 0,
                   sentinel_interictal_only: bool = False,
                   tau_interictal: Optional[float] = None, fuse: float = 0.0,
                   ictal_every: int = 1, ictal_after: str = "ceiling") -> dict[str, np.ndarray]:
    """Hard-gated cascade decisions.

    Args:
        simple_logits: ``(n, 2)`` logits of the simple model (on the deployed electrode).
        complex_logits: ``(n, 2)`` logits of the complex model (only read where routed).
        tau: confidence threshold in [0, 1].
        rule: one of :data:`GATE_RULES` (module docstring).
        record_ids, start_s: ``(n,)`` recording and start time of each window: windows are
            taken in time order within each recording, and ``prev`` never crosses recordings.
            Without them, the windows are one recording in the given order.
        probe_every: probe period ``P`` (module docstring); 0: no probe.
        recheck_tau: the recheck's ``tau_c`` (module docstring); 0: off. Needs a probe.
        sentinel: ``(n,)`` bool, the windows on which the sentinel is up
            (:func:`qcascade.sentinel.sentinel_up`); None: no sentinel.
        sentinel_every: the probe period while the sentinel is up (module docstring).
        sentinel_interictal_only: the sentinel routes only windows the simple model calls
            interictal (module docstring).
        hold: the hold ``H`` (module docstring); 0: off. Like the probe and the sentinel, off
            unless given: runs pass their deployment's (``train.gate_hold``, default
            :data:`DEFAULT_HOLD`).
        hold_max: the growing hold's ceiling ``M`` (module docstring); at most ``hold``: the fixed hold. Runs pass
            ``train.gate_hold_max`` (default :data:`DEFAULT_HOLD_MAX`).
        tau_interictal: the threshold where the simple model says interictal (module docstring,
            "Two thresholds"); None: ``tau``.
        fuse: late fusion (module docstring, "Fusion"): a routed window is decided on
            :func:`qcascade.gate_fixed.fused_difference`, and so are the recheck and the hold; 0: off.
        ictal_every: the ictal stride ``K`` (module docstring); 1: off. Needs a growing hold.
        ictal_after: from which hold it carries, ``"ceiling"`` or ``"grown"`` (:func:`ictal_min_held`).

    Returns:
        ``pred`` ``(n,) int64`` final class, ``routed`` ``(n,) bool`` (the complex model
        decided), ``prev_cls`` ``(n,) int64`` the final class of the previous window of the same
        recording (0 for a recording's first window), ``gap`` ``(n,) int64`` the windows in a
        row before this one that the complex model did not see (0 at a recording's start): what
        the C++ top level's state inputs get (``P - 1`` after a rechecked window), ``held``
        ``(n,) int64`` the windows the hold still routed when this one arrived (0 without a hold).
    """
    zs = np.asarray(simple_logits, np.float64)
    zc = np.asarray(complex_logits, np.float64)
    if zs.shape != zc.shape or zs.ndim != 2 or zs.shape[1] != 2:
        raise ValueError(f"expected two (n, 2) logit arrays, got {zs.shape} and {zc.shape}")
    # The complex path's answer, fused with the simple model's where fuse > 0: a difference, so the
    # recheck below reads -d_c as z0 - z1. Ties -> class 0, like the C++ `d > 0`.
    d_c = fused_difference(zs, zc, fuse)
    s_cls, c_cls = zs.argmax(1), (d_c > 0).astype(np.int64)
    n = len(zs)
    prev = np.zeros(n, np.int64)
    gap = np.zeros(n, np.int64)
    held = np.zeros(n, np.int64)
    probe = check_probe(probe_every)
    recheck = check_recheck(recheck_tau, probe)
    hold = check_hold(hold)
    ceiling = hold_ceiling(hold, hold_max)
    stride = check_ictal_every(ictal_every, hold, hold_max)
    min_held = ictal_min_held(hold, hold_max, ictal_after)
    order, first = _sequence_order(n, record_ids, start_s)
    if sentinel is not None:
        sentinel = np.asarray(sentinel, bool).ravel()
        if sentinel.shape != (n,):
            raise ValueError(f"sentinel must have shape ({n},), got {sentinel.shape}")
        if not 1 <= int(sentinel_every) <= MAX_PROBE:
            raise ValueError(f"sentinel_every must be in [1, {MAX_PROBE}], got {sentinel_every}")
    if sentinel is not None and sentinel_interictal_only:
        sentinel = sentinel & (s_cls == 0)
    up = sentinel.tolist() if sentinel is not None else [False] * n
    if not uses_state(rule, probe, hold=hold) and sentinel is None:  # (no hold: no stride either)
        routed = ~simple_is_final(zs, tau, rule, tau_interictal=tau_interictal)
        pred = np.where(routed, c_cls, s_cls).astype(np.int64)
        prev[order[1:]] = np.where(first[1:], 0, pred[order[:-1]])
        gap = _gaps(routed, order, first)
        return {"pred": pred, "routed": routed, "prev_cls": prev, "gap": gap, "held": held}
    # Sequential: each decision depends on the last. The rule without the probe is evaluated for
    # both values of prev at once (vectorised), then the walk only picks one per window.
    final_if = {p: simple_is_final(zs, tau, rule, np.full(n, p) if uses_prev(rule) else None,
                                   tau_interictal=tau_interictal) for p in (0, 1)}
    routed = np.zeros(n, bool)
    pred = np.zeros(n, np.int64)
    # The complex model's unsure "interictal" answers (float64 differences of fixed-point logits are
    # exact, so this strict comparison is the C++ one against quantize_recheck's constant).
    unsure = ((d_c <= 0) & (-d_c < logit_threshold(recheck))).tolist() if recheck \
        else [False] * n
    # Windows that restart the hold if routed: the complex model may say ictal where the simple did not.
    s_ictal = (s_cls == 1).tolist()
    c_ictal = (c_cls == 1).tolist()
    last, g, h = 0, 0, 0
    for pos, i in enumerate(order.tolist()):
        if first[pos]:
            last, g, h = 0, 0, 0
        prev[i], gap[i], held[i] = last, g, h
        carried = last == 1 and h >= min_held and g < stride - 1  # never with stride 1: g >= 0
        r = not carried and (not final_if[last][i] or (probe > 0 and g >= probe - 1)
                             or (up[i] and g >= sentinel_every - 1) or h > 0)
        routed[i] = r
        # Saturates like the C++ 16-bit counter; every period is <= MAX_PROBE, so no decision changes.
        g = min(g + 1, MAX_PROBE) if not r else probe - 1 if unsure[i] else 0
        if not carried:
            h = min(ceiling, max(hold, h + 1)) if r and c_ictal[i] and not s_ictal[i] else max(h - 1, 0)
        last = 1 if carried else int(c_cls[i] if r else s_cls[i])
        pred[i] = last
    return {"pred": pred, "routed": routed, "prev_cls": prev, "gap": gap, "held": held}


def _gaps(routed: np.ndarray, order: np.ndarray, first: np.ndarray) -> np.ndarray:
    """``(n,)`` windows in a row before each one (same recording) that were not routed."""
    gap = np.zeros(len(routed), np.int64)
    g = 0
    for pos, i in enumerate(order.tolist()):
        g = 0 if first[pos] else g
        gap[i] = g
        g = 0 if routed[i] else min(g + 1, MAX_PROBE)
    return gap


def cascade_predict(simple_logits: np.ndarray, complex_logits: np.ndarray, tau: float,
                    **kw) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, routed)`` of :func:`cascade_decide` (same arguments)."""
    out = cascade_decide(simple_logits, complex_logits, tau, **kw)
    return out["pred"], out["routed"]
