"""Typed artifacts the build steps hand each other, and the one way to read or write each.

A step never reaches into another step's dict. What it needs comes through a loader here that
returns the in-process copy when this process made (or already read) it, and otherwise reads the
file the writing step left in the unit folder, so a resumed run (a fresh process, ``--from-step``,
``qcascade convert --run``) sees the same record:

============================  =====================  ======================================
artifact                      written by             loader
============================  =====================  ======================================
:class:`PreparedData`         ``step_prepare_data``  :func:`qcascade.steps_data.prepared_data`
                                                     (rebuilt from recordings; not stored)
:class:`Selection`            ``step_select_``       :func:`selection` / :meth:`Selection.save`
(``selection.json``)          ``electrode``
:class:`Deployment`           ``step_calibrate``     :func:`deployment` / :func:`save_deployment`
(``deploy/deploy.json``)
:class:`DeployedModels`       ``step_calibrate``     :func:`deployed_models`
(``deploy/*.h5``)
:class:`WindowScores`         ``step_evaluate``      :meth:`WindowScores.load`
(``test_logits.npz``)
:class:`ValidationScores`     ``step_calibrate``     :meth:`ValidationScores.load`
(``val_logits.npz``)
============================  =====================  ======================================

:class:`Artifacts` is the per-context holder (``ctx.artifacts``) of these records and of the
process-only objects (trainer, distribution strategy, compiled hls4ml models) that are rebuilt
from files on a resume.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import numpy as np

from qcascade.errors import RunDirError
from qcascade.io_utils import atomic_save_npz, atomic_write_json


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise RunDirError(f"{path}: missing; rerun with --from-step of the step that writes it") from exc
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _from_json(cls, data: dict, path: Path):
    """``cls(**data)`` for a record dataclass (keys it does not know are left out); a missing
    required key is named with its file."""
    kw = {}
    for f in fields(cls):
        if f.name in data:
            kw[f.name] = data[f.name]
        elif f.default is MISSING and f.default_factory is MISSING:  # no default: the record needs it
            raise RunDirError(f"{path}: key {f.name!r} missing; rerun with --from-step of the step that writes it")
    return cls(**kw)


# ----------------------------------------------------------------------------- records on disk
@dataclass
class Selection:
    """The hard electrode choice of stage 1 (``selection.json``).

    Attributes:
        selected_electrode: index (0..n_chans-1) of the deployed electrode.
        soz_electrodes: onset-zone electrodes when the data are synthetic, else None.
        in_onset_zone: whether the choice is one of them (None without ground truth).
        mean_weights: ``(n_chans,)`` mean selector weights on training windows.
        max_mean_weight, entropy_nats, temperature: selector diagnostics.
        electrode_quality: :meth:`qcascade.electrode_quality.ElectrodeQuality.summary` (the
            electrodes excluded from deployment), None when ``model.exclude_bad_electrodes`` is off.
        electrode_choice: with ``model.electrode_choice: earliest_of_top``, what decided
            (:func:`qcascade.onset_latency.earliest_of_top`); None with the selector alone.
    """

    selected_electrode: int
    soz_electrodes: list | None = None
    in_onset_zone: bool | None = None
    mean_weights: list = field(default_factory=list)
    max_mean_weight: float | None = None
    entropy_nats: float | None = None
    temperature: float | None = None
    electrode_quality: dict | None = None
    electrode_choice: dict | None = None

    FILE = "selection.json"

    @classmethod
    def load(cls, unit_dir: Path) -> "Selection":
        path = Path(unit_dir) / cls.FILE
        sel = _from_json(cls, _read_json(path), path)
        sel.selected_electrode = int(sel.selected_electrode)
        return sel

    def save(self, unit_dir: Path) -> Path:
        return atomic_write_json(Path(unit_dir) / self.FILE, asdict(self))


@dataclass
class Deployment:
    """What ``step_calibrate`` deploys (``deploy/deploy.json``); the hardware steps build from it.

    Attributes:
        selected_electrode: the simple path's electrode.
        simple_model: simple model name (``"A"``, ``"B"`` or ``"C"``).
        tau: calibrated confidence threshold in (0, 1).
        gate: gate rule of :mod:`qcascade.gate` (runs from before the rules existed: ``confidence``).
        logit_threshold: ``2 * atanh(tau)``, the margin the generated C++ compares against.
        macs_simple, macs_complex: multiply-accumulates per window of each path.
        bn_fold: max |logit change| of BatchNorm folding per model.
        complex_only_val: validation metrics of the complex-only baseline (the reference).
        tau_sweep_val: the validation sweep, one dict per tau of the grid.
        gate_variants: ``{name: {"tau": float, "rule": str, "probe_every": int, "recheck_tau": float,
            "sentinel": bool, "hold": int, "hold_max": int}}``, every gate variant (a rule, with and without the probe,
            recheck, sentinel and hold) at its own calibrated tau; names are ``<rule>`` followed by
            ``+probe<P>``, ``+recheck<tau_c>``, ``+sentinel`` and ``+hold<H>`` where they apply.
        probe_every: the gate probe period ``P`` (0: no probe; :mod:`qcascade.gate`).
        recheck_tau: the gate's recheck ``tau_c`` (0: off, and in files from before it existed).
        hold: the gate's hold ``H`` (0: off, and in files from before it existed).
        hold_max: the growing hold's ceiling ``M`` (:func:`qcascade.gate.hold_ceiling`; at most ``hold``,
            and 0 in files from before it existed: the fixed hold).
        tau_reference_min_f1: ``train.tau_reference_min_f1`` of the calibration (0 in files from
            before it existed: the reference was always held to).
        tau_interictal: the gate's threshold where the simple model says interictal
            (``train.gate_tau_interictal``; None: ``tau`` on both sides, and in older files).
        fuse: the gate's late fusion ``a`` (``train.gate_fuse``; :mod:`qcascade.gate`; 0: off, and in
            older files).
        ictal_every: the gate's ictal stride (``train.gate_ictal_every``; 1: off, and in older files).
        ictal_after: from which hold the stride carries (``train.gate_ictal_after``; ``"grown"`` in older files).
        sentinel: the gate's sentinel constants (:meth:`qcascade.sentinel.SentinelSpec.as_dict`) and
            ``"ops"`` per window; empty when off.
        choices: ``{"simple_model": {...}, "gate": {...}}``: the candidates, criterion and choice of
            ``model.simple_model`` / ``train.gate`` (``auto`` or fixed; :mod:`qcascade.steps_choose`).
        fit_gap: ``{"train": {...}, "val": {...}, "gap": {...}}`` F1 of each model on training and
            validation windows (the overfitting gap).
        postprocess: ``swec-long``: the k-of-n smoothing of the decisions chosen on validation
            (``{"k", "n", ...}``; empty otherwise; :mod:`qcascade.steps_longterm`).
        simple_path, complex_path: BN-folded QKeras models, relative to the unit folder.
    """

    selected_electrode: int
    simple_model: str
    tau: float
    logit_threshold: float
    macs_simple: int
    macs_complex: int
    gate: str = "confidence"
    bn_fold: dict = field(default_factory=dict)
    complex_only_val: dict = field(default_factory=dict)
    tau_sweep_val: list = field(default_factory=list)
    gate_variants: dict = field(default_factory=dict)
    probe_every: int = 0
    recheck_tau: float = 0.0
    hold: int = 0
    hold_max: int = 0
    tau_reference_min_f1: float = 0.0
    tau_interictal: Optional[float] = None
    fuse: float = 0.0
    ictal_every: int = 1
    ictal_after: str = "grown"
    sentinel: dict = field(default_factory=dict)
    choices: dict = field(default_factory=dict)
    fit_gap: dict = field(default_factory=dict)
    postprocess: dict = field(default_factory=dict)
    simple_path: str = "deploy/simple.h5"
    complex_path: str = "deploy/complex.h5"

    FILE = "deploy/deploy.json"

    @property
    def macs_every_window(self) -> int:
        """What runs on every window: the simple model's MACs and the sentinel's operations."""
        return int(self.macs_simple) + int(self.sentinel.get("ops", 0))

    @classmethod
    def load(cls, unit_dir: Path) -> "Deployment":
        path = Path(unit_dir) / cls.FILE
        data = _read_json(path)
        if data.get("gate") is None:
            data.pop("gate", None)  # written before the gate rules existed: the confidence gate
        dep = _from_json(cls, data, path)
        dep.selected_electrode = int(dep.selected_electrode)
        return dep

    def save(self, unit_dir: Path) -> Path:
        return atomic_write_json(Path(unit_dir) / self.FILE, asdict(self))


@dataclass
class WindowScores:
    """The deployed models on every test window of a unit or fold (``test_logits.npz``).

    Written by ``step_evaluate``; read by ``step_folds`` (pooling) and ``step_csim`` (the
    ``prev_cls`` of each C-simulated window). ``n`` = test windows.

    Attributes:
        simple, complex, complex_only: ``(n, 2)`` logits of the deployed simple and complex models
            and of the complex-only baseline.
        pred: ``(n,)`` the cascade's final class; routed: ``(n,)`` bool, sent to the complex model.
        y: ``(n,)`` labels; feature: ``(n,)`` ictal probability of the feature baseline.
        start_s: ``(n,)`` window start in its recording; record_ids: ``(n,)`` str.
        prev_cls: ``(n,)`` the previous window's final class the gate saw (None: written before
            the sequential gate rules).
        gap: ``(n,)`` windows since the complex model last saw one, as the gate probe counts them
            (None: written before the probe existed).
        held: ``(n,)`` windows the gate's hold still routed when each arrived (None: written
            before the hold existed).
        sentinel: ``(n,)`` bool, the gate's sentinel was up (None: no sentinel).
    """

    simple: Any
    complex: Any
    complex_only: Any
    pred: Any
    routed: Any
    y: Any
    feature: Any
    start_s: Any
    record_ids: Any
    prev_cls: Any = None
    gap: Any = None
    sentinel: Any = None
    held: Any = None

    FILE = "test_logits.npz"
    STEP = "step_evaluate"

    @classmethod
    def load(cls, unit_dir: Path) -> "WindowScores":
        scores = _load_npz(cls, unit_dir)
        scores.routed = np.asarray(scores.routed, bool)
        return scores

    def save(self, unit_dir: Path) -> Path:
        return _save_npz(self, unit_dir)


@dataclass
class ValidationScores:
    """The calibrated models on every validation window of a unit or fold (``val_logits.npz``).

    Written by ``step_calibrate``: what tau, the gate variant and the simple model were chosen
    on, so a choice rule can be replayed offline on the windows it would have seen. ``n`` =
    validation windows.

    Attributes:
        simple, complex: ``(n, 2)`` logits of the deployed (BN-folded) simple and complex models.
        complex_only: ``(n, 2)`` logits of the complex-only baseline.
        y: ``(n,)`` labels; start_s: ``(n,)`` window start in its recording; record_ids: ``(n,)`` str.
        sentinel: ``(n,)`` bool, the gate's sentinel was up (None: no sentinel).
    """

    simple: Any
    complex: Any
    complex_only: Any
    y: Any
    start_s: Any
    record_ids: Any
    sentinel: Any = None

    FILE = "val_logits.npz"
    STEP = "step_calibrate"

    @classmethod
    def load(cls, unit_dir: Path) -> "ValidationScores":
        return _load_npz(cls, unit_dir)

    def save(self, unit_dir: Path) -> Path:
        return _save_npz(self, unit_dir)


def _load_npz(cls, unit_dir: Path):
    """A per-window record from ``unit_dir / cls.FILE``; a missing file names the step to rerun."""
    path = Path(unit_dir) / cls.FILE
    if not path.exists():
        raise RunDirError(f"{path}: missing; rerun with --from-step {cls.STEP}")
    with np.load(path) as z:
        return _from_json(cls, {k: z[k] for k in z.files}, path)


def _save_npz(record, unit_dir: Path) -> Path:
    """Write a per-window record's arrays (None fields left out; record ids as str), atomically."""
    arrays = {f.name: np.asarray(getattr(record, f.name)) for f in fields(record) if getattr(record, f.name) is not None}
    arrays["record_ids"] = arrays["record_ids"].astype(str)
    return atomic_save_npz(Path(unit_dir) / record.FILE, **arrays)


# ----------------------------------------------------------------------------- in-process records
@dataclass
class PreparedData:
    """The windows of one unit or fold, as ``step_prepare_data`` builds them (rebuilt on a resume).

    Attributes:
        sets: ``{"train"|"val"|"test": WindowSet}`` (``X`` ``(n, n_times, n_chans)``, ``y`` ``(n,)``).
        splits: ``{"train"|"val"|"test": [Recording, ...]}``.
        normalizer: the per-electrode normaliser fitted on training windows.
        val_blocks: time blocks carved from training records for validation (two-seizure patients).
        scaling: ``{"input_scaling": "train_stats"|"causal_robust", "reason", ...}``: the input
            scaling of these windows (``data.input_scaling: auto`` resolved).
    """

    sets: dict
    splits: dict
    normalizer: Any
    val_blocks: list = field(default_factory=list)
    scaling: dict = field(default_factory=lambda: {"input_scaling": "train_stats", "reason": "configured"})


@dataclass
class DeployedModels:
    """The BN-folded QKeras models of a :class:`Deployment`, loaded from its paths."""

    simple: Any
    complex: Any

    def __iter__(self):  # ``simple, complex = deployed_models(ctx)``
        return iter((self.simple, self.complex))


@dataclass
class Artifacts:
    """Per-context (``ctx.artifacts``) holder of the typed artifacts and process-only objects.

    Attributes:
        data: :class:`PreparedData` once built.
        selection, deployment: the on-disk records once written or read.
        deployed: :class:`DeployedModels` once loaded.
        trainer: the ``CascadeTrainer``; ``trainer_stage`` names the checkpoint its weights hold.
        strategy: the ``tf.distribute`` strategy.
        hls: ``{"simple"|"complex": hls4ml model}`` once converted (and compiled).
        complex_only: the complex-only baseline model step_baselines just trained (this process
            only; step_calibrate otherwise loads ``baselines/complex_only.h5``).
        electrode_quality: the training windows' electrode flags (recomputed per process).
        complex_electrodes: the complex model's ``(n_chans,)`` electrode mask (recomputed per
            process, :mod:`qcascade.complex_electrodes`).
    """

    data: PreparedData | None = None
    selection: Selection | None = None
    deployment: Deployment | None = None
    deployed: DeployedModels | None = None
    trainer: Any = None
    trainer_stage: str | None = None
    strategy: Any = None
    hls: dict | None = None
    complex_only: Any = None
    electrode_quality: Any = None
    complex_electrodes: Any = None

    def release_models(self) -> None:
        """Drop the TensorFlow / hls4ml objects (records and windows stay)."""
        self.deployed = self.trainer = self.trainer_stage = self.strategy = self.hls = None
        self.complex_only = None


# ----------------------------------------------------------------------------- loaders
def selection(ctx) -> Selection:
    """The unit's (or fold's) :class:`Selection`: in memory, else ``selection.json``."""
    if ctx.artifacts.selection is None:
        ctx.artifacts.selection = Selection.load(ctx.unit_dir)
    return ctx.artifacts.selection


def save_selection(ctx, sel: Selection) -> None:
    sel.save(ctx.unit_dir)
    ctx.artifacts.selection = sel


def deployment(ctx) -> Deployment:
    """The unit's (or fold's) :class:`Deployment`: in memory, else ``deploy/deploy.json``."""
    if ctx.artifacts.deployment is None:
        ctx.artifacts.deployment = Deployment.load(ctx.unit_dir)
    return ctx.artifacts.deployment


def save_deployment(ctx, dep: Deployment) -> None:
    """Write ``deploy/deploy.json``; models loaded for an earlier deployment are dropped."""
    dep.save(ctx.unit_dir)
    ctx.artifacts.deployment = dep
    ctx.artifacts.deployed = None


def deployed_models(ctx) -> DeployedModels:
    """The deployment's BN-folded QKeras models as saved (and reloaded) from disk."""
    if ctx.artifacts.deployed is None:
        from qcascade.models import load_model

        dep = deployment(ctx)
        ctx.artifacts.deployed = DeployedModels(load_model(ctx.unit_dir / dep.simple_path),
                                                load_model(ctx.unit_dir / dep.complex_path))
    return ctx.artifacts.deployed
