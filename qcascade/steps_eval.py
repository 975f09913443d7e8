"""Deploy and evaluate steps: BatchNorm folding, tau calibration, test metrics.

:func:`step_calibrate` writes the :class:`~qcascade.artifacts.Deployment` (``deploy/deploy.json``:
electrode, tau, gate rule, MACs of the two models, model paths) that evaluation and the hardware
steps read; :func:`step_evaluate` writes this fold's ``fold_metrics.json`` (the unit's
``metrics.json`` is written by ``step_folds`` alone).
"""

from __future__ import annotations

import json
import logging

import numpy as np

from qcascade.artifacts import (Deployment, DeployedModels, ValidationScores, WindowScores, deployed_models, deployment,
                                save_deployment, selection)
from qcascade.io_utils import atomic_save_keras, atomic_write_json
from qcascade.prior import prior_summary
from qcascade.steps_data import onset_zone, windows
from qcascade.gate_args import deployed_gate, gate_rule, sentinel_on
from qcascade.complex_electrodes import sentinel_watch
from qcascade.sentinel import sentinel_ops
from qcascade.simple_pool import CHOOSE
from qcascade.simple_unseen_free import CHOOSE as UNSEEN_FREE_CHOOSE
from qcascade.steps_fit import get_trainer, selected_electrode
from qcascade.steps_longterm import choose_postprocess, evaluate_longterm, is_longterm

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- deploy + evaluate
def _predict(model, X: np.ndarray) -> np.ndarray:
    from qcascade.data.longterm_cache import predict_batched

    return predict_batched(model, X, batch_size=256)  # long-term sets stream batch by batch


def step_calibrate(ctx) -> None:
    """Fold BatchNorm into the export models; on validation windows only, choose the simple model
    (``model.simple_model: auto``), calibrate tau of every gate variant and choose the gate
    (``train.gate: auto``); measure the train-vs-validation F1 gap (:mod:`qcascade.steps_choose`)."""
    from qcascade.evaluation import window_metrics
    from qcascade.models import load_model
    from qcascade.models.counting import count_macs
    from qcascade.models.folding import fold_batchnorm
    from qcascade.gate import cascade_decide, training_rule
    from qcascade.gate_fixed import fused_difference
    from qcascade.routing_budget import apply_routing_budget
    from qcascade.steps_choose import (PROBE_CRITERION, candidate_validation, choose_gate_variant,
                                       choose_probe_period,
                                       choose_simple, fit_gap, gate_candidates, probe_candidates,
                                       unseen_training_seizures, weak_simple_model)
    from qcascade.training.tau import calibrate_tau, calibrate_tau_interictal, logit_threshold, plot_tau_sweep

    sets = windows(ctx)
    va = sets["val"]
    e = selected_electrode(ctx)
    trainer = get_trainer(ctx, "stage3")
    simple_f = fold_batchnorm(trainer.simple, ctx.cfg.quant)
    complex_f = fold_batchnorm(trainer.complex, ctx.cfg.quant)
    zs = _predict(simple_f, va.X[:, :, e:e + 1])
    zc = _predict(complex_f, va.X)
    # Long-term validation hours stream from disk: the folding check needs a sample, not every hour.
    lazy = not isinstance(va.X, np.ndarray)
    n_ref = min(len(va.y), 2048) if lazy else len(va.y)
    ref = trainer.predict(va.X.take(slice(0, n_ref)) if lazy else va.X, electrode=e)  # lazy: batch by batch
    fold_err = {"simple_max_abs_logit_change": float(np.max(np.abs(zs[:n_ref] - ref["simple_logits"]))),
                "complex_max_abs_logit_change": float(np.max(np.abs(zc[:n_ref] - ref["complex_logits"])))}
    cands = candidate_validation(ctx, va, e)
    simple_choice, chosen_model = choose_simple(ctx, cands, set(sets["test"].record_ids.tolist()))
    if chosen_model is not None:  # simple_model: auto deploys the chosen candidate trained alone (BN-folded)
        simple_f, zs = chosen_model, cands[simple_choice["chosen"]]["val_logits"]
    macs_s, macs_c = count_macs(simple_f)["total"], count_macs(complex_f)["total"]
    # "Complex-only" is the honest baseline trained on every window, not the cascade's own
    # complex model: the cascade must stay within the margin of what it replaces.
    complex_only = ctx.artifacts.complex_only or load_model(ctx.unit_dir / "baselines" / "complex_only.h5")
    z_base = _predict(complex_only, va.X)
    ref_base = window_metrics(va.y, z_base, z_base.argmax(1))
    # Every gate variant is calibrated the same way, so the report can compare them at their own
    # taus; the configured one (or the one train.gate: auto picks) is deployed.
    train = ctx.cfg.train
    watch = sentinel_watch(ctx, e) if train.gate_sentinel_ratio else None
    spec = train.sentinel_spec(ctx.cfg.data.n_chans, electrode=e, watch=watch)
    if spec is None and train.gate_sentinel_ratio:
        log.info("%s: the gate's sentinel is off: it would read %d electrode(s), fewer than "
                 "train.gate_sentinel_electrodes (%d)", ctx.unit, ctx.cfg.data.n_chans if watch is None else len(watch),
                 train.gate_sentinel_electrodes)
    up_val = None if spec is None else sentinel_on(va, spec, ctx.cfg.quant)
    ops = 0 if spec is None else sentinel_ops(spec.n_watched(ctx.cfg.data.n_chans), ctx.cfg.data.n_times)
    tr = sets["train"]
    zc_train = _predict(complex_f, tr.X)

    def gate_for(simple_model, z_simple) -> dict:
        """Every gate variant calibrated on validation for one simple model, and the deployed one."""
        # A seizure in the training data that the electrode does not see says the test recording can
        # hold one too, which validation (one seizure) may not show: those folds get a probe.
        train_logits = (_predict(simple_model, tr.X[:, :, e:e + 1]), zc_train)
        unseen = unseen_training_seizures(tr, *train_logits, train.gate_unseen_ratio)
        unseen["weak_simple"] = weak_simple_model(va.y, z_simple, ref_base["f1"], train.gate_weak_simple_gap,
                                                  train.gate_weak_simple_max_f1)
        probe_every = train.gate_probe_every or (train.gate_unseen_probe_every
                                                 if unseen["unseen"] or unseen["weak_simple"]["weak"] else 0)
        unseen["probe_every"] = 0 if train.gate_probe_every else probe_every

        def rule_kw(rule, probe, recheck, sentinel, hold) -> dict:
            return gate_rule(rule, va, probe, recheck, up_val if sentinel else None, train.gate_sentinel_every, hold,
                             train.gate_sentinel_interictal_only, hold_max=train.gate_hold_max if hold else 0,
                             fuse=train.gate_fuse, ictal_every=train.gate_ictal_every,
                             ictal_after=train.gate_ictal_after)

        # With fusion every window routed decides as the fused complex path, so that (at tau 1: all
        # routed) is the reference; hidden seizures are still counted against the unfused models.
        ref = ref_base if not train.gate_fuse else window_metrics(
            va.y, None, (fused_difference(z_simple, z_base, train.gate_fuse) > 0).astype(np.int64))

        def calibrate(rule, probe, recheck, sentinel, hold):
            return calibrate_tau(
                z_simple, zc, va.y, macs_s + (ops if sentinel else 0), macs_c, margin=train.tau_margin,
                grid=train.tau_grid(), routing_tolerance=train.tau_routing_tolerance,
                reference_f1=train.tau_reference_f1, margin_windows=train.tau_margin_windows,
                reference_min_f1=train.tau_reference_min_f1,
                reference={"sensitivity": ref["sensitivity"], "f1": ref["f1"]},
                **rule_kw(rule, probe, recheck, sentinel, hold))

        probe_choice = {}
        if train.gate_probe_choices:  # the probe period is chosen first, with the rule training used
            setting = lambda p: (training_rule(train.gate), p, train.gate_recheck_tau if p else 0.0,  # noqa: E731
                                 spec is not None, train.gate_hold)
            rows = probe_candidates([probe_every, *train.gate_probe_choices], lambda p: calibrate(*setting(p)),
                                    lambda tau, p: cascade_decide(z_simple, zc, tau, **rule_kw(*setting(p))), va, zc)
            probe_every, reason = choose_probe_period(rows)
            probe_choice = {"candidates": {str(p): r for p, r in rows.items()}, "chosen": probe_every,
                            "reason": reason, "criterion": PROBE_CRITERION}
        variants = gate_candidates(train, probe_every, spec is not None)
        calibrated = {name: calibrate(rule, probe, recheck, sentinel, hold)
                      for name, rule, probe, recheck, sentinel, hold in variants}
        gate_choice = choose_gate_variant(train, calibrated, variants, va, z_simple, zc, int(va.y.sum()), up_val,
                                          spec is not None, probe_every=probe_every)
        deployed = gate_choice["candidates"][gate_choice["chosen"]]
        tau, sweep = calibrated[gate_choice["chosen"]]
        deployed_kw = gate_rule(deployed["rule"], va, deployed["probe_every"], deployed["recheck_tau"],
                                up_val if deployed["sentinel"] else None, train.gate_sentinel_every, deployed["hold"],
                                train.gate_sentinel_interictal_only, hold_max=deployed["hold_max"], fuse=train.gate_fuse,
                                ictal_every=train.gate_ictal_every,
                                ictal_after=train.gate_ictal_after)
        # A tau that routes past the budget must buy a validation seizure a cheaper one would hide.
        tau, budget = apply_routing_budget(tau, sweep, train.tau_routing_budget, train.tau_routing_budget_max_f1_loss,
                                           lambda t: cascade_decide(z_simple, zc, t, **deployed_kw), va, z_base,
                                           fallback=train.tau_routing_budget_fallback)
        tau_i, tau_i_sweep = None, []
        if train.gate_tau_interictal != "off":
            tau_i, tau_i_sweep = calibrate_tau_interictal(z_simple, zc, va.y, tau, sweep, train.gate_tau_interictal,
                                                          grid=train.tau_grid(), **deployed_kw)
            deployed_kw["tau_interictal"] = tau_i
        return {"train_logits": train_logits, "unseen": unseen, "probe_choice": probe_choice, "variants": variants,
                "calibrated": calibrated,
                "gate_choice": gate_choice, "deployed": deployed, "tau": tau, "sweep": sweep, "budget": budget,
                "deployed_kw": deployed_kw, "tau_i": tau_i, "tau_i_sweep": tau_i_sweep}

    g = gate_for(simple_f, zs)
    prior_choice = {}
    if ctx.cfg.model.simple_prior == CHOOSE:
        from qcascade.simple_choice import choose_between, pooled_simple_copy

        pooled = pooled_simple_copy(ctx)
        pooled_f = fold_batchnorm(pooled, ctx.cfg.quant)
        zs_pooled = _predict(pooled_f, va.X[:, :, e:e + 1])
        g_pooled = gate_for(pooled_f, zs_pooled)
        prior_choice = choose_between(*(cascade_decide(z, zc, x["tau"], **x["deployed_kw"])["routed"].mean()
                                        for z, x in ((zs, g), (zs_pooled, g_pooled))), g["tau"], g_pooled["tau"])
        prior_choice["pooled_bn_fold_max_abs_logit_change"] = float(
            np.max(np.abs(zs_pooled - _predict(pooled, va.X[:, :, e:e + 1]))))
        log.info("%s: model.simple_prior: choose -> %s simple model (validation routing %s)", ctx.unit,
                 prior_choice["chosen"], prior_choice["val_routing"])
        if prior_choice["chosen"] == "pooled":
            simple_f, zs, g = pooled_f, zs_pooled, g_pooled
    unseen_free = {}
    if train.gate_unseen_free_simple == UNSEEN_FREE_CHOOSE and g["unseen"]["unseen"]:
        simple_f, zs, g, unseen_free = _unseen_free_choice(ctx, va, e, simple_choice["chosen"], simple_f, zs, zc, g,
                                                           gate_for, macs_s, macs_c, ops)
    train_logits, unseen, variants, calibrated = g["train_logits"], g["unseen"], g["variants"], g["calibrated"]
    gate_choice, deployed, tau, sweep = g["gate_choice"], g["deployed"], g["tau"], g["sweep"]
    deployed_kw, tau_i, tau_i_sweep = g["deployed_kw"], g["tau_i"], g["tau_i_sweep"]
    post = {}
    if is_longterm(ctx):  # k-of-n smoothing of the decisions, chosen on the validation hours
        dec = cascade_decide(zs, zc, tau, **deployed_kw)
        post = choose_postprocess(ctx, va.y, dec["pred"], va.record_ids, va.start_s)
    plot_tau_sweep(sweep, ctx.path("tau_sweep.png"), chosen_tau=tau, macs_complex=macs_c,
                   title=f"{ctx.unit}: validation tau sweep")
    dep = Deployment(selected_electrode=e, simple_model=simple_choice["chosen"], tau=tau, gate=deployed["rule"],
                     probe_every=deployed["probe_every"], recheck_tau=deployed["recheck_tau"], hold=deployed["hold"],
                     hold_max=deployed["hold_max"], tau_reference_min_f1=train.tau_reference_min_f1, tau_interictal=tau_i,
                     fuse=train.gate_fuse, ictal_every=deployed_kw["ictal_every"], ictal_after=train.gate_ictal_after,
                     sentinel={**spec.as_dict(), "ops": ops} if deployed["sentinel"] else {},
                     logit_threshold=logit_threshold(tau), macs_simple=macs_s,
                     macs_complex=macs_c, bn_fold=fold_err, complex_only_val=ref_base, tau_sweep_val=sweep,
                     gate_variants={name: {"tau": t_r, "rule": r, "probe_every": p, "recheck_tau": c, "sentinel": g,
                                           "hold": h, "hold_max": train.gate_hold_max if h else 0}
                                    for (name, r, p, c, g, h), (t_r, _) in zip(variants, calibrated.values())},
                     choices={"simple_model": simple_choice, "gate": gate_choice, "unseen_seizures": unseen,
                              **({"probe": g["probe_choice"]} if g["probe_choice"] else {}),
                              **({"routing_budget": g["budget"]} if g["budget"] else {}),
                              **({"simple_prior": prior_choice} if prior_choice else {}),
                              **({"unseen_free_simple": unseen_free} if unseen_free else {}),
                              **({"tau_interictal": {"mode": train.gate_tau_interictal, "sweep": tau_i_sweep}}
                                 if tau_i_sweep else {})},
                     postprocess=post)
    dep.fit_gap = fit_gap(ctx, tr, va, e, simple_f, complex_f, complex_only, dep, cands,
                          val_logits=(zs, zc, z_base), train_logits=train_logits)
    atomic_save_keras(simple_f, ctx.path(dep.simple_path))
    atomic_save_keras(complex_f, ctx.path(dep.complex_path))
    ValidationScores(zs, zc, z_base, va.y, va.start_s, va.record_ids, sentinel=up_val).save(ctx.unit_dir)
    save_deployment(ctx, dep)
    # The models just saved, kept for step_evaluate in this process (a resumed run reloads them
    # from the files; reloading gives bit-identical logits, measured). Saves two QKeras model
    # loads and two predict traces per fold.
    ctx.artifacts.deployed = DeployedModels(simple_f, complex_f)


def _unseen_free_choice(ctx, va, e: int, candidate: str, simple_f, zs, zc, g: dict, gate_for, macs_s: int, macs_c: int,
                        ops: int):
    """``train.gate_unseen_free_simple: choose`` (:mod:`qcascade.simple_unseen_free`): the simple model,
    its validation logits and gate to deploy, and the choice record."""
    from qcascade.models.folding import fold_batchnorm
    from qcascade.simple_unseen_free import choose_unseen_free, gate_row, unseen_free_simple

    if is_longterm(ctx):  # its training windows stream from disk
        return simple_f, zs, g, {"chosen": "own", "skipped": "long-term recordings"}
    model, record = unseen_free_simple(ctx, f"simple_{candidate}", e, g["unseen"]["unseen"])
    info = {k: v for k, v in record.items() if k != "history"}
    if model is None:
        return simple_f, zs, g, {"chosen": "own", **info}
    free_f = fold_batchnorm(model, ctx.cfg.quant)
    zs_free = _predict(free_f, va.X[:, :, e:e + 1])
    g_free = gate_for(free_f, zs_free)
    rows = [gate_row(va, z, zc, x, macs_s + (ops if x["deployed"]["sentinel"] else 0), macs_c)
            for z, x in ((zs, g), (zs_free, g_free))]
    choice = {**choose_unseen_free(*rows), **info}
    log.info("%s: train.gate_unseen_free_simple: choose -> %s (validation MACs/window %.0f own, %.0f unseen-free)",
             ctx.unit, choice["chosen"], rows[0]["macs_per_window"], rows[1]["macs_per_window"])
    if choice["chosen"] == "unseen_free":
        return free_f, zs_free, g_free, choice
    return simple_f, zs, g, choice


def _gate_variants(dep: Deployment, zs: np.ndarray, zc: np.ndarray, te, z_only: np.ndarray, up=None) -> dict:
    """Test F1, routing and hidden seizures of every gate variant at the tau calibrated for it on validation."""
    from qcascade.evaluation import cascade_efficiency, window_metrics
    from qcascade.gate import cascade_predict
    from qcascade.steps_choose import hidden_on

    out = {}
    for name, v in dep.gate_variants.items():
        with_sentinel = bool(v.get("sentinel"))
        p, r = cascade_predict(zs, zc, v["tau"], **gate_rule(v.get("rule", name), te, v.get("probe_every", 0),
                                                                 v.get("recheck_tau", 0.0), up if with_sentinel else None,
                                                                 dep.sentinel.get("every", 1), v.get("hold", 0),
                                                                 bool(dep.sentinel.get("interictal_only", False)),
                                                                 hold_max=v.get("hold_max", 0), fuse=dep.fuse,
                                                                 ictal_every=dep.ictal_every,
                                                                 ictal_after=dep.ictal_after))
        m = window_metrics(te.y, None, p)
        eff = cascade_efficiency(r, dep.macs_simple + (dep.sentinel.get("ops", 0) if with_sentinel else 0),
                                 dep.macs_complex)
        out[name] = {"tau": v["tau"], "f1": m["f1"], "sensitivity": m["sensitivity"], "specificity": m["specificity"],
                     "routing_rate": eff["routing_rate"], "macs_ratio_vs_complex": eff["macs_ratio_vs_complex"],
                     "hidden_vs_complex_only": hidden_on(te, p, z_only.argmax(1))["n_missed_but_reference_detected"],
                     "hidden_vs_cascade_complex": hidden_on(te, p, zc.argmax(1))["n_missed_but_reference_detected"]}
    return out


def step_evaluate(ctx) -> None:
    """Test metrics of simple-only, complex-only and the cascade; events; sweep; plots."""
    from qcascade.evaluation import (cascade_efficiency, event_metrics, plot_confusion_matrix,
                                     plot_training_curves, window_metrics)
    from qcascade.gate import cascade_decide, cascade_predict
    from qcascade.routing_reasons import routing_reasons

    sets = windows(ctx)
    te = sets["test"]
    dep = deployment(ctx)
    e, tau = dep.selected_electrode, dep.tau
    rule = deployed_gate(dep, te, ctx.cfg.quant)  # the sentinel as deployed (deploy.json), if any
    up = rule["sentinel"]
    simple_m, complex_m = deployed_models(ctx)
    zs = _predict(simple_m, te.X[:, :, e:e + 1])
    zc = _predict(complex_m, te.X)
    dec = cascade_decide(zs, zc, tau, **rule)
    pred, routed = dec["pred"], dec["routed"]
    z_only = np.load(ctx.unit_dir / "baselines" / "complex_only_test_logits.npy")
    p_feat = np.load(ctx.unit_dir / "baselines" / "feature_baseline_test_proba.npy")
    WindowScores(simple=zs, complex=zc, complex_only=z_only, pred=pred, routed=routed, prev_cls=dec["prev_cls"],
                 gap=dec["gap"], held=dec["held"], y=te.y, feature=p_feat, start_s=te.start_s,
                 record_ids=te.record_ids, sentinel=up if dep.sentinel else None).save(ctx.unit_dir)
    # "cascade_complex": the cascade's own complex model on every window, so a gap to complex-only
    # can be split into what the gate did and how the two complex models differ.
    preds = {"simple_only": zs.argmax(1), "complex_only": z_only.argmax(1), "cascade_complex": zc.argmax(1),
             "cascade": pred, "feature_baseline": (p_feat >= 0.5).astype(int)}
    scores = {"simple_only": zs, "complex_only": z_only, "cascade_complex": zc,
              "cascade": np.where(routed[:, None], zc, zs), "feature_baseline": p_feat}
    test = {k: window_metrics(te.y, scores[k], preds[k]) for k in preds}
    test["cascade"].update(cascade_efficiency(routed, dep.macs_every_window, dep.macs_complex))
    test["cascade"]["routing_reasons"] = routing_reasons(zs, zc, te.y, tau, dec, **rule)
    ev = {k: event_metrics(te.y, preds[k], te.start_s, te.record_ids) for k in preds}
    test["events"] = ev["cascade"]
    test["events_by_model"] = {k: ev[k] for k in ("simple_only", "complex_only", "cascade_complex",
                                                  "feature_baseline")}
    from qcascade.steps_choose import hidden_on

    # Seizures a complex model detects on every window that the cascade misses (its gate hid them).
    test["hidden_seizures"] = {"vs_complex_only": hidden_on(te, pred, preds["complex_only"]),
                               "vs_cascade_complex": hidden_on(te, pred, preds["cascade_complex"])}
    test["cascade"]["events_missed_but_complex_detected"] = \
        test["hidden_seizures"]["vs_complex_only"]["n_missed_but_reference_detected"]
    if is_longterm(ctx):  # events over the continuous hours, smoothed; routing per hour
        test.update(evaluate_longterm(ctx, dep, te.y, pred, routed, te.record_ids, te.start_s))
    sweep = []
    for row in dep.tau_sweep_val:  # the same grid on test, for the accuracy-vs-cost curve
        # (a second threshold above a smaller tau comes down with it)
        p, r = cascade_predict(zs, zc, row["tau"], **{**rule, "tau_interictal": None if dep.tau_interictal is None
                                                      else min(dep.tau_interictal, row["tau"])})
        m = window_metrics(te.y, None, p)
        sweep.append({"tau": row["tau"], "routing_rate": float(r.mean()), "f1": m["f1"],
                      "sensitivity": m["sensitivity"], "specificity": m["specificity"],
                      "avg_macs_per_window": dep.macs_every_window + float(r.mean()) * dep.macs_complex})
    base = json.loads((ctx.unit_dir / "baselines.json").read_text())
    cand = {n.split("_")[1]: {"f1": b["test_metrics"]["f1"], "auc": b["test_metrics"]["auc"],
                              "macs_per_window": b["macs_per_window"]}
            for n, b in base.items() if n.startswith("simple_")}
    data = json.loads((ctx.unit_dir / "data.json").read_text())
    metrics = {"dataset": ctx.cfg.data.dataset, "patient": ctx.unit, "split": ctx.cfg.data.split,
               "n_windows": data["n_windows"], "input_scaling": data.get("input_scaling", "train_stats"),
               "input_scaling_reason": data.get("scaling_choice", {}).get("reason", "configured"),
               "selected_electrode": e, "soz_electrodes": onset_zone(ctx),
               "electrode_quality": selection(ctx).electrode_quality,
               "simple_model": dep.simple_model, "tau": tau, "tau_interictal": dep.tau_interictal,
               "test": test, "tau_sweep": sweep,
               "tau_reference_trusted": all(r.get("reference_trusted", True) for r in dep.tau_sweep_val),
               "complex_only_val_f1": dep.complex_only_val.get("f1"),
               "candidates": cand, "bn_fold": dep.bn_fold,
               "complex_vs_complex_only": {
                   "max_abs_logit_diff": float(np.max(np.abs(zc - z_only))) if len(zc) else 0.0,
                   "decision_agreement": float(np.mean(zc.argmax(1) == z_only.argmax(1))) if len(zc) else 1.0,
                   "trained_separately": bool(base.get("complex_only", {}).get("trained_separately", True))},
               "gate": rule["rule"], "probe_every": rule["probe_every"], "recheck_tau": rule["recheck_tau"],
               "hold": rule["hold"], "hold_max": rule["hold_max"], "fuse": rule["fuse"], "ictal_every": rule["ictal_every"],
               "ictal_after": rule["ictal_after"],
               "sentinel": dep.sentinel,
               "gate_variants": _gate_variants(dep, zs, zc, te, z_only, up),
               "choices": dep.choices, "fit_gap": dep.fit_gap, "complex_prior": prior_summary(ctx),
               "complex_electrodes": _complex_electrodes(ctx)}
    from qcascade.timeline import plot_test_timelines

    metrics["test_records"] = list(dict.fromkeys(te.record_ids.tolist()))
    metrics["val_records"] = list(dict.fromkeys(sets["val"].record_ids.tolist()))
    metrics["timelines"] = plot_test_timelines(ctx.unit_dir, te, e, zs, zc, routed, pred, tau, ctx.unit)
    atomic_write_json(ctx.path("fold_metrics.json"), metrics)  # this fold alone (step_folds pools)
    plot_confusion_matrix(te.y, pred, ctx.path("confusion.png"), title=f"{ctx.unit}: cascade (test)")
    hist = {f"stage{s}": json.loads((ctx.unit_dir / f"history_stage{s}.json").read_text()) for s in (1, 2, 3)}
    plot_training_curves(hist, ctx.path("training_curves.png"))
    ctx.artifacts.deployed = None  # the hardware steps convert the saved files, as `qcascade convert` does


def _complex_electrodes(ctx) -> dict | None:
    """What ``complex_electrodes.json`` recorded (``model.complex_electrodes``), or None: every electrode."""
    path = ctx.unit_dir / "complex_electrodes.json"
    return json.loads(path.read_text()) if ctx.cfg.model.complex_electrode_count() and path.exists() else None
