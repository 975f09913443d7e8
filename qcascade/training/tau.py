"""Calibration of the cascade gate's threshold tau on validation windows.

The gate rules and the logit threshold are in :mod:`qcascade.gate`.
Textbook gate: the simple model's answer is final when ``|p1 - p0| > tau`` with ``p = softmax(z)``.
For two classes ``p1 - p0 = tanh((z1 - z0) / 2)``, and tanh is strictly increasing, so

    |p1 - p0| > tau   <=>   |z1 - z0| > 2 * atanh(tau)        (0 <= tau < 1)

which is what :func:`cascade_predict` evaluates: no softmax/exp at inference (what the FPGA
does), and no float saturation (for large logits ``p1 - p0`` rounds to exactly 1.0 in float32,
while the logit difference keeps its resolution). ``tau = 1`` gives an infinite threshold: every
window is routed (complex-only); ``tau = 0`` routes only exact ties.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from qcascade.config_train import TrainConfig
from qcascade.errors import DataError
from qcascade.evaluation import window_metrics
from qcascade.gate import cascade_predict, logit_threshold

log = logging.getLogger(__name__)

__all__ = ["logit_threshold", "cascade_predict", "calibrate_tau", "calibrate_tau_interictal", "within_budget", "choose_gate", "plot_tau_sweep", "DEFAULT_GRID",
           "GATE_CRITERION"]

_TRAIN = TrainConfig()  # library defaults are the defaults the pipeline runs (train: section)
DEFAULT_GRID: tuple[float, ...] = _TRAIN.tau_grid()

def calibrate_tau(
    simple_logits_val: np.ndarray,
    complex_logits_val: np.ndarray,
    y_val: np.ndarray,
    macs_simple: float,
    macs_complex: float,
    margin: float = _TRAIN.tau_margin,
    grid: Optional[Sequence[float]] = None,
    reference: Optional[Mapping[str, Optional[float]]] = None,
    routing_tolerance: float = _TRAIN.tau_routing_tolerance,
    reference_f1: str = _TRAIN.tau_reference_f1,
    margin_windows: int = _TRAIN.tau_margin_windows,
    reference_min_f1: float = _TRAIN.tau_reference_min_f1,
    **rule,
) -> tuple[float, list[dict]]:
    """Pick the tau with the smallest validation routing rate that keeps quality.

    A tau qualifies when the cascade's val sensitivity AND F1 are both
    ``>= reference value - margin`` (reference = ``reference`` if given, else the same complex
    model on every val window; with ``reference_f1="best"`` the F1 reference is raised to the
    best cascade F1 on the grid). Among qualifying taus whose routing rate is within
    ``routing_tolerance`` of the smallest qualifying one, the largest tau wins (ties in routing: highest F1 first when the
    tolerance is 0). Use validation windows only, never test windows.

    With a tolerance (``train.tau_routing_tolerance``, 0 by default), the deployed tau may route up
    to ``routing_tolerance`` more validation windows than the cheapest qualifying one
    (docs/calibration.md says why the default is 0).

    A reference that misses the validation seizure itself (its F1 below ``reference_min_f1``)
    cannot show what routing buys: the tau with the least validation routing is deployed (ties:
    higher F1, then the smaller tau), and every row carries ``reference_trusted: False``.

    Fallback (when the grid lacks 1.0, or when ``reference`` is another model that even the
    cascade's complex model on every window cannot match): if no tau qualifies, return the one
    with the highest validation F1 (ties -> lower routing rate), and log a warning. Rows carry
    ``meets_margin`` so callers can tell.

    Args:
        simple_logits_val, complex_logits_val: ``(n, 2)`` validation logits.
        y_val: ``(n,)`` validation labels; must contain ictal windows.
        macs_simple, macs_complex: MACs per window of the simple path and complex model.
        margin: allowed absolute drop of sensitivity and F1.
        margin_windows: the margin is at least this many validation ictal windows,
            ``margin_windows / n_ictal``: with 30 ictal validation windows one window moves
            sensitivity by 0.033, so a margin of 0.01 would demand equality and let a one-window
            difference decide between a cheap cascade and routing everything.
        grid: tau values in [0, 1]; default ``DEFAULT_GRID`` (0, 0.01, ..., 1).
        reference: optional ``{"sensitivity", "f1"}`` on the same val windows to hold the
            cascade to instead of its own complex model (e.g. the complex-only baseline's val
            metrics, when the cascade's complex model specialised on routed windows).
        routing_tolerance: share of validation windows (in [0, 1)) by which the chosen tau's
            routing rate may exceed the smallest qualifying routing rate.
        reference_f1: ``"complex_only"`` holds the cascade's F1 to the reference's F1;
            ``"best"`` to the larger of that and the best cascade F1 over the grid (tau < 1), so
            a tau whose cascade is clearly better than complex-only on validation is not traded
            for a little less routing (sensitivity stays held to the reference). Each row
            carries the ``reference_f1`` and ``reference_sensitivity`` it was held to.
        reference_min_f1: the reference's validation F1 below which it is not held to
            (``train.tau_reference_min_f1``; 0: always).
        **rule: the gate rule and window order (``rule``,
            ``record_ids``, ``start_s``), as in :func:`qcascade.gate.cascade_decide`.

    Returns:
        ``(tau, sweep)``; sweep rows (one per grid value, in grid order):
        ``{"tau", "routing_rate", "f1", "sensitivity", "specificity", "avg_macs_per_window",
        "accuracy", "meets_margin"}``.

    Raises:
        DataError: if ``y_val`` has no ictal window (sensitivity undefined).
    """
    y = np.asarray(y_val).astype(int).ravel()
    zc = np.asarray(complex_logits_val)
    ref = dict(reference) if reference is not None else window_metrics(y, None, zc.argmax(1))
    if y.sum() == 0 or ref.get("sensitivity") is None:
        raise DataError("calibrate_tau: validation windows contain no ictal window; cannot calibrate tau")
    if not 0.0 <= reference_min_f1 <= 1.0:
        raise ValueError(f"calibrate_tau: reference_min_f1 must be in [0, 1], got {reference_min_f1}")
    if not 0.0 <= routing_tolerance < 1.0:
        raise ValueError(f"calibrate_tau: routing_tolerance must be in [0, 1), got {routing_tolerance}")
    if reference_f1 not in ("complex_only", "best"):
        raise ValueError(f"calibrate_tau: reference_f1 must be 'complex_only' or 'best', got {reference_f1!r}")
    sweep = []
    for tau in (DEFAULT_GRID if grid is None else grid):
        pred, routed = cascade_predict(simple_logits_val, zc, float(tau), **rule)
        m = window_metrics(y, None, pred)
        rate = float(routed.mean())
        sweep.append({
            "tau": float(tau), "routing_rate": rate, "f1": m["f1"],
            "sensitivity": m["sensitivity"], "specificity": m["specificity"],
            "avg_macs_per_window": float(macs_simple) + rate * float(macs_complex),
            "accuracy": m["accuracy"],
        })
    if not sweep:
        raise ValueError("calibrate_tau: empty grid")
    if margin_windows < 0:
        raise ValueError(f"calibrate_tau: margin_windows must be >= 0, got {margin_windows}")
    margin = max(float(margin), margin_windows / float(y.sum()))
    ref_f1 = ref["f1"] or 0.0
    if reference_f1 == "best":
        ref_f1 = max([ref_f1] + [r["f1"] or 0.0 for r in sweep if r["tau"] < 1.0])
    for r in sweep:
        r["meets_margin"] = bool(r["sensitivity"] >= ref["sensitivity"] - margin - 1e-12
                                 and (r["f1"] or 0.0) >= ref_f1 - margin - 1e-12)
        r["margin"] = margin
        r["reference_sensitivity"] = ref["sensitivity"]
        r["reference_f1"] = ref_f1
    ok_rows = [r for r in sweep if r["meets_margin"]]
    if (ref["f1"] or 0.0) < reference_min_f1:
        for r in sweep:
            r["reference_trusted"] = False
        best = min(sweep, key=lambda r: (r["routing_rate"], -(r["f1"] or 0.0), r["tau"]))
        log.info("calibrate_tau: the reference's validation F1 %.3f is below %.3g; deploying the least routing "
                 "(tau=%.3g, routing rate %.3f)", ref["f1"] or 0.0, reference_min_f1, best["tau"], best["routing_rate"])
    elif ok_rows and routing_tolerance > 0:
        cheapest = min(r["routing_rate"] for r in ok_rows)
        best = max((r for r in ok_rows if r["routing_rate"] <= cheapest + routing_tolerance + 1e-12),
                   key=lambda r: r["tau"])
    elif ok_rows:
        best = min(ok_rows, key=lambda r: (r["routing_rate"], -(r["f1"] or 0.0), r["tau"]))
    else:
        best = max(sweep, key=lambda r: (r["f1"] or 0.0, -r["routing_rate"]))
        log.warning("calibrate_tau: no tau keeps val sensitivity/F1 within %.3g of the reference "
                    "(sens %.3f, F1 %.3f); falling back to tau=%.3g (routing rate %.3f)",
                    margin, ref["sensitivity"], ref_f1, best["tau"], best["routing_rate"])
    return best["tau"], sweep


def calibrate_tau_interictal(
    simple_logits_val: np.ndarray,
    complex_logits_val: np.ndarray,
    y_val: np.ndarray,
    tau: float,
    sweep: Sequence[dict],
    mode: str,
    grid: Optional[Sequence[float]] = None,
    **rule,
) -> tuple[float, list[dict]]:
    """The second threshold, for windows the simple model calls interictal, given the calibrated ``tau``.

    Sweeps ``tau_interictal`` over the grid values up to ``tau`` with ``tau`` kept on the ictal
    side, and deploys the one with the least validation routing (ties: the higher F1, then the
    larger value) among those that qualify:

    * ``"keep"``: F1 and sensitivity at least those of ``tau``'s own cascade minus one validation
      ictal window's share (``1 / n_ictal``): routing that changed nothing on validation goes;
    * ``"margin"``: the criteria ``tau`` was held to (its sweep row's ``meets_margin``
      reference and margin), so the second threshold may spend what is left of the margin.

    ``tau`` itself always qualifies (it is the symmetric gate). Validation windows only.

    Args:
        simple_logits_val, complex_logits_val: ``(n, 2)`` validation logits.
        y_val: ``(n,)`` validation labels.
        tau: the calibrated threshold (:func:`calibrate_tau`).
        sweep: :func:`calibrate_tau`'s sweep rows (``tau``'s row gives its F1, sensitivity,
            margin and reference).
        mode: ``"keep"`` or ``"margin"``.
        grid: threshold values; default ``DEFAULT_GRID``.
        **rule: the gate's other arguments, as in :func:`qcascade.gate.cascade_decide`.

    Returns:
        ``(tau_interictal, rows)``, one row per swept value: ``{"tau_interictal", "routing_rate",
        "f1", "sensitivity", "qualifies"}``.
    """
    if mode not in ("keep", "margin"):
        raise ValueError(f"calibrate_tau_interictal: mode must be 'keep' or 'margin', got {mode!r}")
    rule = {k: v for k, v in rule.items() if k != "tau_interictal"}  # gate_rule()'s, swept here
    y = np.asarray(y_val).astype(int).ravel()
    if y.sum() == 0:
        raise DataError("calibrate_tau_interictal: validation windows contain no ictal window")
    row = next((r for r in sweep if abs(r["tau"] - tau) < 1e-12), None)
    if row is None:
        raise ValueError(f"calibrate_tau_interictal: tau={tau} is not in the sweep")
    if mode == "keep":
        slack = 1.0 / float(y.sum())
        need_f1, need_sens = (row["f1"] or 0.0) - slack, row["sensitivity"] - slack
    else:
        need_f1 = row["reference_f1"] - row["margin"]
        need_sens = row["reference_sensitivity"] - row["margin"]
    rows = []
    for t in (DEFAULT_GRID if grid is None else grid):
        if t > tau + 1e-12:
            continue
        pred, routed = cascade_predict(simple_logits_val, complex_logits_val, tau, tau_interictal=float(t), **rule)
        m = window_metrics(y, None, pred)
        rows.append({"tau_interictal": float(t), "routing_rate": float(routed.mean()), "f1": m["f1"],
                     "sensitivity": m["sensitivity"],
                     "qualifies": bool(abs(t - tau) < 1e-12 or ((m["f1"] or 0.0) >= need_f1 - 1e-12
                                                              and m["sensitivity"] >= need_sens - 1e-12))})
    if not rows:
        raise ValueError("calibrate_tau_interictal: no grid value at or below tau")
    best = min((r for r in rows if r["qualifies"]),
               key=lambda r: (r["routing_rate"], -(r["f1"] or 0.0), -r["tau_interictal"]))
    return best["tau_interictal"], rows


GATE_CRITERION = ("on validation windows, each variant at its own calibrated tau: (1) fewest seizures that the "
                  "cascade's complex model detects on every window but the cascade misses; (2) F1 within the tau "
                  "margin of the best such variant; (3) lowest routing rate; (4) the order of the candidates")


def within_budget(tau: float, sweep: Sequence[dict], budget: float) -> float:
    """``tau`` if its validation routing rate is at most ``budget``; else the tau of the sweep row with the
    best validation F1 among those routing at most ``budget`` (ties: less routing, then the smaller tau), or
    the least routing row's where none does (``train.tau_routing_budget``; round 38 of docs/generalisation.md)."""
    rows = {r["tau"]: r for r in sweep}
    if rows[tau]["routing_rate"] <= budget + 1e-12:
        return tau
    under = [r for r in sweep if r["routing_rate"] <= budget + 1e-12]
    if not under:
        return min(sweep, key=lambda r: (r["routing_rate"], -(r["f1"] or 0.0), r["tau"]))["tau"]
    return max(under, key=lambda r: ((r["f1"] or 0.0), -r["routing_rate"], -r["tau"]))["tau"]


def choose_gate(candidates: Mapping[str, Mapping], margin: float) -> tuple[str, str]:
    """``train.gate: auto``: the gate variant to deploy, from validation numbers only.

    Criterion (:data:`GATE_CRITERION`): a gate must first not hide seizures its own complex
    model sees, then keep F1 within ``margin`` of the best remaining variant, then cost least.

    Args:
        candidates: ``{name: {"f1", "routing_rate", "hidden_val"}}`` in preference order (ties go to
            the first); ``hidden_val`` is the number of validation seizures missed but detected by
            the complex model on every window (None counts as 0).
        margin: allowed F1 drop below the best (the calibration's margin).

    Returns:
        ``(name, reason)``.
    """
    if not candidates:
        raise ValueError("choose_gate: no candidates")
    names = list(candidates)
    hidden = {n: int(candidates[n].get("hidden_val") or 0) for n in names}
    safe = [n for n in names if hidden[n] == min(hidden.values())]
    best_f1 = max(candidates[n]["f1"] or 0.0 for n in safe)
    close = [n for n in safe if (candidates[n]["f1"] or 0.0) >= best_f1 - margin - 1e-12]
    chosen = min(close, key=lambda n: (candidates[n]["routing_rate"], names.index(n)))
    reason = (f"{chosen}: hides {hidden[chosen]} validation seizure(s) (fewest), F1 "
              f"{candidates[chosen]['f1'] or 0.0:.3f} within {margin:.3f} of the best {best_f1:.3f}, "
              f"lowest routing rate {candidates[chosen]['routing_rate']:.3f} among {close}")
    return chosen, reason


def plot_tau_sweep(sweep: Sequence[dict], path: str | Path, chosen_tau: Optional[float] = None,
                   macs_complex: Optional[float] = None, title: str = "") -> Path:
    """PNG of val accuracy and F1 vs average MACs per window, one point per tau.

    Args:
        sweep: rows from :func:`calibrate_tau`.
        path: output PNG.
        chosen_tau: highlighted with a marker if given.
        macs_complex: draws the complex-only cost as a vertical line if given.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from qcascade.io_utils import atomic_save_figure

    rows = sorted(sweep, key=lambda r: r["avg_macs_per_window"])
    x = [r["avg_macs_per_window"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for key, color in (("accuracy", "C0"), ("f1", "C1"), ("sensitivity", "C2")):
        ax.plot(x, [np.nan if r.get(key) is None else r[key] for r in rows], ".-", color=color,
                label=key, lw=1)
    if chosen_tau is not None:
        r = min(rows, key=lambda r: abs(r["tau"] - chosen_tau))
        ax.axvline(r["avg_macs_per_window"], color="k", ls="--", lw=0.8,
                   label=f"tau={chosen_tau:.2f} (routing {100 * r['routing_rate']:.1f}%)")
    if macs_complex is not None:
        ax.axvline(macs_complex, color="grey", ls=":", lw=0.8, label="complex-only cost")
    ax.set_xlabel("average MACs per window")
    ax.set_ylabel("validation metric")
    ax.set_title(title or "cascade: quality vs cost (tau sweep)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=120)
    return Path(path)
