"""The ``train:`` section of the run config (:class:`TrainConfig`). It lives below both :mod:`qcascade.config`
and :mod:`qcascade.training`, so the config loader imports no training code (and no TensorFlow)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from qcascade.errors import ConfigError
from qcascade.gate import DEFAULT_HOLD, DEFAULT_HOLD_MAX, DEFAULT_RULE, GateSetting
from qcascade.config_gate import check_gate_keys
from qcascade.strict_yaml import check_fields, from_dict

__all__ = ["TrainConfig"]

MAX_FOLD_WORKERS = 16
MAX_TF_THREADS = 256
MAX_BATCH_SIZE = 4096  # a larger batch is a typo: one 512x128 batch of 4096 windows is already 1 GiB


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of cascade training (the ``train:`` section of the run config).

    Loss: ``a_simple*L_simple + a_complex*L_complex + a_routing*L_routing + a_sparsity*L_sparsity``
    (see :mod:`qcascade.training.loss`). Class imbalance is handled with per-window class
    weights (``class_weighting="balanced"``: ``w_c = n / (2 n_c)``), not resampling, so one
    epoch is exactly one pass over the training windows and budgets compare exactly.

    Attributes:
        seed: seed for weights init, shuffling and dropout (``tf.keras.utils.set_random_seed``).
        batch_size: global batch size (split across replicas under ``MirroredStrategy``).
        epochs_stage1: epochs of stage 1 (selector + simple model).
        epochs_stage2: epochs of stage 2 (complex model; selector and simple frozen).
        epochs_stage3: epochs of stage 3 (all jointly).
        lr_stage1: Adam learning rate of stage 1.
        lr_stage2: Adam learning rate of stage 2 (also used by the complex-only baseline).
        lr_stage3: Adam learning rate of stage 3 (lower: fine-tuning).
        lr_simple_baseline: Adam learning rate of the simple-alone baselines.
        a_simple: weight of the simple model's cross-entropy.
        a_complex: weight of the routing-weighted complex cross-entropy.
        a_routing: weight of the mean soft routing probability (share sent to complex).
        a_sparsity: weight of the normalised selector entropy (pushes to one electrode).
        complex_weight_floor: the complex CE of each window is weighted by
            ``floor + (1 - floor) * r`` (r = soft routing probability); 0 trains the complex
            model on routed windows only (``loss.complex_weights``). Default 1: every window
            counts fully, because the sequential gate rules route windows no per-window soft
            gate sees (ictal windows the simple model confidently calls interictal).
        simple_interictal_weight: multiplies the class weight of interictal windows in the
            simple model's cross-entropy (stages 1 and 3; the complex model's is unchanged), so
            the simple model is pushed to be sure of interictal windows, where three quarters of
            the routing goes (docs/generalisation.md, round 42). Default 1: no change.
        tau: confidence threshold of the training-time soft gate, in (0, 1). The deployed
            threshold is re-calibrated on validation windows (``tau.calibrate_tau``).
        gate_sharpness: ``k`` in ``r = sigmoid(k * (tau - |p1 - p0|))``.
        gate: the deployed gate rule (``qcascade.gate``): ``"confidence"`` (textbook,
            ``|p1 - p0| > tau``), ``"confirm_changes"`` (default: the simple answer is final
            only when confident AND equal to the previous window's final class, so the complex
            model confirms every change of state) or ``"confirm_ictal_hold"`` (only a confident
            interictal answer outside a seizure is final). The training-time soft gate is
            ``sigmoid(k * (tau - |p1 - p0|))``, and ``sigmoid(k * (tau + p1 - p0))`` for
            ``confirm_ictal_hold``. ``"auto"`` calibrates every rule on validation and deploys the
            one :func:`qcascade.training.tau.choose_gate` picks (the soft gate of training then
            uses ``confirm_changes``).
        gate_probe_every: probe period ``P`` of the deployed gate (:mod:`qcascade.gate`): the
            complex model sees at least one window in every ``P`` of a recording whatever the
            simple model says, so a seizure the one electrode cannot see still reaches it
            (costs at most ``1/P`` routing). 0 (default): no probe; the sentinel below replaces
            it, a blind probe of 20 was the default until round 17 (docs/generalisation.md).
        gate_recheck_tau: recheck of the deployed gate (:mod:`qcascade.gate`): a window the
            complex model calls interictal without confidence (``p0 - p1 < gate_recheck_tau``)
            makes the next window a probe (0.76: a logit margin of about 2). 0 (default): off;
            needs ``gate_probe_every > 0``. Off by default: it helped only the multifocal stress
            patient it was developed on, and with a weak complex model it chains into routing
            most windows (docs/generalisation.md, round 13).
        gate_sentinel_ratio: the gate's sentinel (:mod:`qcascade.sentinel`): it is up while at
            least ``gate_sentinel_electrodes`` electrodes' line length exceeds this ratio times
            their own running baseline, and then the complex model sees one window in every
            ``gate_sentinel_every``. Default 2.5 (3.0 until round 37), in the C++ top level too;
            0: off (docs/generalisation.md, rounds 15-17 and 36-37).
        gate_sentinel_electrodes: how many electrodes must be above their baseline. Default 2
            (3 until round 37). Recordings with fewer electrodes (Bonn's one) get no sentinel: it
            could never be up.
        gate_sentinel_memory: the baseline's memory in windows (a power of 2: a shift in hardware).
        gate_sentinel_every: the probe period while the sentinel is up. Default 8 (4 until round 60).
        gate_sentinel_persist: the sentinel counts as up only after its electrodes have been
            above their baselines for this many windows in a row, so that an artefact shorter
            than that (movement: a few seconds) costs no complex-model window. Default 5 (round 34
            of docs/generalisation.md); 1: every up window counts, as until then. At most 255 (an
            8-bit counter in the C++ top level).
        gate_sentinel_stay_ratio: once up, the sentinel stays up while at least
            ``gate_sentinel_electrodes`` electrodes' line length exceeds this ratio times their
            baseline (below ``gate_sentinel_ratio``), so the complex model is still asked when it
            starts to see a seizure whose onset raised the line length first. 0: off, as until
            round 40 of docs/generalisation.md; in the C++ top level too (a one-bit state).
        gate_sentinel_own_ratio: the sentinel is also up once the simple model's own electrode
            alone has been above this ratio times its baseline for ``gate_sentinel_persist``
            windows in a row: a seizure of a morphology the simple model never trained on still
            raises its electrode's line length. Default 1.75 since round 41 of
            docs/generalisation.md (chosen on six stress seeds, checked on a seventh); 0: off, as
            until then. In the C++ top level too (one comparison and an 8-bit run counter).
        gate_sentinel_interictal_only: the sentinel routes only windows the simple model calls
            interictal (it looks for seizures the one electrode does not see; a state the simple
            model calls ictal was confirmed by the complex model under ``confirm_changes``).
            True by default since round 29 (docs/generalisation.md); False: it routes every
            window while up, as before.
        gate_sentinel_watch: which electrodes the sentinel reads. ``complex`` (the default since
            round 57 of docs/generalisation.md): only those the complex model reads (the fold's
            ``complex_electrodes.json``, ``model.complex_electrodes``) plus the simple model's own,
            since a window the sentinel routes is decided from those electrodes alone, and every
            electrode when the complex model reads them all; ``all``: every electrode, as until
            then. In the C++ top level too (a constant list of electrodes).
        gate_hold: hold of the deployed gate (:mod:`qcascade.gate`): after a routed window that the complex
            model calls ictal and the simple model called interictal, the next ``gate_hold`` windows are
            routed too, so one interictal answer of the complex model inside a seizure the electrode cannot
            see does not hand the rest of it to the simple model. Default 2 (docs/generalisation.md, rounds
            26-27); 0: off; at most 255 (an 8-bit counter in the C++ top level).
        gate_hold_max: the growing hold's ceiling (:mod:`qcascade.gate`): each window in a row on which the
            complex model confirms a seizure against the simple model holds it one window longer, from
            ``gate_hold`` up to this many. Default 8 (round 36); at most ``gate_hold``: the fixed hold.
        gate_ictal_every: the ictal stride ``K`` (:mod:`qcascade.gate`): where the hold is full (``gate_ictal_after``),
            the complex model decides one window in ``K`` of the seizure and the windows between keep it ictal.
            Default 2 (round 65); 1: off. Needs ``gate_hold_max > gate_hold > 0``: without a growing hold the
            default has no stride, and another value is an error. In the C++ top level too.
        gate_ictal_after: from which hold the stride carries: ``"ceiling"`` (``gate_hold_max``; round 65) or
            ``"grown"`` (past ``gate_hold``; round 63, whose rule 12 failed).
        gate_tau_interictal: a second threshold for windows the simple model calls interictal
            (:mod:`qcascade.gate`, "Two thresholds"), calibrated on validation after tau
            (:func:`qcascade.training.tau.calibrate_tau_interictal`): ``"keep"`` lowers it as far
            as validation F1 and sensitivity stay within one ictal window of tau's own cascade;
            ``"margin"`` as far as tau's own margin allows; ``"off"``: one threshold, as until
            round 42 of docs/generalisation.md (chosen on seven stress seeds, checked on an
            eighth; docs/calibration.md, "Two thresholds").
        gate_fuse: late fusion (:mod:`qcascade.gate`, "Fusion"): a routed window is decided on the complex
            model's logit difference plus this times the simple model's, tau calibrated on the same; 1/2**k
            (a shift in the top level; default 1/4, round 59 of docs/generalisation.md) or 0 (off, as before).
            Complex-only stays unfused. docs/calibration.md.
        gate_unseen_probe_every: the probe period ``P`` deployed on a fold whose training data hold a
            seizure the simple model's electrode does not see (``gate_unseen_ratio``), when
            ``gate_probe_every`` is 0: such a patient can have a test seizure that no electrode's
            line length shows and the simple model calls interictal with confidence. Default 16 since
            round 63 (32 before; costs at most 1/16 of the windows, on those folds only); 0: off
            (docs/calibration.md, "Seizures the electrode does not see"; round 39).
        gate_unseen_ratio: a training seizure counts as unseen when the simple model calls fewer
            than this fraction as many of its training windows ictal as the complex model does.
            Default 0.7.
        gate_weak_simple_gap, gate_weak_simple_max_f1: a fold whose simple model scores validation F1 under
            ``_max_f1`` and at least ``_gap`` under complex-only's also gets ``gate_unseen_probe_every``
            (``steps_choose.weak_simple_model``; default 0.3 and 0.5, round 60; gap 0: off; docs/calibration.md).
        gate_probe_choices: probe periods calibrated per fold besides the fold's own (``gate_probe_every``,
            or ``gate_unseen_probe_every`` where it applies, or none), each at its own tau; the one with
            the fewest hidden validation seizures among those whose tau meets the calibration's margin,
            then the least validation routing, is deployed (``steps_choose.choose_probe_period``). With
            ``tau_reference_f1: complex_only`` a frequent probe can replace a high tau on a fold whose
            validation seizure the electrode does not see. Default ``[16, 8]`` (round 50 of
            docs/generalisation.md); empty: the fold's own period, as before.
        gate_unseen_free_simple: ``"choose"``: on a fold whose training seizures include ones the
            electrode does not see (``gate_unseen_ratio``), the deployed simple architecture is also
            trained alone without those seizures' ictal windows, its gate calibrated the same way, and
            the one of the two that hides fewer validation seizures, then meets the margin, then costs
            fewer MACs per validation window is deployed (:mod:`qcascade.simple_unseen_free`; round 51
            of docs/generalisation.md). Not for long-term recordings. ``"off"``: the cascade's own.
        temp_start: selector softmax temperature at the first epoch of stage 1.
        temp_end: temperature at the last epoch of stage 1 (geometric schedule), kept after.
        class_weighting: ``"balanced"`` or ``"none"``.
        tau_margin: allowed drop of val sensitivity and F1 vs complex-only when calibrating tau.
        tau_margin_windows: the margin is at least this many validation ictal windows'
            worth (``n / n_ictal_val``); a margin finer than one window cannot be judged on
            one validation seizure (``tau.calibrate_tau``). 0: ``tau_margin`` alone.
        tau_routing_tolerance: when calibrating tau, the largest qualifying tau whose val
            routing rate is within this share of windows of the smallest qualifying rate wins
            (see ``tau.calibrate_tau``); 0 picks the smallest routing rate outright.
        tau_reference_f1: ``"complex_only"`` (default since round 50 of docs/generalisation.md) holds
            the calibrated cascade's val F1 within ``tau_margin`` of complex-only; ``"best"`` (the default
            before) of the better of complex-only and the best cascade F1 over the tau grid
            (``tau.calibrate_tau``).
        tau_reference_min_f1: where complex-only's own validation F1 is below this, the validation
            seizure cannot show what routing buys (the model that would be asked misses it too):
            the calibration deploys the tau with the least validation routing instead of holding
            the cascade to that reference (``tau.calibrate_tau``; docs/generalisation.md, round 38).
            0: always hold it to the reference, as before.
        tau_routing_budget: where the calibrated tau routes more than this share of the validation
            windows, the tau with the best validation F1 among those within it is deployed instead,
            unless that tau hides a validation seizure that complex-only detects or loses more than
            ``tau_routing_budget_max_f1_loss`` of validation F1 (``steps_choose.apply_routing_budget``;
            docs/calibration.md, "A routing budget"). Default 0.1 since round 54 of
            docs/generalisation.md (chosen on five stress seeds, checked on a sixth); 0: off, as before.
        tau_routing_budget_max_f1_loss: the validation F1 the budget's cheaper tau may lose.
        tau_routing_budget_fallback: ``least_routing``: where the budget's tau is refused, the
            sweep's least-routing tau that routes less than the calibrated one, hides no validation
            seizure complex-only detects and loses at most ``tau_routing_budget_max_f1_loss`` of
            validation F1 is deployed instead (docs/calibration.md, "A routing budget"). Default
            since round 55 of docs/generalisation.md (chosen on seven stress seeds, checked on an
            eighth); ``off``: the calibrated tau stays, as before.
        tau_grid_size: number of evenly spaced tau values in [0, 1] for calibration.
        deterministic_ops: call ``tf.config.experimental.enable_op_determinism()`` (global to
            the process, cannot be undone). Off by default: it once cut the complex model's
            training throughput by ~35-70 % on 2 CPU cores (bench/bench_training.py; no cost in
            the latest BENCHMARKS.md), and it did not remove the run-to-run drift that README
            ("Reproducibility") describes.
        folds: ``"all"`` (every seizure of a patient is the test once, :mod:`qcascade.folds`)
            or ``"first"`` (only the deployed fold: the last seizure is the test).
        fold_workers: processes that train the folds of ``folds: all`` side by side
            (:mod:`qcascade.fold_pool`), a fresh process per fold; one training process keeps
            about one core busy. 1 trains them one after the other in the main process
            (``swec-long``: in one worker process, so that the main process holds no fold). The
            results do not depend on it.
        tf_threads: TensorFlow's intra- and inter-op threads in every process of a run (the main
            process and each fold worker; 0: TensorFlow's default, one per core each). The
            convolutions of a batch are too small to spread over cores, and ``fold_workers``
            processes with a pool per core each contend (docs/evaluation.md, "Time"). Float sums
            depend on it, so results do too (by about a hundredth of F1).
        restore_best: at the end of stages 2 and 3 (and the baselines' phases mirroring them),
            load each model's weights of its own epoch with the best validation F1 (stage 2: the
            complex model; stage 3: each model by its own F1, so the complex model stays paired
            with the complex-only baseline) instead of keeping the last epoch's.
        restore_best_min_f1: when no epoch reaches this validation F1, the validation windows
            give no guidance (e.g. a validation seizure from an onset zone no training seizure
            came from) and the last epoch is kept instead (docs/generalisation.md).
        weight_decay: decoupled weight decay of the complex model's kernels (stages 2-3 and the
            complex-only baseline); 0 = plain Adam.
        complex_only_baseline: ``"auto"``: when the cascade trains its complex model with the
            complex-only objective (``complex_weight_floor: 1`` and ``a_complex: 1``: every window
            weighted 1, same initial weights, batches, seeds, schedule and best-epoch rule), the
            cascade's complex model *is* the complex-only baseline and is not trained a second
            time; otherwise, and with ``"train"``, the baseline is trained on its own.
        aug_scale: the complex model's training windows are scaled by a log-uniform factor in
            ``[1/aug_scale, aug_scale]`` per window (1 = off; :mod:`qcascade.training.augment`).
        aug_electrode_gain: and each electrode by a log-uniform gain in ``[1/g, g]`` (1 = off).
        aug_electrode_dropout: probability that an electrode of a training window is zeroed.
        aug_noise: SD of uniform noise added to live electrodes (inputs are normalised).
        aug_time_stretch: and each window resampled in time by a log-uniform factor in
            ``[1/f, f]`` (1 = off), so a seizure's rhythm is not learnt to the hertz. Off by
            default: with 1.5 and ``aug_sign_flip: 0.5`` a held-out stress seed found its unseen
            seizure morphologies barely more often (docs/generalisation.md, round 41).
        aug_sign_flip: probability that a window's sign is flipped (all electrodes; 0 = off).
    """

    seed: int = 0
    batch_size: int = 64
    epochs_stage1: int = 10
    epochs_stage2: int = 10
    epochs_stage3: int = 5
    lr_stage1: float = 3e-3
    lr_stage2: float = 1e-3
    lr_stage3: float = 3e-4
    lr_simple_baseline: float = 3e-3
    a_simple: float = 1.0
    a_complex: float = 1.0
    a_routing: float = 0.05
    a_sparsity: float = 0.05
    complex_weight_floor: float = 1.0
    simple_interictal_weight: float = 1.0
    tau: float = 0.5
    gate_sharpness: float = 10.0
    gate: GateSetting = DEFAULT_RULE
    gate_probe_every: int = 0
    gate_recheck_tau: float = 0.0
    gate_sentinel_ratio: float = 2.5
    gate_sentinel_electrodes: int = 2
    gate_sentinel_memory: int = 32
    gate_sentinel_every: int = 8
    gate_sentinel_persist: int = 5
    gate_sentinel_stay_ratio: float = 0.0
    gate_sentinel_own_ratio: float = 1.75
    gate_sentinel_interictal_only: bool = True
    gate_sentinel_watch: Literal["all", "complex"] = "complex"
    gate_hold: int = DEFAULT_HOLD
    gate_hold_max: int = DEFAULT_HOLD_MAX
    gate_ictal_every: int = 2
    gate_ictal_after: Literal["ceiling", "grown"] = "ceiling"
    gate_tau_interictal: Literal["off", "keep", "margin"] = "keep"
    gate_fuse: float = 0.25
    gate_unseen_probe_every: int = 16
    gate_unseen_ratio: float = 0.7
    gate_weak_simple_gap: float = 0.3
    gate_weak_simple_max_f1: float = 0.5
    gate_probe_choices: tuple[int, ...] = (16, 8)
    gate_unseen_free_simple: Literal["off", "choose"] = "choose"
    temp_start: float = 1.0
    temp_end: float = 0.05
    class_weighting: Literal["balanced", "none"] = "balanced"
    tau_margin: float = 0.01
    tau_margin_windows: int = 1
    tau_routing_tolerance: float = 0.0
    tau_reference_f1: Literal["best", "complex_only"] = "complex_only"
    tau_reference_min_f1: float = 0.5
    tau_routing_budget: float = 0.1
    tau_routing_budget_max_f1_loss: float = 0.1
    tau_routing_budget_fallback: Literal["off", "least_routing"] = "least_routing"
    tau_grid_size: int = 101
    deterministic_ops: bool = False
    folds: Literal["all", "first"] = "all"
    fold_workers: int = 2
    tf_threads: int = 1
    restore_best: bool = True
    restore_best_min_f1: float = 0.3
    weight_decay: float = 0.0
    complex_only_baseline: Literal["auto", "train"] = "auto"
    aug_scale: float = 2.0
    aug_electrode_gain: float = 1.25
    aug_electrode_dropout: float = 0.1
    aug_noise: float = 0.1
    aug_time_stretch: float = 1.0
    aug_sign_flip: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self, "train")  # types and Literal choices, as for a YAML file
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"train.{f.name}: must be finite, got {value!r}")
        if not 0.0 < self.simple_interictal_weight <= 100.0:
            raise ConfigError(f"train.simple_interictal_weight: must be in (0, 100], got {self.simple_interictal_weight}")
        for name in ("epochs_stage1", "epochs_stage2", "epochs_stage3"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}: must be >= 0, got {getattr(self, name)}")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ConfigError(f"train.batch_size: must be in [1, {MAX_BATCH_SIZE}], got {self.batch_size}")
        if self.seed < 0:
            raise ConfigError(f"train.seed: must be >= 0, got {self.seed}")
        for name in ("lr_stage1", "lr_stage2", "lr_stage3", "lr_simple_baseline",
                     "gate_sharpness", "temp_start", "temp_end"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"train.{name}: must be > 0, got {getattr(self, name)}")
        for name in ("a_simple", "a_complex", "a_routing", "a_sparsity"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}: must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.complex_weight_floor <= 1.0:
            raise ConfigError(f"train.complex_weight_floor: must be in [0, 1], got {self.complex_weight_floor}")
        if not 0.0 < self.tau < 1.0:
            raise ConfigError(f"train.tau: must be in (0, 1), got {self.tau}")
        if self.temp_end > self.temp_start:
            raise ConfigError(f"train.temp_end: must be <= temp_start ({self.temp_start}), got {self.temp_end}")
        if not 0.0 <= self.tau_margin < 1.0:
            raise ConfigError(f"train.tau_margin: must be in [0, 1), got {self.tau_margin}")
        if self.tau_margin_windows < 0:
            raise ConfigError(f"train.tau_margin_windows: must be >= 0, got {self.tau_margin_windows}")
        if not 0.0 <= self.tau_reference_min_f1 <= 1.0:
            raise ConfigError(f"train.tau_reference_min_f1: must be in [0, 1], got {self.tau_reference_min_f1}")
        if not 0.0 <= self.tau_routing_budget < 1.0:
            raise ConfigError(f"train.tau_routing_budget: must be 0 (off) or in (0, 1), got {self.tau_routing_budget}")
        if not 0.0 <= self.tau_routing_budget_max_f1_loss <= 1.0:
            raise ConfigError(f"train.tau_routing_budget_max_f1_loss: must be in [0, 1], "
                              f"got {self.tau_routing_budget_max_f1_loss}")
        if not 0.0 <= self.tau_routing_tolerance < 1.0:
            raise ConfigError(f"train.tau_routing_tolerance: must be in [0, 1), got {self.tau_routing_tolerance}")
        check_gate_keys(self)
        if not 0.0 <= self.restore_best_min_f1 <= 1.0:
            raise ConfigError(f"train.restore_best_min_f1: must be in [0, 1], got {self.restore_best_min_f1}")
        if not 0.0 <= self.weight_decay < 1.0:
            raise ConfigError(f"train.weight_decay: must be in [0, 1), got {self.weight_decay}")
        for name in ("aug_scale", "aug_electrode_gain", "aug_time_stretch"):
            if not 1.0 <= getattr(self, name) <= 10.0:
                raise ConfigError(f"train.{name}: must be in [1, 10] (1 = off), got {getattr(self, name)}")
        if not 0.0 <= self.aug_electrode_dropout < 1.0:
            raise ConfigError(f"train.aug_electrode_dropout: must be in [0, 1), got {self.aug_electrode_dropout}")
        if not 0.0 <= self.aug_noise <= 10.0:
            raise ConfigError(f"train.aug_noise: must be in [0, 10], got {self.aug_noise}")
        if not 0.0 <= self.aug_sign_flip <= 1.0:
            raise ConfigError(f"train.aug_sign_flip: must be in [0, 1], got {self.aug_sign_flip}")
        if not 1 <= self.fold_workers <= MAX_FOLD_WORKERS:
            raise ConfigError(f"train.fold_workers: must be in [1, {MAX_FOLD_WORKERS}], got {self.fold_workers}")
        if not 0 <= self.tf_threads <= MAX_TF_THREADS:
            raise ConfigError(f"train.tf_threads: must be in [0, {MAX_TF_THREADS}] (0: TensorFlow's default), "
                              f"got {self.tf_threads}")
        if self.tau_grid_size < 2:
            raise ConfigError(f"train.tau_grid_size: must be >= 2, got {self.tau_grid_size}")

    def complex_only_is_cascade_complex(self) -> bool:
        """True when the complex-only baseline is taken from the cascade instead of trained again
        (``complex_only_baseline: auto`` and the cascade's complex objective is the baseline's)."""
        return self.complex_only_baseline == "auto" and self.complex_weight_floor == 1.0 and self.a_complex == 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of all fields (JSON/YAML-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "TrainConfig":
        """Build from a mapping (e.g. the parsed ``train:`` YAML section); unknown keys raise.

        Raises:
            ConfigError: on an unknown key or an invalid value (naming the key).
        """
        return from_dict(cls, d, path="train")

    def sentinel_spec(self, n_chans: int | None = None, electrode: int | None = None, watch=None):
        """The gate's :class:`qcascade.sentinel.SentinelSpec`, or None (:func:`qcascade.config_gate.sentinel_spec`)."""
        from qcascade.config_gate import sentinel_spec

        return sentinel_spec(self, n_chans, electrode, watch)

    def tau_grid(self) -> tuple[float, ...]:
        """The calibration grid: ``tau_grid_size`` evenly spaced values from 0 to 1 inclusive."""
        n = self.tau_grid_size
        return tuple(round(i / (n - 1), 6) for i in range(n))
