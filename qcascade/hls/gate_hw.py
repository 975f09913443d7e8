"""The gate's formula text and its late fusion in the C++ top level (:mod:`qcascade.hls.toplevel`).

With fusion (``train.gate_fuse = 2**-k``, :mod:`qcascade.gate`), a routed window is decided on
``(z1 - z0)_complex + ((z1 - z0)_simple >> k)``. The sum is held in ``gate_fuse_t``, a fixed-point
type with the finer of the two LSBs (the simple one shifted by ``k``) and two more integer bits
than the wider logit, so it is exact, like :func:`qcascade.gate_fixed.fused_difference` in float64.
The recheck then compares the fused difference, so its constant is rounded to that type's LSB.
"""

from __future__ import annotations

from qcascade.errors import ConfigError
from qcascade.gate_fixed import fuse_shift, quantize_recheck

__all__ = ["GATE_FORMULAS", "gate_formula", "fuse_values"]

GATE_FORMULAS = {
    "confidence": "|z1 - z0| > 2*atanh(tau)",
    "confirm_changes": "|z1 - z0| > 2*atanh(tau) and (z1 > z0) == prev_cls",
    "confirm_ictal_hold": "z0 - z1 > 2*atanh(tau) and prev_cls == 0",
}


def gate_formula(rule: str, probe: int, recheck: float, sentinel_subs: dict | None, hold: int, hold_max: int,
                 tau: float, tau_i: float, fuse: float, ictal_every: int = 1,
                 ictal_min_held: int = 0) -> str:
    """The deployed gate in one line, for the generated header's comment."""
    text = GATE_FORMULAS[rule] + (f", and gap < {probe - 1} (probe every {probe})" if probe else "")
    text += f"; recheck: complex z0 - z1 < 2*atanh({recheck!r}) sets gap to {probe - 1}" if recheck else ""
    if sentinel_subs:
        text += (f", and not (sentinel up and gap >= {sentinel_subs['sentinel_every'] - 1}"
                 + (" and z1 <= z0)" if sentinel_subs["sentinel_interictal_only"] else ")"))
    if hold:
        text += f", and held == 0 (hold {hold}" + (f", growing to {hold_max})" if hold_max > hold else ")")
    text += f"; where z1 <= z0, 2*atanh({tau_i!r}) in place of 2*atanh(tau)" if tau_i != tau else ""
    k = fuse_shift(fuse)
    text += (f"; a routed window decides on (z1 - z0)_complex + ((z1 - z0)_simple >> {k})" if k >= 0 else "")
    text += (f"; prev_cls == 1 and held >= {ictal_min_held} and gap < {ictal_every - 1} keeps the ictal state unrouted "
             f"(ictal stride {ictal_every})" if ictal_every > 1 else "")
    return text


def fuse_values(fuse: float, simple_logit: dict, complex_logit: dict, recheck: float) -> tuple[dict, dict, dict]:
    """Template values, the manifest entry and the recheck constant of the fusion.

    Args:
        fuse: ``train.gate_fuse`` (0: off, else ``2**-k``).
        simple_logit / complex_logit: the logit element types (``{"width", "integer"}``).
        recheck: the gate's recheck ``tau_c`` (0: off).

    Returns:
        ``(subs, entry, rq)``: ``fuse``, ``fuse_shift``, ``fuse_width``, ``fuse_int`` for the templates;
        the manifest's ``{"fuse", "shift", "width", "integer"}`` (None when off); and
        :func:`qcascade.gate_fixed.quantize_recheck` on the type the recheck compares (the complex
        logits' without fusion, ``gate_fuse_t`` with it).

    Raises:
        ConfigError: ``fuse`` is neither 0 nor ``2**-k``.
    """
    try:
        k = fuse_shift(fuse)
    except ValueError as exc:
        raise ConfigError(f"gate_fuse: {exc}") from None
    frac = max(complex_logit["width"] - complex_logit["integer"], simple_logit["width"] - simple_logit["integer"] + max(k, 0))
    integer = max(complex_logit["integer"], simple_logit["integer"]) + 2
    width = integer + frac
    if k < 0:
        rq = quantize_recheck(recheck, complex_logit["width"], complex_logit["integer"])
        return {"fuse": 0, "fuse_shift": 0, "fuse_width": width, "fuse_int": integer}, None, rq
    rq = quantize_recheck(recheck, width, integer)
    return ({"fuse": 1, "fuse_shift": k, "fuse_width": width, "fuse_int": integer},
            {"fuse": float(fuse), "shift": k, "width": width, "integer": integer}, rq)
