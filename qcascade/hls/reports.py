"""Read the vendor reports an hls4ml (1.3.0) Vivado/Vitis build leaves in its output folder.

Layout of an hls4ml output folder ``<out>`` (the project name is discovered from ``*_prj``, the top
function from ``hls.app``/``vivado_hls.app`` when present, else the folder name without ``_prj``)::

    <out>/<project>_prj/solution1/syn/report/<top>_csynth.xml     C synthesis (or .rpt fallback)
    <out>/<project>_prj/solution1/sim/report/<top>_cosim.rpt      C/RTL co-simulation
    <out>/<project>_prj/solution1/sim/verilog/<top>.performance.result.transaction.xml
    <out>/<project>_prj/solution1/csim/report/<top>_csim.log      C simulation
    <out>/vivado_synth.rpt                                         Vivado synthesis utilization

The formats are described in :mod:`qcascade.hls.reports_csynth`, :mod:`qcascade.hls.reports_sim` and
:mod:`qcascade.hls.reports_vivado`. :func:`parse_hls_dir` returns::

    {"csynth": {"latency_best", "latency_worst", "ii", "lut", "ff", "dsp", "bram_18k", "clock_est_ns", ...},
     "vsynth": {"lut", "ff", "dsp", "bram_18k", ...},
     "cosim":  {"status", "latency_min", "latency_max", "ii", ...},
     "csim":   {"status", ...}}

A section whose report is absent is ``None``; a report that exists but cannot be parsed raises
:class:`ReportParseError` naming the file. Numbers are ints (``clock_est_ns`` float), ``None`` when the
tool wrote NA/undef. Latencies and intervals are in clock cycles. Only the standard library is used.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from qcascade.errors import DataError
from qcascade.hls.reports_common import ReportParseError
from qcascade.hls.reports_csynth import find_ii_violations, parse_csynth_rpt, parse_csynth_xml
from qcascade.hls.reports_sim import parse_cosim, parse_csim_log, parse_transactions
from qcascade.hls.reports_vivado import parse_vivado_synth

__all__ = [
    "ReportParseError", "parse_hls_dir", "parse_csynth_xml", "parse_csynth_rpt", "parse_cosim",
    "parse_csim_log", "parse_vivado_synth", "parse_transactions", "find_ii_violations",
    "summarize_cascade", "format_report", "main_report",
]

SECTIONS = ("csynth", "vsynth", "cosim", "csim")


def _find_project(hls_dir: Path) -> tuple[Path, str] | None:
    """Return (``<project>_prj`` folder, top function name), or None if there is no ``*_prj``."""
    projects = sorted(p for p in hls_dir.glob("*_prj") if p.is_dir())
    if not projects:
        return None
    if len(projects) > 1:
        names = ", ".join(p.name for p in projects)
        raise DataError(f"{hls_dir}: several HLS projects ({names}); point --hls-dir at one build")
    project = projects[0]
    top = project.name[: -len("_prj")]
    for app in ("hls.app", "vivado_hls.app"):
        try:
            top = ET.parse(project / app).getroot().get("top") or top
            break
        except (OSError, ET.ParseError):
            continue
    return project, top


def _solution(project: Path) -> Path:
    if (project / "solution1").is_dir():
        return project / "solution1"
    return next(iter(sorted(p for p in project.glob("solution*") if p.is_dir())), project / "solution1")


def parse_hls_dir(hls_dir: str | os.PathLike) -> dict:
    """Parse every vendor report present in an hls4ml output folder.

    Args:
        hls_dir: the hls4ml output folder (the one holding ``<project>_prj`` and ``vivado_synth.rpt``).

    Returns:
        ``{"csynth", "vsynth", "cosim", "csim"}``, each a dict or ``None`` (report absent). csynth
        also carries ``ii_violation`` (True/False, ``None`` when no .rpt was there to check) and
        ``ii_violations``.

    Raises:
        DataError: the folder does not exist or holds several ``*_prj`` projects.
        ReportParseError: a report exists but cannot be parsed.
    """
    hls_dir = Path(hls_dir)
    if not hls_dir.is_dir():
        raise DataError(f"HLS output folder not found: {hls_dir}")
    result: dict = dict.fromkeys(SECTIONS)
    vivado = hls_dir / "vivado_synth.rpt"
    if vivado.is_file():
        result["vsynth"] = parse_vivado_synth(vivado)
    found = _find_project(hls_dir)
    if found is None:
        return result
    project, top = found
    solution = _solution(project)
    syn = solution / "syn" / "report"
    if (syn / f"{top}_csynth.xml").is_file():
        csynth = parse_csynth_xml(syn / f"{top}_csynth.xml")
    elif (syn / f"{top}_csynth.rpt").is_file():
        csynth = parse_csynth_rpt(syn / f"{top}_csynth.rpt")
    else:
        csynth = None
    if csynth is not None:
        from_rpts, checked = find_ii_violations(syn)
        known = {v["where"] for v in from_rpts}
        csynth["ii_violations"] = from_rpts + [v for v in csynth["ii_violations"] if v["where"] not in known]
        csynth["ii_violation"] = True if csynth["ii_violations"] else (False if checked else None)
        result["csynth"] = csynth
    cosim_rpt = solution / "sim" / "report" / f"{top}_cosim.rpt"
    if cosim_rpt.is_file():
        transactions = solution / "sim" / "verilog" / f"{top}.performance.result.transaction.xml"
        result["cosim"] = parse_cosim(cosim_rpt, transactions)
    csim_log = solution / "csim" / "report" / f"{top}_csim.log"
    if csim_log.is_file():
        result["csim"] = parse_csim_log(csim_log)
    return result


def _model_figures(model: dict, name: str) -> dict:
    """Latency (cycles) and resources of one cascade stage from a parse_hls_dir result, a csynth
    section or an :func:`qcascade.hls.estimate.estimate_from_layers` result."""
    if model.get("source") == "ESTIMATE":
        return {"source": "ESTIMATE", "latency": model.get("latency_cycles"), "lut": model.get("lut"),
                "ff": model.get("ff"), "dsp": model.get("dsp"), "bram_18k": model.get("bram_18k"),
                "lut_mult": model.get("lut_mult")}
    if any(key in model for key in SECTIONS):
        csynth, vsynth, cosim = model.get("csynth"), model.get("vsynth"), model.get("cosim")
        latency = (csynth or {}).get("latency_worst")
        if latency is None and cosim is not None:
            latency = cosim.get("latency_max")
        resources = vsynth or csynth
    else:
        latency, resources = model.get("latency_worst"), model
    if latency is None and resources is None:
        raise ValueError(f"{name}: no vendor report numbers (neither csynth, vsynth nor cosim)")
    resources = resources or {}
    return {"source": "vendor report", "latency": latency, "lut": resources.get("lut"),
            "ff": resources.get("ff"), "dsp": resources.get("dsp"), "bram_18k": resources.get("bram_18k"),
            "lut_mult": None}


def summarize_cascade(simple: dict, complex: dict, routing_rate: float, clock_ns: float) -> dict:
    """Latency and resources of the two-stage cascade (both stages are instantiated on the chip).

    Expected latency per window = ``L_simple + routing_rate * L_complex`` (the complex model runs
    only on routed windows); worst case = ``L_simple + L_complex``. Stage latency is the csynth
    worst-case latency (cosim max latency if csynth has none; the estimate's ``latency_cycles``).
    Resources are the sum of both stages: Vivado synthesis numbers when present, else csynth.

    Args:
        simple: parse_hls_dir result, csynth section or estimate of the always-on simple model.
        complex: the same for the complex model.
        routing_rate: fraction of windows routed to the complex model, in [0, 1].
        clock_ns: clock period used to convert cycles to ns.

    Returns:
        ``source`` (``"vendor report"`` only if both stages come from vendor reports, else
        ``"ESTIMATE"``), ``sources`` per stage, ``latency_simple_cycles``, ``latency_complex_cycles``,
        ``expected_latency_cycles``/``_ns``, ``worst_latency_cycles``/``_ns`` and summed ``lut``,
        ``ff``, ``dsp``, ``bram_18k``, ``lut_mult`` (``None`` when either stage lacks the number).
    """
    if not 0.0 <= routing_rate <= 1.0:
        raise ValueError(f"routing_rate must be in [0, 1], got {routing_rate}")
    if clock_ns <= 0:
        raise ValueError(f"clock_ns must be > 0, got {clock_ns}")
    stages = {"simple": _model_figures(simple, "simple"), "complex": _model_figures(complex, "complex")}
    l_simple, l_complex = stages["simple"]["latency"], stages["complex"]["latency"]
    known = l_simple is not None and l_complex is not None
    expected = l_simple + routing_rate * l_complex if known else None
    worst = l_simple + l_complex if known else None

    def total(key: str) -> int | None:
        values = [stages["simple"][key], stages["complex"][key]]
        return None if None in values else sum(values)

    sources = {name: stage["source"] for name, stage in stages.items()}
    return {
        "source": "vendor report" if set(sources.values()) == {"vendor report"} else "ESTIMATE",
        "sources": sources,
        "routing_rate": routing_rate,
        "clock_ns": clock_ns,
        "latency_simple_cycles": l_simple,
        "latency_complex_cycles": l_complex,
        "expected_latency_cycles": expected,
        "expected_latency_ns": None if expected is None else expected * clock_ns,
        "worst_latency_cycles": worst,
        "worst_latency_ns": None if worst is None else worst * clock_ns,
        **{key: total(key) for key in ("lut", "ff", "dsp", "bram_18k", "lut_mult")},
    }


_TABLE_ROWS = {
    "csynth": ("C synthesis", ["latency_best", "latency_worst", "ii", "clock_est_ns", "clock_target_ns",
                               "lut", "ff", "dsp", "bram_18k", "ii_violation", "part", "tool_version"]),
    "vsynth": ("Vivado synthesis", ["lut", "ff", "dsp", "bram_18k", "bram_tile", "part", "design_state"]),
    "cosim": ("C/RTL co-simulation", ["status", "latency_min", "latency_max", "ii", "numbers_from"]),
    "csim": ("C simulation", ["status"]),
}


def format_report(report: dict) -> str:
    """Render a :func:`parse_hls_dir` result as a readable text table."""
    lines = []
    for key, (title, fields) in _TABLE_ROWS.items():
        section = report.get(key)
        if section is None:
            lines.append(f"{title}: no report")
            continue
        lines.append(f"{title} ({Path(section['file']).name}):")
        lines += [f"  {field:<16}{'-' if section.get(field) is None else section[field]}" for field in fields]
        for violation in section.get("ii_violations") or []:
            target = "" if violation["ii_target"] is None else f" > target {violation['ii_target']}"
            achieved = violation["ii_achieved"]
            lines.append(f"  II violation    {violation['where']}: achieved {achieved}{target}")
        lines += [f"  error           {error}" for error in section.get("errors") or []]
    return "\n".join(lines)


def main_report(hls_dir: str, as_json: bool) -> str:
    """Body of ``qcascade report --hls-dir DIR [--json]``: the parsed reports as JSON or a table."""
    report = parse_hls_dir(hls_dir)
    if as_json:
        return json.dumps(report, indent=2)
    return f"HLS reports in {hls_dir}\n" + format_report(report)
