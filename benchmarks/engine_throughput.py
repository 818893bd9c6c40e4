"""Engine throughput: how close one training epoch gets to the speed of its matrix multiplications.

Run:  python benchmarks/engine_throughput.py [--repeats 3] [--samples 20000]

MLP 784-512-256-10 on synthetic, learnable data (random class centroids + noise),
batch 128, float32, Adam, dropout keep_prob 0.8 on both hidden layers. Reported, from
one run:

- the GEMM floor: NumPy doing exactly the matrix multiplications one epoch needs
  (forward X·W per layer, backward dW per layer, dX for every layer but the input
  layer; 2·m·n·k flops each) into preallocated ``out=`` buffers;
- our engine through the product path (``engine.trainer.Trainer``: batch pipeline,
  train_step, per-epoch evaluation), and through a bare loop (``np.take`` gather +
  ``MLP.train_step``);
- seconds per epoch, samples per second, achieved GFLOP/s and floor ÷ epoch time;
- µs per step of a 2-10-5-2 network at batch 64 (1,000 points), and of the same network
  with a one-unit sigmoid output (2-10-5-1, ``model.output`` sigmoid);
- seconds per epoch of 784-512-256 with a two-class softmax and with a sigmoid output;
- for context: scikit-learn's MLPClassifier (one epoch, when installed) and a naive NumPy
  trainer (float64, fresh arrays every batch).

Every contender runs one warm-up epoch, then ``--repeats`` rounds in which each runs one
epoch in turn; each figure is its best epoch. Interleaving keeps the ratios fair on a
machine whose load changes while the benchmark runs.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.network import MLP  # noqa: E402
from engine.optimizers import Adam  # noqa: E402

SIZES = [784, 512, 256, 10]
BATCH = 128
KEEP = 0.8
LR = 1e-3


def make_data(n: int, n_features: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable synthetic data: class centroids + Gaussian noise, float32 ``(n, n_features)``."""
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((n_classes, n_features)).astype(np.float32)
    y = rng.integers(0, n_classes, n)
    X = centroids[y] + 2.0 * rng.standard_normal((n, n_features)).astype(np.float32)
    return X.astype(np.float32), y.astype(np.int64)


def batch_sizes(n: int, bs: int) -> list[int]:
    return [min(bs, n - s) for s in range(0, n, bs)]


def epoch_flops(sizes: list[int], n: int, bs: int) -> float:
    """Flops of the matmuls of one epoch: forward + dW for each layer, dX for all but the first."""
    per_sample = 0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        per_sample += 2 * 2 * a * b  # forward and dW
        if i > 0:
            per_sample += 2 * a * b  # dX
    return float(per_sample) * n


def timed(fn) -> Callable[[], float]:
    """Wrap an untimed epoch function into one that returns its wall time."""

    def run() -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return run


def interleaved_best(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """One warm-up epoch each, then ``rounds`` rounds of one epoch each; the best time per contender.

    Interleaving means a burst of load from other processes hits every contender alike.
    """
    for run in contenders.values():
        run()
    best = dict.fromkeys(contenders, math.inf)
    for _ in range(rounds):
        for name, run in contenders.items():
            best[name] = min(best[name], run())
    return best


# ---------------------------------------------------------------- the GEMM floor


def gemm_floor(sizes: list[int], n: int, bs: int) -> Callable[[], None]:
    """An epoch of exactly the step's matmuls, into preallocated buffers."""
    rng = np.random.default_rng(0)
    f = np.float32
    X = rng.standard_normal((bs, sizes[0])).astype(f)
    W = [(rng.standard_normal((a, b)) / math.sqrt(a)).astype(f) for a, b in zip(sizes[:-1], sizes[1:])]
    dW = [np.empty_like(w) for w in W]
    A = [np.empty((bs, b), f) for b in sizes[1:]]
    D = [(rng.standard_normal((bs, b)) * 0.01).astype(f) for b in sizes[1:]]
    L = len(W)
    sizes_of_batches = batch_sizes(n, bs)

    def epoch() -> None:
        for k in sizes_of_batches:
            a = X[:k]
            for i in range(L):
                np.matmul(a, W[i], out=A[i][:k])
                a = A[i][:k]
            for i in range(L - 1, -1, -1):
                prev = X[:k] if i == 0 else A[i - 1][:k]
                np.matmul(prev.T, D[i][:k], out=dW[i])
                if i > 0:
                    np.matmul(D[i][:k], W[i].T, out=D[i - 1][:k])

    return epoch


# ---------------------------------------------------------------- our engine


def own_loop(
    X, y, sizes, bs, keep=KEEP, activation="relu", output="softmax"
) -> tuple[Callable[[], None], MLP]:
    """Bare product loop: permutation, np.take gather into buffers, train_step."""
    rng = np.random.default_rng(1)
    net = MLP(sizes, activation, max_batch=bs, output=output)
    net.initialize("he", 1.0, rng)
    opt = Adam(LR, net.n_params, np.float32)
    n = len(X)
    xb = np.empty((bs, X.shape[1]), np.float32)
    yb = np.empty(bs, np.int64)
    keep_probs = [keep] * (len(sizes) - 2)
    step = net.train_step

    def epoch() -> None:
        perm = rng.permutation(n)
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            k = len(idx)
            np.take(X, idx, axis=0, out=xb[:k], mode="clip")
            np.take(y, idx, out=yb[:k], mode="clip")
            step(
                xb[:k], yb[:k], opt, l2=0.0, l1=0.0, m=n, keep_probs=keep_probs, input_keep_prob=1.0, rng=rng
            )

    return epoch, net


class TrainerEpochs:
    """Epochs through engine.trainer.Trainer (the product path), one per call.

    Each call returns the seconds of the epoch's mini-batch steps (from the record's
    samples_per_sec); ``whole`` collects the record's full epoch seconds (with evaluation).
    """

    def __init__(self, X, y, Xdev, ydev, hidden, bs, epochs, keep=KEEP) -> None:
        from engine.config import from_dict
        from engine.dataset import ArraySet, PreparedData
        from engine.trainer import Trainer

        n_classes = int(max(y.max(), ydev.max())) + 1
        cfg = from_dict(
            {
                "model": {"hidden": list(hidden), "activation": "relu", "init": "he"},
                "regularization": {"keep_prob": keep},
                "optimizer": {"name": "adam", "lr": LR},
                "training": {"epochs": epochs, "batch_size": bs, "dtype": "float32", "seed": 0},
            }
        )
        nf = X.shape[1]
        data = PreparedData(
            train=ArraySet(X, y),
            dev=ArraySet(Xdev, ydev),
            test=ArraySet(Xdev[:0], ydev[:0]),
            classes=[f"c{i}" for i in range(n_classes)],
            input_shape=(nf,),
            norm_mean=np.zeros(nf, np.float32),
            norm_std=np.ones(nf, np.float32),
        )
        self.n = len(X)
        self.records = Trainer(cfg, data).run()
        self.whole: list[float] = []
        self.last = None

    def __call__(self) -> float:
        self.last = next(self.records)
        self.whole.append(self.last.seconds)
        return self.n / self.last.samples_per_sec


def trainer_available() -> bool:
    try:
        import engine.trainer  # noqa: F401
    except ImportError as exc:  # the trainer is written by another module owner
        print(f"  (Trainer path not available: {exc})")
        return False
    return True


def tiny_step_us(rounds: int) -> dict[str, float]:
    """µs per train_step of 2-10-5-2 at batch 64 on 1,000 points: bare loop, and via Trainer."""
    X, y = make_data(1000, 2, 2, seed=5)
    steps = len(batch_sizes(1000, 64))
    bare, _ = own_loop(X, y, [2, 10, 5, 2], 64, keep=1.0)
    bare_sigmoid, _ = own_loop(X, y, [2, 10, 5, 1], 64, keep=1.0, output="sigmoid")
    contenders = {"bare loop": timed(bare), "bare loop, sigmoid output": timed(bare_sigmoid)}
    if trainer_available():
        contenders["via Trainer"] = TrainerEpochs(X, y, X[:200], y[:200], [10, 5], 64, rounds + 1, keep=1.0)
    best = interleaved_best(contenders, rounds)
    return {name: t / steps * 1e6 for name, t in best.items()}


# ---------------------------------------------------------------- context


def sklearn_fit(X, y) -> Callable[[], None] | None:
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None

    def fit() -> None:
        clf = MLPClassifier(
            hidden_layer_sizes=(512, 256), solver="adam", batch_size=BATCH, max_iter=1, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)

    return fit


def naive(X, y, sizes, bs) -> Callable[[], None]:
    """Textbook NumPy: float64, new arrays for everything, per-layer Adam, float dropout masks."""
    rng = np.random.default_rng(2)
    X64 = X.astype(np.float64)
    W = [rng.standard_normal((a, b)) * math.sqrt(2 / a) for a, b in zip(sizes[:-1], sizes[1:])]
    b = [np.zeros(k) for k in sizes[1:]]
    params = W + b
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    state = {"t": 0}
    n, L = len(X), len(W)

    def epoch() -> None:
        perm = rng.permutation(n)
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            xb, yb = X64[idx], y[idx]
            k = len(idx)
            acts, masks = [xb], []
            for i in range(L):
                z = acts[-1] @ W[i] + b[i]
                if i < L - 1:
                    mask = (rng.random(z.shape) < KEEP) / KEEP
                    acts.append(np.maximum(z, 0) * mask)
                    masks.append((z > 0) * mask)
                else:
                    z = z - z.max(axis=1, keepdims=True)
                    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            onehot = np.zeros_like(p)
            onehot[np.arange(k), yb] = 1
            dz = (p - onehot) / k
            gW, gb = [None] * L, [None] * L
            for i in range(L - 1, -1, -1):
                gW[i] = acts[i].T @ dz
                gb[i] = dz.sum(axis=0)
                if i > 0:
                    dz = (dz @ W[i].T) * masks[i - 1]
            state["t"] += 1
            t = state["t"]
            for p_, g, m_, v_ in zip(params, gW + gb, ms, vs):
                m_[...] = 0.9 * m_ + 0.1 * g
                v_[...] = 0.999 * v_ + 0.001 * g * g
                p_ -= LR * (m_ / (1 - 0.9**t)) / (np.sqrt(v_ / (1 - 0.999**t)) + 1e-8)

    return epoch


# ---------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds after the warm-up round")
    ap.add_argument("--skip-context", action="store_true", help="skip scikit-learn and the naive trainer")
    args = ap.parse_args(argv)
    n, rounds = args.samples, args.repeats

    X, y = make_data(n + 2000, SIZES[0], SIZES[-1], seed=0)
    X, y, Xdev, ydev = X[:n], y[:n], X[n:], y[n:]
    flops = epoch_flops(SIZES, n, BATCH)
    print(
        f"RegLab engine throughput — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"numpy {np.__version__}, python {platform.python_version()}"
    )
    print(
        f"MLP {'-'.join(map(str, SIZES))}, {n} samples, batch {BATCH}, float32, Adam, keep_prob {KEEP}; "
        f"best of {rounds} interleaved rounds after a warm-up round"
    )
    print(f"matmul work per epoch: {flops / 1e9:.1f} GFLOP")

    own, net = own_loop(X, y, SIZES, BATCH)
    contenders: dict[str, Callable[[], float]] = {"floor": timed(gemm_floor(SIZES, n, BATCH))}
    via = TrainerEpochs(X, y, Xdev, ydev, SIZES[1:-1], BATCH, rounds + 1) if trainer_available() else None
    if via is not None:
        contenders["trainer"] = via
    contenders["own"] = timed(own)
    if not args.skip_context:
        fit = sklearn_fit(X, y)
        if fit is not None:
            contenders["sklearn"] = timed(fit)
        contenders["naive"] = timed(naive(X, y, SIZES, BATCH))
    best = interleaved_best(contenders, rounds)
    floor = best["floor"]
    ours = best.get("trainer", best["own"])

    print(f"\n{'what':44s} {'s/epoch':>8s} {'samples/s':>10s} {'GFLOP/s':>8s} {'floor/time':>10s}")

    def row(name: str, seconds: float, note: str = "") -> None:
        print(
            f"{name:44s} {seconds:8.3f} {n / seconds:10.0f} {flops / seconds / 1e9:8.1f} {floor / seconds:10.2f} {note}"
        )

    row("GEMM floor (the matmuls alone)", floor)
    if via is not None:
        row("engine via Trainer: mini-batch steps", best["trainer"])
        row(
            "engine via Trainer: whole epoch (+ eval)",
            min(via.whole[1:]),
            f"train acc {via.last.train_acc:.3f}",
        )
    row(
        "engine bare loop: np.take + train_step",
        best["own"],
        f"acc {net.evaluate(X[:2000], y[:2000])[1]:.3f}",
    )
    if "sklearn" in best:
        row("scikit-learn MLPClassifier, 1 epoch", best["sklearn"], f"{best['sklearn'] / ours:.1f}x our time")
    if "naive" in best:
        row("naive NumPy (float64, fresh arrays)", best["naive"], f"{best['naive'] / ours:.1f}x our time")

    y2 = (y % 2).astype(np.int64)
    two = interleaved_best(
        {
            "softmax": timed(own_loop(X, y2, [*SIZES[:-1], 2], BATCH)[0]),
            "sigmoid": timed(own_loop(X, y2, [*SIZES[:-1], 1], BATCH, output="sigmoid")[0]),
        },
        rounds,
    )
    print(
        f"\ntwo classes, {'-'.join(map(str, SIZES[:-1]))}, bare loop, s/epoch: two-class softmax "
        f"{two['softmax']:.3f}, one sigmoid unit {two['sigmoid']:.3f} ({two['sigmoid'] / two['softmax']:.2f}x)"
    )

    tiny = tiny_step_us(max(rounds, 20))
    print(
        "\n2-10-5-2, batch 64, 1,000 points, µs per step: "
        + ", ".join(f"{name} {us:.0f}" for name, us in tiny.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
