"""Checks run before a run writes or deletes anything: patients, and whether the windows fit in memory.

Each check raises a :class:`~qcascade.errors.QCascadeError` naming the config key (or file) to fix,
so a mistake costs seconds, not a kill by the kernel's out-of-memory handler after a minute.
"""

from __future__ import annotations

import os

from qcascade.config import RunConfig
from qcascade.errors import ConfigError, DataError

# Longest synthetic recording: 180 s pre-ictal + at most 60 s seizure + 180 s post-ictal.
SYNTHETIC_RECORDING_S = 420.0
SYNTHETIC_SEIZURE_S = 60.0
# Windows are built, then padded and normalised into a second array: peak ~2 copies.
WINDOW_COPIES = 2.0
# Input, activations and gradients of one training batch, in multiples of the batch's windows
# (an upper estimate for the complex model, whose widest activation is n_times/4 x 32 filters).
BATCH_COPIES = 8.0
MEMORY_FRACTION = 0.8  # refuse a run whose estimate exceeds this share of physical memory


def check_synthetic_patients(cfg: RunConfig) -> None:
    """``data.patients`` must name patients of the synthetic cohort (``ID1..IDn``)."""
    have = [f"ID{i + 1}" for i in range(cfg.data.synthetic.n_patients)]
    missing = [p for p in cfg.data.patients or () if p not in have]
    if missing:
        raise DataError(f"data.patients: {missing} not in the synthetic cohort "
                        f"({', '.join(have)}; data.synthetic.n_patients = {cfg.data.synthetic.n_patients})")


def physical_memory_bytes() -> int | None:
    """Physical memory of the machine (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def estimate_memory_bytes(cfg: RunConfig, by_patient: dict | None) -> dict:
    """Peak memory of one unit's windows plus one training batch, times the processes holding them.

    Args:
        cfg: the run config.
        by_patient: discovered recordings ``{patient: [Recording]}`` (``n_samples`` at 512 Hz), or
            None for the synthetic cohort (sized from ``data.synthetic``).

    Returns:
        ``{"windows", "batch", "total"}`` in bytes, ``"seconds"``: recording seconds of the
        largest unit, and ``"processes"``.
    """
    d = cfg.data
    if by_patient is None:
        per_patient = [d.synthetic.n_seizures * SYNTHETIC_RECORDING_S] * d.synthetic.n_patients
    else:
        per_patient = [sum(r.n_samples for r in recs) / d.sfreq for recs in by_patient.values()]
    seconds = sum(per_patient) if cfg.pooled else max(per_patient, default=0.0)
    window = d.n_times * d.n_chans * 4  # float32
    # Sub-stride ictal training windows (data.train_ictal_stride_s): all seizures but the test one.
    if by_patient is None:
        ictal_s = [max(d.synthetic.n_seizures - 1, 1) * SYNTHETIC_SEIZURE_S] * d.synthetic.n_patients
    else:
        ictal_s = [sum(b - a for r in recs for a, b in r.ictal_spans) / d.sfreq for recs in by_patient.values()]
    extra = (sum(ictal_s) if cfg.pooled else max(ictal_s, default=0.0)) * (1 / d.train_ictal_stride_s - 1 / d.stride_s)
    windows = (seconds / d.stride_s + extra) * window * WINDOW_COPIES
    if d.dataset == "swec-long" and by_patient and not cfg.pooled:
        # Only the sampled training windows are in memory (ictal + interictal_per_ictal x ictal,
        # with the validation monitor at most twice that, each capped at max_train_windows);
        # val/test stream from disk.
        ictal = max(sum(b - a for r in recs for a, b in r.ictal_spans) / d.sfreq for recs in by_patient.values())
        n_train = min(ictal / d.stride_s * (1 + d.long_term.interictal_per_ictal), d.long_term.max_train_windows)
        windows = 2 * n_train * window * WINDOW_COPIES
    batch = cfg.train.batch_size * window * BATCH_COPIES
    # With fold workers (qcascade.fold_pool) each worker holds a unit's windows, and so does the
    # main process (conversion, pooling).
    from qcascade.fold_pool import pool_workers

    procs = pool_workers(cfg) + 1
    return {"windows": windows, "batch": batch, "total": (windows + batch) * procs, "seconds": seconds,
            "processes": procs}


def check_memory(cfg: RunConfig, by_patient: dict | None, available: int | None = None) -> None:
    """ConfigError naming the keys when the estimate exceeds :data:`MEMORY_FRACTION` of memory."""
    available = available if available is not None else physical_memory_bytes()
    if not available:
        return
    est = estimate_memory_bytes(cfg, by_patient)
    if est["total"] > MEMORY_FRACTION * available:
        gib = 2.0 ** 30
        raise ConfigError(
            f"data.n_times={cfg.data.n_times}, data.n_chans={cfg.data.n_chans}, data.stride_s={cfg.data.stride_s}, "
            f"train.batch_size={cfg.train.batch_size}, train.fold_workers={cfg.train.fold_workers}: the windows of "
            f"{est['seconds']:.0f} s of recordings in {est['processes']} process(es) need "
            f"~{est['total'] / gib:.1f} GiB, more than {MEMORY_FRACTION:.0%} of this machine's "
            f"{available / gib:.1f} GiB; lower data.n_times, train.batch_size or train.fold_workers, or raise "
            "data.stride_s")
