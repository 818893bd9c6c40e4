"""The config contract: defaults, partial files filled in, unknown keys and bad values refused by path."""

import json

import pytest

from engine.config import ConfigError, ExperimentConfig, from_dict, from_json, load_config, validate


def test_empty_config_is_all_defaults_matching_design():
    cfg = from_dict({})
    d = cfg.to_dict()
    assert d["data"]["source"] == "builtin:moons"
    assert d["data"]["split"] == [0.6, 0.2, 0.2]
    assert d["data"]["image_size"] == [32, 32]
    assert d["augment"]["zoom"] == [1.0, 1.0]
    assert d["model"] == {"hidden": [64, 32], "activation": "relu", "init": "he", "init_scale": 1.0}
    assert d["regularization"] == {"l2": 0.0, "l1": 0.0, "keep_prob": 1.0, "input_keep_prob": 1.0}
    assert d["early_stopping"]["monitor"] == "dev_loss" and d["early_stopping"]["patience"] == 10
    assert d["optimizer"]["name"] == "adam" and d["optimizer"]["lr"] == 0.001
    assert d["training"] == {"epochs": 100, "batch_size": 64, "seed": 0, "dtype": "float32"}


def test_partial_file_is_filled_in_and_round_trips(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"regularization": {"l2": 0.5}, "model": {"hidden": [5]}}))
    cfg = load_config(p)
    assert cfg.regularization.l2 == 0.5 and cfg.model.hidden == [5]
    assert cfg.training.epochs == 100
    again = from_json(cfg.to_json())
    assert again.to_dict() == cfg.to_dict()


def test_keep_prob_expands_per_layer():
    cfg = from_dict({"model": {"hidden": [4, 3, 2]}, "regularization": {"keep_prob": 0.5}})
    assert cfg.keep_probs() == [0.5, 0.5, 0.5]
    cfg = from_dict({"model": {"hidden": [4, 3]}, "regularization": {"keep_prob": [1.0, 0.7]}})
    assert cfg.keep_probs() == [1.0, 0.7]


def test_two_part_split_gets_empty_test():
    assert from_dict({"data": {"split": [0.7, 0.3]}}).data.split == [0.7, 0.3, 0.0]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"regularization": {"keep_prob": [1.0, 0.0]}}, "regularization.keep_prob[1] must be in (0, 1]"),
        ({"regularization": {"keep_prob": [1.0]}}, "regularization.keep_prob has 1 entries"),
        ({"regularization": {"l2": -1}}, "regularization.l2 must be in [0, inf)"),
        ({"data": {"colour": "rgb"}}, "data.colour is not a known setting"),
        ({"bogus": {}}, "bogus is not a known setting"),
        ({"data": {"split": [0.5, 0.4, 0.4]}}, "data.split fractions must add up to 1"),
        ({"data": {"split": [1.0, 0.0, 0.0]}}, "data.split[1] (dev fraction) must be > 0"),
        ({"data": {"source": "builtin:nope"}}, "data.source: unknown built-in dataset 'nope'"),
        ({"data": {"image_size": [32]}}, "data.image_size must have 2 entries"),
        ({"data": {"color": "cmyk"}}, "data.color must be one of rgb, gray"),
        ({"model": {"activation": "gelu"}}, "model.activation must be one of"),
        ({"model": {"init": "orthogonal"}}, "model.init must be one of"),
        ({"model": {"hidden": [8, 0]}}, "model.hidden[1] must be an integer ≥ 1"),
        ({"optimizer": {"lr": 0}}, "optimizer.lr must be in (0, inf)"),
        ({"optimizer": {"beta2": 1.0}}, "optimizer.beta2 must be in [0, 1)"),
        ({"training": {"epochs": 0}}, "training.epochs must be an integer ≥ 1"),
        ({"training": {"batch_size": 2.5}}, "training.batch_size must be an integer"),
        ({"training": {"dtype": "float16"}}, "training.dtype must be one of float32, float64"),
        ({"early_stopping": {"monitor": "train_loss"}}, "early_stopping.monitor must be one of"),
        ({"early_stopping": {"enabled": "yes"}}, "early_stopping.enabled must be true or false"),
        ({"augment": {"zoom": [1.2, 0.8]}}, "augment.zoom[0] must be ≤ augment.zoom[1]"),
        ({"augment": {"hflip": 1.5}}, "augment.hflip must be in [0, 1]"),
        ({"diagnosis": {"human_error": 2}}, "diagnosis.human_error must be in [0, 1]"),
        ([1, 2], "config must be a JSON object"),
    ],
)
def test_bad_values_are_refused_naming_the_field(raw, message):
    with pytest.raises(ConfigError) as err:
        from_dict(raw)
    assert message in str(err.value)


def test_bad_json_and_missing_file_name_the_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{ not json")
    with pytest.raises(ConfigError, match="broken.json: not valid JSON"):
        load_config(p)
    with pytest.raises(ConfigError, match="missing.json: no such config file"):
        load_config(tmp_path / "missing.json")


def test_validate_catches_in_place_edits():
    cfg = ExperimentConfig()
    cfg.optimizer.lr = -3.0
    with pytest.raises(ConfigError, match="optimizer.lr"):
        validate(cfg)
