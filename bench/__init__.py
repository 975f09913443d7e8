"""Benchmarks (``make bench``) and the replay tools of docs/generalisation.md."""

from __future__ import annotations

import sys
from typing import Callable


def exit_code(run: Callable[[], int]) -> int:
    """``run()``'s code, or 2 with ``error: <message>`` on stderr for a :class:`QCascadeError`
    (bad input: the message names the file and the problem; no traceback)."""
    from qcascade.errors import QCascadeError

    try:
        return run()
    except QCascadeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
