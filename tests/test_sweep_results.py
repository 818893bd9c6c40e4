"""Sweep results: rows from summaries, the two results files, and curve points (hand-computed)."""

import csv
import json
import math

import pytest

from engine.sweep_results import (
    RESULTS_CSV,
    RESULTS_JSONL,
    ResultsWriter,
    best_point,
    best_trial,
    learning_curve,
    parallel_coordinates,
    read_results,
    result_row,
    validation_curve,
)

SUMMARY = {
    "epochs_run": 12,
    "best_epoch": 9,
    "stop_reason": "early_stopping",
    "final_metrics": {"train_acc": 0.9, "dev_acc": 0.75, "train_loss": 0.3, "dev_loss": 0.6},
    "best_metrics": {"train_acc": 0.875, "dev_acc": 0.8, "train_loss": 0.35, "dev_loss": 0.5},
}


def test_result_row_takes_errors_as_one_minus_accuracy():
    row = result_row(
        "t1",
        {"regularization.l2": 0.1, "model.hidden": (8, 8)},
        3,
        SUMMARY,
        n_train=120,
        seconds=1.5,
        worker="tcp://127.0.0.1:1",
        data_loaded=True,
        run_dir="trials/t1",
    )
    assert row["values"] == {"model.hidden": [8, 8], "regularization.l2": 0.1}
    assert row["final_train_error"] == pytest.approx(0.1) and row["final_dev_error"] == pytest.approx(0.25)
    assert row["best_train_error"] == pytest.approx(0.125) and row["best_dev_error"] == pytest.approx(0.2)
    assert (row["final_dev_loss"], row["best_dev_loss"], row["best_epoch"]) == (0.6, 0.5, 9)
    assert (row["stop_reason"], row["seed"], row["n_train"], row["worker"]) == (
        "early_stopping",
        3,
        120,
        "tcp://127.0.0.1:1",
    )
    empty = result_row(
        "t2",
        {},
        0,
        {"stop_reason": "diverged"},
        n_train=1,
        seconds=0,
        worker="w",
        data_loaded=False,
        run_dir="x",
    )
    assert empty["final_dev_error"] is None and empty["best_train_loss"] is None


def test_writer_appends_flushed_rows_and_rewrite_replaces(tmp_path):
    fields = ["regularization.l2", "model.hidden"]
    w = ResultsWriter(tmp_path, fields)
    w.rewrite([])
    a = result_row(
        "a",
        {"regularization.l2": 0.1, "model.hidden": [8]},
        0,
        SUMMARY,
        n_train=5,
        seconds=1,
        worker="w1",
        data_loaded=True,
        run_dir="trials/a",
    )
    b = result_row(
        "b",
        {"regularization.l2": 0.0, "model.hidden": [4, 4]},
        1,
        SUMMARY,
        n_train=5,
        seconds=2,
        worker="w2",
        data_loaded=False,
        run_dir="trials/b",
    )
    w.append(a)
    # flushed per row: readable while the writer is open
    assert [r["trial_id"] for r in read_results(tmp_path)] == ["a"]
    w.append(b)
    with open(tmp_path / RESULTS_CSV, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0])[:4] == ["trial_id", "regularization.l2", "model.hidden", "seed"]
    assert table[1]["model.hidden"] == "[4, 4]" and table[1]["regularization.l2"] == "0.0"
    assert table[0]["data_loaded"] == "true" and table[1]["data_loaded"] == "false"
    assert float(table[0]["final_dev_error"]) == pytest.approx(0.25)
    w.rewrite([b])
    w.close()
    assert [r["trial_id"] for r in read_results(tmp_path)] == ["b"]
    with open(tmp_path / RESULTS_CSV, newline="") as fh:
        assert [r["trial_id"] for r in csv.DictReader(fh)] == ["b"]


def test_read_results_skips_a_truncated_last_line(tmp_path):
    (tmp_path / RESULTS_JSONL).write_text('{"trial_id": "a"}\n{"trial_id": "b", "val', encoding="utf-8")
    assert read_results(tmp_path) == [{"trial_id": "a"}]


def rows_of(table):
    """(trial_id, l2, kp, seed, final train error, final dev error, stop, n_train) -> rows."""
    return [
        {
            "trial_id": tid,
            "values": {"regularization.l2": l2, "regularization.keep_prob": kp},
            "seed": seed,
            "final_train_error": tr,
            "final_dev_error": dv,
            "stop_reason": stop,
            "n_train": n,
        }
        for tid, l2, kp, seed, tr, dv, stop, n in table
    ]


ROWS = rows_of(
    [
        ("a0", 0.0, 1.0, 0, 0.05, 0.30, "completed", 100),
        ("a1", 0.0, 1.0, 1, 0.07, 0.34, "completed", 100),
        ("b0", 0.1, 1.0, 0, 0.10, 0.20, "completed", 100),
        ("b1", 0.1, 1.0, 1, 0.12, 0.24, "completed", 100),
        ("c0", 1.0, 1.0, 0, 0.30, 0.35, "completed", 100),
        ("c1", 1.0, 1.0, 1, 0.32, 0.90, "pruned", 100),  # pruned: left out
        ("d0", 0.1, 0.5, 0, 0.20, 0.28, "completed", 100),
        ("d1", 0.1, 0.5, 1, 0.22, 0.30, "completed", 100),
    ]
)


def test_validation_curve_is_mean_and_sample_spread_over_seeds_at_the_best_slice():
    curve = validation_curve(ROWS, "regularization.l2")
    assert curve.log and curve.fixed == {"regularization.keep_prob": 1.0}  # the best point's keep_prob
    assert [p.value for p in curve.points] == [0.0, 0.1, 1.0]
    p0, p1, p2 = curve.points
    assert p0.dev_error == pytest.approx(0.32) and p0.dev_error_spread == pytest.approx(math.sqrt(0.0008))
    assert p0.train_error == pytest.approx(0.06) and p0.train_error_spread == pytest.approx(math.sqrt(0.0002))
    assert p1.dev_error == pytest.approx(0.22) and p1.n == 2 and set(p1.trial_ids) == {"b0", "b1"}
    assert (p2.n, p2.dev_error, p2.dev_error_spread) == (1, pytest.approx(0.35), 0.0)
    assert curve.best is p1
    other = validation_curve(ROWS, "regularization.l2", fixed={"regularization.keep_prob": 0.5})
    assert [(p.value, p.dev_error) for p in other.points] == [(0.1, pytest.approx(0.29))]
    kp = validation_curve(ROWS, "regularization.keep_prob")
    assert not kp.log and [p.value for p in kp.points] == [0.5, 1.0]


def test_best_point_and_trial():
    assert best_point(ROWS)["values"] == {"regularization.l2": 0.1, "regularization.keep_prob": 1.0}
    assert best_trial(ROWS)["trial_id"] == "b0"


def test_learning_curve_plots_training_examples_used():
    rows = [
        {
            "trial_id": "x",
            "values": {"data.train_limit": 50},
            "final_train_error": 0.0,
            "final_dev_error": 0.4,
            "n_train": 50,
        },
        {
            "trial_id": "y",
            "values": {"data.train_limit": None},
            "final_train_error": 0.1,
            "final_dev_error": 0.2,
            "n_train": 600,
        },
        {
            "trial_id": "z",
            "values": {"data.train_limit": 200},
            "final_train_error": 0.05,
            "final_dev_error": 0.3,
            "n_train": 200,
        },
    ]
    curve = learning_curve(rows)
    assert [(p.x, p.value) for p in curve.points] == [(50, 50), (200, 200), (600, None)]
    assert curve.log and curve.best.value is None


def test_parallel_coordinates_one_line_per_point():
    pc = parallel_coordinates(ROWS, ["regularization.l2", "regularization.keep_prob"])
    assert [a["field"] for a in pc["axes"]] == [
        "regularization.l2",
        "regularization.keep_prob",
        "final_dev_error",
    ]
    assert [a["log"] for a in pc["axes"]] == [True, False, False]
    assert len(pc["lines"]) == 4
    best = pc["lines"][pc["best"]]
    assert best["values"][:2] == [0.1, 1.0] and best["dev_error"] == pytest.approx(0.22)
    rows = [dict(r, values={"model.hidden": [8, 8]}) for r in ROWS[:2]]
    pc = parallel_coordinates(rows, ["model.hidden"])
    assert pc["axes"][0]["numeric"] is False and pc["lines"][0]["values"][0] == json.dumps(
        [8, 8], separators=(",", ":")
    )
