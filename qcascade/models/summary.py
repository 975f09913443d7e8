"""Model summary table: parameters, MACs/window, bit widths per group, hls4ml compile time.

``python -m qcascade.models.summary --out FILE.md [--bits-study] [--work-dir DIR] [--no-compile]``

Every model is built with measured integer bits (profiled on synthetic windows), briefly trained
(so that ranges and decisions are realistic), BN-refreshed and folded, then converted with hls4ml
(Vitis, io_stream) and compiled with g++; the table reports the measured compile time and the
decision agreement of the C simulation with QKeras. ``--bits-study`` additionally trains the simple
models at ``simple_bits`` 16 and 8 and reports accuracy and agreement.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from qcascade.io_utils import atomic_write_text
from qcascade.quant import QuantPolicy

N_TIMES, N_CHANS = 512, 128


def synthetic_windows(n_per_class: int = 150, seed: int = 0) -> dict:
    """Balanced, robust-normalised windows from one synthetic patient (``qcascade.data.synthetic``).

    Returns:
        ``{"X": (n, 512, 128) float32, "y": (n,) int64, "mask": (128,) bool, "soz": [int]}``;
        electrodes beyond the patient's count are zero and masked.
    """
    from qcascade.data.synthetic import make_patient

    p = make_patient("ID1", seed=seed, n_seizures=2, pre_ictal_s=40.0, post_ictal_s=40.0,
                     seizure_s=(30.0, 40.0))
    xs, ys = [], []
    for rec in p.recordings:
        starts = np.arange(0, len(rec.eeg) - N_TIMES + 1, N_TIMES // 2)
        on, off = rec.ictal_spans[0]
        ys.append(((starts >= on) & (starts + N_TIMES <= off)).astype(np.int64))
        xs.append(np.stack([rec.eeg[s:s + N_TIMES] for s in starts]))
    X, y = np.concatenate(xs), np.concatenate(ys)
    med = np.median(X, axis=(0, 1))
    q75, q25 = np.percentile(X, [75, 25], axis=(0, 1))
    X = np.clip((X - med) / ((q75 - q25) / 1.349), -30, 30)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    k = min(n_per_class, len(pos), len(neg))
    idx = rng.permutation(np.concatenate([rng.choice(pos, k, False), rng.choice(neg, k, False)]))
    Xp = np.zeros((len(idx), N_TIMES, N_CHANS), np.float32)
    Xp[:, :, :p.n_electrodes] = X[idx]
    mask = np.zeros(N_CHANS, bool)
    mask[:p.n_electrodes] = True
    return {"X": Xp, "y": y[idx], "mask": mask, "soz": list(p.soz_electrodes)}


def model_inputs(name: str, w: dict) -> np.ndarray:
    """Single-channel models read the first SOZ electrode; the complex model all 128."""
    from qcascade.models import SINGLE_CHANNEL

    c = w["soz"][0]
    return w["X"][:, :, c:c + 1] if name in SINGLE_CHANNEL else w["X"]


def quick_train(model, X: np.ndarray, y: np.ndarray, epochs: int = 3, lr: float = 3e-3,
                batch_size: int = 32, seed: int = 0) -> dict:
    """A few epochs of Adam on the logits (cross-entropy with ``from_logits=True``)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model.compile(optimizer=tf.keras.optimizers.Adam(lr),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model.fit(X, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True).history


def trained_export_model(name: str, policy: QuantPolicy, X: np.ndarray, y: np.ndarray,
                         epochs: int = 3, seed: int = 0, **build_kw):
    """Calibrate int bits, train briefly, refresh BN statistics, fold BN.

    ``build_kw`` goes to the builder (e.g. ``block1="mixed"`` for the complex model).

    Returns:
        ``(train_model, export_model, int_bits)``.
    """
    from qcascade.models import SINGLE_CHANNEL, build_calibrated_model
    from qcascade.models.folding import fold_batchnorm, refresh_batchnorm

    kw = {"n_chans": 1} if name in SINGLE_CHANNEL else {}
    kw.update(build_kw)
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model, ib = build_calibrated_model(name, policy, X[:64], **kw)
    quick_train(model, X, y, epochs=epochs, seed=seed)
    refresh_batchnorm(model, X)
    return model, fold_batchnorm(model, policy), ib


def convert_and_compare(name: str, export, policy: QuantPolicy, X: np.ndarray, out_dir) -> dict:
    """make_hls_config (with ``hls_configs/<name>.yaml``) -> convert -> compile -> compare."""
    from qcascade.hls.compare import compare_keras_hls
    from qcascade.hls.convert import convert_model, load_template, make_hls_config

    proj, ns = f"{name.lower()}_prj", f"{name.lower()}_ns"
    cfg = make_hls_config(export, policy, X, project_name=proj, namespace=ns,
                          overrides=load_template(name))
    t0 = time.perf_counter()
    hls_model = convert_model(export, cfg, Path(out_dir) / name, project_name=proj, namespace=ns,
                              io_type=cfg["IOType"])
    res = compare_keras_hls(export, hls_model, X, trace_on_disagreement=False)
    res.update(compile_s=hls_model.qcascade_compile_seconds, convert_s=time.perf_counter() - t0, cfg=cfg)
    return res


def group_bits(name: str, policy: QuantPolicy) -> str:
    from qcascade.models import MODEL_GROUPS

    return ", ".join(f"{g} {policy.bits(g)}" for g in MODEL_GROUPS[name])


def summary_rows(policy: QuantPolicy, work_dir, compile: bool = True, n_compare: int = 128) -> list[dict]:
    """One row per registered model (see module docstring)."""
    from qcascade.models import MODEL_REGISTRY
    from qcascade.models.counting import count_macs, count_params

    w = synthetic_windows()
    rows = []
    for name in MODEL_REGISTRY:
        X = model_inputs(name, w)
        train, export, _ = trained_export_model(name, policy, X, w["y"], epochs=2)
        row = {"model": name, "params_train": count_params(train)["total"],
               "params_export": count_params(export)["total"], "macs": count_macs(export)["total"],
               "bits": group_bits(name, policy), "logit_type": f"ap_fixed<{policy.logit_bits},"
                                                            f"{policy.logit_int_bits + 1}>"}
        if compile:
            r = convert_and_compare(name, export, policy, X[:n_compare], work_dir)
            row.update(compile_s=r["compile_s"], agreement=r["decision_agreement"],
                       max_err=r["max_abs_logit_error"], n=r["n"])
        rows.append(row)
        print(f"[summary] {row}", file=sys.stderr, flush=True)
    return rows


def bits_study(policy: QuantPolicy, bits=(16, 8), epochs: int = 4) -> list[dict]:
    """Simple models at each ``simple_bits`` on a 70/30 split of synthetic windows.

    For every width: held-out accuracy after quantization-aware training (QAT), and decision
    agreement with the first width; plus post-training quantization (PTQ): the first width's
    trained weights run with the narrower quantizers (BN refreshed, folded).
    """
    from qcascade.models import SINGLE_CHANNEL, rebuild_with_int_bits
    from qcascade.models.folding import fold_batchnorm, refresh_batchnorm

    w = synthetic_windows(n_per_class=200, seed=0)
    n_tr = int(0.7 * len(w["y"]))
    y_te = w["y"][n_tr:]
    rows = []
    for name in sorted(SINGLE_CHANNEL):
        X = model_inputs(name, w)
        ref = None
        for b in bits:
            pol = dataclasses.replace(policy, simple_bits=b)
            train, export, ib = trained_export_model(name, pol, X[:n_tr], w["y"][:n_tr], epochs=epochs)
            dec = export.predict(X[n_tr:], verbose=0).argmax(1)
            row = {"model": name, "bits": b, "acc": float(np.mean(dec == y_te))}
            if ref is None:
                ref = (train, dec, ib)
            else:
                row["agree_qat"] = float(np.mean(dec == ref[1]))
                ptq = rebuild_with_int_bits(ref[0], name, pol, ref[2], n_chans=1)
                refresh_batchnorm(ptq, X[:n_tr])
                pdec = fold_batchnorm(ptq, pol).predict(X[n_tr:], verbose=0).argmax(1)
                row.update(acc_ptq=float(np.mean(pdec == y_te)), agree_ptq=float(np.mean(pdec == ref[1])))
            rows.append(row)
            print(f"[bits] {row}", file=sys.stderr, flush=True)
    return rows


def to_markdown(rows: list[dict], study: list[dict] | None = None) -> str:
    lines = ["| model | params (train / export) | MACs / window | bits per group | logit type "
             "| hls4ml compile (s) | C-sim agreement (n) | max logit err |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        comp = f"{r['compile_s']:.1f}" if r.get("compile_s") is not None else "-"
        agr = f"{r['agreement']:.3f} ({r['n']})" if "agreement" in r else "-"
        err = f"{r['max_err']:.2e}" if "max_err" in r else "-"
        lines.append(f"| {r['model']} | {r['params_train']:,} / {r['params_export']:,} | {r['macs']:,} "
                     f"| {r['bits']} | {r['logit_type']} | {comp} | {agr} | {err} |")
    if study:
        lines += ["", "| simple model | simple_bits | held-out acc (QAT) | agreement with 1st width (QAT) "
                  "| held-out acc (PTQ) | agreement with 1st width (PTQ) |", "|---|---|---|---|---|---|"]
        f = lambda v: f"{v:.3f}" if isinstance(v, float) else "-"  # noqa: E731
        for r in study:
            lines.append(f"| {r['model']} | {r['bits']} | {f(r['acc'])} | {f(r.get('agree_qat'))} "
                         f"| {f(r.get('acc_ptq'))} | {f(r.get('agree_ptq'))} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="markdown file to write")
    ap.add_argument("--work-dir", default=None, help="hls4ml project folder (default: a temp dir)")
    ap.add_argument("--no-compile", action="store_true", help="skip hls4ml conversion")
    ap.add_argument("--bits-study", action="store_true", help="also train simple models at 8 vs 16 bits")
    ap.add_argument("--readme", default=None,
                    help=f"also replace the table between {README_START} and {README_END} in this file")
    args = ap.parse_args(argv)
    policy = QuantPolicy()
    with tempfile.TemporaryDirectory(prefix="qcascade_summary_") as tmp:
        rows = summary_rows(policy, args.work_dir or tmp, compile=not args.no_compile)
    study = bits_study(policy) if args.bits_study else None
    table = to_markdown(rows, study)
    atomic_write_text(args.out, table)
    if args.readme:
        update_readme(Path(args.readme), table)
    print(table)
    return 0


README_START, README_END = "<!-- models-table:start -->", "<!-- models-table:end -->"


def update_readme(path: Path, table: str) -> None:
    """Replace the generated block between the README markers (which must exist)."""
    text = path.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(f"{path}: markers {README_START} / {README_END} not found")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    cmd = "python -m qcascade.models.summary --out docs/models.md --readme docs/design.md --bits-study"
    atomic_write_text(path, f"{head}{README_START}\n_Generated by `{cmd}` (`make models-table`)._\n\n"
                            f"{table.strip()}\n{README_END}{tail}")


if __name__ == "__main__":
    sys.exit(main())
