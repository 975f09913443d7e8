"""Causal per-electrode robust input scaling, bit-accurate with the generated hardware top level.

``data.input_scaling: causal_robust`` scales every window with statistics of its *own recording's
past*, so a threshold learnt on one recording carries over to a recording whose amplitude differs
(docs/input_scaling.md). The arithmetic is integer fixed point, defined here once and reproduced
by the generated C++ (``qcascade/hls/templates/cascade_top.cpp.in``, ``scale_window``): the
numbers below are what both compute, so the QKeras models see exactly the hardware's input.

Per electrode ``c`` the state is a center ``m`` and a scale ``s`` (codes of the raw type, LSB
``2**-RAW_FRAC``) and a window count ``n``. For each window, in the recording's time order:

1. raw samples are quantised: ``x = sat(floor(v * 2**RAW_FRAC + 1/2))`` (``ap_fixed<24,16,AP_RND,AP_SAT>``);
2. output: ``y = sat(round((x - m) / s))`` on the model input grid, computed as
   ``(x - m) * r >> (MANT + e - F_out)`` with ``e = floor(log2 s)`` and the per-window reciprocal
   mantissa ``r = floor(2**(MANT + e) / s)`` (18 bits), rounding half up; masked electrodes give 0;
3. statistics of this window (used from the next window on): ``mean = sum(x) >> L`` and
   ``mad = sum(|x - m|) >> L`` (``n_times = 2**L``);
4. update with ``j = min(floor(log2(n + 1)), memory_shift)``: the first window of a recording
   replaces the state (``j = 0``), then a warm-up average, then an exponential moving average with
   weight ``2**-memory_shift``. ``mad`` is clipped to ``[s/2, 2s]`` and the center step to
   ``+-4s`` before the update (bounded influence: an artefact or a seizure moves the state slowly),
   ``s >= MIN_SCALE``.

Window ``t``'s output therefore depends on windows ``0..t-1`` of its recording only (and on the
initial state, which window 0 uses: the training normaliser's per-electrode center and scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qcascade.errors import ConfigError, DataError

RAW_BITS, RAW_FRAC = 24, 8  # ap_fixed<24,16>: +-32768 (uV), LSB 2**-8
MANT = 17                   # reciprocal mantissa in (2**16, 2**17]: ap_uint<18>
MIN_SCALE = 16              # codes (1/16 uV): bounds the reciprocal of flat electrodes
CLIP_SHIFT = 1              # window MAD clipped to [s / 2, 2 s]
CENTER_CLIP_SHIFT = 2       # center step clipped to +-4 s
MODES = ("train_stats", "causal_robust")


@dataclass(frozen=True)
class ScalingSpec:
    """The fixed-point parameters both Python and the generated C++ use.

    Attributes:
        n_times: samples per window (a power of two: the window mean is a shift).
        memory_shift: the moving average's weight is ``2**-memory_shift`` per window.
        out_bits, out_int_bits: model input type ``ap_fixed<out_bits, out_int_bits + 1>``.
    """

    n_times: int = 512
    memory_shift: int = 6
    out_bits: int = 16
    out_int_bits: int = 5

    def __post_init__(self):
        if self.n_times < 2 or self.n_times & (self.n_times - 1):
            raise ConfigError(f"data.n_times: {self.n_times} must be a power of two for "
                              "data.input_scaling: causal_robust (the window mean is a shift)")
        if not 0 <= self.memory_shift <= 12:
            raise ConfigError(f"data.scaling_memory_windows: 2**{self.memory_shift} is outside 1..4096")

    @property
    def log2_n(self) -> int:
        return int(self.n_times).bit_length() - 1

    @property
    def out_frac(self) -> int:
        return self.out_bits - 1 - self.out_int_bits

    @classmethod
    def from_config(cls, data_cfg, quant) -> "ScalingSpec":
        """From a :class:`qcascade.config.DataConfig` and a :class:`qcascade.quant.QuantPolicy`."""
        return cls(int(data_cfg.n_times), int(data_cfg.scaling_memory_windows).bit_length() - 1,
                   int(quant.input_bits), int(quant.input_int_bits))


def quantize_raw(X: np.ndarray) -> np.ndarray:
    """Raw samples -> int64 codes of ``ap_fixed<RAW_BITS, RAW_BITS-RAW_FRAC, AP_RND, AP_SAT>``."""
    lim = 1 << (RAW_BITS - 1)
    return np.clip(np.floor(np.asarray(X, np.float64) * (1 << RAW_FRAC) + 0.5), -lim, lim - 1).astype(np.int64)


def init_state(center: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Initial ``(m, s)`` codes ``(n_chans,)`` int64 from a float center and scale (the training normaliser)."""
    m = quantize_raw(center)
    s = np.clip(np.floor(np.asarray(scale, np.float64) * (1 << RAW_FRAC) + 0.5), MIN_SCALE, (1 << (RAW_BITS - 1)) - 1)
    return m, s.astype(np.int64)


def reciprocal(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(r, e)``: ``e = floor(log2 s)``, ``r = floor(2**(MANT + e) / s)`` (int64, ``(n_chans,)``)."""
    e = np.floor(np.log2(s.astype(np.float64))).astype(np.int64)
    e += (np.left_shift(1, e + 1) <= s).astype(np.int64) - (np.left_shift(1, e) > s).astype(np.int64)  # exact
    return np.left_shift(1, MANT + e) // s, e


class CausalScaler:
    """The per-recording running state; :meth:`step` scales one window and updates the state.

    Args:
        spec: fixed-point parameters.
        center, scale: ``(n_chans,)`` float initial state (used by a recording's first window).
        mask: ``(n_chans,)`` bool electrodes kept (others output 0).
    """

    def __init__(self, spec: ScalingSpec, center: np.ndarray, scale: np.ndarray, mask: np.ndarray):
        self.spec, self.mask = spec, np.asarray(mask, bool)
        self.m0, self.s0 = init_state(center, scale)
        self.reset()

    def reset(self) -> None:
        """Start of a recording (the hardware's ``scale_reset``)."""
        self.m, self.s, self.n = self.m0.copy(), self.s0.copy(), 0

    def scale(self, window: np.ndarray) -> np.ndarray:
        """Scale one raw window ``(n_times, n_chans)`` with the current state, which is not updated
        (a training window cut between the windows the hardware sees)."""
        return self.step(window, update=False)

    def step(self, window: np.ndarray, update: bool = True) -> np.ndarray:
        """Scale one raw window ``(n_times, n_chans)``; returns float32 on the model input grid.
        ``update``: fold the window's statistics into the state for the next window."""
        sp = self.spec
        if window.shape != (sp.n_times, len(self.mask)):
            raise DataError(f"window shape {window.shape} is not ({sp.n_times}, {len(self.mask)})")
        x = quantize_raw(window)
        d = x - self.m
        r, e = reciprocal(self.s)
        sh = MANT + e - sp.out_frac  # >= 1: MIN_SCALE keeps e >= 4
        y = (d * r + np.left_shift(1, sh - 1)) >> sh
        lim = 1 << (sp.out_bits - 1)
        y = np.clip(y, -lim, lim - 1)
        y[:, ~self.mask] = 0
        if not update:
            return (y.astype(np.float64) / (1 << sp.out_frac)).astype(np.float32)
        # Statistics of this window, for the next one (the hardware accumulates them while streaming).
        mean = x.sum(axis=0) >> sp.log2_n
        mad = np.abs(d).sum(axis=0) >> sp.log2_n
        j = min(int(self.n + 1).bit_length() - 1, sp.memory_shift)
        if j == 0:
            self.m, self.s = mean, mad
        else:
            mad = np.clip(mad, self.s >> CLIP_SHIFT, self.s << CLIP_SHIFT)
            step_lim = self.s << CENTER_CLIP_SHIFT
            self.m = self.m + (np.clip(mean - self.m, -step_lim, step_lim) >> j)
            self.s = self.s + ((mad - self.s) >> j)
        self.s = np.clip(self.s, MIN_SCALE, (1 << (RAW_BITS - 1)) - 1)
        self.n = min(self.n + 1, 1 << sp.memory_shift)
        return (y.astype(np.float64) / (1 << sp.out_frac)).astype(np.float32)

    def state(self) -> dict:
        """The state after the last window (codes), e.g. to compare with the hardware."""
        return {"m": self.m.copy(), "s": self.s.copy(), "n": self.n}


def scale_sequence(X: np.ndarray, scaler: CausalScaler, reset: np.ndarray | None = None) -> np.ndarray:
    """Scale windows ``(n, n_times, n_chans)`` in order; ``reset`` ``(n,)`` bool starts a recording there.

    Without ``reset``, the first window starts a recording. Returns float32 ``(n, n_times, n_chans)``.
    """
    reset = np.zeros(len(X), bool) if reset is None else np.asarray(reset, bool)
    out = np.empty(X.shape, np.float32)
    for i, w in enumerate(X):
        if i == 0 or reset[i]:
            scaler.reset()
        out[i] = scaler.step(w)
    return out
