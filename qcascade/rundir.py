"""Run directories: named, resumable steps whose completion and timing are recorded on disk.

Layout (FINN-style build steps)::

    projects/<run>/.qcascade-run        marker: this folder is a run (``--force`` deletes nothing else)
    projects/<run>/.qcascade-lock       held while a run uses the folder (see :mod:`qcascade.runlock`)
    projects/<run>/config.yaml          resolved config of the run
    projects/<run>/<unit>/steps.json    {"completed": [...], "timings_s": {...}, "config_hash": ...}

A step is recorded as complete only after it has written all its outputs (atomically), so a run
killed mid-step resumes at that step. A run directory made with another config is never
overwritten without ``--force``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from qcascade.config import RunConfig, config_hash, config_to_yaml
from qcascade.checkpoints import DAMAGE_ERRORS, find_damaged, snapshot
from qcascade.errors import QCascadeError, RunDirError
from qcascade.io_utils import atomic_write_json, atomic_write_text
from qcascade import progress
from qcascade.runlock import LOCK_NAME, RunLock

log = logging.getLogger(__name__)
step_log = logging.getLogger(progress.STEP_LOGGER)


@dataclass
class Step:
    """A named build step: ``fn(ctx)`` writes its outputs into ``ctx.unit_dir``."""

    name: str
    fn: Callable
    doc: str = ""
    #: the step that runs or waits for the unit's other folds: the files of its ``fold<k>/``
    #: folders are recorded as its outputs (for every other step they are not its writes).
    owns_folds: bool = False


@dataclass
class StepLog:
    """Completion, timing and written state files of the steps of one unit (a patient, or pooled)."""

    path: Path
    completed: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, dict[str, list]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "StepLog":
        """Read ``steps.json``; a damaged one is set aside (``steps.json.damaged``) and reported.

        Raises:
            RunDirError: the step log is unreadable; the unit restarts from its first step on
                the next run (which steps completed is unknown).
        """
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
            return cls(path, list(data["completed"]), dict(data["timings_s"]), dict(data.get("outputs", {})))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = path.with_name(path.name + ".damaged")
            os.replace(path, aside)
            raise RunDirError(f"{path}: step log is damaged ({type(exc).__name__}), written by every step of "
                              f"unit {path.parent.name}; set aside as {aside.name}: rerun the same command to "
                              "recompute this unit from its first step") from exc

    def _save(self) -> None:
        atomic_write_json(self.path, {"completed": self.completed, "timings_s": self.timings_s,
                                      "outputs": self.outputs})

    def mark(self, name: str, seconds: float, written: dict[str, list] | None = None) -> None:
        if name not in self.completed:
            self.completed.append(name)
        self.timings_s[name] = round(seconds, 2)
        if written is not None:
            for files in self.outputs.values():  # the latest writer owns a file
                for rel in written:
                    files.pop(rel, None)
            self.outputs[name] = {rel: list(st) for rel, st in written.items()}
        self._save()

    def forget_from(self, names: Sequence[str], first: str) -> None:
        """Mark ``first`` and every step after it (in ``names`` order) as not done."""
        later = set(names[list(names).index(first):])
        self.completed = [n for n in self.completed if n not in later]
        self.timings_s = {k: v for k, v in self.timings_s.items() if k not in later}
        self.outputs = {k: v for k, v in self.outputs.items() if k not in later}
        self._save()


MARKER = ".qcascade-run"  # written when a run directory is created; --force deletes only such folders
# Characters that generated build scripts cannot carry in a path: hls4ml's build_lib.sh pastes the
# project path into a C string literal (-DWEIGHTS_DIR="..."), and TCL/shell give meaning to the rest.
_UNSAFE_PATH_CHARS = set('"\'\\$`;[]{}') | {chr(c) for c in range(32)} | {chr(127)}


def is_run_dir(path: Path) -> bool:
    """True for a folder this project made: the run marker, or ``config.hash`` (runs made before the marker)."""
    return (path / MARKER).is_file() or (path / "config.hash").is_file()


def check_run_path(run_dir: Path, what: str = "--out") -> Path:
    """Refuse a run path that generated scripts cannot carry; returns the absolute path.

    Raises:
        RunDirError: the absolute path holds a quote, backslash, ``$``, backtick, ``;``, a bracket,
            a brace or a control character.
    """
    absolute = Path(os.path.abspath(run_dir))
    bad = sorted(set(str(absolute)) & _UNSAFE_PATH_CHARS)
    if bad:
        raise RunDirError(f"{what} {str(absolute)!r}: contains {', '.join(map(repr, bad))}, which the generated "
                          "C++/TCL/shell build files cannot carry; choose a path without quotes, "
                          "backslashes, $, `, ;, brackets, braces or control characters")
    return absolute


def check_out_dir(run_dir: Path, cfg: RunConfig, *, force: bool) -> str:
    """Decide what :func:`prepare_run_dir` will do, writing and deleting nothing.

    Returns:
        ``"new"`` (create), ``"resume"`` (same config) or ``"replace"`` (``--force`` on a run).

    Raises:
        RunDirError: the path is unusable (a file, under a file, not writable, unsafe characters),
            holds something that is not a run, a run with another config without ``force``, or
            ``force`` would delete ``.``, an ancestor of the working directory, the home directory
            or a symlink.
    """
    run_dir = Path(run_dir)
    absolute = check_run_path(run_dir)
    if run_dir.is_symlink() and force:
        raise RunDirError(f"{run_dir}: is a symlink (to {os.path.realpath(run_dir)}); --force never deletes "
                          "through a symlink: remove the link or pass the real folder as --out")
    for parent in [absolute, *absolute.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                where = "is" if parent == absolute else f"is under {parent}, which is"
                raise RunDirError(f"{run_dir}: {where} a file, not a folder; choose another --out")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise RunDirError(f"{parent}: not writable (permission denied); choose another --out")
            break
    if not run_dir.exists():
        return "new"
    try:
        empty = not any(p.name != LOCK_NAME for p in run_dir.iterdir())
    except OSError as exc:
        raise RunDirError(f"{run_dir}: cannot list the folder ({exc.strerror})") from exc
    if empty:
        return "new"
    if force:
        real = Path(os.path.realpath(run_dir))
        cwd, home = Path.cwd().resolve(), Path.home().resolve()
        if real == cwd or real in cwd.parents or real == home or real == Path(real.anchor):
            raise RunDirError(f"{run_dir}: --force refuses to delete the working directory, one of its "
                              "parents or the home directory; pass the run folder itself as --out")
        if not is_run_dir(run_dir):
            raise RunDirError(f"{run_dir}: not a qcascade run directory (no {MARKER}); --force deletes only "
                              "run directories, so nothing was deleted; choose another --out")
        return "replace"
    if not is_run_dir(run_dir):
        raise RunDirError(f"{run_dir}: exists and is not a qcascade run directory; "
                          "choose another --out (--force replaces run directories only)")
    saved = run_dir / "config.hash"
    try:
        same = saved.read_text().strip() == config_hash(cfg)
    except (OSError, UnicodeDecodeError):
        same = False
    if not same and _saved_config_matches(run_dir, cfg):
        same = True  # config.hash damaged, config.yaml intact: prepare_run_dir rewrites the hash
    if not same:
        raise RunDirError(f"{run_dir}: holds a run made with a different config "
                          f"(see {run_dir / 'config.yaml'}); choose another --out, or pass "
                          "--force to replace it")
    return "resume"


def _saved_config_matches(run_dir: Path, cfg: RunConfig) -> bool:
    """True if the run's ``config.yaml`` resolves to ``cfg`` (used when ``config.hash`` is damaged).

    The saved file is a full resolved config, so a key missing from it was added after the run was
    made: the run behaved as the key's value in ``_HASH_OMIT_AT_DEFAULT``, not as today's default.
    """
    from qcascade.config import _HASH_OMIT_AT_DEFAULT, load_config, load_yaml
    from qcascade.errors import ConfigError

    path = run_dir / "config.yaml"
    try:
        saved = load_yaml(path) or {}
        then: dict = {}
        for *parents, key in _HASH_OMIT_AT_DEFAULT:
            node = saved
            for name in parents:
                node = node.get(name) if isinstance(node, dict) else None
            if not isinstance(node, dict) or key not in node:
                target = then
                for name in parents:
                    target = target.setdefault(name, {})
                target[key] = _HASH_OMIT_AT_DEFAULT[(*parents, key)]
        return config_hash(load_config(path, then)) == config_hash(cfg)
    except (ConfigError, OSError, AttributeError):
        return False


def prepare_run_dir(run_dir: Path, cfg: RunConfig, *, force: bool, lock: RunLock | None = None) -> bool:
    """Create or reopen ``run_dir`` for ``cfg`` (checked first by :func:`check_out_dir`).

    Args:
        run_dir: the run folder.
        cfg: the resolved config.
        force: replace a run made with another config (only a folder carrying the run marker).
        lock: a held :class:`~qcascade.runlock.RunLock` of ``run_dir``; without one the folder is
            locked here for the duration of the call. ``--force`` keeps the lock file while it
            clears the folder, so a concurrent run cannot slip in.

    Returns:
        True when a previous run with the same config is resumed.

    Raises:
        RunDirError: see :func:`check_out_dir`; OS errors creating the folder, as one line.
    """
    run_dir = Path(run_dir)
    action = check_out_dir(run_dir, cfg, force=force)
    if action == "resume":
        saved = run_dir / "config.hash"
        try:
            intact = saved.read_text().strip() == config_hash(cfg)
        except (OSError, UnicodeDecodeError):
            intact = False
        if not intact:
            log.warning("%s: damaged, but %s holds this config; rewriting it", saved, run_dir / "config.yaml")
            atomic_write_text(saved, config_hash(cfg) + "\n")
        return True
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{run_dir}: cannot create the run directory ({exc.strerror})") from exc
    own = lock is None
    lock = lock or RunLock(run_dir).acquire()
    try:
        if action == "replace":
            log.warning("--force: removing previous run directory %s", run_dir)
            for child in run_dir.iterdir():
                if child.name == LOCK_NAME:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        atomic_write_text(run_dir / MARKER, "qcascade run directory: `--force` may replace this folder\n")
        atomic_write_text(run_dir / "config.yaml", config_to_yaml(cfg))
        atomic_write_text(run_dir / "config.hash", config_hash(cfg) + "\n")
    except OSError as exc:
        raise RunDirError(f"{run_dir}: cannot write the run directory ({exc.strerror}: {exc.filename})") from exc
    finally:
        if own:
            lock.release()
    return False


def check_step_names(names: Sequence[str], *steps: str | None) -> None:
    """RunDirError unless every given step name is one of ``names``."""
    for name in steps:
        if name is not None and name not in names:
            raise RunDirError(f"unknown step {name!r}; steps are: {', '.join(names)}")


def run_steps(steps: Sequence[Step], ctx, unit_dir: Path, *, from_step: str | None = None,
              until_step: str | None = None, count_progress: bool = True) -> StepLog:
    """Run ``steps`` in order for one unit, skipping those already completed.

    State files of completed steps that changed since they were written are checked first; a
    damaged one (or one a step fails to read) rolls the log back to before the step that wrote
    it, and a :class:`RunDirError` names the file and the step.

    Args:
        steps: the ordered build steps.
        ctx: object handed to each step (holds config, unit dir and cached data).
        unit_dir: folder of this unit; ``steps.json`` records progress there.
        from_step: rerun this step and all after it even if completed.
        until_step: stop after this step.
        count_progress: advance the run's progress bar per step (False for the steps of a fold,
            which run inside one step of the unit).
    """
    names = [s.name for s in steps]
    check_step_names(names, from_step, until_step)
    unit_dir.mkdir(parents=True, exist_ok=True)
    steplog = StepLog.load(unit_dir / "steps.json")
    if from_step is not None:
        steplog.forget_from(names, from_step)
    _raise_if_damaged(steplog, names, unit_dir, only_changed=True)
    for step in steps:
        if step.name in steplog.completed:
            step_log.info("[%s] %s: already done, skipped", unit_dir.name, step.name)
        else:
            progress.note(step=step.name)
            step_log.info("[%s] %s ...", unit_dir.name, step.name)
            t0 = time.perf_counter()
            written = _run_tracked(step, ctx, steplog, names, unit_dir)
            dt = time.perf_counter() - t0
            steplog.mark(step.name, dt, written)
            step_log.info("[%s] %s done in %.1f s", unit_dir.name, step.name, dt)
        if count_progress:
            progress.advance()
        if step.name == until_step:
            break
    return steplog


def _run_tracked(step: Step, ctx, steplog: StepLog, names: Sequence[str], unit_dir: Path) -> dict:
    """Run one step; return the state files it wrote. A failure reading a damaged file is reported."""
    before = snapshot(unit_dir, folds=False)
    try:
        step.fn(ctx)
    except DAMAGE_ERRORS + (QCascadeError,) as exc:
        _raise_if_damaged(steplog, names, unit_dir, only_changed=False, cause=exc, failed=step.name)
        raise
    written = {rel: st for rel, st in snapshot(unit_dir, folds=False).items() if before.get(rel) != st}
    if step.owns_folds:  # fold files may have been written by worker processes before the step began
        written.update({rel: st for rel, st in snapshot(unit_dir).items() if rel not in before})
    return written


def run_step_checked(step: Step, ctx) -> float:
    """Run one step outside :func:`run_steps` (``qcascade convert/csim/report``) and record it.

    Like :func:`run_steps`, the step's completion, time and written state files go into the unit's
    ``steps.json`` (the latest writer owns a file), so a later resume checks what the rerun wrote;
    a damaged input is named.

    Returns:
        The step's wall time in seconds.
    """
    steplog = StepLog.load(ctx.unit_dir / "steps.json")
    names = list(steplog.completed) + ([step.name] if step.name not in steplog.completed else [])
    progress.note(step=step.name)
    step_log.info("[%s] %s ...", ctx.unit_dir.name, step.name)
    t0 = time.perf_counter()
    written = _run_tracked(step, ctx, steplog, names, ctx.unit_dir)
    dt = time.perf_counter() - t0
    steplog.mark(step.name, dt, written)
    step_log.info("[%s] %s done in %.1f s", ctx.unit_dir.name, step.name, dt)
    progress.advance()
    return dt


def _raise_if_damaged(steplog: StepLog, names: Sequence[str], unit_dir: Path, *, only_changed: bool,
                      cause: BaseException | None = None, failed: str | None = None) -> None:
    done = [n for n in names if n in steplog.completed]
    found = find_damaged(unit_dir, done, steplog.outputs, only_changed)
    if found is None:
        return
    rel, writer, reason = found
    steplog.forget_from(names, writer)
    during = f" (step {failed} failed reading it)" if failed else ""
    raise RunDirError(f"{unit_dir / rel}: damaged ({reason}){during}; written by step {writer}, which is now "
                      f"marked not done: rerun the same command to recompute from {writer}") from cause
