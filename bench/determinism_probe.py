"""Do fresh processes with one seed train the same complex model? (run-to-run determinism probe)

Starts ``--runs`` processes at once, each training the complex model with the custom loop on the
same seeded random windows for ``--epochs`` epochs, and prints each run's per-epoch loss and a
hash of its final weights. Identical hashes: reproducible under this load.

    python -m bench.determinism_probe --runs 3 --epochs 9 [--single-thread]

Used to find the Dropout RNG source (fixed in ``qcascade.models``); it still showed differing
runs afterwards, see README ("Reproducibility").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys


def _train(epochs: int, n: int, single_thread: bool) -> dict:
    import numpy as np
    import tensorflow as tf

    if single_thread:
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)
    from qcascade.config import RunConfig
    from qcascade.models import build_model
    from qcascade.training.classifier import fit_classifier
    from qcascade.training.loop import set_determinism

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 512, 128)).astype(np.float32)
    y = (rng.random(n) < 0.3).astype(np.int64)
    X[y == 1, :, :8] *= 3  # a learnable class difference
    set_determinism(0, False)
    model = build_model("complex", RunConfig().quant, n_times=512, n_chans=128)
    set_determinism(0, False)
    hist = fit_classifier(model, X, y, [(epochs, 1e-3)], batch_size=64, seed=0, verbose=0)
    digest = hashlib.sha1(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()[:12]
    return {"loss": hist["loss"], "weights_sha1": digest}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=9)
    p.add_argument("--windows", type=int, default=768)
    p.add_argument("--single-thread", action="store_true", help="TF intra- and inter-op threads = 1")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(_train(args.epochs, args.windows, args.single_thread)))
        return 0
    cmd = [sys.executable, "-m", "bench.determinism_probe", "--worker", "--epochs", str(args.epochs),
           "--windows", str(args.windows)] + (["--single-thread"] if args.single_thread else [])
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for _ in range(args.runs)]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            print(f"worker failed with exit {proc.returncode}", file=sys.stderr)
            return 1
        results.append(json.loads(out.strip().splitlines()[-1]))
    for epoch in range(args.epochs):
        losses = [r["loss"][epoch] for r in results]
        print(f"epoch {epoch}: " + " ".join(f"{v:.12g}" for v in losses) + ("" if len(set(losses)) == 1 else "  DIFFER"))
    hashes = [r["weights_sha1"] for r in results]
    print("final weights:", " ".join(hashes), "-> identical" if len(set(hashes)) == 1 else "-> DIFFER")
    return 0


if __name__ == "__main__":
    sys.exit(main())
