"""The ``data:`` section of the run config: the dataset, windows, splits and input scaling."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Optional

from qcascade.config_longterm import LongTermConfig
from qcascade.errors import ConfigError
from qcascade.strict_yaml import check_fields

_PATIENT_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}\Z")
MAX_N_TIMES = 16384  # 32 s at 512 Hz; the models are built for 1 s windows
MAX_N_CHANS = 1024
# Ictal training windows per window stride by default (data.train_ictal_stride_s; docs/generalisation.md, round 10).
ICTAL_WINDOWS_PER_STRIDE = 4


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
            seizure gives more windows, cut at sub-window offsets, to every training stage
            (augmentation; validation and test stay on the ``stride_s`` grid;
            docs/generalisation.md, rounds 10-11). Default (null):
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
            which ``causal_robust`` is chosen; two or three training recordings understate a
            patient's drift, so x1.5 (docs/input_scaling.md, rounds 45-46).
        scaling_auto_one_recording: ``auto``, where fewer than two of the fold's training and
            validation recordings have non-ictal windows (a two-seizure patient trains on one): no
            spread can be measured, and recordings at least ``scaling_memory_windows`` windows long
            get this scaling: ``causal_robust`` (the default since rule 11, round 62) or ``train_stats``
            (docs/input_scaling.md).
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
    scaling_auto_spread: float = 1.5
    scaling_auto_one_recording: Literal["train_stats", "causal_robust"] = "causal_robust"
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
