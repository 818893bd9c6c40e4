"""Early stopping: the pure bookkeeping class, and restoring the best weights end to end."""

from __future__ import annotations

import json
import math

import pytest

from engine.config import from_dict
from engine.early_stopping import EarlyStopping
from engine.experiment import run_experiment
from engine.prepare import prepare_data
from engine.runs import load_model


def feed(es: EarlyStopping, values) -> list[bool]:
    stops = []
    for epoch, v in enumerate(values, start=1):
        es.update(epoch, v)
        stops.append(es.should_stop)
    return stops


def test_dev_loss_lower_is_better_and_patience_counts_epochs_without_improvement():
    es = EarlyStopping("dev_loss", patience=3)
    stops = feed(es, [1.0, 0.9, 0.95, 0.95, 0.91])
    assert stops == [False, False, False, False, True]
    assert es.best_epoch == 2 and es.best_value == 0.9
    assert es.stop_message() == "dev_loss did not improve by more than 0 for 3 epochs; best 0.9 at epoch 2"


def test_improvement_resets_patience():
    es = EarlyStopping("dev_loss", patience=2)
    assert feed(es, [1.0, 1.1, 0.8, 0.9, 0.85]) == [False, False, False, False, True]
    assert es.best_epoch == 3


def test_min_delta_requires_more_than_that_change():
    es = EarlyStopping("dev_loss", patience=1, min_delta=0.05)
    es.update(1, 1.0)
    assert not es.update(2, 0.95)  # exactly min_delta better: not an improvement
    assert es.should_stop
    es = EarlyStopping("dev_loss", patience=1, min_delta=0.05)
    es.update(1, 1.0)
    assert es.update(2, 0.94)
    assert not es.should_stop and es.best_epoch == 2


def test_dev_acc_higher_is_better():
    es = EarlyStopping("dev_acc", patience=2)
    assert feed(es, [0.5, 0.7, 0.6, 0.7]) == [False, False, False, True]
    assert es.best_epoch == 2 and es.best_value == 0.7
    assert "dev_acc did not improve" in es.stop_message()


def test_disabled_tracks_best_but_never_stops_or_restores():
    es = EarlyStopping("dev_loss", patience=1, enabled=False, restore_best=True)
    assert feed(es, [0.5, 0.6, 0.7, 0.8]) == [False] * 4
    assert es.best_epoch == 1
    assert not es.restore_best


def test_nan_is_never_an_improvement():
    es = EarlyStopping("dev_loss", patience=2)
    assert feed(es, [math.nan, 1.0, math.nan, math.inf]) == [False, False, False, True]
    assert es.best_epoch == 2


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        EarlyStopping("train_loss")
    with pytest.raises(ValueError):
        EarlyStopping("dev_loss", patience=0)


def overfitting_cfg(**early_stopping):
    # few noisy samples and a big network: dev loss rises after a few epochs
    return from_dict(
        {
            "data": {"source": "builtin:moons", "n_samples": 120, "noise": 0.4, "split": [0.5, 0.5]},
            "model": {"hidden": [64, 64]},
            "optimizer": {"name": "adam", "lr": 0.05},
            "training": {"epochs": 80, "batch_size": 16},
            "early_stopping": {"enabled": True, "patience": 5, **early_stopping},
        }
    )


def test_restore_best_saves_the_best_epochs_weights(tmp_path):
    cfg = overfitting_cfg()
    data = prepare_data(cfg)
    exp = run_experiment(cfg, tmp_path, data=data)
    records = list(exp.records())
    last = records[-1]
    best = exp.summary["best_epoch"]
    assert last.stop_reason == "early_stopping"
    assert best == last.epoch - 5
    assert last.message.startswith("dev_loss did not improve by more than 0 for 5 epochs; best ")
    assert f"at epoch {best}" in last.message and f"restored the weights of epoch {best}" in last.message
    best_record = records[best - 1]
    assert best_record.dev_loss == min(r.dev_loss for r in records)
    assert all(r.best_epoch == best for r in records[best - 1 :])
    assert last.dev_loss != best_record.dev_loss  # so the check below can tell the weights apart

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["restored_best"] is True and summary["weights_epoch"] == best
    assert (
        summary["final_metrics"]
        == summary["best_metrics"]
        == json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[best - 1])
    )
    model = load_model(tmp_path / "model.npz")
    loss, acc = model.evaluate(data.dev.X, data.dev.y)
    assert loss == pytest.approx(best_record.dev_loss, rel=1e-6)
    assert acc == best_record.dev_acc
    # the diagnosis describes the restored weights
    assert summary["diagnosis"]["dev_error"] == pytest.approx(1 - best_record.dev_acc)


def test_without_restore_the_last_weights_are_kept(tmp_path):
    cfg = overfitting_cfg(restore_best=False)
    data = prepare_data(cfg)
    exp = run_experiment(cfg, tmp_path, data=data)
    records = list(exp.records())
    assert records[-1].stop_reason == "early_stopping"
    assert "restored" not in records[-1].message
    assert exp.summary["final_metrics"]["epoch"] == records[-1].epoch
    loss, _ = load_model(tmp_path / "model.npz").evaluate(data.dev.X, data.dev.y)
    assert loss == pytest.approx(records[-1].dev_loss, rel=1e-6)


def test_monitor_dev_acc_end_to_end(tmp_path):
    cfg = overfitting_cfg(monitor="dev_acc", patience=3)
    exp = run_experiment(cfg, tmp_path)
    records = list(exp.records())
    best = exp.summary["best_epoch"]
    assert records[best - 1].dev_acc == max(r.dev_acc for r in records)
    # the best is the first epoch reaching the maximum (later ties are no improvement)
    assert all(r.dev_acc < records[best - 1].dev_acc for r in records[: best - 1])
