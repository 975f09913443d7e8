"""Training steps: the three cascade stages, electrode selection and the baselines.

Each step writes its checkpoints into the unit folder and reads what earlier steps wrote, so a
run resumes in a fresh process.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from qcascade.artifacts import Selection, save_selection, selection
from qcascade.errors import RunDirError
from qcascade.io_utils import atomic_save_keras, atomic_save_npy, atomic_save_npz, atomic_write_json
from qcascade.prior import run_prior_dir
from qcascade.simple_pool import OTHER_PATIENTS as SIMPLE_POOLED
from qcascade.selector_prior import electrode_separability, prior_line_length
from qcascade.steps_data import onset_zone, windows
from qcascade.tensors import as_tensor

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- models
def _simple_name(cfg) -> str:
    """The simple model the cascade's stages train (``auto`` trains A; the choice comes at calibration)."""
    m = cfg.model.simple_model
    return f"simple_{'A' if m == 'auto' else m}"


def _int_bits(ctx, name: str, X_calib: np.ndarray) -> dict:
    """Integer bits per layer, measured once on training windows and saved for resumes."""
    from qcascade.models import calibrate_int_bits

    path = ctx.unit_dir / "checkpoints" / f"int_bits_{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    prior = run_prior_dir(ctx.cfg, ctx.run_dir, ctx.unit)
    if name == "complex" and prior is not None:
        from qcascade.prior import prior_int_bits

        # the prior's weights were trained under its own activation ranges
        ib = prior_int_bits(prior)
        atomic_write_json(path, ib)
        return ib
    kw = {"n_times": ctx.cfg.data.n_times, **ctx.cfg.model.model_options(name)}
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
    kw = {"n_times": ctx.cfg.data.n_times, **ctx.cfg.model.model_options(name)}
    if not name.startswith("simple"):
        kw["n_chans"] = ctx.cfg.data.n_chans
    if name == "complex" and ctx.cfg.model.complex_electrode_count():
        from qcascade.complex_electrodes import complex_electrode_mask

        # integer bits stay those of every electrode (measured above), as without the subset
        kw["electrode_mask"] = complex_electrode_mask(ctx)
    seed = ctx.cfg.train.seed

    def build():
        tf.keras.utils.set_random_seed(seed)
        return build_model(name, ctx.cfg.quant, int_bits=ib, **kw)

    return build


def get_trainer(ctx, load: str | None):
    """The unit's CascadeTrainer, built in the strategy scope, with weights of stage ``load``."""
    art = ctx.artifacts
    if art.trainer is None:
        from qcascade.models.selector import deployed_electrode
        from qcascade.training.loop import set_determinism
        from qcascade.training.stages import CascadeTrainer

        sets = windows(ctx)
        mask = deployable_mask(ctx)
        make_simple, make_complex = model_factory(ctx, _simple_name(ctx.cfg)), model_factory(ctx, "complex")
        strategy = _strategy(ctx)
        set_determinism(ctx.cfg.train.seed, ctx.cfg.train.deterministic_ops)
        with strategy.scope():
            selector = masked_selector(mask, ctx.cfg.train.temp_start)
            selector(sets["train"].X[:2])  # create its variables
            if ctx.cfg.model.selector_init == "separability":
                raw = prior_line_length(ctx, sets["train"])
                prior = ctx.cfg.model.selector_init_scale * electrode_separability(sets["train"], mask, raw)
                selector.inner.electrode_logits.assign(prior.astype(np.float32))
            trainer = CascadeTrainer(selector, make_simple(), make_complex(), mask, ctx.cfg.train, strategy,
                                     electrode_fn=lambda sel, X, m: deployed_electrode(sel.inner, X, m),
                                     freeze_simple_stage3=ctx.cfg.model.simple_prior == SIMPLE_POOLED)
        if run_prior_dir(ctx.cfg, ctx.run_dir, ctx.unit) is not None:  # at build time: a resumed stage 3 keeps them frozen too
            from qcascade.prior import freeze_prior_layers

            freeze_prior_layers(trainer.complex, ctx.cfg.model.complex_prior_frozen)
        art.trainer, art.trainer_stage = trainer, None
    trainer = art.trainer
    if load is not None and art.trainer_stage != load:
        ckpt = ctx.unit_dir / "checkpoints" / load
        if not (ckpt / "state.json").exists():
            raise RunDirError(f"{ckpt}: missing; rerun with --from-step of the stage that writes it")
        for part in ("selector", "simple", "complex"):
            load_weights(getattr(trainer, part), ckpt / f"{part}.npz")
        trainer.load_state_dict(json.loads((ckpt / "state.json").read_text()))
        art.trainer_stage = load
    return trainer


def _train_stage(ctx, stage: int, load: str | None) -> None:
    sets = windows(ctx)
    trainer = get_trainer(ctx, load)
    if stage > 1:
        trainer.electrode = selected_electrode(ctx)  # stages 2-3 train on the deployed electrode
    prior = run_prior_dir(ctx.cfg, ctx.run_dir, ctx.unit)
    if stage == 2 and prior is not None:
        from qcascade.prior import load_prior_weights

        load_prior_weights(trainer.complex, prior)
    mon = sets.get("val_monitor", sets["val"])  # long-term: per-epoch metrics on a validation sample
    if stage == 2 and ctx.cfg.model.simple_prior == SIMPLE_POOLED:
        _refit_simple_pooled(ctx, trainer, sets["train"], mon)
    epochs = getattr(ctx.cfg.train, f"epochs_stage{stage}")
    history = trainer.run_stage(stage, sets["train"].X, sets["train"].y, mon.X, mon.y, epochs=epochs)
    from qcascade.models.folding import bn_sample

    _refresh_batchnorm(trainer, bn_sample(sets["train"].X), stage)
    ckpt = ctx.unit_dir / "checkpoints" / f"stage{stage}"
    ckpt.mkdir(parents=True, exist_ok=True)
    for part in ("selector", "simple", "complex"):
        save_weights(getattr(trainer, part), ckpt / f"{part}.npz")
    atomic_write_json(ckpt / "state.json", trainer.state_dict())  # written last: marks completeness
    ctx.artifacts.trainer_stage = f"stage{stage}"
    atomic_write_json(ctx.path(f"history_stage{stage}.json"), history)


def _refit_simple_pooled(ctx, trainer, train, val) -> None:
    """``model.simple_prior: other_patients``: the stage-1 simple model trained further on its electrode's
    windows pooled with the other patients' (:mod:`qcascade.simple_pool`), before stage 2 freezes it.
    Rerun with stage 2 (from stage 1's weights), so an interrupted stage 2 repeats it exactly."""
    from qcascade.models.folding import refresh_batchnorm
    from qcascade.simple_pool import load_pool, refit_simple

    e = trainer.electrode
    X_pool, y_pool = load_pool(ctx.run_dir, ctx.unit)
    own = np.ascontiguousarray(train.X[:, :, e:e + 1])
    hist = refit_simple(trainer.simple, own, train.y, X_pool, y_pool, ctx.cfg.train, trainer.strategy,
                        X_val=np.ascontiguousarray(val.X[:, :, e:e + 1]), y_val=val.y,
                        own_share=ctx.cfg.model.simple_prior_own_share)
    refresh_batchnorm(trainer.simple, own)  # deployed on this patient's windows, like every stage's
    atomic_write_json(ctx.path("history_simple_pool.json"), hist)


def _refresh_batchnorm(trainer, X: np.ndarray, stage: int) -> None:
    """Exact BN statistics of the trained models on training windows, before they are saved.

    Short trainings leave BN moving averages lagging; the frozen simple model of stage 2, the
    validation metrics and the folded export models all run in inference mode.
    """
    from qcascade.models.folding import refresh_batchnorm

    if trainer.electrode is not None:
        channel = X[:, :, trainer.electrode:trainer.electrode + 1]
    else:  # stage 1: the simple model was trained on the selector's mixture
        channel = np.concatenate([trainer.selector(as_tensor(X[i:i + 256]), training=False)[0].numpy()
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


def deployable_mask(ctx) -> np.ndarray:
    """Live electrodes the selector may deploy: without those :func:`electrode_quality` flags
    (``model.exclude_bad_electrodes``), ``(n_chans,)`` bool."""
    mask = windows(ctx)["train"].mask
    if not ctx.cfg.model.exclude_bad_electrodes:
        return np.asarray(mask, bool)
    return electrode_quality(ctx).deployable(mask)


def electrode_quality(ctx):
    """The unit's :class:`~qcascade.electrode_quality.ElectrodeQuality` on its interictal training
    windows (computed once per process; deterministic, so a resumed run gets the same flags)."""
    from qcascade.electrode_quality import assess_electrodes

    art = ctx.artifacts
    if art.electrode_quality is None:
        tr = windows(ctx)["train"]
        art.electrode_quality = assess_electrodes(tr.X, tr.mask, ctx.cfg.data.sfreq, y=tr.y)
        q = art.electrode_quality
        if q.excluded:
            log.info("%s: not deployable: line noise %s, noisy %s", ctx.unit, q.line_noise, q.noisy)
    return art.electrode_quality


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
    trainer = get_trainer(ctx, "stage1")
    electrode = trainer.deployed_electrode(tr.X)
    weights = mean_selection_weights(trainer.selector.inner, tr.X, trainer.mask)
    choice = None
    if ctx.cfg.model.electrode_choice == "earliest_of_top":
        from qcascade.data.swec import SFREQ
        from qcascade.onset_latency import earliest_of_top, recording_latencies
        from qcascade.steps_data import prepared_data

        latencies = recording_latencies(prepared_data(ctx).splits["train"], SFREQ)
        m = ctx.cfg.model
        electrode, choice = earliest_of_top(weights, trainer.mask, latencies, m.electrode_choice_top_k,
                                            m.electrode_choice_margin_s, m.electrode_choice_min_weight,
                                            m.electrode_choice_min_seizures)
        trainer.electrode = electrode
        log.info("%s: electrode %d (%s; the selector's: %d)", ctx.unit, electrode, choice["rule"],
                 choice["selector_electrode"])
    soz = onset_zone(ctx)
    plot_selection_weights(weights, trainer.mask, ctx.path("selector_weights.png"),
                           title=f"{ctx.unit}: selected electrode {electrode}" + (f", onset zone {soz}" if soz else ""))
    _, w_batch = trainer.selector(tr.X[:256], training=False)
    save_selection(ctx, Selection(
        selected_electrode=int(electrode), soz_electrodes=soz, in_onset_zone=None if soz is None else electrode in soz,
        mean_weights=[float(v) for v in weights], max_mean_weight=float(weights.max()),
        entropy_nats=float(selection_entropy(w_batch)), temperature=float(trainer.temperature.numpy()),
        electrode_quality=electrode_quality(ctx).summary() if ctx.cfg.model.exclude_bad_electrodes else None,
        electrode_choice=choice))


def selected_electrode(ctx) -> int:
    """The electrode of the unit's :class:`~qcascade.artifacts.Selection`."""
    return selection(ctx).selected_electrode


# ----------------------------------------------------------------------------- baselines
def step_baselines(ctx) -> None:
    """Complex-only on all windows and each simple candidate alone, same budget, same test set,
    each BN-folded as the cascade's models are deployed."""
    from qcascade.models.counting import count_macs
    from qcascade.models.folding import fold_batchnorm
    from qcascade.training.baselines import run_baselines

    sets = windows(ctx)
    tr, va, te = sets["train"], sets.get("val_monitor", sets["val"]), sets["test"]
    names = ["simple_A", "simple_B", "simple_C"] if ctx.cfg.model.train_candidates else [_simple_name(ctx.cfg)]
    model = ctx.cfg.model
    if getattr(ctx, "fold", None) is not None and model.candidate_folds == "deployed" and model.simple_model != "auto":
        names = []  # the candidate study (which simple model to deploy) runs on the deployed fold only;
        # with simple_model: auto every fold chooses on its own validation windows
    factories = {n: model_factory(ctx, n) for n in names}
    export = lambda m: fold_batchnorm(m, ctx.cfg.quant)  # noqa: E731
    reuse = ctx.cfg.train.complex_only_is_cascade_complex()
    results = {}
    if reuse:
        from qcascade.training.baselines import complex_only_from_cascade

        log.info("%s: complex-only baseline = the cascade's complex model (same objective; "
                 "train.complex_only_baseline: train trains it again)", ctx.unit)
        results["complex_only"] = complex_only_from_cascade(
            _cascade_complex(ctx), te.X, te.y, va.X, va.y, _cascade_complex_history(ctx), export)
    results.update(run_baselines(None if reuse else model_factory(ctx, "complex"), factories, selected_electrode(ctx),
                                 tr.X, tr.y, te.X, te.y, ctx.cfg.train, _strategy(ctx), va.X, va.y, export=export))
    out = {}
    for name, res in results.items():
        atomic_save_keras(res.model, ctx.path("baselines", f"{name}.h5"))
        atomic_save_npy(ctx.path("baselines", f"{name}_test_logits.npy"), res.test_logits)
        out[name] = {**res.summary(), "macs_per_window": count_macs(res.model)["total"]}
        if name == "complex_only":
            out[name]["trained_separately"] = not reuse
    if "complex_only" in results:  # step_calibrate's reference, without reloading the file just saved
        ctx.artifacts.complex_only = results["complex_only"].model
    atomic_write_json(ctx.path("baselines.json"), out)


def _cascade_complex(ctx):
    """A fresh complex model with the weights of ``checkpoints/stage3`` (BN already refreshed)."""
    path = ctx.unit_dir / "checkpoints" / "stage3" / "complex.npz"
    if not path.exists():
        raise RunDirError(f"{path}: missing; rerun with --from-step step_finetune")
    with _strategy(ctx).scope():
        model = model_factory(ctx, "complex")()
    load_weights(model, path)
    return model


def _cascade_complex_history(ctx) -> dict:
    """The complex model's per-epoch F1 in stages 2 and 3, as the cascade recorded it."""
    hist = {"source": "cascade stages 2-3", "train_f1": [], "val_f1": []}
    for s in (2, 3):
        h = json.loads((ctx.unit_dir / f"history_stage{s}.json").read_text())
        hist["train_f1"] += list(h.get("train_complex_f1", []))
        hist["val_f1"] += list(h.get("val_complex_f1", []))
    return hist


# ----------------------------------------------------------------------------- helpers
def _strategy(ctx):
    if ctx.artifacts.strategy is None:
        from qcascade.training.loop import get_strategy

        ctx.artifacts.strategy = get_strategy()
    return ctx.artifacts.strategy


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
