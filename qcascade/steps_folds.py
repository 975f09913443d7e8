"""The fold loop step: folds 1..n-1 of a unit run the training steps in ``<unit>/fold<k>/``.

See :mod:`qcascade.folds` for the fold plan and the pooling of the folds' test metrics.
"""

from __future__ import annotations

import gc
import logging
import sys
import time

from qcascade import progress
from qcascade.fold_pool import unit_folds
from qcascade.folds import FoldContext, fold_dirs, pool_folds
from qcascade.io_utils import atomic_write_json
from qcascade.rundir import run_steps
from qcascade.train_steps import TRAIN_STEPS

log = logging.getLogger(__name__)


def step_folds(ctx) -> None:
    """Train and evaluate folds 1..n-1 (``train.folds: all``), or wait for the worker processes
    training them (``ctx.fold_pool``), then pool every fold's test windows."""
    plan = unit_folds(ctx.cfg, ctx.recordings)
    n = len(plan)
    if n > 1:
        _release(ctx.artifacts)  # fold 0's models are reloaded from disk by the steps that need them
    if n > 1 and getattr(ctx, "fold_pool", None) is not None:
        ctx.fold_pool.wait(ctx.unit, range(1, n))
    else:
        _train_here(ctx, plan)
    progress.note(fold=None)
    # The unit's only metrics.json writer: C-simulation numbers stay in csim.json (step_csim).
    metrics = pool_folds(fold_dirs(ctx.unit_dir, n))
    if ctx.cfg.data.dataset == "swec-long":
        from qcascade.steps_longterm import pool_longterm

        pool_longterm(fold_dirs(ctx.unit_dir, n), metrics)
    atomic_write_json(ctx.path("metrics.json"), metrics)


def _train_here(ctx, plan: list) -> None:
    """Folds 1..n-1 in this process, one after the other (``train.fold_workers: 1`` other than
    ``swec-long``, ``--from-step``/``--until-step``: :func:`qcascade.fold_pool.pool_workers`)."""
    t0 = time.perf_counter()
    # --from-step of a fold step reruns it in every fold: otherwise the pooled metrics would mix
    # fold 0's new results with the other folds' old ones (e.g. after a gate change).
    from_step = getattr(ctx, "from_step", None)
    from_step = from_step if from_step in [s.name for s in TRAIN_STEPS] else None
    for fold in plan[1:]:
        fctx = FoldContext(ctx.cfg, ctx.run_dir, ctx.unit, ctx.recordings, fold)
        log.info("[%s] fold %d/%d (test %s) ...", ctx.unit, fold.index + 1, len(plan), ", ".join(fold.test_records))
        progress.note(fold=f"{fold.index + 1}/{len(plan)}")
        run_steps(TRAIN_STEPS, fctx, fctx.unit_dir, from_step=from_step, count_progress=False)
        del fctx
        _release(None)
        done = fold.index
        log.info("[%s] fold %d/%d done; %.0f s for %d fold(s) in this process, about %.0f s to go",
                 ctx.unit, fold.index + 1, len(plan), time.perf_counter() - t0, done,
                 (time.perf_counter() - t0) / done * (len(plan) - 1 - done))


def _release(artifacts) -> None:
    """Drop the TensorFlow objects of ``artifacts`` (if given) and Keras' global state.

    Measured: without it a 5-fold patient grew by about 1.2 GB of resident memory per fold
    (models built in a loop stay referenced by Keras' global state), enough to exhaust a 23 GB
    machine over a 3-patient run. Windows (numpy) stay cached.
    """
    if artifacts is not None:
        artifacts.release_models()
    gc.collect()
    if "tensorflow" not in sys.modules:  # folds trained by workers: this process never needed it
        return
    import tensorflow as tf

    tf.keras.backend.clear_session()
    gc.collect()
