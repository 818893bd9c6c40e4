"""The run directory against its documented format, model round trips, reading runs back."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine.config import from_dict
from engine.dataset import ArraySet, PreparedData
from engine.errors import DataError
from engine.experiment import evaluate_test, run_experiment
from engine.normalization import fit_standardizer
from engine.prepare import prepare_data, transform
from engine.runs import load_model, load_run, read_metrics
from engine.trainer import METRIC_KEYS, EpochRecord

SUMMARY_KEYS = {
    "epochs_run",
    "best_epoch",
    "stop_reason",
    "message",
    "best_metrics",
    "final_metrics",
    "weights_epoch",
    "restored_best",
    "human_error_source",
    "n_test_available",
    "human_error",
    "diagnosis",
    "notes",
    "warnings",
    "total_seconds",
}


def small_cfg(**sections):
    raw = {
        "data": {"source": "builtin:blobs", "n_samples": 150, "n_classes": 3, "split": [0.6, 0.2, 0.2]},
        "model": {"hidden": [8, 6]},
        "optimizer": {"lr": 0.02},
        "training": {"epochs": 4, "batch_size": 32},
        "diagnosis": {"human_error": 0.01},
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return from_dict(raw)


def no_constants(name):
    raise AssertionError(f"non-JSON constant {name}")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    cfg = small_cfg()
    data = prepare_data(cfg)
    out = tmp_path_factory.mktemp("run")
    exp = run_experiment(cfg, out, data=data)
    records = list(exp.records())
    return cfg, data, out, exp, records


def test_run_directory_files(finished_run):
    cfg, data, out, exp, records = finished_run
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "config.json",
        "metrics.jsonl",
        "model.npz",
        "split.npz",
        "summary.json",
    ]  # no temp files
    assert json.loads((out / "config.json").read_text()) == cfg.to_dict()

    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4
    for i, line in enumerate(lines, start=1):
        obj = json.loads(line, parse_constant=no_constants)
        assert list(obj) == list(METRIC_KEYS)
        assert obj["epoch"] == i
        assert len(obj["grad_norms"]) == 3
        assert obj == records[i - 1].metrics_dict()

    summary = json.loads((out / "summary.json").read_text(), parse_constant=no_constants)
    assert set(summary) == SUMMARY_KEYS  # no test figures unless asked
    assert summary["epochs_run"] == 4 and summary["stop_reason"] == "completed"
    assert summary["final_metrics"] == records[-1].metrics_dict()
    assert summary["best_metrics"]["epoch"] == summary["best_epoch"]
    assert summary["human_error"] == 0.01
    assert summary["warnings"] == []  # a run that learned: nothing to warn about
    diag = summary["diagnosis"]
    assert diag["train_error"] == pytest.approx(1 - records[-1].train_acc)
    assert diag["avoidable_bias"] == pytest.approx(1 - records[-1].train_acc - 0.01)
    assert summary == exp.summary


def test_model_npz_format(finished_run):
    cfg, data, out, exp, records = finished_run
    with np.load(out / "model.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    assert set(arrays) == {
        "W1",
        "W2",
        "W3",
        "b1",
        "b2",
        "b3",
        "classes",
        "norm_mean",
        "norm_std",
        "input_shape",
        "config",
    }
    sizes = [2, 8, 6, 3]
    for i in range(3):
        assert arrays[f"W{i + 1}"].shape == (sizes[i], sizes[i + 1])
        assert arrays[f"b{i + 1}"].shape == (sizes[i + 1],)
    assert all(a.dtype != object for a in arrays.values())
    assert arrays["classes"].dtype.kind == "U" and list(arrays["classes"]) == data.classes
    assert arrays["input_shape"].tolist() == [2]
    np.testing.assert_array_equal(arrays["norm_mean"], data.norm_mean)
    np.testing.assert_array_equal(arrays["norm_std"], data.norm_std)
    assert json.loads(str(arrays["config"])) == cfg.to_dict()


def test_split_npz_partitions_the_source(finished_run):
    cfg, data, out, exp, records = finished_run
    with np.load(out / "split.npz", allow_pickle=False) as npz:
        parts = [npz[k] for k in ("train_idx", "dev_idx", "test_idx")]
    assert [len(p) for p in parts] == [len(data.train), len(data.dev), len(data.test)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(150))


def test_load_model_round_trip_predicts_like_the_trained_network(finished_run):
    cfg, data, out, exp, records = finished_run
    model = load_model(out / "model.npz")
    assert model.classes == data.classes and model.input_shape == (2,)
    F = transform(data.dev.X, data.input_shape, data.norm_mean, data.norm_std)
    np.testing.assert_array_equal(model.net.predict_proba(F), exp.trainer.network.predict_proba(F))
    loss, acc = model.evaluate(data.dev.X, data.dev.y)
    assert loss == pytest.approx(records[-1].dev_loss, rel=1e-6) and acc == records[-1].dev_acc


def test_load_run_of_a_finished_run(finished_run):
    cfg, data, out, exp, records = finished_run
    run = load_run(out)
    assert run.config.to_dict() == cfg.to_dict()
    assert run.metrics == [r.metrics_dict() for r in records]
    assert run.summary["stop_reason"] == "completed"


def test_evaluate_test_adds_test_figures_atomically(tmp_path):
    cfg = small_cfg()
    data = prepare_data(cfg)
    exp = run_experiment(cfg, tmp_path, data=data)
    list(exp.records())
    result = evaluate_test(tmp_path)
    F = transform(data.test.X, data.input_shape, data.norm_mean, data.norm_std)
    loss, acc = exp.trainer.network.evaluate(F, data.test.y)
    assert result["test_acc"] == pytest.approx(acc) and result["test_loss"] == pytest.approx(loss, rel=1e-5)
    assert result["n_test"] == len(data.test)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test_acc"] == result["test_acc"] and summary["stop_reason"] == "completed"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_evaluate_test_during_the_run(tmp_path):
    cfg = small_cfg()
    exp = run_experiment(cfg, tmp_path, evaluate_test=True)
    list(exp.records())
    assert {"test_acc", "test_loss", "n_test"} <= set(exp.summary)
    assert exp.summary["test_acc"] == pytest.approx(evaluate_test(tmp_path)["test_acc"])


def test_cancelled_run_still_writes_summary_and_model(tmp_path):
    calls = iter(range(1000))
    cfg = small_cfg(training={"epochs": 10})  # 90 training samples: 3 batches per epoch
    exp = run_experiment(cfg, tmp_path, should_stop=lambda: next(calls) >= 7)
    records = list(exp.records())
    assert len(records) == 2
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stop_reason"] == "cancelled" and summary["epochs_run"] == 2
    assert summary["final_metrics"] == records[-1].metrics_dict()
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == 2
    assert load_model(tmp_path).net.layer_sizes == [2, 8, 6, 3]


def test_closing_the_records_generator_finishes_the_run(tmp_path):
    exp = run_experiment(small_cfg(training={"epochs": 10}), tmp_path)
    gen = exp.records()
    next(gen)
    gen.close()
    assert exp.summary["stop_reason"] == "cancelled" and exp.summary["epochs_run"] == 1
    assert (tmp_path / "model.npz").is_file()


def test_image_run_writes_data_report_and_no_split(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(30, 4, 4, 1), dtype=np.uint8)
    y = np.arange(30) % 2
    mean, std = fit_standardizer(X[:20], is_image=True)
    report = {
        "classes": ["a", "b"],
        "counts": {"a": 15, "b": 15},
        "n_images": 30,
        "image_shape": [4, 4, 1],
        "skipped": [{"file": "x.png", "reason": "not an image"}],
    }
    data = PreparedData(
        ArraySet(X[:20], y[:20]),
        ArraySet(X[20:], y[20:]),
        ArraySet(X[:0], y[:0]),
        ["a", "b"],
        (4, 4, 1),
        mean,
        std,
        split_indices=None,
        report=report,
    )
    cfg = from_dict({"model": {"hidden": [4]}, "training": {"epochs": 2, "batch_size": 8}})
    exp = run_experiment(cfg, tmp_path, data=data, evaluate_test=True)
    list(exp.records())
    assert json.loads((tmp_path / "data_report.json").read_text()) == report
    assert not (tmp_path / "split.npz").exists()
    assert "test_acc" not in exp.summary and "empty" in " ".join(exp.summary["notes"])
    model = load_model(tmp_path / "model.npz")
    assert model.input_shape == (4, 4, 1) and model.net.layer_sizes == [16, 4, 2]


def test_nan_metrics_are_written_as_null():
    rec = EpochRecord(
        epoch=3,
        train_loss=math.nan,
        train_acc=0.5,
        dev_loss=math.inf,
        dev_acc=0.5,
        cost=math.nan,
        penalty=0.0,
        weight_norm=1.0,
        grad_norms=(math.nan, 2.0),
        lr=0.1,
        seconds=0.1,
        samples_per_sec=10.0,
    )
    d = rec.metrics_dict()
    assert d["train_loss"] is None and d["dev_loss"] is None and d["cost"] is None
    assert d["grad_norms"] == [None, 2.0]
    json.loads(json.dumps(d, allow_nan=False))


def test_load_run_tolerates_a_run_in_progress(tmp_path):
    cfg = small_cfg()
    (tmp_path / "config.json").write_text(cfg.to_json())
    line = json.dumps({"epoch": 1, "train_loss": 0.5})
    (tmp_path / "metrics.jsonl").write_text(line + "\n" + line[:10])  # second line cut mid-write
    run = load_run(tmp_path)
    assert run.summary is None
    # read back with every documented key: the missing ones as null (grad_norms as [])
    expected = dict.fromkeys(METRIC_KEYS)
    expected.update(epoch=1, train_loss=0.5, grad_norms=[])
    assert run.metrics == [expected]
    (tmp_path / "metrics.jsonl").write_text("{broken\n" + line + "\n")
    with pytest.raises(DataError, match="line 1"):
        load_run(tmp_path)


def test_load_run_refuses_a_folder_without_config(tmp_path):
    with pytest.raises(DataError, match="not a run directory"):
        load_run(tmp_path)


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def _valid_arrays(finished_run):
    out = finished_run[2]
    with np.load(out / "model.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("W2"), "missing array 'W2'"),
        (lambda a: a.update(b1=np.zeros(3, np.float32)), "do not form a layer"),
        (lambda a: a.update(norm_mean=np.zeros(5, np.float32)), "norm_mean"),
        (lambda a: a.update(classes=np.array(["a", "b"])), "2 classes"),
        (lambda a: a.update(input_shape=np.array([3])), "input_shape"),
        (lambda a: a.update(config=np.array('{"model": {"hidden": "x"}}')), "model.hidden"),
        (lambda a: a.update(classes=np.array(["a", None, "c"], dtype=object)), "not a readable model file"),
    ],
)
def test_load_model_refuses_bad_files_naming_them(finished_run, tmp_path, change, message):
    arrays = _valid_arrays(finished_run)
    change(arrays)
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as info:
        load_model(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_load_model_missing_or_garbage_file(tmp_path):
    with pytest.raises(DataError, match="no such model file"):
        load_model(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"junk.npz: not a model file \(not an .npz archive\)") as err:
        load_model(tmp_path / "junk.npz")
    assert "pickle" not in str(err.value)  # NumPy's "load it unsafely" hint would mislead


def test_metrics_are_on_disk_after_every_epoch_while_the_run_goes(tmp_path):
    exp = run_experiment(small_cfg(), tmp_path)
    for record in exp.records():
        on_disk = read_metrics(tmp_path / "metrics.jsonl")
        assert len(on_disk) == record.epoch and on_disk[-1] == record.metrics_dict()
        assert load_run(tmp_path).summary is None  # written only at the end
    assert load_run(tmp_path).summary["epochs_run"] == 4
