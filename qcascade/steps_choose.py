"""Per-patient choices made on validation windows, and the train-vs-validation gap.

:func:`step_calibrate <qcascade.steps_eval.step_calibrate>` calls these; everything they decide is
kept together in ``deploy/deploy.json`` under ``choices`` (``simple_model``, ``gate``) and
``fit_gap``, and copied into ``metrics.json``:

* :func:`candidate_validation` is the one place that reads the simple candidates' results
  (``baselines/simple_<X>.h5``, trained alone on the selected electrode by ``step_baselines``) and
  scores them on the validation windows;
* :func:`choose_simple` (``model.simple_model: auto``): the cheapest candidate (MACs per window)
  whose validation F1 is within ``model.simple_auto_margin`` of the best candidate's, beside what
  ``qcascade analyze`` recommends for the training and validation recordings;
* :func:`gate_candidates` / :func:`choose_gate_variant` (``train.gate: auto``): every gate rule is
  calibrated on validation (with the configured probe, and without it for comparison) and
  :func:`qcascade.training.tau.choose_gate` picks among those with the configured probe;
* :func:`fit_gap`: F1 of each model on its training windows and on the validation windows;
* :func:`unseen_training_seizures`: the training seizures the simple model's electrode does not see,
  which turn on ``train.gate_unseen_probe_every``;
* :func:`weak_simple_model` (``train.gate_weak_simple_*``): a simple model that trails complex-only on
  validation, which turns on the same probe;
* :func:`probe_candidates` / :func:`choose_probe_period` (``train.gate_probe_choices``): the probe
  period deployed on this fold, each candidate period at its own calibrated tau;
* :mod:`qcascade.routing_budget` (``train.tau_routing_budget``, called after these): a cheaper tau
  than the calibrated one where that one routes more than the budget and the cheaper one hides no
  validation seizure.
"""

from __future__ import annotations

import logging

import numpy as np

from qcascade.errors import DataError

log = logging.getLogger(__name__)

CANDIDATES = ("A", "B", "C")


def _predict(model, X: np.ndarray) -> np.ndarray:
    from qcascade.data.longterm_cache import predict_batched

    return predict_batched(model, X, batch_size=256)  # long-term sets stream batch by batch


def candidate_validation(ctx, va, electrode: int) -> dict:
    """Validation F1/AUC, MACs and model of every simple candidate trained alone (if trained).

    Returns:
        ``{"A": {"val": window_metrics, "macs_per_window", "model"}, ...}`` for the candidates
        whose ``baselines/simple_<X>.h5`` exists.
    """
    from qcascade.evaluation import window_metrics
    from qcascade.models import load_model
    from qcascade.models.counting import count_macs

    out = {}
    x = va.X[:, :, electrode:electrode + 1]
    for name in CANDIDATES:
        path = ctx.unit_dir / "baselines" / f"simple_{name}.h5"
        if not path.exists():
            continue
        model = load_model(path)
        z = _predict(model, x)
        out[name] = {"val": window_metrics(va.y, z, z.argmax(1)), "macs_per_window": count_macs(model)["total"],
                     "model": model, "val_logits": z}
    return out


def pick_cheapest_within(rows: dict, margin: float) -> tuple[str, str]:
    """The cheapest candidate whose validation F1 is within ``margin`` of the best one's.

    Args:
        rows: ``{name: {"val_f1", "macs_per_window"}}``.

    Returns:
        ``(name, reason)``; ties in MACs go to the better F1, then the name.
    """
    if not rows:
        raise ValueError("pick_cheapest_within: no candidates")
    best = max(r["val_f1"] or 0.0 for r in rows.values())
    close = [n for n, r in rows.items() if (r["val_f1"] or 0.0) >= best - margin - 1e-12]
    chosen = min(close, key=lambda n: (rows[n]["macs_per_window"], -(rows[n]["val_f1"] or 0.0), n))
    return chosen, (f"{chosen}: cheapest ({rows[chosen]['macs_per_window']:.0f} MACs/window) of {sorted(close)}, "
                    f"whose validation F1 is within {margin:.3f} of the best {best:.3f}")


def analysis_recommendation(ctx, exclude_records: set) -> dict:
    """``qcascade analyze``'s recommended simple model on the unit's recordings minus ``exclude_records``."""
    from qcascade.analysis import analyze_patient

    recs = [r for r in ctx.recordings if r.record_id not in exclude_records]
    if ctx.cfg.data.dataset == "swec-long":  # hours of recordings: a bounded subset (steps_longterm)
        from qcascade.steps_longterm import analysis_records

        recs = analysis_records(recs)
    if len({r.patient_id for r in recs}) != 1:
        return {"recommended": None, "error": "the analysis is per patient; this unit pools patients"}
    try:
        res = analyze_patient(recs, seed=ctx.cfg.train.seed)
    except DataError as exc:
        return {"recommended": None, "error": str(exc)}
    from qcascade.analysis import recommend

    model, reason = recommend(res["candidates_balanced_accuracy"])
    return {"recommended": model, "reason": reason, "records": [r.record_id for r in recs],
            "candidates_balanced_accuracy": res["candidates_balanced_accuracy"]}


def choose_simple(ctx, cands: dict, test_records: set) -> tuple[dict, object | None]:
    """The simple-model choice record and, with ``simple_model: auto``, the chosen candidate's model.

    Args:
        cands: :func:`candidate_validation`'s result.
        test_records: record ids the analysis must not read.

    Returns:
        ``(record, model)``: ``model`` is None when the configured candidate (the cascade's own
        stage-3 simple model) is deployed.
    """
    mode = ctx.cfg.model.simple_model
    rows = {n: {"val_f1": c["val"]["f1"], "val_auc": c["val"]["auc"], "macs_per_window": c["macs_per_window"]}
            for n, c in cands.items()}
    margin = ctx.cfg.model.simple_auto_margin
    rec = {"mode": "auto" if mode == "auto" else "fixed", "candidates": rows, "margin": margin,
           "criterion": "cheapest candidate (MACs per window) whose validation F1, trained alone on the selected "
                        "electrode, is within the margin of the best candidate's"}
    if cands:
        best_by_rule, reason = pick_cheapest_within(rows, margin)
        rec["auto_choice"], rec["auto_reason"] = best_by_rule, reason
    # Where no candidate was trained (folds k >= 1 with a fixed simple model) nothing is chosen, so
    # the analysis (a second pass over the recordings) is skipped.
    rec["analysis"] = (analysis_recommendation(ctx, test_records) if cands or mode == "auto"
                       else {"recommended": None, "error": "no simple candidates in this fold"})
    model = None
    if mode == "auto":
        if not cands:
            raise DataError(f"{ctx.unit_dir / 'baselines'}: model.simple_model: auto found no trained candidate")
        rec["chosen"] = rec["auto_choice"]
        model = cands[rec["chosen"]]["model"]
    else:
        rec["chosen"] = mode
    rec["agrees_with_analysis"] = (None if rec["analysis"].get("recommended") is None
                                   else rec["analysis"]["recommended"] == rec["chosen"])
    if rec["agrees_with_analysis"] is False:
        # Recorded in deploy.json and flagged in report.md; on the console only when auto chose.
        say = log.info if rec["mode"] == "auto" else log.debug
        say("[%s] deployed simple model %s (%s), qcascade analyze recommends %s", ctx.unit, rec["chosen"],
            rec["mode"], rec["analysis"]["recommended"])
    return rec, model


def variant_name(rule: str, probe_every: int, recheck_tau: float = 0.0, sentinel: bool = False,
                 hold: int = 0) -> str:
    """Name of a gate variant: the rule, ``+probe<P>`` when it probes, ``+recheck<tau_c>`` when it
    rechecks, ``+sentinel`` with the sentinel, ``+hold<H>`` with a hold."""
    return (rule + (f"+probe{probe_every}" if probe_every else "") + (f"+recheck{recheck_tau:g}" if recheck_tau else "")
            + ("+sentinel" if sentinel else "") + (f"+hold{hold}" if hold else ""))


def gate_candidates(train, probe_every: int, sentinel: bool | None = None) -> list[tuple[str, str, int, float, bool, int]]:
    """``(name, rule, probe_every, recheck_tau, sentinel, hold)`` of every variant calibrated: each
    rule with the configured probe, recheck, sentinel and hold and, when any is configured, without
    them (to measure what they change). ``sentinel``: whether the unit has it (None: as configured)."""
    from qcascade.gate import GATE_RULES

    sentinel = bool(train.gate_sentinel_ratio) if sentinel is None else sentinel
    configured = (probe_every, train.gate_recheck_tau if probe_every else 0.0, sentinel, train.gate_hold)
    settings = [configured] + ([(0, 0.0, False, 0)] if probe_every or sentinel or train.gate_hold else [])
    return [(variant_name(r, p, c, g, h), r, p, c, g, h) for p, c, g, h in settings for r in GATE_RULES]


def hidden_on(ws, pred: np.ndarray, reference_pred: np.ndarray) -> dict:
    """:func:`qcascade.evaluation.hidden_events` on a window set."""
    from qcascade.evaluation import hidden_events

    return hidden_events(ws.y, pred, reference_pred, ws.start_s, ws.record_ids)


def unseen_training_seizures(tr, zs: np.ndarray, zc: np.ndarray, ratio: float) -> dict:
    """Training seizures that the simple model's electrode does not see.

    A seizure counts as unseen when the simple model calls fewer than ``ratio`` times as many of its
    training windows ictal as the complex model does: the simple model is fitted to it and still
    misses it, while the complex model, which reads the other electrodes, finds it (docs/calibration.md).

    Args:
        tr: the training windows (``record_ids``, ``y``).
        zs, zc: ``(n_train, 2)`` logits of the deployed simple and complex models on them.
        ratio: ``train.gate_unseen_ratio``.

    Returns:
        ``{"ratio", "per_seizure": {record: {"simple", "complex", "unseen"}}, "unseen": [record, ...]}``;
        ``simple`` and ``complex`` are the fractions of the record's ictal windows each model calls ictal.
    """
    ps, pc = np.asarray(zs).argmax(1) == 1, np.asarray(zc).argmax(1) == 1
    y, rec = np.asarray(tr.y) == 1, np.asarray(tr.record_ids).astype(str)
    per = {}
    for r in sorted(set(rec[y].tolist())):
        k = y & (rec == r)
        s, c = float(ps[k].mean()), float(pc[k].mean())
        per[r] = {"simple": s, "complex": c, "unseen": bool(s < ratio * c)}
    return {"ratio": ratio, "per_seizure": per, "unseen": [r for r, v in per.items() if v["unseen"]]}


def weak_simple_model(y: np.ndarray, zs: np.ndarray, complex_only_f1: float | None, gap: float, max_f1: float) -> dict:
    """Whether the deployed simple model trails complex-only on the validation windows.

    Such a fold's validation recording shows seizures its electrode barely sees, so a test seizure can
    be one the simple model calls interictal with confidence throughout, while validation (where the
    gate may have routed its seizure on the simple model's flips) asks for no probe (docs/calibration.md,
    "A simple model that trails on validation").

    Args:
        y: ``(n_val,)`` validation labels.
        zs: ``(n_val, 2)`` logits of the simple model on them.
        complex_only_f1: complex-only's validation F1 (unfused); None: no validation seizure.
        gap: ``train.gate_weak_simple_gap``; 0: off.
        max_f1: ``train.gate_weak_simple_max_f1``.

    Returns:
        ``{"simple_val_f1", "complex_only_val_f1", "gap", "max_f1", "weak"}``; ``weak`` when ``gap`` is on,
        the simple model's F1 is below ``max_f1`` and at least ``gap`` below complex-only's.
    """
    from qcascade.evaluation import window_metrics

    s = window_metrics(np.asarray(y), None, np.asarray(zs).argmax(1))["f1"]
    weak = bool(gap and s is not None and complex_only_f1 is not None and s < max_f1 and complex_only_f1 - s >= gap)
    return {"simple_val_f1": s, "complex_only_val_f1": complex_only_f1, "gap": gap, "max_f1": max_f1, "weak": weak}


def choose_gate_variant(train, calibrated: dict, variants: list, va, zs, zc, n_ictal_val: int,
                        sentinel_up=None, sentinel: bool | None = None, probe_every: int | None = None) -> dict:
    """The gate choice record: every variant's validation numbers and the deployed one.

    Args:
        train: the ``TrainConfig``; calibrated: ``{name: (tau, sweep)}``; variants: from
            :func:`gate_candidates`; va: validation windows; zs, zc: their simple and complex logits;
            sentinel_up: ``(n,)`` bool, the sentinel on the validation windows (None: off);
            sentinel: whether the unit has the sentinel (None: as configured);
            probe_every: the configured probe period of this fold (None: ``train.gate_probe_every``).
    """
    from qcascade.gate import cascade_decide
    from qcascade.training.tau import GATE_CRITERION, choose_gate

    from qcascade.gate_args import gate_rule

    rows = {}
    has_sentinel = bool(train.gate_sentinel_ratio) if sentinel is None else sentinel
    probe_cfg = train.gate_probe_every if probe_every is None else probe_every
    for name, rule, probe, recheck, with_sentinel, hold in variants:
        tau, sweep = calibrated[name]
        row = next(r for r in sweep if r["tau"] == tau)
        dec = cascade_decide(zs, zc, tau, **gate_rule(rule, va, probe, recheck, sentinel_up if with_sentinel else None,
                                                      train.gate_sentinel_every, hold,
                                                      train.gate_sentinel_interictal_only,
                                                      hold_max=train.gate_hold_max if hold else 0,
                                                      fuse=train.gate_fuse, ictal_every=train.gate_ictal_every,
                                                      ictal_after=train.gate_ictal_after))
        rows[name] = {"rule": rule, "probe_every": probe, "recheck_tau": recheck, "sentinel": with_sentinel, "hold": hold,
                      "hold_max": train.gate_hold_max if hold else 0,
                      "tau": tau, "f1": row["f1"],
                      "sensitivity": row["sensitivity"], "specificity": row["specificity"],
                      "routing_rate": row["routing_rate"],
                      "hidden_val": hidden_on(va, dec["pred"], zc.argmax(1))["n_missed_but_reference_detected"]}
    margin = max(train.tau_margin, train.tau_margin_windows / float(max(n_ictal_val, 1)))
    eligible = {n: r for n, r in rows.items()
                if r["probe_every"] == probe_cfg and r["sentinel"] == has_sentinel
                and r["hold"] == train.gate_hold}
    rec = {"mode": "auto" if train.gate == "auto" else "fixed", "candidates": rows, "margin": margin,
           "criterion": GATE_CRITERION}
    rec["auto_choice"], rec["auto_reason"] = choose_gate(eligible, margin)
    rec["chosen"] = (rec["auto_choice"] if train.gate == "auto"
                     else variant_name(train.gate, probe_cfg,
                                       train.gate_recheck_tau if probe_cfg else 0.0, has_sentinel,
                                       train.gate_hold))
    return rec


def fit_gap(ctx, tr, va, electrode: int, simple_model, complex_model, complex_only_model, dep,
            candidates: dict, val_logits: tuple | None = None, train_logits: tuple | None = None) -> dict:
    """F1 on the training and on the validation windows of each deployed model (the overfitting gap).

    The cascade on training windows applies the deployed gate in each training recording's time
    order; training windows may be subsampled (``data.train_nonictal_stride_s``), so its state
    (previous class, probe gap) runs over the windows present. ``val_logits``: the three models'
    ``(n_val, 2)`` validation logits when already computed (simple, complex, complex-only), so the
    validation windows are not predicted again (a long-term run streams them from disk);
    ``train_logits``: the simple and complex models' training logits, likewise.
    """
    from qcascade.evaluation import window_metrics
    from qcascade.gate import cascade_decide
    from qcascade.gate_args import deployed_gate

    out = {}
    for split, ws in (("train", tr), ("val", va)):
        if split == "val" and val_logits is not None:
            zs, zc, zo = val_logits
        elif split == "train" and train_logits is not None:
            zs, zc = train_logits
            zo = _predict(complex_only_model, ws.X)
        else:
            zs = _predict(simple_model, ws.X[:, :, electrode:electrode + 1])
            zc = _predict(complex_model, ws.X)
            zo = _predict(complex_only_model, ws.X)
        dec = cascade_decide(zs, zc, dep.tau, **deployed_gate(dep, ws, ctx.cfg.quant if dep.sentinel else None))
        row = {"simple": window_metrics(ws.y, None, zs.argmax(1))["f1"],
               "complex_only": window_metrics(ws.y, None, zo.argmax(1))["f1"],
               "cascade_complex": window_metrics(ws.y, None, zc.argmax(1))["f1"],
               "cascade": window_metrics(ws.y, None, dec["pred"])["f1"]}
        for name, c in candidates.items():
            z = c["val_logits"] if split == "val" else _predict(c["model"], ws.X[:, :, electrode:electrode + 1])
            row[f"candidate_{name}"] = window_metrics(ws.y, None, z.argmax(1))["f1"]
        out[split] = row
    out["gap"] = {k: (None if out["train"][k] is None or out["val"][k] is None else out["train"][k] - out["val"][k])
                  for k in out["train"]}
    return out


PROBE_CRITERION = ("on validation windows, each probe period with the deployed rule at its own calibrated tau: "
                   "(1) fewest seizures that the cascade's complex model detects on every window but the cascade "
                   "misses; (2) of those, the periods whose tau meets the calibration's margin (all of them when "
                   "none does); (3) lowest routing rate; (4) higher F1; (5) the fold's own period first, then the "
                   "order of train.gate_probe_choices")


def probe_candidates(periods, calibrate, decide, va, zc: np.ndarray) -> dict:
    """Every probe period's validation numbers at its own calibrated tau.

    Args:
        periods: the fold's own period first (0: none), then ``train.gate_probe_choices``.
        calibrate: ``probe_every -> (tau, sweep)`` (:func:`qcascade.training.tau.calibrate_tau` with
            the deployed rule, sentinel and hold).
        decide: ``(tau, probe_every) -> cascade_decide(...)`` on the validation windows.
        va: the validation windows; zc: ``(n_val, 2)`` the cascade's complex logits on them.

    Returns:
        ``{period: {"tau", "f1", "routing_rate", "meets_margin", "hidden_val"}}`` in ``periods`` order.
    """
    rows = {}
    for p in dict.fromkeys(int(p) for p in periods):
        tau, sweep = calibrate(p)
        row = next(r for r in sweep if r["tau"] == tau)
        hidden = hidden_on(va, decide(tau, p)["pred"], np.asarray(zc).argmax(1))["n_missed_but_reference_detected"]
        rows[p] = {"tau": tau, "f1": row["f1"], "routing_rate": row["routing_rate"],
                   "meets_margin": bool(row.get("meets_margin", True)), "hidden_val": int(hidden)}
    return rows


def choose_probe_period(rows: dict) -> tuple[int, str]:
    """``train.gate_probe_choices``: the period to deploy from :func:`probe_candidates`' rows
    (:data:`PROBE_CRITERION`), and why."""
    if not rows:
        raise ValueError("choose_probe_period: no candidates")
    order = list(rows)
    fewest = min(rows[p]["hidden_val"] for p in order)
    safe = [p for p in order if rows[p]["hidden_val"] == fewest]
    safe = [p for p in safe if rows[p]["meets_margin"]] or safe
    chosen = min(safe, key=lambda p: (rows[p]["routing_rate"], -(rows[p]["f1"] or 0.0), order.index(p)))
    r = rows[chosen]
    return chosen, (f"probe every {chosen or 'never'}: tau {r['tau']:g}, validation routing {r['routing_rate']:.3f}, "
                    f"F1 {r['f1'] or 0.0:.3f}, hides {fewest} validation seizure(s), among {safe}")
