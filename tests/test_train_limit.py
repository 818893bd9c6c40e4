"""data.train_limit: a seeded, stratified-when-stratify subset of the training split (learning curves)."""

import numpy as np
import pytest

from engine.config import from_dict
from engine.errors import DataError
from engine.normalization import fit_standardizer
from engine.prepare import load_sources, prepare_data, prepare_from_sources, set_counts


def cfg_of(**data):
    return from_dict({"data": {"source": "builtin:moons", "n_samples": 1000, "seed": 3, **data}})


def row_set(X):
    return {tuple(r) for r in np.asarray(X)}


def test_stratified_limit_keeps_class_shares_and_leaves_dev_and_test_alone():
    full = prepare_data(cfg_of())
    lim = prepare_data(cfg_of(train_limit=101))
    assert np.bincount(full.train.y).tolist() == [300, 300]
    # 101 × 300/600 = 50.5 each: largest remainder gives the tie to the first class
    assert np.bincount(lim.train.y).tolist() == [51, 50]
    assert row_set(lim.train.X) <= row_set(full.train.X)
    np.testing.assert_array_equal(lim.dev.X, full.dev.X)
    np.testing.assert_array_equal(lim.test.X, full.test.X)
    # normalization is fitted on the examples actually used
    mean, std = fit_standardizer(lim.train.X, False)
    np.testing.assert_array_equal(lim.norm_mean, mean)
    np.testing.assert_array_equal(lim.norm_std, std)
    # split.npz records the subset: train_idx rows of the source are the training rows
    sources = load_sources(cfg_of().data)
    idx = lim.split_indices
    assert len(idx["train_idx"]) == 101
    np.testing.assert_array_equal(sources["main"].X[idx["train_idx"]], lim.train.X)
    np.testing.assert_array_equal(idx["dev_idx"], full.split_indices["dev_idx"])


def test_limit_is_deterministic_nested_and_seeded():
    a = prepare_data(cfg_of(train_limit=200)).train.X
    b = prepare_data(cfg_of(train_limit=200)).train.X
    np.testing.assert_array_equal(a, b)
    small = prepare_data(cfg_of(train_limit=50)).train.X
    assert row_set(small) <= row_set(a)  # learning-curve points nest
    other = prepare_data(cfg_of(train_limit=200, seed=4)).train.X
    assert row_set(other) != row_set(a)


def test_unstratified_limit_is_exact_in_size_and_nested():
    a = prepare_data(cfg_of(train_limit=120, stratify=False))
    b = prepare_data(cfg_of(train_limit=60, stratify=False))
    assert len(a.train) == 120 and len(b.train) == 60
    assert row_set(b.train.X) <= row_set(a.train.X)


def test_limit_at_or_above_the_training_size_uses_everything():
    full = prepare_data(cfg_of())
    for limit in (600, 10_000):
        same = prepare_data(cfg_of(train_limit=limit))
        np.testing.assert_array_equal(same.train.X, full.train.X)
        np.testing.assert_array_equal(same.split_indices["train_idx"], full.split_indices["train_idx"])


def test_a_class_left_without_examples_is_refused_naming_the_field():
    cfg = from_dict({"data": {"source": "builtin:blobs", "n_samples": 300, "n_classes": 3, "train_limit": 2}})
    with pytest.raises(DataError, match=r"data.train_limit 2 leaves class .* with no training examples"):
        prepare_data(cfg)
    # the window's live split table still gets the counts (check=False)
    counts = set_counts(cfg, load_sources(cfg.data), check=False)
    assert sum(counts["train"].values()) == 2


def test_set_counts_reflect_the_limit():
    cfg = cfg_of(train_limit=101)
    sources = load_sources(cfg.data)
    counts = set_counts(cfg, sources)
    prep = prepare_from_sources(cfg, sources)
    assert counts["train"] == {"upper moon": 51, "lower moon": 50}
    assert sum(counts["dev"].values()) == len(prep.dev) == 200
