"""Train a complex-model prior across the patients of a cohort (:mod:`qcascade.prior`)::

    python -m qcascade.prior_train --data-dir COHORT --out PRIOR [--exclude-patient ID ...]

The prior is trained on every recording of the cohort's patients (except those excluded): every
ictal window and ``interictal_per_ictal`` times as many interictal ones, scaled per recording and
causally (``causal_robust``) so that amplitudes compare across patients.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from qcascade.errors import DataError, QCascadeError
from qcascade.prior import INPUT_SCALING, save_prior


def cohort_config(data_dir: Path, block1: str = "shared", seed: int = 0, dataset: str = "swec-short"):
    """The run config the prior is trained under (defaults otherwise)."""
    from qcascade.config import load_config

    return load_config(None, {"data": {"dataset": dataset, "data_dir": str(data_dir), "patients": None,
                                       "input_scaling": INPUT_SCALING},
                              "model": {"complex_block1": block1}, "train": {"seed": seed},
                              "hls": {"enabled": False}})


def discover_units(cfg, scratch: Path, exclude: Sequence[str] = ()) -> dict:
    """Patient -> recordings of the cohort, without ``exclude``."""
    from qcascade.pipeline import _discover

    found = {u: r for u, r in _discover(cfg, scratch).items() if u not in set(exclude)}
    if not found:
        raise DataError(f"{cfg.data.data_dir}: no recordings found" + (f" outside {list(exclude)}" if exclude else ""))
    return found


def cohort_windows(cfg, units: dict, scratch: Path, interictal_per_ictal: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Every ictal window of every recording and ``interictal_per_ictal`` times as many interictal
    ones drawn per split: ``X (n, n_times, n_chans)``, ``y (n,)``."""
    from qcascade.folds import UnitContext
    from qcascade.steps_data import windows

    Xs, ys = [], []
    for unit, recs in units.items():
        ctx = UnitContext(cfg, scratch, unit, recs)
        for ws in windows(ctx).values():
            ictal, inter = np.flatnonzero(ws.y == 1), np.flatnonzero(ws.y == 0)
            keep = rng.choice(inter, min(len(inter), interictal_per_ictal * max(len(ictal), 50)), replace=False)
            idx = np.sort(np.concatenate([ictal, keep]))
            Xs.append(ws.X[idx])
            ys.append(ws.y[idx])
        ctx.artifacts.data = None
    return np.concatenate(Xs), np.concatenate(ys)


def cap_windows(X: np.ndarray, y: np.ndarray, max_windows: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_windows`` windows, drawn at random with the class ratio kept (training's peak
    memory grows with the windows: docs/generalisation.md, round 24)."""
    if len(y) <= max_windows:
        return X, y
    keep = np.concatenate([rng.choice(np.flatnonzero(y == c), int(round(max_windows * np.mean(y == c))), replace=False)
                           for c in (0, 1)])
    keep = np.sort(keep)
    return X[keep], y[keep]


def train_prior(cfg, X: np.ndarray, y: np.ndarray, epochs: int):
    """The complex model trained on ``X``/``y`` with class-balanced cross-entropy on its logits.

    Returns:
        ``(model, int_bits)``.
    """
    import tensorflow as tf

    from qcascade.models import build_model, calibrate_int_bits

    seed = cfg.train.seed
    rng = np.random.default_rng(seed)
    kw = {"n_times": cfg.data.n_times, "n_chans": cfg.data.n_chans, **cfg.model.model_options("complex")}
    calib = X[np.sort(rng.choice(len(X), min(256, len(X)), replace=False))]
    int_bits = calibrate_int_bits("complex", cfg.quant, calib, seed=seed, **kw)
    tf.keras.utils.set_random_seed(seed)
    model = build_model("complex", cfg.quant, int_bits=int_bits, **kw)
    n1 = max(int(y.sum()), 1)
    weights = {0: len(y) / (2 * max(len(y) - n1, 1)), 1: len(y) / (2 * n1)}
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, y, batch_size=64, epochs=epochs, class_weight=weights, shuffle=True, verbose=2)
    return model, int_bits


def build_prior(cfg, units: dict, scratch: Path, args, exclude: Sequence[str] = ()) -> tuple:
    """Windows, cap and training of a prior from ``units`` with the options of
    :func:`add_training_arguments`; returns ``(model, int_bits, info)``, ``info`` for the manifest."""
    rng = np.random.default_rng(args.seed)
    X, y = cohort_windows(cfg, units, scratch, args.interictal_per_ictal, rng)
    X, y = cap_windows(X, y, args.max_windows, rng)
    t0 = time.perf_counter()
    model, int_bits = train_prior(cfg, X, y, args.epochs)
    info = {"data_dir": str(cfg.data.data_dir), "patients": sorted(units), "excluded": sorted(exclude),
            "windows": int(len(y)), "ictal_windows": int(y.sum()), "epochs": args.epochs, "seed": args.seed,
            "interictal_per_ictal": args.interictal_per_ictal, "max_windows": args.max_windows,
            "fit_s": round(time.perf_counter() - t0, 1)}
    return model, int_bits, info


def check_out(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()) and not force:
        raise DataError(f"{out}: exists and is not empty (use --force to overwrite)")


def _run(args) -> int:
    from qcascade.pipeline import limit_tf_threads

    out = Path(args.out)
    if not Path(args.data_dir).is_dir():
        raise DataError(f"{args.data_dir}: not a folder")
    check_out(out, args.force)
    limit_tf_threads(args.tf_threads)
    cfg = cohort_config(Path(args.data_dir), args.block1, args.seed, args.dataset)
    units = discover_units(cfg, out / "scratch", args.exclude_patient)
    model, int_bits, info = build_prior(cfg, units, out / "scratch", args, args.exclude_patient)
    save_prior(out, cfg, model, int_bits, info)
    print(f"prior of {len(units)} patient(s), {info['windows']} windows ({info['ictal_windows']} ictal): {out}")
    return 0


def add_training_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of :func:`build_prior` (also those of ``bench.bench_cross_patient``)."""
    ap.add_argument("--block1", default="shared", choices=["shared", "hybrid", "mixed"],
                    help="the complex model's first block (shared: no weight belongs to an electrode)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--interictal-per-ictal", type=int, default=3)
    ap.add_argument("--max-windows", type=int, default=20000, help="cap on training windows (memory)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tf-threads", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="overwrite a non-empty --out")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train a complex-model prior across the patients of a cohort.")
    ap.add_argument("--out", required=True, help="the prior's folder")
    ap.add_argument("--data-dir", required=True, help="the cohort (SWEC short-term layout)")
    ap.add_argument("--dataset", default="swec-short", choices=["swec-short"])
    ap.add_argument("--exclude-patient", nargs="*", default=[], help="patients left out (e.g. the one it will serve)")
    add_training_arguments(ap)
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except QCascadeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())


if __name__ == "__main__":
    raise SystemExit(main())
