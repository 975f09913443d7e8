"""Three-stage training of the cascade (selector + simple model, then complex, then joint).

| stage | trains                          | frozen (run with training=False) | lr          |
|-------|---------------------------------|-----------------------------------|-------------|
| 1     | selector + simple               | complex (not even run)            | lr_stage1   |
| 2     | complex (r-weighted CE)         | selector, simple                  | lr_stage2   |
| 3     | all jointly                     | -                                 | lr_stage3   |

The selector temperature is annealed geometrically from ``temp_start`` (first epoch of stage
1) to ``temp_end`` (last epoch of stage 1) and kept at ``temp_end`` afterwards. Every stage
starts a fresh Adam, re-seeds the global RNGs and restarts every dropout stream from
:func:`~qcascade.training.loop.stage_seed` (also the shuffle seed), so a pipeline that reloads
the models saved after stage s (plus :meth:`CascadeTrainer.state_dict`) and runs stage s+1
gets the same result as an uninterrupted run.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from qcascade.evaluation import window_metrics
from qcascade.config_train import TrainConfig
from qcascade.training.augment import augmenter_for
from qcascade.training.loop import (EpochCallback, ReleasableData, class_weights, global_batch_for, kernels,
                                    make_predict_fn, optimizer_for, predict_in_batches, reseed_dropout, run_epochs,
                                    set_determinism, stage_seed)
from qcascade.training.monitor import KeepBest, f1_counts
from qcascade.training.loss import cascade_loss_terms, frozen_gate_loss_terms, per_window_gate_terms
from qcascade.gate import cascade_predict, training_rule

log = logging.getLogger(__name__)

__all__ = ["CascadeTrainer", "find_temperature", "mean_weight_electrode", "call_selector", "takes_mask"]


def find_temperature(selector: tf.keras.layers.Layer) -> Optional[tf.Variable]:
    """The selector's temperature variable: attribute ``temperature`` or a variable named so."""
    t = getattr(selector, "temperature", None)
    if isinstance(t, tf.Variable):
        return t
    for v in selector.variables:
        if "temperature" in v.name:
            return v
    return None


def takes_mask(selector: Callable) -> bool:
    """Whether the selector's ``call`` takes the electrode mask after ``x``.

    Supports both ``call(x, training=None)`` (mask fixed at construction) and the real
    ``ChannelSelector.call(x, electrode_mask, training=None)``.
    """
    fn = getattr(selector, "call", selector)
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.name not in ("self", "training", "mask") and p.kind in
              (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(params) >= 2


def call_selector(selector: Callable, x: tf.Tensor, mask: tf.Tensor, training: bool):
    """``(weighted (b, T, 1), weights (b, C))``, passing ``mask`` only if the selector takes it."""
    if takes_mask(selector):
        return selector(x, mask, training=training)
    return selector(x, training=training)


def mean_weight_electrode(selector: Callable, X: np.ndarray, mask: np.ndarray,
                          batch_size: int = 256) -> int:
    """Fallback deployed electrode: argmax over unmasked electrodes of the mean selector weight.

    Args:
        selector: ``X (b, T, C) [, mask] -> (weighted (b, T, 1), weights (b, C))``.
        X: ``(n, T, C)`` windows (training or validation, never test).
        mask: ``(C,)`` bool, True for real electrodes.
    """
    mask_t = tf.constant(np.asarray(mask, bool))
    fn = make_predict_fn(lambda x: call_selector(selector, x, mask_t, False)[1], X.shape[1:])
    w = predict_in_batches(fn, X, batch_size).mean(0)
    w = np.where(np.asarray(mask, bool), w, -np.inf)
    return int(np.argmax(w))


def _f1_sum(logs: dict, keys: tuple[str, ...]) -> Optional[float]:
    vals = [logs.get(k) for k in keys]
    return None if any(v is None for v in vals) else float(sum(vals))


# The validation score whose best epoch each model keeps (train.restore_best). Each model keeps
# its own best epoch: the complex model is then chosen exactly as the complex-only baseline that
# mirrors it (paired comparison), and neither model is traded for the other in stage 3.
_BEST_MONITOR = {"simple": lambda logs: _f1_sum(logs, ("val_simple_f1",)),
                 "complex": lambda logs: _f1_sum(logs, ("val_complex_f1",))}


class CascadeTrainer:
    """Trains selector + simple + complex models with the cascade loss, stage by stage.

    Args:
        selector: Keras layer ``X (b, T, C) [, mask (C,)] -> (weighted (b, T, 1), weights (b, C))``
            with a temperature ``tf.Variable`` (see :func:`find_temperature`); the mask is
            passed when ``call`` takes it (see :func:`takes_mask`). Build it by calling it once.
        simple: Keras model ``(b, T, 1) -> (b, 2)`` logits.
        complex_model: Keras model ``(b, T, C) -> (b, 2)`` logits.
        mask: ``(C,)`` bool electrode mask (True = real electrode).
        cfg: hyper-parameters.
        strategy: distribution strategy; ALL models must have been created in its scope.
            Default: ``tf.distribute.get_strategy()``.
        electrode_fn: ``(selector, X, mask) -> int`` giving the deployed electrode
            (e.g. ``qcascade.models.selector.deployed_electrode``); default
            :func:`mean_weight_electrode`.
        freeze_simple_stage3: stage 3 trains the complex model only (``model.simple_prior``).
    """

    def __init__(self, selector, simple, complex_model, mask: np.ndarray, cfg: TrainConfig,
                 strategy: Optional[tf.distribute.Strategy] = None,
                 electrode_fn: Optional[Callable[..., int]] = None, freeze_simple_stage3: bool = False):
        self.selector, self.simple, self.complex = selector, simple, complex_model
        # model.simple_prior: fine-tuning on the patient's few seizures forgets the pooled training.
        self.freeze_simple_stage3 = bool(freeze_simple_stage3)
        self.mask = np.asarray(mask, bool)
        self._mask_t = tf.constant(self.mask)
        self.n_active = int(self.mask.sum())
        self.cfg = cfg
        self.strategy = strategy or tf.distribute.get_strategy()
        self.electrode_fn = electrode_fn or mean_weight_electrode
        self.temperature = find_temperature(selector)
        if self.temperature is None:
            warnings.warn("selector has no temperature variable; temperature is not annealed")
        self.history: dict[str, dict] = {}
        self.completed_stages: list[int] = []
        self.electrode: Optional[int] = None
        self._predict_fns: dict[tuple, Callable] = {}

    # -- schedule ---------------------------------------------------------------------------
    def temperature_for(self, stage: int, epoch: int, epochs: int) -> float:
        """Geometric anneal over stage 1: ``T0 * (T1/T0) ** (epoch / (epochs - 1))``."""
        t0, t1 = self.cfg.temp_start, self.cfg.temp_end
        if stage != 1:
            return t1
        if epochs <= 1:
            return t1
        return float(t0 * (t1 / t0) ** (epoch / (epochs - 1)))

    def _set_temperature(self, value: float) -> None:
        if self.temperature is not None:
            self.temperature.assign(value)

    def _trainables(self, stage: int) -> list[tf.Variable]:
        joint = (self.simple, self.complex) if self.electrode is not None else (
            self.selector, self.simple, self.complex)
        if self.freeze_simple_stage3:
            joint = (self.complex,)
        models = {1: (self.selector, self.simple), 2: (self.complex,), 3: joint}[stage]
        skip = {id(self.temperature)} if self.temperature is not None else set()
        seen, out = set(skip), []
        for m in models:
            for v in m.trainable_variables:
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    # -- training ---------------------------------------------------------------------------
    def run_stage(self, stage: int, X_train: np.ndarray, y_train: np.ndarray,
                  X_val: Optional[np.ndarray] = None, y_val: Optional[np.ndarray] = None, *,
                  epochs: Optional[int] = None, callbacks: Sequence[EpochCallback] = (),
                  verbose: int = 1) -> dict[str, list]:
        """Train one stage and return its history.

        Args:
            stage: 1, 2 or 3.
            X_train: ``(n, T, C)`` float32 windows; y_train: ``(n,)`` labels in {0, 1}.
            X_val, y_val: validation windows for per-epoch metrics (soft selector path in stage 1;
                the deployed electrode in stages 2-3 once ``self.electrode`` is set).

        Once :meth:`deployed_electrode` has fixed ``self.electrode`` (the pipeline does so after
        stage 1), stages 2 and 3 feed the simple model that electrode (what the hardware reads)
        instead of the soft selector mixture, and stage 3 no longer trains the selector.
            epochs: override ``cfg.epochs_stage{stage}``.
            callbacks: called with ``(epoch, logs)`` after every epoch.
            verbose: 1 prints a progress bar per epoch, 0 is silent.

        Returns:
            ``{key: [value per epoch]}`` with keys ``total, simple, complex, routing,
            sparsity`` (train loss terms), ``temperature``, ``seconds``, ``windows_per_s``,
            ``train_windows`` (windows per epoch), and with validation data ``val_simple_f1,
            val_simple_sensitivity, val_complex_f1, val_cascade_f1, val_routing_rate`` (hard gate at ``cfg.tau``;
            complex/cascade entries None in stage 1); ``train_simple_f1`` (stages 1, 3) and
            ``train_complex_f1`` (stages 2, 3): F1 of the training batches as trained on
            (training mode, augmented), the other side of the overfitting gap; ``best_epoch``:
            True for the epoch whose complex weights were kept (``cfg.restore_best``, stages
            2-3), ``best_epoch_simple`` the same for the simple model (stage 3).
            Also stored in ``self.history``.
        """
        if stage not in (1, 2, 3):
            raise ValueError(f"stage must be 1, 2 or 3, got {stage}")
        missing = [s for s in range(1, stage) if s not in self.completed_stages]
        if missing:
            warnings.warn(f"running stage {stage} before stage(s) {missing} completed")
        cfg = self.cfg
        epochs = getattr(cfg, f"epochs_stage{stage}") if epochs is None else int(epochs)
        lr = getattr(cfg, f"lr_stage{stage}")
        set_determinism(stage_seed(cfg.seed, stage), cfg.deterministic_ops)
        for part in (self.selector, self.simple, self.complex):
            reseed_dropout(part, stage_seed(cfg.seed, stage))

        y_np = np.asarray(y_train).astype(np.int32).ravel()
        X_t = ReleasableData(X_train)  # emptied after the stage (see ReleasableData)
        y_t = tf.convert_to_tensor(y_np)
        w_np = class_weights(y_np, cfg.class_weighting)[y_np]
        w_t = tf.convert_to_tensor(w_np)
        # The simple model's CE may weigh interictal windows more (train.simple_interictal_weight).
        ws_t = None if cfg.simple_interictal_weight == 1.0 else tf.convert_to_tensor(
            (w_np * np.where(y_np == 0, cfg.simple_interictal_weight, 1.0)).astype(w_np.dtype))
        gb = global_batch_for(len(y_np), cfg.batch_size, self.strategy.num_replicas_in_sync)
        variables = self._trainables(stage)
        opt = optimizer_for(self.strategy, lr, variables, cfg.weight_decay,
                            kernels(self.complex) if stage > 1 else ())
        # Only the complex model's input is augmented: the simple model reads the clean
        # deployed electrode (and is frozen in stage 2, its outputs precomputed).
        aug = augmenter_for(cfg, stage_seed(cfg.seed, stage)) if stage > 1 else None
        train_sel, train_simple, train_complex = stage in (1, 3), stage in (1, 3), stage in (2, 3)
        if stage == 3 and self.freeze_simple_stage3:
            train_sel = train_simple = False
        loss_kw = dict(a_simple=cfg.a_simple, a_complex=cfg.a_complex, a_routing=cfg.a_routing,
                       a_sparsity=cfg.a_sparsity, tau=cfg.tau, sharpness=cfg.gate_sharpness,
                       n_active=self.n_active, global_batch_size=gb,
                       complex_weight_floor=cfg.complex_weight_floor, rule=training_rule(cfg.gate))

        # Stages 2-3 run at temp_end even when resumed without load_state_dict.
        self._set_temperature(self.temperature_for(stage, 0, epochs))
        # Once the deployed electrode is fixed (after stage 1), stages 2-3 train on what the
        # hardware computes: the simple model reads that one electrode, not the soft mixture.
        hard = self.electrode if stage > 1 else None
        onehot = None if hard is None else tf.one_hot(hard, len(self.mask), dtype=tf.float32)
        if stage == 2:
            # Selector and simple model are frozen (training=False): their per-window outputs
            # are constants, computed once instead of every step (same loss, less work).
            pre = self.predict(X_train, electrode=hard, with_complex=False)
            sel_w = pre["sel_weights"] if hard is None else tf.tile(onehot[None, :], [len(y_np), 1])
            gate = per_window_gate_terms(y_t, pre["simple_logits"], sel_w, w_t,
                                         tau=cfg.tau, sharpness=cfg.gate_sharpness,
                                         rule=training_rule(cfg.gate),
                                         n_active=self.n_active)
            frozen_kw = {k: v for k, v in loss_kw.items()
                         if k.startswith("a_") or k in ("global_batch_size", "complex_weight_floor")}

        def replica_step(idx):
            x, yb, wb = X_t.gather(idx), tf.gather(y_t, idx), tf.gather(w_t, idx)
            if stage == 2:
                with tf.GradientTape() as tape:
                    complex_logits = self.complex(aug(x, idx), training=True)
                    r, ce_s, ent = (tf.gather(gate[k], idx) for k in ("r", "simple_ce", "entropy"))
                    terms = frozen_gate_loss_terms(yb, complex_logits, r, ce_s, ent, wb, **frozen_kw)
                grads = tape.gradient(terms["total"], variables)
                opt.apply_gradients(zip(grads, variables))
                return {**terms, **f1_counts("train_complex", yb, complex_logits)}
            with tf.GradientTape() as tape:
                if hard is None:
                    channel, weights = call_selector(self.selector, x, self._mask_t, train_sel)
                else:
                    channel = x[:, :, hard:hard + 1]
                    weights = tf.tile(onehot[None, :], [tf.shape(x)[0], 1])
                simple_logits = self.simple(channel, training=train_simple)
                complex_logits = self.complex(aug(x, idx), training=train_complex) if stage > 1 else None
                terms = cascade_loss_terms(yb, simple_logits, complex_logits, weights, wb, **loss_kw,
                                           simple_sample_weight=None if ws_t is None else tf.gather(ws_t, idx))
            grads = tape.gradient(terms["total"], variables)
            pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
            if len(pairs) < len(variables):  # runs at trace time only
                log.warning("stage %d: no gradient for %s (not on the loss path, or the layer "
                            "re-created its variables on first call: build layers by calling them)",
                            stage, [v.name for g, v in zip(grads, variables) if g is None])
            opt.apply_gradients(pairs)
            counts = f1_counts("train_simple", yb, simple_logits)
            if complex_logits is not None:
                counts.update(f1_counts("train_complex", yb, complex_logits))
            return {**terms, **counts}

        def on_epoch_start(epoch):
            t = self.temperature_for(stage, epoch, epochs)
            self._set_temperature(t)
            return {"temperature": t}

        def on_epoch_end(_epoch):
            return self._val_metrics(X_val, y_val, stage) if X_val is not None else {}

        keep = {}
        if stage > 1 and cfg.restore_best and X_val is not None:
            # Stage 2 trains the complex model alone; stage 3 both.
            keep = {name: KeepBest([getattr(self, name)], _BEST_MONITOR[name], min_score=cfg.restore_best_min_f1)
                    for name in (("complex",) if stage == 2 or self.freeze_simple_stage3 else ("simple", "complex"))}
        hist = run_epochs(self.strategy, replica_step, len(y_np), gb, epochs, stage_seed(cfg.seed, stage),
                          on_epoch_start=on_epoch_start, on_epoch_end=on_epoch_end,
                          callbacks=list(callbacks) + list(keep.values()), verbose=verbose,
                          desc=f"stage {stage}")
        X_t.release()
        best = {name: k.restore() for name, k in keep.items()}
        hist["best_epoch"] = [e == best.get("complex") for e in range(epochs)]
        if "simple" in best:
            hist["best_epoch_simple"] = [e == best["simple"] for e in range(epochs)]
        # Leave the temperature where the schedule ends, so saved weights + state are consistent.
        self._set_temperature(self.temperature_for(stage, max(epochs - 1, 0), epochs))
        hist = {"stage": stage, "epochs": epochs, "lr": lr, "global_batch": gb, "train_windows": len(y_np), **hist}
        self.history[f"stage{stage}"] = hist
        if stage not in self.completed_stages:
            self.completed_stages = sorted(self.completed_stages + [stage])
        return hist

    def _val_metrics(self, X_val: np.ndarray, y_val: np.ndarray, stage: int) -> dict[str, Any]:
        out = self.predict(X_val, electrode=self.electrode if stage > 1 else None, with_complex=stage > 1)
        zs = out["simple_logits"]
        ms = window_metrics(y_val, zs, zs.argmax(1))
        logs = {"val_simple_f1": ms["f1"], "val_simple_sensitivity": ms["sensitivity"],
                "val_complex_f1": None, "val_cascade_f1": None, "val_routing_rate": None}
        if stage > 1:
            zc = out["complex_logits"]
            # In-training monitor: the windows in the given order are one sequence for the hold
            # (calibration and evaluation pass the recordings and start times).
            pred, routed = cascade_predict(zs, zc, self.cfg.tau, rule=training_rule(self.cfg.gate), hold=self.cfg.gate_hold,
                                           hold_max=self.cfg.gate_hold_max)
            logs["val_complex_f1"] = window_metrics(y_val, zc, zc.argmax(1))["f1"]
            logs["val_cascade_f1"] = window_metrics(y_val, None, pred)["f1"]
            logs["val_routing_rate"] = float(routed.mean())
        return logs

    # -- inference --------------------------------------------------------------------------
    def predict(self, X: np.ndarray, electrode: Optional[int] = None, with_complex: bool = True,
                batch_size: int = 256) -> dict[str, np.ndarray]:
        """Logits of both models on ``X``.

        Args:
            X: ``(n, T, C)`` windows.
            electrode: if given, the simple model reads ``X[:, :, electrode]`` (deployment);
                otherwise the soft selector output (training view).
            with_complex: also run the complex model.
            batch_size: inference batch size.

        Returns:
            ``{"simple_logits" (n, 2), "complex_logits" (n, 2) if with_complex,
            "sel_weights" (n, C) if electrode is None}``.
        """
        key = (electrode, with_complex, tuple(X.shape[1:]))
        if key not in self._predict_fns:  # one trace per configuration, not per call
            self._predict_fns[key] = make_predict_fn(self._forward(electrode, with_complex), X.shape[1:])
        return predict_in_batches(self._predict_fns[key], X, batch_size)

    def _forward(self, electrode: Optional[int], with_complex: bool) -> Callable:
        def fn(x):
            out = {}
            if electrode is None:
                channel, out["sel_weights"] = call_selector(self.selector, x, self._mask_t, False)
            else:
                channel = x[:, :, electrode:electrode + 1]
            out["simple_logits"] = self.simple(channel, training=False)
            if with_complex:
                out["complex_logits"] = self.complex(x, training=False)
            return out

        return fn

    def deployed_electrode(self, X: np.ndarray) -> int:
        """Deployed electrode index (via ``electrode_fn``); stored in ``self.electrode``."""
        self.electrode = int(self.electrode_fn(self.selector, X, self.mask))
        if not self.mask[self.electrode]:
            raise ValueError(f"deployed electrode {self.electrode} is masked out")
        return self.electrode

    # -- resume -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable non-model state: completed stages, temperature, histories."""
        return {
            "completed_stages": list(self.completed_stages),
            "temperature": None if self.temperature is None else float(self.temperature.numpy()),
            "electrode": self.electrode,
            "history": self.history,
            "config": self.cfg.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (model weights are restored separately)."""
        self.completed_stages = sorted(int(s) for s in state.get("completed_stages", []))
        self.history = dict(state.get("history", {}))
        self.electrode = state.get("electrode")
        if state.get("temperature") is not None:
            self._set_temperature(float(state["temperature"]))
        if state.get("config") and state["config"] != self.cfg.to_dict():
            log.warning("resuming with a TrainConfig different from the saved one")
