"""The keyword arguments of :func:`qcascade.gate.cascade_decide` for a gate on a window set.

Calibration, evaluation, the fit gap, the C simulation and the long-term bench all walk the gate
over a window set (its windows' recordings and start times, and the sentinel over its inputs).
"""

from __future__ import annotations

import numpy as np

from qcascade.artifacts import Deployment


def gate_rule(rule: str | None, ws, probe_every: int = 0, recheck_tau: float = 0.0, sentinel_up=None,
              sentinel_every: int = 1, hold: int = 0, sentinel_interictal_only: bool = False, *,
              hold_max: int = 0, tau_interictal: float | None = None, fuse: float = 0.0, ictal_every: int = 1,
              ictal_after: str = "ceiling") -> dict:
    """Keyword arguments of ``qcascade.gate.cascade_decide`` for gate ``rule`` on window set ``ws``.

    ``rule`` is :attr:`Deployment.gate <qcascade.artifacts.Deployment.gate>`, ``probe_every`` and
    ``recheck_tau``, ``hold``, ``hold_max`` and ``tau_interictal`` its own; None means the textbook ``confidence`` gate. ``sentinel_up``: ``(n,)``
    bool, the sentinel on ``ws`` (:func:`sentinel_on`), None without it; ``sentinel_interictal_only``: it
    routes only windows the simple model calls interictal; ``fuse``: the late fusion (:mod:`qcascade.gate`);
    ``ictal_every``: the ictal stride, which rides on a growing hold: 1 for a variant without one;
    ``ictal_after``: from which hold it carries.
    """
    return {"rule": rule or "confidence", "record_ids": ws.record_ids, "start_s": ws.start_s,
            "probe_every": int(probe_every or 0), "recheck_tau": float(recheck_tau or 0.0),
            "sentinel": sentinel_up, "sentinel_every": int(sentinel_every), "hold": int(hold or 0),
            "hold_max": int(hold_max or 0), "tau_interictal": None if tau_interictal is None else float(tau_interictal),
            "sentinel_interictal_only": bool(sentinel_interictal_only) and sentinel_up is not None,
            "fuse": float(fuse or 0.0),
            "ictal_every": int(ictal_every) if hold and int(hold_max or 0) > int(hold) else 1,
            "ictal_after": str(ictal_after)}


def sentinel_on(ws, spec, quant) -> np.ndarray:
    """``(n,)`` bool: the gate's sentinel on window set ``ws`` (its windows in time order per recording)."""
    from qcascade.sentinel import sentinel_up

    return sentinel_up(ws.X, ws.record_ids, ws.start_s, spec, quant.input_bits, quant.input_int_bits)


def deployed_gate(dep: Deployment, ws, quant, sentinel_up=None) -> dict:
    """:func:`gate_rule` of the deployed gate on ``ws``; the sentinel is computed unless given."""
    if not dep.sentinel:
        return gate_rule(dep.gate, ws, dep.probe_every, dep.recheck_tau, hold=dep.hold, hold_max=dep.hold_max,
                         tau_interictal=dep.tau_interictal, fuse=dep.fuse, ictal_every=dep.ictal_every,
                         ictal_after=dep.ictal_after)
    if sentinel_up is None:
        from qcascade.sentinel import SentinelSpec

        sentinel_up = sentinel_on(ws, SentinelSpec.from_dict(dep.sentinel), quant)
    # Deployments written before the key existed have no "interictal_only": their sentinel routed every window.
    return gate_rule(dep.gate, ws, dep.probe_every, dep.recheck_tau, sentinel_up, dep.sentinel["every"], dep.hold,
                     bool(dep.sentinel.get("interictal_only", False)), hold_max=dep.hold_max,
                     tau_interictal=dep.tau_interictal, fuse=dep.fuse, ictal_every=dep.ictal_every,
                         ictal_after=dep.ictal_after)
