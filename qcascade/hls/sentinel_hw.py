"""The gate's sentinel in the generated top level (``cascade_top.cpp``, ``QCASCADE_GATE_SENTINEL``).

:mod:`qcascade.sentinel` defines the sentinel in integer arithmetic on the model's input codes; the
top level computes the same bits from its window buffer after the simple model has read the window.
This module turns a :meth:`~qcascade.sentinel.SentinelSpec.as_dict` into the template values, sizes
the types from the input width, describes the design's extra input (``sentinel_reset``) for the
manifest, and estimates what the sentinel costs (:func:`sentinel_cost`).
"""

from __future__ import annotations

import math

from qcascade.errors import ConfigError
from qcascade.sentinel import RATIO_ONE, SAMPLE_STRIDE, WARMUP, SentinelSpec

# sentinel_reset: like scale_reset, read once per call: a valid-qualified input or an AXI-Lite register.
SENTINEL_PRAGMAS = {
    "ap_ctrl_hs": "#pragma HLS INTERFACE ap_vld port=sentinel_reset",
    "s_axilite": "#pragma HLS INTERFACE s_axilite port=sentinel_reset bundle=control",
}
_KEYS = ("ratio", "electrodes", "memory_shift", "every")


def spec_of(sentinel: dict) -> SentinelSpec:
    """The :class:`~qcascade.sentinel.SentinelSpec` of a deployment's ``sentinel`` dict (ConfigError if malformed)."""
    missing = [k for k in _KEYS if k not in sentinel]
    if missing:
        raise ConfigError(f"sentinel: missing {missing} (expected SentinelSpec.as_dict())")
    try:
        return SentinelSpec.from_dict(sentinel)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"sentinel: {exc}") from None


def sizes(n_times: int, n_chans: int, input_width: int, ratio_code: int) -> dict:
    """Bit widths of the sentinel's types for ``input_width``-bit input codes.

    ``ll_bits`` holds the largest line length (every step a full-scale swing), ``prod_bits`` the
    comparison's products, ``count_bits`` up to ``n_chans`` electrodes above.
    """
    steps = len(range(0, n_times, SAMPLE_STRIDE))
    ll_max = max(steps - 1, 1) * (2 ** input_width - 1)
    ll_bits = ll_max.bit_length()
    return {"steps": steps, "ll_bits": ll_bits, "step_bits": input_width + 1,
            "prod_bits": ll_bits + max(ratio_code, RATIO_ONE).bit_length(), "count_bits": int(n_chans).bit_length()}


def template_values(sentinel: dict | None, n_times: int, n_chans: int, input_elem: dict, control: str,
                    electrode: int | None = None) -> dict:
    """Substitutions for the sentinel hooks of ``cascade_top.{h,cpp}.in`` and ``cascade_tb.cpp.in``.

    Args:
        sentinel: None (no sentinel) or :meth:`~qcascade.sentinel.SentinelSpec.as_dict` (extra keys ignored).
        n_times, n_chans: window shape; input_elem: the models' input element type (parsed).
        control: block-level protocol (``ap_ctrl_hs`` or ``s_axilite``).
        electrode: the simple model's electrode, which an own-electrode watch must be on.
    """
    if sentinel is None:
        return {"sentinel": 0, "sentinel_param": "", "sentinel_pragma": "", "sentinel_arg": "",
                **{f"sentinel_{k}": 0 for k in ("stride", "steps", "ratio_code", "ratio_one", "electrodes",
                                                 "memory_shift", "warmup", "every", "ll_bits", "step_bits",
                                                 "prod_bits", "count_bits", "code_bits", "interictal_only", "persist",
                                                 "stay_code", "own_code", "own_electrode", "own_index", "n_watch",
                                                 "watch_all")},
                "sentinel_watch_decl": ""}
    spec = spec_of(sentinel)
    if not input_elem["signed"]:
        raise ConfigError(f"sentinel: model input type {input_elem['text']} must be signed")
    if spec.electrodes > n_chans:
        raise ConfigError(f"sentinel: electrodes {spec.electrodes} > n_chans {n_chans}: it could never be up")
    if spec.own_code and not 0 <= spec.own_electrode < n_chans:
        raise ConfigError(f"sentinel: own_electrode {spec.own_electrode} is not one of the {n_chans} electrodes")
    if spec.own_code and electrode is not None and spec.own_electrode != electrode:
        raise ConfigError(f"sentinel: own_electrode {spec.own_electrode} is not the simple model's electrode {electrode}")
    if spec.watch is not None and spec.watch[-1] >= n_chans:
        raise ConfigError(f"sentinel: watched electrode {spec.watch[-1]} is not one of the {n_chans} electrodes")
    n_watch = spec.n_watched(n_chans)
    sz = sizes(n_times, n_watch, input_elem["width"], _largest_code(spec))
    return {"sentinel": 1, "sentinel_param": ", ap_uint<1> sentinel_reset", "sentinel_pragma": SENTINEL_PRAGMAS[control],
            "sentinel_arg": ", ap_uint<1>(reset)", "sentinel_stride": SAMPLE_STRIDE, "sentinel_steps": sz["steps"],
            "sentinel_ratio_code": spec.ratio_code, "sentinel_ratio_one": RATIO_ONE,
            "sentinel_electrodes": spec.electrodes, "sentinel_memory_shift": spec.memory_shift,
            "sentinel_warmup": WARMUP, "sentinel_every": spec.every, "sentinel_ll_bits": sz["ll_bits"],
            "sentinel_step_bits": sz["step_bits"], "sentinel_prod_bits": sz["prod_bits"],
            "sentinel_count_bits": sz["count_bits"], "sentinel_code_bits": input_elem["width"],
            "sentinel_interictal_only": int(spec.interictal_only), "sentinel_persist": spec.persist,
            "sentinel_stay_code": spec.stay_code, "sentinel_own_code": spec.own_code,
            "sentinel_own_electrode": spec.own_electrode or 0, "sentinel_own_index": spec.own_column or 0,
            "sentinel_n_watch": n_watch, "sentinel_watch_all": int(spec.watch is None),
            "sentinel_watch_decl": "" if spec.watch is None else
            ("static const ap_uint<16> sentinel_watch_list[SENTINEL_N_WATCH] = {"
             + ", ".join(str(w) for w in spec.watch) + "};")}


def _largest_code(spec: SentinelSpec) -> int:
    """The largest ratio code the comparisons multiply by (the products' width follows it)."""
    return max(spec.ratio_code, spec.own_code)


def manifest_entry(sentinel: dict | None, n_times: int, n_chans: int, input_elem: dict) -> dict | None:
    """``gate.sentinel`` of ``cascade_manifest.json``: the constants and type widths (None: no sentinel)."""
    if sentinel is None:
        return None
    spec = spec_of(sentinel)
    return {**spec.as_dict(), "sample_stride": SAMPLE_STRIDE, "input_bits": input_elem["width"],
            "input_int_bits": input_elem["integer"] - 1, "n_watched": spec.n_watched(n_chans),
            **sizes(n_times, spec.n_watched(n_chans), input_elem["width"], _largest_code(spec))}


# ---------------------------------------------------------------- cost ESTIMATE (not synthesised)
COST_RULE = ("gate sentinel in the top level: one pass over the window buffer after the simple model, one "
             "electrode a cycle (steps x n_chans cycles), then one cycle an electrode for the comparison and "
             "the baseline update, added to every window's latency; no DSP (the ratio is a constant); LUT rough "
             "from operand widths (a 16-bit n_chans:1 multiplexer, subtract-absolute-accumulate, compare), the "
             "line lengths, baselines and last samples as LUTRAM")


def sentinel_cost(n_times: int, n_chans: int, sample_bits: int = 16, stay: bool = False, own: bool = False,
                  n_watch: int | None = None) -> dict:
    """ESTIMATE of the sentinel in the top level (cycles from the code, LUT rough, nothing synthesised).

    Cycles: ``steps * n_chans`` for the line lengths (one electrode a cycle from the buffer word of
    the time step) and ``n_chans`` for the comparison and baseline update; every window pays them
    (``extra_cycles``). LUT: the ``n_chans:1`` multiplexer of a ``sample_bits`` word (one LUT6 per
    4 inputs and bit), the subtract/absolute/accumulate and the compare/update datapath (one LUT per
    bit of each adder, comparator and 2:1 choice), and three ``n_chans``-deep arrays (line lengths,
    baselines, last samples) as LUTRAM (one LUT per bit of width and 64 words). ``stay`` (a stay
    ratio) adds a second comparator and counter in the same pass: LUT, not cycles; so does ``own``
    (the simple model's electrode watched on its own: a comparator and an 8-bit run counter).
    ``n_watch``: the electrodes it reads (default every one): cycles, counter and arrays follow it;
    the multiplexer still selects from the window buffer's ``n_chans`` words.
    """
    steps = len(range(0, n_times, SAMPLE_STRIDE))
    mux = sample_bits * math.ceil(n_chans / 4)
    n_chans = n_chans if n_watch is None else int(n_watch)
    sz = sizes(n_times, n_chans, sample_bits, 3 * RATIO_ONE)
    datapath = 2 * (sample_bits + 1) + 2 * sz["ll_bits"] + 2 * sz["prod_bits"] + 4 * (sz["ll_bits"] + 2)
    if stay:
        datapath += sz["prod_bits"] + sz["count_bits"]
    if own:
        datapath += sz["prod_bits"] + 8
    mem = (2 * sz["ll_bits"] + sample_bits) * math.ceil(n_chans / 64)
    cycles = steps * n_chans + n_chans
    return {"source": "ESTIMATE", "dsp": 0, "bram_18k": 0, "lut": mux + datapath + mem, "extra_cycles": cycles,
            "ll_cycles": steps * n_chans, "update_cycles": n_chans,
            "note": "gate sentinel in the top level: cycles from the code, LUT rough, not synthesised"}


def deployed_sentinel_cost(sentinel: dict | None, n_times: int, n_chans: int, sample_bits: int = 16) -> dict | None:
    """:func:`sentinel_cost` of a deployed sentinel (``deploy.json``'s or the manifest's dict, with
    its ``stay_code``, ``own_code`` and ``watch``: the electrodes it reads, every one of the
    ``n_chans`` without it); None without one."""
    if not sentinel:
        return None
    n_watch = len(sentinel["watch"]) if sentinel.get("watch") else None
    return sentinel_cost(n_times, n_chans, sample_bits, n_watch=n_watch, stay=bool(sentinel.get("stay_code")),
                         own=bool(sentinel.get("own_code")))
