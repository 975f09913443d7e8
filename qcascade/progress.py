"""One progress display for a run (tqdm on stderr), the console log around it, and the run log file.

The console shows the progress bar (unit k/n, fold, step, ETA), warnings and a few lines per run;
``--verbose`` adds every step line and the per-epoch training lines. ``<run>/run.log`` always
gets everything at DEBUG level (step start/skip/done lines, one line per training epoch).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from logging.handlers import MemoryHandler
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from qcascade.errors import QCascadeError

STEP_LOGGER = "qcascade.progress"  # step start/skip/done lines: in run.log, on the console with --verbose
LOG_NAME = "run.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_state: dict = {"verbose": True, "bar": None}


def verbose() -> bool:
    """True when per-epoch output goes to the console (library use, or the CLI's ``--verbose``)."""
    return bool(_state["verbose"])


class _TqdmHandler(logging.StreamHandler):
    """Writes log lines above the progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _quiet_steps(record: logging.LogRecord) -> bool:
    return verbose() or record.name != STEP_LOGGER or record.levelno >= logging.WARNING


class _ExpectedRetracing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def setup_console_logging(verbose_flag: bool) -> None:
    """Console logging for the CLI: qcascade INFO (DEBUG with ``verbose_flag``), others WARNING."""
    _state["verbose"] = bool(verbose_flag)
    _state["cli"] = True
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _TqdmHandler)]:
        root.removeHandler(h)
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    handler.setLevel(logging.DEBUG if verbose_flag else logging.INFO)
    handler.addFilter(_quiet_steps)
    root.addHandler(handler)
    # Libraries (qkeras, hls4ml) log chatter on the root logger: keep it at WARNING.
    root.setLevel(logging.WARNING)
    # qcascade records everything; the handlers decide what is shown where.
    logging.getLogger("qcascade").setLevel(logging.DEBUG)
    logging.captureWarnings(True)  # a Python warning lands in run.log too, not only on the console
    # The steps call predict() on a dozen distinct models (baselines, folded exports), each traced
    # once; TF's heuristic reports that as "excessive retracing". Expected here, so not shown.
    tf_log = logging.getLogger("tensorflow")
    if not any(isinstance(f, _ExpectedRetracing) for f in tf_log.filters):
        tf_log.addFilter(_ExpectedRetracing())


@contextlib.contextmanager
def run_log(run_dir: Path, *, buffered: bool = False) -> Iterator[Path]:
    """Append every qcascade record (DEBUG and up) and every warning to ``<run_dir>/run.log``.

    Call once the run directory exists and is locked (``--force`` may have replaced it).
    ``buffered`` (``qcascade convert/csim/report``) keeps the records in memory and appends them
    when the command ends, except when it ends refusing bad input (a :class:`QCascadeError`):
    a refused command writes nothing into the run.
    """
    path = Path(run_dir) / LOG_NAME
    target = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
    target.setLevel(logging.DEBUG)
    target.setFormatter(logging.Formatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    handler: logging.Handler = (MemoryHandler(1 << 30, flushLevel=logging.CRITICAL + 1, target=target,
                                              flushOnClose=True) if buffered else target)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield path
    except QCascadeError:
        if isinstance(handler, MemoryHandler):
            handler.buffer.clear()
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
        target.close()


@contextlib.contextmanager
def bar(total: int, desc: str = "run") -> Iterator[tqdm | None]:
    """The run's progress bar over ``total`` steps (units x steps); shown only by the CLI."""
    if not _state.get("cli"):
        yield None  # library use (tests, notebooks): no bar
        return
    interactive = sys.stderr.isatty()
    with tqdm(total=total, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True,
              mininterval=0.5 if interactive else 30.0, leave=True) as b:
        _state["bar"], _state["postfix"], _state["tty"] = b, {}, interactive
        try:
            yield b
        finally:
            _state["bar"] = None


def note(**fields: object) -> None:
    """Show ``fields`` (unit, fold, step) next to the bar; nothing without a bar."""
    b = _state["bar"]
    if b is not None:
        post = _state["postfix"]
        for k, v in fields.items():
            if v is None:
                post.pop(k, None)
            else:
                post[k] = v
        b.set_postfix(post, refresh=_state["tty"])  # a log file gets the bar at its interval only


def advance(n: int = 1) -> None:
    """One more step of the run done (or skipped)."""
    b = _state["bar"]
    if b is not None:
        b.update(n)
