"""A fully connected network (MLP) with a softmax or sigmoid output, trained on batch-first arrays.

Shapes: inputs ``X`` are ``(n_samples, n_features)``, labels ``y`` are ints
``(n_samples,)``, probabilities ``(n_samples, n_classes)``. ``W[i]`` is
``(n_in, n_out)`` and ``b[i]`` is ``(n_out,)``; layer i computes ``a @ W[i] + b[i]``.

Output layer (``output``):

- ``softmax``: ``n_classes`` units, mean cross-entropy (two classes: a two-class softmax).
- ``sigmoid``: two classes only, ONE unit: ``p = σ(z)`` is the probability of class 1 and
  the loss is the mean binary cross-entropy, computed from the logit (engine.losses).
  ``layer_sizes[-1]`` is 1, but :meth:`MLP.predict_proba` still returns ``(n, 2)`` =
  ``[1 − p, p]``, so every caller treats both kinds alike. The same L2/L1/dropout
  conventions apply (dropout on hidden layers and inputs, penalty over every W).

Speed notes (the hot path is ``train_step``, called once per mini-batch):

- All weights, then all biases, live in one flat ``params`` buffer (and the gradients in
  an identically laid out ``grads``), so optimizers and penalties are whole-buffer ufuncs.
- Activations, multipliers and the input-dropout buffer are preallocated for
  ``max_batch`` rows and used through ``[:n]`` views; they grow if a bigger batch comes.
- Each hidden layer keeps one multiplier ``M = f'(z) · mask / keep_prob``; the backward
  pass through activation and dropout is then a single multiply. For relu-like
  activations ``f(z) = z · f'(z)``, so the same multiplier also gives the forward value.
- The backward pass writes ``dA`` into the activation buffer it no longer needs, and
  skips ``dX`` of the input layer. Bias gradients and softmax row sums are
  matrix-vector products with a ones vector (faster than narrow axis reductions).
- The output gradient ``(softmax − onehot) / n`` is scaled once, in the softmax pass.
- Scalars are cast to the network dtype so float32 never silently becomes float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine import activations as _activations
from engine.config import OUTPUTS, ConfigError
from engine.initializers import init_weights
from engine.losses import (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_terms,
    cross_entropy,
    cross_entropy_grad,
    log_softmax,
    sigmoid,
    softmax_into,
)
from engine.regularization import keep_threshold, uses_dropout

_PREDICT_CHUNK = 4096  # rows per inference chunk: bounds memory for large sets
_MIN_ROW_SUM = 1e-30  # softmax row sums below this fall back to per-row shifts


@dataclass(frozen=True)
class _Drop:
    threshold: np.uint16  # keep a unit when its raw uint16 draw is below this
    scale: np.generic  # 1 / keep_prob in the network dtype


@dataclass(frozen=True)
class _Views:
    """The per-batch buffers cut to n rows, cached per batch size (slicing costs per step add up)."""

    a: list[np.ndarray]  # (n, width) per layer: pre-activation -> activation -> dA
    mult: list[np.ndarray]  # (n, width) per hidden layer: backward multiplier
    keep: list[np.ndarray]  # (n, width) bool per hidden layer: dropout keep mask
    live: list[np.ndarray]  # (n, width) bool per hidden layer: scratch for relu ∧ keep
    ones: np.ndarray  # (n,)
    row_sums: np.ndarray  # (n,)
    log_sums: np.ndarray  # (n,)
    row_offsets: np.ndarray  # (n,) start of each row in the flattened logits
    sign: np.ndarray  # (n,) sigmoid output: 1 − 2y per row


class InferenceWorkspace:
    """Preallocated buffers for inference on chunks of up to ``rows`` rows (see ``MLP.predict_proba``).

    One workspace belongs to one caller at a time (it is not shared inside the network), so
    inference stays safe from any thread. Make it with :meth:`MLP.inference_workspace`.
    """

    def __init__(self, layer_sizes: Sequence[int], dtype, rows: int) -> None:
        self.layer_sizes = tuple(int(s) for s in layer_sizes)
        self.dtype = np.dtype(dtype)
        self.rows = max(1, int(rows))
        self.z = [np.empty((self.rows, s), dtype=self.dtype) for s in self.layer_sizes[1:]]  # per layer
        self.x = np.empty((self.rows, self.layer_sizes[0]), dtype=self.dtype)  # cast inputs
        self.row_buf = np.empty(self.rows, dtype=self.dtype)
        # ReLU clips at 0: NumPy clips float32 faster against a row of zeros, float64 against the scalar
        self.relu_floor: list = [
            np.zeros(s, dtype=self.dtype) if self.dtype == np.float32 else self.dtype.type(0)
            for s in self.layer_sizes[1:]
        ]


@dataclass(frozen=True)
class Trace:
    """One batch through the network in inference mode (no dropout, no penalty), as fresh arrays.

    inputs ``(n, n_in)``; pre: Z per layer ``(n, n_out)`` (``pre[-1]`` are the output logits);
    post: A = f(Z) per hidden layer. With labels also: loss (the mean loss ``evaluate``
    reports), d_pre ``dL/dZ`` per layer, d_post ``dL/dA`` per hidden layer, d_input
    ``dL/dX`` ``(n, n_in)``, and (when asked for) dW ``(n_in, n_out)`` / db ``(n_out,)`` per layer.
    """

    inputs: np.ndarray
    pre: list[np.ndarray]
    post: list[np.ndarray]
    loss: float | None = None
    d_pre: list[np.ndarray] | None = None
    d_post: list[np.ndarray] | None = None
    d_input: np.ndarray | None = None
    dW: list[np.ndarray] | None = None
    db: list[np.ndarray] | None = None


def output_units(output: str, n_classes: int) -> int:
    """Width of the output layer: n_classes for softmax, 1 for sigmoid (which needs two classes).

    Raises ConfigError naming ``model.output`` when a sigmoid output meets ≠ 2 classes.
    """
    if output not in OUTPUTS:
        raise ConfigError(f"model.output must be one of {', '.join(OUTPUTS)}; got {output!r}")
    if output == "sigmoid":
        if n_classes != 2:
            raise ConfigError(
                f"model.output sigmoid needs exactly two classes, but the data has {n_classes}; "
                "use softmax for more classes"
            )
        return 1
    return int(n_classes)


def network_sizes(
    n_features: int, hidden: Sequence[int], n_classes: int, output: str = "softmax"
) -> list[int]:
    """``[n_features, *hidden, output units]`` of the network a config describes (see :func:`output_units`)."""
    return [int(n_features), *(int(h) for h in hidden), output_units(output, n_classes)]


@dataclass(frozen=True)
class _DropoutPlan:
    layers: tuple[_Drop | None, ...]  # input layer, then each hidden layer
    units_per_row: int  # uint16 draws per sample per step


class MLP:
    """Multi-layer perceptron: hidden layers with one activation, a softmax or sigmoid output."""

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str = "relu",
        dtype="float32",
        max_batch: int = 256,
        output: str = "softmax",
    ) -> None:
        sizes = [int(s) for s in layer_sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"layer_sizes needs ≥ 2 positive sizes, got {list(layer_sizes)}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        if output == "softmax" and sizes[-1] < 2:
            raise ValueError(f"a softmax output layer needs ≥ 2 classes, got {sizes[-1]}")
        if output == "sigmoid" and sizes[-1] != 1:
            raise ValueError(f"a sigmoid output layer has exactly 1 unit, got {sizes[-1]}")
        self.layer_sizes: list[int] = sizes
        self.output: str = output
        self._sigmoid = output == "sigmoid"
        self.n_classes: int = 2 if self._sigmoid else sizes[-1]
        self.activation: str = activation
        self._act = _activations.get_activation(activation)
        self.activation_fn: _activations.Activation = self._act  # forward(z, out) and grad(z, a, out)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        self.n_layers = len(sizes) - 1

        shapes = list(zip(sizes[:-1], sizes[1:]))
        self.n_weights = sum(i * o for i, o in shapes)
        self.n_params = self.n_weights + sum(sizes[1:])
        self.params = np.zeros(self.n_params, dtype=self.dtype)
        self.grads = np.zeros(self.n_params, dtype=self.dtype)
        self.W: list[np.ndarray] = []
        self.b: list[np.ndarray] = []
        self.dW: list[np.ndarray] = []
        self.db: list[np.ndarray] = []
        w_at, b_at = 0, self.n_weights
        for n_in, n_out in shapes:
            self.W.append(self.params[w_at : w_at + n_in * n_out].reshape(n_in, n_out))
            self.dW.append(self.grads[w_at : w_at + n_in * n_out].reshape(n_in, n_out))
            self.b.append(self.params[b_at : b_at + n_out])
            self.db.append(self.grads[b_at : b_at + n_out])
            w_at += n_in * n_out
            b_at += n_out
        self._pw = self.params[: self.n_weights]  # all weights, for penalties and norms
        self._gw = self.grads[: self.n_weights]
        self._wtmp: np.ndarray | None = None  # scratch for penalty gradients, made on first use
        self._layer_mult: list[np.ndarray | None] = [None] * (self.n_layers - 1)
        self._keep_float: dict[int, np.ndarray] = {}
        self._plan_key: tuple | None = None
        self._plan: _DropoutPlan | None = None
        self._cap = 0
        self._ensure_capacity(max(1, int(max_batch)))

    # ------------------------------------------------------------ set-up

    def _ensure_capacity(self, n: int) -> None:
        """(Re)allocate the per-batch buffers for at least ``n`` rows."""
        if n <= self._cap:
            return
        dt, sizes = self.dtype, self.layer_sizes
        self._cap = n
        # _a[i]: pre-activation, then activation, then dA of layer i+1 (hidden and output)
        self._a = [np.empty((n, s), dtype=dt) for s in sizes[1:]]
        self._mult = [np.empty((n, s), dtype=dt) for s in sizes[1:-1]]
        self._keep = [np.empty((n, s), dtype=bool) for s in sizes[1:-1]]
        self._live = [np.empty((n, s), dtype=bool) for s in sizes[1:-1]]
        self._x_drop: np.ndarray | None = None
        self._ones = np.ones(n, dtype=dt)
        self._ones_c = np.ones(sizes[-1], dtype=dt)
        self._row_sums = np.empty(n, dtype=dt)
        self._log_sums = np.empty(n, dtype=dt)
        self._row_offsets = np.arange(n, dtype=np.intp) * sizes[-1]
        self._sign = np.empty(n, dtype=dt)
        self._view_cache: dict[int, _Views] = {}

    def _views(self, n: int) -> _Views:
        v = self._view_cache.get(n)
        if v is None:
            if len(self._view_cache) > 8:  # odd batch sizes: keep the cache small
                self._view_cache.clear()
            v = self._view_cache[n] = _Views(
                [a[:n] for a in self._a],
                [m[:n] for m in self._mult],
                [k[:n] for k in self._keep],
                [k[:n] for k in self._live],
                self._ones[:n],
                self._row_sums[:n],
                self._log_sums[:n],
                self._row_offsets[:n],
                self._sign[:n],
            )
        return v

    def initialize(self, init: str, scale: float, rng: np.random.Generator) -> None:
        """Draw every weight with initializer ``init`` times ``scale``; biases start at zero."""
        for w in self.W:
            w[...] = init_weights(init, w.shape[0], w.shape[1], scale, rng, self.dtype)
        for b in self.b:
            b.fill(0)

    # ------------------------------------------------------------ inference

    def _logits(self, X: np.ndarray, keep_hidden: list | None = None) -> np.ndarray:
        """Inference-mode logits ``(n, C)`` (no dropout); fresh arrays, safe from any thread."""
        a = np.asarray(X, dtype=self.dtype)
        for i in range(self.n_layers):
            z = a @ self.W[i]
            z += self.b[i]
            if i < self.n_layers - 1:
                z = self._act.forward(z, out=z)
                if keep_hidden is not None:
                    keep_hidden.append(z)
            a = z
        return a

    def inference_workspace(self, rows: int = _PREDICT_CHUNK) -> InferenceWorkspace:
        """Buffers for :meth:`predict_proba` on chunks of ``rows`` rows, reusable across calls.

        ``predict_proba`` works through its input in chunks of ``rows`` rows; larger chunks
        mean fewer NumPy calls (which matters when another Python thread trains meanwhile)
        at the cost of ``rows × Σ widths`` values of memory.
        """
        return InferenceWorkspace(self.layer_sizes, self.dtype, int(rows))

    def _inference_logits(self, X: np.ndarray, ws: InferenceWorkspace) -> np.ndarray:
        """Logits ``(n, C)`` of a chunk X ``(n ≤ ws.rows, n_in)`` into ``ws`` (no dropout).

        The same arithmetic as :meth:`_logits` (``a @ W + b``, then the activation), so the
        probabilities agree with ``evaluate`` to the last bit, ties included; only the
        buffers are reused. In float32, ReLU clips against a row of zeros, which NumPy does
        about twice as fast as against the scalar 0.
        """
        n = X.shape[0]
        if X.dtype != self.dtype:
            np.copyto(ws.x[:n], X, casting="unsafe")
            X = ws.x[:n]
        relu = self._act.name == "relu"
        a = X
        for i in range(self.n_layers):
            z = ws.z[i][:n]
            np.matmul(a, self.W[i], out=z)
            np.add(z, self.b[i], out=z)
            if i < self.n_layers - 1:
                if relu:
                    np.maximum(z, ws.relu_floor[i], out=z)
                else:
                    self._act.forward(z, out=z)
            a = z
        return a

    def predict_proba(
        self, X: np.ndarray, out: np.ndarray | None = None, workspace: InferenceWorkspace | None = None
    ) -> np.ndarray:
        """Class probabilities ``(n, C)`` in inference mode, computed in chunks.

        A sigmoid output gives ``(n, 2)`` = ``[1 − p, p]``. out: optional ``(n, C)`` array of the network dtype to write into. workspace: buffers
        from :meth:`inference_workspace`, reused across calls by a caller that repeats this
        often (a live view); without it a temporary one is made.
        """
        X = self._as_features(X)
        n = X.shape[0]
        if out is None:
            out = np.empty((n, self.n_classes), dtype=self.dtype)
        elif out.shape != (n, self.n_classes) or out.dtype != self.dtype:
            raise ValueError(f"out must be {self.dtype} of shape {(n, self.n_classes)}, got {out.shape}")
        ws = self._workspace_for(n, workspace)
        for start in range(0, n, ws.rows):
            stop = min(start + ws.rows, n)
            z = self._inference_logits(X[start:stop], ws)
            if self._sigmoid:  # [1 − p, p], both columns computed stably
                out[start:stop, 1] = sigmoid(z[:, 0])
                out[start:stop, 0] = sigmoid(-z[:, 0])
            else:
                softmax_into(z, out[start:stop], ws.row_buf)
        return out

    def _workspace_for(self, n: int, workspace: InferenceWorkspace | None) -> InferenceWorkspace:
        if workspace is None:
            return self.inference_workspace(min(max(1, n), _PREDICT_CHUNK))
        if workspace.layer_sizes != tuple(self.layer_sizes) or workspace.dtype != self.dtype:
            raise ValueError("the workspace was made for a different network")
        return workspace

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class indices ``(n,)``."""
        return np.argmax(self.predict_proba(X), axis=1)

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) in inference mode, without any penalty.

        Sigmoid output: mean binary cross-entropy; class 1 is predicted where p > 0.5 (z > 0).
        """
        X = self._as_features(X)
        y = np.asarray(y)
        n = X.shape[0]
        if n == 0:
            return float("nan"), float("nan")
        total_loss, correct = 0.0, 0
        for start in range(0, n, _PREDICT_CHUNK):
            z = self._logits(X[start : start + _PREDICT_CHUNK])
            yc = y[start : start + _PREDICT_CHUNK]
            if self._sigmoid:
                total_loss += float(binary_cross_entropy_terms(z, yc).sum())
                correct += int(np.count_nonzero((z[:, 0] > 0) == (yc == 1)))
                continue
            logp = log_softmax(z)
            total_loss -= float(logp[np.arange(len(yc)), yc].sum(dtype=np.float64))
            correct += int(np.count_nonzero(np.argmax(z, axis=1) == yc))
        return total_loss / n, correct / n

    def cost(
        self, X: np.ndarray, y: np.ndarray, *, l2: float = 0.0, l1: float = 0.0, m: int | None = None
    ) -> float:
        """Inference-mode cost: mean cross-entropy + penalty (used by gradient checking)."""
        loss, _ = self.evaluate(X, y)
        return loss + self.penalty(l2, l1, len(y) if m is None else m)

    def _as_features(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"X must have shape (n, {self.layer_sizes[0]}), got {X.shape}")
        return X

    # ------------------------------------------------------------ penalties and norms

    def penalty(self, l2: float, l1: float, m: int) -> float:
        """``(l2/2m)·Σ‖W‖²_F + (l1/m)·Σ|W|`` over all weights (biases excluded)."""
        total = 0.0
        if l2:
            total += l2 / (2.0 * m) * float(np.dot(self._pw, self._pw))
        if l1:
            total += l1 / m * float(np.abs(self._pw).sum(dtype=np.float64))
        return total

    def weight_norm(self) -> float:
        """``sqrt(Σ‖W‖²_F)`` over all weight matrices (not biases)."""
        return float(np.sqrt(np.dot(self._pw, self._pw)))

    def grad_norms(self) -> list[float]:
        """Per layer ‖dW‖_F of the last gradient computation (penalty included)."""
        # an exploding gradient's float32 norm overflows to inf: report that, not a warning
        with np.errstate(over="ignore", invalid="ignore"):
            return [float(np.sqrt(np.dot(g.ravel(), g.ravel()))) for g in self.dW]

    def get_params(self) -> np.ndarray:
        """A copy of the flat parameter buffer."""
        return self.params.copy()

    def set_params(self, flat: np.ndarray) -> None:
        """Copy ``flat`` (shape ``(n_params,)``) into the parameters; the views stay valid."""
        flat = np.asarray(flat)
        if flat.shape != self.params.shape:
            raise ValueError(f"expected {self.params.shape[0]} parameters, got shape {flat.shape}")
        self.params[...] = flat

    def clone(self, dtype=None, max_batch: int = 1) -> MLP:
        """A new network of the same architecture with a copy of the parameters (optionally in another dtype).

        Views and checks work on a clone so the training network's buffers and gradients stay untouched.
        """
        other = MLP(
            self.layer_sizes,
            self.activation,
            dtype=self.dtype if dtype is None else dtype,
            max_batch=max_batch,
            output=self.output,
        )
        other.params[...] = self.params
        return other

    def same_architecture(self, other: MLP) -> bool:
        """True when ``other`` has the same layer sizes, activation, output and dtype (its params fit this one)."""
        return (
            self.layer_sizes == other.layer_sizes
            and self.activation == other.activation
            and self.output == other.output
            and self.dtype == other.dtype
        )

    def trace(self, X: np.ndarray, y: np.ndarray | None = None, *, weight_grads: bool = True) -> Trace:
        """Forward (and, with labels y ``(n,)``, backward) pass of X ``(n, n_in)`` in inference mode.

        Every array is new: the training buffers and ``self.grads`` are left alone, so a view
        can call this between epochs of a live run. No dropout and no penalty. The loss and
        ``dL/dZ`` of the output layer come from :meth:`output_loss_and_delta`, the same
        loss ``evaluate`` and ``loss_and_grad`` use. ``weight_grads=False`` skips dW and db.
        """
        X = self._as_features(X)
        a = np.asarray(X, dtype=self.dtype)
        inputs = a
        pre: list[np.ndarray] = []
        post: list[np.ndarray] = []
        L = self.n_layers
        for i in range(L):
            z = a @ self.W[i]
            z += self.b[i]
            pre.append(z)
            if i < L - 1:
                a = self._act.forward(z)
                post.append(a)
        if y is None:
            return Trace(inputs, pre, post)
        y = np.asarray(y)
        loss, dz = self.output_loss_and_delta(pre[-1], y)
        d_pre: list[np.ndarray] = [dz] * L
        d_post: list[np.ndarray] = [dz] * (L - 1)
        dW: list[np.ndarray] = []
        db: list[np.ndarray] = []
        d_input = dz
        for i in range(L - 1, -1, -1):
            d_pre[i] = dz
            if weight_grads:
                a_prev = inputs if i == 0 else post[i - 1]
                dW.append(a_prev.T @ dz)
                db.append(dz.sum(axis=0))
            da = dz @ self.W[i].T
            if i == 0:
                d_input = da
            else:
                d_post[i - 1] = da
                deriv = self._act.grad(pre[i - 1], post[i - 1], np.empty_like(da))
                dz = np.multiply(deriv, da, out=deriv)
        return Trace(
            inputs,
            pre,
            post,
            loss,
            d_pre,
            d_post,
            d_input,
            dW[::-1] if weight_grads else None,
            db[::-1] if weight_grads else None,
        )

    def output_loss_and_delta(self, logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """(mean loss, ``dL/dlogits`` ``(n, C)``) of the output layer for logits ``(n, C)``.

        The loss ``evaluate`` reports and whose gradient ``loss_and_grad`` computes: softmax
        cross-entropy, or for a sigmoid output (logits ``(n, 1)``) binary cross-entropy.
        """
        if self._sigmoid:
            return binary_cross_entropy(logits, y), binary_cross_entropy_grad(logits, y)
        return cross_entropy(logits, y), cross_entropy_grad(logits, y)

    def activation_stats(self, X: np.ndarray, max_samples: int = 1024) -> dict:
        """Per hidden layer mean |a| and std of the activations (inference mode).

        Returns ``{"mean_abs": [...], "std": [...], "grad_norms": [...]}``, one entry per
        hidden layer (grad_norms: per weight layer, from the last step). Uses at most
        ``max_samples`` rows of X.
        """
        X = self._as_features(X)[:max_samples]
        hidden: list[np.ndarray] = []
        self._logits(X, keep_hidden=hidden)
        return {
            "mean_abs": [float(np.mean(np.abs(a), dtype=np.float64)) for a in hidden],
            "std": [float(np.std(a, dtype=np.float64)) for a in hidden],
            "grad_norms": self.grad_norms(),
        }

    # ------------------------------------------------------------ training

    def loss_and_grad(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        l2: float = 0.0,
        l1: float = 0.0,
        m: int | None = None,
        keep_probs: Sequence[float] | None = None,
        input_keep_prob: float = 1.0,
        rng: np.random.Generator | None = None,
    ) -> tuple[float, float]:
        """Forward and backward pass on a batch in training mode; fills ``self.grads``.

        X ``(n, n_features)``, y ``(n,)`` ints. ``m`` is the number of training examples
        the penalty divides by (defaults to n). ``keep_probs``: one inverted-dropout keep
        probability per hidden layer (None = no dropout); ``input_keep_prob`` drops inputs.
        Returns ``(cost, penalty)`` with cost = mean cross-entropy + penalty.
        """
        if X.dtype != self.dtype:
            X = X.astype(self.dtype)
        n = X.shape[0]
        if n > self._cap:
            self._ensure_capacity(n)
        L = self.n_layers
        v = self._views(n)
        plan = self._dropout_plan(keep_probs, input_keep_prob)
        raw = None
        if plan is not None:
            if rng is None:
                raise ValueError("dropout needs a numpy.random.Generator (rng)")
            # one draw of raw 16-bit integers for every mask of this step; the only per-step
            # allocation of batch size (random_raw has no out=), 2 bytes per dropped unit
            count = n * plan.units_per_row
            raw = rng.bit_generator.random_raw((count + 3) // 4).view(np.uint16)
            if plan.layers[0] is not None:
                X = self._drop_input(X, n, plan.layers[0], raw[: n * X.shape[1]])

        # ---- forward
        a = X
        at = 0 if plan is None or plan.layers[0] is None else n * X.shape[1]
        relu_fast = self._act.name == "relu"
        for i in range(L):
            a_in = a
            z = v.a[i]
            np.matmul(a, self.W[i], out=z)
            np.add(z, self.b[i], out=z)
            if i < L - 1:
                drop = None if plan is None else plan.layers[i + 1]
                if drop is None and relu_fast:  # the common case, inlined: M = (z > 0), a = z·M
                    mult = v.mult[i]
                    np.greater(z, 0, out=mult)
                    np.multiply(z, mult, out=z)
                    self._layer_mult[i] = mult
                elif drop is None:
                    self._hidden_forward(i, z, v, None, None)
                else:
                    width = z.shape[1]
                    self._hidden_forward(i, z, v, drop, raw[at : at + n * width].reshape(n, width))
                    at += n * width
            a = z

        z = a
        if self._sigmoid:
            loss = self._sigmoid_loss_and_delta(z, y, v, n)
        else:
            loss = self._softmax_loss_and_delta(z, y, v, n, a_in)

        # ---- backward
        dz = z
        ones = v.ones
        for i in range(L - 1, -1, -1):
            a_prev = X if i == 0 else v.a[i - 1]
            np.matmul(a_prev.T, dz, out=self.dW[i])
            np.matmul(ones, dz, out=self.db[i])
            if i > 0:
                np.matmul(dz, self.W[i].T, out=a_prev)  # dA overwrites A, which is no longer needed
                mult = self._layer_mult[i - 1]
                if mult is not None:
                    np.multiply(a_prev, mult, out=a_prev)
                dz = a_prev

        pen = self._add_penalty_grads(l2, l1, n if m is None else m)
        return loss + pen, pen

    def _softmax_loss_and_delta(
        self, z: np.ndarray, y: np.ndarray, v: _Views, n: int, a_in: np.ndarray
    ) -> float:
        """Mean cross-entropy of logits z ``(n, C)``; z becomes dZ = (softmax − onehot) / n."""
        t = self.dtype.type
        flat_idx = v.row_offsets + y
        s, zy = self._exp_logits(z, flat_idx, a_in, v.row_sums)
        ls = np.log(s, out=v.log_sums)
        np.subtract(ls, zy, out=ls)  # log Σ exp(z − c) − (z_y − c), per row
        loss = float(np.dot(ls, v.ones)) / n
        np.divide(t(1.0 / n), s, out=s)
        np.multiply(z, s[:, None], out=z)
        z.reshape(-1)[flat_idx] -= t(1.0 / n)
        return loss

    def _sigmoid_loss_and_delta(self, z: np.ndarray, y: np.ndarray, v: _Views, n: int) -> float:
        """Mean binary cross-entropy of logits z ``(n, 1)``; z becomes dZ = (σ(z) − y) / n.

        With the sign s = 1 − 2y and q = s·z the per-sample loss is softplus(q) =
        max(q, 0) + log1p(e^−|q|) (no log(0), no overflow) and σ(z) − y = s·σ(q), where
        σ(q) = exp(q − softplus(q)): q − softplus(q) = −log(1 + e^−q) ≤ 0, so exp never
        overflows, and in the far tails it rounds to 1 (large q) or to e^q (very negative q).
        All in place on (n,) buffers: a handful of passes over n numbers, next to the matmuls.
        """
        t = self.dtype.type
        q = z.reshape(-1)  # a view: the (n, 1) slice of a C-contiguous buffer
        sign = v.sign
        np.multiply(y, -2, out=sign, casting="unsafe")  # int labels -> network dtype
        np.add(sign, t(1.0), out=sign)
        np.multiply(q, sign, out=q)
        e = v.row_sums
        np.abs(q, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)  # e^−|q| in (0, 1]
        sp = v.log_sums
        np.log1p(e, out=sp)
        np.maximum(q, t(0.0), out=e)
        np.add(sp, e, out=sp)  # softplus(q) per row
        loss = float(np.dot(sp, v.ones)) / n
        np.subtract(q, sp, out=q)
        np.exp(q, out=q)  # σ(q)
        np.multiply(sign, t(1.0 / n), out=sign)
        np.multiply(q, sign, out=q)  # (σ(z) − y) / n
        return loss

    def _exp_logits(
        self, z: np.ndarray, flat_idx: np.ndarray, a_in: np.ndarray, row_sums: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Replace logits z ``(n, C)`` by ``exp(z − c)`` in place; return row sums and ``z_y − c``.

        c is the batch maximum (one cheap reduction instead of a slow per-row maximum), so
        every exponent is ≤ 0 and nothing overflows. If some row lies so far below the
        batch maximum that its sum could underflow, the logits are recomputed from the
        last layer's input ``a_in`` and shifted by their row maxima (textbook log-sum-exp).
        """
        zf = z.reshape(-1)
        np.subtract(z, zf.max(), out=z)
        zy = zf[flat_idx]
        np.exp(z, out=z)
        s = np.matmul(z, self._ones_c, out=row_sums)
        if not s.min() >= _MIN_ROW_SUM and np.isfinite(zy).all():  # NaN means diverged: leave it
            last = self.n_layers - 1
            np.matmul(a_in, self.W[last], out=z)
            np.add(z, self.b[last], out=z)
            np.subtract(z, z.max(axis=1, keepdims=True), out=z)
            zy = zf[flat_idx]
            np.exp(z, out=z)
            np.matmul(z, self._ones_c, out=s)
        return s, zy

    def train_step(
        self,
        X: np.ndarray,
        y: np.ndarray,
        optimizer,
        *,
        l2: float = 0.0,
        l1: float = 0.0,
        m: int | None = None,
        keep_probs: Sequence[float] | None = None,
        input_keep_prob: float = 1.0,
        rng: np.random.Generator | None = None,
    ) -> float:
        """One mini-batch update: ``loss_and_grad`` then ``optimizer.step``; returns the cost."""
        cost, _ = self.loss_and_grad(
            X, y, l2=l2, l1=l1, m=m, keep_probs=keep_probs, input_keep_prob=input_keep_prob, rng=rng
        )
        optimizer.step(self.params, self.grads)
        return cost

    # ------------------------------------------------------------ training helpers

    def _dropout_plan(self, keep_probs, input_keep_prob) -> _DropoutPlan | None:
        """The (cached) dropout plan for these keep probabilities; None when nothing drops."""
        key = (None if keep_probs is None else tuple(keep_probs), input_keep_prob)
        if key == self._plan_key:
            return self._plan
        if keep_probs is not None and len(keep_probs) != self.n_layers - 1:
            raise ValueError(
                f"keep_probs needs {self.n_layers - 1} values (one per hidden layer), got {len(keep_probs)}"
            )
        probs = [input_keep_prob] + (
            list(keep_probs) if keep_probs is not None else [1.0] * (self.n_layers - 1)
        )
        layers, units = [], 0
        for width, kp in zip(self.layer_sizes[:-1], probs):
            if uses_dropout(kp):
                layers.append(_Drop(np.uint16(keep_threshold(kp)), self.dtype.type(1.0 / kp)))
                units += width
            else:
                layers.append(None)
        plan = _DropoutPlan(tuple(layers), units) if units else None
        self._plan_key, self._plan = key, plan
        return plan

    def _drop_input(self, X: np.ndarray, n: int, drop: _Drop, raw: np.ndarray) -> np.ndarray:
        """Inverted dropout on the inputs into a preallocated buffer ``(n, n_features)``."""
        if self._x_drop is None or self._x_drop.shape[0] < self._cap:
            self._x_drop = np.empty((self._cap, self.layer_sizes[0]), dtype=self.dtype)
            self._x_keep = np.empty((self._cap, self.layer_sizes[0]), dtype=bool)
        xd = self._x_drop[:n]
        keep = np.less(raw.reshape(xd.shape), drop.threshold, out=self._x_keep[:n])
        np.multiply(keep, drop.scale, out=xd)
        np.multiply(xd, X, out=xd)
        return xd

    def _hidden_forward(
        self, i: int, z: np.ndarray, v: _Views, drop: _Drop | None, raw: np.ndarray | None
    ) -> None:
        """Activation (and dropout) of hidden layer i in place on z; sets its backward multiplier.

        raw: uniform uint16 ``(n, width)`` for the dropout mask (None without dropout).
        """
        act = self._act
        n = z.shape[0]
        mult = v.mult[i]
        if act.piecewise_linear:
            # f(z) = z·f'(z): one multiplier M = f'(z)·mask/p gives both a = z·M and dz = da·M
            if drop is None:
                if act.name == "linear":
                    self._layer_mult[i] = None
                    return
                act.grad(z, z, mult)
            else:
                keep = v.keep[i]
                np.less(raw, drop.threshold, out=keep)
                if act.name == "relu":
                    # bool logic is ~3x cheaper than float passes: M = (z > 0 and kept) / p
                    live = v.live[i]
                    np.greater(z, 0, out=live)
                    np.logical_and(live, keep, out=live)
                    np.multiply(live, drop.scale, out=mult)
                else:
                    act.grad(z, z, mult)
                    np.multiply(mult, keep, out=mult)
                    np.multiply(mult, drop.scale, out=mult)
            np.multiply(z, mult, out=z)
        else:
            act.forward(z, out=z)
            act.grad(z, z, mult)  # tanh and sigmoid derivatives only read a
            if drop is not None:
                keep = v.keep[i]
                np.less(raw, drop.threshold, out=keep)
                kf = self._keep_f(i, n)
                np.multiply(keep, drop.scale, out=kf)
                np.multiply(z, kf, out=z)
                np.multiply(mult, kf, out=mult)
        self._layer_mult[i] = mult

    def _keep_f(self, i: int, n: int) -> np.ndarray:
        buf = self._keep_float.get(i)
        if buf is None or buf.shape[0] < self._cap:
            buf = self._keep_float[i] = np.empty((self._cap, self.layer_sizes[i + 1]), dtype=self.dtype)
        return buf[:n]

    def _add_penalty_grads(self, l2: float, l1: float, m: int) -> float:
        """Add the penalty gradients to the weight gradients; return the penalty value."""
        if not l2 and not l1:
            return 0.0
        if self._wtmp is None:
            self._wtmp = np.empty(self.n_weights, dtype=self.dtype)
        pw, gw, tmp, t = self._pw, self._gw, self._wtmp, self.dtype.type
        pen = 0.0
        if l2:
            pen += l2 / (2.0 * m) * float(np.dot(pw, pw))
            np.multiply(pw, t(l2 / m), out=tmp)
            np.add(gw, tmp, out=gw)
        if l1:
            np.sign(pw, out=tmp)
            pen += l1 / m * float(np.dot(tmp, pw))  # Σ sign(w)·w = Σ|w|
            np.multiply(tmp, t(l1 / m), out=tmp)
            np.add(gw, tmp, out=gw)
        return pen
