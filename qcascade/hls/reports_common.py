"""Shared helpers of the vendor report parsers (``reports_*.py``): the parse error, cell splitting, numbers.

Vivado HLS, Vitis HLS and Vivado write their text reports as ASCII tables::

    +---------+---------+
    |  Name   |   LUT   |
    +---------+---------+
    |Total    |     2532|

A table row is split on ``|`` into stripped cells. Missing values are written ``NA``, ``-``, ``?``,
``undef``, ``N/A`` or ``x`` depending on the tool; all of them become ``None``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from qcascade.errors import DataError

#: Cell texts that mean "no value" in some vendor report.
MISSING_TOKENS = frozenset({"", "-", "na", "n/a", "?", "undef", "x", "none"})

_NUMBER = re.compile(r"^[~<>]?\s*(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(ns|us|ms|cycles?)?$")


class ReportParseError(DataError):
    """A vendor report file exists but cannot be parsed (truncated, empty or of an unknown format)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot parse vendor report {self.path}: {reason}")


def table_cells(line: str) -> list[str] | None:
    """Split an ASCII table row ``|a | b|`` into stripped cells; ``None`` if the line is not a row."""
    text = line.strip()
    if not text.startswith("|"):
        return None
    text = text[1:]
    if text.endswith("|"):
        text = text[:-1]
    return [cell.strip() for cell in text.split("|")]


def is_table_line(line: str) -> bool:
    """True for table rows (``|...``) and borders (``+---+``)."""
    text = line.strip()
    return text.startswith("|") or text.startswith("+")


def to_float(text: str | None) -> float | None:
    """Parse ``"4.049 ns"``, ``"0.5"``, ``"~0"`` etc. to float; ``None`` for missing-value tokens.

    Raises:
        ValueError: the text is neither a number nor a missing-value token.
    """
    if text is None:
        return None
    cleaned = text.strip().replace(",", "")
    if cleaned.lower() in MISSING_TOKENS:
        return None
    match = _NUMBER.match(cleaned)
    if not match:
        raise ValueError(f"not a number: {text!r}")
    return float(match.group(1))


def to_int(text: str | None) -> int | None:
    """Like :func:`to_float` but returns an int (fractions are rejected: ``"0.5"`` raises ValueError)."""
    value = to_float(text)
    if value is None:
        return None
    if value != int(value):
        raise ValueError(f"not an integer: {text!r}")
    return int(value)


def read_report(path: str | os.PathLike) -> str:
    """Read a report as text (undecodable bytes replaced); an empty file is a parse error."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise ReportParseError(path, "file is empty")
    return text
