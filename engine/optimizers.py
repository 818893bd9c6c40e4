"""Optimizers that update one flat parameter buffer in place.

``step(params, grads)`` takes the network's flat ``params`` and ``grads`` buffers (same
shape and dtype) and updates ``params`` with a handful of whole-buffer ufunc calls; it
never changes ``grads`` and never allocates. Constant factors are folded so each step
does as few passes over memory as possible:

- sgd:      W -= lr · g
- momentum: v = β v + (1 − β) g;  W -= lr · v        (the course's convention)
            stored as v' = β v' + g = v / (1 − β), so the update is W -= lr (1 − β) v'.
- adam:     m = β₁ m + (1 − β₁) g;  v = β₂ v + (1 − β₂) g²;
            m̂ = m / (1 − β₁ᵗ);  v̂ = v / (1 − β₂ᵗ);  W -= lr · m̂ / (√v̂ + ε)
            stored as m' = m / (1 − β₁), v' = v / (1 − β₂); the bias corrections and the
            (1 − β) factors then fold into two scalars per step:
            W -= α · m' / (√v' + ε'),  s = √((1 − β₂) / (1 − β₂ᵗ)),
            α = lr (1 − β₁) / ((1 − β₁ᵗ) s),  ε' = ε / s.
"""

from __future__ import annotations

import math

import numpy as np

from engine.config import OptimizerConfig


class Optimizer:
    """Base class: ``lr`` is public (a schedule may change it between steps)."""

    name = "base"

    def __init__(self, lr: float, n_params: int, dtype) -> None:
        self.lr = float(lr)
        self.dtype = np.dtype(dtype)
        self.n_params = int(n_params)
        self.t = 0  # steps taken
        self._tmp = np.zeros(self.n_params, dtype=self.dtype)

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the state (velocities, moments, step count)."""
        self.t = 0


class SGD(Optimizer):
    """Plain (mini-batch) gradient descent."""

    name = "sgd"

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        self.t += 1
        tmp = self._tmp
        np.multiply(grads, self.dtype.type(self.lr), out=tmp)
        np.subtract(params, tmp, out=params)


class Momentum(Optimizer):
    """Gradient descent with momentum, ``v = β v + (1 − β) g``, ``W -= lr v``."""

    name = "momentum"

    def __init__(self, lr: float, n_params: int, dtype, beta: float = 0.9) -> None:
        super().__init__(lr, n_params, dtype)
        self.beta = float(beta)
        self._v = np.zeros(self.n_params, dtype=self.dtype)  # v / (1 − β)

    @property
    def velocity(self) -> np.ndarray:
        """The velocity v of the course formula (a copy)."""
        return self._v * self.dtype.type(1.0 - self.beta)

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        self.t += 1
        v, tmp, t = self._v, self._tmp, self.dtype.type
        np.multiply(v, t(self.beta), out=v)
        np.add(v, grads, out=v)
        np.multiply(v, t(self.lr * (1.0 - self.beta)), out=tmp)
        np.subtract(params, tmp, out=params)

    def reset(self) -> None:
        super().reset()
        self._v.fill(0)


class Adam(Optimizer):
    """Adam with bias correction."""

    name = "adam"

    def __init__(
        self, lr: float, n_params: int, dtype, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8
    ) -> None:
        super().__init__(lr, n_params, dtype)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)
        self._m = np.zeros(self.n_params, dtype=self.dtype)  # m / (1 − β₁)
        self._v = np.zeros(self.n_params, dtype=self.dtype)  # v / (1 − β₂)

    @property
    def first_moment(self) -> np.ndarray:
        """m of the textbook formula (a copy)."""
        return self._m * self.dtype.type(1.0 - self.beta1)

    @property
    def second_moment(self) -> np.ndarray:
        """v of the textbook formula (a copy)."""
        return self._v * self.dtype.type(1.0 - self.beta2)

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        self.t += 1
        b1, b2, t = self.beta1, self.beta2, self.dtype.type
        s = math.sqrt((1.0 - b2) / (1.0 - b2**self.t))
        alpha = self.lr * (1.0 - b1) / ((1.0 - b1**self.t) * s)
        eps = self.epsilon / s
        m, v, tmp = self._m, self._v, self._tmp
        np.multiply(m, t(b1), out=m)
        np.add(m, grads, out=m)
        np.multiply(v, t(b2), out=v)
        np.multiply(grads, grads, out=tmp)
        np.add(v, tmp, out=v)
        np.sqrt(v, out=tmp)
        np.add(tmp, t(eps), out=tmp)
        np.divide(m, tmp, out=tmp)
        np.multiply(tmp, t(alpha), out=tmp)
        np.subtract(params, tmp, out=params)

    def reset(self) -> None:
        super().reset()
        self._m.fill(0)
        self._v.fill(0)


def make_optimizer(cfg: OptimizerConfig, n_params: int, dtype=np.float32) -> Optimizer:
    """The optimizer named by ``cfg.name`` with its hyper-parameters, for ``n_params`` parameters."""
    if cfg.name == "sgd":
        return SGD(cfg.lr, n_params, dtype)
    if cfg.name == "momentum":
        return Momentum(cfg.lr, n_params, dtype, beta=cfg.momentum)
    if cfg.name == "adam":
        return Adam(cfg.lr, n_params, dtype, beta1=cfg.beta1, beta2=cfg.beta2, epsilon=cfg.epsilon)
    raise ValueError(f"unknown optimizer {cfg.name!r} (known: sgd, momentum, adam)")
