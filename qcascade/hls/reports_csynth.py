"""C-synthesis report parsers: ``<top>_csynth.xml`` (preferred), ``<top>_csynth.rpt`` and II violations.

Formats (all found in ``<project>_prj/solution1/syn/report/``):

* ``<top>_csynth.xml`` -- ``<profile>`` with ``UserAssignments`` (``Part``, ``TargetClockPeriod``),
  ``PerformanceEstimates`` (``EstimatedClockPeriod``, ``Best-caseLatency``, ``Worst-caseLatency``,
  ``Interval-min``/``Interval-max``; ``undef`` when not statically known) and
  ``AreaEstimates/Resources``. The DSP tag is ``DSP48E`` in Vivado HLS (<= 2020.1) and ``DSP`` in
  Vitis HLS; any tag starting with ``DSP`` is accepted.
* ``<top>_csynth.rpt`` -- the same numbers as ASCII tables: the ``|ap_clk | target | estimated |``
  timing row, the latency summary row ``| min | max | abs min | abs max | II min | II max | type |``
  and the ``Total``/``Available`` rows of the "Utilization Estimates" summary (``DSP48E`` or ``DSP``
  column; Vitis on multi-SLR parts adds ``Available SLR`` rows, which are ignored).
* II violations -- the loop tables of every per-module ``*_csynth.rpt`` (columns ``Initiation
  Interval achieved | target``; a violation is achieved > target) and the ``Issue Type`` column of
  Vitis' consolidated ``csynth.rpt``. Vitis 2024.1 writes ``IssueType`` ``-`` in the XML even for a
  loop whose .rpt shows achieved II 3 > target 1, so the XML alone cannot prove there is no violation.

``ii`` is the worst (max) interval of the top function; ``ii_min`` is kept as an extra key.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from qcascade.hls.reports_common import (
    ReportParseError,
    is_table_line,
    read_report,
    table_cells,
    to_float,
    to_int,
)

_RESOURCE_KEYS = {"BRAM_18K": "bram_18k", "FF": "ff", "LUT": "lut", "URAM": "uram"}


def _resources(element: ET.Element | None) -> dict:
    out = {"lut": None, "ff": None, "dsp": None, "bram_18k": None, "uram": None}
    if element is None:
        return out
    for child in element:
        key = "dsp" if child.tag.upper().startswith("DSP") else _RESOURCE_KEYS.get(child.tag)
        if key is not None:
            out[key] = to_int(child.text)
    return out


def _dsp_tag(element: ET.Element | None) -> str | None:
    if element is None:
        return None
    return next((child.tag for child in element if child.tag.upper().startswith("DSP")), None)


def parse_csynth_xml(path: str | os.PathLike) -> dict:
    """Parse a ``<top>_csynth.xml`` written by Vivado HLS or Vitis HLS.

    Args:
        path: the XML report.

    Returns:
        The csynth section: ``latency_best``, ``latency_worst``, ``ii``, ``lut``, ``ff``, ``dsp``,
        ``bram_18k``, ``clock_est_ns`` plus extras (``ii_min``, ``uram``, ``clock_target_ns``,
        ``clock_uncertainty_ns``, ``part``, ``tool_version``, ``top``, ``dsp_tag``, ``available``,
        ``pipeline_type``, ``file``, ``ii_violations`` from the XML ``IssueType`` fields).

    Raises:
        ReportParseError: the file is not well-formed XML or lacks the estimates.
    """
    path = Path(path)
    try:
        root = ET.fromstring(read_report(path))
        perf = root.find("PerformanceEstimates")
        area = root.find("AreaEstimates")
        if perf is None or area is None or area.find("Resources") is None:
            raise ReportParseError(path, "no PerformanceEstimates/AreaEstimates (not a csynth report?)")
        overall = perf.find("SummaryOfOverallLatency")
        if overall is None:
            raise ReportParseError(path, "no SummaryOfOverallLatency")
        user = root.find("UserAssignments")
        section = {
            "latency_best": to_int(overall.findtext("Best-caseLatency")),
            "latency_worst": to_int(overall.findtext("Worst-caseLatency")),
            "ii": to_int(overall.findtext("Interval-max")),
            **_resources(area.find("Resources")),
            "clock_est_ns": to_float(perf.findtext("SummaryOfTimingAnalysis/EstimatedClockPeriod")),
            "ii_min": to_int(overall.findtext("Interval-min")),
            "clock_target_ns": to_float(user.findtext("TargetClockPeriod")) if user is not None else None,
            "clock_uncertainty_ns": to_float(user.findtext("ClockUncertainty")) if user is not None else None,
            "part": user.findtext("Part") if user is not None else None,
            "top": user.findtext("TopModelName") if user is not None else None,
            "tool_version": root.findtext("ReportVersion/Version"),
            "pipeline_type": perf.findtext("PipelineType"),
            "dsp_tag": _dsp_tag(area.find("Resources")),
            "available": _resources(area.find("AvailableResources")),
            "file": str(path),
        }
    except ET.ParseError as exc:
        raise ReportParseError(path, f"malformed XML ({exc})") from exc
    except ValueError as exc:
        raise ReportParseError(path, str(exc)) from exc
    section["ii_violations"] = [
        {"where": element.findtext("Name") or section["top"], "issue": issue, "ii_achieved": None,
         "ii_target": None, "file": path.name}
        for element in root.iter()
        if (issue := (element.findtext("IssueType") or "").strip()) and re.search(r"\bII\b", issue)
    ]
    return section


def _table_after(lines: list[str], start: int, first_cell: str) -> tuple[list[str], list[list[str]]]:
    """Return (header cells, data rows) of the first table at/after ``start`` whose header starts
    with ``first_cell``; rows run until the table ends."""
    for i in range(start, len(lines)):
        cells = table_cells(lines[i])
        if cells and cells[0] == first_cell:
            rows = []
            for line in lines[i + 1:]:
                if not is_table_line(line):
                    break
                row = table_cells(line)
                if row is not None:
                    rows.append(row)
            return cells, rows
    return [], []


def _index_of(lines: list[str], marker: str, start: int = 0) -> int:
    return next((i for i in range(start, len(lines)) if marker in lines[i]), -1)


def parse_csynth_rpt(path: str | os.PathLike) -> dict:
    """Parse a ``<top>_csynth.rpt`` (fallback when the XML is missing); same keys as the XML parser.

    Raises:
        ReportParseError: the timing, latency or utilization summary table is missing.
    """
    path = Path(path)
    text = read_report(path)
    lines = text.splitlines()
    try:
        clock_row = next((c for c in map(table_cells, lines) if c and c[0] == "ap_clk" and len(c) >= 3), None)
        latency_at = _index_of(lines, "+ Latency:")
        latency_row = None
        if latency_at >= 0:
            for line in lines[latency_at:]:
                cells = table_cells(line)
                if cells and len(cells) >= 6 and re.fullmatch(r"\d+|\?", cells[0]):
                    latency_row = cells
                    break
        util_at = _index_of(lines, "== Utilization Estimates")
        header, rows = _table_after(lines, util_at, "Name") if util_at >= 0 else ([], [])
        by_name = {row[0]: row for row in rows if len(row) == len(header)}
        if clock_row is None or latency_row is None or "Total" not in by_name:
            raise ReportParseError(
                path, "missing the ap_clk timing row, latency summary or utilization Total row")

        def column(row_name: str) -> dict:
            row = by_name.get(row_name)
            out = {"lut": None, "ff": None, "dsp": None, "bram_18k": None, "uram": None}
            for name, value in zip(header, row or []):
                key = "dsp" if name.upper().startswith("DSP") else _RESOURCE_KEYS.get(name)
                if key is not None and row is not None:
                    out[key] = to_int(value)
            return out

        version = re.search(r"^\* Version:\s+(\S+)", text, re.M)
        part = re.search(r"^\* Target device:\s+(\S+)", text, re.M)
        top = re.search(r"HLS Report for '([^']+)'", text)
        return {
            "latency_best": to_int(latency_row[0]),
            "latency_worst": to_int(latency_row[1]),
            "ii": to_int(latency_row[5]),
            **column("Total"),
            "clock_est_ns": to_float(clock_row[2]),
            "ii_min": to_int(latency_row[4]),
            "clock_target_ns": to_float(clock_row[1]),
            "clock_uncertainty_ns": to_float(clock_row[3]) if len(clock_row) > 3 else None,
            "part": part.group(1) if part else None,
            "top": top.group(1) if top else None,
            "tool_version": version.group(1) if version else None,
            "pipeline_type": latency_row[6] if len(latency_row) > 6 else None,
            "dsp_tag": next((name for name in header if name.upper().startswith("DSP")), None),
            "available": column("Available"),
            "file": str(path),
            "ii_violations": [],
        }
    except ValueError as exc:
        raise ReportParseError(path, str(exc)) from exc


def _loop_table_violations(lines: list[str], module: str | None, file_name: str) -> list[dict]:
    """Violations in ``* Loop:`` tables: rows whose achieved II exceeds the target II."""
    found = []
    for i, line in enumerate(lines):
        header = table_cells(line)
        if not header or "achieved" not in header or "target" not in header:
            continue
        achieved_at, target_at = header.index("achieved"), header.index("target")
        for row_line in lines[i + 1:]:
            if not is_table_line(row_line):
                break
            row = table_cells(row_line)
            if row is None or len(row) != len(header):
                continue
            try:
                achieved, target = to_int(row[achieved_at]), to_int(row[target_at])
            except ValueError:
                continue
            if achieved is not None and target is not None and achieved > target:
                loop = row[0].lstrip("-+o ").strip()
                found.append({"where": f"{module}/{loop}" if module else loop, "issue": "II",
                              "ii_achieved": achieved, "ii_target": target, "file": file_name})
    return found


def _issue_type_violations(lines: list[str], file_name: str) -> list[dict]:
    """Violations in the Vitis consolidated ``csynth.rpt`` table (``Issue Type`` column says ``II``)."""
    found = []
    for i, line in enumerate(lines[:-1]):
        first, second = table_cells(line), table_cells(lines[i + 1])
        if not first or not second or "Issue" not in first or "Interval" not in second:
            continue
        issue_at, interval_at = first.index("Issue"), second.index("Interval")
        for row_line in lines[i + 2:]:
            if not is_table_line(row_line):
                break
            row = table_cells(row_line)
            if row is None or len(row) != len(second) or not re.search(r"\bII\b", row[issue_at]):
                continue
            try:
                achieved = to_int(row[interval_at])
            except ValueError:
                achieved = None
            found.append({"where": row[0].lstrip("+o* ").rstrip("*").strip(), "issue": "II",
                          "ii_achieved": achieved, "ii_target": None, "file": file_name})
        break
    return found


def find_ii_violations(report_dir: str | os.PathLike) -> tuple[list[dict], bool]:
    """Scan every ``*.rpt`` in a ``syn/report`` folder for II violations.

    Args:
        report_dir: the ``solution1/syn/report`` folder.

    Returns:
        ``(violations, checked)``: each violation is ``{"where", "issue", "ii_achieved",
        "ii_target", "file"}``; ``checked`` is False when the folder holds no .rpt at all (then the
        absence of violations proves nothing). A loop found both in a per-module report and in the
        consolidated ``csynth.rpt`` is listed once.
    """
    report_dir = Path(report_dir)
    rpt_files = sorted(report_dir.glob("*.rpt")) if report_dir.is_dir() else []
    per_loop: list[dict] = []
    consolidated: list[dict] = []
    for rpt in rpt_files:
        text = rpt.read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines()
        module = re.search(r"HLS Report for '([^']+)'", text)
        per_loop += _loop_table_violations(lines, module.group(1) if module else None, rpt.name)
        consolidated += _issue_type_violations(lines, rpt.name)
    known_loops = {v["where"].rsplit("/", 1)[-1] for v in per_loop}
    return per_loop + [v for v in consolidated if v["where"] not in known_loops], bool(rpt_files)
