"""Library defaults are the defaults the pipeline runs.

A unit test that calls a library function with its defaults must exercise the regime a run uses,
so every default below is compared with the config (``train:`` section) default the pipeline
passes in its place.
"""

import inspect

from qcascade.config_train import TrainConfig
from qcascade.evaluation import evaluate_cascade
from qcascade.gate import DEFAULT_RULE, cascade_decide, cascade_predict
from qcascade.training import loss, tau
from qcascade.training.classifier import fit_classifier

TRAIN = TrainConfig()

# function -> {parameter: TrainConfig field it stands for}
CASES = {
    tau.calibrate_tau: {"margin": "tau_margin", "routing_tolerance": "tau_routing_tolerance",
                        "reference_f1": "tau_reference_f1", "margin_windows": "tau_margin_windows",
                        "reference_min_f1": "tau_reference_min_f1"},
    loss.cascade_loss_terms: {"a_simple": "a_simple", "a_complex": "a_complex", "a_routing": "a_routing",
                              "a_sparsity": "a_sparsity", "tau": "tau", "sharpness": "gate_sharpness",
                              "complex_weight_floor": "complex_weight_floor", "rule": "gate"},
    loss.frozen_gate_loss_terms: {"a_simple": "a_simple", "a_complex": "a_complex", "a_routing": "a_routing",
                                  "a_sparsity": "a_sparsity", "complex_weight_floor": "complex_weight_floor"},
    loss.per_window_gate_terms: {"tau": "tau", "sharpness": "gate_sharpness", "rule": "gate"},
    loss.soft_routing: {"rule": "gate"},
    loss.complex_weights: {"floor": "complex_weight_floor"},
    cascade_decide: {"rule": "gate"},
    fit_classifier: {"restore_best_min_f1": "restore_best_min_f1"},
}


def test_augmentation_and_complex_block_defaults_are_the_config_defaults():
    import dataclasses

    from qcascade.config import ModelConfig
    from qcascade.models.complex import build_complex
    from qcascade.models.simple import build_simple_a
    from qcascade.training.augment import Augmenter

    aug = {f.name: f.default for f in dataclasses.fields(Augmenter)}
    assert {k: aug[k] for k in ("scale", "electrode_gain", "electrode_dropout", "noise", "time_stretch", "sign_flip")} == {
        "scale": TRAIN.aug_scale, "electrode_gain": TRAIN.aug_electrode_gain,
        "electrode_dropout": TRAIN.aug_electrode_dropout, "noise": TRAIN.aug_noise,
        "time_stretch": TRAIN.aug_time_stretch, "sign_flip": TRAIN.aug_sign_flip}
    got = _defaults(build_complex)
    assert {"block1": got["block1"], "shared_filters": got["shared_filters"]} == ModelConfig().model_options("complex")
    got = _defaults(build_simple_a)
    assert {"filters": got["filters"], "first_stride": got["first_stride"]} == ModelConfig().model_options("simple_A")


def _defaults(fn) -> dict:
    return {n: p.default for n, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_every_listed_library_default_is_the_config_default():
    wrong = {}
    for fn, mapping in CASES.items():
        got = _defaults(fn)
        for param, field in mapping.items():
            assert param in got, f"{fn.__qualname__}: no default for {param}"
            if got[param] != getattr(TRAIN, field):
                wrong[f"{fn.__module__}.{fn.__qualname__}({param})"] = (got[param], getattr(TRAIN, field))
    assert not wrong, f"library default != config default (library, config): {wrong}"


def test_the_tau_grid_and_gate_rule_defaults():
    assert tuple(tau.DEFAULT_GRID) == TRAIN.tau_grid()
    assert TRAIN.gate == DEFAULT_RULE


def test_no_gate_rule_default_differs_from_the_pipeline():
    """Any parameter named ``rule`` with a default, in the modules that evaluate or train the gate."""
    import qcascade.gate as gate_mod
    import qcascade.hls.manifest as manifest
    import qcascade.training.tau as tau_mod

    for mod in (gate_mod, loss, tau_mod, manifest):
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ != mod.__name__:
                continue
            d = _defaults(fn)
            if "rule" in d:
                assert d["rule"] == TRAIN.gate, f"{mod.__name__}.{name}: rule default {d['rule']!r}"


def test_rule_keywords_reach_the_decision():
    """evaluate_cascade and cascade_predict pass ``rule`` through (their default is cascade_decide's)."""
    import numpy as np

    zs = np.array([[2.0, -2.0], [-2.0, 2.0], [2.0, -2.0]])
    zc = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    y = np.array([0, 1, 1])
    conf = evaluate_cascade(zs, zc, y, 0.5, 1, 10, rule="confidence")
    default = evaluate_cascade(zs, zc, y, 0.5, 1, 10)
    assert conf["routing_rate"] == 0.0  # all three are confident
    # confirm_changes (the default): the change of state at window 1 is confirmed by the complex model.
    assert default["routing_rate"] > 0.0
    assert cascade_predict(zs, zc, 0.5)[1].tolist() == cascade_decide(zs, zc, 0.5, rule=TRAIN.gate)["routed"].tolist()
