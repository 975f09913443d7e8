"""Which step wrote which state file, and whether those files are still intact.

``steps.json`` records, per completed step, the state files it wrote (``.npz``, ``.npy``,
``.h5``, ``.json``) with their size and modification time. A file that later reads as
damaged (truncated, overwritten with garbage, deleted) is traced back to the step that wrote it;
:func:`qcascade.rundir.run_steps` then rolls the step log back to before that step and reports
the file and the step in one line, so a plain rerun recomputes from the last intact step.

Generated hls4ml projects (``hls/<name>/``) and per-layer traces are not tracked: the hardware
steps regenerate them whole. The hand-editable ``hls/*_config.yaml`` is not a state file.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

TRACKED_SUFFIXES = (".npz", ".npy", ".h5", ".json")
# Exceptions a step raises when a file it reads is truncated or corrupt (np.load, zipfile, json,
# h5py and Keras loaders); the step log is then checked for a damaged input.
DAMAGE_ERRORS = (OSError, EOFError, ValueError, KeyError, IndexError, zipfile.BadZipFile)

Stat = tuple[int, int]  # (size, mtime_ns)


_FOLD_DIR = re.compile(r"fold\d+")


def snapshot(unit_dir: Path, folds: bool = True) -> dict[str, Stat]:
    """``{relative path: (size, mtime_ns)}`` of the state files under ``unit_dir``.

    ``folds=False`` leaves out the ``fold<k>/`` folders of a unit: they have their own
    ``steps.json``, and with ``train.fold_workers`` other processes write them while a step of
    the unit runs.
    """
    out: dict[str, Stat] = {}
    if not unit_dir.is_dir():
        return out
    for root, dirs, files in os.walk(unit_dir):
        rel_root = Path(root).relative_to(unit_dir)
        # Generated projects and traces are rewritten whole by their steps: not state.
        dirs[:] = [d for d in dirs if not (rel_root.parts[:1] == ("hls",) or d.startswith("trace_")
                                           or d.endswith("_trace") or d.startswith(".")
                                           or (not folds and not rel_root.parts and _FOLD_DIR.fullmatch(d)))]
        for name in files:
            if name.endswith(TRACKED_SUFFIXES) and name != "steps.json" and not name.startswith("."):
                path = Path(root) / name
                try:
                    st = path.stat()
                except OSError:
                    continue
                out[str(rel_root / name)] = (st.st_size, st.st_mtime_ns)
    return out


def check_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as its format, or None if it reads.

    Reads the whole file (zip CRCs, JSON text, the HDF5 superblock), so it is called only for
    files whose size or time changed, or after a step failed reading its inputs.
    """
    try:
        if not path.is_file():
            return "missing"
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".npz":
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
                if bad is not None:
                    return f"member {bad} fails its CRC"
        elif path.suffix == ".npy":
            import numpy as np

            np.load(path, mmap_mode="r", allow_pickle=False)
        elif path.suffix == ".h5":
            import h5py

            with h5py.File(path, "r") as f:
                f.attrs.keys()
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}"
    return None


def find_damaged(unit_dir: Path, completed: list[str], outputs: dict[str, dict[str, list]],
                 only_changed: bool) -> tuple[str, str, str] | None:
    """The first damaged state file of a completed step, in step order.

    Args:
        unit_dir: the unit folder.
        completed: completed step names, in run order.
        outputs: ``{step: {relative path: [size, mtime_ns]}}`` from ``steps.json``.
        only_changed: check only files whose size or time differ from the record (a resume);
            else check every recorded file (after a step failed reading).

    Returns:
        ``(relative path, step that wrote it, reason)`` or None.
    """
    for step in completed:
        for rel, stat in outputs.get(step, {}).items():
            path = unit_dir / rel
            if only_changed:
                try:
                    st = path.stat()
                    if (st.st_size, st.st_mtime_ns) == tuple(stat):
                        continue
                except OSError:
                    pass
            reason = check_file(path)
            if reason is not None:
                return rel, step, reason
    return None
