"""Handing freed heap memory back to the operating system after the data step.

The data step (``auto``'s amplitude measurement and the window building) allocates and frees many
large numpy temporaries. On glibc the heap they leave behind made every later step of the process
slower, with identical results (measurements: docs/evaluation.md, "Time").
"""

from __future__ import annotations

import ctypes
import gc
import sys

__all__ = ["trim_heap"]


def trim_heap() -> bool:
    """Collect garbage and call glibc's ``malloc_trim(0)``.

    Returns:
        True if memory was handed back; False where there is nothing to call (not Linux, or a
        C library without ``malloc_trim``, e.g. musl or macOS), which is harmless.
    """
    gc.collect()
    if not sys.platform.startswith("linux"):
        return False
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))
