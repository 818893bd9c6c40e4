"""Honest outcomes: runs that learned nothing, stalled or diverged say so as codes (summary.json
"warnings") and exit statuses; unusable models are refused; early stopping with no finite dev value."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.config import from_dict
from engine.dataset import ArraySet, PreparedData
from engine.errors import DataError
from engine.experiment import run_experiment
from engine.normalization import fit_standardizer
from engine.prepare import prepare_data
from engine.runs import load_model
from engine.trainer import WARNING_CODES, Trainer

ROOT = Path(__file__).resolve().parent.parent


def blobs(**sections):
    raw = {
        "data": {"source": "builtin:blobs", "n_samples": 300, "split": [0.6, 0.2, 0.2]},
        "model": {"hidden": [8]},
        "training": {"epochs": 3, "batch_size": 32},
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return raw


def cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def initial_weights(cfg) -> list[np.ndarray]:
    """The weights a run starts from, built independently of the run (a fresh Trainer, same seed)."""
    return [W.copy() for W in Trainer(cfg, prepare_data(cfg)).network.W]


def codes(summary: dict) -> list[str]:
    return [w["code"] for w in summary["warnings"]]


@pytest.mark.parametrize(
    "sections, field",
    [
        ({"optimizer": {"lr": 1e-300}}, "optimizer.lr must be in [1e-07, 100], got 1e-300"),
        ({"regularization": {"l2": 1e30}}, "regularization.l2 must be in [0, 1000], got 1e+30"),
    ],
)
def test_settings_far_outside_their_range_are_refused_before_training(tmp_path, sections, field):
    (tmp_path / "cfg.json").write_text(json.dumps(blobs(**sections)))
    proc = cli("train", "--config", tmp_path / "cfg.json", "--out", tmp_path / "run")
    assert proc.returncode == 2 and proc.stderr.strip().endswith(field)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "sections, cause",
    [
        # the smallest learning rate the config allows: plain SGD steps of ~1e-8 are below
        # float32's resolution at weights of ~0.5 (6e-8), so they round away
        (
            {"optimizer": {"name": "sgd", "lr": 1e-7}},
            "the learning rate 1e-07 is too small to move float32 weights",
        ),
    ],
)
def test_weights_that_never_change_are_reported(tmp_path, sections, cause):
    raw = blobs(**sections)
    (tmp_path / "cfg.json").write_text(json.dumps(raw))
    proc = cli("train", "--config", tmp_path / "cfg.json", "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr  # the model is usable: it is the initial one
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "completed" and codes(summary) == ["weights_unchanged"]
    assert cause in summary["warnings"][0]["message"]
    assert "warning (weights_unchanged): the weights did not change" in proc.stdout
    saved = load_model(tmp_path / "run" / "model.npz").net.W
    initial = initial_weights(from_dict(raw))
    change = np.sqrt(sum(float(((W - W0) ** 2).sum()) for W, W0 in zip(saved, initial)))
    size = np.sqrt(sum(float((W0**2).sum()) for W0 in initial))
    assert change <= 1e-6 * size  # it really learned nothing (the documented threshold)


def test_a_tiny_but_real_change_is_not_flagged():
    raw = blobs(optimizer={"name": "sgd", "lr": 1e-4})
    trainer = Trainer(from_dict(raw), prepare_data(from_dict(raw)))
    list(trainer.run())
    change = trainer.weight_change()
    assert 1e-6 < change < 1e-2  # small, well above float32 rounding
    assert "weights_unchanged" not in [w["code"] for w in trainer.result.warnings]


def test_stalled_run_has_the_code_and_the_text(tmp_path):
    # sgd with lr 10 and 10x initial weights: the first step explodes and every ReLU dies
    raw = {
        "data": {"source": "builtin:moons", "n_samples": 600, "noise": 0.3},
        "model": {"init_scale": 10},
        "optimizer": {"name": "sgd", "lr": 10},
        "training": {"epochs": 5},
    }
    exp = run_experiment(from_dict(raw), tmp_path / "run")
    records = list(exp.records())
    assert all(g == 0 for g in records[-1].grad_norms)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "completed" and "stalled" in codes(summary)
    assert [w["code"] for w in records[-1].warnings] == codes(summary)
    assert "every weight gradient was 0" in summary["message"]


def test_diverged_run_exits_3_with_the_code(tmp_path):
    raw = {
        "data": {"source": "builtin:moons", "n_samples": 300},
        "model": {"hidden": [32, 32], "init_scale": 10.0},
        "optimizer": {"name": "sgd", "lr": 100.0},
        "training": {"epochs": 20},
    }
    (tmp_path / "cfg.json").write_text(json.dumps(raw))
    proc = cli("train", "--config", tmp_path / "cfg.json", "--out", tmp_path / "run")
    assert proc.returncode == 3, proc.stderr
    assert "stopped: diverged" in proc.stdout and "Traceback" not in proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "diverged" and codes(summary)[0] == "diverged"
    assert summary["warnings"][0]["message"] == summary["message"]
    assert set(codes(summary)) <= set(WARNING_CODES)
    load_model(tmp_path / "run")  # the kept weights are finite: the model is usable


# ------------------------------------------------------------------ unusable models


@pytest.fixture(scope="module")
def model_arrays(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "run"
    list(run_experiment(from_dict(blobs()), out).records())
    with np.load(out / "model.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _poisoned(arrays, key, index, value):
    a = {k: v.copy() for k, v in arrays.items()}
    a[key].reshape(-1)[index] = value
    return a


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("W1", np.nan, "W1/b1 hold NaN or infinite values"),
        ("W2", np.inf, "W2/b2 hold NaN or infinite values"),
        ("b1", -np.inf, "W1/b1 hold NaN or infinite values"),
        ("norm_std", 0.0, "norm_std must be finite and positive"),
        ("norm_std", -1.0, "norm_std must be finite and positive"),
        ("norm_std", np.nan, "norm_std must be finite and positive"),
        ("norm_mean", np.inf, "norm_mean holds NaN or infinite values"),
    ],
)
def test_unusable_models_are_refused_and_evaluate_exits_2(model_arrays, tmp_path, key, value, needle):
    run = tmp_path / "run"
    run.mkdir()
    np.savez(run / "model.npz", **_poisoned(model_arrays, key, 1, value))
    with pytest.raises(DataError, match=needle):
        load_model(run / "model.npz")
    proc = cli("evaluate", "--run", run, "--data", "builtin:blobs")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {run / 'model.npz'}: ") and needle in lines[0]
    assert proc.stdout == ""  # no '"loss": null' result


def test_float64_weights_beyond_float32_are_refused(model_arrays, tmp_path):
    arrays = {k: v.copy() for k, v in model_arrays.items()}
    arrays["W1"] = arrays["W1"].astype(np.float64)
    arrays["W1"][0, 0] = 1e300  # finite in the file, inf in the float32 network
    np.savez(tmp_path / "model.npz", **arrays)
    with pytest.raises(DataError, match="overflow float32"):
        load_model(tmp_path / "model.npz")


def test_a_model_archive_that_unpacks_to_too_much_is_refused_from_its_headers(
    model_arrays, tmp_path, monkeypatch
):
    np.savez(tmp_path / "model.npz", **model_arrays)
    monkeypatch.setattr("engine.runs.MODEL_MAX_BYTES", 1000)
    with pytest.raises(DataError, match="unpack to .* more than a model may hold"):
        load_model(tmp_path / "model.npz")


# ------------------------------------------------------------------ early stopping, no finite dev value


def nan_dev_data(seed=0) -> PreparedData:
    """2-D data whose dev features are NaN: dev_loss is NaN every epoch, training is unaffected."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    X[:, 1] += y
    mean, std = fit_standardizer(X[:80], is_image=False)
    dev_X = X[80:100].copy()
    dev_X[:] = np.nan
    return PreparedData(
        ArraySet(X[:80], y[:80]),
        ArraySet(dev_X, y[80:100]),
        ArraySet(X[100:], y[100:]),
        ["0", "1"],
        (2,),
        mean,
        std,
    )


def test_early_stopping_with_no_finite_dev_value_keeps_the_last_weights(tmp_path):
    raw = {
        "model": {"hidden": [6]},
        "early_stopping": {"enabled": True, "monitor": "dev_loss", "patience": 3, "restore_best": True},
        "training": {"epochs": 20, "batch_size": 16},
    }
    exp = run_experiment(from_dict(raw), tmp_path / "run", data=nan_dev_data())
    records = list(exp.records())
    assert all(np.isnan(r.dev_loss) for r in records)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "early_stopping" and summary["epochs_run"] == 3
    assert summary["best_epoch"] == 0 and summary["best_metrics"] is None
    assert summary["restored_best"] is False and summary["weights_epoch"] == 3
    assert "dev_not_finite" in codes(summary)
    assert "dev_loss was never a finite number in 3 epochs, so no epoch is best" in summary["message"]

    # the saved weights are epoch 3's: the same run, without early stopping, stopped after 3 epochs
    plain = {**raw, "early_stopping": {"enabled": False}, "training": {"epochs": 3, "batch_size": 16}}
    ref = run_experiment(from_dict(plain), tmp_path / "ref", data=nan_dev_data())
    list(ref.records())
    for W, W_ref in zip(load_model(tmp_path / "run").net.W, load_model(tmp_path / "ref").net.W):
        np.testing.assert_array_equal(W, W_ref)
