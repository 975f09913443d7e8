"""ReuseFactor / Strategy per layer from the real-time budget, and safe stream-FIFO depths.

The application needs one decision per window stride (1 s by default). The cycle budget of the
worst-case cascade (simple model, then the complex model on the buffered window) is

    budget_cycles = window_stride_s / clock_period / realtime_safety          (safety 100 by default)

so the estimated worst case leaves a real-time margin of at least ``realtime_safety``: room for
host I/O, clock derating and the estimate's error. Within that budget the design is made as
*small* as possible: every layer starts at its largest valid ReuseFactor (fewest multipliers,
weights in BRAM) and the layer with the longest latency is sped up (next smaller valid
ReuseFactor, at most half the current one) until the budget holds. A layer never exceeds
:data:`~qcascade.hls.estimate.MAX_PARALLEL_PRODUCTS` parallel products. Then the estimate is
checked against the target's DSP/BRAM/LUT (:func:`qcascade.hls.estimate.estimate_cascade`): the
smallest design that meets the budget is the one most likely to fit.

With ``data.input_scaling: causal_robust`` the top level also scales every sample
(:func:`qcascade.hls.scaling_hw.scaling_cost`); its cycles count against the same budget
(:func:`choose_scaled`): one scaling lane (one multiplier) first, with the layers sped up to absorb
its cycles, and more lanes (powers of two) only when the layers cannot.

ReuseFactors are restricted to hls4ml's valid values (``get_valid_reuse_factors`` of the Vitis
backend, the rule its Resource strategy enforces); ReuseFactor 1 uses the Latency strategy and
anything larger the Resource strategy. A separable convolution is split by hls4ml into a
depthwise and a pointwise layer that share the Keras layer's settings, so its ReuseFactor is
valid for both.

FIFO depths: hls4ml sizes every stream for a whole tensor. A stream whose consumer reads as the
producer writes cannot deadlock with :data:`CHAIN_FIFO_DEPTH` words (the producer stalls until the
consumer reads; throughput is bounded by the slower layer anyway). The exception is a fork/join:
when a stream clone feeds two branches that meet again, one branch may hold back its first word
until it has read the whole tensor (global pooling, transpose) while the other must buffer what the
clone keeps writing. A barrier-free branch's stream *into the join* keeps hls4ml's full depth
(:func:`fifo_depths`): it holds the branch's whole output, so the branch never waits on the join
and consumes the clone's copy as it is written; its streams before that one are chains like any
other. hls4ml's measured FIFO optimisation needs Vitis cosim; this bound does not, and is never
smaller than what a feed-forward stream needs.
"""

from __future__ import annotations

import functools
import math

from qcascade.hls import scaling_hw
from qcascade.hls.estimate import MAX_PARALLEL_PRODUCTS, estimate_model

CHAIN_FIFO_DEPTH = 2
_MATMUL = ("Conv1D", "PointwiseConv1D", "DepthwiseConv1D", "Dense")
_MERGE = ("Merge", "Concatenate")
_BARRIERS = ("GlobalPooling1D", "Transpose")


def _precision_bits(precision) -> int:
    return int(getattr(precision, "width", 0) or 0)


def describe_graph(hls_model, model: str) -> list[dict]:
    """The layer table of a converted (not necessarily written) hls4ml io_stream model.

    Args:
        hls_model: hls4ml ``ModelGraph``.
        model: label stored in each row (``"simple"`` / ``"complex"``).

    Returns:
        One dict per layer in the fields of :mod:`qcascade.hls.estimate`, plus ``model``,
        ``config_name`` (the HLSConfig ``LayerName`` key: the Keras layer), ``inputs`` (stream names),
        ``n_in``/``n_out`` (hls4ml's multiplication size, for valid ReuseFactors).
    """
    variables = hls_model.output_vars
    ports = set(hls_model.inputs) | set(hls_model.outputs)
    rows = []
    for layer in hls_model.get_layers():
        cls = layer.class_name
        ins = [variables[i] for i in layer.inputs if i in variables]
        in_steps = max((_steps(v.shape) for v in ins), default=0)
        out_keys = [o for o in layer.outputs if o in variables]
        outs = [variables[o] for o in out_keys]
        out_steps = max((_steps(v.shape) for v in outs), default=0)
        row = {"model": model, "name": layer.name, "config_name": layer.name, "class_name": cls,
               "kind": "move", "in_steps": in_steps, "out_steps": out_steps, "products": 0,
               "weight_bits": 0, "n_weights": 0, "input_bits": max((_precision_bits(v.type.precision) for v in ins),
                                                                    default=0),
               "result_bits": max((_precision_bits(v.type.precision) for v in outs), default=0),
               "reuse_factor": int(layer.get_attr("reuse_factor", 1) or 1),
               "strategy": str(layer.get_attr("strategy", "latency")).lower(), "inputs": list(layer.inputs),
               "outputs": []}
        for key, v in zip(out_keys, outs):
            pragma = getattr(v, "pragma", None)
            # The model's input and output streams are ports (AXI-Stream), not FIFOs.
            if isinstance(pragma, tuple) and pragma[0] == "stream" and key not in ports:
                row["outputs"].append({"name": key, "depth": int(pragma[1]),
                                       "width_bits": _channels(v.shape) * _precision_bits(v.type.precision)})
        if cls == "Input":
            row["kind"] = "input"
        elif cls in _MATMUL:
            w = layer.weights.get("weight")
            row.update(kind="matmul", weight_bits=_precision_bits(w.type.precision), n_weights=int(w.data.size))
            if cls == "Dense":
                n_in, n_out = layer.get_attr("n_in"), layer.get_attr("n_out")
                row["products"] = n_in * n_out
            else:
                n_in, n_out = layer.get_attr("n_chan") * layer.get_attr("filt_width"), layer.get_attr("n_filt")
                row["products"] = n_in if cls == "DepthwiseConv1D" else n_in * n_out
            row.update(n_in=int(n_in), n_out=int(n_out))
            base = _split_base(layer.name, cls)
            if base is not None:
                row["config_name"] = base
        elif cls in _MERGE and len(ins) > 1:
            row["kind"] = "merge"
            if str(layer.get_attr("op", "")).lower() == "multiply":
                row["products"] = _channels(outs[0].shape)
                row["weight_bits"] = min(_precision_bits(v.type.precision) for v in ins)
                row["n_in"], row["n_out"] = row["products"], 1
        rows.append(row)
    return rows


def _steps(shape) -> int:
    return int(shape[0]) if len(shape) > 1 else 1


def _channels(shape) -> int:
    return int(shape[-1])


def _split_base(name: str, cls: str) -> str | None:
    for suffix, kind in (("_depthwise", "DepthwiseConv1D"), ("_pointwise", "PointwiseConv1D")):
        if cls == kind and name.endswith(suffix):
            return name[: -len(suffix)]
    return None


@functools.lru_cache(maxsize=None)
def valid_reuse_factors(n_in: int, n_out: int) -> tuple[int, ...]:
    """hls4ml's valid ReuseFactors for an ``n_in x n_out`` multiplication (Vitis backend)."""
    from hls4ml.backends import get_backend

    return tuple(get_backend("Vitis").get_valid_reuse_factors(int(n_in), int(n_out)))


def _merge_factors(n: int) -> tuple[int, ...]:
    return tuple(d for d in range(1, n + 1) if n % d == 0)


def layer_groups(tables: dict[str, list[dict]]) -> dict[tuple[str, str], dict]:
    """Configurable units: ``(model, config_name)`` -> ``{"rows", "choices"}`` (ascending valid RFs).

    A separable convolution's depthwise and pointwise rows form one unit (one Keras layer); its
    choices are the ReuseFactors valid for both.
    """
    groups: dict[tuple[str, str], dict] = {}
    for model, rows in tables.items():
        for row in rows:
            if row["kind"] == "matmul":
                choices = set(valid_reuse_factors(row["n_in"], row["n_out"]))
            elif row["kind"] == "merge" and row["products"]:
                choices = set(_merge_factors(row["products"]))
            else:
                continue
            g = groups.setdefault((model, row["config_name"]), {"rows": [], "choices": None})
            g["rows"].append(row)
            g["choices"] = choices if g["choices"] is None else g["choices"] & choices
    for key, g in groups.items():
        g["choices"] = sorted(g["choices"] or {1})
        # Never more than MAX_PARALLEL_PRODUCTS multipliers in one layer.
        ok = [rf for rf in g["choices"]
              if all(math.ceil(r["products"] / rf) <= MAX_PARALLEL_PRODUCTS for r in g["rows"])]
        g["choices"] = ok or g["choices"][-1:]
    return groups


def _apply(tables, groups, plan) -> None:
    for key, g in groups.items():
        rf = plan[key]
        for row in g["rows"]:
            row["reuse_factor"] = rf
            row["strategy"] = "latency" if rf == 1 else "resource"


def cascade_latency(tables: dict[str, list[dict]], n_times: int, clock_ns: float, family: str = "") -> int:
    """Worst-case cascade latency in cycles (as :func:`qcascade.hls.estimate.estimate_cascade`),
    without the input scaling's cycles."""
    return sum(estimate_model(rows, clock_ns, family)["latency_cycles"] for rows in tables.values()) + 2 * n_times


def choose_reuse(tables: dict[str, list[dict]], *, budget_cycles: float, n_times: int, clock_ns: float,
                 family: str = "", fixed: dict[tuple[str, str], int] | None = None, extra_cycles: int = 0) -> dict:
    """Pick a ReuseFactor per configurable layer (rule in the module docstring); updates ``tables``.

    Args:
        tables: ``{"simple": rows, "complex": rows}`` from :func:`describe_graph`.
        budget_cycles: cycle budget of the worst-case cascade.
        n_times: window length (the top level reads and replays it: ``2 * n_times`` cycles).
        clock_ns, family: target clock and family (for the estimate).
        fixed: ``(model, config_name) -> ReuseFactor`` set by the user; kept as given.
        extra_cycles: cycles of the top level outside both models (the input scaling's), counted in
            ``latency_cycles``.

    Returns:
        ``{"plan": {(model, config_name): rf}, "latency_cycles", "budget_cycles", "meets_budget"}``.
    """
    fixed = fixed or {}
    groups = layer_groups(tables)
    plan = {k: int(fixed[k]) if k in fixed else g["choices"][-1] for k, g in groups.items()}
    _apply(tables, groups, plan)
    latency = cascade_latency(tables, n_times, clock_ns, family) + extra_cycles
    while latency > budget_cycles:
        best, best_lat = None, -1
        for key, g in groups.items():
            if key in fixed:
                continue
            smaller = [rf for rf in g["choices"] if rf <= plan[key] // 2] or \
                      [rf for rf in g["choices"] if rf < plan[key]][-1:]
            if not smaller:
                continue
            lat = sum(_row_latency(r, family) for r in g["rows"])
            if lat > best_lat:
                best, best_lat = (key, smaller[-1]), lat
        if best is None:
            break
        plan[best[0]] = best[1]
        _apply(tables, groups, plan)
        latency = cascade_latency(tables, n_times, clock_ns, family) + extra_cycles
    return {"plan": plan, "latency_cycles": latency, "budget_cycles": budget_cycles,
            "meets_budget": latency <= budget_cycles}


def choose_scaled(tables: dict[str, list[dict]], *, budget_cycles: float, n_times: int, n_chans: int,
                  clock_ns: float, family: str = "", fixed: dict[tuple[str, str], int] | None = None,
                  extra_cycles: int = 0) -> dict:
    """:func:`choose_reuse` for a design that scales its input (``data.input_scaling: causal_robust``).

    The scaling's cycles (:func:`qcascade.hls.scaling_hw.scaling_cost`) count against the same
    budget. One lane (one multiplier) first, the layers sped up to absorb its cycles; more lanes only
    when the layers cannot (every ReuseFactor at its smallest choice, or fixed by the user).

    Returns:
        :func:`choose_reuse`'s result with ``latency_cycles`` including the scaling, and
        ``scale_lanes`` (the largest choice, with ``meets_budget`` False, when none meets the budget).
    """
    for lanes in scaling_hw.lane_choices(n_chans):
        extra = scaling_hw.scaling_cost(n_times, n_chans, lanes, family)["extra_cycles"] + extra_cycles
        res = choose_reuse(tables, budget_cycles=budget_cycles, n_times=n_times, clock_ns=clock_ns, family=family,
                           fixed=fixed, extra_cycles=extra)
        if res["meets_budget"]:
            break
    return {**res, "scale_lanes": lanes}


def scale_lanes_for(models_latency: int, *, budget_cycles: float, n_times: int, n_chans: int,
                    family: str = "", extra_cycles: int = 0) -> dict:
    """``SCALE_LANES`` of a sized design: the smallest power of two in ``[1, n_chans]`` whose scaling
    keeps the worst-case cascade (``models_latency``, :func:`cascade_latency`) within the budget.

    With the layer tables :func:`choose_scaled` left, this is the lane count it chose.

    Returns:
        ``{"lanes", "latency_cycles" (with the scaling), "budget_cycles", "meets_budget"}``; when no
        lane count meets the budget, the largest one with ``meets_budget`` False (reported, not hidden).
    """
    for lanes in scaling_hw.lane_choices(n_chans):
        latency = models_latency + extra_cycles + scaling_hw.scaling_cost(n_times, n_chans, lanes, family)["extra_cycles"]
        if latency <= budget_cycles:
            break
    return {"lanes": lanes, "latency_cycles": latency, "budget_cycles": budget_cycles,
            "meets_budget": latency <= budget_cycles}


def _row_latency(row: dict, family: str) -> int:
    from qcascade.hls.estimate import layer_estimate

    return layer_estimate(row, family)["latency_cycles"]


def budget_cycles(window_stride_s: float, clock_ns: float, safety: float) -> float:
    """Cycles available for one worst-case cascade decision (module docstring)."""
    return window_stride_s / (clock_ns * 1e-9) / safety


def _barrier(row: dict) -> bool:
    """A layer that emits its first word only after reading its whole input."""
    return row["class_name"] in _BARRIERS or (row["in_steps"] > 1 and row["out_steps"] == 1)


def fifo_depths(rows: list[dict]) -> dict[str, int]:
    """Safe depth per stream (module docstring): :data:`CHAIN_FIFO_DEPTH`, except on fork/join paths.

    For each fork (a layer with several output streams, hls4ml's ``Clone``) and each join (a
    layer with several inputs) that two or more of its branches reach, the stream by which a
    branch's barrier-free path from the fork enters the join keeps hls4ml's full depth: the other
    branch may hold back its first word until it has read the whole tensor, and this stream then
    holds everything its branch makes of the clone's copy. Every other stream, before that one on
    the path, behind a barrier (global pooling, transpose) or on no fork/join path, is consumed as
    it is produced. (Keeping every stream of the path cost the hybrid first block, whose mixed
    branch forks off the 520x128 padded window, 2.6 Mbit of FIFOs: more BRAM than an xc7z020 has.)
    """
    consumers: dict[str, list[dict]] = {}
    for r in rows:
        for i in r["inputs"]:
            consumers.setdefault(i, []).append(r)

    def downstream(var: str) -> set[str]:
        seen, todo = set(), [var]
        while todo:
            v = todo.pop()
            if v not in seen:
                seen.add(v)
                todo += [o["name"] for c in consumers.get(v, []) for o in c["outputs"]]
        return seen

    keep: set[str] = set()
    for fork in rows:
        outs = [o["name"] for o in fork["outputs"]]
        if len(outs) < 2:
            continue
        reached = [{c["name"] for v in downstream(o) for c in consumers.get(v, []) if len(c["inputs"]) > 1}
                   for o in outs]
        shared = {j for j in set().union(*reached) if sum(j in r for r in reached) >= 2}
        for o in outs:
            todo = [(o, [o])]
            while todo:
                var, path = todo.pop()
                for c in consumers.get(var, []):
                    if c["name"] in shared:
                        keep.add(path[-1])
                    elif not _barrier(c):
                        todo += [(n["name"], path + [n["name"]]) for n in c["outputs"]]
    return {o["name"]: (o["depth"] if o["name"] in keep else min(o["depth"], CHAIN_FIFO_DEPTH))
            for r in rows for o in r["outputs"]}


def apply_fifo_depths(hls_model, depths: dict[str, int]) -> None:
    """Set the stream depths on an hls4ml graph before it is written."""
    for name, var in hls_model.output_vars.items():
        pragma = getattr(var, "pragma", None)
        if name in depths and isinstance(pragma, tuple) and pragma[0] == "stream":
            var.pragma = ("stream", int(depths[name]))
