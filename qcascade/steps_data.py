"""Data step: the unit's (or fold's) train/val/test windows and their split record.

Windows are rebuilt deterministically from the recordings and the split saved in ``data.json``
(they are not stored: 128 electrodes x 512 samples per window), so a run resumes in a fresh process.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from qcascade.artifacts import PreparedData
from qcascade.errors import DataError, RunDirError
from qcascade.folds import carve_validation, on_stride_grid, unit_splits
from qcascade.heap import trim_heap
from qcascade.io_utils import atomic_write_json

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- data
def windows(ctx) -> dict:
    """Train/val/test :class:`qcascade.data.WindowSet` of the unit (``prepared_data(ctx).sets``)."""
    return prepared_data(ctx).sets


def prepared_data(ctx) -> PreparedData:
    """The unit's (or fold's) :class:`~qcascade.artifacts.PreparedData`, built once per process.

    Raises:
        DataError: a split has no windows.
        RunDirError: the recordings changed since ``data.json`` was written.
    """
    if ctx.artifacts.data is None and ctx.cfg.data.dataset == "swec-long":
        ctx.artifacts.data = _longterm_data(ctx)
    if ctx.artifacts.data is None:
        from qcascade.data import build_windowsets
        from qcascade.data.scaling import ScalingSpec

        d = ctx.cfg.data
        splits, carve = unit_splits(ctx)  # the fold's split (fold 0 for the unit itself)
        fs = int(d.sfreq)
        scaling = _scaling_choice(d, splits)
        causal = scaling["input_scaling"] == "causal_robust"
        sets, normalizer = build_windowsets(
            splits, n_chans=d.n_chans, n_times=d.n_times, stride=int(round(d.stride_s * fs)),
            train_nonictal_stride=int(round(d.train_nonictal_stride_s * fs)), ictal_overlap=d.ictal_overlap,
            seed=ctx.cfg.train.seed, input_scaling=scaling["input_scaling"],
            scaling_spec=ScalingSpec.from_config(d, ctx.cfg.quant) if causal else None,
            train_ictal_stride=int(round(d.train_ictal_stride_s * fs)))
        blocks = []
        for rec in carve:  # two-seizure patients: validation is a time block of the training record
            sets["train"], val, block = carve_validation(sets["train"], rec, d.n_times)
            val = on_stride_grid(val, d.stride_s)  # validation windows are cut like test windows
            sets["val"] = val if not len(sets["val"]) else _concat(sets["val"], val)
            blocks.append(block)
        for name, ws in sets.items():
            if len(ws.y) == 0:
                raise DataError(f"{ctx.unit}: the {name} split has no windows")
        saved = ctx.unit_dir / "data.json"
        if saved.exists():
            want = json.loads(saved.read_text())["n_windows"]
            got = {k: int(len(v.y)) for k, v in sets.items()}
            if want != got:
                raise RunDirError(f"{saved}: the recordings changed since this run started "
                                  f"(windows {want} then, {got} now); rerun with --force")
        ctx.artifacts.data = PreparedData(sets, splits, normalizer, blocks, scaling)
        trim_heap()  # the window building's temporaries: see qcascade/heap.py
    return ctx.artifacts.data


def _scaling_choice(d, splits) -> dict:
    """``{"input_scaling", ...}``: the configured scaling, or ``auto``'s choice from the fold's
    training and validation recordings (:func:`qcascade.data.amplitude.choose_input_scaling`)."""
    if d.input_scaling != "auto":
        return {"input_scaling": d.input_scaling, "reason": "configured"}
    if d.n_times & (d.n_times - 1):
        return {"input_scaling": "train_stats",
                "reason": f"n_times {d.n_times} is not a power of two (causal_robust needs one)"}
    from qcascade.data.amplitude import choose_input_scaling

    fs = int(d.sfreq)
    choice = choose_input_scaling(list(splits["train"]) + list(splits["val"]), n_times=d.n_times,
                                  stride=int(round(d.stride_s * fs)), ictal_overlap=d.ictal_overlap,
                                  min_spread=d.scaling_auto_spread, memory_windows=d.scaling_memory_windows,
                                  one_recording=d.scaling_auto_one_recording)
    log.info("data.input_scaling: auto -> %s (%s)", choice["input_scaling"], choice["reason"])
    return choice


def input_scaling(ctx) -> str:
    """The unit's (or fold's) input scaling: ``train_stats`` or ``causal_robust`` (``auto`` resolved).

    With ``auto`` the choice recorded in ``data.json`` is read, so a step after the data step
    does not rebuild the windows to know it.
    """
    if ctx.cfg.data.input_scaling != "auto":
        return ctx.cfg.data.input_scaling
    if ctx.artifacts.data is None:
        saved = ctx.unit_dir / "data.json"
        if saved.exists() and "scaling_choice" in (info := json.loads(saved.read_text())):
            return info["scaling_choice"]["input_scaling"]
    return prepared_data(ctx).scaling["input_scaling"]


def _longterm_data(ctx) -> PreparedData:
    """Long-term hours: sampled training windows in memory, every val/test window lazily from an
    on-disk signal cache in ``<unit>/window_cache`` shared by the folds (docs/long_term.md)."""
    from qcascade.data.longterm_windows import build_longterm_windowsets

    d = ctx.cfg.data
    splits, carve = unit_splits(ctx)
    if carve:
        raise DataError(f"{ctx.unit}: long-term runs need >= 3 seizures (hour-level folds)")
    fs = int(d.sfreq)
    lt = d.long_term
    cache = ctx.run_dir / ctx.unit / "window_cache"
    if lt.cache_dir:
        cache = claim_cache_dir(Path(lt.cache_dir) / ctx.unit, Path(d.data_dir))
    sets, normalizer = build_longterm_windowsets(
        splits, cache, n_chans=d.n_chans, n_times=d.n_times,
        stride=int(round(d.stride_s * fs)), ictal_overlap=d.ictal_overlap,
        interictal_per_ictal=lt.interictal_per_ictal, seed=ctx.cfg.train.seed,
        max_train_windows=lt.max_train_windows)
    for name in ("train", "val", "test"):
        if len(sets[name].y) == 0:
            raise DataError(f"{ctx.unit}: the {name} split has no windows")
    scaling = {"input_scaling": "train_stats", "reason": "configured" if d.input_scaling == "train_stats" else
               "swec-long windows stream without the causal scaler"}
    return PreparedData(sets, splits, normalizer, [], scaling)


def claim_cache_dir(cache: Path, data_dir: Path) -> Path:
    """``cache`` (created) for the recordings of ``data_dir``; ``SOURCE`` in it records which.

    Cache files are named by record id, so a folder filled from another data folder would hand
    out the wrong signals: it is refused.

    Raises:
        DataError: ``cache`` holds the cache of another data folder, or cannot be created.
    """
    from qcascade.io_utils import atomic_write_text

    source, want = cache / "SOURCE", str(Path(data_dir).resolve())
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if source.exists():
            have = source.read_text().strip()
            if have != want:
                raise DataError(f"data.long_term.cache_dir: {cache} caches {have}, not {want}; "
                                "use another folder per data folder")
        else:
            atomic_write_text(source, want + "\n")
    except OSError as exc:
        raise DataError(f"data.long_term.cache_dir: {cache}: {exc.strerror}") from exc
    return cache


def _concat(a, b):
    from qcascade.data.aligned import aligned_concat
    from qcascade.data.windows import WindowSet

    return WindowSet(aligned_concat([a.X, b.X]), np.concatenate([a.y, b.y]), a.mask | b.mask,
                     np.concatenate([a.record_ids, b.record_ids]), np.concatenate([a.start_s, b.start_s]),
                     np.concatenate([a.patient_ids, b.patient_ids]), {**a.patient_masks, **b.patient_masks})


def step_prepare_data(ctx) -> None:
    data = prepared_data(ctx)
    sets, splits = data.sets, data.splits
    info = {
        "unit": ctx.unit,
        "split_scheme": ctx.cfg.data.split,
        "input_scaling": data.scaling["input_scaling"],
        "scaling_choice": data.scaling,
        "records": {k: [r.record_id for r in v] for k, v in splits.items()},
        "val_time_blocks": data.val_blocks,
        "n_windows": {k: int(len(v.y)) for k, v in sets.items()},
        "n_ictal": {k: int(np.sum(v.y)) for k, v in sets.items()},
        "n_electrodes": int(np.sum(sets["train"].mask)),
        "mask": [bool(m) for m in sets["train"].mask],
    }
    data.normalizer.save(ctx.path("normalizer.npz"))
    atomic_write_json(ctx.path("data.json"), info)


def onset_zone(ctx):
    """Onset-zone electrodes when the data came from qcascade's synthetic generator (which writes
    ``ground_truth.json`` next to the recordings), else None: real recordings carry no such label."""
    if ctx.unit == "pooled":
        return None
    root = ctx.run_dir / "synthetic_data" if ctx.cfg.data.dataset == "synthetic" else Path(ctx.cfg.data.data_dir)
    gt = root / "ground_truth.json"
    if gt.exists():
        return json.loads(gt.read_text()).get("patients", {}).get(ctx.unit, {}).get("soz_electrodes")
    return None
