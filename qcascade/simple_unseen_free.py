"""``train.gate_unseen_free_simple: choose``: on a fold whose training seizures include ones the
deployed electrode does not see, a second simple model trained without those seizures, deployed when
its gate costs less on validation.

Fitted to ictal labels on windows that look interictal at its electrode, the simple model learns to call
some interictal-looking windows ictal, and the gate routes every one of those calls (on the multifocal
stress patients most routed windows are such calls that the complex model then rejects). Trained
without them, it leaves those seizures to the probe (``train.gate_unseen_probe_every``) and routes
less, but on a fold with few seizures it may lose what it had learnt (docs/generalisation.md, round
51). Which of the two a fold needs shows on its validation windows: each gets the gate calibrated for
it exactly as :func:`qcascade.steps_eval.step_calibrate` calibrates the deployed one, and
:func:`choose_unseen_free` picks. Same architecture and electrode, so the hardware is the same either
way; the complex model is the cascade's own.

The model is trained as the simple-alone baseline is (:func:`qcascade.training.baselines.train_simple_alone`,
the same budget and seeds) and cached in ``checkpoints/simple_unseen_free/`` (weights before BatchNorm
folding, with the seizures it left out), so a resumed calibration reuses it.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from qcascade.io_utils import atomic_write_json

log = logging.getLogger(__name__)

CHOOSE = "choose"
#: the order :func:`choose_unseen_free` compares the two deployed gates in (on validation)
CRITERION = ("fewest hidden validation seizures, then a tau that meets the calibration's margin, then the fewest "
             "MACs per validation window, then the higher validation F1, then the cascade's own")


def unseen_free_simple(ctx, name: str, electrode: int, unseen: list[str]):
    """The simple model ``name`` trained alone on ``electrode`` without the ictal windows of ``unseen``.

    Args:
        ctx: the fold's context; its training and validation windows are ``(n, n_times, n_chans)``.
        name: the deployed simple model's architecture, e.g. ``"simple_A"``.
        electrode: the deployed electrode.
        unseen: record ids of the training seizures the electrode does not see
            (:func:`qcascade.steps_choose.unseen_training_seizures`).

    Returns:
        ``(model, record)``: the model ``(b, n_times, 1) -> (b, 2)`` logits, BatchNorm not folded, and
        ``{"name", "left_out", "ictal_windows_left_out", "history"}``; ``(None, record)`` with a
        ``"skipped"`` reason when leaving those seizures out would leave no ictal training window.
    """
    from qcascade.steps_data import windows
    from qcascade.steps_fit import _strategy, load_weights, model_factory, save_weights
    from qcascade.training.baselines import train_simple_alone

    folder = ctx.unit_dir / "checkpoints" / "simple_unseen_free"
    weights, meta = folder / "simple.npz", folder / "record.json"
    if weights.is_file() and meta.is_file():
        record = json.loads(meta.read_text())
        if record.get("left_out") == list(unseen) and record.get("name") == name:
            with _strategy(ctx).scope():
                model = model_factory(ctx, name)()
            load_weights(model, weights)
            return model, record
    sets = windows(ctx)
    tr, va = sets["train"], sets.get("val_monitor", sets["val"])
    drop = np.isin(np.asarray(tr.record_ids).astype(str), list(unseen)) & (np.asarray(tr.y) == 1)
    keep = ~drop
    if not np.any(np.asarray(tr.y)[keep] == 1):
        return None, {"left_out": list(unseen), "ictal_windows_left_out": int(drop.sum()), "name": name,
                      "skipped": "no ictal training window would be left"}
    # The validation windows stand in for test: the result's test numbers are not used.
    res = train_simple_alone(name, model_factory(ctx, name), electrode, tr.X[keep], tr.y[keep], va.X, va.y,
                             ctx.cfg.train, _strategy(ctx), va.X, va.y, verbose=0)
    record = {"name": name, "left_out": list(unseen), "ictal_windows_left_out": int(drop.sum()),
              "history": res.history}
    atomic_write_json(meta, record)
    save_weights(res.model, weights)  # last: marks the model complete
    log.info("%s: unseen-free simple model trained without %s (%d ictal windows)", ctx.unit, unseen, int(drop.sum()))
    return res.model, record


def gate_row(va, zs: np.ndarray, zc: np.ndarray, g: dict, macs_every: float, macs_complex: float) -> dict:
    """Validation numbers of one simple model's deployed gate.

    Args:
        va: the validation windows; zs, zc: ``(n_val, 2)`` simple and complex logits on them.
        g: what ``step_calibrate``'s ``gate_for`` returns for that simple model (``tau``, ``sweep``,
            ``deployed_kw``).
        macs_every: the MACs every window costs (simple model, and sentinel where deployed);
        macs_complex: the complex model's MACs per routed window.
    """
    from qcascade.evaluation import window_metrics
    from qcascade.gate import cascade_decide
    from qcascade.steps_choose import hidden_on

    dec = cascade_decide(zs, zc, g["tau"], **g["deployed_kw"])
    routing = float(np.mean(dec["routed"]))
    row = next(r for r in g["sweep"] if r["tau"] == g["tau"])
    return {"tau": float(g["tau"]), "f1": window_metrics(va.y, None, dec["pred"])["f1"], "routing_rate": routing,
            "macs_per_window": float(macs_every + routing * macs_complex),
            "meets_margin": bool(row.get("meets_margin", True)),
            "hidden_val": int(hidden_on(va, dec["pred"], np.asarray(zc).argmax(1))["n_missed_but_reference_detected"])}


def choose_unseen_free(own: dict, free: dict) -> dict:
    """The choice record (``deploy.json`` ``choices.unseen_free_simple``) between the rows of
    :func:`gate_row` for the cascade's own simple model and the unseen-free one (:data:`CRITERION`)."""
    def key(r, order):
        return (r["hidden_val"], not r["meets_margin"], round(r["macs_per_window"], 6), -(r["f1"] or 0.0), order)

    chosen = "unseen_free" if key(free, 1) < key(own, 0) else "own"
    return {"chosen": chosen, "criterion": CRITERION, "candidates": {"own": own, "unseen_free": free}}
