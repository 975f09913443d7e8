"""The fold loop step: folds 1..n-1 of a unit run the training steps in ``<unit>/fold<k>/``.

See :mod:`qcascade.folds` for the fold plan and the pooling of the folds' test metrics.
"""

from __future__ import annotations

import gc
import json
import logging
import time

from qcascade import progress
from qcascade.folds import FoldContext, fold_dirs, fold_plan, pool_folds
from qcascade.io_utils import atomic_write_json
from qcascade.rundir import run_steps
from qcascade.train_steps import TRAIN_STEPS

log = logging.getLogger(__name__)


def step_folds(ctx) -> None:
    """Train and evaluate folds 1..n-1 (``train.folds: all``), then pool every fold's test windows."""
    cfg = ctx.cfg
    single = cfg.pooled or cfg.data.split == "lopo" or cfg.train.folds == "first"
    plan = [None] if single else fold_plan(ctx.recordings, "all")
    t0 = time.perf_counter()
    if len(plan) > 1:
        _release(ctx.cache)  # fold 0's models are reloaded from disk by the steps that need them
    for fold in plan[1:]:
        fctx = FoldContext(cfg, ctx.run_dir, ctx.unit, ctx.recordings, fold)
        log.info("[%s] fold %d/%d (test %s) ...", ctx.unit, fold.index + 1, len(plan), ", ".join(fold.test_records))
        progress.note(fold=f"{fold.index + 1}/{len(plan)}")
        run_steps(TRAIN_STEPS, fctx, fctx.unit_dir, count_progress=False)
        fctx.cache.clear()
        del fctx
        _release({})
        done = fold.index
        log.info("[%s] fold %d/%d done; %.0f s for %d fold(s) in this process, about %.0f s to go",
                 ctx.unit, fold.index + 1, len(plan), time.perf_counter() - t0, done,
                 (time.perf_counter() - t0) / done * (len(plan) - 1 - done))
    progress.note(fold=None)
    metrics = pool_folds(fold_dirs(ctx.unit_dir, len(plan)))
    if cfg.data.dataset == "swec-long":
        from qcascade.steps_longterm import pool_longterm

        pool_longterm(fold_dirs(ctx.unit_dir, len(plan)), metrics)
    old = ctx.unit_dir / "metrics.json"
    if old.exists() and "csim" in json.loads(old.read_text()):
        metrics["csim"] = json.loads(old.read_text())["csim"]
    atomic_write_json(ctx.path("metrics.json"), metrics)


def _release(cache: dict) -> None:
    """Drop the TensorFlow objects of ``cache`` and Keras' global state.

    Measured: without it a 5-fold patient grew by about 1.2 GB of resident memory per fold
    (models built in a loop stay referenced by Keras' global state), enough to exhaust a 23 GB
    machine over a 3-patient run. Windows (numpy) stay cached.
    """
    import tensorflow as tf

    for key in ("trainer", "loaded", "deployed", "hls", "strategy"):
        cache.pop(key, None)
    gc.collect()
    tf.keras.backend.clear_session()
    gc.collect()
