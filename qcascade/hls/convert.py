"""hls4ml 1.3.0 conversion (Vitis backend, io_stream) with measured, explicit per-layer types.

hls4ml's default types (``ap_fixed<16,6>``, truncation, wrap-around) silently overflow and gave
~50 % decision agreement (shared facts note), so :func:`make_hls_config` assigns a type to every
layer by a small type inference over the (BN-folded) Keras graph:

* QKeras quantizers (inputs, weights, ReLUs, sigmoids, ``*_q``, logits) fix their own types;
  hls4ml reads them, and the Keras forward pass applies the same rounding (RND_CONV) and saturation;
* every *linear* result (conv/dense sums, products, sums/differences, averages) gets the exact
  fractional bits of its inputs (``F_in + F_w`` for a product) and integer bits measured on the
  calibration windows (``int_bits_for_range(max|y| * headroom) + sign``), capped at
  ``policy.wide_bits`` (fractional bits are dropped first), RND_CONV + SAT;
* pooling accumulators hold the exact sum (``I_in + log2 N`` integer, ``F_in + log2 N`` fractional
  bits, so power-of-two averages are exact); max-pooling and data movement keep the input type.

With these types the C simulation is exact fixed-point arithmetic. The only differences to Keras
come from QKeras computing in float32 (wide sums; ``quantized_relu`` casts to float32): at a
quantizer rounding tie a 16-bit activation can flip by one LSB. Measured on 272 synthetic windows:
decisions 100 % equal for all models; logits within 1 LSB (simple A/B/C) and 8 LSB (complex, where a
flip can cross an 8-bit ReLU step). Layers hls4ml inserts itself (zero padding, stream clones) inherit
their input types.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from qcascade.errors import ConfigError, QCascadeError
from qcascade.hls.identifiers import check_identifier, validate_hls_config
from qcascade.io_utils import atomic_write_text
from qcascade.quant import FixedType, QuantPolicy, int_bits_for_range, profile_ranges, quantizer_type
from qcascade.package_data import HLS_CONFIGS, resource_dir



TEMPLATE_DIR = HLS_CONFIGS


@contextlib.contextmanager
def hls4ml_quirks():
    """Silence two warnings hls4ml 1.3.0 raises on every QKeras model, and only those.

    * its Keras parser and its project writer serialise each layer config, and
      ``keras.constraints.serialize`` warns about the QKeras quantizers in the constraint slots;
    * its pointwise-conv pass copies a layer's attributes into a new node, then sets ``strategy``
      again (lowercase -> capitalised), which warns "Overriding attribute 'strategy'".
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The `keras\.constraints\.serialize\(\)` API",
                                category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Overriding attribute 'strategy' of layer .*\(PointwiseConv",
                                category=UserWarning)
        yield


def validate_identifier(name: str, what: str) -> str:
    """Raise :class:`ConfigError` unless ``name`` is a usable C/C++ identifier (see :mod:`.identifiers`)."""
    return check_identifier(what, name)


_PASS = {"Reshape", "Permute", "UpSampling1D", "Dropout", "Flatten", "ZeroPadding1D",
         "MaxPooling1D", "GlobalMaxPooling1D"}


def infer_types(model, policy: QuantPolicy, X: np.ndarray) -> dict[str, dict[str, FixedType]]:
    """Per-layer hls4ml types (``result`` and where relevant ``accum`` / ``dw_output``).

    Args:
        model: export graph (Keras functional model of supported layers).
        policy: quantization policy (headroom, wide_bits, input type).
        X: calibration windows ``(n, n_times, n_chans)``.

    Returns:
        ``{layer_name: {"result": FixedType, ...}}`` (QActivation layers are absent: hls4ml takes
        their types from the quantizers).
    """
    prof = profile_ranges(model, X)
    wide = policy.wide_bits
    out: dict[str, FixedType] = {}
    cfg: dict[str, dict[str, FixedType]] = {}

    def measured(name: str, frac: int) -> FixedType:
        i = int_bits_for_range(prof[name]["out_max_abs"], policy.headroom) + 1
        return FixedType(True, i, max(0, min(frac, wide - i)))

    for layer in model.layers:
        cls, name = layer.__class__.__name__, layer.name
        ins = layer.inbound_nodes[0].inbound_layers if layer.inbound_nodes else []
        tin = [out[l.name] for l in (ins if isinstance(ins, list) else [ins])]
        if cls == "InputLayer":
            i = policy.input_int_bits
            t = FixedType(True, i + 1, policy.input_bits - 1 - i)
        elif cls == "QActivation":
            out[name] = quantizer_type(layer.quantizer)
            continue
        elif cls in ("QConv1D", "QDense"):
            tw = quantizer_type(layer.kernel_quantizer_internal)
            tb = quantizer_type(layer.bias_quantizer_internal) if layer.use_bias else None
            t = measured(name, max(tin[0].frac + tw.frac, tb.frac if tb else 0))
        elif cls == "QSeparableConv1D":
            tdw = quantizer_type(layer.depthwise_quantizer_internal)
            tpw = quantizer_type(layer.pointwise_quantizer_internal)
            tb = quantizer_type(layer.bias_quantizer_internal) if layer.use_bias else None
            dw = np.asarray(layer.depthwise_quantizer_internal(layer.depthwise_kernel))
            in_max = prof[ins.name if not isinstance(ins, list) else ins[0].name]["out_max_abs"]
            bound = in_max * float(np.max(np.sum(np.abs(dw), axis=0)))
            i_dw = int_bits_for_range(bound) + 1  # analytic bound: internal, not measurable in Keras
            t_dw = FixedType(True, i_dw, max(0, min(tin[0].frac + tdw.frac, wide - i_dw)))
            t = measured(name, max(t_dw.frac + tpw.frac, tb.frac if tb else 0))
            cfg[name] = {"dw_output": t_dw}
        elif cls in ("AveragePooling1D", "GlobalAveragePooling1D"):
            n_pool = layer.pool_size[0] if cls == "AveragePooling1D" else layer.input_shape[1]
            g = math.ceil(math.log2(max(2, n_pool)))
            # sum/N is computed in accum_t: exact for N = 2**g, else keep 8 guard bits.
            f = tin[0].frac + g + (0 if n_pool == 2 ** g else 8)
            acc = FixedType(True, tin[0].integer + g + (0 if tin[0].signed else 1), f)
            t = measured(name, f)
            cfg[name] = {"accum": acc}
        elif cls in _PASS:
            t = tin[0]
            if "Pooling" in cls:
                cfg[name] = {"accum": t}
        elif cls == "Concatenate":
            sgn = any(x.signed for x in tin)
            t = FixedType(sgn, max(x.integer + (1 if sgn and not x.signed else 0) for x in tin),
                          max(x.frac for x in tin))
        elif cls in ("Add", "Subtract"):
            t = measured(name, max(x.frac for x in tin))
        elif cls == "Multiply":
            t = measured(name, sum(x.frac for x in tin))
        elif cls == "BatchNormalization":
            t = measured(name, wide)
            cfg[name] = {"scale": FixedType(True, 8, 16), "bias": FixedType(True, 8, 16)}
        else:
            raise QCascadeError(f"layer {name!r}: no hls4ml type rule for {cls}")
        out[name] = t
        cfg.setdefault(name, {})["result"] = t
    return cfg


def make_hls_config(model, policy: QuantPolicy, calib_X: np.ndarray, *, project_name: str,
                    namespace: str, part: str = "xcu250-figd2104-2L-e", clock_period: float = 5.0,
                    reuse_factor: int = 1, strategy: str = "Latency", io_type: str = "io_stream",
                    overrides: dict | None = None) -> dict:
    """Measured per-layer hls4ml configuration for an export (BN-folded) model.

    Args:
        model: export graph (``fold_batchnorm`` output); must end in logits, no softmax.
        policy: quantization policy (``headroom``, ``wide_bits``, input type).
        calib_X: calibration windows ``(n, n_times, n_chans)`` for range measurement.
        project_name, namespace: C++ identifiers, distinct per submodel.
        part, clock_period, reuse_factor, strategy, io_type: backend settings.
        overrides: optional ``{"LayerName": {layer: {"Precision": {...}}}, "Model": {...}}`` applied
            last (e.g. from ``hls_configs/<model>.yaml``).

    Returns:
        ``{"Backend", "Part", "ClockPeriod", "IOType", "ProjectName", "Namespace", "HLSConfig"}``.
    """
    import hls4ml

    overrides = overrides or {}
    validate_identifier(project_name, "project_name")
    validate_identifier(namespace, "namespace")
    _check_exportable(model)
    # Template values win over the keyword defaults (they are the user-editable settings).
    # "auto" (hls_configs/*.yaml): sized later by qcascade.hls.design; the keyword default until then.
    mo = {k: v for k, v in (overrides.get("Model", {}) or {}).items() if v != "auto"}
    overrides = {**overrides, "Model": mo} if "Model" in overrides else overrides
    reuse_factor, strategy = mo.get("ReuseFactor", reuse_factor), mo.get("Strategy", strategy)
    part, clock_period = overrides.get("Part", part), overrides.get("ClockPeriod", clock_period)
    io_type = overrides.get("IOType", io_type)
    if io_type not in ("io_stream", "io_parallel"):
        raise ConfigError(f"IOType must be io_stream or io_parallel, got {io_type!r}")
    with hls4ml_quirks():
        base = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis",
                                                    default_precision="fixed<16,6>",
                                                    default_reuse_factor=int(reuse_factor))
    base["Model"]["Strategy"] = strategy
    types = infer_types(model, policy, calib_X)
    for lname, lcfg in base["LayerName"].items():
        t = types.get(lname) or types.get(lname[: -len("_linear")] if lname.endswith("_linear") else "")
        if t is None:
            continue
        prec = lcfg.setdefault("Precision", {})
        for key, ftype in t.items():
            if lname.endswith("_linear") and key != "result":
                continue
            prec[key] = str(ftype)
        lcfg["Trace"] = False
    base["Model"]["ReuseFactor"] = int(reuse_factor)
    cfg = {"Backend": "Vitis", "Part": part, "ClockPeriod": float(clock_period), "IOType": io_type,
           "ProjectName": project_name, "Namespace": namespace, "HLSConfig": base}
    return validate_hls_config(apply_overrides(cfg, overrides), "hls config")


def apply_overrides(cfg: dict, overrides: dict) -> dict:
    """Merge a template/user YAML mapping into ``cfg`` (top-level keys and ``HLSConfig`` parts)."""
    for key, val in overrides.items():
        if key in ("Model", "LayerName", "LayerType"):
            dst = cfg["HLSConfig"].setdefault(key, {})
            _deep_merge(dst, val)
        elif key == "HLSConfig":
            _deep_merge(cfg["HLSConfig"], val)
        elif key in ("Part", "ClockPeriod", "IOType", "Backend", "ProjectName", "Namespace"):
            cfg[key] = val
        else:
            raise ConfigError(f"unknown hls config key {key!r}")
    return cfg


def _deep_merge(dst: dict, src: dict) -> None:
    for k, v in (src or {}).items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_merge(dst[k], v)
        else:
            dst[k] = v


def _check_exportable(model) -> None:
    for layer in model.layers:
        cls = layer.__class__.__name__
        act = getattr(layer, "activation", None)
        if cls in ("Softmax", "Lambda") or getattr(act, "__name__", "") == "softmax":
            raise QCascadeError(f"layer {layer.name!r} ({cls}) cannot be exported: models output logits")


def load_template(name: str) -> dict:
    """User-tunable defaults from ``hls_configs/<name>.yaml``.

    Raises:
        ConfigError: no template for ``name`` (a missing template would silently drop the
            precisions and sizing the converted design depends on).
    """
    path = resource_dir("hls_configs") / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: hls4ml config template for '{name}' not found")
    return read_hls_config_yaml(path)


def write_hls_config_yaml(cfg: dict, path) -> Path:
    """Write ``cfg`` as a human-editable YAML file (atomically)."""
    import yaml

    text = yaml.safe_dump(_plain(cfg), sort_keys=False, default_flow_style=False)
    return atomic_write_text(path, text)


def read_hls_config_yaml(path) -> dict:
    """Read a YAML config written by :func:`write_hls_config_yaml` (or a hand-edited template)."""
    from qcascade.strict_yaml import load_yaml

    data = load_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: hls config must be a mapping")
    return validate_hls_config(data, str(path))


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.generic,)):
        return x.item()
    if isinstance(x, (FixedType,)):
        return str(x)
    return x


def convert_model(model, hls_cfg: dict, out_dir, *, project_name: str, namespace: str,
                  io_type: str = "io_stream", compile: bool = True, write_weights_txt: bool = True,
                  trace: bool = False, input_data_tb: str | None = None,
                  output_data_tb: str | None = None):
    """Convert with hls4ml (Vitis backend) and optionally compile the C++ model with g++.

    Args:
        model: export graph (BN folded, logits output).
        hls_cfg: from :func:`make_hls_config` (or :func:`read_hls_config_yaml`).
        out_dir: project directory (created).
        project_name, namespace: C++ identifiers; must differ between the submodels of one design.
        io_type: ``io_stream`` (required for the 512x128 complex model).
        compile: build the shared library for ``predict``/``trace``.
        write_weights_txt: text weights (fast compile) vs weights compiled into headers.
        trace: enable per-layer trace output (``hls_model.trace``).
        input_data_tb, output_data_tb: ``.npy``/``.dat`` test-bench data for csim/cosim.

    Returns:
        The ``hls4ml`` ModelGraph; ``hls_model.qcascade_compile_seconds`` holds the g++ time.
    """
    import copy

    import hls4ml

    validate_identifier(project_name, "project_name")
    validate_identifier(namespace, "namespace")
    validate_hls_config(hls_cfg, "hls config")  # nothing unchecked reaches project.tcl or the C++
    _check_exportable(model)
    hcfg = copy.deepcopy(hls_cfg["HLSConfig"])
    if trace:
        for lcfg in hcfg.get("LayerName", {}).values():
            lcfg["Trace"] = True
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with hls4ml_quirks():
        hls_model = hls4ml.converters.convert_from_keras_model(
            model, output_dir=str(out_dir), project_name=project_name, namespace=namespace,
            backend="Vitis", hls_config=hcfg, io_type=io_type, part=hls_cfg.get("Part"),
            clock_period=hls_cfg.get("ClockPeriod", 5.0), write_weights_txt=write_weights_txt,
            input_data_tb=input_data_tb, output_data_tb=output_data_tb)
    hls_model.qcascade_args = dict(model=model, hls_cfg=hls_cfg, out_dir=out_dir, io_type=io_type,
                                   project_name=project_name, namespace=namespace,
                                   write_weights_txt=write_weights_txt, traced=trace)
    hls_model.qcascade_compile_seconds = None
    if compile:
        t0 = time.perf_counter()
        with hls4ml_quirks():  # compile() writes the project, serialising the Keras model again
            hls_model.compile()
        hls_model.qcascade_compile_seconds = time.perf_counter() - t0
    return hls_model


def compile_models(hls_models: list, jobs: int = 2) -> None:
    """``compile()`` several converted models with their g++ builds running concurrently.

    The projects are written one after the other (hls4ml's writer is not known to be
    thread-safe); only the builds, which are subprocesses with their own working directory,
    overlap. Sets ``qcascade_compile_seconds`` on each model (its own build's wall time).
    """
    from concurrent.futures import ThreadPoolExecutor

    with hls4ml_quirks():  # the writer serialises the Keras model again
        for m in hls_models:
            m.write()

    def build(m):
        t0 = time.perf_counter()
        m._compile()
        m.qcascade_compile_seconds = time.perf_counter() - t0

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in [pool.submit(build, m) for m in hls_models]:
            future.result()  # re-raises a failed build
