"""Generate the C++ cascade top level that joins two hls4ml projects in one design.

The generated folder (``out_dir``) is self-contained, so it can be copied to a machine with
Vitis HLS / Vivado:

* ``models/<project>/``: a copy of each hls4ml project with its include guards made unique
  per namespace (both hls4ml projects use ``DEFINES_H_``, ``PARAMETERS_H_``, ``W2_H_``...) and
  its text-weight loading switchable off with ``-DQCASCADE_WEIGHTS_INLINE``: one binary holding
  both models must not load text weights, because the loader template expands one
  ``WEIGHTS_DIR`` and equal instantiations are merged across the two models.
* ``cascade_top.{h,cpp}``, ``cascade_tb.cpp``: the top level and its testbench.
* ``build_csim.sh``: the g++ build of :func:`qcascade.hls.csim_build.build_csim`.
* ``design.tcl`` (+ the generic flow scripts) in ``out_dir`` and each model copy: see
  :mod:`qcascade.hls.synth`.
* ``cascade_manifest.json``: all of the above as data (types, threshold, buffer cost, paths).
"""

from __future__ import annotations

import filecmp
import math
import re
import shutil
import string
from pathlib import Path

import numpy as np

from qcascade import __version__
from qcascade.errors import ConfigError
# The checks live in one module; re-exported for the callers that import them from here.
from qcascade.hls.identifiers import check_identifier, check_int, check_number, check_part, check_token  # noqa: F401
from qcascade.io_utils import atomic_write_json, atomic_write_text
from qcascade.gate import GATE_RULES, check_hold, check_ictal_every, hold_ceiling, ictal_min_held, check_probe, check_recheck, quantize_threshold, uses_state
from qcascade.hls import csim_build, scaling_hw, sentinel_hw, synth
from qcascade.hls.gate_hw import GATE_FORMULAS, fuse_values, gate_formula  # noqa: F401
from qcascade.hls.csim_build import build_csim  # noqa: F401  (callers build from here)
# Shared with csim/synth, which must not import this module; re-exported for existing callers.
from qcascade.hls.manifest import (MANIFEST, TEMPLATES, gate_reference, load_manifest, side_inputs,  # noqa: F401
                                   carried_reference, window_buffer_cost, write_windows)

TOP_NAME = "cascade_top"
TB_INPUT = "tb_data/cascade_input.f32"
TB_EXPECTED = "tb_data/cascade_expected.txt"  # the g++ C simulation's results on TB_INPUT
CONTROL_PRAGMAS = {
    "ap_ctrl_hs": "#pragma HLS INTERFACE ap_ctrl_hs port=return",
    "s_axilite": "#pragma HLS INTERFACE s_axilite port=return bundle=control",
}
# prev_load / prev_cls: with the block protocol a valid-qualified input each, read (latched) once
# per call; with AXI-Lite control registers.
PREV_PRAGMAS = {
    "ap_ctrl_hs": "#pragma HLS INTERFACE ap_vld port=prev_load\n    #pragma HLS INTERFACE ap_vld port=prev_cls",
    "s_axilite": "#pragma HLS INTERFACE s_axilite port=prev_load bundle=control\n"
                 "    #pragma HLS INTERFACE s_axilite port=prev_cls bundle=control",
}
GAP_PRAGMAS = {  # the probe's prev_gap input, like prev_cls
    "ap_ctrl_hs": "\n    #pragma HLS INTERFACE ap_vld port=prev_gap",
    "s_axilite": "\n    #pragma HLS INTERFACE s_axilite port=prev_gap bundle=control",
}
HOLD_PRAGMAS = {  # the hold's prev_hold input, like prev_cls
    "ap_ctrl_hs": "\n    #pragma HLS INTERFACE ap_vld port=prev_hold",
    "s_axilite": "\n    #pragma HLS INTERFACE s_axilite port=prev_hold bundle=control",
}
# What the generated header says the rule is (qcascade.gate documents each).
# ---------------------------------------------------------------- hls4ml project introspection
_TYPE = re.compile(r"ap_(u?)(fixed|int)<\s*(\d+)\s*(?:,\s*(-?\d+))?[^<>]*>\Z")


def parse_ap_type(text: str) -> dict:
    """``ap_fixed<16,6,...>`` / ``ap_ufixed`` / ``ap_int`` / ``ap_uint`` -> width, integer, signed."""
    m = _TYPE.match(text.replace(" ", ""))
    if not m or (m.group(2) == "fixed") != (m.group(4) is not None):
        raise ConfigError(f"unsupported element type {text!r}: expected ap_[u]fixed<W,I,...> or ap_[u]int<W>")
    width = int(m.group(3))
    return {"text": text, "width": width, "integer": int(m.group(4)) if m.group(4) else width,
            "signed": m.group(1) == ""}


def inspect_project(prj: str | Path, project: str, namespace: str) -> dict:
    """Read the stream types, window shape and settings of a written hls4ml io_stream project."""
    prj = Path(prj).resolve()
    fw = prj / "firmware"
    need = [fw / f"{project}.cpp", fw / f"{project}.h", fw / "defines.h", prj / f"{project}_bridge.cpp"]
    for path in need:
        if not path.is_file():
            raise ConfigError(f"{path}: missing; is {prj} an hls4ml project named {project!r} (written)?")
    cpp, header, defines = (p.read_text() for p in need[:3])
    if f"namespace {namespace} {{" not in cpp:
        raise ConfigError(f"{need[0]}: does not use namespace {namespace!r} (convert with namespace=...)")
    if re.search(r"nnet::softmax\w*<", cpp):
        raise ConfigError(f"{need[0]}: the model ends in a softmax; the gate needs logits "
                          "(export without softmax or set its Strategy to 'Skip')")
    proto = re.search(rf"void {project}\(\s*hls::stream<(\w+)>\s*&\s*\w+\s*,\s*hls::stream<(\w+)>\s*&\s*\w+\s*\)",
                      header)
    if not proto:
        raise ConfigError(f"{need[1]}: expected one input and one output hls::stream (io_stream, one input)")

    def array_type(name: str) -> dict:
        m = re.search(rf"typedef nnet::array<(.+), ([0-9*\s]+)> {name};", defines)
        if not m:
            raise ConfigError(f"{need[2]}: no 'typedef nnet::array<...> {name};'")
        size = math.prod(int(v) for v in m.group(2).split("*"))
        return {"name": name, "elem": parse_ap_type(m.group(1)), "size": size}

    inp, res = array_type(proto.group(1)), array_type(proto.group(2))
    conv = re.search(rf"convert_data<float, {inp['name']}, ([0-9*]+)>", need[3].read_text())
    if not conv:
        raise ConfigError(f"{need[3]}: cannot read the input size")
    total = math.prod(int(v) for v in conv.group(1).split("*"))
    settings = dict(re.findall(r"^set (part|clock_period|clock_uncertainty) \"?([^\"\n]+)\"?$",
                               (prj / "project.tcl").read_text() if (prj / "project.tcl").is_file() else "", re.M))
    return {"project": project, "namespace": namespace, "source_dir": str(prj), "input": inp, "result": res,
            "n_chans": inp["size"], "n_times": total // inp["size"], "settings": settings,
            "weights_inline": "load_weights_from_txt" not in cpp}


def check_pair(simple: dict, cplx: dict, n_times: int, n_chans: int) -> None:
    """Raise ConfigError unless the two projects fit the cascade (shapes, types, shared code)."""
    problems = []
    if (simple["n_times"], simple["n_chans"]) != (n_times, 1):
        problems.append(f"simple model input is {simple['n_times']}x{simple['n_chans']}, expected {n_times}x1")
    if (cplx["n_times"], cplx["n_chans"]) != (n_times, n_chans):
        problems.append(f"complex model input is {cplx['n_times']}x{cplx['n_chans']}, expected {n_times}x{n_chans}")
    for info in (simple, cplx):
        if info["result"]["size"] != 2:
            problems.append(f"{info['project']}: output has {info['result']['size']} values, expected 2 logits")
    # One quantization of the float window feeds both models: equal types keep both bit-exact.
    a, b = simple["input"]["elem"]["text"], cplx["input"]["elem"]["text"]
    if a.replace(" ", "") != b.replace(" ", ""):
        problems.append(f"input element types differ ({a} vs {b}); set the same input precision")
    types = [Path(i["source_dir"], "firmware", "nnet_utils", "nnet_types.h").read_bytes() for i in (simple, cplx)]
    if types[0] != types[1]:
        problems.append("nnet_utils/nnet_types.h differs: convert both projects with the same hls4ml")
    if problems:
        raise ConfigError("cannot join the hls4ml projects: " + "; ".join(problems))


def same_setting(simple: dict, cplx: dict, key: str) -> str:
    """A project.tcl setting both projects agree on (ConfigError otherwise)."""
    a, b = simple["settings"].get(key), cplx["settings"].get(key)
    if a is None or a != b:
        raise ConfigError(f"project.tcl '{key}' missing or different ({a!r} vs {b!r}); pass it explicitly")
    return a


_GUARD = re.compile(r"^#ifndef (\w+)[ \t]*\n#define \1\b", re.M)
_LOAD_BLOCK = "#ifndef __SYNTHESIS__\n    static bool loaded_weights"
_WEIGHT_BLOCK = re.compile(r"^#ifndef __SYNTHESIS__\n(?=[^\n]*;\n#else\n)", re.M)
_INLINE_COND = "#if !defined(__SYNTHESIS__) && !defined(QCASCADE_WEIGHTS_INLINE)\n"


def copy_project(info: dict, dest: Path) -> None:
    """Copy an hls4ml project to ``dest``, rewriting guards and the weight-loading switch.

    Files whose content is unchanged keep their timestamps, so regenerating (e.g. for another
    tau) does not force :func:`qcascade.hls.csim_build.build_csim` to recompile the models.
    """
    src, project, ns = Path(info["source_dir"]), info["project"], info["namespace"]
    stage = dest.with_name(f".{dest.name}.staging")
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(src / "firmware", stage / "firmware", ignore=shutil.ignore_patterns("*.so", "*.o"))
    for name in (f"{project}_bridge.cpp", f"{project}_test.cpp", "project.tcl"):
        if (src / name).is_file():
            shutil.copy2(src / name, stage / name)
    if (src / "tb_data").is_dir():
        shutil.copytree(src / "tb_data", stage / "tb_data")
    (stage / "tb_data").mkdir(exist_ok=True)
    fw = stage / "firmware"
    prefix = f"QCASCADE_{ns.upper()}_"
    headers = [fw / "defines.h", fw / "parameters.h", fw / f"{project}.h", fw / "nnet_utils" / "nnet_code_gen.h"]
    headers += sorted((fw / "weights").glob("*.h"))
    for path in (h for h in headers if h.is_file()):
        text = path.read_text()
        m = _GUARD.search(text)
        if m and not m.group(1).startswith(prefix):
            g = m.group(1)
            text = re.sub(rf"^(#ifndef|#define) {g}\b", rf"\1 {prefix}{g}", text, count=2, flags=re.M)
        if path.parent.name == "weights":
            text = _WEIGHT_BLOCK.sub(_INLINE_COND, text)
        path.write_text(text)
    cpp = fw / f"{project}.cpp"
    text = cpp.read_text()
    if "load_weights_from_txt" in text:
        if text.count(_LOAD_BLOCK) != 1:
            shutil.rmtree(stage)
            raise ConfigError(f"{src / 'firmware' / cpp.name}: unexpected weight-loading code (hls4ml version?)")
        cpp.write_text(text.replace(_LOAD_BLOCK, _INLINE_COND + _LOAD_BLOCK.split("\n", 1)[1]))
    _sync_tree(stage, dest)
    shutil.rmtree(stage)


def _sync_tree(src: Path, dest: Path) -> None:
    """Make ``dest`` equal to ``src``, touching only files whose bytes differ."""
    wanted = {p.relative_to(src) for p in src.rglob("*") if p.is_file()}
    if dest.exists():
        for p in sorted(dest.rglob("*"), reverse=True):
            rel = p.relative_to(dest)
            if p.is_file() and rel not in wanted:
                p.unlink()
            elif p.is_dir() and not (src / rel).is_dir():
                shutil.rmtree(p)
    for sub in (p.relative_to(src) for p in src.rglob("*") if p.is_dir()):
        (dest / sub).mkdir(parents=True, exist_ok=True)  # empty ones too (tb_data)
    for rel in sorted(wanted):
        target = dest / rel
        if target.is_file() and filecmp.cmp(src / rel, target, shallow=False):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, target)  # a fresh mtime: stale objects must rebuild


# ---------------------------------------------------------------- generation
def generate_toplevel(out_dir: str | Path, *, simple_prj: str | Path, simple_project: str,
                      simple_namespace: str, complex_prj: str | Path, complex_project: str,
                      complex_namespace: str, electrode: int, tau: float, n_times: int, n_chans: int,
                      config_hash: str, control: str = "ap_ctrl_hs", part: str | None = None,
                      clock_period: float | None = None, tb_windows: np.ndarray | None = None,
                      gate_rule: str = "confidence", tb_prev_cls: np.ndarray | None = None,
                      gate_probe: int = 0, gate_recheck: float = 0.0, tb_gap: np.ndarray | None = None,
                      input_scaling: dict | None = None, tb_scale_reset: np.ndarray | None = None,
                      sentinel: dict | None = None, gate_hold: int = 0,
                      tb_held: np.ndarray | None = None, gate_hold_max: int = 0,
                      gate_tau_interictal: float | None = None, gate_fuse: float = 0.0,
                      gate_ictal_every: int = 1, gate_ictal_after: str = "ceiling") -> dict[str, Path]:
    """Write the cascade top level, testbench, model copies and build scripts into ``out_dir``.

    Args:
        out_dir: output folder (created; the files it generates are overwritten).
        simple_prj / complex_prj: hls4ml io_stream project folders (written or compiled).
        simple_project / complex_project: their ``project_name`` (distinct identifiers).
        simple_namespace / complex_namespace: their ``namespace`` (distinct identifiers).
        electrode: electrode the simple model reads, ``0 <= electrode < n_chans``.
        tau: confidence threshold on ``|p1 - p0|``, ``0 <= tau < 1``.
        n_times / n_chans: window shape, checked against both projects.
        config_hash: identifies the run configuration; written into ``cascade_top.h``.
        control: block-level protocol, ``"ap_ctrl_hs"`` or ``"s_axilite"``.
        part / clock_period: FPGA part and clock in ns; default: the projects' (must agree).
        tb_windows: windows ``(n, n_times, n_chans)`` for the Vitis testbench; default four
            seeded random windows (cosim of many 512x128 windows is slow).
        gate_rule: one of ``qcascade.gate.GATE_RULES``; the rules that read the
            previous window's final class give the top level a ``prev_cls`` input.
        tb_prev_cls: ``(n,)`` prev_cls of the testbench windows (those rules); default 0. Values
            0/1 load that previous class, 2 keeps the design's own state (closed loop).
        gate_probe: probe period ``P`` of the gate (``qcascade.gate``; 0: off). With a probe the
            top level also has the ``prev_cls`` state inputs (any rule) and a ``prev_gap`` input.
        gate_recheck: the gate's recheck ``tau_c`` (``qcascade.gate``; 0: off; needs a probe): an
            unsure "interictal" of the complex model sets the gap state to ``P - 1``.
        tb_gap: ``(n,)`` prev_gap of the testbench windows (with a probe); default 0.
        input_scaling: None (the host sends scaled windows: ``data.input_scaling: train_stats``)
            or the causal scaling done in the design (:func:`qcascade.hls.scaling_hw.template_values`
            lists the keys): the design then takes raw samples and a ``scale_reset`` input.
        tb_scale_reset: ``(n,)`` a recording's first window, for the testbench (with ``input_scaling``
            or ``sentinel``: the ``scale_reset`` and ``sentinel_reset`` inputs); default 1 on the first
            window only (``tb_windows`` are then one recording, raw with ``input_scaling``).
        sentinel: None or the gate's sentinel (:meth:`qcascade.sentinel.SentinelSpec.as_dict`,
            :mod:`qcascade.hls.sentinel_hw`): the design computes it from its window buffer, and has
            the ``prev_load``/``prev_cls``/``prev_gap`` state inputs and a ``sentinel_reset`` input.
        gate_hold: the gate's hold ``H`` (``qcascade.gate``; 0: off): the design keeps an 8-bit
            hold counter and has the ``prev_load``/``prev_cls`` state inputs and a ``prev_hold`` input.
        tb_held: ``(n,)`` prev_hold of the testbench windows (with a hold); default 0.
        gate_hold_max: the growing hold's ceiling ``M`` (``qcascade.gate.hold_ceiling``; at most
            ``gate_hold``: the fixed hold): a window that restarts the hold loads
            ``min(M, max(H, held + 1))``.
        gate_tau_interictal: the threshold where the simple model says interictal
            (``qcascade.gate``, "Two thresholds"; at most ``tau``); None: ``tau``.
        gate_fuse: the late fusion ``2**-k`` (``qcascade.gate``, "Fusion"; :mod:`qcascade.hls.gate_hw`); 0: off.
        gate_ictal_every: the ictal stride ``K`` (``qcascade.gate``, "Ictal stride"; needs a growing hold); 1: off.
        gate_ictal_after: from which hold it carries (``qcascade.gate.ictal_min_held``): ``"ceiling"`` or ``"grown"``.

    Returns:
        The written files by role: ``cascade_top_h``, ``cascade_top_cpp``, ``cascade_tb_cpp``,
        ``build_csim_sh``, ``tb_input``, ``manifest``, ``design_{cascade,simple,complex}`` (design.tcl)
        and ``qcascade_ooc_{...}`` (the Vivado OOC clock constraint).

    Raises:
        ConfigError: an invalid name or number, or projects that do not match the arguments.
    """
    names = {"simple_project": simple_project, "complex_project": complex_project,
             "simple_namespace": simple_namespace, "complex_namespace": complex_namespace}
    for label, name in names.items():
        check_identifier(label, name)
    if len(set(names.values()) | {TOP_NAME, "qcascade"}) != len(names) + 2:
        raise ConfigError(f"project names and namespaces must be distinct (and not {TOP_NAME}/qcascade): {names}")
    n_times, n_chans = check_int("n_times", n_times, 1, 1 << 20), check_int("n_chans", n_chans, 1, 1 << 14)
    electrode = check_int("electrode", electrode, 0, n_chans - 1)
    config_hash = check_token("config_hash", config_hash)
    if control not in CONTROL_PRAGMAS:
        raise ConfigError(f"control: {control!r} is not one of {sorted(CONTROL_PRAGMAS)}")
    out_dir = Path(out_dir).resolve()
    simple = inspect_project(simple_prj, simple_project, simple_namespace)
    cplx = inspect_project(complex_prj, complex_project, complex_namespace)
    check_pair(simple, cplx, n_times, n_chans)
    part = check_part("part", part if part is not None else same_setting(simple, cplx, "part"))
    clock = check_number("clock_period", clock_period if clock_period is not None
                         else float(same_setting(simple, cplx, "clock_period")), 0.1, 1000.0)
    uncertainty = check_token("clock_uncertainty", simple["settings"].get("clock_uncertainty", "12.5%"))

    logit = simple["result"]["elem"]
    gate = quantize_threshold(check_number("tau", tau, 0.0, 1.0), logit["width"], logit["integer"])
    tau_i = tau if gate_tau_interictal is None else check_number("gate_tau_interictal", gate_tau_interictal, 0.0, tau)
    gate_i = quantize_threshold(tau_i, logit["width"], logit["integer"])
    if gate_rule not in GATE_RULES:
        raise ConfigError(f"gate_rule: must be one of {GATE_RULES}, got {gate_rule!r}")
    try:
        probe = check_probe(gate_probe)
        recheck = check_recheck(gate_recheck, probe)
        hold = check_hold(gate_hold)
        hold_max = hold_ceiling(hold, gate_hold_max)
        ictal_every = check_ictal_every(gate_ictal_every, hold, hold_max)
        ictal_min = ictal_min_held(hold, hold_max, gate_ictal_after)
    except ValueError as exc:
        raise ConfigError(f"gate_probe / gate_recheck / gate_hold / gate_hold_max / gate_ictal_every / gate_ictal_after: "
                          f"{exc}") from None
    with_prev = uses_state(gate_rule, probe, sentinel is not None, hold)
    has_gap = bool(probe) or sentinel is not None or ictal_every > 1
    clogit = cplx["result"]["elem"]
    fuse_subs, fuse_entry, rq = fuse_values(gate_fuse, logit, clogit, recheck)
    gate.update(fuse=fuse_entry, tau_interictal=None if gate_tau_interictal is None else tau_i,
                interictal={k: gate_i[k] for k in ("threshold", "raw", "value")}, rule=gate_rule, uses_prev=with_prev, probe_every=probe, recheck_tau=recheck, hold=hold, hold_max=hold_max,
                ictal_every=ictal_every, ictal_after=gate_ictal_after, ictal_min_held=ictal_min,
                recheck={k: rq[k] for k in ("threshold", "raw", "frac_bits", "value", "diff_width", "diff_int",
                                            "rounding")} if recheck else None,
                has_gap=has_gap, sentinel=sentinel_hw.manifest_entry(sentinel, n_times, n_chans, cplx["input"]["elem"]))
    scale_subs = scaling_hw.template_values(input_scaling, n_times, n_chans, cplx["input"]["elem"], control)
    sentinel_subs = sentinel_hw.template_values(sentinel, n_times, n_chans, cplx["input"]["elem"], control, electrode)
    buffer = window_buffer_cost(n_times, n_chans, cplx["input"]["elem"]["width"])
    for info in (simple, cplx):
        copy_project(info, out_dir / "models" / info["project"])
        info["copy_dir"] = f"models/{info['project']}"
    subs = {"version": __version__, "config_hash": config_hash, "top": TOP_NAME, **names,
            "simple_input_t": simple["input"]["name"], "simple_result_t": simple["result"]["name"],
            "complex_input_t": cplx["input"]["name"], "complex_result_t": cplx["result"]["name"],
            "n_times": n_times, "n_chans": n_chans, "electrode": electrode, "tau": repr(float(tau)),
            "threshold": repr(gate["threshold"]), "thr_raw": gate["raw"], "frac_bits": gate["frac_bits"],
            "thr_value": repr(gate["value"]), "diff_width": gate["diff_width"], "diff_int": gate["diff_int"],
            "tau_i": repr(float(tau_i)), "threshold_i": repr(gate_i["threshold"]), "thr_i_raw": gate_i["raw"],
            "thr_i_value": repr(gate_i["value"]),
            "control_pragma": CONTROL_PRAGMAS[control], "buffer_bits": buffer["bits"],
            "buffer_bram": buffer["bram18k_estimate"], "tb_input": TB_INPUT, "gate_rule": gate_rule,
            "gate_formula": gate_formula(gate_rule, probe, recheck, sentinel_subs if sentinel else None, hold, hold_max,
                                         tau, tau_i, gate_fuse, ictal_every, ictal_min),
            "recheck": int(bool(recheck)), "recheck_tau": repr(recheck), "recheck_threshold": repr(rq["threshold"]),
            "recheck_raw": rq["raw"], "recheck_frac_bits": rq["frac_bits"], "recheck_value": repr(rq["value"]),
            "recheck_diff_width": rq["diff_width"], "recheck_diff_int": rq["diff_int"],
            "gate_rule_id": GATE_RULES.index(gate_rule), "probe_every": probe,
            "uses_prev": int(with_prev), "prev_pragma": PREV_PRAGMAS[control] + (GAP_PRAGMAS[control] if has_gap else "")
            + (HOLD_PRAGMAS[control] if hold else ""),
            "has_gap": int(has_gap), "hold": hold, "hold_max": hold_max, "ictal_every": ictal_every,
            "ictal_min_held": ictal_min, "hold_param": ", qcascade::gate_hold_t prev_hold" if hold else "",
            "hold_arg": ", gate_hold_t((unsigned char)hold_byte)" if hold else "",
            "tb_expected": TB_EXPECTED,
            "simple_logit_bits": logit["width"], "complex_logit_bits": cplx["result"]["elem"]["width"],
            "result_bits": 8 * math.ceil((2 + 2 * logit["width"] + 2 * cplx["result"]["elem"]["width"]
                                          + (1 if sentinel else 0)) / 8),
            **scale_subs, **sentinel_subs, **fuse_subs}
    paths = {role: _render(f"{name}.in", out_dir / name, subs) for role, name in
             (("cascade_top_h", "cascade_top.h"), ("cascade_top_cpp", "cascade_top.cpp"),
              ("cascade_tb_cpp", "cascade_tb.cpp"), ("input_scaling_h", "input_scaling.h"))}
    manifest = {"qcascade_version": __version__, "config_hash": config_hash, "top": TOP_NAME,
                "n_times": n_times, "n_chans": n_chans, "electrode": electrode, "control": control,
                "part": part, "clock_period": clock, "clock_uncertainty": uncertainty, "gate": gate,
                "window_buffer": buffer, "tb_input": TB_INPUT, "tb_expected": TB_EXPECTED, "csim_exe": csim_build.CSIM_EXE,
                "result_bits": subs["result_bits"],
                "input_scaling": scaling_hw.manifest_entry(input_scaling, n_times, cplx["input"]["elem"]),
                "simple": {k: v for k, v in simple.items() if k != "settings"},
                "complex": {k: v for k, v in cplx.items() if k != "settings"},
                "designs": {"simple": simple["copy_dir"], "complex": cplx["copy_dir"], "cascade": "."}}
    paths["build_csim_sh"] = csim_build.write_build_script(out_dir, manifest)
    paths.update(synth.write_flow_scripts(out_dir, manifest))
    if tb_windows is None:
        tb_windows = np.random.default_rng(0).normal(0.0, 1.0, (4, n_times, n_chans))
    if with_prev and tb_prev_cls is None:
        tb_prev_cls = np.zeros(len(tb_windows), np.int64)
    if has_gap and tb_gap is None:
        tb_gap = np.zeros(len(tb_windows), np.int64)
    if hold and tb_held is None:
        tb_held = np.zeros(len(tb_windows), np.int64)
    starts = input_scaling is not None or sentinel is not None  # the design reads a recording-start input
    if starts and tb_scale_reset is None:
        tb_scale_reset = np.arange(len(tb_windows)) == 0
    paths["tb_input"] = write_windows(out_dir / TB_INPUT, tb_windows, n_times, n_chans,
                                      prev_cls=tb_prev_cls if with_prev else None, gap=tb_gap if has_gap else None,
                                      scale_reset=tb_scale_reset if starts else None, held=tb_held if hold else None)
    # New testbench input: expected results of an earlier generation no longer apply
    # (qcascade.hls.testbench.write_tb_data writes them from the g++ C simulation).
    (out_dir / TB_EXPECTED).unlink(missing_ok=True)
    paths["manifest"] = atomic_write_json(out_dir / MANIFEST, manifest)
    return paths


def _render(template: str, dest: Path, subs: dict) -> Path:
    path = atomic_write_text(dest, string.Template((TEMPLATES / template).read_text()).substitute(subs))
    path.chmod(0o644)
    return path
