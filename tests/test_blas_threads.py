"""BLAS thread control (engine.blas) and the trainer's thread policy: which runs limit BLAS to
one thread, that the limit is lifted between epochs and after the run, and that prefetching
augmented batches or not gives the same batches."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_info

from engine import blas
from engine import trainer as trainer_mod
from engine.augment import Augmenter
from engine.batches import BatchPipeline
from engine.config import AugmentConfig, from_dict
from engine.dataset import ArraySet, PreparedData
from engine.normalization import fit_standardizer
from engine.trainer import SMALL_STEP_FLOP, Trainer, step_flop


def blas_counts() -> list[int]:
    """Thread counts of the loaded BLAS libraries, read afresh by a new threadpoolctl scan."""
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def image_data(n=60, shape=(6, 6, 3), n_classes=3, seed=0) -> PreparedData:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = (
        rng.integers(0, 120, size=(n, *shape)).astype(np.uint8)
        + (y * 60).astype(np.uint8)[:, None, None, None]
    )
    tr, dv = np.arange(0, n, 2), np.arange(1, n, 2)
    mean, std = fit_standardizer(X[tr], is_image=True)
    return PreparedData(
        train=ArraySet(X[tr], y[tr]),
        dev=ArraySet(X[dv], y[dv]),
        test=ArraySet(X[:0], y[:0]),
        classes=[f"c{i}" for i in range(n_classes)],
        input_shape=shape,
        norm_mean=mean,
        norm_std=std,
    )


def vector_data(n=40, nf=2) -> PreparedData:
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, nf)) + y[:, None]
    return PreparedData(
        train=ArraySet(X[: n // 2], y[: n // 2]),
        dev=ArraySet(X[n // 2 :], y[n // 2 :]),
        test=ArraySet(X[:0], y[:0]),
        classes=["a", "b"],
        input_shape=(nf,),
        norm_mean=np.zeros(nf),
        norm_std=np.ones(nf),
    )


def test_step_flop_counts_forward_dw_and_dx_but_not_the_input_dx():
    # 784-512-256-10 at batch 128: forward and dW 2·128·(784·512 + 512·256 + 256·10) each,
    # dX 2·128·(512·256 + 256·10)
    mac = 784 * 512 + 512 * 256 + 256 * 10
    assert step_flop([784, 512, 256, 10], 128) == 2 * 128 * (2 * mac + 512 * 256 + 256 * 10)
    assert step_flop([2, 128, 128, 2], 64) < SMALL_STEP_FLOP < step_flop([784, 512, 256, 10], 128)


def test_threads_reads_numpys_blas_and_limited_sets_and_restores_it():
    # NumPy's wheels bundle OpenBLAS (CI installs them): a BLAS must be found and controlled
    counts = blas_counts()
    assert counts, "threadpoolctl finds no BLAS in this process"
    before = blas.threads()
    assert before == max(counts) >= 1
    with blas.limited(1) as previous:
        assert previous == before
        assert blas.threads() == 1
        assert blas_counts() == [1] * len(counts)  # what the libraries themselves report
    assert blas.threads() == before and blas_counts() == counts
    with blas.limited(None) as previous:  # None leaves the count alone
        assert previous == before and blas_counts() == counts
    with blas.limited(0):  # a count below one means one
        assert blas_counts() == [1] * len(counts)
    assert blas_counts() == counts


def test_without_a_controllable_blas_nothing_is_read_or_changed(monkeypatch):
    # as with Accelerate on macOS, which threadpoolctl cannot drive: an empty controller
    empty = ThreadpoolController().select(internal_api="no-such-blas")
    assert empty.lib_controllers == []
    monkeypatch.setattr(blas, "_controller", empty)
    counts = blas_counts()
    assert blas.threads() is None
    with blas.limited(1) as previous:
        assert previous is None
        assert blas_counts() == counts


def test_small_network_trains_with_one_blas_thread_and_restores_the_setting():
    cfg = from_dict({"model": {"hidden": [8]}, "training": {"epochs": 3, "batch_size": 8}})
    trainer = Trainer(cfg, vector_data())
    assert trainer.blas_threads == 1
    before = blas.threads()
    seen = []
    original = trainer.network.train_step

    def spy(*args, **kwargs):
        seen.append(blas.threads())
        return original(*args, **kwargs)

    trainer.network.train_step = spy
    for _ in trainer.run():
        assert blas.threads() == before  # lifted while the caller holds a record
    assert seen and set(seen) == {1}
    assert blas.threads() == before


def test_large_network_keeps_the_blas_setting(monkeypatch):
    monkeypatch.setattr(trainer_mod, "SMALL_STEP_FLOP", 0.0)
    cfg = from_dict({"model": {"hidden": [8]}, "training": {"epochs": 1, "batch_size": 8}})
    assert Trainer(cfg, vector_data()).blas_threads is None


@pytest.mark.parametrize("cores", [1, 2])
def test_augmented_runs_use_one_blas_thread_and_prefetch_only_with_a_free_core(monkeypatch, cores):
    monkeypatch.setattr(trainer_mod, "SMALL_STEP_FLOP", 0.0)  # even a "large" network
    monkeypatch.setattr(blas, "cpu_count", lambda: cores)
    cfg = from_dict(
        {"model": {"hidden": [8]}, "augment": {"hflip": 0.5}, "training": {"epochs": 2, "batch_size": 8}}
    )
    trainer = Trainer(cfg, image_data())
    assert trainer.blas_threads == 1 and trainer.pipeline.augmenting
    assert trainer.pipeline.prefetching == (cores > 1)  # a free core for the producer thread
    before = threading.active_count()
    assert [r.epoch for r in trainer.run()] == [1, 2]
    assert threading.active_count() == before


def test_prefetching_or_not_gives_the_same_augmented_batches():
    data = image_data()
    runs = []
    for prefetch in (True, False):
        aug = Augmenter(
            AugmentConfig(hflip=0.5, rotate_deg=10.0, noise_std=0.05, contrast=0.2),
            data.input_shape,
            np.random.default_rng(3),
        )
        pipe = BatchPipeline(
            ArraySet(data.train.X, np.arange(len(data.train))),
            7,
            data.norm_mean,
            data.norm_std,
            np.random.default_rng(1),
            augmenter=aug,
            prefetch=prefetch,
        )
        assert pipe.prefetching == prefetch
        before = threading.active_count()
        runs.append([(xb.copy(), yb.copy()) for _ in range(2) for xb, yb in pipe.epoch()])
        assert threading.active_count() == before
    assert len(runs[0]) == len(runs[1]) == 2 * 5
    for (xa, ya), (xb, yb) in zip(*runs):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)


def test_max_blas_threads_caps_a_large_network(monkeypatch):
    # the window passes cores - 1 so its own thread keeps a core; a cap never raises the count
    monkeypatch.setattr(trainer_mod, "SMALL_STEP_FLOP", 0.0)  # every network counts as large
    cfg = from_dict({"model": {"hidden": [8]}, "training": {"epochs": 1, "batch_size": 8}})
    assert Trainer(cfg, vector_data()).blas_threads is None  # the BLAS setting in force
    assert Trainer(cfg, vector_data(), max_blas_threads=1).blas_threads == 1
    assert Trainer(cfg, vector_data(), max_blas_threads=0).blas_threads == 1
    monkeypatch.setattr(trainer_mod, "SMALL_STEP_FLOP", 1e18)  # now small: one thread already
    assert Trainer(cfg, vector_data(), max_blas_threads=8).blas_threads == 1


def test_an_uncontrollable_blas_is_assumed_to_use_every_core_so_no_producer_thread(monkeypatch):
    monkeypatch.setattr(trainer_mod, "SMALL_STEP_FLOP", 0.0)
    monkeypatch.setattr(blas, "cpu_count", lambda: 2)
    monkeypatch.setattr(blas, "_controller", ThreadpoolController().select(internal_api="no-such-blas"))
    cfg = from_dict(
        {"model": {"hidden": [8]}, "augment": {"hflip": 0.5}, "training": {"epochs": 1, "batch_size": 8}}
    )
    trainer = Trainer(cfg, image_data())
    assert trainer.pipeline.augmenting and not trainer.pipeline.prefetching
    assert [r.epoch for r in trainer.run()] == [1]


def test_the_window_process_keeps_one_blas_thread_for_itself(tmp_path):
    # reglab's window sets its own BLAS to one thread (process-wide, so checked in a child):
    # its small products must not busy-wait on the core the training process trains on
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import json, gui.app as app; from threadpoolctl import threadpool_info;"
        "app.main(['--quit-after-show']);"
        "print('BLAS', json.dumps([l['num_threads'] for l in threadpool_info() if l['user_api'] == 'blas']))"
    )
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        REGLAB_RUNS_DIR=str(tmp_path / "runs"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=root
    )
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("BLAS ")]
    assert line, out.stderr[-2000:]
    counts = json.loads(line[0][5:])
    assert counts and set(counts) == {1}
