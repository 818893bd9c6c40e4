"""Where a validation curve sits on its axis and where it shows high bias / high variance
(engine.sweep_regions), checked against hand-computed positions and spans."""

import math

import pytest

from engine.sweep_regions import HIGH_BIAS, HIGH_VARIANCE, bias_variance_regions, plot_positions
from engine.sweep_results import Curve, CurvePoint


def curve(points, log=True, field="regularization.l2"):
    """points: (value, train error, dev error)."""
    cps = tuple(
        CurvePoint(
            value=v,
            x=None if not isinstance(v, (int, float)) else float(v),
            n=1,
            train_error=tr,
            train_error_spread=0.0,
            dev_error=dv,
            dev_error_spread=0.0,
            trial_ids=(f"t{i}",),
        )
        for i, (v, tr, dv) in enumerate(points)
    )
    best = min(cps, key=lambda p: p.dev_error) if cps else None
    return Curve(field, log, cps, best, {}, "final")


def test_log_positions_put_zero_a_decade_below_the_smallest_value():
    pos = plot_positions(curve([(0.0, 0, 0), (1e-3, 0, 0), (0.1, 0, 0), (10.0, 0, 0)]))
    assert pos.log and not pos.categorical
    assert pos.zero_at == -4.0  # floor(log10(1e-3)) − 1
    assert pos.x == pytest.approx((-4.0, -3.0, -1.0, 1.0))
    # 2e-3 as the smallest: floor(log10(0.002)) = -3, so 0 sits at -4
    assert plot_positions(curve([(0.0, 0, 0), (2e-3, 0, 0)])).x == pytest.approx((-4.0, math.log10(2e-3)))


def test_linear_and_categorical_positions():
    lin = plot_positions(curve([(0.5, 0, 0), (0.8, 0, 0), (1.0, 0, 0)], log=False))
    assert (lin.log, lin.categorical, lin.x) == (False, False, (0.5, 0.8, 1.0))
    cat = plot_positions(curve([([8], 0, 0), ([32], 0, 0), ([128, 64], 0, 0)], field="model.hidden"))
    assert (cat.log, cat.categorical, cat.x) == (False, True, (0.0, 1.0, 2.0))
    # a log field whose values are all 0: a linear axis (no log of nothing)
    assert plot_positions(curve([(0.0, 0, 0)])).log is False


def test_regions_follow_the_numbers_with_the_diagnosis_tolerance():
    # λ: 1e-4 (train 0.00, dev 0.15: variance 0.15), 1e-3 (0.01, 0.12: variance 0.11),
    # 1e-2 (0.04, 0.05: bias 0.04 − human 0.01 = 0.03 > 0.02, variance 0.01), 1e-1 (0.02, 0.035:
    # bias 0.01, variance 0.015: fine), 1 (0.30, 0.31: bias 0.29)
    c = curve(
        [(1e-4, 0.0, 0.15), (1e-3, 0.01, 0.12), (1e-2, 0.04, 0.05), (1e-1, 0.02, 0.035), (1.0, 0.30, 0.31)]
    )
    regions = bias_variance_regions(c, human_error=0.01, tolerance=0.02)
    got = [(r.kind, r.first, r.last, round(r.x0, 9), round(r.x1, 9)) for r in regions]
    assert got == [
        # bias at 1e-2 (x = -2): from halfway to -3 to halfway to -1
        (HIGH_BIAS, 2, 2, -2.5, -1.5),
        # bias at 1 (x = 0): the last point, as far right as the gap to its left
        (HIGH_BIAS, 4, 4, -0.5, 0.5),
        # variance at 1e-4 and 1e-3 (x = -4, -3): from -4.5 (mirror of the gap) to -2.5
        (HIGH_VARIANCE, 0, 1, -4.5, -2.5),
    ]
    assert regions[0].gap == pytest.approx(0.03) and regions[1].gap == pytest.approx(0.29)
    assert regions[2].gap == pytest.approx(0.15)


def test_a_gap_of_exactly_the_tolerance_is_not_high_and_one_point_spans_half_a_unit():
    c = curve([(0.5, 0.12, 0.14)], log=False)  # variance exactly 0.02: not high
    assert bias_variance_regions(c, human_error=0.10, tolerance=0.02) == []
    (r,) = bias_variance_regions(c, human_error=0.0, tolerance=0.02)  # bias 0.12
    assert (r.kind, r.x0, r.x1) == (HIGH_BIAS, 0.0, 1.0)
    assert bias_variance_regions(curve([]), 0.0) == []
