"""Training throughput: the custom distributed loop vs plain ``model.fit``, same model and data.

``run() -> str`` returns a markdown table for ``make bench``. Each configuration runs in its own
subprocess because ``enable_op_determinism`` is process-global and cannot be switched off:

* ``fit``: ``model.compile(Adam) + model.fit`` of the complex model (class weights as
  sample weights), batch 64.
* ``loop``: :func:`qcascade.training.classifier.fit_classifier` (the complex-only baseline path).
* ``loop+det``: the same with ``tf.config.experimental.enable_op_determinism()``.
* ``stage2``: ``CascadeTrainer.run_stage(2)`` (selector + simple forward, complex trained).

Throughput is the median windows/s over epochs after the first (which includes tracing). The
real complex model (``qcascade.models.build_model("complex")``) is used when importable, else a
stand-in CNN; the output says which.
Run directly: ``python bench/bench_training.py [--windows N --epochs E]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N_TIMES, N_CHANS = 512, 128


def _complex_factory():
    try:
        from qcascade.models import build_model

        return (lambda: build_model("complex")), "real qcascade.models complex"
    except Exception as exc:  # noqa: BLE001 - any import/build problem -> stand-in, reported
        import tensorflow as tf

        def standin():
            inp = tf.keras.Input((N_TIMES, N_CHANS))
            x = tf.keras.layers.Conv1D(16, 5, strides=4, activation="relu")(inp)
            x = tf.keras.layers.SeparableConv1D(32, 5, activation="relu")(x)
            x = tf.keras.layers.GlobalAveragePooling1D()(x)
            return tf.keras.Model(inp, tf.keras.layers.Dense(2)(x))

        return standin, f"stand-in CNN (real model unavailable: {type(exc).__name__})"


def _simple_and_selector(mask):
    """Real simple_A + real selector when available, else stand-ins."""
    import numpy as np
    import tensorflow as tf

    try:
        from qcascade.models import build_model

        simple, which = build_model("simple_A"), "simple_A"
    except Exception:  # noqa: BLE001
        inp = tf.keras.Input((N_TIMES, 1))
        x = tf.keras.layers.Conv1D(4, 9, activation="relu")(inp)
        simple, which = tf.keras.Model(inp, tf.keras.layers.Dense(2)(
            tf.keras.layers.GlobalAveragePooling1D()(x))), "stand-in simple"
    try:
        from qcascade.models.selector import ChannelSelector

        sel = ChannelSelector(n_chans=N_CHANS)
        sel(tf.zeros((1, N_TIMES, N_CHANS)), tf.constant(mask))  # build by calling
        return sel, simple, which + " + real ChannelSelector"
    except Exception:  # noqa: BLE001
        pass

    class Selector(tf.keras.layers.Layer):
        def build(self, shape):
            self.logits = self.add_weight(name="logits", shape=(shape[-1],), initializer="zeros")
            self.temperature = self.add_weight(name="temperature", shape=(), trainable=False,
                                               initializer=tf.keras.initializers.Constant(1.0))
            super().build(shape)

        def call(self, x, training=None):
            s = tf.where(tf.constant(np.asarray(mask)), self.logits / self.temperature, -1e9)
            w = tf.nn.softmax(tf.broadcast_to(s, tf.shape(x)[::2]), -1)
            return tf.reduce_sum(x * w[:, None, :], -1, keepdims=True), w

    sel = Selector()
    sel.build((None, N_TIMES, N_CHANS))
    return sel, simple, which + " + stand-in selector"


def _median_after_first(values):
    import numpy as np

    return float(np.median(values[1:] if len(values) > 1 else values))


def worker(mode: str, n: int, epochs: int) -> dict:
    """One measurement in this process; returns ``{"mode", "windows_per_s", "model", ...}``."""
    import numpy as np
    import tensorflow as tf

    from qcascade.config_train import TrainConfig
    from qcascade.training.classifier import fit_classifier
    from qcascade.training.loop import class_weights, set_determinism

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, N_TIMES, N_CHANS)).astype(np.float32)
    y = (rng.random(n) < 0.15).astype(np.int32)
    factory, which = _complex_factory()
    set_determinism(0, deterministic_ops=(mode == "loop+det"))
    out = {"mode": mode, "model": which, "windows": n, "epochs": epochs,
           "threads": os.cpu_count()}
    if mode == "fit":
        model = factory()
        model.compile(tf.keras.optimizers.Adam(1e-3),
                      tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        times = []

        class Timer(tf.keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.t0)

        model.fit(X, y, sample_weight=class_weights(y)[y], batch_size=64, epochs=epochs,
                  shuffle=True, verbose=0, callbacks=[Timer()])
        out["windows_per_s"] = _median_after_first([n / t for t in times])
    elif mode in ("loop", "loop+det"):
        hist = fit_classifier(factory(), X, y, [(epochs, 1e-3)], batch_size=64, verbose=0)
        out["windows_per_s"] = _median_after_first(hist["windows_per_s"])
    elif mode == "stage2":
        from qcascade.training.stages import CascadeTrainer

        mask = np.ones(N_CHANS, bool)
        sel, simple, which_s = _simple_and_selector(mask)
        cfg = TrainConfig(epochs_stage2=epochs, deterministic_ops=False)
        tr = CascadeTrainer(sel, simple, factory(), mask, cfg)
        hist = tr.run_stage(2, X, y, verbose=0)
        out["windows_per_s"] = _median_after_first(hist["windows_per_s"])
        out["model"] = f"{which} + {which_s}"
    else:
        raise ValueError(mode)
    return out


def run(n: int = 512, epochs: int = 2, modes=("fit", "loop", "loop+det", "stage2")) -> str:
    """Run every mode in a subprocess and return a markdown report."""
    rows = []
    for mode in modes:
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", mode,
                               "--windows", str(n), "--epochs", str(epochs)],
                              capture_output=True, text=True, env=env, cwd=str(ROOT))
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            rows.append({"mode": mode, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        r = json.loads(line[0][7:])
        r["wall_s"] = time.perf_counter() - t0
        rows.append(r)
    model = next((r["model"] for r in rows if "model" in r and r["mode"] != "stage2"), "?")
    lines = ["## Training throughput (custom loop vs model.fit)", "",
             f"Complex model: {model}; {n} random windows (512 x 128), batch 64, "
             f"{epochs} epochs, median of epochs 2..{epochs}; {os.cpu_count()} CPU(s), shared.", "",
             "| mode | windows/s | process wall s | model |", "|---|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['mode']} | error: {' '.join(r['error'])} | | |")
        else:
            lines.append(f"| {r['mode']} | {r['windows_per_s']:.0f} | {r['wall_s']:.0f} | {r['model']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", default=None)
    ap.add_argument("--windows", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args()
    if a.worker:
        print("RESULT " + json.dumps(worker(a.worker, a.windows, a.epochs)), flush=True)
    else:
        print(run(a.windows, a.epochs))


if __name__ == "__main__":
    main()
