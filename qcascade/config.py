"""The run configuration: one strict, typed tree of dataclasses, loaded from YAML.

Every section has readable defaults, so ``python train_qkeras.py`` with no config runs the full flow
on the embedded synthetic cohort. Sections owned by other modules (``quant``, ``train``) are their
own dataclasses, embedded here so a single YAML file configures a run. Unknown keys, wrong types and
invalid values are :class:`~qcascade.errors.ConfigError` naming the key, raised before any work.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import yaml

from qcascade.errors import ConfigError
from qcascade.hls.targets import load_target, resolve_part
from qcascade.prior import EPOCHS as PRIOR_EPOCHS, MAX_EPOCHS as PRIOR_MAX_EPOCHS, MAX_WINDOWS as PRIOR_MAX_WINDOWS
from qcascade.prior import MIN_WINDOWS as PRIOR_MIN_WINDOWS, OTHER_PATIENTS, OTHER_PATIENTS_DATASETS
from qcascade.quant import QuantPolicy
from qcascade.strict_yaml import check_fields, from_dict, load_yaml, to_dict
from qcascade.config_data import DataConfig
from qcascade.config_train import TrainConfig

COMPLEX_ELECTRODES = 16  # the default of model.complex_electrodes (docs/generalisation.md, round 35)
SIMPLE_A_FIRST_STRIDES = (1, 2, 4, 8)  # the divisors of candidate A's first-block decimation (models/simple.py)
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,63}\Z")  # \Z: a trailing newline is not a part name
# Keys added after runs existed: left out of config_hash at their default so old runs still resume.
_HASH_OMIT_AT_DEFAULT = {("data", "nan_policy"): "raise", ("data", "bonn", "segments_per_set"): None,
                         ("data", "scaling_auto_spread"): 3.0, ("data", "carve_validation_below"): 3,
                         ("data", "scaling_auto_one_recording"): "train_stats",
                         ("data", "long_term"): {"interictal_per_ictal": 4, "segment_s": 3600.0,
                                                 "smoothing": "auto", "split": "loso_hours",
                                                 "train_seizures": None},
                         ("model", "complex_prior_epochs"): PRIOR_EPOCHS,
                         ("model", "complex_prior_max_windows"): PRIOR_MAX_WINDOWS,
                         ("model", "complex_electrodes"): 0, ("model", "simple_a_first_stride"): 2,
                         ("train", "gate_sentinel_interictal_only"): False, ("train", "gate_hold_max"): 0,
                         ("model", "electrode_choice_min_seizures"): 1,
                         ("train", "gate_sentinel_watch"): "all", ("train", "gate_fuse"): 0.0,
                         ("train", "tau_routing_budget"): 0.0, ("train", "tau_routing_budget_max_f1_loss"): 0.1,
                         ("train", "tau_routing_budget_fallback"): "off", ("train", "gate_weak_simple_gap"): 0.0,
                         ("train", "gate_weak_simple_max_f1"): 0.5, ("train", "gate_ictal_every"): 1,
                         ("train", "gate_ictal_after"): "ceiling"}


@dataclass(frozen=True)
class ModelConfig:
    """Which simple candidate the cascade deploys (all three are trained as baselines), and how the
    ChannelSelector's per-electrode logits start.

    ``selector_init="separability"`` warm-starts each electrode's logit at
    ``selector_init_scale * max(0, 2 * (AUC - 0.5))`` of its line length (a rise only), the worst
    case over the *training* recordings (``selector_prior.electrode_separability``; under
    ``causal_robust``, of the raw signal): from a uniform start, with few training steps, the
    selector can lock onto an arbitrary electrode once the temperature is annealed. The logits are then learned as usual. ``"uniform"`` starts every electrode at 0.

    Attributes:
        simple_model: the deployed simple candidate: ``A`` 1D CNN, ``B`` band energies, ``C`` statistics;
            ``auto``: the cheapest candidate (MACs) whose validation F1, trained alone on the selected
            electrode, is within ``simple_auto_margin`` of the best candidate's is deployed
            (``qcascade.steps_choose``); the cascade's stages then train with ``A``.
        train_candidates: also train all three candidates alone as baselines (required by ``auto``).
        candidate_folds: where the candidates are trained alone: ``deployed`` (fold 0 only, the
            fold whose models are deployed) or ``all`` (every fold, so their test windows pool
            like the other models' and the choice rests on every fold's validation). With
            ``simple_model: auto`` every fold trains them (each fold chooses on its own validation).
        simple_auto_margin: the validation-F1 margin of ``simple_model: auto``.
        selector_init: ``separability`` or ``uniform`` start of the electrode logits.
        selector_init_scale: scale of the separability warm start.
        exclude_bad_electrodes: never deploy an electrode with mains interference or broadband
            noise (robust z > 5 against the patient's other electrodes,
            :mod:`qcascade.electrode_quality`); the complex model still reads it.
        complex_block1: first block of the complex model: ``mixed`` (one conv mixing all
            electrodes), ``shared`` (one temporal filter bank for every electrode, then max and
            mean over electrodes: no electrode-specific weights; docs/generalisation.md) or
            ``hybrid`` (both side by side, joined by a 3-tap conv).
        complex_shared_filters: filters of the shared bank (``complex_block1: shared`` or ``hybrid``).
        complex_electrodes: the complex model reads only the k live electrodes whose line length
            best separates ictal from interictal training windows (one-sided ROC AUC over all
            training windows, so every training seizure's zone counts;
            :mod:`qcascade.complex_electrodes`); the first conv's kernel rows of the other electrodes
            stay zero. 0: every electrode. Applies to ``complex_block1: mixed``; the shared and
            hybrid blocks read every electrode alike, and with them only 0 or the default is
            accepted (docs/generalisation.md, round 35).
        simple_a_filters: candidate A's conv widths are F, 2F, 4F; MACs grow with F^2 (8: 72 k).
        simple_a_first_stride: the stride of candidate A's first conv (1, 2, 4 or 8); the pooling
            after it decimates by the rest of 8, so later layers see the same 64 steps. 2: 72 kMACs
            at 8 filters, 8: 49 k (docs/generalisation.md, round 53).
        electrode_choice: ``selector``: deploy the electrode the ChannelSelector weights most;
            ``earliest_of_top``: the selector's electrode, unless its line length rises after the
            onsets of the training seizures (median latency, :mod:`qcascade.onset_latency`) and
            another of its ``electrode_choice_top_k`` highest-weighted electrodes rises at least
            ``electrode_choice_margin_s`` earlier: then the earliest of those
            (docs/generalisation.md, rounds 21-23; the default since round 23).
        electrode_choice_top_k: how many of the selector's electrodes ``earliest_of_top`` considers.
        electrode_choice_margin_s: how much earlier (seconds) ``earliest_of_top`` needs.
        electrode_choice_min_weight: in [0, 1]; ``earliest_of_top`` moves only to an electrode the
            selector weights at least this times its own electrode (0: any of the top k; measured
            and left off in round 49, docs/generalisation.md).
        electrode_choice_min_seizures: ``earliest_of_top`` leaves the selector's electrode only where the
            latencies come from at least this many training seizures (1: any; docs/generalisation.md,
            round 58).
        complex_prior: a folder written by ``python -m qcascade.prior_train`` (a complex model trained
            across other patients), ``other_patients``, or null. Stage 2 starts the complex model from it
            (weights and integer bits) instead of from random weights; the run must use its input shape,
            architecture and bit widths (:func:`qcascade.prior.check_prior`; any
            ``data.input_scaling``: the prior itself is trained on ``causal_robust`` inputs).
            ``other_patients``: the run trains each patient's prior itself, on every other patient of
            ``data.data_dir`` (``synthetic`` or ``swec-short``, ``complex_block1: shared``), into
            ``<run>/priors/<patient>/`` (:mod:`qcascade.prior_other`).
        complex_prior_epochs: epochs of each prior ``other_patients`` trains.
        complex_prior_max_windows: at most this many windows per prior ``other_patients`` trains
            (drawn at random, the class ratio kept); the training's peak memory grows with them (about
            6.8 GB for 20,000 windows of 512 x 128, docs/generalisation.md, round 25).
        complex_prior_frozen: layers of the complex model that keep the prior's trained weights in
            stages 2-3 (with ``complex_prior``; BatchNorm statistics are still refreshed on the
            patient's windows). The default, the first block (the shared filter bank and the conv
            that mixes its pooled outputs), is what the prior learned from other patients'
            seizures and what fine-tuning on two or three seizures forgets (docs/generalisation.md,
            round 25); ``[]`` fine-tunes every layer.
        simple_prior: ``other_patients``: once its electrode is chosen, the simple model is trained
            further on its training windows pooled with single-electrode windows of every other
            patient of ``data.data_dir``, then kept frozen in stage 3 (``synthetic`` or
            ``swec-short``, not pooled; :mod:`qcascade.simple_pool`; docs/generalisation.md,
            round 43). ``choose``: per fold, the cascade's own simple model (trained as with ``none``)
            or a copy of stage 1's refit on that pool, whichever the gate calibrated for it routes
            less with on validation (:mod:`qcascade.simple_choice`; round 44). ``none``: the
            patient's own windows only.
        simple_prior_own_share: with ``simple_prior`` ``other_patients`` or ``choose``, the share of each class's
            training weight the patient's own windows carry in that refit, the pool the rest (the
            pool is about 95 % of the windows, and alone it sets the patient's background; round 44).
            ``null``: every window weighs alike.
    """

    simple_model: Literal["A", "B", "C", "auto"] = "A"
    train_candidates: bool = True
    candidate_folds: Literal["deployed", "all"] = "deployed"
    simple_auto_margin: float = 0.02
    selector_init: Literal["separability", "uniform"] = "separability"
    selector_init_scale: float = 3.0
    exclude_bad_electrodes: bool = True
    complex_block1: Literal["shared", "mixed", "hybrid"] = "mixed"
    complex_shared_filters: int = 8
    complex_electrodes: int = COMPLEX_ELECTRODES
    simple_a_filters: int = 8
    simple_a_first_stride: int = 2
    electrode_choice: Literal["selector", "earliest_of_top"] = "earliest_of_top"
    electrode_choice_top_k: int = 5
    electrode_choice_margin_s: float = 2.0
    electrode_choice_min_weight: float = 0.0
    electrode_choice_min_seizures: int = 1
    complex_prior: Optional[str] = None
    complex_prior_frozen: tuple[str, ...] = ("block1_conv", "block1_bn", "block1_mix_conv", "block1_mix_bn")
    complex_prior_epochs: int = PRIOR_EPOCHS
    complex_prior_max_windows: int = PRIOR_MAX_WINDOWS
    simple_prior: Literal["none", "other_patients", "choose"] = "none"
    simple_prior_own_share: Optional[float] = None

    def __post_init__(self):
        check_fields(self, "model")
        if not 0.0 <= self.selector_init_scale <= 10.0:
            raise ConfigError("model.selector_init_scale: must be in [0, 10]")
        if not 0.0 <= self.simple_auto_margin < 1.0:
            raise ConfigError("model.simple_auto_margin: must be in [0, 1)")
        if not 1 <= self.complex_prior_epochs <= PRIOR_MAX_EPOCHS:
            raise ConfigError(f"model.complex_prior_epochs: must be in [1, {PRIOR_MAX_EPOCHS}], got {self.complex_prior_epochs}")
        if self.complex_prior_max_windows < PRIOR_MIN_WINDOWS:
            raise ConfigError(f"model.complex_prior_max_windows: must be at least {PRIOR_MIN_WINDOWS}, "
                              f"got {self.complex_prior_max_windows}")
        for key, default in (("complex_prior_epochs", PRIOR_EPOCHS), ("complex_prior_max_windows", PRIOR_MAX_WINDOWS)):
            if getattr(self, key) != default and self.complex_prior != OTHER_PATIENTS:
                raise ConfigError(f"model.{key}: applies to the priors of model.complex_prior: other_patients only "
                                  f"(complex_prior is {self.complex_prior!r})")
        if not 0 <= self.complex_electrodes <= 1024:
            raise ConfigError(f"model.complex_electrodes: must be in [0, 1024] (0: every electrode), got {self.complex_electrodes}")
        if self.complex_electrodes not in (0, COMPLEX_ELECTRODES) and self.complex_block1 != "mixed":
            raise ConfigError(f"model.complex_electrodes: applies to model.complex_block1: mixed only, got "
                              f"{self.complex_block1!r} (the shared bank has no electrode-specific weights to zero; "
                              "it reads every electrode)")
        if self.simple_model == "auto" and self.simple_prior != "none":
            raise ConfigError("model.simple_prior: applies to the simple model the cascade's stages train; "
                              "simple_model: auto may deploy a candidate trained alone on the patient (name A, B or C)")
        if self.simple_prior_own_share is not None:
            if self.simple_prior == "none":
                raise ConfigError("model.simple_prior_own_share: applies to model.simple_prior: other_patients or choose only")
            if not 0.0 < self.simple_prior_own_share < 1.0:
                raise ConfigError(f"model.simple_prior_own_share: must be in (0, 1), got {self.simple_prior_own_share}")
        if self.simple_model == "auto" and not self.train_candidates:
            raise ConfigError("model.simple_model: auto needs model.train_candidates: true (it chooses among them)")
        for key, lo, hi in (("complex_shared_filters", 1, 64), ("simple_a_filters", 2, 64),
                            ("electrode_choice_top_k", 1, 128), ("electrode_choice_margin_s", 0.0, 30.0),
                            ("electrode_choice_min_weight", 0.0, 1.0), ("electrode_choice_min_seizures", 1, 64)):
            if not lo <= getattr(self, key) <= hi:
                raise ConfigError(f"model.{key}: must be in [{lo}, {hi}]")
        if self.simple_a_first_stride not in SIMPLE_A_FIRST_STRIDES:
            raise ConfigError(f"model.simple_a_first_stride: must be one of {list(SIMPLE_A_FIRST_STRIDES)}, "
                              f"got {self.simple_a_first_stride}")

    def complex_electrode_count(self) -> int:
        """How many electrodes the complex model reads (0: every electrode; the shared and hybrid
        first blocks always read every electrode)."""
        return self.complex_electrodes if self.complex_block1 == "mixed" else 0

    def model_options(self, name: str) -> dict:
        """Builder keywords of registered model ``name`` beyond its input shape."""
        if name == "complex":
            return {"block1": self.complex_block1, "shared_filters": self.complex_shared_filters}
        if name == "simple_A":
            return {"filters": self.simple_a_filters, "first_stride": self.simple_a_first_stride}
        return {}


@dataclass(frozen=True)
class HLSConfig:
    """hls4ml conversion and C simulation.

    ``target`` names an FPGA profile in ``hls_configs/targets/`` (part, capacities, clock; see
    :mod:`qcascade.hls.targets`); ``part`` may repeat the target's part but not contradict it.
    ``clock_period_ns`` overrides the target's clock. ReuseFactor and Strategy are chosen per layer
    from the real-time budget (window stride / ``realtime_safety``) and the target's DSP/BRAM
    (:mod:`qcascade.hls.sizing`) unless ``reuse_factor``/``strategy`` (or the templates
    ``hls_configs/<submodel>.yaml``) fix them. ``strict`` (``--strict``) refuses a design that does not
    fit its target (resources, 4096 parallel products per layer, real time).

    Attributes:
        enabled: run ``step_convert`` and ``step_csim``.
        target: FPGA profile name in ``hls_configs/targets/`` (``xc7z020``, ``xczu3eg``, ``u250``).
        part: FPGA part (must be the target's part).
        clock_period_ns: clock period overriding the target's.
        io_type: hls4ml I/O type (``io_stream`` only).
        reuse_factor: one ReuseFactor for every layer instead of the sized per-layer values.
        strategy: one Strategy for every layer instead of the sized per-layer values.
        csim_windows: test windows C-simulated per run.
        realtime_safety: the worst-case cascade latency must fit ``stride_s / realtime_safety``.
        strict: refuse a design that does not fit its target (``--strict``).
    """

    enabled: bool = True
    target: str = "xc7z020"
    part: Optional[str] = None
    clock_period_ns: Optional[float] = None
    io_type: Literal["io_stream"] = "io_stream"
    reuse_factor: Optional[int] = None
    strategy: Optional[Literal["Latency", "Resource"]] = None
    csim_windows: int = 128  # C simulation is per window: the largest cost of step_csim
    realtime_safety: float = 100.0
    strict: bool = False

    def __post_init__(self):
        check_fields(self, "hls")
        if self.part is not None and not _PART.match(self.part):
            raise ConfigError(f"hls.part: {self.part!r} is not an FPGA part name")
        resolve_part(load_target(self.target), self.part)
        if not (math.isfinite(self.realtime_safety) and self.realtime_safety >= 1):
            raise ConfigError("hls.realtime_safety: must be a number >= 1")
        if self.clock_period_ns is not None and not (math.isfinite(self.clock_period_ns) and self.clock_period_ns > 0):
            raise ConfigError("hls.clock_period_ns: must be a positive number")
        if self.reuse_factor is not None and self.reuse_factor < 1:
            raise ConfigError("hls.reuse_factor: must be >= 1")
        if self.csim_windows < 10:
            raise ConfigError("hls.csim_windows: must be >= 10")


@dataclass(frozen=True)
class RunConfig:
    """The whole run. Seeds: ``train.seed`` (initialisation, shuffling) and
    ``data.synthetic.seed`` (the synthetic cohort).

    Attributes:
        pooled: one cross-patient cascade over all patients (``--pooled``) instead of one per patient.
    """

    pooled: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    quant: QuantPolicy = field(default_factory=QuantPolicy)
    train: TrainConfig = field(default_factory=TrainConfig)
    hls: HLSConfig = field(default_factory=HLSConfig)

    def __post_init__(self):
        check_fields(self, "")
        if self.data.split == "lopo" and not self.pooled:
            raise ConfigError("data.split: 'lopo' (leave-one-patient-out) needs pooled: true; "
                              "patient-specific cascades are split leave-one-seizure-out")
        if self.model.simple_prior != "none" and (self.pooled or self.data.dataset not in OTHER_PATIENTS_DATASETS):
            raise ConfigError(f"model.simple_prior: {self.model.simple_prior} pools each patient's simple model with the other "
                              f"patients of data.data_dir: needs data.dataset in {list(OTHER_PATIENTS_DATASETS)} and a "
                              f"run per patient, got {self.data.dataset!r}" + (" pooled" if self.pooled else ""))


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """Load a run config from YAML (or defaults), then apply nested ``overrides``.

    Args:
        path: YAML file, or None for all defaults.
        overrides: nested mapping merged over the file (e.g. from command-line flags).

    Raises:
        ConfigError: unknown key, wrong type or invalid value, naming the key (and the file).
    """
    data = load_yaml(path) if path is not None else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    merged = _merge(data, overrides or {})
    try:
        return from_dict(RunConfig, merged)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config_to_yaml(cfg: RunConfig) -> str:
    """The resolved config as YAML (what a run saves next to its results)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def config_hash(cfg: RunConfig) -> str:
    """Short stable hash of the resolved config (stamped into generated C++).

    ``hls.strict`` is left out: it only decides whether a non-fitting design is an error, so a run
    can be resumed or re-reported with or without ``--strict``.
    """
    tree = to_dict(cfg)
    tree["hls"] = {k: v for k, v in tree["hls"].items() if k != "strict"}
    for *parents, key in _HASH_OMIT_AT_DEFAULT:
        node = tree
        for name in parents:
            node = node.get(name, {})
        if key in node and node[key] == _HASH_OMIT_AT_DEFAULT[(*parents, key)]:
            del node[key]
    blob = json.dumps(tree, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def replace(cfg, **changes):
    """``dataclasses.replace`` that re-runs validation."""
    return dataclasses.replace(cfg, **changes)
