"""Priors a run trains itself: ``model.complex_prior: other_patients``.

Each patient of the run gets its own prior (:mod:`qcascade.prior`), trained by
:func:`qcascade.prior_train.build_prior` on every recording of the cohort's *other* patients (all
patients of ``data.data_dir``, not only those the run trains), so that no window of the patient it
serves, test seizures included, has shaped it. They are trained before any fold, each in a fresh
process (the memory of a training stays in the process that ran it: :mod:`qcascade.fold_pool`),
into ``<run>/priors/<patient>/``. A prior is complete once its manifest (written last) exists: a
resumed run keeps it, trains a partial one again, and refuses one trained on other patients than
the folder now holds.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from qcascade.config import RunConfig, load_config
from qcascade.errors import ConfigError, DataError, RunDirError
from qcascade.prior import INPUT_SCALING, INTERICTAL_PER_ICTAL, MANIFEST, OTHER_PATIENTS, PRIORS_DIR, check_prior_dir, save_prior
from qcascade.strict_yaml import to_dict

log = logging.getLogger(__name__)

__all__ = ["PriorOptions", "prior_cohort_config", "prior_bytes", "prior_workers", "train_other_patient_priors"]


@dataclass(frozen=True)
class PriorOptions:
    """How each prior is trained (the options :func:`qcascade.prior_train.build_prior` reads)."""

    seed: int
    epochs: int
    interictal_per_ictal: int
    max_windows: int

    @classmethod
    def for_run(cls, cfg: RunConfig) -> "PriorOptions":
        return cls(cfg.train.seed, cfg.model.complex_prior_epochs, INTERICTAL_PER_ICTAL,
                   cfg.model.complex_prior_max_windows)


def prior_cohort_config(cfg: RunConfig) -> RunConfig:
    """The run's config as the priors are trained under it: every patient of the data folder,
    ``causal_robust`` inputs (amplitudes compare across patients), no hardware, no prior; the model,
    input shape and bit widths are the run's, so :func:`qcascade.prior.check_prior_dir` accepts
    the result."""
    tree = to_dict(cfg)
    tree["data"]["patients"] = None
    tree["data"]["input_scaling"] = INPUT_SCALING
    for key in ("complex_prior", "complex_prior_epochs", "complex_prior_max_windows"):  # how it trains: PriorOptions
        tree["model"].pop(key, None)
    tree["hls"]["enabled"] = False
    return load_config(None, tree)


def prior_bytes(cfg: RunConfig) -> int:
    """Estimated peak memory of one prior's training: 1.45 times its windows (float32), as measured
    in round 25 of docs/generalisation.md (6.8 GB for 17,935 windows of 512 x 128, TensorFlow included)."""
    return int(1.45 * cfg.model.complex_prior_max_windows * cfg.data.n_times * cfg.data.n_chans * 4)


def prior_workers(cfg: RunConfig, n_priors: int, available: int | None = None) -> int:
    """How many priors train side by side: ``train.fold_workers``, fewer if their memory would exceed
    :data:`qcascade.validate.MEMORY_FRACTION` of this machine's (1 without ``other_patients``).

    Raises:
        ConfigError: not even one fits, naming ``model.complex_prior_max_windows``.
    """
    from qcascade.validate import MEMORY_FRACTION, physical_memory_bytes

    if cfg.model.complex_prior != OTHER_PATIENTS:
        return 1
    available = available if available is not None else physical_memory_bytes()
    want = max(1, min(cfg.train.fold_workers, n_priors))
    if not available:
        return want
    fit = int(MEMORY_FRACTION * available // prior_bytes(cfg))
    if fit < 1:
        raise ConfigError(f"model.complex_prior_max_windows={cfg.model.complex_prior_max_windows}: one prior's training "
                          f"needs ~{prior_bytes(cfg) / 2 ** 30:.1f} GiB, more than {MEMORY_FRACTION:.0%} of this "
                          f"machine's {available / 2 ** 30:.1f} GiB; lower it")
    return min(want, fit)


def _complete(d: Path, cfg: RunConfig, patients: list[str]) -> bool:
    if not (d / MANIFEST).is_file():
        return False
    try:
        check_prior_dir(cfg, d)
        saved = json.loads((d / MANIFEST).read_text()).get("patients")
    except (ConfigError, ValueError, OSError):  # damaged, or from another config: trained again
        return False
    if saved != patients:  # the unit's models may have started from it: a new prior would not match them
        raise RunDirError(f"{d / MANIFEST}: trained on patients {saved}, but the other patients of "
                          f"{cfg.data.data_dir} are now {patients}; pass --force to train the run again, or "
                          "choose another --out")
    return True


def _train_one(pcfg: RunConfig, run_dir: str, unit: str, others: dict, opts: PriorOptions) -> dict:
    """Worker: train and save the prior of ``unit`` (fresh process; returns the manifest's info)."""
    from qcascade.prior_train import build_prior

    d = Path(run_dir) / PRIORS_DIR / unit
    scratch = d / "scratch"
    model, int_bits, info = build_prior(pcfg, others, scratch, opts, exclude=[unit])
    shutil.rmtree(scratch, ignore_errors=True)
    save_prior(d, pcfg, model, int_bits, info)
    return info


def train_other_patient_priors(cfg: RunConfig, run_dir: Path, units: Sequence[str]) -> dict[str, Path]:
    """Train the missing priors of ``units`` (``model.complex_prior: other_patients``; else nothing).

    Runs :func:`prior_workers` trainings side by side, each in its own process.

    Returns:
        ``{unit: prior folder}``.

    Raises:
        DataError: the data folder has no patient besides a unit.
        RunDirError: a complete prior was trained on other patients than the folder now holds.
    """
    if cfg.model.complex_prior != OTHER_PATIENTS:
        return {}
    from qcascade.fold_pool import _init_worker
    from qcascade.cohort import discover_cohort as _discover

    pcfg = prior_cohort_config(cfg)
    cohort = _discover(pcfg, Path(run_dir))  # headers only; the synthetic cohort is the run's own
    todo, out = {}, {}
    for unit in units:
        others = {u: r for u, r in cohort.items() if u != unit}
        if not others:
            raise DataError(f"{cfg.data.data_dir or run_dir}: model.complex_prior: other_patients: no patient "
                            f"besides {unit} to train its prior on")
        d = out[unit] = Path(run_dir) / PRIORS_DIR / unit
        if _complete(d, pcfg, sorted(others)):
            log.info("[%s] prior from the other patients: kept (%s)", unit, d)
            continue
        shutil.rmtree(d, ignore_errors=True)  # a partial prior: its manifest was never written
        todo[unit] = others
    if not todo:
        return out
    opts = PriorOptions.for_run(cfg)
    workers = prior_workers(cfg, len(todo))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(str(run_dir), os.getpid(), False, os.getcwd()), max_tasks_per_child=1) as pool:
        futures = {unit: pool.submit(_train_one, pcfg, str(run_dir), unit, others, opts) for unit, others in todo.items()}
        for unit, fut in futures.items():
            info = fut.result()
            log.info("[%s] prior from the other patients %s: %d windows (%d ictal), %d epochs, trained in %.0f s "
                     "(%.0f s since the priors began)", unit, ", ".join(info["patients"]), info["windows"],
                     info["ictal_windows"], info["epochs"], info["fit_s"], time.perf_counter() - t0)
    return out
