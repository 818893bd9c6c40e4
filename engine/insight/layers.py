"""Inside the network: per-layer activation and gradient statistics on a fixed batch.

Meant to run once per epoch on the same ~256 samples (:func:`fixed_batch`), so the
curves show how each layer's distribution moves as the network trains. Everything is
computed by ``MLP.trace``: inference mode (dropout off), fresh arrays, no penalty, so the
training network's parameters, buffers and gradients are never touched.

Per layer (hidden layers, then the output layer):

- activations: A = f(Z) of a hidden layer, the logits Z of the output layer; mean,
  std and percentiles over all ``samples × units`` values;
- ``dead_share`` (ReLU and leaky ReLU): the share of the layer's units whose
  pre-activation is ≤ 0 for *every* sample of the batch (a dead ReLU passes no gradient);
  None for other activations and the output layer;
- ``saturated_share`` (tanh, sigmoid): the share of activations whose derivative is
  below 5 % of its maximum (|tanh| > 0.975; sigmoid outside about [0.013, 0.987]), where
  gradients vanish; None for other activations and the output layer;
- gradients of the mean loss on the batch: ``grad_norm`` = ‖dL/dZ‖_F and ``grad_std``
  = std of dL/dZ over its values, and ``weight_grad_norm`` = ‖dL/dW‖_F of the layer's
  weights (data loss only, no penalty).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from engine.batches import to_network_input
from engine.dataset import ArraySet
from engine.network import MLP

PERCENTILES: tuple[float, ...] = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)
SATURATION = 0.05  # a unit is saturated where f'(z) < SATURATION · max f'
_MAX_DERIVATIVE = {"tanh": 1.0, "sigmoid": 0.25}
_RELU_LIKE = ("relu", "leaky_relu")


@dataclass(frozen=True)
class LayerStats:
    """Statistics of one layer on the fixed batch (see the module docstring)."""

    layer: int  # 1 = first hidden layer, ..., n_layers = output layer
    name: str  # "hidden 1", ..., "output"
    width: int
    act_mean: float
    act_std: float
    act_percentiles: tuple[float, ...]  # at PERCENTILES
    dead_share: float | None
    saturated_share: float | None
    grad_norm: float
    grad_std: float
    weight_grad_norm: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["act_percentiles"] = dict(zip((f"p{p:g}" for p in PERCENTILES), self.act_percentiles))
        return d


def layer_statistics(
    net: MLP, X: np.ndarray, y: np.ndarray, percentiles: Sequence[float] = PERCENTILES
) -> list[LayerStats]:
    """One :class:`LayerStats` per layer (hidden layers, then the output) for X ``(n, n_in)``, y ``(n,)``.

    X is network input (normalized features, as :func:`fixed_batch` returns).
    """
    y = np.asarray(y)
    if len(y) != len(X) or len(y) == 0:
        raise ValueError(f"X and y need the same, non-zero number of rows, got {len(X)} and {len(y)}")
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged net: report NaN, no warnings
        trace = net.trace(X, y)
        out = []
        L = net.n_layers
        for i in range(L):
            hidden = i < L - 1
            values = trace.post[i] if hidden else trace.pre[i]
            z = trace.pre[i]
            dead = saturated = None
            if hidden and net.activation in _RELU_LIKE:
                dead = float(np.count_nonzero((z <= 0).all(axis=0))) / z.shape[1]
            if hidden and net.activation in _MAX_DERIVATIVE:
                deriv = net.activation_fn.grad(z, values, np.empty_like(z))
                limit = SATURATION * _MAX_DERIVATIVE[net.activation]
                saturated = float(np.count_nonzero(deriv < limit)) / deriv.size
            dz = trace.d_pre[i]
            v64 = values.astype(np.float64, copy=False)
            out.append(
                LayerStats(
                    layer=i + 1,
                    name=f"hidden {i + 1}" if hidden else "output",
                    width=int(values.shape[1]),
                    act_mean=float(v64.mean()),
                    act_std=float(v64.std()),
                    act_percentiles=tuple(float(p) for p in np.percentile(v64, percentiles)),
                    dead_share=dead,
                    saturated_share=saturated,
                    grad_norm=_norm(dz),
                    grad_std=float(dz.astype(np.float64, copy=False).std()),
                    weight_grad_norm=_norm(trace.dW[i]),
                )
            )
    return out


def _norm(a: np.ndarray) -> float:
    flat = a.astype(np.float64, copy=False).ravel()
    return float(np.sqrt(np.dot(flat, flat)))


def fixed_batch(
    X_raw: np.ndarray,
    y: np.ndarray,
    norm_mean: np.ndarray,
    norm_std: np.ndarray,
    n: int = 256,
    seed: int = 0,
    dtype: str | np.dtype = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """The same ``n`` samples every epoch: ``(X (n, n_features) network input, y (n,))``.

    X_raw ``(N, ...)``: raw samples (uint8 images or float vectors) of one set, usually the
    training set, as an array or an :class:`engine.dataset.ArraySet` (only the chosen rows are
    read); the rows are a seeded sample without replacement (all of them when N ≤ n), in their
    original order, normalized as training normalizes them.
    """
    N = len(y)
    if N == 0:
        raise ValueError("the set is empty")
    idx = np.arange(N) if N <= n else np.sort(np.random.default_rng(seed).choice(N, size=n, replace=False))
    rows = X_raw[idx] if isinstance(X_raw, ArraySet) else np.asarray(X_raw)[idx]
    X = to_network_input(rows, norm_mean, norm_std, dtype)
    return X, np.asarray(y)[idx].astype(np.int64)
