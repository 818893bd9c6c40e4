"""One-line readings of per-layer numbers: vanishing, exploding, dead and saturated units in words.

The insight views show the numbers; these functions say what they mean, so a reader does not
have to compare ten log-axis points to notice that layer 1 learns 10⁻⁵ as fast as the output.

Gradient sizes are compared as the ratio of the first layer's to the last one's: for a
trained network's layers the std of dL/dZ over its values (a per-value size, so a 3-unit
output and a 64-unit hidden layer compare fairly), for the depth lab (equal widths) the
norms. With ``r`` that ratio:

- ``r ≤ VANISHING`` (10⁻³): vanishing; ``r ≥ EXPLODING`` (10³): exploding;
- ``r`` in [10⁻³, 10⁻¹) shrinking, in (10, 10³] growing; within a factor 10 level.

The hidden activations' std is compared the same way (the last hidden layer's to the first's)
and named when it vanishes or explodes. A layer with at least ``MANY`` (50 %) dead ReLUs (units inactive on every sample of the
batch) or saturated tanh/sigmoid values is named too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

VANISHING = 1e-3
EXPLODING = 1e3
LEVEL = 10.0  # within this factor either way: level
MANY = 0.5  # share of dead or saturated units worth a mention

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(x: float) -> str:
    """``x`` rounded to the nearest power of ten, written as ``10⁻⁵`` (``1`` for 10⁰).

    0 gives ``"0"``; NaN and infinities give ``"NaN"`` / ``"∞"``.
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == 0:
        return "0"
    n = round(math.log10(abs(x)))
    sign = "-" if x < 0 else ""
    if n == 0:
        return f"{sign}1"
    if n == 1:
        return f"{sign}10"
    return f"{sign}10{str(n).translate(_SUPERSCRIPT)}"


def format_ratio(x: float) -> str:
    """A ratio for a sentence: two digits in [0.01, 1000) (``0.52``, ``38``), else :func:`power_of_ten`."""
    if math.isfinite(x) and 1e-2 <= abs(x) < 1e3:
        return f"{x:.2g}"
    return power_of_ten(x)


def trend(ratio: float) -> str:
    """``vanishing``, ``shrinking``, ``level``, ``growing`` or ``exploding`` for a last/first ratio."""
    if not ratio > 0 or math.isnan(ratio):
        return "vanishing"
    if math.isinf(ratio):
        return "exploding"
    if ratio <= VANISHING:
        return "vanishing"
    if ratio >= EXPLODING:
        return "exploding"
    if ratio < 1 / LEVEL:
        return "shrinking"
    if ratio > LEVEL:
        return "growing"
    return "level"


def _get(s, name):
    return s[name] if isinstance(s, Mapping) else getattr(s, name)


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def layers_hint(stats: Sequence) -> str:
    """One line about per-layer statistics (``LayerStats`` or their ``to_dict()`` dicts, in layer
    order: hidden layers, then the output), e.g. ``layer 1 gradients are 10⁻⁵ of the output
    layer's: vanishing``."""
    if not stats:
        return "no layers"
    for s in stats:
        if not (_finite(_get(s, "act_std")) and _finite(_get(s, "grad_std"))):
            return (
                "non-finite activations or gradients (NaN or ∞): the network has diverged; "
                "lower the learning rate or the initial weights' scale"
            )
    if len(stats) == 1:
        return "no hidden layer: nothing can vanish or explode between layers"
    parts = []
    hidden = stats[:-1]
    a_first, a_last = _get(hidden[0], "act_std"), _get(hidden[-1], "act_std")
    if len(hidden) >= 2 and a_first > 0:
        ratio = a_last / a_first
        verdict = trend(ratio)
        if verdict in ("vanishing", "exploding"):
            n = _get(hidden[-1], "layer")
            parts.append(f"layer {n}'s activations are {format_ratio(ratio)} × layer 1's: {verdict}")
    first, last = _get(stats[0], "grad_std"), _get(stats[-1], "grad_std")
    if last == 0:
        parts.append(
            "the output layer's gradient is 0 on this batch (its predictions are saturated at 0 or 1): "
            "no layer can learn"
        )
    elif first == 0:
        parts.append("layer 1 receives no gradient at all: its weights cannot learn")
    else:
        ratio = first / last
        verdict = trend(ratio)
        if verdict in ("vanishing", "shrinking"):
            parts.append(f"layer 1 gradients are {format_ratio(ratio)} of the output layer's: {verdict}")
        elif verdict in ("exploding", "growing"):
            parts.append(f"layer 1 gradients are {format_ratio(ratio)} × the output layer's: {verdict}")
        else:
            parts.append(f"gradients stay within a factor {LEVEL:g} from the output back to layer 1")
    for s in stats[:-1]:
        dead, sat = _get(s, "dead_share"), _get(s, "saturated_share")
        layer = _get(s, "layer")
        if dead is not None and dead >= MANY:
            parts.append(f"layer {layer}: {100 * dead:.0f} % of the ReLUs are dead")
        if sat is not None and sat >= MANY:
            parts.append(f"layer {layer}: {100 * sat:.0f} % of the values are saturated")
    return "; ".join(parts)


def depth_hint(activation_std: Sequence[float], grad_norm: Sequence[float]) -> str:
    """One line about a depth-lab profile (lists of depth + 2: input, hidden layers, output).

    Compares the last hidden layer's activation std with the input's, and the gradient at the
    input with the one at the last hidden layer (the part the hidden layers multiply)."""
    depth = len(activation_std) - 2
    if depth < 1:
        return ""
    a0, a_last = activation_std[0], activation_std[-2]
    g_in, g_last = grad_norm[0], grad_norm[-2]
    values = (a0, a_last, g_in, g_last)
    if any(not math.isfinite(v) for v in values):
        return f"the numbers overflow (∞ or NaN) within {depth} layers: exploding"
    if a_last == 0 and g_in == 0:
        return "every activation and gradient is 0: zero weights pass nothing forward or back"
    act_ratio = a_last / a0 if a0 > 0 else math.inf
    grad_ratio = g_in / g_last if g_last > 0 else math.inf
    act_v, grad_v = trend(act_ratio), trend(grad_ratio)
    worst = next((v for v in ("vanishing", "exploding") if v in (act_v, grad_v)), None)
    text = (
        f"after {depth} layers the activations' std is {format_ratio(act_ratio)} × the input's "
        f"and the gradient at the input is {format_ratio(grad_ratio)} × the last layer's"
    )
    if worst is not None:
        return f"{text}: {worst}"
    if act_v == grad_v == "level":
        return f"{text}: level (within a factor {LEVEL:g})"
    return f"{text}: {act_v} forward, {grad_v} backward"
