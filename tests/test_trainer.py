"""Trainer and batch pipeline: learning, regularization, determinism, stopping, pausing, batches."""

from __future__ import annotations

import json
import threading
import time
import warnings

import numpy as np
import pytest

from engine import batches as batches_mod
from engine import trainer as trainer_mod
from engine.batches import BatchPipeline, EvalSet, to_network_input
from engine.config import from_dict
from engine.dataset import ArraySet, PreparedData
from engine.experiment import run_experiment
from engine.normalization import fit_standardizer
from engine.prepare import prepare_data, transform
from engine.trainer import METRIC_KEYS, Trainer

TIMING = ("seconds", "samples_per_sec")


def moons_cfg(**sections):
    raw = {
        "data": {"source": "builtin:moons", "n_samples": 300, "noise": 0.2, "split": [0.6, 0.2, 0.2]},
        "model": {"hidden": [16, 8]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 8, "batch_size": 32, "seed": 0},
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return from_dict(raw)


def image_data(n=90, shape=(6, 6, 3), n_classes=3, seed=0) -> PreparedData:
    """Hand-made uint8 NHWC image sets (a class-dependent brightness so they can be learned)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = (
        rng.integers(0, 120, size=(n, *shape)).astype(np.uint8)
        + (y * 60).astype(np.uint8)[:, None, None, None]
    )
    tr, dv, te = np.arange(0, n, 3), np.arange(1, n, 3), np.arange(2, n, 3)
    mean, std = fit_standardizer(X[tr], is_image=True)
    return PreparedData(
        train=ArraySet(X[tr], y[tr]),
        dev=ArraySet(X[dv], y[dv]),
        test=ArraySet(X[te], y[te]),
        classes=[f"c{i}" for i in range(n_classes)],
        input_shape=shape,
        norm_mean=mean,
        norm_std=std,
    )


def no_timing(record) -> dict:
    d = record.metrics_dict()
    for key in TIMING:
        d.pop(key)
    return d


# ------------------------------------------------------------------ learning and regularization


def test_he_initialization_learns_circles_where_zeros_stays_at_chance():
    results = {}
    for init in ("he", "zeros"):
        cfg = from_dict(
            {
                "data": {"source": "builtin:circles", "n_samples": 400, "noise": 0.05, "split": [0.7, 0.3]},
                "model": {"hidden": [10, 5], "init": init},
                "optimizer": {"name": "adam", "lr": 0.02},
                "training": {"epochs": 60, "batch_size": 32},
            }
        )
        records = list(Trainer(cfg, prepare_data(cfg)).run())
        results[init] = records[-1].train_acc
    assert results["he"] > 0.9
    assert abs(results["zeros"] - 0.5) < 0.05  # symmetric weights: every unit learns the same thing


def test_l2_lowers_the_final_weight_norm():
    norms = {}
    for l2 in (0.0, 2.0):
        cfg = moons_cfg(regularization={"l2": l2}, training={"epochs": 15})
        records = list(Trainer(cfg, prepare_data(cfg)).run())
        norms[l2] = records[-1].weight_norm
    assert norms[2.0] < 0.8 * norms[0.0]


def test_weight_decay_in_training_steps_divides_by_the_training_set_size():
    # All-zero inputs make the data gradient of W1 exactly 0 (dW1 = Xᵀ·dZ1), so plain SGD
    # changes W1 only by the L2 term: W1 ← W1·(1 − lr·λ/m) per step, m = 20 training
    # examples. Two mini-batches of 10: factor 0.9² = 0.81 (0.8² = 0.64 if m were the batch).
    y = np.arange(40) % 2
    X = np.zeros((40, 2))
    data = PreparedData(
        train=ArraySet(X[:20], y[:20]),
        dev=ArraySet(X[20:], y[20:]),
        test=ArraySet(X[:0], y[:0]),
        classes=["a", "b"],
        input_shape=(2,),
        norm_mean=np.zeros(2, np.float32),
        norm_std=np.ones(2, np.float32),
    )
    cfg = from_dict(
        {
            "model": {"hidden": [3]},
            "regularization": {"l2": 4.0},
            "optimizer": {"name": "sgd", "lr": 0.5},
            "training": {"epochs": 1, "batch_size": 10, "dtype": "float64"},
        }
    )
    trainer = Trainer(cfg, data)
    W1 = trainer.network.W[0].copy()
    records = list(trainer.run())
    assert trainer.steps == 2
    np.testing.assert_allclose(trainer.network.W[0], 0.81 * W1, rtol=1e-12)
    assert records[-1].penalty == pytest.approx(
        4.0 / (2 * 20) * sum(float(np.sum(w**2)) for w in trainer.network.W), rel=1e-12
    )


def test_record_metrics_match_independent_computation():
    cfg = moons_cfg(regularization={"l2": 0.5, "keep_prob": 0.8}, training={"epochs": 3})
    data = prepare_data(cfg)
    trainer = Trainer(cfg, data)
    records = list(trainer.run())
    last = records[-1]
    net = trainer.network
    assert [r.epoch for r in records] == [1, 2, 3]
    assert last.stop_reason == "completed"
    # inference-mode figures on un-augmented, normalized data (PREP's transform as the reference)
    loss, acc = net.evaluate(
        transform(data.dev.X, data.input_shape, data.norm_mean, data.norm_std), data.dev.y
    )
    assert last.dev_loss == pytest.approx(loss, rel=1e-5)
    assert last.dev_acc == pytest.approx(acc)
    loss, acc = net.evaluate(
        transform(data.train.X, data.input_shape, data.norm_mean, data.norm_std), data.train.y
    )
    assert last.train_loss == pytest.approx(loss, rel=1e-5)
    W = np.concatenate([w.ravel().astype(np.float64) for w in net.W])
    m = len(data.train)
    assert last.penalty == pytest.approx(0.5 / (2 * m) * np.sum(W**2), rel=1e-5)
    assert last.weight_norm == pytest.approx(np.sqrt(np.sum(W**2)), rel=1e-5)
    assert len(last.grad_norms) == 3
    assert last.lr == pytest.approx(0.01)
    assert last.cost > last.penalty > 0
    assert set(last.metrics_dict()) == set(METRIC_KEYS)


# ------------------------------------------------------------------ determinism


def test_same_seed_same_metrics_different_seed_differs():
    def run(seed):
        cfg = moons_cfg(regularization={"keep_prob": 0.7}, training={"epochs": 4, "seed": seed})
        return [no_timing(r) for r in Trainer(cfg, prepare_data(cfg)).run()]

    a, b, c = run(3), run(3), run(4)
    assert a == b
    assert a != c


# ------------------------------------------------------------------ full batch


def test_full_batch_takes_one_gradient_step_per_epoch():
    cfg = moons_cfg(optimizer={"name": "sgd", "lr": 0.5}, training={"epochs": 3, "batch_size": 100_000})
    data = prepare_data(cfg)
    trainer = Trainer(cfg, data)
    initial = trainer.network.get_params()
    first = next(trainer.run())
    assert trainer.pipeline.n_batches == 1
    assert trainer.steps == 1 and trainer.optimizer.t == 1
    # one full-batch gradient-descent step from the same initial weights, done by hand
    from engine.network import MLP

    ref = MLP(trainer.layer_sizes, "relu", dtype="float32", max_batch=len(data.train))
    ref.set_params(initial)
    F = to_network_input(data.train.X, data.norm_mean, data.norm_std)
    ref.loss_and_grad(F, data.train.y)
    expected = initial - np.float32(0.5) * ref.grads
    np.testing.assert_allclose(trainer.network.params, expected, rtol=1e-4, atol=1e-6)
    assert first.cost == pytest.approx(ref.evaluate(F, data.train.y)[0], rel=1e-5)


# ------------------------------------------------------------------ divergence


def test_huge_learning_rate_diverges_with_advice_and_valid_files(tmp_path):
    cfg = moons_cfg(
        model={"hidden": [32, 32], "init_scale": 10.0},
        optimizer={"name": "sgd", "lr": 100.0},
        training={"epochs": 20},
    )
    exp = run_experiment(cfg, tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning spam from overflow
        records = list(exp.records())
    last = records[-1]
    assert last.stop_reason == "diverged"
    assert len(records) < 20
    assert "learning rate" in last.message and "init_scale" in last.message and "He" in last.message
    assert not np.isfinite(last.cost)

    def no_constants(name):
        raise AssertionError(f"non-JSON constant {name}")

    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(records)
    for line in lines:
        json.loads(line, parse_constant=no_constants)
    assert json.loads(lines[-1])["cost"] is None
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(), parse_constant=no_constants)
    assert summary["stop_reason"] == "diverged"
    with np.load(tmp_path / "run" / "model.npz", allow_pickle=False) as npz:
        assert all(np.isfinite(npz[k]).all() for k in npz.files if k[0] in "Wb")


# ------------------------------------------------------------------ cancel and pause


class CallCounter:
    def __init__(self, stop_after: int):
        self.calls = 0
        self.stop_after = stop_after

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls > self.stop_after


def test_should_stop_cancels_and_keeps_the_last_completed_epoch():
    cfg = moons_cfg(training={"epochs": 10, "batch_size": 30})  # 180 training samples: 6 batches per epoch
    data = prepare_data(cfg)
    trainer = Trainer(cfg, data, should_stop=CallCounter(6 * 2 + 3))  # stops during epoch 3
    records = list(trainer.run())
    assert [r.epoch for r in records] == [1, 2]
    assert all(r.stop_reason is None for r in records)
    assert trainer.result.stop_reason == "cancelled"
    assert "epoch 3" in trainer.result.message
    assert trainer.result.final_metrics == records[-1].metrics_dict()
    # the weights are exactly those of a 2-epoch run with the same seed
    two = Trainer(moons_cfg(training={"epochs": 2, "batch_size": 30}), data)
    list(two.run())
    np.testing.assert_array_equal(trainer.network.params, two.network.params)


def test_pause_blocks_between_batches_and_resume_finishes():
    cfg = moons_cfg(training={"epochs": 3})
    trainer = Trainer(cfg, prepare_data(cfg))
    records = []
    trainer.pause()
    worker = threading.Thread(target=lambda: records.extend(trainer.run()))
    worker.start()
    time.sleep(0.3)
    assert trainer.steps == 0 and records == []  # blocked before the first mini-batch
    assert worker.is_alive()
    t_resume = time.perf_counter()
    trainer.resume()
    worker.join(10)
    assert not worker.is_alive()
    assert [r.epoch for r in records] == [1, 2, 3]
    assert records[-1].stop_reason == "completed"
    # the pause is not training time: epoch 1 took far less than the 0.3 s it waited
    # (it waited from its first check, just after the thread started, to resume: ~0.3 s)
    assert trainer.paused_seconds >= 0.25
    assert records[0].seconds < time.perf_counter() - t_resume + 0.05


def test_should_stop_is_honoured_while_paused():
    cfg = moons_cfg(training={"epochs": 3})
    stop = threading.Event()
    trainer = Trainer(cfg, prepare_data(cfg), should_stop=stop.is_set)
    trainer.pause()
    records = []
    worker = threading.Thread(target=lambda: records.extend(trainer.run()))
    worker.start()
    time.sleep(0.1)
    stop.set()
    worker.join(5)
    assert not worker.is_alive()
    assert records == [] and trainer.result.stop_reason == "cancelled"


def test_augmentation_on_2d_data_is_ignored_with_a_note():
    cfg = moons_cfg(augment={"hflip": 0.5}, training={"epochs": 2})
    records = list(Trainer(cfg, prepare_data(cfg)).run())
    assert "ignored" in records[0].message and "image" in records[0].message
    assert records[1].message == "trained all 2 epochs"


def test_large_training_sets_measure_train_metrics_on_a_fixed_subset(monkeypatch):
    monkeypatch.setattr(trainer_mod, "TRAIN_EVAL_MAX", 50)
    cfg = moons_cfg(training={"epochs": 1})
    trainer = Trainer(cfg, prepare_data(cfg))
    assert len(trainer._train_eval) == 50


# ------------------------------------------------------------------ batch pipeline


@pytest.mark.parametrize("prenormalized", [True, False])
def test_vector_batches_are_a_permutation_normalized_with_given_mean_and_std(monkeypatch, prenormalized):
    if not prenormalized:  # a "large" set: gathered and normalized batch by batch
        monkeypatch.setattr(batches_mod, "_PRENORMALIZE_BYTES", 0)
    rng = np.random.default_rng(1)
    X = rng.normal(3.0, 2.0, size=(50, 4))
    y = np.arange(50)  # unique labels identify the rows
    mean = np.array([1.0, -2.0, 0.5, 3.0])
    std = np.array([2.0, 0.5, 4.0, 1.0])
    pipe = BatchPipeline(ArraySet(X, y), 16, mean, std, np.random.default_rng(0))
    assert (pipe._Xn is not None) == prenormalized
    seen = []
    for xb, yb in pipe.epoch():
        assert xb.dtype == np.float32 and xb.shape == (len(yb), 4)
        np.testing.assert_allclose(xb, (X[yb] - mean) / std, rtol=1e-6, atol=1e-6)
        seen.extend(yb.tolist())
    assert sorted(seen) == list(range(50)) and seen != list(range(50))
    assert [len(b[1]) for b in pipe.epoch()] == [16, 16, 16, 2]


def test_image_batches_scale_by_255_then_normalize():
    data = image_data()
    X, y = data.train.X, np.arange(len(data.train))
    pipe = BatchPipeline(ArraySet(X, y), 7, data.norm_mean, data.norm_std, np.random.default_rng(0))
    for xb, yb in pipe.epoch():
        expected = (X[yb].reshape(len(yb), -1) / 255.0 - data.norm_mean) / data.norm_std
        np.testing.assert_allclose(xb, expected, rtol=1e-5, atol=1e-5)


def _augmented_batches(seed_shuffle, seed_aug):
    from engine.augment import Augmenter
    from engine.config import AugmentConfig

    data = image_data()
    aug = Augmenter(
        AugmentConfig(hflip=0.5, noise_std=0.05, brightness=0.1),
        data.input_shape,
        np.random.default_rng(seed_aug),
    )
    pipe = BatchPipeline(
        ArraySet(data.train.X, np.arange(len(data.train))),
        8,
        data.norm_mean,
        data.norm_std,
        np.random.default_rng(seed_shuffle),
        augmenter=aug,
    )
    assert pipe.augmenting
    return [(xb.copy(), yb.copy()) for _ in range(2) for xb, yb in pipe.epoch()], data


def test_augmented_batches_are_reproducible_and_really_augmented():
    before = threading.active_count()
    a, data = _augmented_batches(0, 1)
    b, _ = _augmented_batches(0, 1)
    c, _ = _augmented_batches(0, 2)
    assert threading.active_count() == before  # producer threads ended with their epochs
    assert len(a) == 2 * 4
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)
    assert any(not np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))
    # augmented, so not the plain normalized images
    plain = to_network_input(data.train.X, data.norm_mean, data.norm_std)
    xa, ya = a[0]
    assert not np.allclose(xa, plain[ya], atol=1e-3)


def test_stopping_an_augmented_epoch_early_ends_its_thread():
    from engine.augment import Augmenter
    from engine.config import AugmentConfig

    data = image_data()
    before = threading.active_count()
    aug = Augmenter(AugmentConfig(hflip=1.0), data.input_shape, np.random.default_rng(0))
    pipe = BatchPipeline(
        data.train, 4, data.norm_mean, data.norm_std, np.random.default_rng(0), augmenter=aug
    )
    batches = pipe.epoch()
    next(batches)
    batches.close()
    assert threading.active_count() == before


def test_image_training_with_augmentation_evaluates_dev_without_augmentation():
    data = image_data()
    cfg = from_dict(
        {
            "model": {"hidden": [8]},
            "augment": {"hflip": 0.5, "noise_std": 0.1},
            "optimizer": {"lr": 0.01},
            "training": {"epochs": 3, "batch_size": 8},
        }
    )
    trainer = Trainer(cfg, data)
    assert trainer.pipeline.augmenting
    records = list(trainer.run())
    net = trainer.network
    for part, loss_key, acc_key in (
        (data.dev, "dev_loss", "dev_acc"),
        (data.train, "train_loss", "train_acc"),
    ):
        F = transform(part.X, data.input_shape, data.norm_mean, data.norm_std)
        loss, acc = net.evaluate(F, part.y)
        assert getattr(records[-1], loss_key) == pytest.approx(loss, rel=1e-5)
        assert getattr(records[-1], acc_key) == pytest.approx(acc)
    # EvalSet chunks give the same figures as one pass
    whole = EvalSet(data.dev, data.norm_mean, data.norm_std).evaluate(net)
    chunked = EvalSet(data.dev, data.norm_mean, data.norm_std, chunk_size=7)
    chunked._cached = None
    assert chunked.evaluate(net) == pytest.approx(whole, rel=1e-5)


def test_empty_dev_set_turns_early_stopping_off_with_a_note():
    data = image_data()
    data = PreparedData(
        data.train,
        ArraySet(data.dev.X[:0], data.dev.y[:0]),
        data.test,
        data.classes,
        data.input_shape,
        data.norm_mean,
        data.norm_std,
    )
    cfg = from_dict(
        {
            "model": {"hidden": [4]},
            "training": {"epochs": 4, "batch_size": 16},
            "early_stopping": {"enabled": True, "patience": 1},
        }
    )
    trainer = Trainer(cfg, data)
    records = list(trainer.run())
    assert len(records) == 4 and records[-1].stop_reason == "completed"
    assert "dev set is empty" in records[0].message
    assert records[-1].metrics_dict()["dev_loss"] is None and trainer.result.best_epoch == 0


def test_a_run_whose_weight_gradients_are_all_zero_ends_with_a_warning():
    # sgd with lr 10 and 10x initial weights: the first step explodes, every ReLU dies, and
    # the run would otherwise "complete" at 50 % accuracy without a word
    cfg = from_dict(
        {
            "data": {"source": "builtin:moons", "n_samples": 600, "noise": 0.3},
            "model": {"init_scale": 10},
            "optimizer": {"name": "sgd", "lr": 10},
            "training": {"epochs": 5},
        }
    )
    trainer = Trainer(cfg, prepare_data(cfg))
    records = list(trainer.run())
    last = records[-1]
    assert last.stop_reason == "completed"
    assert all(g == 0 for g in last.grad_norms)
    assert "every weight gradient was 0" in last.message and "smaller learning rate" in last.message
    # a healthy run gets no such warning
    ok = moons_cfg(training={"epochs": 3})
    assert "gradient was 0" not in list(Trainer(ok, prepare_data(ok)).run())[-1].message
