"""Custom distributed training loop (``tf.GradientTape`` + ``tf.function`` + ``tf.distribute``).

Design: the window arrays stay in ONE host tensor captured by the step function; the
distributed ``tf.data`` pipeline only carries shuffled int32 index batches, and each replica
gathers its windows inside the step. This avoids copying ~0.5 GB of windows through
``tf.data`` (and its graph rewrites under ``experimental_distribute_dataset``) while keeping
the standard custom-loop structure: ``strategy.run(replica_step)`` per batch, each replica's
loss summed over its windows and divided by the GLOBAL batch size, gradients summed across
replicas by the optimizer.

Training batches are fixed-size (``drop_remainder=True``; the dropped tail differs every
epoch because the order is reshuffled) so the step is traced once and every replica always
gets the same number of windows.
"""

from __future__ import annotations

import logging
import time
import zlib
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from qcascade import progress
from qcascade.tensors import as_tensor
from qcascade.training.monitor import with_train_f1

log = logging.getLogger(__name__)

# Dropout draws from a seeded tf.random.Generator, not Keras 2's legacy stateful op (which drew
# different masks in two fresh runs with one seed; see qcascade.models, which sets it too).
# Process-global; it must precede the construction of any layer that is trained here.
tf.keras.backend.experimental.enable_tf_random_generator()

__all__ = [
    "get_strategy", "set_determinism", "class_weights", "global_batch_for", "index_dataset",
    "run_epochs", "make_predict_fn", "predict_in_batches", "EpochCallback", "stage_seed", "reseed_dropout",
    "optimizer_for", "kernels", "ReleasableData",
]

# Called after every epoch with (epoch index, logs); logs include loss terms and val metrics.
EpochCallback = Callable[[int, dict], Any]


def get_strategy() -> tf.distribute.Strategy:
    """Pick the distribution strategy for the visible devices.

    Several GPUs -> ``MirroredStrategy`` over them; otherwise several logical CPUs (e.g. set up
    with ``tf.config.set_logical_device_configuration``) -> ``MirroredStrategy`` over them;
    otherwise the default (no-op) strategy.
    """
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    if len(gpus) == 1:
        return tf.distribute.get_strategy()
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) > 1:
        # NCCL is GPU-only; reduce on the host.
        return tf.distribute.MirroredStrategy(
            [d.name for d in cpus], cross_device_ops=tf.distribute.ReductionToOneDevice())
    return tf.distribute.get_strategy()


_DETERMINISM_ON = False


def set_determinism(seed: int, deterministic_ops: bool = True) -> None:
    """Seed python/numpy/TF RNGs and (once per process) enable TF op determinism.

    ``enable_op_determinism`` is process-global and cannot be switched off again, so it is
    only ever turned on, never off.
    """
    global _DETERMINISM_ON
    tf.keras.utils.set_random_seed(int(seed))
    if deterministic_ops and not _DETERMINISM_ON:
        tf.config.experimental.enable_op_determinism()
        _DETERMINISM_ON = True


def stage_seed(seed: int, stage: int) -> int:
    """Global, shuffle and dropout seed of training stage ``stage`` (1-3); the baselines' phases reuse
    the seeds of the stages whose budget they mirror, so both arms see the same batches."""
    return int(seed) + 1000 * int(stage)


def reseed_dropout(model: tf.keras.Model, seed: int) -> int:
    """Restart every dropout mask stream of ``model`` from ``seed``.

    Keras seeds each Dropout layer's generator once, from Python's RNG when the layer is built,
    and the stream then runs on across stages. Restarting it at every stage makes a stage's
    masks a function of ``seed`` alone: a run resumed at stage 3 draws the masks an
    uninterrupted run draws, and the complex-only baseline (same initial weights, same batch
    order) draws the masks the cascade's complex model draws.

    Args:
        model: a Keras model (nested layers included).
        seed: stage seed; each layer's stream starts at ``seed`` plus a stable hash of its
            model and layer name.

    Returns:
        Number of generators restarted.

    Raises:
        RuntimeError: a layer of ``model`` draws from Keras' legacy RNG (it was built before
            ``enable_tf_random_generator``), whose masks cannot be restarted.
    """
    n = 0
    for layer in model.submodules:
        rng = getattr(layer, "_random_generator", None)
        if not isinstance(layer, tf.keras.layers.Layer) or rng is None:
            continue
        rng_type = getattr(rng, "_rng_type", None)
        if rng_type == "stateful":
            rng._maybe_init()  # no-op once the layer is built
            salt = zlib.crc32(f"{model.name}/{layer.name}".encode()) % 1_000_003
            rng._generator.reset_from_seed(int(seed) + salt)
            n += 1
        elif rng_type == "legacy_stateful":
            raise RuntimeError(f"{model.name}/{layer.name} draws from Keras' legacy RNG: import "
                               "qcascade.training.loop before building the model")
    return n


def class_weights(y: np.ndarray, mode: str = "balanced") -> np.ndarray:
    """Per-class weights, ``(2,)`` float32; ``balanced``: ``n / (2 * n_c)`` (mean weight 1).

    A class absent from ``y`` gets weight 1 (nothing to rebalance).
    """
    y = np.asarray(y).astype(np.int64).ravel()
    if mode == "none":
        return np.ones(2, np.float32)
    counts = np.bincount(y, minlength=2).astype(np.float64)
    w = np.where(counts > 0, len(y) / (2.0 * np.maximum(counts, 1)), 1.0)
    return w.astype(np.float32)


def global_batch_for(n: int, batch_size: int, n_replicas: int) -> int:
    """Global batch size actually used: ``batch_size`` capped at ``n``, a multiple of replicas.

    Raises:
        ValueError: if there are fewer windows than replicas.
    """
    gb = min(int(batch_size), int(n))
    gb -= gb % n_replicas
    if gb < n_replicas or gb == 0:
        raise ValueError(f"{n} training windows is too few for {n_replicas} replica(s)")
    return gb


def index_dataset(n: int, global_batch: int, seed: int, shuffle: bool = True) -> tf.data.Dataset:
    """Batches of window indices, ``(global_batch,)`` int32, reshuffled every epoch."""
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(global_batch, drop_remainder=True).map(lambda i: tf.cast(i, tf.int32))
    return ds.prefetch(2)


class DistStep:
    """``replica_step`` run on every replica and SUM-reduced, as one ``tf.function``.

    Made once and passed to several :func:`run_epochs` calls, it is traced once: what changes
    between the calls (learning rate, optimizer state, seeds) must then live in variables.
    """

    def __init__(self, strategy: tf.distribute.Strategy, replica_step: Callable[[tf.Tensor], Mapping[str, tf.Tensor]]):
        @tf.function(autograph=False)  # plain Python control flow only: tracing without autograph is cheaper
        def dist_step(idx):
            per_replica = strategy.run(replica_step, args=(idx,))
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in per_replica.items()}

        self._fn = dist_step

    def __call__(self, idx: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._fn(idx)


def reset_optimizer(opt, lr: float) -> None:
    """Bring an Adam built by :func:`optimizer_for` back to its freshly built state at ``lr``:
    step count and moment estimates zero (what a new optimizer starts from)."""
    for v in opt.variables():
        v.assign(tf.zeros_like(v))
    opt.learning_rate = float(lr)


def run_epochs(
    strategy: tf.distribute.Strategy,
    replica_step: Callable[[tf.Tensor], Mapping[str, tf.Tensor]],
    n: int,
    global_batch: int,
    epochs: int,
    seed: int,
    *,
    on_epoch_start: Optional[Callable[[int], Mapping[str, float]]] = None,
    on_epoch_end: Optional[Callable[[int], Mapping[str, Any]]] = None,
    callbacks: Sequence[EpochCallback] = (),
    verbose: int = 1,
    desc: str = "",
) -> dict[str, list]:
    """Run ``epochs`` passes of ``replica_step`` over shuffled index batches.

    Args:
        strategy: distribution strategy (models/optimizer variables created in its scope).
        replica_step: per-replica function ``idx (local_batch,) int32 -> {name: scalar}``;
            it applies the gradients itself and returns terms already divided by the global
            batch size (they are SUM-reduced across replicas here). Or a :class:`DistStep`
            shared by several calls (traced once).
        n: number of training windows.
        global_batch: global batch size (see :func:`global_batch_for`).
        epochs: number of epochs.
        seed: shuffle seed.
        on_epoch_start: called before each epoch; may return extra logs (e.g. temperature).
        on_epoch_end: called after each epoch; returns extra logs (e.g. validation metrics).
        callbacks: called with ``(epoch, logs)`` after each epoch.
        verbose: 0 silent, 1 progress bar per epoch.
        desc: label printed before each epoch's bar.

    Returns:
        History: ``{name: [value per epoch]}`` for every loss term and extra log, plus
        ``seconds`` and ``windows_per_s`` (training windows / wall time of the train steps).
    """
    dist_ds = strategy.experimental_distribute_dataset(index_dataset(n, global_batch, seed))
    steps = n // global_batch
    dist_step = replica_step if isinstance(replica_step, DistStep) else DistStep(strategy, replica_step)

    history: dict[str, list] = {}
    for epoch in range(epochs):
        extra_start = dict(on_epoch_start(epoch) or {}) if on_epoch_start else {}
        shown = bool(verbose) and progress.verbose()  # the CLI shows epochs only with --verbose
        if shown:
            print(f"{desc} epoch {epoch + 1}/{epochs}", flush=True)
        bar = tf.keras.utils.Progbar(steps, verbose=1 if shown else 0, unit_name="batch")
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        for i, idx in enumerate(dist_ds):
            logs = {k: float(v) for k, v in dist_step(idx).items()}
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.update(i + 1, values=[("loss", logs.get("total", 0.0))])
        seconds = time.perf_counter() - t0
        epoch_logs: dict[str, Any] = with_train_f1({k: v / max(steps, 1) for k, v in sums.items()})
        epoch_logs["seconds"] = seconds
        epoch_logs["windows_per_s"] = steps * global_batch / seconds if seconds > 0 else None
        epoch_logs.update(extra_start)
        if on_epoch_end:
            epoch_logs.update(on_epoch_end(epoch) or {})
        line = ", ".join(f"{k}={v:.4g}" for k, v in epoch_logs.items() if isinstance(v, float))
        # In run.log always; on the console with --verbose (under the epoch's bar).
        log.debug("%s epoch %d/%d: %s", desc, epoch + 1, epochs, line)
        for key in list(history) + [k for k in epoch_logs if k not in history]:  # stable order
            history.setdefault(key, [None] * epoch).append(_jsonable(epoch_logs.get(key)))
        for cb in callbacks:
            cb(epoch, dict(epoch_logs))
    return history


def make_predict_fn(fn: Callable[[tf.Tensor], Any], sample_shape: Sequence[int]) -> Callable:
    """Wrap ``fn(x_batch)`` in a ``tf.function`` traced once for any batch size."""
    spec = tf.TensorSpec([None, *sample_shape], tf.float32)
    return tf.function(fn, input_signature=[spec], autograph=False)


def predict_in_batches(fn: Callable, X: np.ndarray, batch_size: int = 256) -> Any:
    """Apply a (wrapped) predict function over ``X`` in batches; concatenate as numpy.

    Args:
        fn: from :func:`make_predict_fn`; returns a tensor or a dict of tensors.
        X: ``(n, ...)`` float32 windows.
        batch_size: inference batch size (no gradients, so larger than the training batch).

    Returns:
        ``np.ndarray`` or ``{name: np.ndarray}`` with leading dimension ``n``.
    """
    outs: list = []
    for s in range(0, len(X), batch_size):
        outs.append(fn(as_tensor(np.asarray(X[s:s + batch_size], np.float32))))
    if not outs:
        raise ValueError("predict_in_batches: empty input")
    if isinstance(outs[0], Mapping):
        return {k: np.concatenate([o[k].numpy() for o in outs]) for k in outs[0]}
    return np.concatenate([o.numpy() for o in outs])


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def optimizer_for(strategy: tf.distribute.Strategy, lr: float, variables: Iterable[tf.Variable],
                  weight_decay: float = 0.0, decay: Iterable[tf.Variable] = ()):
    """Adam created (and its slots built) inside the strategy scope, before any tracing.

    Args:
        weight_decay: decoupled weight decay (AdamW-style, ``w -= lr * weight_decay * w``) of
            the variables in ``decay`` only (the complex model's kernels); 0 = plain Adam.
        decay: variables that decay (a subset of ``variables``).
    """
    variables = list(variables)
    decayed = {id(v) for v in decay}
    with strategy.scope():
        if weight_decay > 0 and decayed:
            opt = tf.keras.optimizers.Adam(learning_rate=lr, weight_decay=float(weight_decay))
            opt.exclude_from_weight_decay(var_list=[v for v in variables if id(v) not in decayed])
        else:
            opt = tf.keras.optimizers.Adam(learning_rate=lr)
        if variables:
            opt.build(variables)
    return opt


def kernels(model: tf.keras.Model) -> list[tf.Variable]:
    """Trainable convolution and dense kernels of ``model`` (what weight decay shrinks; not
    biases, BatchNorm parameters or the selector)."""
    return [v for v in model.trainable_variables if "kernel" in v.name]


class ReleasableData:
    """Training windows as a shape-less ``tf.Variable`` that :meth:`release` empties.

    The per-step ``tf.function`` graphs capture what the step reads, and TensorFlow keeps those
    graphs alive after training (reached from the optimizer's gradient tensors). A captured
    tensor of training windows then stays in memory for the life of the process: measured about
    1.2 GB of resident memory per fold of the fold loop. A captured variable can be emptied.
    """

    def __init__(self, X: np.ndarray):
        X = np.asarray(X, np.float32)
        self.sample_shape = tuple(X.shape[1:])
        with tf.init_scope():
            # Shares X's buffer when X is aligned (no 1+ GB copy per stage): the variable is only
            # ever replaced (release), never written in place.
            self.var = tf.Variable(as_tensor(X), trainable=False, shape=tf.TensorShape(None), dtype=tf.float32)

    def gather(self, idx: tf.Tensor) -> tf.Tensor:
        """``(len(idx), *sample_shape)`` windows (static shape restored for the layers)."""
        return tf.ensure_shape(tf.gather(self.var, idx), [None, *self.sample_shape])

    def release(self) -> None:
        self.var.assign(tf.zeros([0, *self.sample_shape], tf.float32))
