"""Simulation report parsers: C/RTL co-simulation (``<top>_cosim.rpt`` + transaction file) and C simulation.

Formats:

* ``sim/report/<top>_cosim.rpt`` -- one table row per RTL language::

      |   Verilog|      Pass|  183|  183|  183|  128|  128|  128|  640|

  columns: RTL, Status, latency min/avg/max, interval min/avg/max and (Vitis only) total execution
  time. Status is ``Pass``, ``Fail`` or ``NA`` (language not simulated). Vitis 2024.1 can report
  ``Pass`` with every number ``NA``; the real numbers are then only in the transaction file.
* ``sim/verilog/<top>.performance.result.transaction.xml`` -- despite its name, plain text::

                                   latency        interval
      transaction       0:             183             128
      transaction       4:             183               x

  (the last transaction has no successor, so its interval is ``x``).
* ``csim/report/<top>_csim.log`` -- the C simulation log. It passes with
  ``INFO: [SIM 1] CSim done with 0 errors.`` (``[SIM 211-1]`` in Vivado HLS) and fails with
  ``ERR: [SIM 100] 'csim_design' failed: ...`` (Vitis) / ``ERROR: [SIM 211-100] ...`` (Vivado HLS),
  ``@E Simulation failed``, ``CSim failed with errors``, compiler/linker ``error:`` lines or
  ``make: ***``.

Statuses are ``"pass"``, ``"fail"`` or ``"unknown"`` (cosim: no language was simulated; csim: the log
has neither an error nor a completion line, e.g. it is still being written).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from qcascade.hls.reports_common import ReportParseError, read_report, table_cells, to_int

_RTL_NAMES = {"verilog", "vhdl", "systemc"}
_TRANSACTION = re.compile(r"^\s*transaction\s+(\d+)\s*:\s+(\S+)\s+(\S+)", re.M)
_CSIM_ERROR = re.compile(
    r"^\s*(ERR|ERROR)\s*:"                          # ERR: [SIM 100] / ERROR: [SIM 211-100]
    r"|^\s*@E\b"                                     # @E Simulation failed: ...
    r"|CSim failed with errors"
    r"|CSim done with [1-9]\d* errors"
    r"|:\d+(:\d+)?: (fatal )?error:"                # file.cpp:12:3: error: ...
    r"|^\s*\S*(collect2|ld|gcc|g\+\+)(\.exe)?: (fatal )?error"
    r"|^\s*make(\[\d+\])?: \*\*\*",
    re.M,
)
_CSIM_PASS = re.compile(r"CSim done with 0 errors")
_CSIM_FINISH = re.compile(r"CSIM finish", re.I)


def parse_transactions(path: str | os.PathLike) -> dict:
    """Parse ``<top>.performance.result.transaction.xml`` (a text table, see module docstring).

    Returns:
        ``{"n_transactions", "latency_min", "latency_max", "ii_min", "ii_max"}``; intervals ``x``
        are skipped, so ``ii_*`` are ``None`` for a single transaction.

    Raises:
        ReportParseError: the file has no ``transaction N:`` rows or a value is not a number.
    """
    path = Path(path)
    rows = _TRANSACTION.findall(read_report(path))
    if not rows:
        raise ReportParseError(path, "no 'transaction N: latency interval' rows")
    try:
        latencies = [v for v in (to_int(row[1]) for row in rows) if v is not None]
        intervals = [v for v in (to_int(row[2]) for row in rows) if v is not None]
    except ValueError as exc:
        raise ReportParseError(path, str(exc)) from exc
    return {
        "n_transactions": len(rows),
        "latency_min": min(latencies, default=None),
        "latency_max": max(latencies, default=None),
        "ii_min": min(intervals, default=None),
        "ii_max": max(intervals, default=None),
    }


def parse_cosim(rpt_path: str | os.PathLike, transaction_xml: str | os.PathLike | None = None) -> dict:
    """Parse a ``<top>_cosim.rpt``, completing NA numbers of a passed run from the transaction file.

    Args:
        rpt_path: the cosim report.
        transaction_xml: optional ``<top>.performance.result.transaction.xml``; read only when the
            report says Pass but leaves latency or interval ``NA``, and only if the file exists.

    Returns:
        ``{"status", "latency_min", "latency_max", "ii"}`` plus ``rtl`` (simulated language),
        ``latency_avg``, ``ii_min``, ``total_cycles``, ``numbers_from`` (``"cosim.rpt"`` or
        ``"transaction file"``), ``n_transactions`` and ``file``. ``ii`` is the max interval.

    Raises:
        ReportParseError: no Verilog/VHDL/SystemC row, or a number cell that is not a number.
    """
    rpt_path = Path(rpt_path)
    rows = [
        cells for cells in map(table_cells, read_report(rpt_path).splitlines())
        if cells and len(cells) >= 2 and cells[0].lower() in _RTL_NAMES
    ]
    if not rows:
        raise ReportParseError(rpt_path, "no Verilog/VHDL/SystemC result row")
    ran = [row for row in rows if row[1].lower() != "na"]
    row = next((r for r in ran if r[0].lower() == "verilog"), ran[0] if ran else rows[0])
    row = row + [""] * (9 - len(row))
    status = {"pass": "pass", "fail": "fail"}.get(row[1].lower(), "unknown")
    try:
        numbers = [to_int(cell) for cell in row[2:9]]
    except ValueError as exc:
        raise ReportParseError(rpt_path, str(exc)) from exc
    section = {
        "status": status,
        "latency_min": numbers[0],
        "latency_max": numbers[2],
        "ii": numbers[5],
        "rtl": row[0] if ran else None,
        "latency_avg": numbers[1],
        "ii_min": numbers[3],
        "total_cycles": numbers[6],
        "numbers_from": "cosim.rpt",
        "n_transactions": None,
        "file": str(rpt_path),
    }
    missing = section["latency_min"] is None or section["ii"] is None
    if status == "pass" and missing and transaction_xml is not None and Path(transaction_xml).is_file():
        measured = parse_transactions(transaction_xml)
        for key, value in (("latency_min", measured["latency_min"]), ("latency_max", measured["latency_max"]),
                           ("ii", measured["ii_max"]), ("ii_min", measured["ii_min"])):
            if section[key] is None:
                section[key] = value
        section["numbers_from"] = "transaction file"
        section["n_transactions"] = measured["n_transactions"]
        section["transaction_file"] = str(transaction_xml)
    return section


def parse_csim_log(path: str | os.PathLike) -> dict:
    """Parse a ``<top>_csim.log``.

    Returns:
        ``{"status"}`` plus ``errors`` (the error lines, at most 20), ``completed`` (a
        ``CSim done``/``CSIM finish`` line was seen) and ``file``. An empty log is ``"unknown"``.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    errors = [line.strip() for line in text.splitlines() if _CSIM_ERROR.search(line)]
    completed = bool(_CSIM_PASS.search(text) or _CSIM_FINISH.search(text))
    if errors:
        status = "fail"
    elif completed:
        status = "pass"
    else:
        status = "unknown"
    return {"status": status, "errors": errors[:20], "completed": completed, "file": str(path)}
