"""The config contract: defaults, partial files filled in, unknown keys and bad values refused by path,
immutability, and the field metadata that the window and the command line share."""

import dataclasses
import json
import math

import pytest

from engine.config import (
    SECTIONS,
    ConfigError,
    DataConfig,
    ExperimentConfig,
    TrainingConfig,
    coerce_value,
    field_spec,
    from_dict,
    from_json,
    iter_fields,
    load_config,
    validate,
    with_values,
)


def test_empty_config_is_all_defaults_matching_design():
    cfg = from_dict({})
    d = cfg.to_dict()
    assert d["data"]["source"] == "builtin:moons"
    assert d["data"]["split"] == [0.6, 0.2, 0.2]
    assert d["data"]["image_size"] == [32, 32]
    assert d["augment"]["zoom"] == [1.0, 1.0]
    assert d["model"] == {
        "hidden": [64, 32],
        "activation": "relu",
        "init": "he",
        "init_scale": 1.0,
        "output": "softmax",
    }
    assert d["regularization"] == {"l2": 0.0, "l1": 0.0, "keep_prob": 1.0, "input_keep_prob": 1.0}
    assert d["early_stopping"]["monitor"] == "dev_loss" and d["early_stopping"]["patience"] == 10
    assert d["optimizer"]["name"] == "adam" and d["optimizer"]["lr"] == 0.001
    assert d["training"] == {"epochs": 100, "batch_size": 64, "seed": 0, "dtype": "float32"}
    assert d["diagnosis"] == {"human_error": None}
    assert d["data"]["train_limit"] is None and d["data"]["pixel_shape"] is None
    assert from_dict({}) == ExperimentConfig()


def test_partial_file_is_filled_in_and_round_trips(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"regularization": {"l2": 0.5}, "model": {"hidden": [5]}}))
    cfg = load_config(p)
    assert cfg.regularization.l2 == 0.5 and cfg.model.hidden == (5,)
    assert cfg.training.epochs == 100
    again = from_json(cfg.to_json())
    assert again == cfg and again.to_dict() == cfg.to_dict()


def test_configs_are_immutable_and_replace_validates():
    cfg = from_dict({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.optimizer.lr = 0.5
    new = cfg.replace(
        **{"optimizer.lr": 0.5, "model.hidden": [8, 4, 2], "regularization.keep_prob": [1, 0.5, 0.9]}
    )
    assert new.optimizer.lr == 0.5 and new.model.hidden == (8, 4, 2)
    assert new.keep_probs() == [1.0, 0.5, 0.9]
    assert cfg.optimizer.lr == 0.001  # the original is untouched
    with pytest.raises(ConfigError, match="optimizer.lr must be in"):
        cfg.replace(**{"optimizer.lr": -1})
    with pytest.raises(ConfigError, match="keep_prob has 1 entries but model.hidden has 2"):
        with_values(cfg, {"regularization.keep_prob": [0.5]})
    with pytest.raises(ConfigError, match="nope.x is not a config field"):
        cfg.replace(**{"nope.x": 1})


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="training.epochs must be in"):
        TrainingConfig(epochs=0)
    with pytest.raises(ConfigError, match="data.split fractions must add up to 1"):
        DataConfig(split=(0.5, 0.6, 0.0))
    assert TrainingConfig(epochs=3.0).epochs == 3 and isinstance(TrainingConfig(epochs=3.0).epochs, int)


def test_keep_prob_expands_per_layer():
    cfg = from_dict({"model": {"hidden": [4, 3, 2]}, "regularization": {"keep_prob": 0.5}})
    assert cfg.keep_probs() == [0.5, 0.5, 0.5]
    cfg = from_dict({"model": {"hidden": [4, 3]}, "regularization": {"keep_prob": [1.0, 0.7]}})
    assert cfg.keep_probs() == [1.0, 0.7]


def test_two_part_split_gets_empty_test():
    assert from_dict({"data": {"split": [0.7, 0.3]}}).data.split == (0.7, 0.3, 0.0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"regularization": {"keep_prob": [1.0, 0.0]}},
            "regularization.keep_prob[1] must be in [0.01, 1], got 0",
        ),
        ({"regularization": {"keep_prob": [1.0]}}, "regularization.keep_prob has 1 entries"),
        ({"regularization": {"l2": -1}}, "regularization.l2 must be in [0, 1000], got -1"),
        ({"data": {"colour": "rgb"}}, "data.colour is not a known setting"),
        ({"bogus": {}}, "bogus is not a known setting"),
        ({"data": {"split": [0.5, 0.4, 0.4]}}, "data.split fractions must add up to 1"),
        ({"data": {"split": [1.0, 0.0, 0.0]}}, "data.split[1] (dev fraction) must be > 0"),
        ({"data": {"source": "builtin:nope"}}, "data.source: unknown built-in dataset 'nope'"),
        ({"data": {"image_size": [32]}}, "data.image_size must have 2 entries"),
        ({"data": {"color": "cmyk"}}, "data.color must be one of rgb, gray"),
        ({"data": {"pixel_shape": [28, 28, 2]}}, "data.pixel_shape[2] (channels) must be 1 or 3"),
        ({"data": {"train_limit": 0}}, "data.train_limit must be in [1, 1000000000], got 0"),
        ({"model": {"activation": "gelu"}}, "model.activation must be one of"),
        ({"model": {"init": "orthogonal"}}, "model.init must be one of"),
        ({"model": {"output": "tanh"}}, "model.output must be one of softmax, sigmoid"),
        ({"model": {"hidden": [8, 0]}}, "model.hidden[1] must be in [1, 8192], got 0"),
        ({"model": {"hidden": [8] * 21}}, "model.hidden may have at most 20 layers"),
        ({"optimizer": {"lr": 0}}, "optimizer.lr must be in [1e-07, 100], got 0"),
        ({"optimizer": {"beta2": 1.0}}, "optimizer.beta2 must be in [0, 0.9999], got 1"),
        ({"training": {"epochs": 0}}, "training.epochs must be in [1, 100000], got 0"),
        ({"training": {"batch_size": 2.5}}, "training.batch_size must be an integer"),
        ({"training": {"dtype": "float16"}}, "training.dtype must be one of float32, float64"),
        ({"training": {"seed": -1}}, "training.seed must be in [0, 2147483647], got -1"),
        ({"data": {"seed": 2**40}}, "data.seed must be in [0, 2147483647]"),
        ({"early_stopping": {"monitor": "train_loss"}}, "early_stopping.monitor must be one of"),
        ({"early_stopping": {"enabled": "yes"}}, "early_stopping.enabled must be true or false"),
        ({"augment": {"zoom": [1.2, 0.8]}}, "augment.zoom[0] must be ≤ augment.zoom[1]"),
        ({"augment": {"hflip": 1.5}}, "augment.hflip must be in [0, 1]"),
        ({"diagnosis": {"human_error": 2}}, "diagnosis.human_error must be in [0, 1]"),
        ({"data": {"n_samples": 1e308}}, "data.n_samples must be in [4, 1000000000], got a 309-digit number"),
        (
            {"data": {"n_samples": 10**400}},
            "data.n_samples must be in [4, 1000000000], got a 401-digit number",
        ),
        ({"optimizer": {"lr": 10**5000}}, "optimizer.lr is far too large, got a 5001-digit number"),
        ({"model": {"hidden": [[[[[1]]]]]}}, "model.hidden[0] must be an integer, got [[[[1]]]]"),
        ({"data": {"source": "x" * 10 + "\x00"}}, "data.source must not contain a NUL character"),
        ([1, 2], "config must be a JSON object"),
    ],
)
def test_bad_values_are_refused_naming_the_field(raw, message):
    with pytest.raises(ConfigError) as err:
        from_dict(raw)
    assert message in str(err.value)
    assert len(str(err.value)) < 300  # one readable line, whatever the value


def test_huge_values_are_shortened_in_messages():
    with pytest.raises(ConfigError) as err:
        from_dict({"model": {"activation": "x" * 10_000}})
    assert len(str(err.value)) < 200 and "…" in str(err.value)


def test_bad_json_and_missing_file_name_the_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{ not json")
    with pytest.raises(ConfigError, match="broken.json: not valid JSON"):
        load_config(p)
    with pytest.raises(ConfigError, match="missing.json: no such config file"):
        load_config(tmp_path / "missing.json")


def test_deeply_nested_json_is_a_config_error(tmp_path):
    p = tmp_path / "deep.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="deep.json"):
        load_config(p)


def test_validate_returns_an_equal_clean_config():
    cfg = ExperimentConfig()
    assert validate(cfg) == cfg


# ---------------------------------------------------------------- field metadata


def test_every_field_has_a_spec_with_help_and_a_valid_default():
    paths = []
    for path, spec, default in iter_fields():
        paths.append(path)
        assert spec.help.strip(), path
        if spec.kind in ("float", "int"):
            assert spec.lo is not None and spec.hi is not None and spec.lo < spec.hi, path
            assert default is None or spec.lo <= default <= spec.hi, path
        if spec.kind == "choice":
            assert default in spec.choices, path
        assert coerce_value(path, default, spec) == default
    sections = {p.split(".")[0] for p in paths}
    assert sections == set(SECTIONS)
    assert field_spec("optimizer.lr").log and field_spec("regularization.l2").lo == 0.0


def _numeric_fields():
    return [(p, s) for p, s, _ in iter_fields() if s.kind in ("float", "int")]


@pytest.mark.parametrize(("path", "spec"), _numeric_fields(), ids=lambda v: v if isinstance(v, str) else "")
def test_numeric_fields_accept_exactly_their_closed_range(path, spec):
    """The spec's bounds are the validator's: both ends accepted, just outside refused."""
    section, name = path.split(".")
    base = from_dict({}).to_dict()

    def build(value):
        raw = json.loads(json.dumps(base))
        raw[section][name] = value
        return from_dict(raw)

    for ok in (spec.lo, spec.hi):
        value = int(ok) if spec.kind == "int" else ok
        assert build(value).get(path) == value
    step = 1 if spec.kind == "int" else max(abs(spec.lo), abs(spec.hi), 1.0) * 1e-9
    for bad in (spec.lo - step, spec.hi + step):
        bad = int(bad) if spec.kind == "int" else bad
        with pytest.raises(ConfigError, match=rf"{path} must be in \["):
            build(bad)
    if spec.kind == "float":
        with pytest.raises(ConfigError, match="must be finite"):
            build(math.inf)
