"""The ``data.long_term`` section of the run configuration (``swec-long`` recordings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from qcascade.errors import ConfigError


@dataclass(frozen=True)
class LongTermConfig:
    """Long-term recordings (``swec-long``): sampling, splits, post-processing (docs/long_term.md).

    Attributes:
        interictal_per_ictal: interictal training windows drawn (seeded by ``train.seed``) per
            ictal training window; validation and test always use every window of their hours.
        split: ``loso_hours`` (one fold per seizure; every hour tested once) or ``time_ordered``
            (train on the first seizures, test every later hour).
        train_seizures: ``time_ordered``: seizures before the test part (null: all but the last third).
        segment_s: seconds per hour file (3600 in SWEC; smaller in tests).
        smoothing: ``auto`` chooses k-of-n smoothing of the cascade's decisions on validation
            (host-side post-processing), ``off`` keeps the raw decisions.
        max_train_windows: cap on the training windows held in memory (ictal + sampled interictal,
            drawn seeded by ``train.seed`` when more exist); bounds a run's memory whatever the
            number of training seizures (docs/long_term.md). The validation monitor has the same cap.
        cache_dir: folder of the on-disk signal cache (null: ``<run>/<patient>/window_cache``). A
            folder outside the run survives ``--force`` and is shared by runs on the same
            ``data.data_dir`` (another data folder is refused).
    """

    interictal_per_ictal: int = 4
    split: Literal["loso_hours", "time_ordered"] = "loso_hours"
    train_seizures: Optional[int] = None
    segment_s: float = 3600.0
    smoothing: Literal["auto", "off"] = "auto"
    max_train_windows: int = 2000
    cache_dir: Optional[str] = None

    def __post_init__(self):
        if not 1 <= self.interictal_per_ictal <= 10000:
            raise ConfigError("data.long_term.interictal_per_ictal: must be in [1, 10000]")
        if self.train_seizures is not None and self.train_seizures < 2:
            raise ConfigError("data.long_term.train_seizures: must be >= 2 (train and validation seizures)")
        if not self.segment_s > 0:
            raise ConfigError("data.long_term.segment_s: must be > 0")
        if not 100 <= self.max_train_windows <= 1_000_000:
            raise ConfigError("data.long_term.max_train_windows: must be in [100, 1000000]")
