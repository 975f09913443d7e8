"""Which electrodes the complex model reads (``model.complex_electrodes``).

With 2-4 training seizures and 24-128 electrodes, the complex model fits what the many electrodes
outside the seizures' zones happen to do in the training recordings (docs/generalisation.md,
round 35). Keeping the electrodes whose line length rises with the training seizures removes most
of that freedom. The ranking pools all training windows, so every training seizure's zone counts
(a multifocal patient's zones both rank high), unlike the selector prior's worst case over
recordings (:func:`qcascade.selector_prior.electrode_separability`), which asks one electrode to
see every seizure.
"""

from __future__ import annotations

import logging

import numpy as np

from qcascade.io_utils import atomic_write_json

log = logging.getLogger(__name__)


def electrode_scores(ws, mask: np.ndarray | None = None) -> np.ndarray:
    """One-sided ROC AUC of each electrode's line length, ictal vs interictal training windows.

    Args:
        ws: training :class:`~qcascade.data.WindowSet` (``X`` ``(n, n_times, n_chans)``, ``y`` ``(n,)``).
        mask: ``(n_chans,)`` bool electrodes to score (default ``ws.mask``).

    Returns:
        ``(n_chans,)`` float: the AUC in [0, 1] for scored electrodes, -inf for the others; 0.5 for
        every scored electrode when the windows hold one class only.
    """
    from qcascade.selector_prior import auc_per_column, window_line_length

    mask = np.asarray(ws.mask if mask is None else mask, bool)
    out = np.full(ws.X.shape[-1], -np.inf)
    if len(np.unique(ws.y)) < 2:
        out[mask] = 0.5
        return out
    out[mask] = auc_per_column(ws.y, window_line_length(ws.X)[:, mask])
    return out


def top_electrodes(scores: np.ndarray, k: int) -> np.ndarray:
    """``(n_chans,)`` bool: the ``k`` highest finite scores (ties to the lower index); every scored
    electrode when fewer than ``k`` are scored."""
    finite = np.flatnonzero(np.isfinite(scores))
    order = finite[np.argsort(-scores[finite], kind="stable")]
    keep = np.zeros(len(scores), bool)
    keep[order[:k]] = True
    return keep


def complex_electrode_mask(ctx) -> np.ndarray | None:
    """The unit's (fold's) ``(n_chans,)`` electrode mask of the complex model, or None for every
    electrode (``model.complex_electrodes: 0``).

    Computed once per process from the training windows (deterministic, so a resumed run gets the
    same electrodes) and recorded in ``complex_electrodes.json``.
    """
    k = ctx.cfg.model.complex_electrode_count()
    if not k:
        return None
    art = ctx.artifacts
    if art.complex_electrodes is None:
        from qcascade.steps_data import onset_zone, windows

        tr = windows(ctx)["train"]
        scores = electrode_scores(tr)
        keep = top_electrodes(scores, k)
        chosen = [int(e) for e in np.flatnonzero(keep)]
        soz = onset_zone(ctx)
        atomic_write_json(ctx.path("complex_electrodes.json"), {
            "k": k, "n_live": int(np.sum(tr.mask)), "electrodes": chosen,
            "auc": {str(e): round(float(scores[e]), 4) for e in chosen},
            "onset_zone": soz, "onset_zone_read": None if soz is None else sorted(set(soz) & set(chosen))})
        log.info("%s: the complex model reads %d of %d live electrodes", ctx.unit, len(chosen), int(np.sum(tr.mask)))
        art.complex_electrodes = keep
    return art.complex_electrodes


def sentinel_watch(ctx, electrode: int) -> list[int] | None:
    """The electrodes the gate's sentinel reads (``train.gate_sentinel_watch``), or None for every electrode.

    ``complex``: the complex model's electrodes (:func:`complex_electrode_mask`) and the simple
    model's own ``electrode``, in increasing order; every electrode when the complex model reads
    them all.
    """
    if ctx.cfg.train.gate_sentinel_watch == "all":
        return None
    keep = complex_electrode_mask(ctx)
    if keep is None:
        return None
    return sorted({int(e) for e in np.flatnonzero(keep)} | {int(electrode)})
