"""Depth lab: how activations and gradients grow or shrink through a deep, untrained network.

A network of ``depth`` hidden layers, each ``width`` units wide, takes ``samples`` inputs
drawn from N(0, 1) (``width`` features each) with random labels over ``n_classes``
classes, and runs one forward and backward pass (mean cross-entropy, the loss training
uses) with freshly initialized weights. Weights come from
:func:`engine.initializers.init_weights` through ``MLP.initialize`` (the training init),
with ``init_scale`` multiplying the standard deviation as in training; biases are zero.

Both lists have ``depth + 2`` entries, one per layer: the input, each hidden layer, then
the output layer's pre-activation (logits):

- ``activation_std``: std over all values of X, of each hidden layer's activation
  A = f(Z), and of the logits;
- ``grad_norm``: Frobenius norm over the batch of the gradient of the mean loss with
  respect to that same quantity (dL/dX, dL/dA of each hidden layer, dL/dZ of the output).

With a linear activation, layer l's activation std is the previous one's times
``scale · sqrt(width · var)`` (var: the initializer's variance before scaling), so 1.5^L
explodes, 0.5^L vanishes, and Xavier/LeCun (var = 1/width) at scale 1 stays level; He
(var = 2/width) keeps ReLU layers level. Gradients flowing back through the hidden
layers scale by the same factor per layer.

Speed: :class:`DepthLab` draws the data and the unit-scale weights once; moving the
scale slider only rescales them (the init is linear in the scale) and reruns the pass,
through buffers allocated once. depth · width · samples is capped at :data:`MAX_VALUES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.activations import ACTIVATIONS
from engine.errors import InputError
from engine.initializers import INIT_FORMULAS, init_variance
from engine.network import MLP

DEPTH_RANGE = (2, 100)
WIDTH_RANGE = (1, 1024)
SAMPLES_RANGE = (1, 10000)
MAX_VALUES = 1 << 25  # depth · samples · width: the f'(Z) buffers stay ≤ 256 MB of float64
N_CLASSES = 10
DTYPE = "float64"  # float64 so an explosion shows as large numbers instead of float32 overflow


@dataclass(frozen=True)
class DepthProfile:
    """One pass of the depth lab: per layer (input, hidden 1..depth, output logits)."""

    layers: tuple[str, ...]
    activation_std: tuple[float, ...]
    grad_norm: tuple[float, ...]
    factor: float  # scale · sqrt(width · var): the per-layer std factor of a linear network

    def to_dict(self) -> dict:
        return {
            "layers": list(self.layers),
            "activation_std": list(self.activation_std),
            "grad_norm": list(self.grad_norm),
            "linear_factor": self.factor,
        }


def check_settings(
    depth: int, width: int, activation: str, init: str, samples: int, scale: float = 1.0, prefix: str = ""
) -> None:
    """Raise InputError (one line naming the field, as ``prefix + name``) for settings the lab refuses."""
    for name, value, (lo, hi) in (
        ("depth", depth, DEPTH_RANGE),
        ("width", width, WIDTH_RANGE),
        ("samples", samples, SAMPLES_RANGE),
    ):
        if isinstance(value, bool) or int(value) != value or not lo <= value <= hi:
            raise InputError(f"{prefix}{name} must be a whole number in [{lo}, {hi}], got {value}")
    if depth * width * samples > MAX_VALUES:
        raise InputError(
            f"{prefix}depth × {prefix}width × {prefix}samples must be at most {MAX_VALUES:,}, "
            f"got {depth} × {width} × {samples} = {depth * width * samples:,}"
        )
    if activation not in ACTIVATIONS:
        raise InputError(f"{prefix}activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if init not in INIT_FORMULAS:
        raise InputError(f"{prefix}init must be one of {', '.join(INIT_FORMULAS)}, got {init!r}")
    check_scale(scale, prefix)


def check_scale(scale: float, prefix: str = "") -> None:
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0):
        raise InputError(f"{prefix}scale must be a finite number ≥ 0, got {scale}")


class DepthLab:
    """A deep untrained network whose weight scale can be changed cheaply (a slider)."""

    def __init__(
        self,
        depth: int,
        width: int,
        activation: str = "relu",
        init: str = "he",
        samples: int = 256,
        seed: int = 0,
        n_classes: int = N_CLASSES,
    ) -> None:
        check_settings(depth, width, activation, init, samples)
        self.depth, self.width, self.activation, self.init = int(depth), int(width), activation, init
        self.samples, self.seed = int(samples), int(seed)
        rng = np.random.default_rng(seed)
        self.X = rng.standard_normal((self.samples, self.width))
        self.y = rng.integers(0, n_classes, self.samples)
        self.net = MLP([self.width] * (self.depth + 1) + [n_classes], activation, dtype=DTYPE, max_batch=1)
        self.net.initialize(init, 1.0, rng)  # scale 1; profile() rescales: init_weights is linear in scale
        self._unit = self.net.get_params()
        self._ping = [np.empty((self.samples, self.width)) for _ in range(2)]  # activations, then dL/dA
        self._deriv = np.empty((self.depth, self.samples, self.width))  # f'(Z) per hidden layer
        self._logits = np.empty((self.samples, n_classes))
        self._d_input = np.empty((self.samples, self.width))
        self.layers = ("input", *(f"hidden {i}" for i in range(1, self.depth + 1)), "output")
        self._var = init_variance(init, self.width, self.width)

    def profile(self, scale: float) -> DepthProfile:
        """Activation std and gradient norm per layer with the weights drawn at ``init_scale = scale``.

        One forward and one backward pass through preallocated buffers: two ping-pong
        activation buffers and one ``f'(Z)`` array per hidden layer, so the memory touched
        stays small and the time stays close to that of the matrix products themselves.
        Biases are zero (as initialized), so Z = A @ W. The output layer's loss and
        dL/dlogits come from ``MLP.output_loss_and_delta``, the loss training uses.
        """
        check_scale(scale)
        net, act = self.net, self.net.activation_fn
        np.multiply(self._unit, scale, out=net.params)
        stds = [_std(self.X)]
        grads: list[float] = []
        with np.errstate(all="ignore"):  # huge scales overflow to inf/NaN: reported, not warned about
            a = self.X
            for i in range(self.depth):
                z, d = self._ping[i % 2], self._deriv[i]
                np.matmul(a, net.W[i], out=z)
                if act.piecewise_linear:  # f(z) = z · f'(z), with f' read from z
                    act.grad(z, z, d)
                    np.multiply(z, d, out=z)
                else:  # tanh, sigmoid: f' is read from a = f(z)
                    act.forward(z, out=z)
                    act.grad(z, z, d)
                stds.append(_std(z))
                a = z
            np.matmul(a, net.W[self.depth], out=self._logits)
            stds.append(_std(self._logits))
            _, dz = net.output_loss_and_delta(self._logits, self.y)
            grads.append(_norm(dz))
            for i in range(self.depth, -1, -1):
                da = self._ping[i % 2] if i > 0 else self._d_input
                np.matmul(dz, net.W[i].T, out=da)  # dL/dA of layer i-1 (dL/dX for i = 0)
                grads.append(_norm(da))
                if i > 0:
                    dz = np.multiply(da, self._deriv[i - 1], out=da)
        factor = float(scale) * math.sqrt(self.width * self._var)
        return DepthProfile(self.layers, tuple(stds), tuple(grads[::-1]), factor)


def _std(a: np.ndarray) -> float:
    """Population std over all values; two dot products instead of np.std's passes (float64 data)."""
    flat = a.ravel()
    mean = flat.sum() / flat.size
    return float(np.sqrt(max(np.dot(flat, flat) / flat.size - mean * mean, 0.0)))


def _norm(a: np.ndarray) -> float:
    flat = a.ravel()
    return float(np.sqrt(np.dot(flat, flat)))


def depth_profile(
    depth: int,
    width: int,
    activation: str,
    init: str,
    scale: float,
    samples: int = 256,
    seed: int = 0,
) -> dict:
    """The ``depth-lab`` command's JSON object: settings plus ``layers``, ``activation_std``, ``grad_norm``."""
    check_scale(scale)
    lab = DepthLab(depth, width, activation, init, samples, seed)
    result = {
        "depth": lab.depth,
        "width": lab.width,
        "activation": activation,
        "init": init,
        "scale": float(scale),
        "samples": lab.samples,
        "seed": lab.seed,
        "init_formula": INIT_FORMULAS[init],
    }
    result.update(lab.profile(scale).to_dict())
    return result
