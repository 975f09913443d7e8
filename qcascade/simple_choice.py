"""``model.simple_prior: choose``: per fold, the cascade's own simple model or one refit on the other
patients' pool, whichever the gate routes less with on validation.

Pooled with other patients' seizures (:mod:`qcascade.simple_pool`), the simple model finds
morphologies its patient's training seizures never had, but it may lose the patient's own
background (docs/generalisation.md, rounds 43-44). Which of the two a fold needs shows on its
validation windows: each simple model gets the gate calibrated for it exactly as
:func:`qcascade.steps_eval.step_calibrate` calibrates the deployed one, and the one whose deployed
gate routes fewer validation windows is deployed (ties to the cascade's own). Both are the same
architecture, so the hardware is the same either way; the complex model is the cascade's own
(trained with its own simple model in stages 2-3).

The pooled copy starts from stage 1's simple model and is cached in
``checkpoints/simple_pooled/simple.npz`` (with ``history_simple_pool.json``), so a resumed
calibration reuses it.
"""

from __future__ import annotations

import numpy as np

from qcascade.io_utils import atomic_write_json
from qcascade.simple_pool import CHOOSE, load_pool, refit_simple
from qcascade.steps_data import windows
from qcascade.steps_fit import _simple_name, _strategy, load_weights, model_factory, save_weights, selected_electrode

__all__ = ["CHOOSE", "pooled_simple_copy", "choose_between"]

def pooled_simple_copy(ctx):
    """Stage 1's simple model refit on its electrode's training windows pooled with the unit's pool.

    Returns:
        The refit model ``(b, n_times, 1) -> (b, 2)`` logits (BatchNorm not folded; statistics
        refreshed on a sample of the patient's own training windows, as every stage's are).
    """
    from qcascade.models.folding import bn_sample, refresh_batchnorm

    path = ctx.unit_dir / "checkpoints" / "simple_pooled" / "simple.npz"
    strategy = _strategy(ctx)
    with strategy.scope():
        model = model_factory(ctx, _simple_name(ctx.cfg))()
    if path.is_file():
        load_weights(model, path)
        return model
    load_weights(model, ctx.unit_dir / "checkpoints" / "stage1" / "simple.npz")
    sets = windows(ctx)
    e = selected_electrode(ctx)
    train, val = sets["train"], sets.get("val_monitor", sets["val"])
    own = np.ascontiguousarray(train.X[:, :, e:e + 1])
    X_pool, y_pool = load_pool(ctx.run_dir, ctx.unit)
    hist = refit_simple(model, own, train.y, X_pool, y_pool, ctx.cfg.train, strategy,
                        X_val=np.ascontiguousarray(val.X[:, :, e:e + 1]), y_val=val.y,
                        own_share=ctx.cfg.model.simple_prior_own_share)
    # as stage 2 leaves the pooled simple model of ``other_patients`` (and every stage its models)
    refresh_batchnorm(model, bn_sample(train.X)[:, :, e:e + 1])
    atomic_write_json(ctx.path("history_simple_pool.json"), hist)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, path)  # last: marks the copy complete
    return model


def choose_between(own_routing: float, pooled_routing: float, own_tau: float, pooled_tau: float) -> dict:
    """The choice record (``deploy.json`` ``choices.simple_prior``): ``chosen`` is ``pooled`` only
    when its deployed gate routes strictly fewer validation windows than the own model's."""
    pooled = pooled_routing < own_routing - 1e-12
    return {"chosen": "pooled" if pooled else "own", "criterion": "validation routing at each model's calibrated gate",
            "val_routing": {"own": float(own_routing), "pooled": float(pooled_routing)},
            "tau": {"own": float(own_tau), "pooled": float(pooled_tau)}}
