"""Bias/variance diagnosis on hand-made cases, including human error and the tolerance boundary."""

from __future__ import annotations

import json

import pytest

from engine.diagnosis import diagnose
from engine.errors import InputError


def test_high_bias():
    d = diagnose(0.15, 0.16)
    assert d.avoidable_bias == pytest.approx(0.15)
    assert d.variance == pytest.approx(0.01)
    assert d.verdict == "high bias"
    assert d.high_bias and not d.high_variance
    assert any("bigger network" in s for s in d.next_steps)
    assert any("longer" in s for s in d.next_steps)
    assert not any("more training data" in s.lower() for s in d.next_steps)


def test_high_variance():
    d = diagnose(0.01, 0.11, image_data=True)
    assert d.avoidable_bias == pytest.approx(0.01)
    assert d.variance == pytest.approx(0.10)
    assert d.verdict == "high variance"
    steps = " ".join(d.next_steps)
    assert "more training data" in steps and "L2" in steps and "dropout" in steps
    assert "augmentation" in steps and "early stopping" in steps
    assert d.advice == ["more_data", "regularize", "augment", "early_stopping", "smaller_network"]
    # 2-D data cannot be augmented; a run that already stops early is not told to
    d = diagnose(0.01, 0.11, early_stopping=True, regularized=True)
    assert d.advice == ["more_data", "stronger_regularization", "smaller_network"]


def test_high_bias_and_high_variance_fixes_bias_first():
    d = diagnose(0.15, 0.30)
    assert d.verdict == "high bias and high variance"
    assert d.avoidable_bias == pytest.approx(0.15) and d.variance == pytest.approx(0.15)
    assert d.next_steps[0].startswith("Fix the bias first")
    # never both "bigger" and "smaller" network: the variance steps wait until the bias is fixed
    assert "bigger_network" in d.advice and "smaller_network" not in d.advice
    assert not any("smaller network" in s for s in d.next_steps)


def test_fine():
    d = diagnose(0.005, 0.015)
    assert d.verdict == "fine"
    assert not d.high_bias and not d.high_variance


def test_human_error_changes_the_avoidable_bias():
    # 15% train error is high bias against 0% human error, fine against 14%
    assert diagnose(0.15, 0.16, human_error=0.0).verdict == "high bias"
    d = diagnose(0.15, 0.16, human_error=0.14)
    assert d.avoidable_bias == pytest.approx(0.01)
    assert d.verdict == "fine"
    # and the variance part does not depend on it
    d = diagnose(0.08, 0.20, human_error=0.075)
    assert d.avoidable_bias == pytest.approx(0.005)
    assert d.variance == pytest.approx(0.12)
    assert d.verdict == "high variance"


def test_tolerance_boundary_is_exclusive():
    # gaps of exactly 0.02 (up to float rounding: 0.12 - 0.10 = 0.01999…) are not high
    d = diagnose(0.12, 0.14, human_error=0.10)
    assert not d.high_bias and not d.high_variance and d.verdict == "fine"
    d = diagnose(0.07, 0.09, human_error=0.05)  # 0.07 - 0.05 = 0.020000000000000004
    assert d.verdict == "fine"
    # just above the tolerance is high
    assert diagnose(0.1201, 0.13, human_error=0.10).verdict == "high bias"
    assert diagnose(0.10, 0.1201, human_error=0.10).verdict == "high variance"
    # a custom tolerance
    assert diagnose(0.10, 0.14, human_error=0.10, tolerance=0.05).verdict == "fine"
    assert diagnose(0.10, 0.16, human_error=0.10, tolerance=0.05).verdict == "high variance"


def test_train_below_human_error_is_explained():
    d = diagnose(0.02, 0.03, human_error=0.10)
    assert d.avoidable_bias == pytest.approx(-0.08)
    assert d.verdict == "fine"
    assert "below the human-level error you entered (10.0 %)" in d.notes[0]
    assert "set too high" in d.explanation
    # an estimate is not something the user entered, and the note agrees with the verdict
    est = diagnose(0.02, 0.03, human_error=0.10, human_estimated=True)
    assert est.verdict == "fine" and "you entered" not in est.notes[0]
    assert "the estimated human-level error (10.0 %" in est.notes[0] and "overestimated" in est.notes[0]
    assert "generalizes" not in est.notes[0]
    # with high variance the other explanation is the one that fits
    hv = diagnose(0.02, 0.15, human_error=0.10, human_estimated=True)
    assert hv.verdict == "high variance"
    assert "fits its training set better than it generalizes" in hv.notes[0]
    assert "overestimated" not in hv.notes[0]


def test_to_dict_is_plain_json():
    d = diagnose(0.15, 0.30, human_error=0.01).to_dict()
    assert d["verdict"] == "high bias and high variance"
    assert set(d) >= {"avoidable_bias", "variance", "verdict", "next_steps", "human_error", "tolerance"}
    assert json.loads(json.dumps(d)) == d


@pytest.mark.parametrize("args", [(1.5, 0.1), (0.1, -0.1), (0.1, 0.1, float("nan")), (0.1, 0.1, 0.0, 2.0)])
def test_out_of_range_errors_are_input_errors(args):
    with pytest.raises(InputError):
        diagnose(*args)


def test_weaken_regularization_only_for_a_regularized_run():
    assert "weaker_regularization" not in diagnose(0.15, 0.16).advice
    assert "weaker_regularization" in diagnose(0.15, 0.16, regularized=True).advice


@pytest.mark.parametrize(
    ("outcomes", "code", "advice"),
    [
        (["diverged"], "diverged", ["lower_lr", "smaller_init", "normalize_inputs"]),
        (["zero_init"], "not_learning", ["break_symmetry"]),
        (["stalled"], "not_learning", ["revive_units", "smaller_init"]),
        (["weights_unchanged"], "not_learning", ["weights_unchanged"]),
        (["cancelled"], "unfinished", ["finish_run"]),
        (["cancelled", "diverged"], "diverged", ["lower_lr", "smaller_init", "normalize_inputs"]),
    ],
)
def test_runs_that_did_not_train_normally_get_no_capacity_advice(outcomes, code, advice):
    # 50 % train and dev error would read "high bias: bigger network" for a normal run
    d = diagnose(0.5, 0.5, 0.0, outcomes=outcomes)
    assert d.verdict_code == code
    assert d.advice == advice
    assert not {"bigger_network", "smaller_network", "more_data"} & set(d.advice)


def test_diagnose_run_reads_the_outcome_from_the_config_and_stop_reason():
    from engine.config import from_dict
    from engine.diagnosis import diagnose_run

    final = {"train_acc": 0.5, "dev_acc": 0.5}
    zeros = from_dict({"model": {"init": "zeros"}, "diagnosis": {"human_error": 0.0}})
    assert diagnose_run(zeros, final, "completed").verdict_code == "not_learning"
    plain = from_dict({"diagnosis": {"human_error": 0.0}})
    assert diagnose_run(plain, final, "completed").verdict_code == "bias"
    assert diagnose_run(plain, final, "diverged").verdict_code == "diverged"
    assert diagnose_run(plain, None, "completed") is None
    # no hidden layer: zero weights are fine for logistic regression
    logistic = from_dict({"model": {"hidden": [], "init": "zeros"}, "diagnosis": {"human_error": 0.0}})
    assert diagnose_run(logistic, final, "completed").verdict_code == "bias"
