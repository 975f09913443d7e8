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
from qcascade.quant import QuantPolicy
from qcascade.strict_yaml import check_fields, from_dict, load_yaml, to_dict
from qcascade.config_longterm import LongTermConfig
from qcascade.config_train import TrainConfig

_PATIENT_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}\Z")
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,63}\Z")  # \Z: a trailing newline is not a part name
MAX_N_TIMES = 16384  # 32 s at 512 Hz; the models are built for 1 s windows
MAX_N_CHANS = 1024
# Ictal training windows per window stride by default (data.train_ictal_stride_s; docs/generalisation.md, round 10).
ICTAL_WINDOWS_PER_STRIDE = 4
# Keys added after runs existed: left out of config_hash at their default so old runs still resume.
_HASH_OMIT_AT_DEFAULT = {("data", "nan_policy"): "raise", ("data", "bonn", "segments_per_set"): None,
                         ("data", "scaling_auto_spread"): 3.0, ("data", "carve_validation_below"): 3,
                         ("data", "long_term"): {"interictal_per_ictal": 4, "segment_s": 3600.0,
                                                 "smoothing": "auto", "split": "loso_hours",
                                                 "train_seizures": None}}


@dataclass(frozen=True)
class SyntheticConfig:
    """The embedded synthetic cohort (see :mod:`qcascade.data.synthetic`).

    Attributes:
        n_patients: patients ``ID1..IDn`` generated.
        n_seizures: seizures per patient (>= 2: one trains, one tests).
        seed: seed of the cohort (recordings, onset zones, artefacts).
    """

    n_patients: int = 3
    n_seizures: int = 5
    seed: int = 0

    def __post_init__(self):
        check_fields(self, "data.synthetic")
        if self.n_patients < 1:
            raise ConfigError("data.synthetic.n_patients: must be >= 1")
        if self.n_seizures < 2:
            raise ConfigError("data.synthetic.n_seizures: must be >= 2 (a training and a test seizure)")


@dataclass(frozen=True)
class BonnConfig:
    """The Bonn dataset (see :mod:`qcascade.data.bonn`): which sets, and the grouped folds.

    Attributes:
        sets: Bonn sets read (E ictal, C/D intracranial seizure-free, A/B scalp).
        n_folds: fold groups of the grouped cross-validation (stratified by set).
        seed: seed of the fold assignment.
        segments_per_set: keep the first N segments of each set (small test runs; None: all 100).
    """

    sets: tuple[str, ...] = ("C", "D", "E")
    n_folds: int = 10
    seed: int = 0
    segments_per_set: Optional[int] = None

    def __post_init__(self):
        check_fields(self, "data.bonn")
        if not self.sets or not set(self.sets) <= set("ABCDE") or len(set(self.sets)) < len(self.sets):
            raise ConfigError(f"data.bonn.sets: {list(self.sets)} must be distinct letters among A, B, C, D, E")
        if "E" not in self.sets or self.sets == ("E",):
            raise ConfigError("data.bonn.sets: needs E (ictal) and at least one seizure-free set")
        if not 2 <= self.n_folds <= 100:
            raise ConfigError("data.bonn.n_folds: must be in [2, 100]")
        if self.segments_per_set is not None and not self.n_folds <= self.segments_per_set <= 100:
            raise ConfigError(f"data.bonn.segments_per_set: must be in [n_folds={self.n_folds}, 100] "
                              "(every fold needs a segment of each set)")


@dataclass(frozen=True)
class DataConfig:
    """Which recordings, how they are cut into windows, and how they are split.

    Attributes:
        dataset: ``synthetic`` (embedded cohort), ``swec-short``, ``swec-long`` or ``bonn``.
        data_dir: root folder of the recordings (required unless ``synthetic``).
        patients: restrict the run to these patient ids (``--patient``); null = all.
        n_times: samples per window (a multiple of 32).
        n_chans: electrodes per window (recordings are padded with a mask).
        sfreq: sampling rate the models are built for (recordings are resampled to it).
        stride_s: window stride in seconds (validation, test, hardware real-time budget).
        train_nonictal_stride_s: stride of non-ictal training windows.
        train_ictal_stride_s: stride of ictal *training* windows (``stride_s`` and
            ``train_nonictal_stride_s`` must be multiples of it): below ``stride_s``, each training
            seizure gives more windows, cut at sub-window offsets (augmentation; validation and test
            stay on the ``stride_s`` grid; docs/generalisation.md, round 10). Default (null):
            ``stride_s / 4`` where that is a whole number of samples dividing both strides, else
            ``stride_s``; ``stride_s`` for ``swec-long``, whose training windows are sampled per hour.
        ictal_overlap: share of a window that must be ictal for an ictal label.
        split: ``loso`` (per patient, leave one seizure out) or ``lopo`` (pooled, leave one patient out).
        carve_validation_below: ``loso``: a patient with fewer seizures than this validates on time
            blocks carved from each training seizure's recording (its second half; the first half
            trains) instead of on a held-out seizure, so every seizure but the test one trains
            (``qcascade.folds``). At least 3: two-seizure patients always carve. 4 (three-seizure
            patients carve too) since round 7 of docs/generalisation.md.
        nan_policy: ``raise`` on NaN/Inf samples, or ``zero`` (zero-fill with a warning).
        input_scaling: ``train_stats`` (per-electrode median/IQR of the training windows, applied
            to every window) or ``causal_robust`` (per electrode, a running center and mean
            absolute deviation of the recording's own past windows; the generated top level
            computes it in hardware; docs/input_scaling.md), or ``auto``: per fold, ``causal_robust`` where
            its training and validation recordings' amplitude spread is at least ``scaling_auto_spread``
            and they are at least ``scaling_memory_windows`` windows long (``qcascade.data.amplitude``);
            ``train_stats`` where ``causal_robust`` cannot run (``swec-long``, ``n_times`` not a power
            of two). ``auto`` is the default.
        scaling_memory_windows: ``causal_robust``: windows the running statistics average over
            (moving-average weight 1/this; a power of two, 1..4096).
        scaling_auto_spread: ``auto``: the amplitude spread (largest over smallest recording) from
            which ``causal_robust`` is chosen; x3.0 lies between where it lost and won (docs/input_scaling.md).
        long_term: ``swec-long`` only: see :class:`LongTermConfig`.
    """

    dataset: Literal["synthetic", "swec-short", "swec-long", "bonn"] = "synthetic"
    data_dir: Optional[str] = None
    patients: Optional[tuple[str, ...]] = None
    n_times: int = 512
    n_chans: Optional[int] = None  # None: 1 for bonn (one electrode per segment), else 128
    sfreq: float = 512.0
    stride_s: float = 1.0
    train_nonictal_stride_s: float = 1.0
    train_ictal_stride_s: Optional[float] = None  # None: stride_s / 4 (stride_s for swec-long)
    ictal_overlap: float = 0.5
    split: Literal["loso", "lopo"] = "loso"
    carve_validation_below: int = 4
    nan_policy: Literal["raise", "zero"] = "raise"
    input_scaling: Literal["train_stats", "causal_robust", "auto"] = "auto"
    scaling_memory_windows: int = 64
    scaling_auto_spread: float = 3.0
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    bonn: BonnConfig = field(default_factory=BonnConfig)
    long_term: LongTermConfig = field(default_factory=LongTermConfig)

    def _default_ictal_stride(self) -> float:
        stride, nonictal = (round(getattr(self, k) * self.sfreq) for k in ("stride_s", "train_nonictal_stride_s"))
        fine = stride // ICTAL_WINDOWS_PER_STRIDE
        if self.dataset == "swec-long" or fine < 1 or stride % fine or nonictal % fine:
            return self.stride_s
        return fine / self.sfreq

    def __post_init__(self):
        check_fields(self, "data")
        if self.dataset != "synthetic" and not self.data_dir:
            raise ConfigError(f"data.data_dir: required for dataset '{self.dataset}'")
        if self.n_chans is None:
            # Bonn segments have one electrode: padding them to 128 would take 1.8 GB of zeros.
            object.__setattr__(self, "n_chans", 1 if self.dataset == "bonn" else 128)
        if not 32 <= self.n_times <= MAX_N_TIMES or self.n_times % 32:
            raise ConfigError(f"data.n_times: {self.n_times} must be a multiple of 32 in [32, {MAX_N_TIMES}] "
                              "(the complex model pools by 32)")
        if not 1 <= self.n_chans <= MAX_N_CHANS:
            raise ConfigError(f"data.n_chans: {self.n_chans} must be in [1, {MAX_N_CHANS}]")
        if self.sfreq != 512.0:
            raise ConfigError("data.sfreq: models are built for 512 Hz; recordings are resampled to it")
        for key in ("stride_s", "train_nonictal_stride_s"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"data.{key}: must be > 0")
        if self.train_ictal_stride_s is None:
            object.__setattr__(self, "train_ictal_stride_s", self._default_ictal_stride())
        if not self.train_ictal_stride_s > 0:
            raise ConfigError("data.train_ictal_stride_s: must be > 0")
        # In whole samples, as the window builder cuts them (qcascade.steps_data).
        fine = round(self.train_ictal_stride_s * self.sfreq)
        if round(self.train_nonictal_stride_s * self.sfreq) % round(self.stride_s * self.sfreq):
            raise ConfigError(f"data.train_nonictal_stride_s: {self.train_nonictal_stride_s} s must be a multiple "
                              f"of data.stride_s ({self.stride_s} s) in samples at {self.sfreq:g} Hz")
        for key in ("stride_s", "train_nonictal_stride_s"):
            if fine < 1 or round(getattr(self, key) * self.sfreq) % fine:
                raise ConfigError(f"data.train_ictal_stride_s: {self.train_ictal_stride_s} s ({fine} samples at "
                                  f"{self.sfreq:g} Hz) must divide data.{key} ({getattr(self, key)} s)")
        if self.dataset == "swec-long" and self.train_ictal_stride_s != self.stride_s:
            raise ConfigError("data.train_ictal_stride_s: not supported with dataset swec-long yet "
                              "(its training windows are sampled per hour); set it to data.stride_s")
        if not 0.0 < self.ictal_overlap <= 1.0:
            raise ConfigError("data.ictal_overlap: must be in (0, 1]")
        m = self.scaling_memory_windows
        if not isinstance(m, int) or isinstance(m, bool) or not 1 <= m <= 4096 or m & (m - 1):
            raise ConfigError(f"data.scaling_memory_windows: {m!r} must be a power of two in [1, 4096]")
        if isinstance(self.carve_validation_below, bool) or not isinstance(self.carve_validation_below, int) \
                or self.carve_validation_below < 3:
            raise ConfigError(f"data.carve_validation_below: {self.carve_validation_below!r} must be an integer >= 3 "
                              "(two-seizure patients always carve)")
        if not self.scaling_auto_spread >= 1.0:
            raise ConfigError(f"data.scaling_auto_spread: {self.scaling_auto_spread!r} must be >= 1")
        causal = self.input_scaling == "causal_robust"  # auto falls back to train_stats where these fail
        if causal and self.n_times & (self.n_times - 1):
            raise ConfigError(f"data.n_times: {self.n_times} must be a power of two with "
                              f"data.input_scaling: {self.input_scaling} (the window mean is a shift)")
        if causal and self.dataset == "swec-long":
            raise ConfigError(f"data.input_scaling: {self.input_scaling} is not supported with dataset swec-long yet "
                              "(long-term windows stream without the causal scaler); use train_stats")
        for pid in self.patients or ():
            if not _PATIENT_ID.match(pid):
                raise ConfigError(f"data.patients: {pid!r} is not a valid patient id")


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
            electrodes) or ``shared`` (one temporal filter bank for every electrode, then max and
            mean over electrodes: no electrode-specific weights; docs/generalisation.md).
        complex_shared_filters: filters of the shared bank (``complex_block1: shared``).
        simple_a_filters: candidate A's conv widths are F, 2F, 4F; MACs grow with F^2 (8: 72 k).
    """

    simple_model: Literal["A", "B", "C", "auto"] = "A"
    train_candidates: bool = True
    candidate_folds: Literal["deployed", "all"] = "deployed"
    simple_auto_margin: float = 0.02
    selector_init: Literal["separability", "uniform"] = "separability"
    selector_init_scale: float = 3.0
    exclude_bad_electrodes: bool = True
    complex_block1: Literal["shared", "mixed"] = "mixed"
    complex_shared_filters: int = 8
    simple_a_filters: int = 8

    def __post_init__(self):
        check_fields(self, "model")
        if not 0.0 <= self.selector_init_scale <= 10.0:
            raise ConfigError("model.selector_init_scale: must be in [0, 10]")
        if not 0.0 <= self.simple_auto_margin < 1.0:
            raise ConfigError("model.simple_auto_margin: must be in [0, 1)")
        if self.simple_model == "auto" and not self.train_candidates:
            raise ConfigError("model.simple_model: auto needs model.train_candidates: true (it chooses among them)")
        for key, lo, hi in (("complex_shared_filters", 1, 64), ("simple_a_filters", 2, 64)):
            if not lo <= getattr(self, key) <= hi:
                raise ConfigError(f"model.{key}: must be in [{lo}, {hi}]")

    def model_options(self, name: str) -> dict:
        """Builder keywords of registered model ``name`` beyond its input shape."""
        if name == "complex":
            return {"block1": self.complex_block1, "shared_filters": self.complex_shared_filters}
        return {"filters": self.simple_a_filters} if name == "simple_A" else {}


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
