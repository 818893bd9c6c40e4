"""Successive halving (ASHA-style) decisions, hand-computed."""

import math

import pytest

from engine.sweep_prune import SuccessiveHalving, rung_epochs


def test_rungs_are_min_epochs_times_powers_of_eta_below_the_last_epoch():
    assert rung_epochs(1, 3, 27) == (1, 3, 9)
    assert rung_epochs(1, 3, 28) == (1, 3, 9, 27)
    assert rung_epochs(2, 2, 20) == (2, 4, 8, 16)
    assert rung_epochs(5, 3, 5) == ()
    sh = SuccessiveHalving(eta=3, min_epochs=2)
    assert [e for e in range(1, 60) if sh.is_rung(e)] == [2, 6, 18, 54]


def test_asynchronous_decisions_keep_the_best_n_over_eta_seen_so_far():
    sh = SuccessiveHalving(eta=3, min_epochs=1)
    # (trial, dev loss, expected promote, expected rank, n, keep) at rung epoch 1
    steps = [
        ("a", 0.50, True, 1, 1, 1),  # the first trial at a rung always continues
        ("b", 0.60, False, 2, 2, 1),  # 2 // 3 = 0 -> keep 1: only the best so far continues
        ("c", 0.40, True, 1, 3, 1),
        ("d", 0.45, False, 2, 4, 1),
        ("e", 0.55, False, 4, 5, 1),
        ("f", 0.30, True, 1, 6, 2),  # 6 // 3 = 2: the best two (0.30, 0.40)
        ("g", 0.42, False, 3, 7, 2),
        ("h", 0.40, True, 2, 8, 2),  # ties with the 2nd best continue
        ("i", float("nan"), False, 9, 9, 3),  # NaN counts as +inf
    ]
    for trial, value, promote, rank, n, keep in steps:
        d = sh.report(trial, 1, value)
        assert (d.promote, d.rank, d.n, d.keep) == (promote, rank, n, keep), trial
    assert sh.values_at(1)["i"] == math.inf
    # a different rung has its own field
    assert sh.report("c", 3, 0.9).promote
    assert not sh.report("f", 3, 1.0).promote
    msg = sh.report("a", 3, 2.0).message()
    assert msg.startswith("pruned at epoch 3 by successive halving: dev loss 2 ranks 3 of 3")


def test_eta_two_like_the_reference_implementation():
    sh = SuccessiveHalving(eta=2, min_epochs=1)
    assert sh.report("t1", 1, 1.0).promote  # a pruner is not activated at a first trial
    assert not sh.report("t2", 1, 2.0).promote  # worse than the only other: pruned


def test_record_history_refills_rungs_from_finished_trials():
    sh = SuccessiveHalving(eta=3, min_epochs=1)
    sh.record_history("old", [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])  # 10 epochs
    assert sh.values_at(1) == {"old": 0.9}
    assert sh.values_at(3) == {"old": 0.7}
    assert sh.values_at(9) == {"old": 0.1}
    assert not sh.report("new", 3, 0.75).promote
    with pytest.raises(ValueError, match="not a rung"):
        sh.report("new", 4, 0.1)
