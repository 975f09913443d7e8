"""The one place that decides which config text may reach generated C++, TCL or shell.

Every string a user can set (run config, ``hls_configs/*.yaml`` templates, a run's editable
``hls/*_config.yaml``) passes one of these checks before hls4ml or qcascade writes it into
``project.tcl``, ``build_prj.tcl``, ``design.tcl``, ``cascade_top.*`` or a g++ command line.
All patterns are full matches (``\\A...\\Z``): ``re.match(r"^...$")`` accepts a trailing newline,
which is a command separator in TCL.
"""

from __future__ import annotations

import keyword
import math
import re
from typing import Any

import numpy as np

from qcascade.errors import ConfigError

_IDENT = re.compile(r"\A[A-Za-z][A-Za-z0-9_]{0,62}\Z")
_TOKEN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.:%+-]{0,127}\Z")
_SAFE_VALUE = re.compile(r"\A[A-Za-z0-9_.,<>%+-]{0,128}\Z")
_PART = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
# hls4ml precision strings: fixed<W,I[,Q[,O[,N]]]>, ufixed<...>, int<W>, uint<W>, optional ap_ prefix.
_PRECISION = re.compile(r"\A(?:ap_)?(?:u?fixed<\d{1,4},-?\d{1,4}(?:,[A-Z][A-Z0-9_]{0,15}){0,2}(?:,\d{1,3})?>"
                        r"|u?int<\d{1,4}>|auto)\Z")
_CXX_RESERVED = frozenset(
    "alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t "
    "class compl concept const consteval constexpr constinit const_cast continue co_await co_return "
    "co_yield decltype default delete do double dynamic_cast else enum explicit export extern false "
    "float for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr "
    "operator or or_eq private protected public register reinterpret_cast requires return short "
    "signed sizeof static static_assert static_cast struct switch template this thread_local throw "
    "true try typedef typeid typename union unsigned using virtual void volatile wchar_t while xor "
    "xor_eq main std hls nnet ap_fixed ap_int ap_uint ap_ufixed".split())


def check_identifier(label: str, value: Any) -> str:
    """Return ``value`` if it is a plain C++/TCL identifier, else raise ConfigError naming ``label``."""
    if (not isinstance(value, str) or not _IDENT.match(value) or "__" in value
            or value in _CXX_RESERVED or keyword.iskeyword(value)):
        raise ConfigError(f"{label}: {value!r} is not a plain identifier ([A-Za-z][A-Za-z0-9_]*, no '__', "
                          "not a C++ keyword)")
    return value


def check_name(label: str, value: Any) -> str:
    """Return ``value`` if it is a layer or precision name (identifier characters; keywords allowed:
    hls4ml appends a suffix, e.g. ``default`` -> ``default_t``)."""
    if not isinstance(value, str) or not _IDENT.match(value):
        raise ConfigError(f"{label}: {value!r} is not a name ([A-Za-z][A-Za-z0-9_]*)")
    return value


def check_token(label: str, value: Any) -> str:
    """Return ``value`` if it is a safe token (hashes, '12.5%'), else raise ConfigError."""
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise ConfigError(f"{label}: {value!r} must match {_TOKEN.pattern}")
    return value


def check_part(label: str, value: Any) -> str:
    """Return ``value`` if it looks like an FPGA part name (``xcu250-figd2104-2L-e``)."""
    if not isinstance(value, str) or not _PART.match(value):
        raise ConfigError(f"{label}: {value!r} is not an FPGA part name (letters, digits, '-', '_', '.')")
    return value


def check_int(label: str, value: Any, lo: int, hi: int) -> int:
    """Return ``value`` if it is an int (not bool) in ``[lo, hi]``, else raise ConfigError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ConfigError(f"{label}: {value!r} must be an integer in [{lo}, {hi}]")
    return int(value)


def check_number(label: str, value: Any, lo: float, hi: float, hi_open: bool = False) -> float:
    """Return ``value`` as float if finite and in ``[lo, hi]`` (or ``[lo, hi)``), else raise."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    if not (math.isfinite(v) and lo <= v and (v < hi if hi_open else v <= hi)):
        raise ConfigError(f"{label}: {value!r} must be a finite number in [{lo}, {hi}{')' if hi_open else ']'}")
    return v


def check_precision(label: str, value: Any) -> str:
    """Return ``value`` if it is an hls4ml precision string (``fixed<16,6,RND_CONV,SAT>``)."""
    if not isinstance(value, str) or not _PRECISION.match(value.replace(" ", "")):
        raise ConfigError(f"{label}: {value!r} is not an hls4ml precision (e.g. fixed<16,6,RND_CONV,SAT>, "
                          "ufixed<8,0>, int<8>)")
    return value


def _check_clock_uncertainty(label: str, value: Any) -> Any:
    if isinstance(value, str):
        if not re.fullmatch(r"\d{1,3}(\.\d{1,6})?%", value):
            raise ConfigError(f"{label}: {value!r} must be a number or a percentage such as '12.5%'")
        return value
    return check_number(label, value, 0.0, 1000.0)


_LAYER_KEYS = {  # per-layer / per-type / Model keys hls4ml reads, and their check
    # "auto": chosen per layer from the real-time budget (qcascade.hls.design) before hls4ml sees it.
    "ReuseFactor": lambda k, v: v if v == "auto" else check_int(k, v, 1, 1 << 20),
    "ParallelizationFactor": lambda k, v: check_int(k, v, 1, 1 << 20),
    "BramFactor": lambda k, v: check_int(k, v, 0, 1 << 40),
    "Strategy": lambda k, v: _one_of(k, v, ("auto", "Latency", "Resource", "latency", "resource", "Skip")),
    "Trace": lambda k, v: _bool(k, v),
    "TraceOutput": lambda k, v: _bool(k, v),
    "ConvImplementation": lambda k, v: _one_of(k, v, ("LineBuffer", "Encoded")),
    "Implementation": lambda k, v: check_identifier(k, v),
    "table_size": lambda k, v: check_int(k, v, 1, 1 << 24),
    "table_t": lambda k, v: check_precision(k, v),
    "exp_table_t": lambda k, v: check_precision(k, v),
    "inv_table_t": lambda k, v: check_precision(k, v),
}


def _one_of(label: str, value: Any, choices: tuple) -> Any:
    if value not in choices:
        raise ConfigError(f"{label}: {value!r} is not one of {', '.join(choices)}")
    return value


def _bool(label: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{label}: expected true/false, got {value!r}")
    return value


def _check_layer(label: str, cfg: Any) -> None:
    if not isinstance(cfg, dict):
        raise ConfigError(f"{label}: expected a mapping, got {cfg!r}")
    for key, value in cfg.items():
        where = f"{label}.{key}"
        if key == "Precision":
            if isinstance(value, dict):
                for pkey, pval in value.items():
                    check_name(f"{where} key", pkey)
                    check_precision(f"{where}.{pkey}", pval)
            else:
                check_precision(where, value)
        elif key in _LAYER_KEYS:
            _LAYER_KEYS[key](where, value)
        else:
            check_name(f"{label} key", key)
            _check_plain_value(where, value)


def _check_plain_value(label: str, value: Any) -> None:
    """Any other hls4ml setting: a finite number, a bool, or a string of token characters."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_name(f"{label} key", k)
            _check_plain_value(f"{label}.{k}", v)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain_value(f"{label}[{i}]", v)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        check_number(label, value, -1e300, 1e300)
    elif not isinstance(value, str) or not _SAFE_VALUE.match(value.replace(" ", "")):
        raise ConfigError(f"{label}: {value!r} must be a number, true/false, or text of letters, digits "
                          "and _ . , < > % + - (no quotes, brackets, braces, $, ; or line breaks)")


def validate_hls_config(cfg: dict, where: str) -> dict:
    """Check every value of an hls4ml config mapping (top level and ``HLSConfig``, or a template).

    Args:
        cfg: as read from ``hls_configs/<model>.yaml`` or ``<unit>/hls/<name>_config.yaml``.
        where: the file, prefixed to every message.

    Returns:
        ``cfg`` unchanged.

    Raises:
        ConfigError: naming the file and key of the first value that is not a validated
            identifier, part name, number or precision.
    """
    def fail(exc: ConfigError):
        raise ConfigError(f"{where}: {exc}") from None

    try:
        for key, value in cfg.items():
            if key == "Part":
                check_part(key, value)
            elif key == "ClockPeriod":
                check_number(key, value, 0.1, 1000.0)
            elif key == "ClockUncertainty":
                _check_clock_uncertainty(key, value)
            elif key == "IOType":
                _one_of(key, value, ("io_stream", "io_parallel"))
            elif key == "Backend":
                _one_of(key, value, ("Vitis",))
            elif key in ("ProjectName", "Namespace"):
                check_identifier(key, value)
            elif key == "qcascade_model_hash":
                check_token(key, value)
            elif key == "qcascade_auto":  # {layer: ReuseFactor} the sizing wrote (hand edits are detected)
                _check_auto_record(key, value)
            elif key in ("Model", "LayerName", "LayerType", "HLSConfig"):
                _check_hls_section(key, value)
            else:
                raise ConfigError(f"{key}: unknown hls config key (known: Part, ClockPeriod, ClockUncertainty, "
                                  "IOType, Backend, ProjectName, Namespace, Model, LayerName, LayerType, HLSConfig)")
    except ConfigError as exc:
        fail(exc)
    return cfg


def _check_auto_record(key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping of layer name to ReuseFactor, got {value!r}")
    for name, rf in value.items():
        check_name(f"{key} entry", name)
        check_int(f"{key}.{name}", rf, 1, 1 << 20)


def _check_hls_section(key: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping, got {value!r}")
    if key == "HLSConfig":
        for sub, subval in value.items():
            if sub not in ("Model", "LayerName", "LayerType"):
                raise ConfigError(f"HLSConfig.{sub}: unknown section (Model, LayerName, LayerType)")
            _check_hls_section(sub, subval)
        return
    if key == "Model":
        _check_layer("Model", value)
        return
    for name, layer_cfg in value.items():
        check_name(f"{key} entry", name)
        _check_layer(f"{key}.{name}", layer_cfg)
