"""Bias / variance diagnosis from train, dev and human-level error, with the "basic recipe".

Errors are fractions in [0, 1] (error = 1 − accuracy).

- avoidable bias = train_error − human_error  (human-level error is the Bayes-error proxy)
- variance       = dev_error − train_error

The rule (deliberately simple): a gap is *high* when it exceeds ``tolerance``, an absolute
number of error points (default 0.02 = 2 percentage points). "Exceeds" means strictly
greater, with 1e-9 of slack for float rounding, so a gap of exactly the tolerance (e.g.
0.12 − 0.10) is not high.

Verdicts (``verdict_code`` / ``verdict``):

- ``diverged`` / "training diverged", ``not_learning`` / "the network did not learn",
  ``unfinished`` / "unfinished run": the run's outcome says the errors do not measure what the
  network *can* do, so the advice is about optimization, initialization or finishing the run,
  never about the network's size or regularization;
- ``bias_and_variance``, ``bias``, ``variance``, ``fine``: the basic recipe. With both gaps
  high, bias is fixed first and only the bias steps are listed (a bigger network and a smaller
  one are never advised together).

Every piece of advice has a stable ``code`` (see :data:`ADVICE`) so the window can act on it
without matching text. Negative gaps are explained in words (``notes``).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import asdict, dataclass, field

from engine.errors import InputError

DEFAULT_TOLERANCE = 0.02
_SLACK = 1e-9

HUMAN_ERROR_NOTE = (
    "Human-level error: the lowest error you believe is possible on this task (a proxy for the "
    "Bayes error). Avoidable bias is measured against it."
)

# code -> the sentence shown to the user
ADVICE = {
    # optimization / initialization (runs whose numbers say nothing about capacity)
    "lower_lr": "Lower the learning rate (e.g. by 10×): the steps overshoot.",
    "smaller_init": "Use a smaller init_scale, or He (ReLU) / Xavier (tanh, sigmoid) initialization.",
    "normalize_inputs": "Normalize the inputs (data.normalize = standard) so no feature dominates the steps.",
    "break_symmetry": (
        "Initialize with random weights (He for ReLU, Xavier for tanh/sigmoid): with zero weights every "
        "hidden unit computes the same thing and gets the same update, so they never differ."
    ),
    "revive_units": (
        "Every gradient is 0: the units are dead or saturated. Lower the learning rate or init_scale, "
        "or try leaky_relu."
    ),
    "weights_unchanged": (
        "The weights did not change: the learning rate is too small to move them, or the penalty "
        "overwhelms the data term. Raise the learning rate or lower L2/L1."
    ),
    "finish_run": "The run was stopped before the end: train it to the end before judging bias and variance.",
    # the basic recipe
    "fix_bias_first": "Fix the bias first; look at the variance again once the training error is low.",
    "bigger_network": "Train a bigger network (more hidden units or more layers).",
    "train_longer": "Train longer (more epochs).",
    "tune_optimizer": "Tune the optimizer: Adam, or a larger or smaller learning rate.",
    "weaker_regularization": "Weaken the regularization (smaller L2/L1, keep_prob closer to 1).",
    "more_data": "Get more training data.",
    "regularize": "Add regularization: L2 weight decay or dropout (keep_prob < 1).",
    "stronger_regularization": "Strengthen the regularization (larger L2/L1, smaller keep_prob).",
    "augment": "Add data augmentation (flips, shifts, noise) to the training images.",
    "early_stopping": "Use early stopping on the dev set.",
    "smaller_network": "Try a smaller network.",
    "check_test": (
        "Train and dev error are both close to the target: measure the test set once, or lower the "
        "human-level error if you believe the task can be done better."
    ),
}

VERDICTS = {
    "diverged": "training diverged",
    "not_learning": "the network did not learn",
    "unfinished": "unfinished run",
    "bias_and_variance": "high bias and high variance",
    "bias": "high bias",
    "variance": "high variance",
    "fine": "fine",
}

# run outcome codes (summary.json stop_reason and warning codes) that override the recipe
OUTCOME_VERDICT = {
    "diverged": "diverged",
    "stalled": "not_learning",
    "weights_unchanged": "not_learning",
    "zero_init": "not_learning",
    "cancelled": "unfinished",
}


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
    verdict_code: str
    explanation: str
    next_steps: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)  # codes of next_steps, same order
    notes: list[str] = field(default_factory=list)  # negative gaps and outcomes, in words

    def to_dict(self) -> dict:
        return asdict(self)


def _check(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise InputError(f"{name} must be a fraction in [0, 1], got {value!r}")
    return v


def _recipe(
    high_bias: bool, high_variance: bool, regularized: bool, image_data: bool, early_stopping: bool
) -> tuple[str, list[str]]:
    bias_steps = ["bigger_network", "train_longer", "tune_optimizer"]
    if regularized:
        bias_steps.append("weaker_regularization")
    variance_steps = ["more_data", "stronger_regularization" if regularized else "regularize"]
    if image_data:
        variance_steps.append("augment")
    if not early_stopping:
        variance_steps.append("early_stopping")
    variance_steps.append("smaller_network")
    if high_bias and high_variance:
        return "bias_and_variance", ["fix_bias_first", *bias_steps]
    if high_bias:
        return "bias", bias_steps
    if high_variance:
        return "variance", variance_steps
    return "fine", ["check_test"]


def _outcome_advice(code: str, outcomes: Collection[str]) -> list[str]:
    if code == "diverged":
        return ["lower_lr", "smaller_init", "normalize_inputs"]
    if code == "unfinished":
        return ["finish_run"]
    if "zero_init" in outcomes:
        return ["break_symmetry"]
    if "weights_unchanged" in outcomes:
        return ["weights_unchanged"]
    return ["revive_units", "smaller_init"]


def diagnose(
    train_error: float,
    dev_error: float,
    human_error: float = 0.0,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    outcomes: Collection[str] = (),
    regularized: bool = False,
    image_data: bool = False,
    early_stopping: bool = False,
    human_estimated: bool = False,
) -> Diagnosis:
    """Diagnose bias and variance; the errors are fractions in [0, 1].

    human_estimated: the human-level error is RegLab's estimate of the Bayes error, not a value
    the user entered (the notes say which).

    outcomes: codes describing how the run ended (``diverged``, ``cancelled``, ``stalled``,
    ``weights_unchanged``, ``zero_init``); regularized / image_data / early_stopping tailor the
    recipe (no "weaken the regularization" for an unregularized run, augmentation only for images).
    """
    train = _check("train_error", train_error)
    dev = _check("dev_error", dev_error)
    human = _check("human_error", human_error)
    tol = _check("tolerance", tolerance)
    bias = train - human
    variance = dev - train
    high_bias = bias > tol + _SLACK
    high_variance = variance > tol + _SLACK
    pct = lambda x: f"{100 * x:.1f} %"  # noqa: E731
    notes = []
    if bias < -(tol + _SLACK):
        what = (
            f"the estimated human-level error ({pct(human)}, the Bayes error estimated from the data)"
            if human_estimated
            else f"the human-level error you entered ({pct(human)})"
        )
        # which explanation fits depends on the variance: the note must agree with the verdict
        why = (
            "the network fits its training set better than it generalizes (see the variance)"
            if high_variance
            else "with dev error close to it, the human-level error is probably "
            + ("overestimated for this data" if human_estimated else "set too high")
        )
        notes.append(
            f"Train error ({pct(train)}) is below {what}: {why}. There is no avoidable bias to remove."
        )
    if variance < -(tol + _SLACK):
        notes.append(
            f"Dev error ({pct(dev)}) is below train error ({pct(train)}): the dev set may be small or "
            "easier than the training set, or the training set harder (noisier labels)."
        )
    code = next((OUTCOME_VERDICT[o] for o in ("diverged", "stalled", "weights_unchanged", "zero_init",
                                               "cancelled") if o in outcomes), None)  # fmt: skip
    if code is not None:
        steps = _outcome_advice(code, outcomes)
        if code == "not_learning":
            notes.append("The errors describe a network that is not learning, not what this network can do.")
    else:
        code, steps = _recipe(high_bias, high_variance, regularized, image_data, early_stopping)
    verdict = VERDICTS[code]
    facts = (
        f"avoidable bias {pct(bias)} (train {pct(train)} − human {pct(human)}), "
        f"variance {pct(variance)} (dev {pct(dev)} − train {pct(train)}); "
        f"a gap above {pct(tol)} counts as high."
    )
    explanation = f"{verdict.capitalize()}: {facts}" + "".join(" " + n for n in notes)
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
        verdict_code=code,
        explanation=explanation,
        next_steps=[ADVICE[s] for s in steps],
        advice=list(steps),
        notes=notes,
    )


def resolve_human_error(cfg, compute: bool = True) -> tuple[float, str]:
    """(human-level error, where it came from) for an ExperimentConfig.

    ``config``: the value the user set; otherwise :func:`estimate_human_error` of its data.
    """
    value = cfg.diagnosis.human_error
    if value is not None:
        return float(value), "config"
    return estimate_human_error(cfg.data, compute=compute)


def estimate_human_error(data, compute: bool = True) -> tuple[float, str]:
    """(error, source) when no human-level error is set, for a DataConfig.

    ``bayes_estimate``: the Bayes error of a generated 2-D set estimated from its generator
    (see :mod:`engine.bayes`); ``default``: 0 (no estimate for this data); ``pending``:
    compute=False and the estimate is not known yet (0 meanwhile).
    """
    source = data.source
    if source.startswith("builtin:") and data.dev_source is None:
        from engine.bayes import bayes_error

        name = source.split(":", 1)[1]
        est = bayes_error(name, data.noise, data.n_classes, compute=compute)
        if est is not None:
            return round(est, 4), "bayes_estimate"
        if not compute and bayes_error(name, 0.0) is not None:  # a set with an estimator
            return 0.0, "pending"
    return 0.0, "default"


def run_outcomes(cfg, stop_reason: str | None, warning_codes: Collection[str] = ()) -> list[str]:
    """Outcome codes for :func:`diagnose` from a run's stop reason, warnings and config."""
    out = [c for c in warning_codes if c in OUTCOME_VERDICT]
    if stop_reason in ("diverged", "cancelled"):
        out.append(stop_reason)
    if cfg.model.hidden and (cfg.model.init == "zeros" or cfg.model.init_scale == 0):
        out.append("zero_init")
    return out


def diagnose_run(cfg, metrics: dict | None, stop_reason: str | None, warning_codes: Collection[str] = (),
                 *, image_data: bool = False, human_error: float | None = None,
                 human_estimated: bool = False) -> Diagnosis | None:  # fmt: skip
    """Diagnosis of a run from its final metrics dict (train_acc, dev_acc), or None if unknown.

    human_error: the human-level error to use (default: :func:`resolve_human_error` of cfg);
    human_estimated: whether that value is an estimate (see :func:`diagnose`)."""
    if not metrics or metrics.get("train_acc") is None or metrics.get("dev_acc") is None:
        return None
    if human_error is None:
        human, source = resolve_human_error(cfg)
        human_estimated = source != "config"
    else:
        human = float(human_error)
    reg = cfg.regularization
    regularized = reg.l2 > 0 or reg.l1 > 0 or min(cfg.keep_probs() or [1.0]) < 1 or reg.input_keep_prob < 1
    return diagnose(
        1.0 - float(metrics["train_acc"]),
        1.0 - float(metrics["dev_acc"]),
        human,
        outcomes=run_outcomes(cfg, stop_reason, warning_codes),
        regularized=regularized,
        image_data=image_data,
        early_stopping=cfg.early_stopping.enabled,
        human_estimated=human_estimated,
    )
