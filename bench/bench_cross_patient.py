"""A complex model trained across the patients of one cohort, applied to the recordings of another.

Every patient-specific model scores 0 on a multifocal fold whose test seizure is alone in its zone
and in its morphology (docs/generalisation.md, rounds 19 and 24). This measures whether a prior
from *other* patients reaches such seizures: the complex model (by default the electrode-shared
first block, whose weights belong to no electrode) is trained on windows of every recording of
``--train-dir`` and then predicts every recording of ``--test-dir`` without seeing any of it. Both
folders are in the SWEC short-term layout; the two cohorts share no patient (e.g. stress seeds 0
and 1)::

    python -m bench.bench_cross_patient --train-dir ~/.cache/qcascade/stress-seed0-n8 \\
        --test-dir ~/.cache/qcascade/stress-seed1-n8 --out DIR

or, for a prior trained before, ``--prior PRIOR_DIR`` instead of ``--train-dir``.

Inputs are scaled per recording and causally (``causal_robust``), so that amplitudes compare
across patients (:mod:`qcascade.prior`). Writes the prior to ``DIR/prior`` (a run can start from it:
``model.complex_prior``) and ``DIR/cross_patient.json``
(per recording and per patient: window F1 at the argmax, and the ROC AUC of the logit difference,
which needs no threshold), and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from bench import exit_code
from qcascade.errors import DataError
from qcascade.io_utils import atomic_write_json

def _scores(y: np.ndarray, margin: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    pred = margin > 0
    tp, fp, fn = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum()), int((~pred & (y == 1)).sum())
    auc = float(roc_auc_score(y, margin)) if 0 < y.sum() < len(y) else None
    return {"f1": 2 * tp / max(2 * tp + fp + fn, 1), "auc": auc, "tp": tp, "fp": fp, "fn": fn,
            "n_ictal": int(y.sum()), "n": int(len(y))}


def zero_shot(cfg, model, scratch: Path) -> dict:
    """Every recording of the cohort as the test of its fold, predicted by ``model``."""
    from qcascade.fold_pool import unit_folds
    from qcascade.folds import FoldContext, UnitContext
    from qcascade.prior_train import discover_units
    from qcascade.steps_data import windows

    out = {}
    for unit, recs in discover_units(cfg, scratch).items():
        ys, ms = [], []
        records = {}
        for fold in unit_folds(cfg, recs):
            if fold is None or fold.index == 0:
                ctx = UnitContext(cfg, scratch, unit, recs)
            else:
                ctx = FoldContext(cfg, scratch, unit, recs, fold)
            te = windows(ctx)["test"]
            z = np.asarray(model.predict(te.X, batch_size=128, verbose=0), np.float64)
            margin = z[:, 1] - z[:, 0]
            for r in sorted(set(te.record_ids.tolist()) - set(records)):
                sel = te.record_ids == r
                records[r] = _scores(te.y[sel], margin[sel])
                ys.append(te.y[sel])
                ms.append(margin[sel])
            ctx.artifacts.data = None
        out[unit] = {"pooled": _scores(np.concatenate(ys), np.concatenate(ms)), "records": records}
    return out


def markdown(result: dict) -> str:
    lines = ["| patient | recording | ictal windows | F1 (argmax) | AUC | TP / FP / FN |", "|---|---|---|---|---|---|"]
    for unit, d in result["patients"].items():
        for r, s in list(d["records"].items()) + [("**pooled**", d["pooled"])]:
            auc = "n/a" if s["auc"] is None else f"{s['auc']:.3f}"
            lines.append(f"| {unit} | {r} | {s['n_ictal']} | {s['f1']:.3f} | {auc} | {s['tp']} / {s['fp']} / {s['fn']} |")
    return "\n".join(lines)


def load_prior_model(prior_dir: Path, cfg):
    """The complex model of a prior folder (``python -m qcascade.prior_train``), checked against ``cfg``."""
    from dataclasses import replace

    from qcascade.models import build_model
    from qcascade.prior import check_prior, load_prior_weights, prior_int_bits

    check_prior(replace(cfg, model=replace(cfg.model, complex_prior=str(prior_dir))))
    kw = {"n_times": cfg.data.n_times, "n_chans": cfg.data.n_chans, **cfg.model.model_options("complex")}
    model = build_model("complex", cfg.quant, int_bits=prior_int_bits(prior_dir), **kw)
    load_prior_weights(model, prior_dir)
    return model


def _run(args) -> int:
    from qcascade.runtime import limit_tf_threads
    from qcascade.prior import MANIFEST, save_prior
    from qcascade.prior_train import build_prior, check_out, cohort_config, discover_units

    out = Path(args.out)
    check_out(out, args.force)
    source = Path(args.prior or args.train_dir)
    for d in (source, Path(args.test_dir)):
        if not d.is_dir():
            raise DataError(f"{d}: not a folder")
    train_dir = Path(args.train_dir) if args.train_dir else None
    if args.prior and (source / MANIFEST).is_file():
        train_dir = Path(json.loads((source / MANIFEST).read_text())["data_dir"])
    if train_dir is not None and train_dir.resolve() == Path(args.test_dir).resolve():
        raise DataError(f"{train_dir}: the training and test cohorts are the same folder")
    limit_tf_threads(args.tf_threads)
    block1 = args.block1
    if args.prior:
        if not (source / MANIFEST).is_file():
            raise DataError(f"{source / MANIFEST}: missing (not a prior folder)")
        block1 = json.loads((source / MANIFEST).read_text())["complex"]["block1"]
    test_cfg = cohort_config(Path(args.test_dir), block1, args.seed)
    if args.prior:  # evaluate a prior trained before
        model = load_prior_model(source, test_cfg)
        info = {k: v for k, v in json.loads((source / MANIFEST).read_text()).items()
                if k in ("data_dir", "patients", "excluded", "windows", "ictal_windows", "epochs", "seed",
                         "interictal_per_ictal", "max_windows", "fit_s")}
    else:
        cfg = cohort_config(train_dir, args.block1, args.seed)
        units = discover_units(cfg, out / "scratch" / "train")
        model, int_bits, info = build_prior(cfg, units, out / "scratch" / "train", args)
        save_prior(out / "prior", cfg, model, int_bits, info)  # usable as model.complex_prior
    result = {"train_dir": str(train_dir), "test_dir": str(args.test_dir), "block1": block1, "prior": info,
              "patients": zero_shot(test_cfg, model, out / "scratch" / "test")}
    atomic_write_json(out / "cross_patient.json", result)
    print(markdown(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from qcascade.prior_train import add_training_arguments

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--train-dir", help="cohort the prior is trained on (SWEC short-term layout)")
    src.add_argument("--prior", help="a prior folder trained before (python -m qcascade.prior_train): evaluate it")
    ap.add_argument("--test-dir", required=True, help="cohort it predicts, never seen in training")
    ap.add_argument("--out", required=True, help="output folder")
    add_training_arguments(ap)
    args = ap.parse_args(argv)
    return exit_code(lambda: _run(args))


if __name__ == "__main__":
    raise SystemExit(main())
