"""Replay the gate with other ``hold`` values on the stored test logits of finished runs.

``hold`` (docs/generalisation.md, round 26): after a routed window on which the complex model says
ictal and the simple model said interictal, the next ``H`` windows are routed too, so a single
interictal answer of the complex model inside a seizure that the simple model cannot see does not
end the complex model's tracking of it. Everything else is the deployed gate of each fold
(``deploy/deploy.json``: rule, tau, probe, sentinel). The deployed hold must reproduce the stored
decisions exactly, or the replay refuses the fold. ``--sentinel-interictal-only on|off`` replays
every hold with the sentinel routing only windows the simple model calls interictal, or every
window while up (round 29); the default is each fold's deployed setting. Every hold grows up to the
deployed ``hold_max`` (round 36; runs from before it: the fixed hold)::

    python -m bench.replay_gate_hold RUN/ID6/ID6 [RUN/ID1/ID1 ...] --holds 0 2 4 8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from bench import exit_code
from bench.replay_fold_choice import unit_fold_dirs
from qcascade.errors import DataError
from qcascade.gate import MAX_PROBE, _sequence_order, simple_is_final, uses_prev


def hold_walk(simple_logits: np.ndarray, complex_logits: np.ndarray, tau: float, *, rule: str,
              record_ids: np.ndarray, start_s: np.ndarray, hold: int, probe_every: int = 0,
              sentinel: Optional[np.ndarray] = None, sentinel_every: int = 1,
              sentinel_interictal_only: bool = False, hold_max: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, routed)``, both ``(n,)``, of :func:`qcascade.gate.cascade_decide` (no recheck) with
    the hold ``hold``, growing up to ``hold_max`` (at most ``hold``: the fixed hold)."""
    ceiling = max(hold, hold_max) if hold else 0
    zs, zc = np.asarray(simple_logits, np.float64), np.asarray(complex_logits, np.float64)
    s_cls, c_cls = zs.argmax(1), zc.argmax(1)
    n = len(zs)
    order, first = _sequence_order(n, record_ids, start_s)
    final_if = {p: simple_is_final(zs, tau, rule, np.full(n, p)) if uses_prev(rule) else simple_is_final(zs, tau, rule)
                for p in (0, 1)}
    up = np.zeros(n, bool) if sentinel is None else np.asarray(sentinel, bool)
    routed, pred = np.zeros(n, bool), np.zeros(n, np.int64)
    last = gap = held = 0
    for pos, i in enumerate(order.tolist()):
        if first[pos]:
            last = gap = held = 0
        r = (not final_if[last][i] or (probe_every > 0 and gap >= probe_every - 1)
             or (up[i] and gap >= sentinel_every - 1 and not (sentinel_interictal_only and s_cls[i] == 1))
             or held > 0)
        routed[i] = r
        gap = min(gap + 1, MAX_PROBE) if not r else 0
        held = min(ceiling, max(hold, held + 1)) if r and c_cls[i] == 1 and s_cls[i] == 0 else max(held - 1, 0)
        last = int(c_cls[i] if r else s_cls[i])
        pred[i] = last
    return pred, routed


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    tp, fp, fn = (int(np.sum((p == a) & (y == b))) for a, b in ((1, 1), (1, 0), (0, 1)))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def deployed_gate(fold_dir: Path) -> tuple[dict, dict, dict]:
    """``(deploy.json, test_logits.npz, gate keywords)`` of one fold: the keywords (rule, recordings, probe,
    sentinel) of the walks here and in :mod:`bench.replay_backoff`.

    Raises:
        DataError: its ``deploy.json`` is not JSON, or the fold's gate uses the recheck, which the
            walks do not model.
    """
    path = fold_dir / "deploy" / "deploy.json"
    try:
        dep = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot be read as JSON ({e})") from None
    if dep.get("recheck_tau"):
        raise DataError(f"{fold_dir / 'deploy' / 'deploy.json'}: the gate uses the recheck, which this replay does not model")
    z = np.load(fold_dir / "test_logits.npz")
    sen = dep.get("sentinel")
    kw = dict(rule=dep.get("gate", "confidence"), record_ids=z["record_ids"], start_s=z["start_s"],
              probe_every=int(dep.get("probe_every") or 0), sentinel=z["sentinel"] if sen else None,
              sentinel_every=int(sen["every"]) if sen else 1)
    return dep, z, kw


def replay_unit(unit_dir: Path, holds: Sequence[int], sentinel_interictal_only: Optional[bool] = None) -> dict:
    """Pooled test F1 and routing of the cascade per hold, and complex-only F1, over a unit's folds.

    ``sentinel_interictal_only``: the setting every hold is replayed with; None: each fold's
    deployed one (``deploy.json`` ``sentinel.interictal_only``, False before round 29).

    Raises:
        DataError: a fold whose gate uses the recheck (not replayed), or whose stored decisions
            its deployed hold does not reproduce (naming the file).
    """
    ys, complex_cls, by_hold = [], [], {h: ([], []) for h in holds}
    for d in unit_fold_dirs(Path(unit_dir)):
        dep, z, kw = deployed_gate(d)
        sen = dep.get("sentinel")
        deployed = int(dep.get("hold", 0))
        kw["hold_max"] = int(dep.get("hold_max", 0))  # every hold replayed grows to the deployed ceiling
        deployed_only = bool((sen or {}).get("interictal_only", False))
        pred, routed = hold_walk(z["simple"], z["complex"], float(dep["tau"]), hold=deployed,
                                 sentinel_interictal_only=deployed_only, **kw)
        if not (np.array_equal(pred, z["pred"]) and np.array_equal(routed, z["routed"])):
            raise DataError(f"{d / 'test_logits.npz'}: the replayed gate does not reproduce the stored decisions")
        only = deployed_only if sentinel_interictal_only is None else bool(sentinel_interictal_only)
        for h in holds:
            pred, routed = hold_walk(z["simple"], z["complex"], float(dep["tau"]), hold=h,
                                     sentinel_interictal_only=only, **kw)
            by_hold[h][0].append(pred)
            by_hold[h][1].append(routed)
        ys.append(z["y"])
        complex_cls.append(np.asarray(z["complex"]).argmax(1))
    y = np.concatenate(ys)
    return {"complex_only_f1": _f1(y, np.concatenate(complex_cls)),
            "holds": {h: {"f1": _f1(y, np.concatenate(p)), "routing": float(np.concatenate(r).mean())}
                      for h, (p, r) in by_hold.items()}}


def _run(args) -> int:
    holds = sorted(set(args.holds))
    only = {"deployed": None, "on": True, "off": False}[args.sentinel_interictal_only]
    results = {unit: replay_unit(Path(unit), holds, only) for unit in args.units}  # every unit read before any output
    print("| unit | complex-only F1 | " + " | ".join(f"H = {h}: F1 / routing" for h in holds) + " |")
    print("|---" * (len(holds) + 2) + "|")
    for unit, res in results.items():
        cells = [f"{res['holds'][h]['f1']:.3f} / {res['holds'][h]['routing']:.3f}" for h in holds]
        print(f"| {unit} | {res['complex_only_f1']:.3f} | " + " | ".join(cells) + " |")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Replay the gate with a hold on stored test logits.")
    ap.add_argument("units", nargs="+", help="finished unit folders (RUN/<patient>/<patient>)")
    ap.add_argument("--holds", nargs="+", type=int, default=[0, 2, 4, 8])
    ap.add_argument("--sentinel-interictal-only", choices=["deployed", "on", "off"], default="deployed",
                    help="replay with the sentinel on simple-interictal windows only (on), on every window "
                    "while up (off), or as each fold deployed it")
    args = ap.parse_args(argv)
    return exit_code(lambda: _run(args))


if __name__ == "__main__":
    raise SystemExit(main())
