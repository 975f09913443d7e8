"""The run config is strict: unknown keys, wrong types and bad values fail before any work."""

import pytest
import yaml

from qcascade.config import RunConfig, config_hash, config_to_yaml, load_config
from qcascade.errors import ConfigError


def write(tmp_path, data):
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_defaults_are_the_synthetic_full_run():
    cfg = load_config()
    assert cfg.data.dataset == "synthetic"
    assert (cfg.train.epochs_stage1, cfg.train.epochs_stage2, cfg.train.epochs_stage3) == (10, 10, 5)
    assert cfg.hls.io_type == "io_stream"


def test_yaml_round_trip_preserves_config_and_hash(tmp_path):
    cfg = load_config(overrides={"train": {"tau": 0.7}, "data": {"patients": ["ID1"]}})
    again = load_config(write(tmp_path, yaml.safe_load(config_to_yaml(cfg))))
    assert again == cfg
    assert config_hash(again) == config_hash(cfg)
    assert config_hash(load_config()) != config_hash(cfg)


@pytest.mark.parametrize("data, key", [
    ({"trian": {}}, "trian"),
    ({"train": {"epochs_stage9": 1}}, "epochs_stage9"),
    ({"data": {"synthetic": {"n_patient": 2}}}, "n_patient"),
    ({"hls": {"clock": 5}}, "clock"),
])
def test_unknown_keys_are_errors_naming_the_key(tmp_path, data, key):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match=key) as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("data, key", [
    ({"train": {"tau": 1.5}}, "train.tau"),
    ({"train": {"tau": 0.0}}, "train.tau"),
    ({"train": {"epochs_stage2": -1}}, "train.epochs_stage2"),
    ({"train": {"batch_size": "64"}}, "train.batch_size"),
    ({"train": {"epochs_stage1": 2.5}}, "train.epochs_stage1"),
    ({"data": {"dataset": "chbmit"}}, "data.dataset"),
    ({"data": {"dataset": "swec-short"}}, "data.data_dir"),
    ({"data": {"ictal_overlap": 0}}, "data.ictal_overlap"),
    ({"data": {"train_ictal_stride_s": 0.3}}, "data.train_ictal_stride_s"),
    ({"data": {"stride_s": 0.5, "train_ictal_stride_s": 0.375}}, "data.train_ictal_stride_s"),
    ({"data": {"train_ictal_stride_s": 0}}, "data.train_ictal_stride_s"),
    ({"data": {"dataset": "swec-long", "data_dir": "x", "train_ictal_stride_s": 0.5}}, "data.train_ictal_stride_s"),
    ({"data": {"stride_s": 0.5, "train_nonictal_stride_s": 0.75}}, "data.train_nonictal_stride_s"),
    ({"hls": {"part": "xc; rm -rf /"}}, "hls.part"),
    ({"hls": {"reuse_factor": 0}}, "hls.reuse_factor"),
    ({"model": {"simple_model": "D"}}, "model.simple_model"),
    ({"model": {"electrode_choice_min_weight": 1.5}}, "model.electrode_choice_min_weight"),
    ({"model": {"electrode_choice_min_weight": -0.1}}, "model.electrode_choice_min_weight"),
    ({"model": {"electrode_choice_min_seizures": 0}}, "model.electrode_choice_min_seizures"),
    ({"train": {"gate_probe_choices": [16, 0]}}, "train.gate_probe_choices"),
    ({"train": {"gate_probe_choices": [70000]}}, "train.gate_probe_choices"),
    ({"train": {"gate_probe_choices": 8}}, "train.gate_probe_choices"),
    ({"pooled": "yes"}, "pooled"),
])
def test_bad_values_are_errors_naming_the_key(tmp_path, data, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(write(tmp_path, data))


def test_unreadable_and_invalid_yaml_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)


def test_config_is_immutable():
    cfg = RunConfig()
    with pytest.raises(Exception):
        cfg.train.tau = 0.3


def _literal_fields():
    """(section path, key, allowed values) of every Literal-typed field of the config tree."""
    import dataclasses
    import typing

    out, todo = [], [("", RunConfig())]
    while todo:
        path, obj = todo.pop()
        hints = typing.get_type_hints(type(obj))
        for f in dataclasses.fields(obj):
            value, hint = getattr(obj, f.name), hints[f.name]
            if dataclasses.is_dataclass(value):
                todo.append((f"{path}{f.name}.", value))
                continue
            args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) is typing.Union \
                else [hint]
            if len(args) == 1 and typing.get_origin(args[0]) is typing.Literal:
                out.append((path.rstrip("."), f.name, typing.get_args(args[0])))
    return sorted(out)


def test_every_choice_key_is_a_literal_checked_by_the_loader():
    found = {f"{s}.{k}" for s, k, _ in _literal_fields()}
    # The choice keys once checked by hand in __post_init__ are Literal types now.
    assert {"train.gate", "train.folds", "train.class_weighting", "train.tau_reference_f1", "data.dataset",
            "data.split", "data.nan_policy", "model.simple_model", "model.selector_init", "hls.strategy"} <= found


@pytest.mark.parametrize("section, key, choices", _literal_fields(), ids=lambda v: str(v))
def test_a_bad_choice_names_the_file_the_key_and_the_allowed_values(tmp_path, section, key, choices):
    tree: dict = {}
    node = tree
    for part in section.split("."):
        node = node.setdefault(part, {})
    node[key] = "not-a-choice"
    path = write(tmp_path, tree)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: {section}.{key}: 'not-a-choice'"), msg
    assert all(repr(c) in msg for c in choices), msg


def test_sections_built_in_code_are_checked_like_yaml():
    from qcascade.config import ModelConfig
    from qcascade.config_train import TrainConfig

    with pytest.raises(ConfigError, match=r"^train\.gate: 'hold' is not one of 'confidence', 'confirm_changes'"):
        TrainConfig(gate="hold")
    with pytest.raises(ConfigError, match=r"^model\.simple_model: 'D' is not one of 'A', 'B', 'C'"):
        ModelConfig(simple_model="D")
    with pytest.raises(ConfigError, match=r"^model\.train_candidates: expected true/false"):
        ModelConfig(train_candidates=1)


def test_ictal_training_stride_defaults_to_a_quarter_of_the_stride():
    assert load_config().data.train_ictal_stride_s == 0.25
    assert load_config(None, {"data": {"stride_s": 0.5, "train_nonictal_stride_s": 2.0}}).data.train_ictal_stride_s == 0.125
    odd = {"stride_s": 385 / 512, "train_nonictal_stride_s": 385 / 512}  # 385 samples: no whole quarter
    assert load_config(None, {"data": odd}).data.train_ictal_stride_s == 385 / 512
    long = load_config(None, {"data": {"dataset": "swec-long", "data_dir": "x"}})
    assert long.data.train_ictal_stride_s == long.data.stride_s  # sampled per hour: not cut finer
