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
from qcascade.prior import EPOCHS, INPUT_SCALING, INTERICTAL_PER_ICTAL, MAX_WINDOWS, save_prior


def cohort_config(data_dir: Path, block1: str = "shared", seed: int = 0, dataset: str = "swec-short"):
    """The run config the prior is trained under (defaults otherwise)."""
    from qcascade.config import load_config

    return load_config(None, {"data": {"dataset": dataset, "data_dir": str(data_dir), "patients": None,
                                       "input_scaling": INPUT_SCALING},
                              "model": {"complex_block1": block1}, "train": {"seed": seed},
                              "hls": {"enabled": False}})


def discover_units(cfg, scratch: Path, exclude: Sequence[str] = ()) -> dict:
    """Patient -> recordings of the cohort, without ``exclude``."""
    from qcascade.cohort import discover_cohort as _discover

    found = {u: r for u, r in _discover(cfg, scratch).items() if u not in set(exclude)}
    if not found:
        raise DataError(f"{cfg.data.data_dir}: no recordings found" + (f" outside {list(exclude)}" if exclude else ""))
    return found


def cohort_windows(cfg, units: dict, scratch: Path, interictal_per_ictal: int, rng,
                   max_windows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every ictal window of every recording and ``interictal_per_ictal`` times as many interictal
    ones drawn per split, at most ``max_windows`` of them (:func:`cap_indices`): ``X (n, n_times,
    n_chans)``, ``y (n,)``.

    Each split's selection is held until the cap is drawn (it needs every label), then copied into
    the returned array and freed at once: no concatenated copy of all windows exists beside ``X``.
    """
    from qcascade.folds import UnitContext
    from qcascade.steps_data import windows

    pieces, labels = [], []
    for unit, recs in units.items():
        ctx = UnitContext(cfg, scratch, unit, recs)
        for ws in windows(ctx).values():
            ictal, inter = np.flatnonzero(ws.y == 1), np.flatnonzero(ws.y == 0)
            keep = rng.choice(inter, min(len(inter), interictal_per_ictal * max(len(ictal), 50)), replace=False)
            idx = np.sort(np.concatenate([ictal, keep]))
            pieces.append(ws.X[idx])
            labels.append(ws.y[idx])
        ctx.artifacts.data = None
    y = np.concatenate(labels)
    keep = cap_indices(y, max_windows, rng) if max_windows is not None else np.arange(len(y))
    X = np.empty((len(keep), *pieces[0].shape[1:]), pieces[0].dtype)
    start = filled = 0
    for i in range(len(pieces)):
        n = len(pieces[i])
        rows = keep[(keep >= start) & (keep < start + n)] - start  # keep is sorted
        X[filled:filled + len(rows)] = pieces[i][rows]
        filled, start, pieces[i] = filled + len(rows), start + n, None
    return X, y[keep]


def cap_indices(y: np.ndarray, max_windows: int, rng) -> np.ndarray:
    """Sorted indices of at most ``max_windows`` windows, drawn at random with the class ratio kept
    (training's peak memory grows with the windows: docs/generalisation.md, round 24)."""
    if len(y) <= max_windows:
        return np.arange(len(y))
    keep = np.concatenate([rng.choice(np.flatnonzero(y == c), int(round(max_windows * np.mean(y == c))), replace=False)
                           for c in (0, 1)])
    return np.sort(keep)


def _batches(X: np.ndarray, y: np.ndarray, weights: np.ndarray, batch_size: int, seed: int):
    """Shuffled batches ``(X, y, sample weight)`` gathered from ``X`` per step: Keras given the arrays
    themselves converts ``X`` to one tensor, a second full copy of the windows."""
    import tensorflow as tf

    class Batches(tf.keras.utils.Sequence):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(y))

        def __len__(self):
            return -(-len(y) // batch_size)

        def __getitem__(self, i):
            idx = np.sort(self.order[i * batch_size:(i + 1) * batch_size])
            return X[idx], y[idx], weights[y[idx]]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(y))

    return Batches()


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
    weights = np.array([len(y) / (2 * max(len(y) - n1, 1)), len(y) / (2 * n1)], np.float32)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(_batches(X, y, weights, 64, seed), epochs=epochs, shuffle=False, workers=1,
              use_multiprocessing=False, verbose=2)
    return model, int_bits


def build_prior(cfg, units: dict, scratch: Path, args, exclude: Sequence[str] = ()) -> tuple:
    """Windows, cap and training of a prior from ``units`` with the options of
    :func:`add_training_arguments`; returns ``(model, int_bits, info)``, ``info`` for the manifest."""
    rng = np.random.default_rng(args.seed)
    X, y = cohort_windows(cfg, units, scratch, args.interictal_per_ictal, rng, args.max_windows)
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
    from qcascade.runtime import limit_tf_threads, numpy_base_pages

    out = Path(args.out)
    if not Path(args.data_dir).is_dir():
        raise DataError(f"{args.data_dir}: not a folder")
    check_out(out, args.force)
    limit_tf_threads(args.tf_threads)
    numpy_base_pages()
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
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--interictal-per-ictal", type=int, default=INTERICTAL_PER_ICTAL)
    ap.add_argument("--max-windows", type=int, default=MAX_WINDOWS, help="cap on training windows (memory)")
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
