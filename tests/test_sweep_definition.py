"""Sweep definitions: --param syntax, grid and random points, seeds, stable trial ids, sweep.json."""

import itertools
import json

import pytest

from engine.config import ConfigError, from_dict
from engine.sweep import (
    SWEEP_FORMAT,
    PruneSettings,
    SweepDefinition,
    make_definition,
    make_param,
    parse_param,
    trial_id,
)

BASE = from_dict({"model": {"hidden": [8, 8]}, "training": {"seed": 5}})


def values(text):
    return parse_param(text, BASE).values


def test_list_values_are_read_as_json_scalars_or_strings():
    assert values("regularization.l2=0,0.01,1e-1") == (0.0, 0.01, 0.1)
    assert values("optimizer.name=sgd,adam") == ("sgd", "adam")
    assert values("data.train_limit=50,100,null") == (50, 100, None)
    assert values("training.batch_size=32,32,64") == (32, 64)  # duplicates dropped
    assert values("regularization.l1=[0.001, 0.01]") == (0.001, 0.01)


def test_log_and_lin_ranges():
    # 10**-4 .. 10**-1 in 4 steps: exactly the decades
    assert values("regularization.l2=log:1e-4:1e-1:4") == (1e-4, 1e-3, 1e-2, 1e-1)
    # sqrt(10) steps, rounded to 6 significant digits
    assert values("optimizer.lr=log:0.001:0.1:5") == (0.001, 0.00316228, 0.01, 0.0316228, 0.1)
    assert values("regularization.keep_prob=lin:0.5:1:3") == (0.5, 0.75, 1.0)
    # integers: rounded and de-duplicated (8, 9.51, 11.3, 13.45, 16 -> 8, 10, 11, 13, 16)
    assert values("training.batch_size=log:8:16:5") == (8, 10, 11, 13, 16)
    assert values("training.batch_size=lin:1:2:5") == (1, 2)
    p = parse_param("regularization.l2=log:1e-4:1e-1:4", BASE)
    assert p.range == ("log", 1e-4, 1e-1) and p.log
    assert not parse_param("regularization.keep_prob=lin:0.5:1:3", BASE).log
    assert parse_param("regularization.l2=0,1", BASE).log  # the field's spec says log


def test_hidden_widths_mean_every_layer_and_lists_are_architectures():
    assert values("model.hidden=64,128") == ((64, 64), (128, 128))
    assert values("model.hidden=log:16:64:3") == ((16, 16), (32, 32), (64, 64))
    assert values("model.hidden=[[4],[8,4]]") == ((4,), (8, 4))
    assert values("model.hidden=[16,[8,4]]") == ((16, 16), (8, 4))


def test_per_layer_keep_prob_lists():
    assert values("regularization.keep_prob=[0.5,[0.5,0.9]]") == (0.5, (0.5, 0.9))


@pytest.mark.parametrize(
    "text, message",
    [
        ("regularization.l3=0.1", r"--param regularization.l3=0.1: regularization.l3 is not a config field"),
        ("l2=0.1", r"--param l2=0.1: l2 is not a config field"),
        ("regularization.l2", r"--param regularization.l2: expected FIELD=VALUES"),
        ("regularization.l2=", r"no values after '='"),
        ("regularization.l2=0.1,,0.2", r"an empty value"),
        (
            "regularization.l2=-1",
            r"--param regularization.l2=-1: regularization.l2 must be in \[0, 1000\], got -1",
        ),
        ("regularization.keep_prob=0.5,2", r"regularization.keep_prob must be in \[0.01, 1\], got 2"),
        ("training.batch_size=0.5", r"training.batch_size must be an integer"),
        ("optimizer.name=rmsprop", r"optimizer.name must be one of sgd, momentum, adam"),
        ("regularization.l2=log:0:1:3", r"a log range needs LO > 0"),
        ("regularization.l2=log:1e-3:1e4:3", r"regularization.l2 must be in \[0, 1000\], got 10000"),
        ("regularization.l2=log:a:1:3", r"LO and HI must be numbers"),
        ("regularization.l2=log:1e-3:1:x", r"N must be a whole number"),
        ("regularization.l2=log:1e-3:1:3:4", r"a range is log:LO:HI:N"),
        ("optimizer.name=log:1:2:3", r"optimizer.name takes no range"),
        ("regularization.l2=[0.1", r"not a valid JSON list"),
        ("model.hidden=wide", r"model.hidden takes widths"),
    ],
)
def test_bad_params_name_the_param(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_param(text, BASE)
    assert str(info.value).startswith(f"--param {text}") and "\n" not in str(info.value)


def test_grid_is_the_product_times_seeds():
    l2 = parse_param("regularization.l2=0,0.1,1", BASE)
    kp = parse_param("regularization.keep_prob=0.5,1", BASE)
    d = make_definition(BASE, [l2, kp], seeds=2)
    assert len(d.trials) == 3 * 2 * 2
    got = [(t.values["regularization.l2"], t.values["regularization.keep_prob"], t.seed) for t in d.trials]
    want = [(a, b, s) for a, b in itertools.product((0.0, 0.1, 1.0), (0.5, 1.0)) for s in (5, 6)]
    assert got == want  # training.seed = base seed + k
    t = d.trials[5]
    cfg = d.trial_config(t)
    assert cfg.regularization.l2 == 0.1 and cfg.regularization.keep_prob == 0.5 and cfg.training.seed == 6
    assert cfg.model.hidden == (8, 8)  # everything else from the base


def test_trial_ids_are_stable_across_parameter_and_value_order():
    a = make_definition(
        BASE, [parse_param("regularization.l2=0,0.1", BASE), parse_param("optimizer.lr=0.01,0.1", BASE)]
    )
    b = make_definition(
        BASE, [parse_param("optimizer.lr=0.1,0.01", BASE), parse_param("regularization.l2=0.1,0", BASE)]
    )
    assert {t.id for t in a.trials} == {t.id for t in b.trials}
    assert len({t.id for t in a.trials}) == 4
    assert b.difference(a.to_dict()) is None
    tid = trial_id({"regularization.l2": 0.01}, 0)
    assert tid.startswith("l2=0.01_seed=0-") and len(tid) == len("l2=0.01_seed=0-") + 10
    assert trial_id({"regularization.l2": 0.01}, 1) != tid
    assert trial_id({"regularization.l1": 0.01}, 0) != tid  # same slug name, different field


def test_random_sampling_is_seeded_and_within_ranges():
    params = [parse_param("optimizer.lr=log:1e-4:1e-1", BASE), parse_param("optimizer.name=sgd,adam", BASE)]
    a = make_definition(BASE, params, sampling="random", budget=6, sample_seed=3)
    b = make_definition(BASE, params, sampling="random", budget=6, sample_seed=3)
    c = make_definition(BASE, params, sampling="random", budget=6, sample_seed=4)
    assert [t.id for t in a.trials] == [t.id for t in b.trials] != [t.id for t in c.trials]
    assert len(a.trials) == 6
    for t in a.trials:
        assert 1e-4 <= t.values["optimizer.lr"] <= 1e-1
        assert t.values["optimizer.name"] in ("sgd", "adam")
    # a discrete space no larger than the budget is taken whole, once
    small = make_definition(BASE, [parse_param("regularization.l2=0,1", BASE)], sampling="random", budget=5)
    assert sorted(t.values["regularization.l2"] for t in small.trials) == [0.0, 1.0]


def test_definition_errors():
    l2 = parse_param("regularization.l2=0,0.1,1", BASE)
    with pytest.raises(ConfigError, match="--sample random needs --budget"):
        make_definition(BASE, [l2], sampling="random")
    with pytest.raises(ConfigError, match="--budget 2: the grid has 3 points"):
        make_definition(BASE, [l2], budget=2)
    with pytest.raises(ConfigError, match="is given twice"):
        make_definition(BASE, [l2, l2])
    with pytest.raises(ConfigError, match="a grid needs N values"):
        make_definition(BASE, [parse_param("optimizer.lr=log:1e-3:1e-1", BASE)])
    with pytest.raises(ConfigError, match="--seeds must be"):
        make_definition(BASE, [l2], seeds=0)
    with pytest.raises(ConfigError, match="--eta must be"):
        PruneSettings(eta=1)
    # values that are valid alone but not together: a per-layer keep_prob for 2 layers, hidden of 3
    base = from_dict({"model": {"hidden": [8, 8]}, "regularization": {"keep_prob": [0.5, 0.9]}})
    with pytest.raises(ConfigError, match=r"--param model.hidden=\[\[4,4,4\]\]: .*keep_prob has 2 entries"):
        parse_param("model.hidden=[[4,4,4]]", base)


def test_sweep_json_round_trip_and_differences():
    params = [parse_param("regularization.l2=0,0.1", BASE)]
    d = make_definition(BASE, params, seeds=2, prune=PruneSettings(eta=2, min_epochs=3))
    raw = json.loads(json.dumps(d.to_dict()))
    assert raw["format"] == SWEEP_FORMAT and raw["seeds"] == 2 and len(raw["trials"]) == 4
    assert raw["prune"] == {"method": "halving", "eta": 2, "min_epochs": 3}
    back = SweepDefinition.from_dict(raw)
    assert [t.id for t in back.trials] == [t.id for t in d.trials]
    assert back.difference(raw) is None
    other_base = make_definition(BASE.replace(**{"optimizer.lr": 0.1}), params, seeds=2, prune=d.prune)
    assert "base config differs (optimizer.lr)" in other_base.difference(raw)
    assert "pruning differs" in make_definition(BASE, params, seeds=2).difference(raw)
    more = make_definition(BASE, [parse_param("regularization.l2=0,0.1,1", BASE)], seeds=2, prune=d.prune)
    assert "trials differ (2 new, 0 not in this sweep" in more.difference(raw)
    assert "not a RegLab sweep" in d.difference({"format": "x"})


def test_make_param_for_the_window():
    p = make_param("regularization.l2", [0, 0.1], BASE)
    assert p.values == (0.0, 0.1) and p.text == "regularization.l2=[0, 0.1]"
