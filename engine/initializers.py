"""Weight initializers. Weights have shape ``(n_in, n_out)``; biases always start at zero.

Every random initializer draws ``N(0, variance)`` from the given ``numpy.random.Generator``
and then multiplies by ``scale`` (the config's ``model.init_scale``), so a scale slider can
make activations vanish (< 1) or explode (> 1).
"""

from __future__ import annotations

import numpy as np

INIT_FORMULAS: dict[str, str] = {
    "zeros": "Zeros: W = 0 (every hidden unit stays identical: symmetry is never broken)",
    "random": "Random: W ~ N(0, 1) × init_scale",
    "xavier": (
        "Xavier: W ~ N(0, 1/n_in) × init_scale (the course's Xavier; what Keras and PyTorch "
        "call Xavier/Glorot is glorot here)"
    ),
    "glorot": ("Glorot: W ~ N(0, 2/(n_in + n_out)) × init_scale (Keras/PyTorch's Xavier/Glorot normal)"),
    "he": "He: W ~ N(0, 2/n_in) × init_scale",
    "lecun": "LeCun: W ~ N(0, 1/n_in) × init_scale",
}


def init_variance(name: str, n_in: int, n_out: int) -> float:
    """Variance of the initial weights before ``scale`` (0 for zeros)."""
    if name == "zeros":
        return 0.0
    if name == "random":
        return 1.0
    if name in ("xavier", "lecun"):
        return 1.0 / n_in
    if name == "glorot":
        return 2.0 / (n_in + n_out)
    if name == "he":
        return 2.0 / n_in
    raise ValueError(f"unknown initializer {name!r} (known: {', '.join(INIT_FORMULAS)})")


def init_weights(
    name: str, n_in: int, n_out: int, scale: float, rng: np.random.Generator, dtype=np.float32
) -> np.ndarray:
    """Initial weight matrix ``(n_in, n_out)`` of ``dtype`` drawn with initializer ``name``."""
    var = init_variance(name, n_in, n_out)
    if var == 0.0:
        return np.zeros((n_in, n_out), dtype=dtype)
    std = float(np.sqrt(var)) * float(scale)
    # draw in float64 so the same seed gives the same weights in float32 and float64 nets
    return (rng.standard_normal((n_in, n_out)) * std).astype(dtype, copy=False)
