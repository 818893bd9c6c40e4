"""Bias / variance diagnosis from train, dev and human-level error, with the "basic recipe".

Errors are fractions in [0, 1] (error = 1 − accuracy).

- avoidable bias = train_error − human_error  (human-level error is the Bayes-error proxy)
- variance       = dev_error − train_error

The rule (deliberately simple): a gap is *high* when it exceeds ``tolerance``, an absolute
number of error points (default 0.02 = 2 percentage points). "Exceeds" means strictly
greater, with 1e-9 of slack for float rounding, so a gap of exactly the tolerance (e.g.
0.12 − 0.10) is not high. The verdict is one of "high bias", "high variance",
"high bias and high variance" or "fine".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from engine.errors import InputError

DEFAULT_TOLERANCE = 0.02
_SLACK = 1e-9

BIAS_STEPS = [
    "Train a bigger network (more hidden units or more layers).",
    "Train longer (more epochs).",
    "Use a better optimizer or tune the learning rate (e.g. Adam, a larger or smaller lr).",
    "Try a different architecture or activation.",
    "Reduce regularization if it is strong (smaller L2/L1, keep_prob closer to 1).",
]
VARIANCE_STEPS = [
    "Get more training data.",
    "Add regularization: L2 weight decay, dropout (keep_prob < 1) or data augmentation.",
    "Use early stopping on the dev set.",
    "Try a smaller network or a different architecture.",
]
FINE_STEPS = [
    "Train and dev error are both close to the target: check the test set once, or lower "
    "human_error if you believe the task can be done better.",
]


@dataclass(frozen=True)
class Diagnosis:
    train_error: float
    dev_error: float
    human_error: float
    avoidable_bias: float
    variance: float
    tolerance: float
    high_bias: bool
    high_variance: bool
    verdict: str
    explanation: str
    next_steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _check(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise InputError(f"{name} must be a fraction in [0, 1], got {value!r}")
    return v


def diagnose(
    train_error: float, dev_error: float, human_error: float = 0.0, tolerance: float = DEFAULT_TOLERANCE
) -> Diagnosis:
    """Diagnose bias and variance; all arguments are fractions in [0, 1]."""
    train = _check("train_error", train_error)
    dev = _check("dev_error", dev_error)
    human = _check("human_error", human_error)
    tol = _check("tolerance", tolerance)
    bias = train - human
    variance = dev - train
    high_bias = bias > tol + _SLACK
    high_variance = variance > tol + _SLACK
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    facts = (
        f"avoidable bias {pct(bias)} (train {pct(train)} − human {pct(human)}), "
        f"variance {pct(variance)} (dev {pct(dev)} − train {pct(train)}); "
        f"a gap above {pct(tol)} counts as high."
    )
    notes = []
    if bias < -(tol + _SLACK):
        notes.append(" Train error is below the human-level error: human_error may be set too high.")
    if variance < -(tol + _SLACK):
        notes.append(
            " Dev error is below train error: dropout/augmentation or a small or easy dev set may explain it."
        )
    if high_bias and high_variance:
        verdict = "high bias and high variance"
        steps = ["Fix the bias first, then the variance."] + BIAS_STEPS + VARIANCE_STEPS
    elif high_bias:
        verdict = "high bias"
        steps = list(BIAS_STEPS)
    elif high_variance:
        verdict = "high variance"
        steps = list(VARIANCE_STEPS)
    else:
        verdict = "fine"
        steps = list(FINE_STEPS)
    return Diagnosis(
        train_error=train,
        dev_error=dev,
        human_error=human,
        avoidable_bias=bias,
        variance=variance,
        tolerance=tol,
        high_bias=high_bias,
        high_variance=high_variance,
        verdict=verdict,
        explanation=f"{verdict.capitalize()}: {facts}{''.join(notes)}",
        next_steps=steps,
    )
