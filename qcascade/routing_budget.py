"""``train.tau_routing_budget``: a cheaper tau than the calibrated one where that one routes more than
the budget of the validation windows and the cheaper one hides no validation seizure.

:func:`step_calibrate <qcascade.steps_eval.step_calibrate>` calls :func:`apply_routing_budget` after
the probe period and the gate are chosen (:mod:`qcascade.steps_choose`); ``deploy.json`` keeps its
record under ``choices.routing_budget`` and ``bench.replay_gate_settings`` replays it
(docs/calibration.md, "A routing budget").
"""

from __future__ import annotations

import numpy as np

from qcascade.steps_choose import hidden_on

__all__ = ["apply_routing_budget", "least_routing_safe_tau"]


def apply_routing_budget(tau: float, sweep: list, budget: float, max_f1_loss: float, decide, va,
                         reference_logits: np.ndarray, fallback: str = "off") -> tuple[float, dict]:
    """``train.tau_routing_budget``: the tau to deploy instead of the calibrated ``tau``, and the record.

    Where ``tau`` routes more than ``budget`` of the validation windows, the sweep's best-F1 tau
    within the budget (:func:`qcascade.training.tau.within_budget`) replaces it, unless at that tau
    the cascade hides a validation seizure that the reference detects, or its validation F1 is more
    than ``max_f1_loss`` below ``tau``'s. A validation seizure that only a high tau finds is the
    insurance the calibration bought; one that a cheaper tau finds too is not
    (docs/calibration.md, "A routing budget"). With ``fallback="least_routing"``, a refused
    candidate is followed by :func:`least_routing_safe_tau`.

    Args:
        tau: the calibrated tau; sweep: its validation sweep (rows of ``tau``, ``routing_rate``, ``f1``).
        budget: the validation routing budget (0: off).
        max_f1_loss: the largest validation F1 drop allowed for the cheaper tau.
        decide: ``tau -> cascade_decide(...)`` on the validation windows with the deployed gate.
        va: the validation windows; reference_logits: ``(n_val, 2)`` complex-only's logits on them.
        fallback: ``train.tau_routing_budget_fallback`` (``off`` or ``least_routing``).

    Returns:
        ``(tau to deploy, record)``; the record is empty when the budget is off (``exceeded``: ``tau``
        routes past the budget; ``applied``: the budget's tau replaced it; ``fallback``: its mode
        and, where it ran, the tau it found and whether that one replaced it).
    """
    from qcascade.training.tau import within_budget

    if not budget:
        return tau, {}
    if fallback not in ("off", "least_routing"):
        raise ValueError(f"apply_routing_budget: fallback must be off or least_routing, got {fallback!r}")
    rows = {r["tau"]: r for r in sweep}
    common = {"budget": budget, "max_f1_loss": max_f1_loss, "calibrated_tau": tau, "fallback": {"mode": fallback}}
    if rows[tau]["routing_rate"] <= budget + 1e-12:
        return tau, {**common, "tau": tau, "applied": False, "exceeded": False,
                     "reason": f"tau {tau:g} routes {rows[tau]['routing_rate']:.3f} of validation, within the budget"}
    cheaper = within_budget(tau, sweep, budget)
    if cheaper == tau:  # the calibrated tau already routes the least
        return tau, {**common, "tau": tau, "applied": False, "exceeded": True,
                     "reason": f"tau {tau:g} routes {rows[tau]['routing_rate']:.3f} of validation, no tau routes less"}
    reference = np.asarray(reference_logits).argmax(1)
    hidden = hidden_on(va, decide(cheaper)["pred"], reference)
    f1, f1_cheaper = rows[tau]["f1"] or 0.0, rows[cheaper]["f1"] or 0.0
    if hidden["n_missed_but_reference_detected"]:
        why = f"tau {cheaper:g} hides {hidden['n_missed_but_reference_detected']} validation seizure(s)"
    elif f1 - f1_cheaper > max_f1_loss + 1e-12:
        why = f"tau {cheaper:g} loses {f1 - f1_cheaper:.3f} of validation F1 (more than {max_f1_loss:g})"
    else:
        why = ""
    chosen = tau if why else cheaper
    rec = {**common, "candidate_tau": cheaper, "tau": chosen, "applied": not why, "exceeded": True,
           "routing_rate": {"calibrated": rows[tau]["routing_rate"], "candidate": rows[cheaper]["routing_rate"]},
           "f1": {"calibrated": f1, "candidate": f1_cheaper},
           "hidden_val": int(hidden["n_missed_but_reference_detected"]),
           "reason": why or f"tau {tau:g} routes {rows[tau]['routing_rate']:.3f} of validation (budget "
                            f"{budget:g}); tau {cheaper:g} routes {rows[cheaper]['routing_rate']:.3f}, "
                            f"hides no validation seizure, F1 {f1:.3f} -> {f1_cheaper:.3f}"}
    if why and fallback == "least_routing":
        safe = least_routing_safe_tau(tau, sweep, max_f1_loss, decide, va, reference)
        rec["fallback"] = {"mode": fallback, "tau": safe, "applied": safe is not None}
        if safe is not None:
            rec["tau"] = safe
            rec["fallback"].update(routing_rate=rows[safe]["routing_rate"], f1=rows[safe]["f1"] or 0.0)
            rec["reason"] = (f"{why}; fallback: tau {safe:g} routes {rows[safe]['routing_rate']:.3f} of validation "
                             f"(calibrated {rows[tau]['routing_rate']:.3f}), hides no validation seizure, F1 "
                             f"{f1:.3f} -> {rows[safe]['f1'] or 0.0:.3f}")
            return safe, rec
        rec["reason"] = f"{why}; fallback: every tau routing less hides a validation seizure or loses too much F1"
    return chosen, rec


def least_routing_safe_tau(tau: float, sweep: list, max_f1_loss: float, decide, va,
                           reference_pred: np.ndarray) -> float | None:
    """``train.tau_routing_budget_fallback: least_routing``: the sweep's least-routing tau that routes
    less than ``tau`` on validation, hides no validation seizure the reference detects and loses at
    most ``max_f1_loss`` of validation F1 against ``tau`` (ties: better F1, then the smaller tau).

    Args:
        tau: the calibrated tau; sweep: its validation sweep.
        max_f1_loss: the largest validation F1 drop allowed.
        decide: ``tau -> cascade_decide(...)`` on the validation windows with the deployed gate.
        va: the validation windows; reference_pred: ``(n_val,)`` complex-only's classes on them.

    Returns:
        The tau, or None where none qualifies.
    """
    rows = {r["tau"]: r for r in sweep}
    r_cal, f1_cal = rows[tau]["routing_rate"], rows[tau]["f1"] or 0.0
    for r in sorted(sweep, key=lambda r: (r["routing_rate"], -(r["f1"] or 0.0), r["tau"])):
        if r["routing_rate"] >= r_cal - 1e-12:
            return None
        if (r["f1"] or 0.0) < f1_cal - max_f1_loss - 1e-12:
            continue
        if not hidden_on(va, decide(r["tau"])["pred"], reference_pred)["n_missed_but_reference_detected"]:
            return r["tau"]
    return None
