"""Train/dev/test splits: exact sizes, disjoint cover, stratification, seeding and refusals."""

import numpy as np
import pytest

from engine.config import SPLIT_PRESETS
from engine.errors import DataError
from engine.splits import allocate, largest_remainder, split_counts, split_indices, split_label, split_rng


def labels(sizes):
    y = np.repeat(np.arange(len(sizes)), sizes)
    return np.random.default_rng(123).permutation(y)


def check_cover(idx, n):
    all_idx = np.concatenate([idx["train_idx"], idx["dev_idx"], idx["test_idx"]])
    assert all_idx.dtype == np.int64
    assert len(all_idx) == n
    np.testing.assert_array_equal(np.sort(all_idx), np.arange(n))  # disjoint and complete


def test_largest_remainder_by_hand():
    # 157 × (0.6, 0.2, 0.2) = 94.2, 31.4, 31.4 -> floors 94, 31, 31, one left for the largest remainder (dev first)
    np.testing.assert_array_equal(largest_remainder(157, (0.6, 0.2, 0.2)), [94, 32, 31])
    np.testing.assert_array_equal(largest_remainder(10, (0.7, 0.3, 0.0)), [7, 3, 0])
    # 1000 × 98/1/1 exactly
    np.testing.assert_array_equal(largest_remainder(1000, (0.98, 0.01, 0.01)), [980, 10, 10])
    # 0.1+0.2 floating error must not drop an example: 30 × (0.7, 0.2, 0.1) = 21, 6, 3
    np.testing.assert_array_equal(largest_remainder(30, (0.7, 0.2, 0.1)), [21, 6, 3])


@pytest.mark.parametrize("preset", sorted(SPLIT_PRESETS))
@pytest.mark.parametrize("stratify", [True, False])
def test_presets_exact_sizes_and_cover(preset, stratify):
    fr = SPLIT_PRESETS[preset]
    y = labels([700, 500, 800])
    idx = split_indices(y, fr, stratify, split_rng(0))
    check_cover(idx, 2000)
    expected = {"70/30": (1400, 600, 0), "60/20/20": (1200, 400, 400), "98/1/1": (1960, 20, 20)}[preset]
    assert (len(idx["train_idx"]), len(idx["dev_idx"]), len(idx["test_idx"])) == expected
    for v in idx.values():
        assert np.all(np.diff(v) > 0)  # sorted, no repeats


def test_stratified_proportions_per_class():
    sizes = [103, 51, 17]
    y = labels(sizes)
    idx = split_indices(y, (0.6, 0.2, 0.2), True, split_rng(1))
    check_cover(idx, sum(sizes))
    for c, n_c in enumerate(sizes):
        got = [int(np.sum(y[idx[f"{s}_idx"]] == c)) for s in ("train", "dev", "test")]
        assert sum(got) == n_c
        for g, f in zip(got, (0.6, 0.2, 0.2)):
            assert abs(g - n_c * f) < 1.0  # within one example of the exact share
    totals = [len(idx[f"{s}_idx"]) for s in ("train", "dev", "test")]
    np.testing.assert_array_equal(totals, largest_remainder(sum(sizes), (0.6, 0.2, 0.2)))


def test_allocate_margins():
    rng = np.random.default_rng(7)
    for _ in range(200):
        sizes = rng.integers(1, 60, size=rng.integers(2, 8))
        fr = rng.dirichlet([1, 1, 1])
        cells = allocate(sizes, fr, stratify=True)
        np.testing.assert_array_equal(cells.sum(axis=1), sizes)
        np.testing.assert_array_equal(cells.sum(axis=0), largest_remainder(int(sizes.sum()), fr))
        quota = sizes[:, None] * (fr / fr.sum())[None, :]
        assert np.all(np.abs(cells - quota) < 2.0)


def test_seeded_and_seed_dependent():
    y = labels([60, 60])
    for stratify in (True, False):
        a = split_indices(y, (0.6, 0.2, 0.2), stratify, split_rng(3))
        b = split_indices(y, (0.6, 0.2, 0.2), stratify, split_rng(3))
        c = split_indices(y, (0.6, 0.2, 0.2), stratify, split_rng(4))
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
        assert not np.array_equal(a["dev_idx"], c["dev_idx"])


def test_unstratified_is_a_plain_random_split():
    y = labels([500, 500])
    plain, strat = set(), set()
    for seed in range(10):
        plain.add(int(np.sum(y[split_indices(y, (0.5, 0.5), False, split_rng(seed))["dev_idx"]] == 0)))
        strat.add(int(np.sum(y[split_indices(y, (0.5, 0.5), True, split_rng(seed))["dev_idx"]] == 0)))
    assert strat == {250}  # stratified: exactly half of each class
    assert len(plain) > 3  # plain shuffle: the class mix of dev varies with the seed


def test_two_fractions_mean_no_test():
    y = labels([30, 30])
    idx = split_indices(y, [0.7, 0.3], True, split_rng(0))
    assert len(idx["test_idx"]) == 0
    assert (len(idx["train_idx"]), len(idx["dev_idx"])) == (42, 18)


def test_refuses_empty_dev_for_a_class_and_names_it():
    y = labels([500, 500, 12])
    with pytest.raises(DataError) as exc:
        split_indices(y, (0.98, 0.01, 0.01), True, split_rng(0), classes=["dog", "bird", "cat"])
    msg = str(exc.value)
    assert "data.split 98/1/1" in msg and "'cat'" in msg and "dev" in msg and "only 12" in msg
    assert "\n" not in msg


def test_refuses_empty_set():
    # 40 × 98/1/1 = 39.2, 0.4, 0.4 -> the leftover example goes to dev (tie, earlier set): test is empty
    with pytest.raises(DataError, match=r"data.split 98/1/1 leaves the test set empty \(40 examples"):
        split_indices(labels([20, 20]), (0.98, 0.01, 0.01), False, split_rng(0))
    # 30 × 98/1/1 = 29.4, 0.3, 0.3 -> the leftover goes to train: dev is empty
    with pytest.raises(DataError, match=r"data.split 98/1/1 leaves the dev set empty"):
        split_indices(labels([15, 15]), (0.98, 0.01, 0.01), False, split_rng(0))


def test_refuses_class_missing_from_train():
    # one example of class 2 cannot be in train and, stratified, also in dev
    y = np.array([0] * 50 + [1] * 50 + [2])
    with pytest.raises(DataError, match=r"class 'rare' with no (dev|train) examples"):
        split_indices(y, (0.6, 0.4), True, split_rng(0), classes=["a", "b", "rare"])
    # unstratified: the class must still land in train; with 1 example and a 10 % train share it won't always
    refused = 0
    for seed in range(20):
        try:
            idx = split_indices(y, (0.1, 0.9), False, split_rng(seed), classes=["a", "b", "rare"])
            assert 100 in idx["train_idx"]
        except DataError as exc:
            assert "class 'rare' with no train examples" in str(exc)
            refused += 1
    assert 10 <= refused <= 20


def test_refuses_class_with_no_examples():
    y = np.array([0] * 10 + [2] * 10)
    with pytest.raises(DataError, match="class 'b' has no examples"):
        split_indices(y, (0.5, 0.5), True, split_rng(0), classes=["a", "b", "c"])


def test_split_counts_matches_split_indices():
    y = labels([40, 25, 9])
    names = ["a", "b", "c"]
    for stratify in (True, False):
        counts = split_counts(y, (0.6, 0.2, 0.2), stratify, 11, names)
        idx = split_indices(y, (0.6, 0.2, 0.2), stratify, split_rng(11), names)
        for s in ("train", "dev", "test"):
            expect = np.bincount(y[idx[f"{s}_idx"]], minlength=3)
            assert counts[s] == dict(zip(names, expect.tolist()))
        assert sum(sum(v.values()) for v in counts.values()) == 74


def test_split_counts_unchecked_shows_the_zeros():
    y = labels([500, 12])
    with pytest.raises(DataError):
        split_counts(y, (0.98, 0.01, 0.01), True, 0, ["dog", "cat"])
    counts = split_counts(y, (0.98, 0.01, 0.01), True, 0, ["dog", "cat"], check=False)
    assert counts["train"]["cat"] == 12 and counts["dev"]["cat"] == 0
    assert sum(counts[s]["dog"] for s in counts) == 500


def test_split_label():
    assert split_label((0.7, 0.3, 0.0)) == "70/30"
    assert split_label((0.98, 0.01, 0.01)) == "98/1/1"
    assert split_label([0.6, 0.2, 0.2]) == "60/20/20"
