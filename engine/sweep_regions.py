"""Where a validation curve is drawn and where it shows high bias or high variance. Qt-free.

:func:`plot_positions` places a :class:`engine.sweep_results.Curve`'s points on its x axis, in
*axis units*: ``log10(x)`` on a log axis, ``x`` on a linear one, the point's index when the
values are not numbers (architectures, optimizer names). A value of 0 on a log axis (an
unregularized λ = 0 beside 1e-4 … 1) cannot sit at log10(0): it is put one decade below the
smallest positive value, and the axis labels that position "0".

:func:`bias_variance_regions` reads the curve's own numbers with the engine's diagnosis rule
(:func:`engine.diagnosis.diagnose`): at each point, avoidable bias = mean train error −
human-level error and variance = mean dev error − mean train error; a gap above the tolerance
(default 2 error points) is *high*. Neighbouring points with the same flag make one region,
which spans from halfway to the previous point to halfway to the next (in axis units, so
geometric halfway on a log axis): the label sits over the points that earned it, on whichever
side of the curve they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.diagnosis import DEFAULT_TOLERANCE, diagnose

HIGH_BIAS = "high bias"
HIGH_VARIANCE = "high variance"


@dataclass(frozen=True)
class Positions:
    """Axis positions of a curve's points. ``log``: the axis is log10 of the values;
    ``categorical``: positions are indices (``labels`` name them); ``zero_at``: where a value of
    0 was put on a log axis (None when there is none)."""

    x: tuple[float, ...]
    log: bool
    categorical: bool
    zero_at: float | None = None


@dataclass(frozen=True)
class CurveRegion:
    """A run of neighbouring curve points with high bias (or high variance).

    ``first``/``last``: indices into ``curve.points`` (inclusive); ``x0``/``x1``: the span in
    axis units (:func:`plot_positions`); ``gap``: the largest avoidable bias (or variance) of
    those points."""

    kind: str
    first: int
    last: int
    x0: float
    x1: float
    gap: float


def plot_positions(curve) -> Positions:
    """Where each point of ``curve`` goes on its x axis (see the module docstring)."""
    xs = [p.x for p in curve.points]
    if not xs or any(x is None or not math.isfinite(x) for x in xs):
        return Positions(tuple(float(i) for i in range(len(xs))), log=False, categorical=True)
    if not curve.log:
        return Positions(tuple(float(x) for x in xs), log=False, categorical=False)
    positive = [x for x in xs if x > 0]
    if not positive:  # nothing to take a log of: a linear axis says the truth
        return Positions(tuple(float(x) for x in xs), log=False, categorical=False)
    zero_at = math.floor(math.log10(min(positive)) + 1e-9) - 1.0 if len(positive) < len(xs) else None
    return Positions(
        tuple(math.log10(x) if x > 0 else zero_at for x in xs), log=True, categorical=False, zero_at=zero_at
    )


def bias_variance_regions(
    curve, human_error: float = 0.0, tolerance: float = DEFAULT_TOLERANCE
) -> list[CurveRegion]:
    """Regions of high bias and of high variance along ``curve`` (see the module docstring),
    bias regions first, each in x order."""
    points = curve.points
    if not points:
        return []
    pos = plot_positions(curve).x
    flags = []
    for p in points:
        d = diagnose(_fraction(p.train_error), _fraction(p.dev_error), human_error, tolerance)
        flags.append(
            {HIGH_BIAS: (d.high_bias, d.avoidable_bias), HIGH_VARIANCE: (d.high_variance, d.variance)}
        )
    order = sorted(range(len(points)), key=lambda i: pos[i])
    regions = []
    for kind in (HIGH_BIAS, HIGH_VARIANCE):
        run: list[int] = []
        for k, i in enumerate(order + [None]):
            if i is not None and flags[i][kind][0]:
                run.append(k)
                continue
            if run:
                idx = [order[k] for k in run]
                lo_k, hi_k = run[0], run[-1]
                x0 = _edge(pos, order, lo_k, -1)
                x1 = _edge(pos, order, hi_k, +1)
                gap = max(flags[j][kind][1] for j in idx)
                regions.append(CurveRegion(kind, min(idx), max(idx), x0, x1, gap))
                run = []
    return regions


def _edge(pos, order, k: int, side: int) -> float:
    """Halfway from the k-th point (in x order) to its neighbour on ``side``; at an end, as far
    out as the gap on the other side (half a unit for a lone point)."""
    here = pos[order[k]]
    n = len(order)
    if 0 <= k + side < n:
        return (here + pos[order[k + side]]) / 2.0
    if 0 <= k - side < n:
        return here - (pos[order[k - side]] - here) / 2.0
    return here + side * 0.5


def _fraction(v: float) -> float:
    """Mean errors are fractions; clamp float noise (1 − 1.0000000002) into [0, 1]."""
    return min(1.0, max(0.0, float(v)))
