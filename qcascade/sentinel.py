"""The gate's sentinel: a test-time signal over every electrode that routes a window to the complex model.

The simple model reads one electrode, so a seizure that starts elsewhere (a multifocal patient's
other onset zone) can leave it confidently "interictal"; the probe (:mod:`qcascade.gate`) answers
that blindly, one window in every ``P``. The sentinel looks instead: per electrode it measures the
window's **line length** (the sum of ``|x[t] - x[t-S]|``, the classic seizure statistic) and keeps
a slow running baseline of it *from the recording's own past*. While at least ``electrodes``
electrodes exceed ``ratio`` times their baseline, the sentinel is *up*, and the gate routes one
window in every ``every`` (:mod:`qcascade.gate`: the probe period shortens to ``every``). So the
complex model looks again and again at a seizure that the simple model's electrode cannot see,
for as long as the other electrodes show it, and an artefact costs a few looks.

Everything is integer arithmetic on the model's input codes (``ap_fixed<input_bits,
input_int_bits + 1>``), so the generated C++ top level computes exactly the same decisions:

* ``L[e]``: the sum over a window of ``|c[t, e] - c[t - S, e]|`` for ``t = S, 2S, ...``, ``c`` the
  input codes and ``S = SAMPLE_STRIDE`` (the line length of the window subsampled to 128 Hz: a
  quarter of the operations, and the same decisions in the measurements of docs/generalisation.md);
* a recording's first window sets the baseline ``B[e] = L[e]``; after every window
  ``B[e] += (min(L[e], 2 B[e]) - B[e]) >> memory_shift`` (an arithmetic shift, i.e. floor), a
  moving average over about ``2**memory_shift`` windows that one artefact cannot drag far;
* electrode ``e`` is *above* when ``RATIO_ONE * L[e] > ratio_code * B[e]``, ``ratio_code =
  round(ratio * RATIO_ONE)``, before this window's baseline update;
* the sentinel is *up* on a window where at least ``electrodes`` electrodes are above, except on
  the first ``WARMUP`` windows of a recording (the baseline is young), and only once that has held
  for ``persist`` windows in a row (an 8-bit run counter, reset with the baseline): an artefact
  shorter than ``persist`` windows never raises it, a seizure is reached ``persist - 1`` windows
  later (docs/generalisation.md, round 34).
* with ``stay_ratio`` (``stay_code = round(stay_ratio * RATIO_ONE)``, 0: off), once up the
  sentinel *stays* up while at least ``electrodes`` electrodes exceed ``stay_ratio`` times their
  baseline (a one-bit state, reset with the baseline). A seizure raises line length most at its
  onset, before the baselines follow it; the complex model often sees it only later, so the
  sentinel keeps asking while the electrodes are still above a lower bar (docs/generalisation.md,
  round 40).
* with ``own_ratio`` (``own_code = round(own_ratio * RATIO_ONE)``, 0: off) and ``own_electrode``
  (the electrode the simple model reads), the sentinel is also up once that one electrode has been
  above ``own_ratio`` times its baseline for ``persist`` windows in a row (its own 8-bit run
  counter). The simple model recognises the seizure morphologies it trained on; a seizure of
  another morphology on its own electrode can leave it confidently "interictal" while the line
  length still rises, and on too few electrodes for the sentinel (docs/generalisation.md, round 41).

Dead electrodes (``L = 0`` throughout) never count: ``0 > ratio * 0`` is false.

With ``watch`` (a sorted list of electrodes, ``train.gate_sentinel_watch: complex``), the sentinel
reads only those electrodes: everything above runs over ``watch`` instead of every electrode, in the
order of the list, and ``electrodes`` counts among them. The simple model's own electrode must be one
of them when it is watched on its own.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

__all__ = ["SAMPLE_STRIDE", "RATIO_ONE", "WARMUP", "MAX_PERSIST", "SentinelSpec", "input_codes", "line_lengths", "sentinel_walk", "sentinel_up",
           "sentinel_ops"]

#: The line length reads every SAMPLE_STRIDE-th sample of a window.
SAMPLE_STRIDE = 4
#: Fixed-point unit of the ratio (the ratio has 4 fractional bits).
RATIO_ONE = 16
#: Windows at a recording's start on which the sentinel is never up (its baseline is young).
WARMUP = 5
#: The largest ``persist``: the run counter is 8 bits wide in the top level.
MAX_PERSIST = 255


class SentinelSpec:
    """The sentinel's constants (``train.gate_sentinel_*``)."""

    def __init__(self, ratio: float, electrodes: int, memory_shift: int, every: int, interictal_only: bool = False,
                 persist: int = 1, stay_ratio: float = 0.0, own_ratio: float = 0.0,
                 own_electrode: Optional[int] = None, watch: Optional[Sequence[int]] = None):
        if not ratio > 1.0:
            raise ValueError(f"sentinel ratio must be > 1, got {ratio}")
        if electrodes < 1:
            raise ValueError(f"sentinel electrodes must be >= 1, got {electrodes}")
        if not 0 <= memory_shift <= 15:
            raise ValueError(f"sentinel memory_shift must be in [0, 15], got {memory_shift}")
        if every < 1:
            raise ValueError(f"sentinel every must be >= 1, got {every}")
        if not 1 <= persist <= MAX_PERSIST:
            raise ValueError(f"sentinel persist must be in [1, {MAX_PERSIST}], got {persist}")
        if stay_ratio and not 1.0 < stay_ratio < ratio:
            raise ValueError(f"sentinel stay_ratio must be 0 (off) or in (1, ratio={ratio}), got {stay_ratio}")
        self.ratio = float(ratio)
        self.electrodes = int(electrodes)
        self.memory_shift = int(memory_shift)
        self.every = int(every)
        self.interictal_only = bool(interictal_only)
        self.persist = int(persist)
        self.stay_ratio = float(stay_ratio)
        if own_ratio and not own_ratio > 1.0:
            raise ValueError(f"sentinel own_ratio must be 0 (off) or > 1, got {own_ratio}")
        if own_ratio and (own_electrode is None or int(own_electrode) < 0):
            raise ValueError(f"sentinel own_ratio {own_ratio} needs the simple model's electrode, got {own_electrode}")
        self.own_ratio = float(own_ratio)
        self.own_electrode = None if own_electrode is None else int(own_electrode)
        if self.own_ratio and self.own_code <= RATIO_ONE:
            raise ValueError(f"sentinel own_ratio {own_ratio} rounds to {self.own_code}/{RATIO_ONE}, not above 1")
        self.watch = None if watch is None else tuple(int(w) for w in watch)
        if self.watch is not None:
            if not self.watch or list(self.watch) != sorted(set(self.watch)) or self.watch[0] < 0:
                raise ValueError(f"sentinel watch must be distinct electrodes >= 0 in increasing order, got {list(self.watch)}")
            if len(self.watch) < self.electrodes:
                raise ValueError(f"sentinel watch has {len(self.watch)} electrode(s), fewer than electrodes={electrodes}: "
                                 "it could never be up")
            if self.own_ratio and self.own_electrode not in self.watch:
                raise ValueError(f"sentinel own_electrode {self.own_electrode} is not among the watched electrodes {list(self.watch)}")
        if self.stay_ratio and not RATIO_ONE < self.stay_code < self.ratio_code:
            raise ValueError(f"sentinel stay_ratio {stay_ratio} rounds to {self.stay_code}/{RATIO_ONE}, not between "
                             f"1 and the ratio's {self.ratio_code}/{RATIO_ONE}")

    @property
    def ratio_code(self) -> int:
        return int(round(self.ratio * RATIO_ONE))

    @property
    def stay_code(self) -> int:
        """``round(stay_ratio * RATIO_ONE)``; 0: the sentinel does not stay up."""
        return int(round(self.stay_ratio * RATIO_ONE))

    @property
    def own_code(self) -> int:
        """``round(own_ratio * RATIO_ONE)``; 0: the simple model's electrode is not watched on its own."""
        return int(round(self.own_ratio * RATIO_ONE))

    def n_watched(self, n_chans: int) -> int:
        """How many electrodes the sentinel reads in ``n_chans``-electrode windows."""
        return n_chans if self.watch is None else len(self.watch)

    @property
    def own_column(self) -> Optional[int]:
        """The own electrode's position among the watched electrodes (its number without ``watch``)."""
        if self.own_electrode is None or self.watch is None:
            return self.own_electrode
        return self.watch.index(self.own_electrode)

    def as_dict(self) -> dict:
        return {"ratio": self.ratio, "ratio_code": self.ratio_code, "electrodes": self.electrodes,
                "memory_shift": self.memory_shift, "every": self.every,
                "warmup": WARMUP, "interictal_only": self.interictal_only, "persist": self.persist,
                "stay_ratio": self.stay_ratio, "stay_code": self.stay_code,
                "own_ratio": self.own_ratio, "own_code": self.own_code, "own_electrode": self.own_electrode,
                "watch": None if self.watch is None else list(self.watch)}

    @classmethod
    def from_dict(cls, d: dict) -> "SentinelSpec":
        """The spec of an :meth:`as_dict` (a deployment's ``sentinel``). Deployments written before
        ``interictal_only``, ``persist``, ``stay_ratio``, ``own_ratio`` or ``watch`` existed routed every
        up window, counted every up window, did not stay up, did not watch the simple model's
        electrode on its own and read every electrode."""
        own = d.get("own_electrode")
        return cls(d["ratio"], d["electrodes"], d["memory_shift"], d["every"],
                   interictal_only=bool(d.get("interictal_only", False)), persist=int(d.get("persist", 1)),
                   stay_ratio=float(d.get("stay_ratio", 0.0)), own_ratio=float(d.get("own_ratio", 0.0)),
                   own_electrode=None if own is None else int(own), watch=d.get("watch"))


def input_codes(X: np.ndarray, width: int, integer: int) -> np.ndarray:
    """``(n, n_times, n_chans)`` int32 codes of ``ap_fixed<width, integer + 1>`` (round, saturate), the
    model input's quantizer: ``X`` already quantized maps exactly."""
    frac = width - 1 - integer
    lim = 2 ** (width - 1)
    return np.clip(np.round(np.asarray(X, np.float64) * 2.0 ** frac), -lim, lim - 1).astype(np.int32)


def line_lengths(codes: np.ndarray, stride: int = SAMPLE_STRIDE) -> np.ndarray:
    """``(n, n_chans)`` int64: per window and electrode, the sum of ``|c[t] - c[t - stride]|`` over
    ``t = stride, 2 * stride, ...``."""
    c = np.asarray(codes)
    if c.ndim != 3:
        raise ValueError(f"expected (n, n_times, n_chans) codes, got shape {c.shape}")
    return np.abs(np.diff(c[:, ::stride].astype(np.int64), axis=1)).sum(axis=1)


def sentinel_walk(L: np.ndarray, spec: SentinelSpec, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sentinel over windows in time order.

    Args:
        L: ``(n, n_watched)`` line lengths (:func:`line_lengths`) of the watched electrodes (every
            electrode without ``spec.watch``), windows in time order.
        spec: the constants.
        first: ``(n,)`` bool, a recording's first window.

    Returns:
        ``up`` ``(n,)`` bool (after ``spec.persist``, with ``spec.stay_ratio``'s stay and
        ``spec.own_ratio``'s own electrode) and ``count``
        ``(n,)`` int: the electrodes above ``ratio`` times their baseline.
    """
    L = np.asarray(L, np.int64)
    n = len(L)
    up = np.zeros(n, bool)
    count = np.zeros(n, np.int64)
    B = np.zeros(L.shape[1:], np.int64)
    age = run = own_run = 0
    held = False
    e = spec.own_column
    if spec.watch is not None and L.shape[1] != len(spec.watch):
        raise ValueError(f"sentinel: {L.shape[1]} line lengths per window for {len(spec.watch)} watched electrodes")
    if spec.own_code and not 0 <= e < L.shape[1]:
        raise ValueError(f"sentinel own_electrode {spec.own_electrode} is not one of the {L.shape[1]} electrodes")
    for i in range(n):
        if first[i]:
            B = L[i].copy()
            age = run = own_run = 0
            held = False
        count[i] = np.count_nonzero(RATIO_ONE * L[i] > spec.ratio_code * B)
        run = min(run + 1, MAX_PERSIST) if count[i] >= spec.electrodes and age >= WARMUP else 0
        up[i] = run >= spec.persist
        if spec.stay_code:
            staying = np.count_nonzero(RATIO_ONE * L[i] > spec.stay_code * B) >= spec.electrodes
            held = (held or up[i]) and staying and age >= WARMUP
            up[i] = up[i] or held
        if spec.own_code:
            own_run = min(own_run + 1, MAX_PERSIST) if RATIO_ONE * L[i, e] > spec.own_code * B[e] and age >= WARMUP else 0
            up[i] = up[i] or own_run >= spec.persist
        age = min(age + 1, WARMUP)
        B = B + ((np.minimum(L[i], 2 * B) - B) >> spec.memory_shift)
    return up, count


def sentinel_up(X: np.ndarray, record_ids: Optional[np.ndarray], start_s: Optional[np.ndarray],
                   spec: SentinelSpec, input_bits: int, input_int_bits: int) -> np.ndarray:
    """``(n,)`` bool: the windows on which the sentinel is up, windows in any order.

    Args:
        X: ``(n, n_times, n_chans)`` model inputs.
        record_ids, start_s: ``(n,)`` recording and start time per window (None: one recording, in order).
        spec: the constants.
        input_bits, input_int_bits: the input type ``ap_fixed<input_bits, input_int_bits + 1>``.
    """
    from qcascade.gate import _sequence_order

    n = len(X)
    order, first = _sequence_order(n, record_ids, start_s)
    if spec.watch is not None and spec.watch[-1] >= X.shape[2]:
        raise ValueError(f"sentinel watch electrode {spec.watch[-1]} is not one of the {X.shape[2]} electrodes")
    cols = slice(None) if spec.watch is None else list(spec.watch)
    L = np.empty((n, spec.n_watched(X.shape[2])), np.int64)
    for lo in range(0, n, 256):  # codes of a batch at a time: int32 copies of the windows are large
        # Only every SAMPLE_STRIDE-th sample enters the line length, so only those are coded.
        codes = input_codes(np.asarray(X[lo:lo + 256, ::SAMPLE_STRIDE])[:, :, cols], input_bits, input_int_bits)
        L[lo:lo + 256] = line_lengths(codes, stride=1)
    up_sorted, _ = sentinel_walk(L[order], spec, first)
    up = np.zeros(n, bool)
    up[order] = up_sorted
    return up


def sentinel_ops(n_chans: int, n_times: int) -> int:
    """Operations per window, counted like MACs: one subtract-absolute-accumulate per sample read
    and electrode, one multiply-compare and one baseline update per electrode (``n_chans``: the
    electrodes the sentinel reads, :meth:`SentinelSpec.n_watched`)."""
    return n_chans * (len(range(0, n_times, SAMPLE_STRIDE)) - 1) + 2 * n_chans
