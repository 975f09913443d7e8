"""Honest baselines for the cascade, trained with the same loop and budget, tested identically.

* complex-only: the complex architecture trained on ALL training windows with the budget the
  cascade's complex model gets: ``epochs_stage2`` epochs at ``lr_stage2`` then
  ``epochs_stage3`` epochs at ``lr_stage3`` (fresh Adam per phase, as in the cascade), with
  plain class-weighted CE (no routing weights).
* simple-alone (one per candidate A, B, C): the simple architecture on the cascade's deployed
  electrode ``X[:, :, e]``, budget of the cascade's simple model: ``epochs_stage1`` at
  ``lr_stage1`` then ``epochs_stage3`` at ``lr_stage3``.

Each factory is called inside ``strategy.scope()`` after re-seeding with ``cfg.seed``, so the
baselines start from the same kind of initialisation as the cascade.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional

import numpy as np
import tensorflow as tf

from qcascade.evaluation import window_metrics
from qcascade.training import TrainConfig
from qcascade.training.loop import fit_classifier, make_predict_fn, predict_in_batches, set_determinism

__all__ = ["BaselineResult", "train_complex_only", "train_simple_alone", "run_baselines"]

ModelFactory = Callable[[], tf.keras.Model]


@dataclasses.dataclass
class BaselineResult:
    """One trained baseline.

    Attributes:
        name: e.g. ``"complex_only"`` or ``"simple_A"``.
        model: the trained Keras model (the caller saves it).
        history: per-epoch training history (JSON-serialisable).
        test_logits: ``(n_test, 2)`` logits on the test windows.
        test_metrics: :func:`~qcascade.evaluation.window_metrics` on the test windows.
        electrode: input electrode (simple-alone), None for complex-only.
    """

    name: str
    model: tf.keras.Model
    history: dict
    test_logits: np.ndarray
    test_metrics: dict
    electrode: Optional[int] = None

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary (no model, no logits)."""
        return {"name": self.name, "electrode": self.electrode, "test_metrics": self.test_metrics,
                "history": self.history}


def _build(factory: ModelFactory, strategy: tf.distribute.Strategy, cfg: TrainConfig) -> tf.keras.Model:
    set_determinism(cfg.seed, cfg.deterministic_ops)
    with strategy.scope():
        return factory()


def _refresh_bn(model: tf.keras.Model, X: np.ndarray) -> None:
    """Exact BatchNorm statistics on the training windows (short trainings leave the moving
    averages lagging, and inference then collapses to one class)."""
    from qcascade.models.folding import refresh_batchnorm

    refresh_batchnorm(model, X[:2048])


def _evaluate(model: tf.keras.Model, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict]:
    fn = make_predict_fn(lambda x: model(x, training=False), X.shape[1:])
    logits = predict_in_batches(fn, X)
    return logits, window_metrics(y, logits, logits.argmax(1))


def _train_and_test(name: str, factory: ModelFactory, X_train: np.ndarray, y_train: np.ndarray,
                    X_test: np.ndarray, y_test: np.ndarray, schedule, seed_offset: int, cfg: TrainConfig,
                    strategy: tf.distribute.Strategy, X_val, y_val, verbose: int, electrode=None) -> BaselineResult:
    """Build in the strategy scope, train with ``schedule``, refresh BN, evaluate on the test windows."""
    model = _build(factory, strategy, cfg)
    set_determinism(cfg.seed + seed_offset, cfg.deterministic_ops)
    hist = fit_classifier(model, X_train, y_train, schedule, strategy=strategy, batch_size=cfg.batch_size,
                          seed=cfg.seed + 1000 * seed_offset, class_weighting=cfg.class_weighting,
                          X_val=X_val, y_val=y_val, verbose=verbose, desc=f"baseline {name}")
    _refresh_bn(model, X_train)
    logits, metrics = _evaluate(model, X_test, y_test)
    return BaselineResult(name, model, hist, logits, metrics, electrode=electrode)


def train_complex_only(complex_factory: ModelFactory, X_train: np.ndarray, y_train: np.ndarray,
                       X_test: np.ndarray, y_test: np.ndarray, cfg: TrainConfig,
                       strategy: Optional[tf.distribute.Strategy] = None,
                       X_val: Optional[np.ndarray] = None, y_val: Optional[np.ndarray] = None,
                       verbose: int = 1) -> BaselineResult:
    """Complex-only baseline on ``(n, T, C)`` windows (budget: stage 2 + stage 3 epochs)."""
    schedule = [(cfg.epochs_stage2, cfg.lr_stage2), (cfg.epochs_stage3, cfg.lr_stage3)]
    return _train_and_test("complex_only", complex_factory, X_train, y_train, X_test, y_test, schedule, 2,
                           cfg, strategy or tf.distribute.get_strategy(), X_val, y_val, verbose)


def train_simple_alone(name: str, simple_factory: ModelFactory, electrode: int,
                       X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                       y_test: np.ndarray, cfg: TrainConfig,
                       strategy: Optional[tf.distribute.Strategy] = None,
                       X_val: Optional[np.ndarray] = None, y_val: Optional[np.ndarray] = None,
                       verbose: int = 1) -> BaselineResult:
    """Simple-alone baseline on electrode ``electrode`` of ``(n, T, C)`` windows.

    The electrode is sliced once here (``(n, T, 1)``), so training reads 1/C of the data.
    """
    sl = slice(electrode, electrode + 1)
    Xtr, Xte = np.ascontiguousarray(X_train[:, :, sl]), np.ascontiguousarray(X_test[:, :, sl])
    Xva = None if X_val is None else np.ascontiguousarray(X_val[:, :, sl])
    schedule = [(cfg.epochs_stage1, cfg.lr_stage1), (cfg.epochs_stage3, cfg.lr_stage3)]
    return _train_and_test(name, simple_factory, Xtr, y_train, Xte, y_test, schedule, 1, cfg,
                           strategy or tf.distribute.get_strategy(), Xva, y_val, verbose, electrode=int(electrode))


def run_baselines(complex_factory: Optional[ModelFactory],
                  simple_factories: Mapping[str, ModelFactory], electrode: int,
                  X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
                  cfg: TrainConfig, strategy: Optional[tf.distribute.Strategy] = None,
                  X_val: Optional[np.ndarray] = None, y_val: Optional[np.ndarray] = None,
                  verbose: int = 1) -> dict[str, BaselineResult]:
    """All baselines, evaluated on the same test windows.

    Args:
        complex_factory: builds a fresh complex model ``(b, T, C) -> (b, 2)``; None skips it.
        simple_factories: ``{"simple_A": factory, ...}``, each ``(b, T, 1) -> (b, 2)``.
        electrode: the cascade's deployed electrode (chosen on train/val, never test).
        X_train, y_train, X_test, y_test, X_val, y_val: ``(n, T, C)`` windows and labels.
        cfg, strategy, verbose: as for :class:`~qcascade.training.stages.CascadeTrainer`.

    Returns:
        ``{name: BaselineResult}`` with ``"complex_only"`` first, then the simple names.
    """
    out: dict[str, BaselineResult] = {}
    if complex_factory is not None:
        out["complex_only"] = train_complex_only(complex_factory, X_train, y_train, X_test, y_test,
                                                 cfg, strategy, X_val, y_val, verbose)
    for name, factory in simple_factories.items():
        out[name] = train_simple_alone(name, factory, electrode, X_train, y_train, X_test, y_test,
                                       cfg, strategy, X_val, y_val, verbose)
    return out
