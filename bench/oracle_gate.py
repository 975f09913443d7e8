"""The least routing any gate could get away with, on the stored test logits of finished runs.

An *oracle gate* knows the labels. It routes only windows that the simple model gets wrong and
the complex model gets right, so every routed window mends one error, and it stops as soon as the
cascade meets issue 11's done-when against the unit's own models:

1. every seizure event that complex-only detects is detected (a window of the event that complex
   alone calls ictal is routed, the earliest first);
2. pooled cascade F1 >= max(simple-only F1, complex-only F1) - ``tolerance`` (0.02), mending one
   window at a time, whichever of a missed ictal window or a false alarm raises F1 more.

Its routing is a lower bound for any real gate with these two models: a real gate cannot tell
which windows are wrong. Where even the oracle fails 10x fewer MACs than complex-only, no gate
can pass that criterion without better models; where the oracle passes and the deployed gate
fails, the gap is the price of not knowing. Every window costs the simple model's MACs (the oracle
needs no sentinel), a routed one the complex model's too, as in ``step_evaluate``::

    python -m bench.oracle_gate RUN/ID1/ID1 RUN/ID2/ID2 ...

Measured in round 33 of docs/generalisation.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from bench import exit_code
from bench.replay_fold_choice import unit_fold_dirs
from qcascade.evaluation import hidden_events

#: Issue 11's done-when: cascade F1 >= max(simple-only, complex-only) - this.
TOLERANCE = 0.02


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2.0 * tp / (2 * tp + fp + fn) if tp else 0.0


def _load(dirs: Sequence[Path]) -> dict:
    """Pooled test arrays of a unit's folds; ``fold`` says which fold a window came from."""
    parts = {k: [] for k in ("y", "simple", "simple_d", "complex_only", "pred", "routed", "start_s", "record_ids",
                             "fold")}
    macs = []
    for k, d in enumerate(dirs):
        t = np.load(d / "test_logits.npz")
        dep = json.loads((d / "deploy" / "deploy.json").read_text())
        parts["y"].append(t["y"].astype(bool))
        parts["simple"].append(t["simple"][:, 1] > t["simple"][:, 0])
        parts["simple_d"].append(t["simple"][:, 1].astype(np.float64) - t["simple"][:, 0])
        parts["complex_only"].append(t["complex_only"][:, 1] > t["complex_only"][:, 0])
        parts["routed"].append(t["routed"].astype(bool))
        parts["pred"].append(t["pred"].astype(bool))
        parts["start_s"].append(t["start_s"])
        parts["record_ids"].append(np.asarray([f"{k}:{r}" for r in t["record_ids"]]))  # folds never share a record
        parts["fold"].append(np.full(len(t["y"]), k))
        macs.append((float(dep["macs_simple"]), float(dep["macs_complex"])))
    if len(set(macs)) != 1:
        raise ValueError(f"{dirs[0]}: folds with different model costs {sorted(set(macs))}")
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["macs_simple"], out["macs_complex"] = macs[0]
    return out


def oracle_routing(y: np.ndarray, simple: np.ndarray, complex_only: np.ndarray, start_s: np.ndarray,
                   record_ids: np.ndarray, tolerance: float = TOLERANCE) -> dict:
    """The oracle gate over pooled test windows.

    Args:
        y, simple, complex_only: ``(n,)`` bool labels and the two models' decisions.
        start_s, record_ids: ``(n,)`` window start and recording, for the seizure events.
        tolerance: the F1 the cascade may lose against the better model.

    Returns:
        ``{"routed": (n,) bool or None (no oracle reaches the target), "target_f1",
        "simple_f1", "complex_only_f1", "cascade_f1"}``.
    """
    y, s, c = (np.asarray(a, bool) for a in (y, simple, complex_only))
    routed = np.zeros(len(y), bool)
    pred = s.copy()
    # 1. No hidden event: route the earliest window complex alone calls ictal in each event it would hide.
    missed = hidden_events(y, pred, c, start_s, record_ids)["missed"]
    for m in missed:
        inside = np.flatnonzero((record_ids == m["record"]) & (start_s >= m["onset_s"] - 1e-9)
                                & (start_s < m["offset_s"]) & c & y)
        if not len(inside):  # complex-only detects it only inside SzCORE's tolerances around the event
            inside = np.flatnonzero((record_ids == m["record"]) & c & (start_s < m["offset_s"] + 60.0)
                                    & (start_s >= m["onset_s"] - 30.0))
        k = inside[np.argmin(start_s[inside])]
        routed[k], pred[k] = True, c[k]
    if hidden_events(y, pred, c, start_s, record_ids)["n_missed_but_reference_detected"]:
        return {"routed": None}
    # 2. F1: mend one error at a time.
    fs = _f1(int(np.sum(s & y)), int(np.sum(s & ~y)), int(np.sum(~s & y)))
    fc = _f1(int(np.sum(c & y)), int(np.sum(c & ~y)), int(np.sum(~c & y)))
    target = max(fs, fc) - tolerance
    mend_fn = list(np.flatnonzero(~pred & y & c & ~routed))
    mend_fp = list(np.flatnonzero(pred & ~y & ~c & ~routed))
    tp, fp, fn = int(np.sum(pred & y)), int(np.sum(pred & ~y)), int(np.sum(~pred & y))
    while _f1(tp, fp, fn) < target:
        gain_fn = _f1(tp + 1, fp, fn - 1) if mend_fn else -1.0
        gain_fp = _f1(tp, fp - 1, fn) if mend_fp else -1.0
        if gain_fn < 0 and gain_fp < 0:
            return {"routed": None, "target_f1": target, "simple_f1": fs, "complex_only_f1": fc}
        if gain_fn >= gain_fp:
            k = mend_fn.pop()
            tp, fn = tp + 1, fn - 1
        else:
            k = mend_fp.pop()
            fp -= 1
        routed[k], pred[k] = True, c[k]
    return {"routed": routed, "target_f1": target, "simple_f1": fs, "complex_only_f1": fc,
            "cascade_f1": _f1(tp, fp, fn)}


def hidden_inside(y: np.ndarray, pred: np.ndarray, complex_only: np.ndarray, start_s: np.ndarray,
                  record_ids: np.ndarray) -> dict:
    """Seizures complex-only detects and the cascade misses (SzCORE, :func:`qcascade.evaluation.hidden_events`),
    and how many of them complex-only calls ictal on at least one window inside the seizure itself.

    The others are "detected" only by complex-only false alarms inside SzCORE's tolerances (30 s
    before the onset, 60 s after the end): the complex model did not see the seizure.

    Returns:
        ``{"hidden": n, "hidden_seen_inside": m}``.
    """
    c = np.asarray(complex_only, bool)
    missed = hidden_events(y, pred, c, start_s, record_ids)["missed"]
    inside = [np.any(c & (record_ids == m["record"]) & (start_s >= m["onset_s"] - 1e-9) & (start_s < m["offset_s"]))
              for m in missed]
    return {"hidden": len(missed), "hidden_seen_inside": int(sum(inside))}


def _meets(y, pred, c, start_s, record_ids, target) -> bool:
    f = _f1(int(np.sum(pred & y)), int(np.sum(pred & ~y)), int(np.sum(~pred & y)))
    return f >= target and not hidden_events(y, pred, c, start_s, record_ids)["n_missed_but_reference_detected"]


def confidence_oracle(y: np.ndarray, simple_d: np.ndarray, complex_only: np.ndarray, start_s: np.ndarray,
                      record_ids: np.ndarray, target_f1: float) -> float | None:
    """The least routing of the textbook gate (route ``|d| <= T``) with ``T`` chosen on the test
    windows themselves, one ``T`` for the pooled folds, that meets both targets of
    :func:`oracle_routing`; None if no ``T`` does.

    Args:
        simple_d: ``(n,)`` the simple model's logit difference ``z1 - z0``; the others as
            :func:`oracle_routing`, ``target_f1`` its ``target_f1``.
    """
    y, c = np.asarray(y, bool), np.asarray(complex_only, bool)
    a = np.abs(np.asarray(simple_d, np.float64))
    s = simple_d > 0
    # Routing grows with T: the first T (in increasing |d|) that meets both targets is the least routing.
    for T in np.concatenate([[-1.0], np.unique(a)]):
        routed = a <= T
        if _meets(y, np.where(routed, c, s), c, start_s, record_ids, target_f1):
            return float(routed.mean())
    return None


def oracle_unit(unit_dir: Path, tolerance: float = TOLERANCE) -> dict:
    """Oracle and deployed routing and MACs ratio of a unit, pooled over its folds."""
    p = _load(unit_fold_dirs(Path(unit_dir)))
    o = oracle_routing(p["y"], p["simple"], p["complex_only"], p["start_s"], p["record_ids"], tolerance)
    s_macs, c_macs = p["macs_simple"], p["macs_complex"]
    out = {"n": int(len(p["y"])), "deployed_routing": float(p["routed"].mean()),
           "simple_f1": o.get("simple_f1"), "complex_only_f1": o.get("complex_only_f1"),
           **hidden_inside(p["y"], p["pred"], p["complex_only"], p["start_s"], p["record_ids"])}
    if o["routed"] is None:
        return {**out, "oracle_routing": None, "oracle_macs_ratio": None, "oracle_mean_macs": None}
    r = float(o["routed"].mean())
    out["confidence_routing"] = confidence_oracle(p["y"], p["simple_d"], p["complex_only"], p["start_s"],
                                                  p["record_ids"], o["target_f1"])
    return {**out, "oracle_routing": r, "oracle_macs_ratio": c_macs / (s_macs + r * c_macs),
            "oracle_mean_macs": s_macs + r * c_macs, "complex_macs": c_macs, "oracle_cascade_f1": o["cascade_f1"]}


def _run(args) -> int:
    rows = {u: oracle_unit(Path(u), args.tolerance) for u in args.units}
    print("| unit | simple-only F1 | complex-only F1 | deployed routing | confidence gate, T chosen on test: routing "
          "| oracle routing | oracle MACs ratio |")
    print("|---|---|---|---|---|---|---|")
    for u, r in rows.items():
        orr = "none reaches the target" if r["oracle_routing"] is None else f"{r['oracle_routing']:.3f}"
        om = "-" if r["oracle_macs_ratio"] is None else f"{r['oracle_macs_ratio']:.1f}"
        cr = r.get("confidence_routing")
        cr = "-" if r["oracle_routing"] is None else "none reaches the target" if cr is None else f"{cr:.3f}"
        print(f"| {u} | {r['simple_f1']:.3f} | {r['complex_only_f1']:.3f} | {r['deployed_routing']:.3f} | {cr} "
              f"| {orr} | {om} |")
    ok = [r for r in rows.values() if r["oracle_routing"] is not None]
    if len(ok) == len(rows) and rows:
        ratio = np.mean([r["complex_macs"] for r in ok]) / np.mean([r["oracle_mean_macs"] for r in ok])
        print(f"\nmean oracle routing {np.mean([r['oracle_routing'] for r in ok]):.3f}, "
              f"overall oracle MACs ratio {ratio:.1f} (mean complex-only MACs / mean oracle MACs)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def _tolerance(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"--tolerance must be a number in [0, 1), got {text!r}")
    return v


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="The least routing any gate could get away with (labels known).")
    ap.add_argument("units", nargs="+", help="finished unit folders (RUN/<patient>/<patient>)")
    ap.add_argument("--tolerance", type=_tolerance, default=TOLERANCE, help="F1 the cascade may lose (default 0.02)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    return exit_code(lambda: _run(args))


if __name__ == "__main__":
    raise SystemExit(main())
