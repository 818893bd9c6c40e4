"""Data throughput: decoding an image folder, the disk cache, and augmentation.

Run:  python benchmarks/data_throughput.py [--images 2000] [--repeats 3]

From one run:

- images/s decoding ``--images`` generated 64×64 PNGs to 32×32 RGB: one thread, a thread
  pool of 2 (chunks of files, and one task per file), and the project's loader (a process
  pool of 2 fed chunks; pool start-up included), with the ratios to one thread;
- start-up of a 2-worker process pool with the ``forkserver`` and ``spawn`` contexts (first
  pool, and a second one while the fork server is up);
- a first ``load_source`` of the folder (decode + cache write) against the second one
  (cache hit), and their ratio (target ≥ 20×);
- then ``benchmarks.augment_bench.run()`` when that module exists (augmentation images/s
  and the epoch-time ratio with augmentation on vs off).

Throughputs are the best of ``--repeats`` rounds: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.images import load_source  # noqa: E402
from engine.images.loader import SMALL_JOB, decode_files, start_method  # noqa: E402
from engine.images.shapes import make_shapes  # noqa: E402


def write_pngs(folder: Path, n: int) -> list[str]:
    sd = make_shapes(n, 0.2, np.random.default_rng(0), n_classes=3, image_size=(64, 64))
    paths = []
    for name in sd.classes:
        (folder / name).mkdir(parents=True)
    for i, (img, label) in enumerate(zip(sd.X, sd.y)):
        p = folder / sd.classes[label] / f"{i:05d}.png"
        Image.fromarray(img).save(p)
        paths.append(str(p))
    return sorted(paths)


def interleaved_rates(
    paths: list[str], size, color, modes: dict[str, dict], repeats: int
) -> dict[str, float]:
    """Images/s per mode, best of ``repeats`` rounds; rounds alternate between the modes so a
    burst of load from other programs hits all of them alike. Pool start-up is included."""
    best = {name: float("inf") for name in modes}
    decode_files(paths[:50], size, color, mode="serial")  # warm up imports and caches
    for _ in range(repeats):
        for name, kwargs in modes.items():
            t0 = time.perf_counter()
            decode_files(paths, size, color, **kwargs)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: len(paths) / t for name, t in best.items()}


def _noop(x: int) -> int:
    return x


def pool_startup(method: str) -> dict:
    ctx = multiprocessing.get_context(method)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ex:
            list(ex.map(_noop, range(2)))
        times.append(time.perf_counter() - t0)
    return {"first_s": round(times[0], 3), "second_s": round(times[1], 3)}


def run(n_images: int = 2000, repeats: int = 5) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pngs"
        paths = write_pngs(folder, n_images)
        size, color = (32, 32), "rgb"
        modes = {
            "single_thread": dict(mode="serial"),
            "thread_pool_2_chunks": dict(mode="thread", workers=2),
            "thread_pool_2_per_file": dict(mode="thread", workers=2, chunk_size=1),
            "process_pool_2_chunks": dict(mode="process", workers=2),
        }
        rates = interleaved_rates(paths, size, color, modes, repeats)
        startup = {
            m: pool_startup(m)
            for m in ("forkserver", "spawn")
            if m in multiprocessing.get_all_start_methods()
        }

        cache = Path(tmp) / "cache"
        t0 = time.perf_counter()
        first = load_source(str(folder), image_size=size, color=color, cache_dir=cache)
        t1 = time.perf_counter()
        second_times = []
        for _ in range(repeats):
            t2 = time.perf_counter()
            second = load_source(str(folder), image_size=size, color=color, cache_dir=cache)
            second_times.append(time.perf_counter() - t2)
        assert np.array_equal(first.X, second.X)
        first_s, second_s = t1 - t0, min(second_times)

    result = {
        "images": n_images,
        "cpu_count": os.cpu_count(),
        "start_method": start_method(),
        "decode_images_per_sec": {name: round(r) for name, r in rates.items()},
        "speedup_vs_single": {
            name: round(r / rates["single_thread"], 2) for name, r in rates.items() if name != "single_thread"
        },
        "pool_startup": startup,
        "cache": {
            "first_load_s": round(first_s, 3),
            "cached_load_s": round(second_s, 4),
            "ratio": round(first_s / max(second_s, 1e-9), 1),
        },
    }
    try:
        from benchmarks import augment_bench
    except ImportError:
        result["augmentation"] = None
    else:
        result["augmentation"] = augment_bench.run()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    res = run(args.images, args.repeats)
    d, s, c = res["decode_images_per_sec"], res["speedup_vs_single"], res["cache"]
    print(f"decode {res['images']} 64x64 PNG -> 32x32 RGB (images/s, best of {args.repeats}):")
    print(f"  single thread            {d['single_thread']:>7}")
    print(f"  thread pool 2, chunks    {d['thread_pool_2_chunks']:>7}  ({s['thread_pool_2_chunks']}x)")
    print(f"  thread pool 2, per file  {d['thread_pool_2_per_file']:>7}  ({s['thread_pool_2_per_file']}x)")
    print(f"  process pool 2, chunks   {d['process_pool_2_chunks']:>7}  ({s['process_pool_2_chunks']}x)")
    print(f"  (the loader uses the process pool above {SMALL_JOB} files, start method {res['start_method']})")
    for method, t in res["pool_startup"].items():
        print(f"  pool start-up {method:<10} first {t['first_s']} s, second {t['second_s']} s")
    print(f"cache: first load {c['first_load_s']} s, cached {c['cached_load_s']} s, ratio {c['ratio']}x")
    if res["augmentation"] is not None:
        print("augmentation (benchmarks.augment_bench.run()):")
        print(json.dumps(res["augmentation"], indent=2))
    else:
        print("augmentation: benchmarks/augment_bench.py not available")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
