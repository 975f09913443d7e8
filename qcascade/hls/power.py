"""Vivado ``report_power`` reader: on-chip power, for the energy per window of a synthesized design.

``vivado_scripts/vivado_ooc_synth.tcl`` writes ``vivado_power.rpt`` next to ``vivado_synth.rpt``. Its
summary table holds ``Total On-Chip Power (W)``, ``Dynamic (W)`` and ``Device Static (W)``
(vectorless: default toggle rates, so a post-synthesis figure, not a measurement). Energy per
window = power x the time the design is busy on that window.
"""

from __future__ import annotations

import re
from pathlib import Path

from qcascade.errors import QCascadeError

POWER_REPORT = "vivado_power.rpt"
_ROWS = {"total_w": "Total On-Chip Power (W)", "dynamic_w": "Dynamic (W)", "static_w": "Device Static (W)"}


def parse_power_report(path: str | Path) -> dict:
    """``{"total_w", "dynamic_w", "static_w", "file"}`` from a Vivado ``report_power`` text file.

    Raises:
        QCascadeError: the file has no ``Total On-Chip Power (W)`` row with a number.
    """
    path = Path(path)
    text = path.read_text(errors="replace")
    out: dict = {"file": str(path)}
    for key, label in _ROWS.items():
        m = re.search(rf"^\|\s*{re.escape(label)}\s*\|\s*([0-9.eE+-]+)\s*\|", text, re.M)
        out[key] = float(m.group(1)) if m else None
    if out["total_w"] is None:
        raise QCascadeError(f"{path}: no 'Total On-Chip Power (W)' number (not a Vivado report_power file?)")
    return out


def find_power_report(design_dir: str | Path) -> Path | None:
    """``<design_dir>/vivado_power.rpt`` if it exists."""
    path = Path(design_dir) / POWER_REPORT
    return path if path.is_file() else None
