"""The gate's thresholds: ``2 * atanh(tau)`` and its fixed-point constants for the C++ top level.

:mod:`qcascade.gate` (the rules, in Python) and :mod:`qcascade.hls.toplevel` (the same rules in
C++) both take their thresholds from here, so the two decide alike on every pair of fixed-point
logits. This module depends on numpy only.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["logit_threshold", "quantize_threshold", "quantize_recheck", "MAX_FUSE_SHIFT", "fuse_shift", "fused_difference"]

#: Largest shift of the late fusion: ``fuse`` is 1, 1/2, ..., 1/2**MAX_FUSE_SHIFT.
MAX_FUSE_SHIFT = 8


def logit_threshold(tau: float) -> float:
    """``2 * atanh(tau)``: the |logit difference| above which the simple model is confident.

    ``|p1 - p0| > tau <=> |z1 - z0| > 2*atanh(tau)``. Python, training and the generated C++
    constant all call this one function: another atanh may differ in the last ulp and flip a window
    that lands exactly on the threshold. ``tau = 1`` (calibration's "route every window") gives an
    infinite threshold: the gate never fires.

    Raises:
        ValueError: ``tau`` is not a number in [0, 1].
    """
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(tau) <= 1.0:
        raise ValueError(f"tau must be a number in [0, 1], got {tau!r}")
    tau = float(tau)
    return math.inf if tau == 1.0 else 2.0 * math.atanh(tau)


def quantize_threshold(tau: float, width: int, integer: int) -> dict:
    """Fixed-point gate threshold for logits of type ``ap_fixed<width, integer>``.

    Logit differences are exact multiples of the LSB ``2**-(width-integer)`` and, for an
    integer ``k`` and a real ``t``, ``k > t <=> k > floor(t)``. Comparing the exact difference
    with ``floor(t / LSB) * LSB`` (round toward minus infinity) therefore decides like the float
    reference gate on every pair of fixed-point logits. Thresholds beyond the largest possible
    ``|z1 - z0|`` are clamped to ``2**width`` LSBs (the gate never fires), which keeps equality.

    Returns:
        ``threshold`` (float reference), ``raw`` (LSB units), ``frac_bits``, ``value`` (the exact
        constant), ``diff_width``/``diff_int`` (comparison type: two more integer bits than the
        logits, so ``|z1 - z0|`` is exact).

    Raises:
        ValueError: ``width`` not in [1, 50] or ``integer`` not in [-64, 64] (integers), or a bad tau.
    """
    for name, v, lo, hi in (("logit width", width, 1, 50), ("logit integer bits", integer, -64, 64)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {v!r}")
    width, integer = int(width), int(integer)
    frac, thr = width - integer, logit_threshold(tau)
    raw = 2**width if math.isinf(thr) else min(math.floor(math.ldexp(thr, frac)), 2**width)
    return {"tau": float(tau), "threshold": thr, "raw": int(raw), "frac_bits": frac,
            "value": math.ldexp(raw, -frac), "diff_width": width + 2, "diff_int": integer + 2,
            "rounding": "floor to the logit LSB; exact for the strict '>' comparison"}


def quantize_recheck(recheck_tau: float, width: int, integer: int) -> dict:
    """Fixed-point recheck threshold for complex logits of type ``ap_fixed<width, integer>``.

    The recheck fires when ``z0 - z1 < 2 * atanh(recheck_tau)`` (strict). For an integer ``k``
    and a real ``t``, ``k < t <=> k < ceil(t)``, so the exact difference is compared with
    ``ceil(t / LSB) * LSB`` (round toward plus infinity): the same decision as the float walk
    of :func:`cascade_decide` on every pair of fixed-point logits. Clamped to ``2**width`` LSBs
    (above any ``|z1 - z0|``: every interictal answer of the complex model rechecks).

    Returns:
        ``recheck_tau``, ``threshold`` (float), ``raw`` (LSB units), ``frac_bits``, ``value``,
        ``diff_width``/``diff_int`` as in :func:`quantize_threshold`.

    Raises:
        ValueError: as :func:`quantize_threshold`, or ``recheck_tau`` not in [0, 1).
    """
    if isinstance(recheck_tau, bool) or not isinstance(recheck_tau, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(recheck_tau) < 1.0:
        raise ValueError(f"recheck_tau must be a number in [0, 1), got {recheck_tau!r}")
    q = quantize_threshold(0.0, width, integer)  # checks width and integer
    frac, thr = q["frac_bits"], logit_threshold(float(recheck_tau))
    raw = min(math.ceil(math.ldexp(thr, frac)), 2**width)
    return {"recheck_tau": float(recheck_tau), "threshold": thr, "raw": int(raw), "frac_bits": frac,
            "value": math.ldexp(raw, -frac), "diff_width": q["diff_width"], "diff_int": q["diff_int"],
            "rounding": "ceil to the logit LSB; exact for the strict '<' comparison"}


def fuse_shift(fuse) -> int:
    """The shift ``k`` with ``fuse == 2**-k`` (the top level's ``>> k``); -1 for 0 (no fusion).

    Raises:
        ValueError: ``fuse`` is neither 0 nor a power of two in [2**-MAX_FUSE_SHIFT, 1].
    """
    if isinstance(fuse, bool) or not isinstance(fuse, (int, float, np.floating, np.integer)):
        raise ValueError(f"fuse must be 0 or 1/2**k for k in [0, {MAX_FUSE_SHIFT}], got {fuse!r}")
    if float(fuse) == 0.0:
        return -1
    for k in range(MAX_FUSE_SHIFT + 1):
        if float(fuse) == math.ldexp(1.0, -k):
            return k
    raise ValueError(f"fuse must be 0 or 1/2**k for k in [0, {MAX_FUSE_SHIFT}] (a shift in the top level), "
                     f"got {fuse!r}")


def fused_difference(simple_logits: np.ndarray, complex_logits: np.ndarray, fuse: float) -> np.ndarray:
    """``(n,)`` the logit difference a routed window is decided on: ``(z1 - z0)_complex + fuse * (z1 - z0)_simple``.

    Both arrays are ``(n, 2)``. For fixed-point logits and ``fuse = 2**-k`` (what the top level can
    shift by: :func:`fuse_shift`) every value is exact in float64, as is the top level's sum in its
    wider fixed-point type, so both decide alike. Other values serve replays (``bench.replay_gate_settings``).
    """
    zc = np.asarray(complex_logits, np.float64)
    d = zc[:, 1] - zc[:, 0]
    if float(fuse):
        zs = np.asarray(simple_logits, np.float64)
        d = d + float(fuse) * (zs[:, 1] - zs[:, 0])
    return d
