"""Honest baselines for the cascade, trained with the same loop and budget, tested identically.

* complex-only: the complex architecture trained on ALL training windows with the budget the
  cascade's complex model gets: ``epochs_stage2`` epochs at ``lr_stage2`` then
  ``epochs_stage3`` epochs at ``lr_stage3`` (fresh Adam per phase, as in the cascade), with
  plain class-weighted CE (no routing weights).
* simple-alone (one per candidate A, B, C): the simple architecture on the cascade's deployed
  electrode ``X[:, :, e]``, budget of the cascade's simple model: ``epochs_stage1`` at
  ``lr_stage1`` then ``epochs_stage3`` at ``lr_stage3``.

Paired design: each factory is called inside ``strategy.scope()`` after re-seeding with
``cfg.seed``, and each phase uses the shuffle and dropout seeds of the cascade stage it mirrors
(:func:`~qcascade.training.loop.stage_seed`). With the pipeline's factories, which seed
themselves, the complex-only baseline starts from the cascade complex model's initial weights
and sees the same batches in the same order, so the comparison is not decided by the luck of one
initialisation (two complex models trained from different initial weights differed by up to
0.14 F1 on one test seizure). The two training graphs still differ in the last bits of some
gradients, so over long trainings the arms part numerically (README, "Baselines are paired").
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional

import numpy as np
import tensorflow as tf

from qcascade.evaluation import window_metrics
from qcascade.config_train import TrainConfig
from qcascade.training.augment import augmenter_for
from qcascade.training.classifier import fit_classifier
from qcascade.training.loop import (make_predict_fn, predict_in_batches, set_determinism,
                                    stage_seed)

__all__ = ["BaselineResult", "train_complex_only", "train_simple_alone", "run_baselines",
           "complex_only_from_cascade"]

ModelFactory = Callable[[], tf.keras.Model]
# Trained training-graph model -> the model that would be deployed (e.g. BatchNorm folded).
ExportFn = Callable[[tf.keras.Model], tf.keras.Model]


@dataclasses.dataclass
class BaselineResult:
    """One trained baseline.

    Attributes:
        name: e.g. ``"complex_only"`` or ``"simple_A"``.
        model: the trained Keras model, exported if an export function was given (the caller
            saves it).
        history: per-epoch training history (JSON-serialisable).
        test_logits: ``(n_test, 2)`` logits on the test windows.
        test_metrics: :func:`~qcascade.evaluation.window_metrics` on the test windows.
        electrode: input electrode (simple-alone), None for complex-only.
        val_metrics: :func:`~qcascade.evaluation.window_metrics` of the returned (exported) model
            on the validation windows, None without them: what a choice between models may use.
    """

    name: str
    model: tf.keras.Model
    history: dict
    test_logits: np.ndarray
    test_metrics: dict
    electrode: Optional[int] = None
    val_metrics: Optional[dict] = None

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary (no model, no logits)."""
        return {"name": self.name, "electrode": self.electrode, "test_metrics": self.test_metrics,
                "val_metrics": self.val_metrics, "history": self.history}


def _build(factory: ModelFactory, strategy: tf.distribute.Strategy, cfg: TrainConfig) -> tf.keras.Model:
    set_determinism(cfg.seed, cfg.deterministic_ops)
    with strategy.scope():
        return factory()


def _refresh_bn(model: tf.keras.Model, X: np.ndarray) -> None:
    """Exact BatchNorm statistics on the training windows (short trainings leave the moving
    averages lagging, and inference then collapses to one class)."""
    from qcascade.models.folding import bn_sample, refresh_batchnorm

    refresh_batchnorm(model, bn_sample(X))


def _evaluate(model: tf.keras.Model, X: np.ndarray, y: np.ndarray, fn=None) -> tuple[np.ndarray, dict]:
    """Logits ``(n, 2)`` and window metrics of ``model`` on ``X``; ``fn`` = a reusable predict
    function of that model (one trace for test and validation)."""
    fn = fn or make_predict_fn(lambda x: model(x, training=False), X.shape[1:])
    logits = predict_in_batches(fn, X)
    return logits, window_metrics(y, logits, logits.argmax(1))


def _train_and_test(name: str, factory: ModelFactory, X_train: np.ndarray, y_train: np.ndarray,
                    X_test: np.ndarray, y_test: np.ndarray, stages: tuple[int, ...], cfg: TrainConfig,
                    strategy: tf.distribute.Strategy, X_val, y_val, verbose: int, electrode=None,
                    export: Optional[ExportFn] = None, complex_path: bool = False) -> BaselineResult:
    """Build in the strategy scope, train one phase per mirrored cascade stage (its epochs,
    learning rate and seeds), refresh BN, export, evaluate on the test windows.

    ``complex_path``: the complex-only baseline gets what the cascade's complex model gets
    (augmentation, weight decay); every phase mirroring stage 2 or 3 keeps its best-on-validation
    weights when ``train.restore_best`` (as the cascade's stages 2 and 3 do)."""
    model = _build(factory, strategy, cfg)
    if name == "simple_C":
        from qcascade.models.simple import fit_linear_head

        fit_linear_head(model, X_train, y_train)
    set_determinism(stage_seed(cfg.seed, stages[0]), cfg.deterministic_ops)
    schedule = [(getattr(cfg, f"epochs_stage{s}"), getattr(cfg, f"lr_stage{s}")) for s in stages]
    hist = fit_classifier(model, X_train, y_train, schedule, strategy=strategy, batch_size=cfg.batch_size,
                          phase_seeds=[stage_seed(cfg.seed, s) for s in stages],
                          class_weighting=cfg.class_weighting,
                          X_val=X_val, y_val=y_val, verbose=verbose, desc=f"baseline {name}",
                          augment=(lambda seed: augmenter_for(cfg, seed)) if complex_path else None,
                          restore_best=[cfg.restore_best and s > 1 for s in stages],
                          weight_decay=cfg.weight_decay if complex_path else 0.0,
                          restore_best_min_f1=cfg.restore_best_min_f1,
                          # The cascade refreshes BN after every stage, and the stage after it
                          # validates (and keeps its best epoch) with those statistics.
                          after_phase=lambda _phase: _refresh_bn(model, X_train))
    if export is not None:
        model = export(model)
    fn = make_predict_fn(lambda x: model(x, training=False), X_test.shape[1:])
    logits, metrics = _evaluate(model, X_test, y_test, fn)
    # The training history's validation F1 is taken before the BN refresh and export; the choice
    # between candidates uses the model as it would be deployed.
    val = None if X_val is None or not len(X_val) else _evaluate(model, X_val, y_val, fn)[1]
    return BaselineResult(name, model, hist, logits, metrics, electrode=electrode, val_metrics=val)


def train_complex_only(complex_factory: ModelFactory, X_train: np.ndarray, y_train: np.ndarray,
                       X_test: np.ndarray, y_test: np.ndarray, cfg: TrainConfig,
                       strategy: Optional[tf.distribute.Strategy] = None,
                       X_val: Optional[np.ndarray] = None, y_val: Optional[np.ndarray] = None,
                       verbose: int = 1, export: Optional[ExportFn] = None) -> BaselineResult:
    """Complex-only baseline on ``(n, T, C)`` windows (budget: stage 2 + stage 3 epochs)."""
    return _train_and_test("complex_only", complex_factory, X_train, y_train, X_test, y_test, (2, 3),
                           cfg, strategy or tf.distribute.get_strategy(), X_val, y_val, verbose, export=export,
                           complex_path=True)


def complex_only_from_cascade(model: tf.keras.Model, X_test: np.ndarray, y_test: np.ndarray,
                              X_val: Optional[np.ndarray], y_val: Optional[np.ndarray], history: dict,
                              export: Optional[ExportFn] = None) -> BaselineResult:
    """The cascade's trained complex model tested as the complex-only baseline.

    Only valid when the cascade's complex objective is the baseline's
    (:meth:`~qcascade.config_train.TrainConfig.complex_only_is_cascade_complex`): the two
    trainings are then the same computation, and training the baseline again would reproduce the
    same weights.

    Args:
        model: the cascade's complex model after stage 3 (BatchNorm refreshed, not exported).
        X_test, y_test, X_val, y_val: ``(n, T, C)`` windows and ``(n,)`` labels.
        history: what the cascade recorded of the complex model's training (JSON-serialisable).
        export: as for :func:`run_baselines`.
    """
    if export is not None:
        model = export(model)
    fn = make_predict_fn(lambda x: model(x, training=False), X_test.shape[1:])
    logits, metrics = _evaluate(model, X_test, y_test, fn)
    val = None if X_val is None or not len(X_val) else _evaluate(model, X_val, y_val, fn)[1]
    return BaselineResult("complex_only", model, history, logits, metrics, val_metrics=val)


def train_simple_alone(name: str, simple_factory: ModelFactory, electrode: int,
                       X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                       y_test: np.ndarray, cfg: TrainConfig,
                       strategy: Optional[tf.distribute.Strategy] = None,
                       X_val: Optional[np.ndarray] = None, y_val: Optional[np.ndarray] = None,
                       verbose: int = 1, export: Optional[ExportFn] = None) -> BaselineResult:
    """Simple-alone baseline on electrode ``electrode`` of ``(n, T, C)`` windows.

    The electrode is sliced once here (``(n, T, 1)``), so training reads 1/C of the data.
    """
    sl = slice(electrode, electrode + 1)
    Xtr, Xte = np.ascontiguousarray(X_train[:, :, sl]), np.ascontiguousarray(X_test[:, :, sl])
    Xva = None if X_val is None else np.ascontiguousarray(X_val[:, :, sl])
    return _train_and_test(name, simple_factory, Xtr, y_train, Xte, y_test, (1, 3), cfg,
                           strategy or tf.distribute.get_strategy(), Xva, y_val, verbose, electrode=int(electrode),
                           export=export)


def run_baselines(complex_factory: Optional[ModelFactory],
                  simple_factories: Mapping[str, ModelFactory], electrode: int,
                  X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
                  cfg: TrainConfig, strategy: Optional[tf.distribute.Strategy] = None,
                  X_val: Optional[np.ndarray] = None, y_val: Optional[np.ndarray] = None,
                  verbose: int = 1, export: Optional[ExportFn] = None) -> dict[str, BaselineResult]:
    """All baselines, evaluated on the same test windows.

    Args:
        complex_factory: builds a fresh complex model ``(b, T, C) -> (b, 2)``; None skips it.
        simple_factories: ``{"simple_A": factory, ...}``, each ``(b, T, 1) -> (b, 2)``.
        electrode: the cascade's deployed electrode (chosen on train/val, never test).
        X_train, y_train, X_test, y_test, X_val, y_val: ``(n, T, C)`` windows and labels.
        cfg, strategy, verbose: as for :class:`~qcascade.training.stages.CascadeTrainer`.
        export: applied to each trained model before it is tested and returned; the pipeline
            folds BatchNorm, so each baseline is tested as it would be deployed, like the cascade.

    Returns:
        ``{name: BaselineResult}`` with ``"complex_only"`` first, then the simple names.
    """
    out: dict[str, BaselineResult] = {}
    if complex_factory is not None:
        out["complex_only"] = train_complex_only(complex_factory, X_train, y_train, X_test, y_test,
                                                 cfg, strategy, X_val, y_val, verbose, export)
    for name, factory in simple_factories.items():
        out[name] = train_simple_alone(name, factory, electrode, X_train, y_train, X_test, y_test,
                                       cfg, strategy, X_val, y_val, verbose, export)
    return out
