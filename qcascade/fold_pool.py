"""Folds trained side by side in worker processes (``train.fold_workers``).

One training process keeps about one core busy: the convolutions of a batch of 64 windows are
too small to spread over cores (docs/evaluation.md, "Time"). With ``train.folds: all`` a patient
has one independent training job per seizure, so a run submits every fold of every unit at its
start, and ``fold_workers`` processes (each imports TensorFlow once per fold) train them in
order, each unit's fold 0 first, so that the main process can convert and C-simulate a unit's
deployed models while the workers train its other folds.

Every fold runs in a fresh process (``max_tasks_per_child=1``): a process that trained folds one
after the other kept about 140 MB of resident memory per fold although the Keras session was
cleared between them (docs/long_term.md), so a patient with tens of seizures, or a cohort's
folds shared by two long-lived workers, would grow without bound. A new process costs about 3 s of
CPU (Python, TensorFlow and QKeras imports) per fold. ``swec-long`` runs use the workers even with
``fold_workers: 1`` (:func:`pool_workers`), so that their main process trains no fold at all.

A worker runs exactly the steps a sequential run runs (:data:`qcascade.train_steps.TRAIN_STEPS`
in the fold's folder, recorded in its ``steps.json``), so results do not depend on the number of
workers or on which process trained a fold (``tests/test_fold_pool.py``), and a killed run
resumes every fold at its last completed step. A worker whose parent process has died stops: a
rerun then owns the run directory alone.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Optional, Sequence

from qcascade import progress
from qcascade.errors import QCascadeError
from qcascade.folds import Fold, FoldContext, UnitContext, fold_plan
from qcascade.rundir import run_steps
from qcascade.train_steps import TRAIN_STEPS

log = logging.getLogger(__name__)

__all__ = ["FoldPool", "unit_folds", "pool_workers", "FoldFailed"]


class FoldFailed(QCascadeError):
    """A fold failed in a worker process for a reason that is not a :class:`QCascadeError`."""


def unit_folds(cfg, recordings: Sequence) -> list[Optional[Fold]]:
    """The folds of a unit as ``step_folds`` runs them: ``[None]`` (the unit folder only) for
    single-fold runs, else the fold plan (fold 0 = the unit folder)."""
    if cfg.pooled or cfg.data.split == "lopo" or cfg.train.folds == "first":
        return [None]
    return fold_plan(recordings, "all", cfg.data.carve_validation_below)


def pool_workers(cfg) -> int:
    """Worker processes that train the folds of ``train.folds: all`` (0: the main process trains
    them one after the other).

    ``fold_workers >= 2`` for every dataset; ``swec-long`` also with ``fold_workers: 1`` (one
    worker, a fresh process per fold), because there memory is the constraint: a process that
    trains fold after fold grows by each fold (module doc). Other datasets keep ``fold_workers: 1``
    in the main process (no process start per fold for small runs; a debugger sees the training).
    """
    if cfg.train.folds != "all":
        return 0
    if cfg.train.fold_workers >= 2 or cfg.data.dataset == "swec-long":
        return cfg.train.fold_workers
    return 0


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(3)  # orphaned: the run was killed; a rerun resumes what this fold completed
        time.sleep(1.0)


def _init_worker(run_dir: str, parent_pid: int, verbose: bool, cwd: str) -> None:
    """Working directory and logging of a worker: the run's working directory ``cwd`` (a spawned
    process starts in its parent's current one, which the C simulation moves into an HLS project;
    docs/evaluation.md, "Fold workers"), everything to ``run.log`` (appended line by line, as the
    main process does), warnings also to the console; no progress bars."""
    os.chdir(cwd)
    progress._state["verbose"] = bool(verbose)
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    logging.getLogger("qcascade").setLevel(logging.DEBUG)
    fh = logging.FileHandler(Path(run_dir) / progress.LOG_NAME, mode="a", encoding="utf-8")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [worker %(process)d]: %(message)s",
                                      datefmt="%Y-%m-%d %H:%M:%S"))
    root.addHandler(fh)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    root.addHandler(console)
    logging.captureWarnings(True)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _train_fold(cfg, run_dir: str, unit: str, recordings: list, fold: Optional[Fold]) -> dict:
    """Worker: the training steps of one fold (``fold`` None or index 0: the unit folder).

    Returns:
        ``{"seconds": wall seconds, "pid": this worker's process id}``. A :class:`QCascadeError`
        is re-raised as is; anything else as :class:`FoldFailed` carrying the worker's traceback.
    """
    t0 = time.perf_counter()
    if fold is None or fold.index == 0:
        ctx = UnitContext(cfg, Path(run_dir), unit, recordings)
    else:
        ctx = FoldContext(cfg, Path(run_dir), unit, recordings, fold)
    try:
        # A fold whose steps all completed before (a resumed run) never imports TensorFlow.
        run_steps(TRAIN_STEPS, ctx, ctx.unit_dir, count_progress=False)
    except QCascadeError:
        raise
    except BaseException as exc:  # noqa: BLE001 - the traceback of another process, as text
        raise FoldFailed(f"{ctx.unit_dir}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}") from None
    # No clean-up: the process ends after this fold (max_tasks_per_child=1) and takes its memory along.
    return {"seconds": time.perf_counter() - t0, "pid": os.getpid()}


class FoldPool:
    """Worker processes training the folds of a run's units.

    Args:
        cfg: the resolved run config (``cfg.train.fold_workers`` processes).
        run_dir: the run directory (locked by the main process); relative paths of the run are
            relative to the working directory at construction, in every worker.
    """

    def __init__(self, cfg, run_dir: Path):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        # spawn: a fork of a process that has imported TensorFlow is not safe. One fold per
        # process (module doc). With 1, the replacement of exited workers cannot hit the deadlock
        # of gh-115634 (CPython 3.11+, max_tasks_per_child > 1): in 3.11's process.py only a task
        # that does not end its worker frees the idle-worker token a replacement could mistake
        # for a live worker, and here every task ends its worker.
        self._pool = ProcessPoolExecutor(
            cfg.train.fold_workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(str(self.run_dir), os.getpid(), progress.verbose(), os.getcwd()),
            max_tasks_per_child=1)
        self._futures: dict[tuple[str, int], tuple[Future, Optional[Fold], int]] = {}
        #: ``(unit, fold index) -> process id`` of the worker that trained each finished fold.
        self.worker_pids: dict[tuple[str, int], int] = {}
        self._t0 = time.perf_counter()

    def submit(self, unit: str, recordings: list, folds: Sequence[Optional[Fold]]) -> None:
        """Queue every fold of ``unit`` (``folds`` from :func:`unit_folds`)."""
        for k, fold in enumerate(folds):
            fut = self._pool.submit(_train_fold, self.cfg, str(self.run_dir), unit, recordings, fold)
            self._futures[(unit, k)] = (fut, fold, len(folds))

    def wait(self, unit: str, indices: Sequence[int]) -> None:
        """Block until the given folds of ``unit`` are trained; log each as it finishes.

        Raises:
            QCascadeError: the first fold that failed (later ones are cancelled by :meth:`close`).
        """
        pending = {self._futures[(unit, k)][0]: k for k in indices}
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                k = pending.pop(fut)
                _, fold, n = self._futures[(unit, k)]
                res = fut.result()  # re-raises the worker's error here
                self.worker_pids[(unit, k)] = res["pid"]
                tests = ", ".join(fold.test_records) if fold is not None else "the unit's test records"
                log.info("[%s] fold %d/%d (test %s) done in %.0f s by worker process %d (%d worker(s), "
                         "%.0f s since the run began)", unit, k + 1, n, tests, res["seconds"], res["pid"],
                         self.cfg.train.fold_workers, time.perf_counter() - self._t0)
                progress.note(fold=f"{k + 1}/{n} done")

    def close(self, cancel: bool = False) -> None:
        """Stop the workers. ``cancel`` (after an error or an interrupt) also stops the folds
        being trained: their completed steps are recorded, and a rerun resumes them."""
        if not cancel:
            self._pool.shutdown(wait=True)
            return
        for fut, _, _ in self._futures.values():
            fut.cancel()  # queued folds do not start
        procs = list((getattr(self._pool, "_processes", None) or {}).values())  # no public API before 3.14
        for p in procs:
            if p.is_alive():
                p.terminate()
        # wait=True joins the executor's manager thread before the executor drops its process
        # table: a worker that ended after its fold (max_tasks_per_child) makes that thread look
        # the table up, which failed with a TypeError traceback when shutdown(wait=False) had
        # already dropped it. The killed workers make the thread stop at once.
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "FoldPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(cancel=exc_type is not None)
