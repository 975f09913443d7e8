"""Parser of Vivado's ``report_utilization`` output, ``<out>/vivado_synth.rpt``.

The report is a header (``| Device : xcu50-...``, ``| Design State : Synthesized``) and numbered
sections, each a title line followed by a dashed underline and one or more tables::

    1. CLB Logic
    ------------
    +-------------+--------+-------+------------+-----------+-------+
    |  Site Type  |  Used  | Fixed | Prohibited | Available | Util% |
    +-------------+--------+-------+------------+-----------+-------+
    | CLB LUTs*   | 179437 |     0 |          0 |    871680 | 20.59 |

Section and row names differ by family:

=========  ==============================  ===================================
resource   UltraScale(+) section / row     7-series section / row
=========  ==============================  ===================================
LUT        ``CLB Logic`` / ``CLB LUTs``    ``Slice Logic`` / ``Slice LUTs``
FF         ``CLB Logic`` / ``CLB Registers``  ``Slice Logic`` / ``Slice Registers``
BRAM       ``BLOCKRAM`` / ``Block RAM Tile``  ``Memory`` / ``Block RAM Tile``
DSP        ``ARITHMETIC`` / ``DSPs``       ``DSP`` / ``DSPs``
=========  ==============================  ===================================

Rows are read only inside these sections, by the position of the ``Used`` column (Vivado 2022+
adds a ``Prohibited`` column), so later per-SLR tables (e.g. "13. SLR CLB Logic and Dedicated Block
Utilization", which repeat ``CLB LUTs``/``DSPs`` rows) never overwrite the totals. A ``*`` after a
row name is a footnote mark. ``Block RAM Tile`` is a 36 Kb tile and may be fractional (``0.5`` = one
RAMB18); ``bram_18k`` = tiles x 2.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from qcascade.hls.reports_common import ReportParseError, read_report, table_cells, to_float

#: section title (exact) -> {row name: output key}
_SECTIONS = {
    "clb logic": {"clb luts": "lut", "clb registers": "ff"},
    "slice logic": {"slice luts": "lut", "slice registers": "ff"},
    "blockram": {"block ram tile": "bram_tile", "uram": "uram"},
    "memory": {"block ram tile": "bram_tile", "uram": "uram"},
    "arithmetic": {"dsps": "dsp"},
    "dsp": {"dsps": "dsp"},
}
_SECTION_TITLE = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+(\S.*?)\s*$")
_HEADER_FIELD = re.compile(r"^\|\s*(Device|Design State|Tool Version)\s*:\s*(.*?)\s*$", re.M)


def _sections(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Split the report into (lower-case title, body lines); a title is underlined with dashes."""
    starts = []
    for i, line in enumerate(lines[:-1]):
        match = _SECTION_TITLE.match(line)
        if match and re.fullmatch(r"-{3,}\s*", lines[i + 1]):
            starts.append((i, match.group(2).lower()))
    bounds = [i for i, _ in starts] + [len(lines)]
    return [(title, lines[i + 2:bounds[n + 1]]) for n, (i, title) in enumerate(starts)]


def parse_vivado_synth(path: str | os.PathLike) -> dict:
    """Parse a Vivado utilization report (``vivado_synth.rpt``).

    Args:
        path: the report.

    Returns:
        ``{"lut", "ff", "dsp", "bram_18k"}`` plus ``bram_tile`` (as reported, may be fractional),
        ``uram``, ``available`` (same keys, ``bram_18k`` from the tile count), ``part``,
        ``design_state`` (``Synthesized``/``Optimized``/``Routed``), ``tool_version``, ``file``.

    Raises:
        ReportParseError: no LUT row in a logic section (truncated or not a utilization report),
            or a value that is not a number.
    """
    path = Path(path)
    text = read_report(path)
    used: dict[str, float | None] = {}
    available: dict[str, float | None] = {}
    try:
        for title, body in _sections(text.splitlines()):
            wanted = _SECTIONS.get(title)
            if wanted is None:
                continue
            used_at = available_at = None
            for line in body:
                cells = table_cells(line)
                if not cells:
                    continue
                if cells[0] == "Site Type":
                    used_at = cells.index("Used") if "Used" in cells else None
                    available_at = cells.index("Available") if "Available" in cells else None
                    continue
                key = wanted.get(cells[0].rstrip("*").strip().lower())
                if key is None or used_at is None or key in used or len(cells) <= used_at:
                    continue
                used[key] = to_float(cells[used_at])
                if available_at is not None and len(cells) > available_at:
                    available[key] = to_float(cells[available_at])
    except ValueError as exc:
        raise ReportParseError(path, str(exc)) from exc
    if used.get("lut") is None:
        raise ReportParseError(path, "no 'CLB LUTs'/'Slice LUTs' row in a 'CLB Logic'/'Slice Logic' section")

    def as_int(value: float | None) -> int | None:
        return None if value is None else int(value)

    def tiles_to_18k(value: float | None) -> int | None:
        return None if value is None else int(round(value * 2))

    header = dict(_HEADER_FIELD.findall(text))
    return {
        "lut": as_int(used.get("lut")),
        "ff": as_int(used.get("ff")),
        "dsp": as_int(used.get("dsp")),
        "bram_18k": tiles_to_18k(used.get("bram_tile")),
        "bram_tile": used.get("bram_tile"),
        "uram": as_int(used.get("uram")),
        "available": {
            "lut": as_int(available.get("lut")),
            "ff": as_int(available.get("ff")),
            "dsp": as_int(available.get("dsp")),
            "bram_18k": tiles_to_18k(available.get("bram_tile")),
            "uram": as_int(available.get("uram")),
        },
        "part": header.get("Device"),
        "design_state": header.get("Design State"),
        "tool_version": header.get("Tool Version"),
        "file": str(path),
    }
