"""Insight views: how fast the engine half of each view is, measured side by side in one run.

Run:  python benchmarks/insight_bench.py [--rounds 15] [--epochs 150] [--hz 10] [--repeats 5]
          [--blas-threads N] [--only SECTION ...] [--big]

``run()`` returns a dict (``__main__`` prints it as JSON):

- ``boundary``: a 200×200 grid of a 2-64-64-2 float32 network (40,000 points), in ms, with
  OpenBLAS's own thread count (``threads_default``) and with one BLAS thread
  (``threads_1``: what the window has while a small network trains, since the trainer
  limits BLAS process-wide). Contenders, interleaved round by round:
  ``floor`` = the bare matrix multiplications (three chained products per 4096-row
  chunk into preallocated buffers: nothing else); ``grid`` = ``BoundaryGrid.compute``
  (parameter snapshot, ``predict_proba`` with a reused workspace); ``plain`` = the same
  forward pass written the usual way (``a @ W + b``, activation, softmax, fresh arrays);
  ``rgba`` = ``boundary_rgba`` with a prebuilt colour table. Figures are the best round
  (least disturbed by other programs) and the median; ``grid / floor`` is the ratio.
  Target: ≤ 5 ms.
- ``training_with_view``: samples/s of training that 2-64-64-2 network on 4,000 moons
  points (2,400 for training; Adam, batch 64, ``--epochs`` epochs, about a second) with and
  without a thread that recomputes the boundary and its picture ``--hz`` times a second
  from the live network (as a view refreshed by a timer would), alternating runs; the
  ratio of the medians, and the frames drawn per run. The trainer limits BLAS to one
  thread for this small network (process-wide), so the view computes with one thread too;
  Python's thread switch interval is 0.5 ms, as the window's training worker sets it.
  Target ≥ 0.9.
- ``depth_lab``: ``DepthLab.profile`` of depth 50 × width 100 × 256 samples (float64) per
  activation, against its floor (the 102 matrix products of the forward and backward
  pass alone). Target: well under 50 ms.
- ``layer_statistics``: ms for 256 samples through 2-64-64-2 and 784-512-256-10 (once per
  epoch), beside one training step of batch 256 of the same network.
- ``landscape``: seconds for the CLI default (21 points × 3 directions) on 1,000 moons
  points through a 2-64-64-2 network.
- ``gradient_check``: seconds of ``check_network`` on 32 samples for 2-64-64-2 and
  784-64-10 (and 784-512-256-10 with ``--big``, about a minute).

``--blas-threads N`` runs everything but the training comparison with N OpenBLAS threads
(default: OpenBLAS's own choice, one per core). On a busy 2-core machine small products
are much faster with one thread (the second thread's turn is a whole time slice away).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import blas  # noqa: E402
from engine.config import from_dict  # noqa: E402
from engine.gradcheck import check_network  # noqa: E402
from engine.insight.boundary import BoundaryGrid, boundary_rgba, confidence_lut, data_range  # noqa: E402
from engine.insight.depthlab import DepthLab  # noqa: E402
from engine.insight.landscape import loss_slice_1d  # noqa: E402
from engine.insight.layers import layer_statistics  # noqa: E402
from engine.losses import softmax  # noqa: E402
from engine.network import MLP  # noqa: E402
from engine.optimizers import Adam  # noqa: E402

RES = 200
CHUNK = 4096
SWITCH_INTERVAL = 0.0005  # s; gui/training_worker.py's TRAINING_SWITCH_INTERVAL


def _net(sizes, dtype="float32", seed=0) -> MLP:
    net = MLP(sizes, "relu", dtype=dtype)
    rng = np.random.default_rng(seed)
    net.initialize("he", 1.0, rng)
    for b in net.b:
        b[...] = rng.standard_normal(b.shape) * 0.1
    return net


def _rounds(contenders: dict, rounds: int) -> dict:
    """Each contender once per round, in turn; best and median ms per contender."""
    times = {k: [] for k in contenders}
    for f in contenders.values():
        f()  # warm-up
    for _ in range(rounds):
        for k, f in contenders.items():
            t = time.perf_counter()
            f()
            times[k].append((time.perf_counter() - t) * 1e3)
    return {
        k: {"best_ms": round(min(v), 3), "median_ms": round(statistics.median(v), 3)}
        for k, v in times.items()
    }


def bench_boundary(rounds: int) -> dict:
    net = _net([2, 64, 64, 2])
    grid = BoundaryGrid(RES)
    mean, std, xr, yr = [0.0, 0.0], [1.0, 1.0], (-3.0, 3.0), (-3.0, 3.0)
    probs = grid.compute(net, mean, std, xr, yr)[0]
    F = np.ascontiguousarray(grid._features)
    bufs = [np.empty((CHUNK, s), np.float32) for s in net.layer_sizes[1:]]
    lut = confidence_lut(2)

    def floor():
        for start in range(0, len(F), CHUNK):
            a = F[start : start + CHUNK]
            for i, W in enumerate(net.W):
                z = bufs[i][: len(a)]
                np.matmul(a, W, out=z)
                a = z

    def plain():
        out = np.empty((len(F), 2), np.float32)
        for start in range(0, len(F), CHUNK):
            a = F[start : start + CHUNK]
            for i in range(net.n_layers):
                z = a @ net.W[i] + net.b[i]
                a = np.maximum(z, 0) if i < net.n_layers - 1 else z
            out[start : start + CHUNK] = softmax(a)
        return out

    contenders = {
        "floor": floor,
        "grid": lambda: grid.compute(net, mean, std, xr, yr),
        "plain": plain,
        "rgba": lambda: boundary_rgba(probs, lut=lut),
    }
    out = {"points": RES * RES, "network": "2-64-64-2 float32"}
    for label, n in (("threads_default", None), ("threads_1", 1)):
        with blas.limited(n):
            r = _rounds(contenders, rounds)
        r["grid_over_floor"] = round(r["grid"]["best_ms"] / r["floor"]["best_ms"], 2)
        r["plain_over_grid"] = round(r["plain"]["best_ms"] / r["grid"]["best_ms"], 2)
        r["blas_threads"] = blas.threads() if n is None else n
        out[label] = r
    return out


def bench_training_with_view(epochs: int, hz: float, repeats: int = 5) -> dict:
    from engine.prepare import prepare_data
    from engine.trainer import Trainer

    cfg = from_dict(
        {
            "data": {"source": "builtin:moons", "n_samples": 4000, "seed": 0},
            "model": {"hidden": [64, 64]},
            "optimizer": {"name": "adam", "lr": 0.003},
            "training": {"epochs": epochs, "batch_size": 64},
        }
    )
    data = prepare_data(cfg)
    xr, yr = data_range(data.train.X)

    def one_run(with_view: bool) -> tuple[float, int]:
        trainer = Trainer(cfg, data)
        stop = threading.Event()
        frames = [0]

        def view() -> None:  # a view refreshed by a timer: recompute from the live network
            grid, lut = BoundaryGrid(RES), confidence_lut(2)
            while not stop.wait(1.0 / hz):
                probs = grid.compute(trainer.network, data.norm_mean, data.norm_std, xr, yr)[0]
                boundary_rgba(probs, lut=lut)
                frames[0] += 1

        thread = threading.Thread(target=view, daemon=True) if with_view else None
        if thread:
            thread.start()
        seconds = 0.0
        for record in trainer.run():
            seconds += record.seconds
        stop.set()
        if thread:
            thread.join()
        return len(data.train) * epochs / seconds, frames[0]

    bare, viewed, frames = [], [], []
    saved = sys.getswitchinterval()
    sys.setswitchinterval(min(saved, SWITCH_INTERVAL))  # as the window's training worker does
    try:
        one_run(False)  # warm-up
        for _ in range(repeats):
            bare.append(one_run(False)[0])
            s, f = one_run(True)
            viewed.append(s)
            frames.append(f)
    finally:
        sys.setswitchinterval(saved)
    return {
        "network": "2-64-64-2 float32, Adam, batch 64, 2,400 training points",
        "view_hz": hz,
        "samples_per_sec_without_view": round(statistics.median(bare)),
        "samples_per_sec_with_view": round(statistics.median(viewed)),
        "ratio": round(statistics.median(viewed) / statistics.median(bare), 3),
        "frames_per_run": frames,
    }


def bench_depth_lab(rounds: int) -> dict:
    labs = {a: DepthLab(50, 100, a, "he" if "relu" in a else "xavier") for a in ("relu", "tanh", "linear")}
    X = np.random.default_rng(0).standard_normal((256, 100))
    W = np.random.default_rng(1).standard_normal((100, 100)) * 0.1
    buf = np.empty((256, 100))

    def floor():  # 51 forward and 51 backward products of the same shapes
        for _ in range(51):
            np.matmul(X, W, out=buf)
        for _ in range(51):
            np.matmul(buf, W.T, out=X)

    contenders = {"floor": floor, **{a: (lambda lab=lab: lab.profile(1.0)) for a, lab in labs.items()}}
    t = time.perf_counter()
    DepthLab(50, 100, "relu", "he")
    setup = (time.perf_counter() - t) * 1e3
    r = _rounds(contenders, rounds)
    r["setup_ms"] = round(setup, 2)
    r["relu_over_floor"] = round(r["relu"]["best_ms"] / r["floor"]["best_ms"], 2)
    r["shape"] = "depth 50 x width 100 x 256 samples, float64"
    return r


def bench_layer_statistics(rounds: int) -> dict:
    out = {}
    for sizes in ([2, 64, 64, 2], [784, 512, 256, 10]):
        net = _net(sizes)
        rng = np.random.default_rng(0)
        X = rng.standard_normal((256, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], 256)
        opt = Adam(1e-3, net.n_params, np.float32)
        trainee = net.clone(max_batch=256)
        r = _rounds(
            {
                "layer_statistics": lambda net=net, X=X, y=y: layer_statistics(net, X, y),
                "train_step_256": lambda t=trainee, X=X, y=y, opt=opt: t.train_step(X, y, opt),
            },
            rounds,
        )
        out["-".join(map(str, sizes))] = r
    return out


def bench_landscape() -> dict:
    from engine.batches import EvalSet
    from engine.prepare import prepare_data

    cfg = from_dict({"data": {"source": "builtin:moons", "n_samples": 1000}, "model": {"hidden": [64, 64]}})
    data = prepare_data(cfg)
    net = _net([2, 64, 64, 2])
    from engine.dataset import ArraySet

    X = np.concatenate([data.train.X, data.dev.X, data.test.X])
    y = np.concatenate([data.train.y, data.dev.y, data.test.y])
    ev = EvalSet(ArraySet(X, y), data.norm_mean, data.norm_std)
    t = time.perf_counter()
    loss_slice_1d(net, {"loss": ev}, points=21, span=1.0, n_directions=3)
    return {"seconds": round(time.perf_counter() - t, 3), "evaluations": 63, "samples": len(y)}


def bench_gradient_check(big: bool) -> dict:
    out = {}
    shapes = [[2, 64, 64, 2], [784, 64, 10]] + ([[784, 512, 256, 10]] if big else [])
    for sizes in shapes:
        net = _net(sizes)
        rng = np.random.default_rng(0)
        X = rng.standard_normal((32, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], 32)
        t = time.perf_counter()
        result = check_network(net, X, y)
        out["-".join(map(str, sizes))] = {
            "seconds": round(time.perf_counter() - t, 3),
            "relative_difference": result["relative_difference"],
        }
    return out


SECTIONS = ("boundary", "training_with_view", "depth_lab", "layer_statistics", "landscape", "gradient_check")


def run(
    rounds: int = 15,
    epochs: int = 150,
    hz: float = 10.0,
    big: bool = False,
    blas_threads: int | None = None,
    only: tuple[str, ...] = SECTIONS,
    repeats: int = 5,
) -> dict:
    out: dict = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cores": blas.cpu_count(),
            "blas_threads": blas_threads or blas.threads(),
        }
    }
    if "boundary" in only:
        out["boundary"] = bench_boundary(rounds)
    if "training_with_view" in only:
        out["training_with_view"] = bench_training_with_view(epochs, hz, repeats)
    with blas.limited(blas_threads):
        if "depth_lab" in only:
            out["depth_lab"] = bench_depth_lab(rounds)
        if "layer_statistics" in only:
            out["layer_statistics"] = bench_layer_statistics(rounds)
        if "landscape" in only:
            out["landscape"] = bench_landscape()
        if "gradient_check" in only:
            out["gradient_check"] = bench_gradient_check(big)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--blas-threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs of the training comparison")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS, help="sections to run")
    parser.add_argument("--big", action="store_true", help="also check 784-512-256-10 (about a minute)")
    args = parser.parse_args()
    result = run(
        args.rounds, args.epochs, args.hz, args.big, args.blas_threads, tuple(args.only), args.repeats
    )
    print(json.dumps(result, indent=2))
