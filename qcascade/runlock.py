"""An exclusive lock on a run directory while a run (or ``qcascade convert/csim/report``) uses it.

The lock is ``<run>/.qcascade-lock``, held with ``fcntl.flock`` for the life of the process and
holding ``{"pid", "host", "started"}`` so that a refused second run can name the holder. ``flock``
is released by the kernel when the holder dies, so a lock file left by a killed run is not a live
lock: the next run takes it over and logs a warning naming the dead holder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

from qcascade.errors import RunDirError

LOCK_NAME = ".qcascade-lock"

log = logging.getLogger(__name__)


class RunLock:
    """Context manager: ``with RunLock(run_dir): ...``; raises RunDirError when another process holds it."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            raise RunDirError(f"{self.path}: cannot create the run lock ({exc.strerror})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read(fd))
            os.close(fd)
            raise RunDirError(f"{self.path.parent}: in use by another qcascade run ({holder}); wait for it "
                              "to finish or choose another --out") from None
        previous = _read(fd)
        if previous:
            log.warning("%s: taking over the lock left by a run that is no longer running (%s)",
                        self.path, _describe(previous))
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # an empty lock file reads as "nobody": no stale warning next time
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        return json.loads(data) if data else {}
    except (OSError, ValueError):
        return {"unreadable": True}


def _describe(info: dict) -> str:
    if not info or info.get("unreadable"):
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"
