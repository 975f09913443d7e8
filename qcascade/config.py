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
from qcascade.quant import QuantPolicy
from qcascade.strict_yaml import from_dict, load_yaml, to_dict
from qcascade.training import TrainConfig

_PATIENT_ID = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class SyntheticConfig:
    """The embedded synthetic cohort (see :mod:`qcascade.data.synthetic`)."""

    n_patients: int = 3
    n_seizures: int = 5
    seed: int = 0

    def __post_init__(self):
        if self.n_patients < 1:
            raise ConfigError("data.synthetic.n_patients: must be >= 1")
        if self.n_seizures < 2:
            raise ConfigError("data.synthetic.n_seizures: must be >= 2 (a training and a test seizure)")


@dataclass(frozen=True)
class DataConfig:
    """Which recordings, how they are cut into windows, and how they are split."""

    dataset: Literal["synthetic", "swec-short", "swec-long"] = "synthetic"
    data_dir: Optional[str] = None
    patients: Optional[tuple[str, ...]] = None
    n_times: int = 512
    n_chans: int = 128
    sfreq: float = 512.0
    stride_s: float = 1.0
    train_nonictal_stride_s: float = 1.0
    ictal_overlap: float = 0.5
    split: Literal["loso", "lopo"] = "loso"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    def __post_init__(self):
        if self.dataset != "synthetic" and not self.data_dir:
            raise ConfigError(f"data.data_dir: required for dataset '{self.dataset}'")
        if self.n_times < 16 or self.n_chans < 1:
            raise ConfigError("data.n_times / data.n_chans: must be positive (n_times >= 16)")
        if self.sfreq != 512.0:
            raise ConfigError("data.sfreq: models are built for 512 Hz; recordings are resampled to it")
        for key in ("stride_s", "train_nonictal_stride_s"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"data.{key}: must be > 0")
        if not 0.0 < self.ictal_overlap <= 1.0:
            raise ConfigError("data.ictal_overlap: must be in (0, 1]")
        for pid in self.patients or ():
            if not _PATIENT_ID.match(pid):
                raise ConfigError(f"data.patients: {pid!r} is not a valid patient id")


@dataclass(frozen=True)
class ModelConfig:
    """Which simple candidate the cascade deploys (all three are trained as baselines), and how the
    ChannelSelector's per-electrode logits start.

    ``selector_init="separability"`` warm-starts each electrode's logit at
    ``selector_init_scale * 2 * |AUC - 0.5|`` of its line length on the *training* windows (the
    separability of the data analysis): from a uniform start, with few training steps, the
    selector can lock onto an arbitrary electrode once the temperature is annealed. The logits are
    then learned as usual. ``"uniform"`` starts every electrode at 0.
    """

    simple_model: Literal["A", "B", "C"] = "A"
    train_candidates: bool = True
    selector_init: Literal["separability", "uniform"] = "separability"
    selector_init_scale: float = 0.25

    def __post_init__(self):
        if not 0.0 <= self.selector_init_scale <= 10.0:
            raise ConfigError("model.selector_init_scale: must be in [0, 10]")


@dataclass(frozen=True)
class HLSConfig:
    """hls4ml conversion and C simulation.

    FPGA part, clock, ReuseFactor and Strategy live in the editable templates
    ``hls_configs/<submodel>.yaml``; a value set here overrides the template for this run.
    """

    enabled: bool = True
    part: Optional[str] = None
    clock_period_ns: Optional[float] = None
    io_type: Literal["io_stream"] = "io_stream"
    reuse_factor: Optional[int] = None
    strategy: Optional[Literal["Latency", "Resource"]] = None
    csim_windows: int = 128  # C simulation is per window: the largest cost of step_csim

    def __post_init__(self):
        if self.part is not None and not re.match(r"^[A-Za-z0-9\-]+$", self.part):
            raise ConfigError(f"hls.part: {self.part!r} is not an FPGA part name")
        if self.clock_period_ns is not None and not (math.isfinite(self.clock_period_ns) and self.clock_period_ns > 0):
            raise ConfigError("hls.clock_period_ns: must be a positive number")
        if self.reuse_factor is not None and self.reuse_factor < 1:
            raise ConfigError("hls.reuse_factor: must be >= 1")
        if self.csim_windows < 10:
            raise ConfigError("hls.csim_windows: must be >= 10")


@dataclass(frozen=True)
class RunConfig:
    """The whole run. Seeds: ``train.seed`` (initialisation, shuffling) and
    ``data.synthetic.seed`` (the synthetic cohort)."""

    pooled: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    quant: QuantPolicy = field(default_factory=QuantPolicy)
    train: TrainConfig = field(default_factory=TrainConfig)
    hls: HLSConfig = field(default_factory=HLSConfig)

    def __post_init__(self):
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
    """Short stable hash of the resolved config (stamped into generated C++)."""
    blob = json.dumps(to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def replace(cfg, **changes):
    """``dataclasses.replace`` that re-runs validation."""
    return dataclasses.replace(cfg, **changes)
