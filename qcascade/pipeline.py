"""The build: a list of named, resumable steps run per unit (one patient, or the pooled cohort).

Each ``step_*`` reads what earlier steps wrote in the unit folder and writes its own outputs
atomically; :func:`qcascade.rundir.run_steps` records completion and timing in ``steps.json``.
``python train_qkeras.py --list-steps`` prints them.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from qcascade import progress
from qcascade.cohort import discover_cohort as _discover
from qcascade.config import RunConfig, load_config
from qcascade.errors import DataError, RunDirError
from qcascade.fold_pool import FoldPool, pool_workers, unit_folds
from qcascade.folds import UnitContext
from qcascade.prior import check_prior, check_prior_leak
from qcascade.prior_other import prior_workers, train_other_patient_priors
from qcascade.simple_pool import build_simple_pools
from qcascade.rundir import (Step, check_out_dir, check_run_path, check_step_names, prepare_run_dir,
                             run_step_checked, run_steps)
from qcascade.runlock import RunLock
from qcascade.runtime import limit_tf_threads, numpy_base_pages
from qcascade import report
from qcascade.steps_folds import step_folds
from qcascade.steps_hw import step_convert, step_csim, write_hw_summary
from qcascade.train_steps import TRAIN_STEPS

log = logging.getLogger(__name__)


def step_report(ctx: UnitContext) -> None:
    """Per-unit report.md: metrics, plots, C simulation and hardware summary."""
    write_hw_summary(ctx)
    report.write_unit_report(ctx)


# The hardware steps read fold 0 only (the deployed models), so they come before step_folds: the
# main process converts and C-simulates a unit while the fold workers still train its other folds.
STEPS = TRAIN_STEPS + [
    Step("step_convert", step_convert, "hls4ml Vitis projects for the simple and complex paths"),
    Step("step_csim", step_csim, "C simulation vs QKeras, generated cascade top level + testbench"),
    Step("step_folds", step_folds, "the other folds (train.folds: all), pooled test metrics", owns_folds=True),
    Step("step_report", step_report, "report.md with numbers, plots and hardware summary"),
]
HW_STEPS = {"step_convert", "step_csim"}


def _steps_for(cfg: RunConfig) -> list[Step]:
    return [s for s in STEPS if cfg.hls.enabled or s.name not in HW_STEPS]


@contextlib.contextmanager
def _fold_pool(cfg: RunConfig, run_dir: Path, units: dict, steps: list, from_step, until_step):
    """A :class:`FoldPool` with every fold of every unit queued, or None: no workers
    (:func:`qcascade.fold_pool.pool_workers`), no fold step, a single fold per unit, or a partial
    rerun (``--from-step``/``--until-step`` run here, in order)."""
    if not pool_workers(cfg) or from_step or until_step or "step_folds" not in [s.name for s in steps]:
        yield None
        return
    folds = {u: unit_folds(cfg, recs) for u, recs in units.items()}
    if all(len(f) < 2 for f in folds.values()):
        yield None
        return
    with FoldPool(cfg, run_dir) as pool:
        for unit, recs in units.items():
            pool.submit(unit, recs, folds[unit])
        yield pool


def run_pipeline(cfg: RunConfig, run_dir: Path, *, force: bool = False, from_step: str | None = None,
                 until_step: str | None = None) -> dict:
    """Run (or resume) the whole flow for every unit, then write ``summary.json``.

    Everything a user can get wrong (step names, ``--out``, patients, data, sizes) is checked
    before anything is written or deleted; the run directory is locked while the run uses it.

    Returns:
        The summary dict (a row per unit and the means).
    """
    from qcascade.validate import check_memory, check_synthetic_patients

    numpy_base_pages()
    run_dir = Path(run_dir)
    steps = _steps_for(cfg)
    check_step_names([s.name for s in steps], from_step, until_step)
    check_prior(cfg)
    prior_workers(cfg, 1)  # with complex_prior: other_patients, one prior must fit in memory
    check_out_dir(run_dir, cfg, force=force)
    by_patient = None
    if cfg.data.dataset == "synthetic":
        check_synthetic_patients(cfg)
    else:
        by_patient = _discover(cfg, run_dir)  # reads file headers only
        if not by_patient:
            raise DataError(f"{cfg.data.data_dir}: no recordings found")
    check_memory(cfg, by_patient)
    if by_patient is not None:
        check_prior_leak(cfg, list(by_patient))
    limit_tf_threads(cfg.train.tf_threads)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{run_dir}: cannot create the run directory ({exc.strerror})") from exc
    with RunLock(run_dir) as lock:
        resumed = prepare_run_dir(run_dir, cfg, force=force, lock=lock)
        with progress.run_log(run_dir) as log_path:
            log.info("%s run directory %s (full log: %s)", "resuming" if resumed else "new", run_dir, log_path.name)
            if by_patient is None:
                by_patient = _discover(cfg, run_dir)
            units = {"pooled": [r for recs in by_patient.values() for r in recs]} if cfg.pooled else by_patient
            names = [s.name for s in steps]
            per_unit = names.index(until_step) + 1 if until_step else len(steps)
            if {"step_train_complex", "step_folds"} & set(names[names.index(from_step) if from_step else 0:per_unit]):
                # Before any fold: every fold of a patient starts stage 2 from that patient's prior.
                train_other_patient_priors(cfg, run_dir, list(units))
                build_simple_pools(cfg, run_dir, list(units))  # likewise for the simple model's pool
            with progress.bar(per_unit * len(units), desc=run_dir.name), \
                    _fold_pool(cfg, run_dir, units, steps, from_step, until_step) as pool:
                for k, (unit, recordings) in enumerate(units.items()):
                    progress.note(unit=f"{unit} ({k + 1}/{len(units)})")
                    if pool is not None:
                        pool.wait(unit, [0])  # fold 0's training steps ran in a worker
                    ctx = UnitContext(cfg, run_dir, unit, recordings, fold_pool=pool, from_step=from_step)
                    run_steps(steps, ctx, ctx.unit_dir, from_step=from_step, until_step=until_step)
            summary = report.write_summary(run_dir, list(units))
            log.info("done: %s", run_dir / "report.md")
            return summary


def rerun_steps(run_dir: Path, step_names: list[str], patients: list[str] | None = None,
                strict: bool = False) -> None:
    """Rerun named steps of an existing run (``qcascade convert/csim/report --run``); ``strict``
    refuses a design that does not fit its target (``hls.strict``)."""
    run_dir = Path(run_dir)
    check_run_path(run_dir, "--run")
    if not (run_dir / "config.yaml").exists():
        raise RunDirError(f"{run_dir}: not a qcascade run directory (no config.yaml)")
    cfg = load_config(run_dir / "config.yaml", {"hls": {"strict": True}} if strict else None)
    limit_tf_threads(cfg.train.tf_threads)
    numpy_base_pages()
    with RunLock(run_dir), progress.run_log(run_dir, buffered=True):
        by_patient = _discover(cfg, run_dir)
        units = {"pooled": [r for recs in by_patient.values() for r in recs]} if cfg.pooled else by_patient
        unknown = sorted(set(patients or ()) - set(units))
        if unknown:
            raise RunDirError(f"{run_dir}: no unit(s) {unknown} in this run (units: {', '.join(units)})")
        wanted = [s for s in STEPS if s.name in step_names]
        chosen = {u: r for u, r in units.items() if not patients or u in patients}
        with progress.bar(len(wanted) * len(chosen), desc=run_dir.name):
            for k, (unit, recordings) in enumerate(chosen.items()):
                progress.note(unit=f"{unit} ({k + 1}/{len(chosen)})")
                ctx = UnitContext(cfg, run_dir, unit, recordings)
                done = (ctx.unit_dir / "steps.json")
                if not done.exists():
                    raise RunDirError(f"{ctx.unit_dir}: no completed steps; run train_qkeras.py first")
                for step in wanted:
                    run_step_checked(step, ctx)
        report.write_summary(run_dir, list(units))
