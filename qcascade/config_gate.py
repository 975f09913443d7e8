"""Validation of the ``train.gate_*`` keys (:class:`qcascade.config_train.TrainConfig`): every key of the
deployed gate that the C++ top level holds in a fixed-width counter or constant is checked against it."""

from __future__ import annotations

from qcascade.errors import ConfigError
from qcascade.gate import MAX_HOLD, MAX_PROBE, check_ictal_every
from qcascade.gate_fixed import MAX_FUSE_SHIFT, fuse_shift
from qcascade.sentinel import MAX_PERSIST, SentinelSpec


def check_gate_keys(self) -> None:
    """ConfigError naming the key when a ``train.gate_*`` value is out of range (``self``: the TrainConfig)."""
    if not (self.gate_probe_every == 0 or 1 <= self.gate_probe_every <= MAX_PROBE):
        raise ConfigError(f"train.gate_probe_every: must be 0 (off) or in [1, {MAX_PROBE}], "
                          f"got {self.gate_probe_every}")
    if not 0.0 <= self.gate_recheck_tau < 1.0:
        raise ConfigError(f"train.gate_recheck_tau: must be 0 (off) or in (0, 1), got {self.gate_recheck_tau}")
    if self.gate_recheck_tau and not self.gate_probe_every:
        raise ConfigError("train.gate_recheck_tau: the recheck makes the next window a probe, so it needs "
                          "train.gate_probe_every > 0; set gate_recheck_tau: 0 to turn it off too")
    if self.gate_sentinel_ratio and not 1.0 < self.gate_sentinel_ratio <= 64.0:
        raise ConfigError(f"train.gate_sentinel_ratio: must be 0 (off) or in (1, 64], got {self.gate_sentinel_ratio}")
    if not 1 <= self.gate_sentinel_electrodes <= 1024:
        raise ConfigError(f"train.gate_sentinel_electrodes: must be in [1, 1024], got {self.gate_sentinel_electrodes}")
    m = self.gate_sentinel_memory
    if not (1 <= m <= 2 ** 15 and m & (m - 1) == 0):
        raise ConfigError(f"train.gate_sentinel_memory: must be a power of 2 in [1, 32768] (the hardware "
                          f"averages with a shift), got {m}")
    if not 0 <= self.gate_hold <= MAX_HOLD:
        raise ConfigError(f"train.gate_hold: must be 0 (off) or in [1, {MAX_HOLD}], got {self.gate_hold}")
    if not 0 <= self.gate_hold_max <= MAX_HOLD:
        raise ConfigError(f"train.gate_hold_max: must be in [0, {MAX_HOLD}] (at most train.gate_hold: the fixed "
                          f"hold), got {self.gate_hold_max}")
    try:
        check_ictal_every(self.gate_ictal_every, self.gate_hold, self.gate_hold_max)
    except ValueError as exc:
        # The default stride rides on the hold: turning the hold off turns it off too. A stride asked for is checked.
        if self.gate_ictal_every != type(self).__dataclass_fields__["gate_ictal_every"].default:
            raise ConfigError(f"train.gate_ictal_every: {exc}; set gate_ictal_every: 1 to turn it off") from None
    if not (self.gate_unseen_probe_every == 0 or 1 <= self.gate_unseen_probe_every <= MAX_PROBE):
        raise ConfigError(f"train.gate_unseen_probe_every: must be 0 (off) or in [1, {MAX_PROBE}], "
                          f"got {self.gate_unseen_probe_every}")
    if not 0.0 < self.gate_unseen_ratio <= 1.0:
        raise ConfigError(f"train.gate_unseen_ratio: must be in (0, 1], got {self.gate_unseen_ratio}")
    if not 0.0 <= self.gate_weak_simple_gap <= 1.0:
        raise ConfigError(f"train.gate_weak_simple_gap: must be 0 (off) or in (0, 1], got {self.gate_weak_simple_gap}")
    if not 0.0 < self.gate_weak_simple_max_f1 <= 1.0:
        raise ConfigError(f"train.gate_weak_simple_max_f1: must be in (0, 1], got {self.gate_weak_simple_max_f1}")
    if self.gate_weak_simple_gap and not (self.gate_unseen_probe_every or self.gate_probe_every):
        raise ConfigError("train.gate_weak_simple_gap: turns on train.gate_unseen_probe_every, which is 0; set "
                          "gate_weak_simple_gap: 0 too, or give the probe a period")
    if not 1 <= self.gate_sentinel_every <= MAX_PROBE:
        raise ConfigError(f"train.gate_sentinel_every: must be in [1, {MAX_PROBE}], got {self.gate_sentinel_every}")
    if self.gate_sentinel_stay_ratio and not 1.0 < self.gate_sentinel_stay_ratio < (self.gate_sentinel_ratio or 64.0):
        raise ConfigError(f"train.gate_sentinel_stay_ratio: must be 0 (off) or in (1, train.gate_sentinel_ratio="
                          f"{self.gate_sentinel_ratio}), got {self.gate_sentinel_stay_ratio}")
    if self.gate_sentinel_stay_ratio and round(self.gate_sentinel_stay_ratio * 16) in (16, round(self.gate_sentinel_ratio * 16)):
        raise ConfigError(f"train.gate_sentinel_stay_ratio: {self.gate_sentinel_stay_ratio} rounds (to 1/16) to 1 or "
                          f"to train.gate_sentinel_ratio; the hardware compares in sixteenths")
    if self.gate_sentinel_own_ratio and not 1.0 < self.gate_sentinel_own_ratio <= 3.0:
        raise ConfigError(f"train.gate_sentinel_own_ratio: must be 0 (off) or in (1, 3], got "
                          f"{self.gate_sentinel_own_ratio}")
    if self.gate_sentinel_own_ratio and round(self.gate_sentinel_own_ratio * 16) == 16:
        raise ConfigError(f"train.gate_sentinel_own_ratio: {self.gate_sentinel_own_ratio} rounds (to 1/16) to 1; "
                          f"the hardware compares in sixteenths")
    if not 1 <= self.gate_sentinel_persist <= MAX_PERSIST:
        raise ConfigError(f"train.gate_sentinel_persist: must be in [1, {MAX_PERSIST}] (an 8-bit counter in the "
                          f"top level), got {self.gate_sentinel_persist}")
    try:
        fuse_shift(self.gate_fuse)
    except ValueError:
        raise ConfigError(f"train.gate_fuse: must be 0 (off) or 1/2**k for k in [0, {MAX_FUSE_SHIFT}] (the top "
                          f"level shifts), got {self.gate_fuse!r}") from None
    for p in self.gate_probe_choices:
        if isinstance(p, bool) or not 1 <= p <= MAX_PROBE:
            raise ConfigError(f"train.gate_probe_choices: every period must be in [1, {MAX_PROBE}], got {p!r}")


def sentinel_spec(self, n_chans: int | None = None, electrode: int | None = None, watch=None):
    """The :class:`qcascade.sentinel.SentinelSpec` of the ``gate_sentinel_*`` keys (``self``: the TrainConfig), or None when off.

    With ``n_chans`` (the recordings' electrodes), also None when there are fewer electrodes than
    ``gate_sentinel_electrodes``: the sentinel could never be up (one-electrode data such as Bonn).
    ``electrode``: the simple model's, watched on its own with ``gate_sentinel_own_ratio``; None
    (no electrode chosen yet) leaves that watch out of the spec. ``watch``: the electrodes the
    sentinel reads (``gate_sentinel_watch: complex``, see :func:`qcascade.complex_electrodes.sentinel_watch`);
    None: every electrode. Also None when it holds fewer than ``gate_sentinel_electrodes``.
    """
    n_read = n_chans if watch is None else len(watch)
    if not self.gate_sentinel_ratio or (n_read is not None and n_read < self.gate_sentinel_electrodes):
        return None
    own = self.gate_sentinel_own_ratio if electrode is not None else 0.0
    return SentinelSpec(self.gate_sentinel_ratio, self.gate_sentinel_electrodes,
                        self.gate_sentinel_memory.bit_length() - 1, self.gate_sentinel_every,
                        self.gate_sentinel_interictal_only, self.gate_sentinel_persist,
                        self.gate_sentinel_stay_ratio, own, electrode if own else None,
                        None if watch is None else sorted(int(w) for w in watch))
