"""TrainConfig, the custom loop, the three stages and baselines, on tiny stand-in models.

The stand-ins (``standin_*``, ``toy_data``) are also imported by tests/test_distributed.py.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from qcascade.errors import ConfigError
from qcascade.config_train import TrainConfig

T, C = 64, 8
MASK = np.array([True] * 6 + [False] * 2)
INFORMATIVE = 2  # the electrode carrying the seizure signal in toy_data


# ---------------------------------------------------------------- stand-ins (no qcascade.models)
def toy_data(n=256, seed=0, ictal_share=0.2):
    """``X (n, T, C)`` float32, ``y (n,)``: ictal windows carry a strong 8-cycle sine on INFORMATIVE."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < ictal_share).astype(np.int32)
    X = rng.normal(size=(n, T, C)).astype(np.float32)
    t = np.arange(T) / T
    X[:, :, INFORMATIVE] += 3.0 * y[:, None] * np.sin(2 * np.pi * 8 * t + rng.random((n, 1)) * 6)
    X[:, :, ~MASK] = 0.0
    return X, y


def standin_selector(mask=MASK):
    import tensorflow as tf

    class Selector(tf.keras.layers.Layer):
        """Per-electrode logits + a content term (log std), temperature softmax, masked."""

        def __init__(self, mask, **kw):
            super().__init__(**kw)
            self.mask = tf.constant(np.asarray(mask, bool))

        def build(self, input_shape):
            c = int(input_shape[-1])
            self.logits = self.add_weight(name="logits", shape=(c,), initializer="zeros")
            self.content = self.add_weight(name="content", shape=(), initializer="zeros")
            self.temperature = self.add_weight(name="temperature", shape=(), trainable=False,
                                               initializer=tf.keras.initializers.Constant(1.0))
            super().build(input_shape)

        def call(self, x, training=None):
            feat = tf.math.log(tf.math.reduce_std(x, axis=1) + 1e-3)
            s = (self.logits + self.content * feat) / self.temperature
            w = tf.nn.softmax(tf.where(self.mask, s, -1e9), axis=-1)
            return tf.reduce_sum(x * w[:, None, :], axis=-1, keepdims=True), w

    return Selector(mask)


def standin_model(n_chans, filters=4):
    import tensorflow as tf

    inp = tf.keras.Input((T, n_chans))
    x = tf.keras.layers.Conv1D(filters, 9, activation="relu")(inp)
    x = tf.keras.layers.GlobalAveragePooling1D()(x)
    return tf.keras.Model(inp, tf.keras.layers.Dense(2)(x))


def standin_trainer(cfg, strategy=None):
    import tensorflow as tf

    from qcascade.training.stages import CascadeTrainer

    strategy = strategy or tf.distribute.get_strategy()
    tf.keras.utils.set_random_seed(cfg.seed)
    with strategy.scope():
        sel, simple, cplx = standin_selector(), standin_model(1), standin_model(C, 8)
        sel.build((None, T, C))
    return CascadeTrainer(sel, simple, cplx, MASK, cfg, strategy)


FAST = dict(batch_size=32, epochs_stage1=3, epochs_stage2=2, epochs_stage3=1, deterministic_ops=False)


# ---------------------------------------------------------------- TrainConfig
def test_config_defaults_and_round_trip():
    cfg = TrainConfig()
    assert (cfg.epochs_stage1, cfg.epochs_stage2, cfg.epochs_stage3) == (10, 10, 5)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig(lr_stage1=1).lr_stage1 == 1.0 and isinstance(TrainConfig(tau=1 / 2).tau, float)
    grid = cfg.tau_grid()
    assert grid[0] == 0.0 and grid[-1] == 1.0 and len(grid) == 101


@pytest.mark.parametrize("field,value", [
    ("tau", 0.0), ("tau", 1.0), ("tau", 1.5), ("epochs_stage2", -1), ("batch_size", 0),
    ("lr_stage3", 0.0), ("a_routing", -0.1), ("temp_end", 2.0), ("class_weighting", "oversample"),
    ("seed", 1.5), ("batch_size", True), ("deterministic_ops", 1), ("tau", float("nan")),
    ("tau_margin", 1.0), ("tau_routing_tolerance", -0.1), ("complex_weight_floor", 1.5), ("tau_reference_f1", "test"), ("tau_grid_size", 1), ("gate", "hold"), ("tau_margin_windows", -1),
    ("tau_reference_min_f1", 1.5), ("gate_unseen_probe_every", -1), ("gate_unseen_probe_every", 70000),
    ("gate_unseen_ratio", 0.0), ("gate_unseen_ratio", 1.5), ("gate_weak_simple_gap", -0.1),
    ("gate_weak_simple_gap", 1.5), ("gate_weak_simple_max_f1", 0.0), ("gate_weak_simple_max_f1", 1.2),
])
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=f"train.{field}"):
        TrainConfig(**{field: value})


def test_weak_simple_probe_needs_a_probe_period():
    with pytest.raises(ConfigError, match="train.gate_weak_simple_gap.*gate_unseen_probe_every"):
        TrainConfig(gate_weak_simple_gap=0.3, gate_unseen_probe_every=0)
    assert TrainConfig(gate_weak_simple_gap=0.3, gate_unseen_probe_every=0, gate_probe_every=16).gate_weak_simple_gap == 0.3


def test_config_unknown_key():
    with pytest.raises(ConfigError, match=r"'epochs' in 'train'"):
        TrainConfig.from_dict({"epochs": 3})


def test_config_module_does_not_import_tensorflow():
    code = "import sys, qcascade.training; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- loop helpers
def test_class_weights_and_global_batch():
    from qcascade.training.loop import class_weights, global_batch_for

    w = class_weights(np.array([0] * 8 + [1] * 2))
    np.testing.assert_allclose(w, [10 / 16, 10 / 4])
    assert np.mean(w[np.array([0] * 8 + [1] * 2)]) == pytest.approx(1.0)
    np.testing.assert_allclose(class_weights(np.zeros(5, int)), [0.5, 1.0])  # absent class -> 1
    np.testing.assert_allclose(class_weights(np.array([0, 1, 1]), "none"), [1, 1])
    assert global_batch_for(1000, 64, 1) == 64
    assert global_batch_for(50, 64, 2) == 50 and global_batch_for(51, 64, 2) == 50
    with pytest.raises(ValueError):
        global_batch_for(1, 64, 2)


# ---------------------------------------------------------------- stages
def test_three_stages_train_anneal_freeze_and_snapshot():
    cfg = TrainConfig(**FAST, lr_stage1=1e-2)
    X, y = toy_data(256)
    Xv, yv = toy_data(96, seed=1)
    tr = standin_trainer(cfg)
    seen = []
    h1 = tr.run_stage(1, X, y, Xv, yv, verbose=0, callbacks=[lambda e, logs: seen.append(e)])
    assert seen == [0, 1, 2]
    assert h1["total"][-1] < h1["total"][0]
    assert h1["temperature"][0] == pytest.approx(1.0) and h1["temperature"][-1] == pytest.approx(0.05)
    assert float(tr.temperature.numpy()) == pytest.approx(0.05)
    assert all(v == 0.0 for v in h1["complex"])  # complex not run in stage 1
    assert h1["val_complex_f1"] == [None] * 3 and h1["val_simple_f1"][-1] is not None
    assert all(w > 0 for w in h1["windows_per_s"])

    frozen = [v.numpy().copy() for v in tr.selector.weights + tr.simple.weights]
    cplx0 = [v.numpy().copy() for v in tr.complex.weights]
    h2 = tr.run_stage(2, X, y, Xv, yv, verbose=0)
    for a, v in zip(frozen, tr.selector.weights + tr.simple.weights):
        np.testing.assert_array_equal(a, v.numpy())
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(cplx0, tr.complex.weights))
    assert h2["val_cascade_f1"][-1] is not None and 0 <= h2["val_routing_rate"][-1] <= 1

    h3 = tr.run_stage(3, X, y, Xv, yv, verbose=0)
    assert len(h3["total"]) == 1 and h3["lr"] == cfg.lr_stage3
    assert tr.completed_stages == [1, 2, 3]
    state = json.loads(json.dumps(tr.state_dict()))
    assert state["temperature"] == pytest.approx(0.05)
    assert set(state["history"]) == {"stage1", "stage2", "stage3"}

    e = tr.deployed_electrode(Xv)
    assert MASK[e]
    out = tr.predict(Xv, electrode=e)
    assert out["simple_logits"].shape == (96, 2) and out["complex_logits"].shape == (96, 2)
    assert "sel_weights" not in out


def test_simple_interictal_weight_reaches_the_simple_term_of_stage_1():
    """``train.simple_interictal_weight``: stage 1 of the same seed and data gives another simple
    loss from the first step (the interictal windows weigh more), and the run still learns."""
    X, y = toy_data(256)
    h = {}
    for k in (1.0, 4.0):
        tr = standin_trainer(TrainConfig(**FAST, lr_stage1=1e-2, simple_interictal_weight=k))
        h[k] = tr.run_stage(1, X, y, verbose=0)
    assert h[4.0]["simple"][0] > h[1.0]["simple"][0]
    assert h[4.0]["total"][-1] < h[4.0]["total"][0]


def test_same_seed_same_history_and_resume_matches_uninterrupted_run():
    cfg = TrainConfig(**FAST)
    X, y = toy_data(128)
    a = standin_trainer(cfg)
    a.run_stage(1, X, y, verbose=0)
    snap_models = [m.get_weights() for m in (a.selector, a.simple, a.complex)]
    snap_state = json.loads(json.dumps(a.state_dict()))
    ha = a.run_stage(2, X, y, verbose=0)

    b = standin_trainer(cfg)
    hb1 = b.run_stage(1, X, y, verbose=0)
    assert hb1["total"] == a.history["stage1"]["total"]  # same seed -> same stage-1 losses

    c = standin_trainer(TrainConfig(**{**FAST, "seed": 0}))  # fresh process-like resume
    for m, w in zip((c.selector, c.simple, c.complex), snap_models):
        m.set_weights(w)
    c.load_state_dict(snap_state)
    assert c.completed_stages == [1] and float(c.temperature.numpy()) == pytest.approx(0.05)
    hc = c.run_stage(2, X, y, verbose=0)
    np.testing.assert_allclose(hc["total"], ha["total"], rtol=1e-5)


def test_baselines_budget_and_test_metrics():
    import tensorflow as tf

    from qcascade.training.baselines import run_baselines

    cfg = TrainConfig(**FAST)
    X, y = toy_data(128)
    Xt, yt = toy_data(64, seed=2)
    res = run_baselines(lambda: standin_model(C), {"simple_A": lambda: standin_model(1)}, INFORMATIVE,
                        X, y, Xt, yt, cfg, tf.distribute.get_strategy(), X_val=Xt, y_val=yt, verbose=0)
    assert list(res) == ["complex_only", "simple_A"]
    assert len(res["complex_only"].history["loss"]) == cfg.epochs_stage2 + cfg.epochs_stage3
    assert len(res["simple_A"].history["loss"]) == cfg.epochs_stage1 + cfg.epochs_stage3
    assert res["simple_A"].electrode == INFORMATIVE and res["simple_A"].test_logits.shape == (64, 2)
    for r in res.values():
        assert set(r.test_metrics) == {"accuracy", "sensitivity", "specificity", "f1", "auc"}
        assert r.val_metrics == r.test_metrics  # validation = test windows here: the exported model on both
        json.dumps(r.summary())


def seeded_standin_factory(n_chans, filters=8, seed=0):
    """A factory that seeds itself (as the pipeline's do), with a Dropout layer."""
    import tensorflow as tf

    def build():
        tf.keras.utils.set_random_seed(seed)
        inp = tf.keras.Input((T, n_chans))
        x = tf.keras.layers.Conv1D(filters, 9, activation="relu", name="conv")(inp)
        x = tf.keras.layers.GlobalAveragePooling1D(name="pool")(x)
        x = tf.keras.layers.Dropout(0.3, name="dropout")(x)
        return tf.keras.Model(inp, tf.keras.layers.Dense(2, name="dense")(x), name="complex_standin")

    return build


def test_reseed_dropout_makes_masks_a_function_of_the_seed():
    import tensorflow as tf

    from qcascade.training.loop import reseed_dropout

    make = seeded_standin_factory(C)
    a = make()
    tf.keras.utils.set_random_seed(123)  # b's dropout stream is seeded differently ...
    b = tf.keras.models.clone_model(a)
    b.set_weights(a.get_weights())
    x = tf.ones((4, T, C))
    assert not np.array_equal(a(x, training=True).numpy(), b(x, training=True).numpy())
    assert reseed_dropout(a, 7) == reseed_dropout(b, 7) == 1  # ... until both restart from one seed
    np.testing.assert_array_equal(a(x, training=True).numpy(), b(x, training=True).numpy())


def test_resume_at_stage_3_draws_the_dropout_masks_of_an_uninterrupted_run():
    import tensorflow as tf

    from qcascade.training.stages import CascadeTrainer

    cfg = TrainConfig(**FAST)
    X, y = toy_data(128)
    make_complex = seeded_standin_factory(C)

    def trainer():
        tf.keras.utils.set_random_seed(cfg.seed)
        sel, simple = standin_selector(), standin_model(1)
        sel.build((None, T, C))
        return CascadeTrainer(sel, simple, make_complex(), MASK, cfg)

    whole = trainer()
    for stage in (1, 2):
        whole.run_stage(stage, X, y, verbose=0)
    snap = [m.get_weights() for m in (whole.selector, whole.simple, whole.complex)]
    state = json.loads(json.dumps(whole.state_dict()))
    h3 = whole.run_stage(3, X, y, verbose=0)

    resumed = trainer()  # a fresh process: its dropout stream has not run through stage 2
    for m, w in zip((resumed.selector, resumed.simple, resumed.complex), snap):
        m.set_weights(w)
    resumed.load_state_dict(state)
    assert resumed.run_stage(3, X, y, verbose=0)["total"] == h3["total"]


@pytest.mark.parametrize("kw, reused", [({}, True), ({"complex_only_baseline": "train"}, False),
                                        ({"complex_weight_floor": 0.5}, False), ({"a_complex": 2.0}, False)])
def test_complex_only_baseline_is_reused_only_when_the_objectives_are_equal(kw, reused):
    """The reuse rests on the test below: only with every window's complex CE weighted 1 is the
    baseline's training the cascade's complex training."""
    assert TrainConfig(**kw).complex_only_is_cascade_complex() is reused


def test_complex_only_baseline_is_paired_with_the_cascade_complex_model():
    """Same initial weights, batches and dropout masks: with the complex CE on every window
    (``complex_weight_floor`` 1) the baseline IS the cascade's complex model, weight for weight,
    so the test comparison measures the gate alone."""
    import tensorflow as tf

    from qcascade.training.baselines import train_complex_only
    from qcascade.training.stages import CascadeTrainer

    cfg = TrainConfig(**FAST)
    X, y = toy_data(128)
    Xt, yt = toy_data(64, seed=2)
    make_complex = seeded_standin_factory(C)
    tf.keras.utils.set_random_seed(cfg.seed)
    sel, simple = standin_selector(), standin_model(1)
    sel.build((None, T, C))
    tr = CascadeTrainer(sel, simple, make_complex(), MASK, cfg)
    for stage in (1, 2, 3):
        tr.run_stage(stage, X, y, verbose=0)
    base = train_complex_only(make_complex, X, y, Xt, yt, cfg, verbose=0)
    assert base.history["loss"] == tr.history["stage2"]["complex"] + tr.history["stage3"]["complex"]
    for w_cascade, w_base in zip(tr.complex.weights, base.model.weights):
        np.testing.assert_array_equal(w_cascade.numpy(), w_base.numpy())


# ---------------------------------------------------------------- integration with the real models
def test_real_selector_with_standin_models():
    """The real ChannelSelector (mask passed at call time) trains and anneals in stage 1."""
    import tensorflow as tf

    import qcascade.models.selector as selector_mod
    from qcascade.training.stages import CascadeTrainer, takes_mask

    cfg = TrainConfig(**{**FAST, "epochs_stage1": 2, "epochs_stage2": 1})
    X, y = toy_data(128)
    tf.keras.utils.set_random_seed(0)
    sel = selector_mod.ChannelSelector(n_chans=C)
    sel(tf.zeros((1, T, C)), tf.constant(MASK))
    assert takes_mask(sel) and not takes_mask(standin_selector())
    tr = CascadeTrainer(sel, standin_model(1), standin_model(C), MASK, cfg,
                        electrode_fn=selector_mod.deployed_electrode)
    logits0 = sel.electrode_logits.numpy().copy()
    tr.run_stage(1, X, y, verbose=0)
    tr.run_stage(2, X, y, X[:32], y[:32], verbose=0)
    assert not np.array_equal(logits0, sel.electrode_logits.numpy())
    assert float(sel.temperature.numpy()) == pytest.approx(cfg.temp_end)
    assert tr.predict(X[:16])["sel_weights"][:, ~MASK].max() == 0.0
    assert MASK[tr.deployed_electrode(X)]


@pytest.mark.slow
def test_real_models_through_stages_tau_and_baselines():
    """Real ChannelSelector / simple_A-C / complex (small T x C) through the whole training API."""
    import tensorflow as tf

    import qcascade.models as models
    import qcascade.models.selector as selector_mod
    import qcascade.models.counting as counting
    from qcascade.evaluation import evaluate_cascade
    from qcascade.training.baselines import run_baselines
    from qcascade.training.stages import CascadeTrainer
    from qcascade.training.tau import calibrate_tau

    n_t = 128  # the real builders need n_times divisible by 32
    cfg = TrainConfig(**{**FAST, "epochs_stage1": 2, "epochs_stage2": 1, "epochs_stage3": 1})
    rng = np.random.default_rng(0)
    X, y = toy_data(160)
    X = np.concatenate([X, rng.normal(size=X.shape).astype(np.float32)], 1) * MASK  # T=128
    Xv, yv = X[:64], y[:64]
    strategy = tf.distribute.get_strategy()
    tf.keras.utils.set_random_seed(0)
    with strategy.scope():
        sel = selector_mod.ChannelSelector(n_chans=C, temperature=cfg.temp_start)
        sel(tf.zeros((1, n_t, C)), tf.constant(MASK))
        simple = models.build_model("simple_A", n_times=n_t)
        cplx = models.build_model("complex", n_times=n_t, n_chans=C)
    tr = CascadeTrainer(sel, simple, cplx, MASK, cfg, strategy, electrode_fn=selector_mod.deployed_electrode)
    for stage in (1, 2, 3):
        h = tr.run_stage(stage, X, y, Xv, yv, verbose=0)
        assert all(np.isfinite(h["total"]))
    assert float(sel.temperature.numpy()) == pytest.approx(cfg.temp_end)
    e = tr.deployed_electrode(X)
    assert MASK[e]
    out = tr.predict(Xv, electrode=e)
    macs_s, macs_c = counting.count_macs(simple)["total"], counting.count_macs(cplx)["total"]
    tau, sweep = calibrate_tau(out["simple_logits"], out["complex_logits"], yv, macs_s, macs_c)
    res = evaluate_cascade(out["simple_logits"], out["complex_logits"], yv, tau, macs_s, macs_c)
    assert 0.0 <= res["routing_rate"] <= 1.0 and res["avg_macs_per_window"] <= macs_s + macs_c
    factories = {n: (lambda n=n: models.build_model(n, n_times=n_t)) for n in ("simple_A", "simple_C")}
    base = run_baselines(lambda: models.build_model("complex", n_times=n_t, n_chans=C), factories, e,
                         X, y, Xv, yv, cfg, strategy, verbose=0)
    assert list(base) == ["complex_only", "simple_A", "simple_C"]
    assert all(b.test_logits.shape == (64, 2) for b in base.values())


def _variance_windows(n, seed, ictal_share=0.1):
    """``(n, 512, 1)`` windows whose ictal ones have three times the amplitude, and ``(n,)`` labels."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < ictal_share).astype(np.int32)
    X = (rng.normal(size=(n, 512, 1)) * np.where(y, 3.0, 1.0)[:, None, None]).astype(np.float32)
    return X, y


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_candidate_c_trained_alone_points_the_right_way_on_few_windows(seed):
    """Few windows give candidate C too few steps to turn round from a random direction
    (validation AUC 0.02 on a stress patient); its head starts at the logistic regression."""
    import tensorflow as tf

    from qcascade import models
    from qcascade.training.baselines import train_simple_alone

    cfg = TrainConfig(**{**FAST, "epochs_stage1": 1, "epochs_stage3": 1, "seed": seed})
    X, y = _variance_windows(96, seed)
    Xt, yt = _variance_windows(200, seed + 100)
    res = train_simple_alone("simple_C", lambda: models.build_model("simple_C"), 0, X, y, Xt, yt, cfg,
                             tf.distribute.get_strategy(), verbose=0)
    assert res.test_metrics["auc"] > 0.95, res.test_metrics


def test_fit_linear_head_matches_the_logistic_regression_within_the_weight_range():
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score

    from qcascade import models
    from qcascade.models.simple import fit_linear_head

    X, y = _variance_windows(200, 5)
    m = models.build_model("simple_C")
    before = [w.copy() for w in m.get_layer("classifier").get_weights()]
    assert not fit_linear_head(m, X, np.zeros_like(y))  # one class: left as built
    np.testing.assert_array_equal(m.get_layer("classifier").get_weights()[0], before[0])
    assert fit_linear_head(m, X, y)
    kernel, bias = m.get_layer("classifier").get_weights()
    np.testing.assert_allclose(kernel[:, 0], -kernel[:, 1]) and np.testing.assert_allclose(bias[0], -bias[1])
    assert np.abs(kernel).max() <= 0.9 + 1e-6  # inside quant.weight_int_bits 0 (|w| < 1)
    z = m(X, training=True).numpy()  # BN on batch statistics, as in the first training step
    assert roc_auc_score(y, z[:, 1] - z[:, 0]) > 0.95
