"""Run directories: named, resumable steps whose completion and timing are recorded on disk.

Layout (FINN-style build steps)::

    projects/<run>/config.yaml          resolved config of the run
    projects/<run>/<unit>/steps.json    {"completed": [...], "timings_s": {...}, "config_hash": ...}

A step is recorded as complete only after it has written all its outputs (atomically), so a run
killed mid-step resumes at that step. A run directory made with another config is never
overwritten without ``--force``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from qcascade.config import RunConfig, config_hash, config_to_yaml
from qcascade.errors import RunDirError
from qcascade.io_utils import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class Step:
    """A named build step: ``fn(ctx)`` writes its outputs into ``ctx.unit_dir``."""

    name: str
    fn: Callable
    doc: str = ""


@dataclass
class StepLog:
    """Completion and timing of the steps of one unit (a patient, or the pooled cohort)."""

    path: Path
    completed: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "StepLog":
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
            return cls(path, list(data["completed"]), dict(data["timings_s"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise RunDirError(f"{path}: step log is unreadable ({exc}); rerun with --force") from exc

    def mark(self, name: str, seconds: float) -> None:
        if name not in self.completed:
            self.completed.append(name)
        self.timings_s[name] = round(seconds, 2)
        atomic_write_json(self.path, {"completed": self.completed, "timings_s": self.timings_s})

    def forget_from(self, names: Sequence[str], first: str) -> None:
        """Mark ``first`` and every step after it (in ``names`` order) as not done."""
        later = set(names[list(names).index(first):])
        self.completed = [n for n in self.completed if n not in later]
        self.timings_s = {k: v for k, v in self.timings_s.items() if k not in later}
        atomic_write_json(self.path, {"completed": self.completed, "timings_s": self.timings_s})


def prepare_run_dir(run_dir: Path, cfg: RunConfig, *, force: bool) -> bool:
    """Create or reopen ``run_dir`` for ``cfg``.

    Returns:
        True when a previous run with the same config is resumed.

    Raises:
        RunDirError: the folder holds something else, or a run with another config, and
            ``force`` is not set.
    """
    run_dir = Path(run_dir)
    saved_hash_file = run_dir / "config.hash"
    new_hash = config_hash(cfg)
    if run_dir.exists() and any(run_dir.iterdir()):
        if force:
            log.warning("--force: removing previous run directory %s", run_dir)
            shutil.rmtree(run_dir)
        elif not saved_hash_file.exists():
            raise RunDirError(f"{run_dir}: exists and is not a qcascade run directory; "
                              "choose another --out or pass --force to replace it")
        elif saved_hash_file.read_text().strip() != new_hash:
            raise RunDirError(f"{run_dir}: holds a run made with a different config "
                              f"(see {run_dir / 'config.yaml'}); choose another --out, or pass "
                              "--force to replace it")
        else:
            return True
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", config_to_yaml(cfg))
    atomic_write_text(saved_hash_file, new_hash + "\n")
    return False


def run_steps(steps: Sequence[Step], ctx, unit_dir: Path, *, from_step: str | None = None,
              until_step: str | None = None) -> StepLog:
    """Run ``steps`` in order for one unit, skipping those already completed.

    Args:
        steps: the ordered build steps.
        ctx: object handed to each step (holds config, unit dir and cached data).
        unit_dir: folder of this unit; ``steps.json`` records progress there.
        from_step: rerun this step and all after it even if completed.
        until_step: stop after this step.
    """
    names = [s.name for s in steps]
    for name in (from_step, until_step):
        if name is not None and name not in names:
            raise RunDirError(f"unknown step {name!r}; steps are: {', '.join(names)}")
    unit_dir.mkdir(parents=True, exist_ok=True)
    steplog = StepLog.load(unit_dir / "steps.json")
    if from_step is not None:
        steplog.forget_from(names, from_step)
    for step in steps:
        if step.name in steplog.completed:
            log.info("[%s] %s: already done, skipped", unit_dir.name, step.name)
        else:
            log.info("[%s] %s ...", unit_dir.name, step.name)
            t0 = time.perf_counter()
            step.fn(ctx)
            dt = time.perf_counter() - t0
            steplog.mark(step.name, dt)
            log.info("[%s] %s done in %.1f s", unit_dir.name, step.name, dt)
        if step.name == until_step:
            break
    return steplog
