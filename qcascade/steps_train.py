"""Training-side build steps: data, the three training stages, selection, baselines, tau, evaluation.

Each step writes into the unit folder (``ctx.unit_dir``) and reads what earlier steps wrote, so a
run resumes in a fresh process. Windows are rebuilt deterministically from the recordings and the
split saved in ``data.json`` (they are not stored: 128 electrodes x 512 samples per window).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from qcascade.errors import DataError, RunDirError
from qcascade.io_utils import atomic_save_keras, atomic_save_npy, atomic_save_npz, atomic_write_json

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data
def windows(ctx) -> dict:
    """Train/val/test :class:`qcascade.data.WindowSet` of the unit (cached per process)."""
    if "windows" not in ctx.cache:
        from qcascade.data import build_windowsets
        from qcascade.folds import carve_validation, unit_splits

        d = ctx.cfg.data
        splits, carve = unit_splits(ctx)  # the fold's split (fold 0 for the unit itself)
        fs = int(d.sfreq)
        sets, normalizer = build_windowsets(
            splits, n_chans=d.n_chans, n_times=d.n_times, stride=int(round(d.stride_s * fs)),
            train_nonictal_stride=int(round(d.train_nonictal_stride_s * fs)), ictal_overlap=d.ictal_overlap,
            seed=ctx.cfg.train.seed)
        blocks = []
        for rec in carve:  # two-seizure patients: validation is a time block of the training record
            sets["train"], val, block = carve_validation(sets["train"], rec, d.n_times)
            sets["val"] = val if not len(sets["val"]) else _concat(sets["val"], val)
            blocks.append(block)
        ctx.cache["val_blocks"] = blocks
        for name, ws in sets.items():
            if len(ws.y) == 0:
                raise DataError(f"{ctx.unit}: the {name} split has no windows")
        ctx.cache["windows"] = sets
        ctx.cache["splits"] = splits
        ctx.cache["normalizer"] = normalizer
        saved = ctx.unit_dir / "data.json"
        if saved.exists():
            want = json.loads(saved.read_text())["n_windows"]
            got = {k: int(len(v.y)) for k, v in sets.items()}
            if want != got:
                raise RunDirError(f"{saved}: the recordings changed since this run started "
                                  f"(windows {want} then, {got} now); rerun with --force")
    return ctx.cache["windows"]


def _concat(a, b):
    from qcascade.data.windows import WindowSet

    return WindowSet(np.concatenate([a.X, b.X]), np.concatenate([a.y, b.y]), a.mask | b.mask,
                     np.concatenate([a.record_ids, b.record_ids]), np.concatenate([a.start_s, b.start_s]),
                     np.concatenate([a.patient_ids, b.patient_ids]), {**a.patient_masks, **b.patient_masks})


def step_prepare_data(ctx) -> None:
    sets = windows(ctx)
    splits = ctx.cache["splits"]
    info = {
        "unit": ctx.unit,
        "split_scheme": ctx.cfg.data.split,
        "records": {k: [r.record_id for r in v] for k, v in splits.items()},
        "val_time_blocks": ctx.cache["val_blocks"],
        "n_windows": {k: int(len(v.y)) for k, v in sets.items()},
        "n_ictal": {k: int(np.sum(v.y)) for k, v in sets.items()},
        "n_electrodes": int(np.sum(sets["train"].mask)),
        "mask": [bool(m) for m in sets["train"].mask],
    }
    ctx.cache["normalizer"].save(ctx.path("normalizer.npz"))
    atomic_write_json(ctx.path("data.json"), info)


def _soz(ctx):
    """Onset-zone electrodes when the data came from qcascade's synthetic generator (which writes
    ``ground_truth.json`` next to the recordings), else None: real recordings carry no such label."""
    if ctx.unit == "pooled":
        return None
    root = ctx.run_dir / "synthetic_data" if ctx.cfg.data.dataset == "synthetic" else Path(ctx.cfg.data.data_dir)
    gt = root / "ground_truth.json"
    if gt.exists():
        return json.loads(gt.read_text()).get("patients", {}).get(ctx.unit, {}).get("soz_electrodes")
    return None


# ----------------------------------------------------------------------------- models
def _simple_name(cfg) -> str:
    return f"simple_{cfg.model.simple_model}"


def _int_bits(ctx, name: str, X_calib: np.ndarray) -> dict:
    """Integer bits per layer, measured once on training windows and saved for resumes."""
    from qcascade.models import calibrate_int_bits

    path = ctx.unit_dir / "checkpoints" / f"int_bits_{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    kw = {"n_times": ctx.cfg.data.n_times}
    if not name.startswith("simple"):
        kw["n_chans"] = ctx.cfg.data.n_chans
    ib = calibrate_int_bits(name, ctx.cfg.quant, X_calib, seed=ctx.cfg.train.seed, **kw)
    atomic_write_json(path, ib)
    return ib


def model_factory(ctx, name: str):
    """``() -> fresh model`` with the unit's measured integer bits (for baselines and resumes).

    The factory seeds itself, so a model's initial weights and dropout generators depend on
    ``train.seed`` and ``name`` only, not on what was built before it: the cascade's complex
    model and the complex-only baseline start from the same weights (paired comparison).
    """
    import tensorflow as tf

    from qcascade.models import build_model

    sets = windows(ctx)
    X, mask = sets["train"].X, sets["train"].mask
    calib = _single_channel_calib(X, mask) if name.startswith("simple") else X[:256]
    ib = _int_bits(ctx, name, calib)
    kw = {"n_times": ctx.cfg.data.n_times}
    if not name.startswith("simple"):
        kw["n_chans"] = ctx.cfg.data.n_chans
    seed = ctx.cfg.train.seed

    def build():
        tf.keras.utils.set_random_seed(seed)
        return build_model(name, ctx.cfg.quant, int_bits=ib, **kw)

    return build


def _trainer(ctx, load: str | None):
    """The unit's CascadeTrainer, built in the strategy scope, with weights of stage ``load``."""
    if "trainer" not in ctx.cache:
        from qcascade.models.selector import deployed_electrode
        from qcascade.training.loop import set_determinism
        from qcascade.training.stages import CascadeTrainer

        sets = windows(ctx)
        mask = sets["train"].mask
        make_simple, make_complex = model_factory(ctx, _simple_name(ctx.cfg)), model_factory(ctx, "complex")
        strategy = _strategy(ctx)
        set_determinism(ctx.cfg.train.seed, ctx.cfg.train.deterministic_ops)
        with strategy.scope():
            selector = masked_selector(mask, ctx.cfg.train.temp_start)
            selector(sets["train"].X[:2])  # create its variables
            if ctx.cfg.model.selector_init == "separability":
                prior = ctx.cfg.model.selector_init_scale * electrode_separability(sets["train"])
                selector.inner.electrode_logits.assign(prior.astype(np.float32))
            trainer = CascadeTrainer(selector, make_simple(), make_complex(), mask, ctx.cfg.train, strategy,
                                     electrode_fn=lambda sel, X, m: deployed_electrode(sel.inner, X, m))
        ctx.cache["trainer"] = trainer
    trainer = ctx.cache["trainer"]
    if load is not None and ctx.cache.get("loaded") != load:
        ckpt = ctx.unit_dir / "checkpoints" / load
        if not (ckpt / "state.json").exists():
            raise RunDirError(f"{ckpt}: missing; rerun with --from-step of the stage that writes it")
        for part in ("selector", "simple", "complex"):
            load_weights(getattr(trainer, part), ckpt / f"{part}.npz")
        trainer.load_state_dict(json.loads((ckpt / "state.json").read_text()))
        ctx.cache["loaded"] = load
    return trainer


def _train_stage(ctx, stage: int, load: str | None) -> None:
    sets = windows(ctx)
    trainer = _trainer(ctx, load)
    if stage > 1:
        trainer.electrode = _electrode(ctx)  # stages 2-3 train on the deployed electrode
    epochs = getattr(ctx.cfg.train, f"epochs_stage{stage}")
    history = trainer.run_stage(stage, sets["train"].X, sets["train"].y, sets["val"].X, sets["val"].y,
                                epochs=epochs)
    from qcascade.models.folding import bn_sample

    _refresh_batchnorm(trainer, bn_sample(sets["train"].X), stage)
    ckpt = ctx.unit_dir / "checkpoints" / f"stage{stage}"
    ckpt.mkdir(parents=True, exist_ok=True)
    for part in ("selector", "simple", "complex"):
        save_weights(getattr(trainer, part), ckpt / f"{part}.npz")
    atomic_write_json(ckpt / "state.json", trainer.state_dict())  # written last: marks completeness
    ctx.cache["loaded"] = f"stage{stage}"
    atomic_write_json(ctx.path(f"history_stage{stage}.json"), history)


def _refresh_batchnorm(trainer, X: np.ndarray, stage: int) -> None:
    """Exact BN statistics of the trained models on training windows, before they are saved.

    Short trainings leave BN moving averages lagging; the frozen simple model of stage 2, the
    validation metrics and the folded export models all run in inference mode.
    """
    from qcascade.models.folding import refresh_batchnorm

    if trainer.electrode is not None:
        channel = X[:, :, trainer.electrode:trainer.electrode + 1]
    else:  # stage 1: the simple model was trained on the selector's mixture
        channel = np.concatenate([trainer.selector(X[i:i + 256], training=False)[0].numpy()
                                  for i in range(0, len(X), 256)])
    refresh_batchnorm(trainer.simple, channel)
    if stage > 1:
        refresh_batchnorm(trainer.complex, X)


def step_train_simple(ctx) -> None:
    _train_stage(ctx, 1, None)


def step_train_complex(ctx) -> None:
    _train_stage(ctx, 2, "stage1")


def step_finetune(ctx) -> None:
    _train_stage(ctx, 3, "stage2")


def electrode_separability(ws) -> np.ndarray:
    """``2 * |AUC - 0.5|`` of each electrode's line length on windows ``ws`` (0 for masked ones).

    Returns:
        ``(n_chans,)`` float in [0, 1]; 1 = the electrode's line length separates the classes.
    """
    from sklearn.metrics import roc_auc_score

    out = np.zeros(ws.X.shape[-1])
    if len(np.unique(ws.y)) < 2:
        return out
    for lo in range(0, ws.X.shape[-1], 16):  # bounded temporaries: (n, 16) at a time
        ll = np.abs(np.diff(ws.X[:, :, lo:lo + 16], axis=1)).mean(1)
        for j in range(ll.shape[1]):
            if ws.mask[lo + j]:
                out[lo + j] = 2 * abs(roc_auc_score(ws.y, ll[:, j]) - 0.5)
    return out


def masked_selector(mask: np.ndarray, temperature: float):
    """The ChannelSelector with the unit's electrode mask bound: ``x -> (channel, weights)``."""
    import tensorflow as tf

    from qcascade.models.selector import ChannelSelector

    class MaskedSelector(tf.keras.layers.Layer):
        def __init__(self, **kw):
            super().__init__(name="masked_selector", **kw)
            self.inner = ChannelSelector(n_chans=len(mask), temperature=temperature)
            self.temperature = self.inner.temperature
            self.electrode_mask = tf.constant(np.asarray(mask, bool))

        def call(self, x, training=None):
            return self.inner(x, self.electrode_mask, training=training)

    return MaskedSelector()


def step_select_electrode(ctx) -> None:
    """Hard selection of one electrode from training windows (never test)."""
    from qcascade.models.selector import mean_selection_weights, plot_selection_weights, selection_entropy

    sets = windows(ctx)
    tr = sets["train"]
    trainer = _trainer(ctx, "stage1")
    electrode = trainer.deployed_electrode(tr.X)
    weights = mean_selection_weights(trainer.selector.inner, tr.X, tr.mask)
    soz = _soz(ctx)
    plot_selection_weights(weights, tr.mask, ctx.path("selector_weights.png"),
                           title=f"{ctx.unit}: selected electrode {electrode}" + (f", onset zone {soz}" if soz else ""))
    _, w_batch = trainer.selector(tr.X[:256], training=False)
    atomic_write_json(ctx.path("selection.json"), {
        "selected_electrode": electrode, "soz_electrodes": soz, "in_onset_zone": None if soz is None else electrode in soz,
        "mean_weights": [float(v) for v in weights], "max_mean_weight": float(weights.max()),
        "entropy_nats": float(selection_entropy(w_batch)), "temperature": float(trainer.temperature.numpy())})


def _electrode(ctx) -> int:
    return int(json.loads((ctx.unit_dir / "selection.json").read_text())["selected_electrode"])


# ----------------------------------------------------------------------------- baselines
def step_baselines(ctx) -> None:
    """Complex-only on all windows and each simple candidate alone, same budget, same test set,
    each BN-folded as the cascade's models are deployed."""
    from qcascade.models.counting import count_macs
    from qcascade.models.folding import fold_batchnorm
    from qcascade.training.baselines import run_baselines

    sets = windows(ctx)
    tr, va, te = sets["train"], sets["val"], sets["test"]
    names = ["simple_A", "simple_B", "simple_C"] if ctx.cfg.model.train_candidates else [_simple_name(ctx.cfg)]
    if getattr(ctx, "fold", None) is not None:
        names = []  # the candidate study (which simple model to deploy) runs on the deployed fold only
    factories = {n: model_factory(ctx, n) for n in names}
    results = run_baselines(model_factory(ctx, "complex"), factories, _electrode(ctx), tr.X, tr.y, te.X, te.y,
                            ctx.cfg.train, _strategy(ctx), va.X, va.y,
                            export=lambda m: fold_batchnorm(m, ctx.cfg.quant))
    out = {}
    for name, res in results.items():
        atomic_save_keras(res.model, ctx.path("baselines", f"{name}.h5"))
        atomic_save_npy(ctx.path("baselines", f"{name}_test_logits.npy"), res.test_logits)
        out[name] = {**res.summary(), "macs_per_window": count_macs(res.model)["total"]}
    atomic_write_json(ctx.path("baselines.json"), out)


# ----------------------------------------------------------------------------- helpers
def _strategy(ctx):
    if "strategy" not in ctx.cache:
        from qcascade.training.loop import get_strategy

        ctx.cache["strategy"] = get_strategy()
    return ctx.cache["strategy"]


def _single_channel_calib(X: np.ndarray, mask: np.ndarray, n: int = 64) -> np.ndarray:
    """Calibration windows for a one-electrode model before the electrode is chosen.

    Every live electrode of the first ``n`` windows becomes its own ``(512, 1)`` window: after
    per-electrode normalisation their ranges are alike, and the choice is not known yet.
    """
    live = np.flatnonzero(mask)
    sub = X[:n][:, :, live]
    return np.ascontiguousarray(sub.transpose(0, 2, 1).reshape(-1, X.shape[1], 1))[:2048]


def save_weights(model, path) -> None:
    """Weights as an ``.npz`` list (works for models and custom layers alike), atomically."""
    atomic_save_npz(path, *model.get_weights())


def load_weights(model, path) -> None:
    with np.load(path) as z:
        model.set_weights([z[f"arr_{i}"] for i in range(len(z.files))])


# ----------------------------------------------------------------------------- deploy + evaluate
def _predict(model, X: np.ndarray) -> np.ndarray:
    return model.predict(X, batch_size=256, verbose=0)


def deployed_models(ctx):
    """The BN-folded QKeras export models ``(simple, complex)`` as saved (and reloaded) from disk."""
    if "deployed" not in ctx.cache:
        from qcascade.models import load_model

        ctx.cache["deployed"] = (load_model(ctx.unit_dir / "deploy" / "simple.h5"),
                                 load_model(ctx.unit_dir / "deploy" / "complex.h5"))
    return ctx.cache["deployed"]


def deploy_info(ctx) -> dict:
    return json.loads((ctx.unit_dir / "deploy" / "deploy.json").read_text())


def step_calibrate(ctx) -> None:
    """Fold BatchNorm into the export models, then calibrate tau on validation windows only."""
    from qcascade.evaluation import window_metrics
    from qcascade.models import load_model
    from qcascade.models.counting import count_macs
    from qcascade.models.folding import fold_batchnorm
    from qcascade.gate import GATE_RULES
    from qcascade.training.tau import calibrate_tau, logit_threshold, plot_tau_sweep

    sets = windows(ctx)
    va = sets["val"]
    e = _electrode(ctx)
    trainer = _trainer(ctx, "stage3")
    simple_f = fold_batchnorm(trainer.simple, ctx.cfg.quant)
    complex_f = fold_batchnorm(trainer.complex, ctx.cfg.quant)
    zs = _predict(simple_f, va.X[:, :, e:e + 1])
    zc = _predict(complex_f, va.X)
    ref = trainer.predict(va.X, electrode=e)
    fold_err = {"simple_max_abs_logit_change": float(np.max(np.abs(zs - ref["simple_logits"]))),
                "complex_max_abs_logit_change": float(np.max(np.abs(zc - ref["complex_logits"])))}
    macs_s, macs_c = count_macs(simple_f)["total"], count_macs(complex_f)["total"]
    # "Complex-only" is the honest baseline trained on every window, not the cascade's own
    # complex model: the cascade must stay within the margin of what it replaces.
    z_base = _predict(load_model(ctx.unit_dir / "baselines" / "complex_only.h5"), va.X)
    ref_base = window_metrics(va.y, z_base, z_base.argmax(1))
    # Every gate rule is calibrated the same way, so the report can compare them at their own
    # taus; the configured one is deployed.
    train = ctx.cfg.train
    calibrated = {rule: calibrate_tau(
        zs, zc, va.y, macs_s, macs_c, margin=train.tau_margin, grid=train.tau_grid(),
        routing_tolerance=train.tau_routing_tolerance, reference_f1=train.tau_reference_f1,
        margin_windows=train.tau_margin_windows,
        reference={"sensitivity": ref_base["sensitivity"], "f1": ref_base["f1"]}, **gate_rule(rule, va))
        for rule in GATE_RULES}
    tau, sweep = calibrated[train.gate]
    plot_tau_sweep(sweep, ctx.path("tau_sweep.png"), chosen_tau=tau, macs_complex=macs_c,
                   title=f"{ctx.unit}: validation tau sweep")
    atomic_save_keras(simple_f, ctx.path("deploy", "simple.h5"))
    atomic_save_keras(complex_f, ctx.path("deploy", "complex.h5"))
    atomic_write_json(ctx.path("deploy", "deploy.json"), {
        "selected_electrode": e, "simple_model": ctx.cfg.model.simple_model, "tau": tau, "gate": train.gate,
        "logit_threshold": logit_threshold(tau), "macs_simple": macs_s, "macs_complex": macs_c,
        "bn_fold": fold_err, "complex_only_val": ref_base, "tau_sweep_val": sweep,
        "gate_variants": {rule: {"tau": t_r} for rule, (t_r, _) in calibrated.items()}})
    ctx.cache.pop("deployed", None)


def gate_rule(rule: str | None, ws) -> dict:
    """Keyword arguments of ``qcascade.gate.cascade_decide`` for gate ``rule`` on window set ``ws``.

    ``rule`` is ``deploy.json``'s ``gate``; run folders from before the gate rules existed have
    none and deployed the textbook ``confidence`` gate.
    """
    return {"rule": rule or "confidence", "record_ids": ws.record_ids, "start_s": ws.start_s}


def _gate_variants(dep: dict, zs: np.ndarray, zc: np.ndarray, te) -> dict:
    """Test F1 and routing of every gate rule at the tau calibrated for it on validation."""
    from qcascade.evaluation import cascade_efficiency, window_metrics
    from qcascade.gate import cascade_predict

    out = {}
    for name, v in dep.get("gate_variants", {}).items():
        p, r = cascade_predict(zs, zc, v["tau"], **gate_rule(name, te))
        m = window_metrics(te.y, None, p)
        eff = cascade_efficiency(r, dep["macs_simple"], dep["macs_complex"])
        out[name] = {"tau": v["tau"], "f1": m["f1"], "sensitivity": m["sensitivity"], "specificity": m["specificity"],
                     "routing_rate": eff["routing_rate"], "macs_ratio_vs_complex": eff["macs_ratio_vs_complex"]}
    return out


def step_evaluate(ctx) -> None:
    """Test metrics of simple-only, complex-only and the cascade; events; sweep; plots."""
    from qcascade.evaluation import (cascade_efficiency, event_metrics, plot_confusion_matrix,
                                     plot_training_curves, window_metrics)
    from qcascade.gate import cascade_decide, cascade_predict

    sets = windows(ctx)
    te = sets["test"]
    dep = deploy_info(ctx)
    e, tau = dep["selected_electrode"], dep["tau"]
    rule = gate_rule(dep.get("gate"), te)
    simple_m, complex_m = deployed_models(ctx)
    zs = _predict(simple_m, te.X[:, :, e:e + 1])
    zc = _predict(complex_m, te.X)
    dec = cascade_decide(zs, zc, tau, **rule)
    pred, routed = dec["pred"], dec["routed"]
    z_only = np.load(ctx.unit_dir / "baselines" / "complex_only_test_logits.npy")
    p_feat = np.load(ctx.unit_dir / "baselines" / "feature_baseline_test_proba.npy")
    atomic_save_npz(ctx.path("test_logits.npz"), simple=zs, complex=zc, complex_only=z_only, pred=pred, routed=routed,
                    prev_cls=dec["prev_cls"], y=te.y, feature=p_feat, start_s=te.start_s,
                    record_ids=te.record_ids.astype(str))
    # "cascade_complex": the cascade's own complex model on every window, so a gap to complex-only
    # can be split into what the gate did and how the two complex models differ.
    preds = {"simple_only": zs.argmax(1), "complex_only": z_only.argmax(1), "cascade_complex": zc.argmax(1),
             "cascade": pred, "feature_baseline": (p_feat >= 0.5).astype(int)}
    scores = {"simple_only": zs, "complex_only": z_only, "cascade_complex": zc,
              "cascade": np.where(routed[:, None], zc, zs), "feature_baseline": p_feat}
    test = {k: window_metrics(te.y, scores[k], preds[k]) for k in preds}
    test["cascade"].update(cascade_efficiency(routed, dep["macs_simple"], dep["macs_complex"]))
    ev = {k: event_metrics(te.y, preds[k], te.start_s, te.record_ids) for k in preds}
    test["events"] = ev["cascade"]
    test["events_by_model"] = {k: ev[k] for k in ("simple_only", "complex_only", "cascade_complex",
                                                  "feature_baseline")}
    sweep = []
    for row in dep["tau_sweep_val"]:  # the same grid on test, for the accuracy-vs-cost curve
        p, r = cascade_predict(zs, zc, row["tau"], **rule)
        m = window_metrics(te.y, None, p)
        sweep.append({"tau": row["tau"], "routing_rate": float(r.mean()), "f1": m["f1"],
                      "sensitivity": m["sensitivity"], "specificity": m["specificity"],
                      "avg_macs_per_window": dep["macs_simple"] + float(r.mean()) * dep["macs_complex"]})
    base = json.loads((ctx.unit_dir / "baselines.json").read_text())
    cand = {n.split("_")[1]: {"f1": b["test_metrics"]["f1"], "auc": b["test_metrics"]["auc"],
                              "macs_per_window": b["macs_per_window"]}
            for n, b in base.items() if n.startswith("simple_")}
    data = json.loads((ctx.unit_dir / "data.json").read_text())
    metrics = {"dataset": ctx.cfg.data.dataset, "patient": ctx.unit, "split": ctx.cfg.data.split,
               "n_windows": data["n_windows"], "selected_electrode": e, "soz_electrodes": _soz(ctx),
               "simple_model": dep["simple_model"], "tau": tau, "test": test, "tau_sweep": sweep,
               "candidates": cand, "bn_fold": dep["bn_fold"],
               "complex_vs_complex_only": {
                   "max_abs_logit_diff": float(np.max(np.abs(zc - z_only))) if len(zc) else 0.0,
                   "decision_agreement": float(np.mean(zc.argmax(1) == z_only.argmax(1))) if len(zc) else 1.0},
               "gate": rule["rule"],
               "gate_variants": _gate_variants(dep, zs, zc, te)}
    old = ctx.unit_dir / "metrics.json"
    if old.exists() and "csim" in json.loads(old.read_text()):
        metrics["csim"] = json.loads(old.read_text())["csim"]
    from qcascade.timeline import plot_test_timelines

    metrics["test_records"] = list(dict.fromkeys(te.record_ids.tolist()))
    metrics["val_records"] = list(dict.fromkeys(sets["val"].record_ids.tolist()))
    metrics["timelines"] = plot_test_timelines(ctx.unit_dir, te, e, zs, zc, routed, pred, tau, ctx.unit)
    atomic_write_json(ctx.path("fold_metrics.json"), metrics)  # this fold alone (step_folds pools)
    plot_confusion_matrix(te.y, pred, ctx.path("confusion.png"), title=f"{ctx.unit}: cascade (test)")
    hist = {f"stage{s}": json.loads((ctx.unit_dir / f"history_stage{s}.json").read_text()) for s in (1, 2, 3)}
    plot_training_curves(hist, ctx.path("training_curves.png"))
    atomic_write_json(ctx.path("metrics.json"), metrics)
