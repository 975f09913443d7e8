"""Replay the gate with a backoff on the simple model's rejected "ictal" proposals, on stored test logits.

Under ``confirm_changes`` every window on which the simple model says ictal while the final class of
the previous window is interictal (a *proposal*) goes to the complex model. Where the simple model
keeps calling an artefact or its patient's background ictal, the complex model rejects the same
proposal window after window, and each rejection costs a full complex-model window. The backoff
(round 47 of docs/generalisation.md) routes only some of the proposals that follow a rejection; the
others keep the interictal state without the complex model:

* ``counter="proposals"``: after a rejected proposal, only every ``B``-th proposal of the run is
  routed (the ``B - 1`` in between are not);
* ``counter="gap"`` (one 8-bit counter and the gate's existing ``gap``, as the C++ top level would
  hold it): while in doubt, a proposal is routed only when ``gap >= B - 1``.

The doubt ends when the final class is ictal (the complex model accepted) or after ``reset``
windows in a row that the simple model calls interictal. Unsure and confident proposals are treated
alike; windows routed for another reason (sentinel, probe, hold) are routed as deployed. ``B = 1``
is the deployed gate and must reproduce each fold's stored decisions, or the replay refuses the fold.
tau (and ``tau_interictal``) stay as deployed: the replay does not recalibrate them::

    python -m bench.replay_backoff RUN/ID1/ID1 RUN/ID2/ID2 ... --periods 1 2 4 8 --reset 4
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from bench import exit_code
from bench.replay_fold_choice import unit_fold_dirs
from bench.replay_gate_hold import deployed_gate
from qcascade.errors import DataError
from qcascade.evaluation import hidden_events
from qcascade.gate import MAX_PROBE, _sequence_order, check_probe, hold_ceiling, simple_is_final, uses_prev

COUNTERS = ("proposals", "gap")


def backoff_walk(simple_logits: np.ndarray, complex_logits: np.ndarray, tau: float, *, rule: str,
                 record_ids: np.ndarray, start_s: np.ndarray, period: int, reset: int = 4,
                 counter: str = "proposals", probe_every: int = 0, sentinel: Optional[np.ndarray] = None,
                 sentinel_every: int = 1, sentinel_interictal_only: bool = False, hold: int = 0,
                 hold_max: int = 0, tau_interictal: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, routed)``, both ``(n,)``: :func:`qcascade.gate.cascade_decide` (no recheck) with the
    backoff of period ``period`` (1: none) on ``(n, 2)`` simple and complex logits."""
    if period < 1 or reset < 1 or counter not in COUNTERS:
        raise ValueError(f"period and reset must be >= 1 and counter one of {COUNTERS}, got {period}, {reset}, {counter!r}")
    zs, zc = np.asarray(simple_logits, np.float64), np.asarray(complex_logits, np.float64)
    s_cls, c_cls = zs.argmax(1), zc.argmax(1)
    n = len(zs)
    order, first = _sequence_order(n, record_ids, start_s)
    final_if = {p: simple_is_final(zs, tau, rule, np.full(n, p) if uses_prev(rule) else None,
                                   tau_interictal=tau_interictal) for p in (0, 1)}
    up = np.zeros(n, bool) if sentinel is None else np.asarray(sentinel, bool).copy()
    if sentinel_interictal_only:
        up &= s_cls == 0
    probe, ceiling = check_probe(probe_every), hold_ceiling(hold, hold_max)
    routed, pred = np.zeros(n, bool), np.zeros(n, np.int64)
    last = gap = held = doubt = count = quiet = 0
    for pos, i in enumerate(order.tolist()):
        if first[pos]:
            last = gap = held = doubt = count = quiet = 0
        other = (probe > 0 and gap >= probe - 1) or (up[i] and gap >= sentinel_every - 1) or held > 0
        proposal = last == 0 and s_cls[i] == 1
        r = not final_if[last][i] or other
        waits = count % period != 0 if counter == "proposals" else gap < period - 1
        skipped = r and not other and proposal and doubt > 0 and waits
        r = r and not skipped
        routed[i] = r
        gap = min(gap + 1, MAX_PROBE) if not r else 0
        held = min(ceiling, max(hold, held + 1)) if r and c_cls[i] == 1 and s_cls[i] == 0 else max(held - 1, 0)
        cur = 0 if skipped else int(c_cls[i] if r else s_cls[i])
        if proposal and cur == 0 and (r or skipped):  # rejected or skipped: the doubt goes on
            doubt, count, quiet = 1, count + 1, 0
        elif cur == 1:
            doubt = count = quiet = 0
        elif s_cls[i] == 0 and doubt:
            quiet += 1
            if quiet >= reset:
                doubt = count = quiet = 0
        last = cur
        pred[i] = cur
    return pred, routed


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    tp, fp, fn = (int(np.sum((p == a) & (y == b))) for a, b in ((1, 1), (1, 0), (0, 1)))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def replay_unit(unit_dir: Path, periods: Sequence[int], reset: int = 4, counter: str = "proposals") -> dict:
    """Pooled test F1, routing, MACs ratio and hidden events of the cascade per period over a unit's folds.

    Returns:
        ``{"complex_only_f1", "periods": {B: {"f1", "routing", "macs_ratio", "hidden"}}}``; ``hidden``
        counts the seizures complex-only detects that the cascade misses (SzCORE events).

    Raises:
        DataError: a fold whose gate uses the recheck (not replayed), or whose stored decisions the
            deployed gate (``B = 1``) does not reproduce (naming the file).
    """
    ys, co_cls, every, cx = [], [], [], []
    by = {b: {"pred": [], "routed": [], "hidden": 0} for b in periods}
    for d in unit_fold_dirs(Path(unit_dir)):
        dep, z, kw = deployed_gate(d)
        sen = dep.get("sentinel")
        kw.update(sentinel_interictal_only=bool((sen or {}).get("interictal_only", False)),
                  hold=int(dep.get("hold", 0)), hold_max=int(dep.get("hold_max", 0)),
                  tau_interictal=dep.get("tau_interictal"), reset=reset, counter=counter)
        pred, routed = backoff_walk(z["simple"], z["complex"], float(dep["tau"]), period=1, **kw)
        if not (np.array_equal(pred, z["pred"]) and np.array_equal(routed, z["routed"])):
            raise DataError(f"{d / 'test_logits.npz'}: the replayed gate does not reproduce the stored decisions")
        y = np.asarray(z["y"]).astype(int)
        ref = np.asarray(z["complex_only"] if "complex_only" in z.files else z["complex"]).argmax(1)
        for b in periods:
            pred, routed = backoff_walk(z["simple"], z["complex"], float(dep["tau"]), period=b, **kw)
            by[b]["pred"].append(pred)
            by[b]["routed"].append(routed)
            by[b]["hidden"] += hidden_events(y, pred, ref, z["start_s"], z["record_ids"])["n_missed_but_reference_detected"]
        ys.append(y)
        co_cls.append(ref)
        every.append(np.full(len(y), float(dep.get("macs_simple", 0)) + (float(sen.get("ops", 0)) if sen else 0.0)))
        cx.append(np.full(len(y), float(dep.get("macs_complex", 1))))
    if not ys:
        raise DataError(f"{unit_dir}: no fold with deploy/deploy.json and test_logits.npz")
    y, every, cx = np.concatenate(ys), np.concatenate(every), np.concatenate(cx)
    out = {}
    for b, v in by.items():
        routed = np.concatenate(v["routed"])
        out[b] = {"f1": _f1(y, np.concatenate(v["pred"])), "routing": float(routed.mean()),
                  "macs_ratio": float(cx.sum() / (every + routed * cx).sum()), "hidden": int(v["hidden"]),
                  "n": len(y), "macs": float((every + routed * cx).sum()), "complex_macs": float(cx.sum())}
    return {"complex_only_f1": _f1(y, np.concatenate(co_cls)), "periods": out}


def _run(args) -> int:
    periods = sorted(set(args.periods) | {1})
    results = {u: replay_unit(Path(u), periods, args.reset, args.counter) for u in args.units}  # all read first
    print(f"Backoff counter {args.counter}, reset after {args.reset} simple-interictal windows; "
          "cells: cascade F1 / routing / MACs ratio / hidden events\n")
    print("| unit | complex-only F1 | " + " | ".join(f"B = {b}" for b in periods) + " |")
    print("|---" * (len(periods) + 2) + "|")
    for unit, res in results.items():
        cells = [f"{c['f1']:.3f} / {c['routing']:.3f} / {c['macs_ratio']:.1f} / {c['hidden']}"
                 for c in (res["periods"][b] for b in periods)]
        print(f"| {unit} | {res['complex_only_f1']:.3f} | " + " | ".join(cells) + " |")
    cells = []
    for b in periods:
        rows = [res["periods"][b] for res in results.values()]
        # As bench.bench_stress: the ratio of the units' mean MACs per window, each unit weighted alike.
        macs_ratio = np.mean([r["complex_macs"] / r["n"] for r in rows]) / np.mean([r["macs"] / r["n"] for r in rows])
        cells.append(f"{np.mean([r['f1'] for r in rows]):.3f} / {np.mean([r['routing'] for r in rows]):.3f} / "
                     f"{macs_ratio:.2f} / {sum(r['hidden'] > 0 for r in rows)} units")
    print("| all (means over units; MACs ratio of the mean MACs; units with a hidden event) | | " + " | ".join(cells) + " |")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Replay the gate with a backoff on rejected simple-model proposals.")
    ap.add_argument("units", nargs="+", help="finished unit folders (RUN/<patient>/<patient>)")
    ap.add_argument("--periods", nargs="+", type=_positive, default=[1, 2, 4, 8])
    ap.add_argument("--reset", type=_positive, default=4, help="simple-interictal windows in a row that end the doubt")
    ap.add_argument("--counter", choices=COUNTERS, default="proposals")
    args = ap.parse_args(argv)
    return exit_code(lambda: _run(args))


if __name__ == "__main__":
    raise SystemExit(main())
