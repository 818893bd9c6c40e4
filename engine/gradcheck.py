"""Gradient checking: backprop gradients against centred finite differences.

Every weight and bias θ_k is nudged by ±eps and the cost (mean cross-entropy, or binary
cross-entropy for a sigmoid output, plus the L2/L1 penalty) is recomputed in float64: ``g_num_k = (J(θ+eps·e_k) − J(θ−eps·e_k)) / 2eps``.
The verdict uses the relative difference ``‖g − g_num‖₂ / (‖g‖₂ + ‖g_num‖₂)``; below 1e-7
passes. Dropout is switched off: its random masks make the cost a different function at
every evaluation. The numerical cost goes through the inference forward pass, which is
code separate from the training forward/backward pass being checked.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.errors import Cancelled
from engine.network import MLP, network_sizes

Progress = Callable[[int, int], None] | None
Cancel = Callable[[], bool] | None

THRESHOLD = 1e-7
_BATCH_ELEMENTS = 1 << 16  # P·n·width per batch of nudges: 512 KB of float64 stays in cache
DROPOUT_NOTE = "dropout is switched off during the check (random masks make the cost non-deterministic)"
RELU_NOTE = (
    "ReLU-type activations have a kink at 0; a nudge that crosses it can make the check fail "
    "spuriously, which is rare with few samples in float64"
)


def _relative_difference(g: np.ndarray, g_num: np.ndarray) -> float:
    denom = float(np.linalg.norm(g) + np.linalg.norm(g_num))
    if denom == 0.0:
        return 0.0
    return float(np.linalg.norm(g - g_num)) / denom


def gradient_check(
    net: MLP,
    X: np.ndarray,
    y: np.ndarray,
    l2: float = 0.0,
    l1: float = 0.0,
    eps: float = 1e-6,
    progress: Progress = None,
    cancel: Cancel = None,
) -> dict:
    """Compare ``net``'s backprop gradient with centred differences over every parameter.

    ``net`` should be float64 (a float32 net is checked through a float64 copy).
    X ``(n, n_features)``, y ``(n,)``; the penalty divides by m = n. Returns a dict with
    ``relative_difference``, ``passed``, ``threshold``, ``n_params``, ``eps``, ``note`` and
    ``layers`` (per layer: relative differences of W and b). progress(done, n_params) and
    cancel() (True raises :class:`engine.errors.Cancelled`) are checked per weight column.
    """
    if net.dtype != np.float64:
        copy = MLP(net.layer_sizes, net.activation, dtype="float64", max_batch=len(X), output=net.output)
        copy.set_params(net.params.astype(np.float64))
        net = copy
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    m = len(y)
    net.loss_and_grad(X, y, l2=l2, l1=l1, m=m)
    grad = net.grads.copy()

    num = numerical_gradient(net, X, y, l2=l2, l1=l1, eps=eps, progress=progress, cancel=cancel)

    layers = []
    for i, (w, b) in enumerate(zip(net.W, net.b)):
        w_sl = _slice_of(net, w)
        b_sl = _slice_of(net, b)
        layers.append(
            {
                "layer": i + 1,
                "W": _relative_difference(grad[w_sl], num[w_sl]),
                "b": _relative_difference(grad[b_sl], num[b_sl]),
            }
        )
    rel = _relative_difference(grad, num)
    note = DROPOUT_NOTE
    near_kinks = 0
    if net.activation in ("relu", "leaky_relu"):
        near_kinks = _count_near_kinks(net, X, tol=1e3 * eps)
        note += "; " + RELU_NOTE
        if near_kinks:
            note += f"; {near_kinks} hidden pre-activations lie within {1e3 * eps:g} of the kink, so a failure here may be spurious"
    return {
        "relative_difference": rel,
        "passed": bool(rel < THRESHOLD),
        "threshold": THRESHOLD,
        "n_params": int(net.n_params),
        "eps": eps,
        "note": note,
        "layers": layers,
        "near_kinks": near_kinks,
    }


def _count_near_kinks(net: MLP, X: np.ndarray, tol: float) -> int:
    """Number of hidden pre-activations z with |z| < tol (where ReLU's derivative jumps)."""
    a, count = X, 0
    for i in range(net.n_layers - 1):
        z = a @ net.W[i] + net.b[i]
        count += int(np.count_nonzero(np.abs(z) < tol))
        a = net.activation_fn.forward(z)
    return count


def numerical_gradient(
    net: MLP,
    X: np.ndarray,
    y: np.ndarray,
    l2: float = 0.0,
    l1: float = 0.0,
    eps: float = 1e-6,
    progress: Progress = None,
    cancel: Cancel = None,
) -> np.ndarray:
    """Centred differences ``(J(θ+eps·e_k) − J(θ−eps·e_k)) / 2eps`` for every parameter k, float64.

    Returns a flat array in the layout of ``net.params``. J is the inference-mode cost
    (mean cross-entropy, or binary cross-entropy for a sigmoid output, + penalty with
    m = n). Nudging ``W[l][i, j]`` (or ``b[l][j]``) only changes column j of layer l's
    pre-activations, by ``±eps·a_i`` (or ``±eps``), so all nudges of one column are
    evaluated together as a batch through the layers above. The result equals perturbing
    one parameter at a time, up to float64 rounding.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    n, L = len(y), net.n_layers
    f = net.activation_fn.forward
    W = [np.asarray(w, dtype=np.float64) for w in net.W]
    b = [np.asarray(v, dtype=np.float64) for v in net.b]
    zs, acts = [], [X]
    for k in range(L):
        z = acts[-1] @ W[k] + b[k]
        zs.append(z)
        acts.append(f(z) if k < L - 1 else z)
    rows = np.arange(n)
    sign = 1.0 - 2.0 * y  # sigmoid output: the loss of logit z is softplus((1 − 2y)·z)

    def mean_ce(logits: np.ndarray) -> np.ndarray:  # (P, n, C) -> (P,)
        if net.output == "sigmoid":
            return np.logaddexp(0.0, sign * logits[:, :, 0]).mean(axis=1)
        top = logits.max(axis=2, keepdims=True)
        lse = np.log(np.exp(logits - top).sum(axis=2)) + top[..., 0]
        return (lse - logits[:, rows, y]).mean(axis=1)

    def ce_with_column(layer: int, j: int, zcol: np.ndarray) -> np.ndarray:
        """Mean cross-entropy per row of zcol ``(P, n)``, the new column j of layer's pre-activation."""
        if layer == L - 1:
            logits = np.repeat(zs[layer][None], len(zcol), axis=0)
            logits[:, :, j] = zcol
            return mean_ce(logits)
        delta = f(zcol) - acts[layer + 1][:, j]
        z = zs[layer + 1][None] + delta[:, :, None] * W[layer + 1][j]
        P = len(zcol)
        for k in range(layer + 1, L - 1):  # one 2-D matmul for the whole batch, not P small ones
            z = (f(z).reshape(P * n, -1) @ W[k + 1] + b[k + 1]).reshape(P, n, -1)
        return mean_ce(z)

    num = np.empty(net.n_params, dtype=np.float64)
    done = 0
    for layer in range(L):
        n_in, n_out = W[layer].shape
        w_at, b_at = _slice_of(net, net.W[layer]).start, _slice_of(net, net.b[layer]).start
        inputs = np.concatenate([acts[layer], np.ones((n, 1))], axis=1).T  # (n_in + 1, n): weights, bias
        widest = max(net.layer_sizes[layer + 1 :])
        chunk = max(1, _BATCH_ELEMENTS // (n * widest))
        for j in range(n_out):
            if cancel is not None and cancel():
                raise Cancelled("gradient check cancelled")
            w = W[layer][:, j]
            pen = np.zeros(n_in + 1)  # J(+) − J(−) of the penalty; biases are not penalized
            if l2:
                pen[:n_in] += l2 / (2.0 * n) * ((w + eps) ** 2 - (w - eps) ** 2)
            if l1:
                pen[:n_in] += l1 / n * (np.abs(w + eps) - np.abs(w - eps))
            diff = np.empty(n_in + 1)
            for start in range(0, n_in + 1, chunk):
                part = inputs[start : start + chunk]
                plus = ce_with_column(layer, j, zs[layer][:, j] + eps * part)
                minus = ce_with_column(layer, j, zs[layer][:, j] - eps * part)
                diff[start : start + len(part)] = plus - minus
            g = (diff + pen) / (2.0 * eps)
            num[w_at + j : w_at + n_in * n_out : n_out] = g[:n_in]
            num[b_at + j] = g[n_in]
            done += n_in + 1
            if progress is not None:
                progress(done, net.n_params)
    return num


def _slice_of(net: MLP, view: np.ndarray) -> slice:
    """Position of a W/b view inside the flat parameter buffer."""
    start = (
        view.__array_interface__["data"][0] - net.params.__array_interface__["data"][0]
    ) // net.params.itemsize
    return slice(start, start + view.size)


def _network_inputs(cfg, data, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """First ``n_samples`` training samples as normalized float64 features ``(n, n_features)``."""
    X_raw = data.train.head(n_samples)
    y = np.asarray(data.train.y[:n_samples])
    try:
        from engine.normalization import apply_standardizer, feature_matrix
    except ImportError:
        F = X_raw.reshape(len(X_raw), -1).astype(np.float64)
        if data.is_image:
            F /= 255.0
        F = (F - np.asarray(data.norm_mean, dtype=np.float64)) / np.asarray(data.norm_std, dtype=np.float64)
        return F, y
    F = feature_matrix(X_raw, dtype=np.float64)
    F = apply_standardizer(F, np.asarray(data.norm_mean, np.float64), np.asarray(data.norm_std, np.float64))
    return np.asarray(F, dtype=np.float64), y


def check_config(cfg, data, n_samples: int = 32) -> dict:
    """Gradient check of the network a config describes, in float64.

    Builds ``[n_features] + cfg.model.hidden + [n_classes]`` (one output unit for
    ``model.output`` sigmoid, which needs two classes: ConfigError otherwise) with the configured
    activation and initializer (seeded from ``cfg.training.seed``) and checks it on the
    first ``n_samples`` normalized training samples with the configured L2 and L1
    (penalties divide by m = n_samples here). Returns :func:`gradient_check`'s dict plus
    ``n_samples``.
    """
    X, y = _network_inputs(cfg, data, n_samples)
    sizes = network_sizes(data.n_features, cfg.model.hidden, data.n_classes, cfg.model.output)
    net = MLP(sizes, cfg.model.activation, dtype="float64", max_batch=max(1, len(X)), output=cfg.model.output)
    net.initialize(cfg.model.init, cfg.model.init_scale, np.random.default_rng(cfg.training.seed))
    result = gradient_check(net, X, y, l2=cfg.regularization.l2, l1=cfg.regularization.l1)
    result["n_samples"] = int(len(X))
    result["output"] = cfg.model.output
    if cfg.model.init == "zeros" or cfg.model.init_scale == 0.0:
        result["note"] += "; all weights start at zero, so only the output biases get a non-zero gradient"
    return result


RULE = (
    "passes when the relative difference ‖g − g_num‖ / (‖g‖ + ‖g_num‖) is below 1e-7: g from "
    "backpropagation, g_num from centred differences (eps 1e-6) of the cost, both in float64 on a "
    "copy of the model, dropout off, the L2/L1 penalty included with m = the number of checked samples"
)


def check_network(
    net: MLP,
    X: np.ndarray,
    y: np.ndarray,
    *,
    l2: float = 0.0,
    l1: float = 0.0,
    n_samples: int = 32,
    progress: Progress = None,
    cancel: Cancel = None,
) -> dict:
    """Gradient check of a model as it is now (the window's background check), on a float64 clone.

    X ``(n, n_features)`` network input (normalized), y ``(n,)``; the first ``n_samples`` rows
    are used. The network itself (its parameters, buffers and gradients) is not touched, so
    this can run while the window shows it; take it between epochs or while paused for a
    consistent snapshot. Returns :func:`gradient_check`'s dict plus ``rule`` (the pass rule
    in words) and ``n_samples``. Large networks take long (784-512-256-10: about a minute):
    use progress and cancel.
    """
    X = np.asarray(X)[:n_samples]
    y = np.asarray(y)[:n_samples]
    if len(y) == 0:
        raise ValueError("the gradient check needs at least one sample")
    copy = net.clone(dtype="float64", max_batch=len(y))
    result = gradient_check(copy, X, y, l2=l2, l1=l1, progress=progress, cancel=cancel)
    result["rule"] = RULE
    result["n_samples"] = int(len(y))
    return result


def check_prepared(
    net: MLP,
    data,
    *,
    l2: float = 0.0,
    l1: float = 0.0,
    n_samples: int = 32,
    progress: Progress = None,
    cancel: Cancel = None,
) -> dict:
    """:func:`check_network` on the first ``n_samples`` training samples of ``data`` (a PreparedData),
    normalized with the data's own statistics; pass the run's ``regularization.l2`` / ``l1``."""
    from engine.batches import to_network_input

    X = to_network_input(data.train.X[:n_samples], data.norm_mean, data.norm_std, np.float64)
    return check_network(
        net, X, data.train.y[:n_samples], l2=l2, l1=l1, n_samples=n_samples, progress=progress, cancel=cancel
    )


def check_loaded(
    model,
    X_raw: np.ndarray,
    y: np.ndarray,
    *,
    n_samples: int = 32,
    progress: Progress = None,
    cancel: Cancel = None,
) -> dict:
    """:func:`check_network` for a saved model (``engine.runs.LoadedModel``) on raw samples
    ``X_raw`` ``(n, *input_shape)``, normalized with the model's statistics, with the L2/L1 of
    the model's config."""
    from engine.batches import to_network_input

    X = to_network_input(np.asarray(X_raw)[:n_samples], model.norm_mean, model.norm_std, np.float64)
    reg = model.config.regularization
    return check_network(
        model.net,
        X,
        np.asarray(y)[:n_samples],
        l2=reg.l2,
        l1=reg.l1,
        n_samples=n_samples,
        progress=progress,
        cancel=cancel,
    )
