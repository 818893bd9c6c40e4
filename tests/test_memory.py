"""The memory budget: estimates, limits, refusals before allocating, training under an
address-space cap, and the peak anonymous memory of an epoch on a memory-mapped cache."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.memory_bench import write_generated_source
from engine import memory
from engine.config import from_dict
from engine.errors import InputError
from engine.memory import MemoryLimit, RunTooLarge, check_run_memory, estimate_run_memory
from engine.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
GB = 2**30


def _run(args: list[str], env_extra: dict | None = None) -> tuple[int, str, str]:
    """Run a Python child in the repository root; returns (exit status, stdout, stderr)."""
    env = dict(os.environ, **(env_extra or {}))
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


# Runs main.py with its arguments and writes the process's peak RSS (VmHWM, kB) to a file at
# exit. Measured inside the child: getrusage's ru_maxrss of a child counts the parent's RSS at
# fork time (Linux keeps the high-water mark across exec), so from outside it would be pytest's.
_MAIN_WITH_PEAK = """
import atexit, runpy, sys
_path = sys.argv[1]
def _peak():
    with open('/proc/self/status') as fh:
        kb = next(line.split()[1] for line in fh if line.startswith('VmHWM'))
    with open(_path, 'w') as out:
        out.write(kb)
atexit.register(_peak)
sys.argv = ['main.py'] + sys.argv[2:]
runpy.run_path('main.py', run_name='__main__')
"""


# ---------------------------------------------------------------- the estimate


def test_estimate_counts_the_model_the_trainer_allocates():
    cfg = from_dict(
        {
            "data": {"source": "builtin:moons", "n_samples": 400},
            "model": {"hidden": [16, 8]},
            "early_stopping": {"enabled": True},
            "training": {"batch_size": 32},
        }
    )
    from engine.prepare import prepare_data

    data = prepare_data(cfg)
    trainer = Trainer(cfg, data)
    net, opt = trainer.network, trainer.optimizer
    n_params = (2 * 16 + 16 * 8 + 8 * 2) + (16 + 8 + 2)
    assert net.params.size == n_params
    held = net.params.nbytes + net.grads.nbytes + opt._tmp.nbytes + opt._m.nbytes + opt._v.nbytes
    # plus what the trainer copies later: last finite weights (and one in flight), best
    # weights (early stopping restores), the model.npz buffer
    est = estimate_run_memory(cfg, 2, 2, len(data.train), len(data.dev), 0, n_test=len(data.test))
    assert est.parts["model"] == held + 4 * n_params * 4 == 9 * n_params * 4
    # the per-batch network buffers: activation, multiplier, keep and live mask per hidden unit
    hidden_buffers = sum(a.nbytes for a in net._a[:-1] + net._mult + net._keep + net._live)
    assert hidden_buffers == 32 * (16 + 8) * (4 + 4 + 1 + 1)
    assert (
        est.parts["batches"] >= hidden_buffers + trainer.pipeline.buffer_bytes - trainer.pipeline._perm.nbytes
    )
    assert est.total == sum(est.parts.values())


def test_refusal_names_the_estimate_its_parts_and_the_limit():
    cfg = from_dict({"model": {"hidden": [4096, 4096]}})
    limit = MemoryLimit(300 * 2**20, "available")
    est = estimate_run_memory(cfg, 3072, 10, 1000, 200, 0, is_image=True)
    with pytest.raises(RunTooLarge) as info:
        check_run_memory(cfg, 3072, 10, 1000, 200, 0, is_image=True, limit=limit)
    msg = str(info.value)
    assert isinstance(info.value, InputError) and "\n" not in msg
    assert msg.startswith(f"this run needs about {memory.format_bytes(est.total)} of memory (model ")
    assert "more than the 300 MB available" in msg and msg.endswith("reduce model.hidden")
    # (3072·4096 + 4096·4096 + 4096·10) weights + biases, 8 float32 copies with Adam
    n = 3072 * 4096 + 4096 * 4096 + 4096 * 10 + 4096 + 4096 + 10
    assert est.parts["model"] == 8 * 4 * n
    assert (
        check_run_memory(cfg, 3072, 10, 1000, 200, 0, is_image=True, limit=MemoryLimit(10 * GB, "x")) == est
    )


def test_data_summary_reads_folders_and_headers_without_loading(tmp_path):
    root = tmp_path / "pre"
    for part, n in (("train", 6), ("test", 2)):
        for cls in ("a", "b"):
            (root / part / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (5, 5)).save(root / part / cls / f"{i}.png")
    cfg = from_dict({"data": {"source": str(root), "image_size": [16, 8], "split": [0.6, 0.2, 0.2]}})
    s = memory.summarize_config(cfg)
    assert (s.main.n, s.main.sample_shape, s.main.n_classes) == (16, (16, 8, 3), 2)
    assert s.main.parts == {"train": 12, "dev": 0, "test": 4}
    # no dev part: 25 % of train (0.2 / (0.6 + 0.2)) is carved, as prepare does
    assert (s.n_train, s.n_dev, s.n_test) == (9, 3, 4)
    assert s.in_memory_bytes == 0 and s.main.on_disk == 16 * 16 * 8 * 3
    gen = memory.summarize_config(from_dict({"data": {"source": "builtin:spiral", "n_samples": 1000}}))
    assert (gen.n_train, gen.n_dev, gen.n_test, gen.n_features) == (600, 200, 200, 2)
    assert gen.in_memory_bytes == 1000 * 64
    X = np.zeros((30, 7, 7), np.uint8)
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(30) % 2)
    npz = memory.summarize_source(str(tmp_path / "d.npz"), from_dict({}).data)
    assert npz.n == 30 and npz.sample_shape == (32, 32, 3) and npz.in_memory == 2 * X.nbytes + 30 * 3072


def test_a_folder_too_big_for_the_cache_disk_is_refused_and_a_cached_one_is_not(tmp_path, monkeypatch):
    from collections import namedtuple

    from engine.images import load_source

    root = tmp_path / "src"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (6, 6), (i, 0, 0)).save(root / cls / f"{i}.png")
    (root / "b" / "broken.png").write_bytes(b"")
    monkeypatch.setenv("REGLAB_CACHE_DIR", str(tmp_path / "cache"))
    cfg = from_dict({"data": {"source": str(root), "image_size": [64, 64]}})
    s = memory.summarize_config(cfg)
    assert s.main.n == 11 and s.main.to_write == 11 * 64 * 64 * 3
    usage = namedtuple("usage", "total used free")
    real_usage = memory.shutil.disk_usage
    monkeypatch.setattr(memory.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 100_000, 100_000))
    with pytest.raises(
        RunTooLarge, match=r"needs about 132 kB of disk for the image cache, more than the 97.7 kB free"
    ):
        memory.check_config_memory(cfg)
    monkeypatch.setattr(memory.shutil, "disk_usage", real_usage)
    load_source(str(root), image_size=(64, 64))  # decoded into the cache: nothing left to write
    s = memory.summarize_config(cfg)
    assert s.main.n == 10 and s.main.to_write == 0  # the cached entry's exact count (broken file skipped)
    monkeypatch.setattr(memory.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 100_000, 100_000))
    memory.check_config_memory(cfg)


# ---------------------------------------------------------------- limits


def test_memory_limit_under_an_address_space_cap_names_it():
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
        "from engine.memory import memory_limit, can_map; m = memory_limit();"
        "print(m.bytes, m.name, can_map(100 << 20), can_map(900 << 20))"
    )
    rc, out, err = _run(["-c", code])
    assert rc == 0, err
    value, rest = out.split(" ", 1)
    assert 0 < int(value) < GB and "RLIMIT_AS" in rest and rest.split()[-2:] == ["True", "False"]


# ---------------------------------------------------------------- refused before allocating


def _write_config(path: Path, raw: dict) -> Path:
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture
def large_folder(tmp_path):
    """2,000 tiny PNGs in two classes (one encoded image, copied)."""
    from io import BytesIO

    buf = BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, format="PNG")
    root = tmp_path / "folder"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(1000):
            (root / cls / f"{i:04d}.png").write_bytes(buf.getvalue())
    return root


@pytest.mark.parametrize(
    "case",
    ["n_samples 1e9", "twenty layers of 8192", "huge image size on a large folder"],
)
def test_runs_that_cannot_fit_are_refused_at_once_without_allocating(tmp_path, request, case):
    raw = {
        "n_samples 1e9": {"data": {"source": "builtin:moons", "n_samples": 10**9}},
        "twenty layers of 8192": {"model": {"hidden": [8192] * 20}},
        "huge image size on a large folder": {
            "data": {"source": "FOLDER", "image_size": [1024, 1024]},
            "model": {"hidden": [512]},
            "training": {"batch_size": 256},
        },
    }[case]
    if raw.get("data", {}).get("source") == "FOLDER":
        raw["data"]["source"] = str(request.getfixturevalue("large_folder"))
    field = {"n_samples 1e9": "data.n_samples", "twenty layers of 8192": "model.hidden"}.get(
        case, "model.hidden"
    )
    cfg_path = _write_config(tmp_path / "cfg.json", raw)
    cache_dir = tmp_path / "cache"
    peak_file = tmp_path / "peak_kb"
    rc, out, err = _run(
        [
            "-c",
            _MAIN_WITH_PEAK,
            str(peak_file),
            "train",
            "--config",
            str(cfg_path),
            "--out",
            str(tmp_path / "run"),
        ],
        {"REGLAB_CACHE_DIR": str(cache_dir)},
    )
    max_rss_kb = int(peak_file.read_text())
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    m = re.fullmatch(
        r"error: this run needs about ([\d.]+) GB of memory \(model .*\), more than the ([\d.]+) GB "
        r"(available|free under [^;]+); reduce (.+)",
        lines[0],
    )
    assert m, lines[0]
    needed, limit = float(m.group(1)), float(m.group(2))
    assert needed > limit and abs(limit - memory.memory_limit().bytes / GB) < 2  # the machine's limit
    assert m.group(4) == field
    assert max_rss_kb < 200 * 1024  # nothing large was allocated: generation or a model would be GBs
    assert not (tmp_path / "run").exists() and not cache_dir.exists()  # nothing decoded or written
    # and the check itself is quick (the generation or decoding it spares takes minutes)
    t0 = time.perf_counter()
    with pytest.raises(RunTooLarge):
        memory.check_config_memory(from_dict(raw))
    assert time.perf_counter() - t0 < 5.0  # generous on a loaded machine: what it spares takes minutes


def test_loading_refuses_data_that_cannot_be_generated_before_generating():
    import tracemalloc

    from engine.prepare import load_sources

    data = from_dict({"data": {"source": "builtin:spiral", "n_samples": 10**9}}).data
    tracemalloc.start()
    try:
        with pytest.raises(
            RunTooLarge, match=r"loading builtin:spiral \(1,000,000,000 generated samples\) needs about"
        ):
            load_sources(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def test_a_run_on_prepared_data_is_refused_before_the_model_is_built(tmp_path):
    from engine.experiment import run_experiment
    from engine.prepare import prepare_data

    data = prepare_data(from_dict({"data": {"n_samples": 200}}))
    cfg = from_dict({"data": {"n_samples": 200}, "model": {"hidden": [8192] * 20}})
    exp = run_experiment(cfg, tmp_path / "run", data=data)
    with pytest.raises(RunTooLarge, match="reduce model.hidden"):
        next(iter(exp.records()))
    assert exp.trainer is None


# ---------------------------------------------------------------- larger than the cap, and the budget


def test_a_dataset_larger_than_an_address_space_cap_trains(tmp_path):
    cache_dir = tmp_path / "cache"
    n, shape = 50_000, (64, 64, 3)  # 614 MB of uint8 images
    source = write_generated_source(tmp_path / "data", n, image_shape=shape, n_classes=3, cache_dir=cache_dir)
    size = n * int(np.prod(shape))
    cap = 450 * 2**20
    assert cap < size
    cfg = _write_config(
        tmp_path / "cfg.json",
        {
            "data": {"source": source, "image_size": [64, 64]},
            "model": {"hidden": [16]},
            "training": {"epochs": 1, "batch_size": 64},
        },
    )
    code = (
        "import resource, sys, runpy;"
        f"resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}));"
        "import numpy as np;"
        # mapping the whole cache file must fail under this cap, else the test proves nothing
        "from engine.images import cache;"
        f"d = [p for p in cache.cache_folder().glob('images-*.npy')][0];"
        "ok = True\n"
        "try:\n    np.load(d, mmap_mode='r')\nexcept (OSError, ValueError, MemoryError):\n    ok = False\n"
        "assert not ok, 'the cap does not stop mapping the file';"
        f"sys.argv = ['main.py', 'train', '--config', {str(cfg)!r}, '--out', {str(tmp_path / 'run')!r}];"
        "runpy.run_path('main.py', run_name='__main__')"
    )
    rc, out, err = _run(["-c", code], {"REGLAB_CACHE_DIR": str(cache_dir)})
    assert rc == 0, err[-2000:]
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 1 and metrics[0]["dev_acc"] > 0.9
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "completed"
    assert any("streamed from the disk cache in shuffled chunks" in note for note in summary["notes"])


def test_an_epoch_on_the_100k_cache_stays_within_the_budget(tmp_path):
    """Issue 12: 100,000 32×32 RGB images (307 MB as uint8): peak anonymous memory ≤ 350 MB."""
    cache_dir = tmp_path / "cache"
    source = write_generated_source(tmp_path / "data", 100_000, cache_dir=cache_dir)
    rc, out, err = _run(
        ["benchmarks/memory_bench.py", "--child", "mapped", source, str(tmp_path / "run")],
        {"REGLAB_CACHE_DIR": str(cache_dir)},
    )
    assert rc == 0, err[-2000:]
    r = json.loads(out.strip().splitlines()[-1])
    dataset = 100_000 * 32 * 32 * 3
    assert r["x_type"] == "memmap" and r["samples"] > 100  # the sampler ran through the epoch
    assert r["peak_anon"] <= 350 * 2**20
    growth = r["peak_anon"] - r["baseline_anon"]
    assert growth < dataset / 4  # the images are not in anonymous memory (they would be 307 MB)
    assert r["estimate"] / 2 < growth < 2 * r["estimate"]  # the estimate describes the run
    assert r["dev_acc"] > 0.9
