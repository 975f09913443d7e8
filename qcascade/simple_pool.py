"""Other patients' seizure electrodes in the simple model's training: ``model.simple_prior: other_patients``.

Trained on two to four seizures of one patient, the simple model learns their morphology and calls
a seizure of another morphology confidently interictal; validation then deploys a high tau and the
gate routes most windows (docs/generalisation.md, round 43). Seizure morphologies recur across
patients, so the simple model is refit, once its electrode is chosen, on its own training windows
*pooled* with single-electrode windows of every other patient of ``data.data_dir``:

* per recording of another patient, the :data:`ELECTRODES_PER_RECORDING` live electrodes whose line
  length best separates that recording's ictal from its interictal windows (the AUC, from the labels
  alone, no onset-zone annotation needed);
* every ictal window of those electrodes and :data:`INTERICTAL_PER_ICTAL` times as many interictal
  ones (at least :data:`MIN_INTERICTAL`), drawn with the run's seed;
* scaled as the run scales its own windows (``data.input_scaling``, per patient).

The pool of each patient is built once per run, before any fold, into ``<run>/simple_pool/<patient>.npz``
(its manifest, written last, marks it complete; a resumed run keeps it and refuses one built from
other patients than the folder now holds). Fine-tuning on the patient's own seizures afterwards
forgets what the pool taught (round 43), so the simple model is frozen in stage 3.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from qcascade.errors import DataError, RunDirError
from qcascade.io_utils import atomic_save_npz, atomic_write_json

log = logging.getLogger(__name__)

__all__ = ["OTHER_PATIENTS", "CHOOSE", "POOL_DIR", "ELECTRODES_PER_RECORDING", "INTERICTAL_PER_ICTAL", "MIN_INTERICTAL",
           "recording_electrodes", "patient_contribution", "build_simple_pools", "load_pool", "own_share_weights",
           "refit_simple"]

#: ``model.simple_prior`` value: the simple model is refit on its windows pooled with the other patients'.
OTHER_PATIENTS = "other_patients"
#: ``model.simple_prior`` value: per fold, the own or the pooled simple model (:mod:`qcascade.simple_choice`).
CHOOSE = "choose"
POOL_DIR = "simple_pool"
ELECTRODES_PER_RECORDING = 3
INTERICTAL_PER_ICTAL = 2
MIN_INTERICTAL = 20


def recording_electrodes(line_length: np.ndarray, y: np.ndarray, mask: np.ndarray, k: int) -> list[int]:
    """The ``k`` live electrodes whose line length rises most with the seizure in one recording.

    Args:
        line_length: ``(n_windows, n_chans)`` each window's line length.
        y: ``(n_windows,)`` labels (both classes present).
        mask: ``(n_chans,)`` bool, live electrodes.
        k: how many.

    Returns:
        Electrode indices, best first (AUC of the line length, ties to the lower index).
    """
    from qcascade.selector_prior import auc_per_column

    live = np.flatnonzero(mask)
    auc = auc_per_column(np.asarray(y), np.asarray(line_length)[:, live])
    order = np.lexsort((live, -auc))
    return [int(live[i]) for i in order[:k]]


def patient_contribution(cfg, scratch: Path, unit: str, recordings: list, seed: int) -> dict:
    """One patient's part of the other patients' pools: ``X (n, n_times, 1)`` float32, ``y (n,)``
    and per recording the electrodes taken (``{record: [e, ...]}``)."""
    from qcascade.folds import UnitContext
    from qcascade.selector_prior import window_line_length
    from qcascade.steps_data import windows

    rng = np.random.default_rng([seed, sum(map(ord, unit))])
    ctx = UnitContext(cfg, scratch, unit, recordings)
    sets = list(windows(ctx).values())
    lls = [window_line_length(ws.X) for ws in sets]
    xs, ys, taken = [], [], {}
    # A recording may lie in two splits (a validation block carved from a training recording): rank
    # its electrodes and draw its windows over both.
    for rec in sorted({str(r) for ws in sets for r in np.unique(ws.record_ids)}):
        rows = [np.flatnonzero(ws.record_ids == rec) for ws in sets]
        y = np.concatenate([ws.y[r] for ws, r in zip(sets, rows)])
        if y.min() == y.max():
            continue  # no seizure here, or no background: nothing to rank electrodes by
        ll = np.concatenate([v[r] for v, r in zip(lls, rows)])
        mask = sets[0].patient_masks.get(unit, sets[0].mask)
        taken[rec] = recording_electrodes(ll, y, mask, ELECTRODES_PER_RECORDING)
        ictal, inter = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        offsets = np.cumsum([0] + [len(r) for r in rows])
        for e in taken[rec]:
            keep = rng.choice(inter, min(len(inter), max(MIN_INTERICTAL, INTERICTAL_PER_ICTAL * len(ictal))),
                              replace=False)
            k = np.sort(np.concatenate([ictal, keep]))
            split = np.searchsorted(offsets, k, side="right") - 1
            for j, ws in enumerate(sets):
                at = rows[j][k[split == j] - offsets[j]]
                xs.append(np.asarray(ws.X[at, :, e:e + 1], np.float32))
                ys.append(np.asarray(ws.y[at], np.int64))
    ctx.artifacts.data = None
    if not xs:
        return {"X": np.zeros((0, cfg.data.n_times, 1), np.float32), "y": np.zeros(0, np.int64), "electrodes": taken}
    return {"X": np.concatenate(xs), "y": np.concatenate(ys), "electrodes": taken}


def _manifest_path(run_dir: Path, unit: str) -> Path:
    return Path(run_dir) / POOL_DIR / f"{unit}.json"


def _complete(run_dir: Path, unit: str, others: list[str]) -> bool:
    path = _manifest_path(run_dir, unit)
    if not path.is_file() or not (Path(run_dir) / POOL_DIR / f"{unit}.npz").is_file():
        return False
    saved = json.loads(path.read_text()).get("patients")
    if saved != others:  # the unit's simple model may have been refit on it
        raise RunDirError(f"{path}: built from patients {saved}, but the other patients of the data folder are "
                          f"now {others}; pass --force to train the run again, or choose another --out")
    return True


def build_simple_pools(cfg, run_dir: Path, units: Sequence[str]) -> dict[str, Path]:
    """Write the missing pools of ``units`` (``model.simple_prior: other_patients`` or ``choose``; else nothing).

    Each patient of the data folder is windowed once, however many pools need it.

    Returns:
        ``{unit: pool .npz}``.

    Raises:
        DataError: the data folder has no patient besides a unit.
        RunDirError: a complete pool was built from other patients than the folder now holds.
    """
    if cfg.model.simple_prior == "none":
        return {}
    from qcascade.cohort import discover_cohort
    from qcascade.config import load_config
    from qcascade.strict_yaml import to_dict

    tree = to_dict(cfg)  # every patient of the folder, scaled as the run scales its own; no hardware
    tree["data"]["patients"] = None
    tree["hls"]["enabled"] = False
    pcfg = load_config(None, tree)
    cohort = discover_cohort(pcfg, Path(run_dir))
    out, todo = {}, []
    for unit in units:
        others = sorted(u for u in cohort if u != unit)
        if not others:
            raise DataError(f"{cfg.data.data_dir or run_dir}: model.simple_prior: other_patients: no patient "
                            f"besides {unit} to pool")
        out[unit] = Path(run_dir) / POOL_DIR / f"{unit}.npz"
        if _complete(run_dir, unit, others):
            log.info("[%s] simple model's pool of the other patients: kept (%s)", unit, out[unit])
        else:
            todo.append(unit)
    if not todo:
        return out
    scratch = Path(run_dir) / POOL_DIR / "scratch"
    t0 = time.perf_counter()
    parts = {p: patient_contribution(pcfg, scratch / p, p, cohort[p], cfg.train.seed)
             for p in sorted({p for u in todo for p in cohort if p != u})}
    shutil.rmtree(scratch, ignore_errors=True)
    for unit in todo:
        others = sorted(u for u in cohort if u != unit)
        X = np.concatenate([parts[p]["X"] for p in others])
        y = np.concatenate([parts[p]["y"] for p in others])
        if not y.sum():
            raise DataError(f"{cfg.data.data_dir or run_dir}: model.simple_prior: other_patients: the other patients "
                            f"of {unit} ({', '.join(others)}) have no recording with both ictal and interictal windows")
        atomic_save_npz(out[unit], X=X, y=y)
        atomic_write_json(_manifest_path(run_dir, unit), {  # written last: marks the pool complete
            "patients": others, "windows": int(len(y)), "ictal_windows": int(y.sum()),
            "electrodes": {p: parts[p]["electrodes"] for p in others},
            "electrodes_per_recording": ELECTRODES_PER_RECORDING, "interictal_per_ictal": INTERICTAL_PER_ICTAL,
            "input_scaling": cfg.data.input_scaling})
        log.info("[%s] simple model's pool of the other patients %s: %d windows (%d ictal), built in %.0f s",
                 unit, ", ".join(others), len(y), int(y.sum()), time.perf_counter() - t0)
    return out


def load_pool(run_dir: Path, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X (n, n_times, 1), y (n,))`` of a unit's pool (:func:`build_simple_pools` wrote it)."""
    path = Path(run_dir) / POOL_DIR / f"{unit}.npz"
    if not _manifest_path(run_dir, unit).is_file() or not path.is_file():
        raise RunDirError(f"{path}: missing; the run builds it before any fold (resume the run, not a single step)")
    with np.load(path) as z:
        return z["X"], z["y"]


def own_share_weights(y_own: np.ndarray, y_pool: np.ndarray, share: float) -> np.ndarray:
    """Per-window factors on the class weights of ``concat(own, pool)``, ``(n_own + n_pool,)`` float32.

    Within each class the patient's own windows carry ``share`` of the class's weight and the pool
    the rest; a class's total weight is unchanged. A class that one side lacks keeps factor 1.
    """
    y_own, y_pool = np.asarray(y_own, np.int64), np.asarray(y_pool, np.int64)
    f_own, f_pool = np.ones(len(y_own), np.float32), np.ones(len(y_pool), np.float32)
    for c in (0, 1):
        n_own, n_pool = int(np.sum(y_own == c)), int(np.sum(y_pool == c))
        if n_own and n_pool:
            f_own[y_own == c] = share * (n_own + n_pool) / n_own
            f_pool[y_pool == c] = (1.0 - share) * (n_own + n_pool) / n_pool
    return np.concatenate([f_own, f_pool])


def refit_simple(simple, X_own: np.ndarray, y_own: np.ndarray, X_pool: np.ndarray, y_pool: np.ndarray, cfg,
                 strategy, X_val=None, y_val=None, verbose: int = 0, own_share=None) -> dict:
    """Train ``simple`` further on its electrode's training windows pooled with ``X_pool``.

    Args:
        simple: the stage-1 simple model ``(b, n_times, 1) -> (b, 2)`` logits (trained in place).
        X_own, y_own: ``(n, n_times, 1)`` the patient's training windows on the deployed electrode.
        X_pool, y_pool: ``(m, n_times, 1)`` the other patients' windows (:func:`load_pool`).
        cfg: ``TrainConfig``: stage 1's epochs and learning rate, seed, batch size, class weighting.
        X_val, y_val: the patient's validation windows on the electrode (history only).
        own_share: the share of each class's weight the patient's own windows carry
            (:func:`own_share_weights`); None: every window weighs alike.

    Returns:
        The training history (per epoch), with the pool's size.
    """
    from qcascade.training.classifier import fit_classifier
    from qcascade.training.loop import stage_seed

    X = np.concatenate([np.asarray(X_own, np.float32), np.asarray(X_pool, np.float32)])
    y = np.concatenate([np.asarray(y_own, np.int64), np.asarray(y_pool, np.int64)])
    hist = fit_classifier(simple, X, y, [(cfg.epochs_stage1, cfg.lr_stage1)], strategy=strategy,
                          batch_size=cfg.batch_size, phase_seeds=[stage_seed(cfg.seed, 1) + 7],
                          class_weighting=cfg.class_weighting, X_val=X_val, y_val=y_val, verbose=verbose,
                          desc="simple model, pooled", restore_best=[False],
                          sample_weight=None if own_share is None else own_share_weights(y_own, y_pool, own_share))
    return {**hist, "own_windows": int(len(y_own)), "pool_windows": int(len(y_pool)),
            "pool_ictal_windows": int(np.sum(y_pool)), "own_share": own_share}
