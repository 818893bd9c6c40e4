"""A sweep's results: the rows written as trials finish, and the curves drawn from them.

Folder layout (``--out DIR``):

| path | contents |
|---|---|
| ``sweep.json`` | the sweep definition (:meth:`engine.sweep.SweepDefinition.to_dict`), written atomically |
| ``trials/<trial id>/`` | one ordinary run folder per trial (config.json, metrics.jsonl, summary.json, model.npz, …) |
| ``results.jsonl`` | one JSON object per finished trial, appended and flushed as trials finish |
| ``results.csv`` | the same rows as CSV (varied values as columns; list values as JSON text) |

A row (:func:`result_row`): ``trial_id``, ``values`` (field path -> value; flattened into one
CSV column per field), ``seed``, ``stop_reason`` (``completed``, ``early_stopping``,
``diverged`` or the sweep-only ``pruned``), ``epochs_run``, ``best_epoch``,
``final_train_error``/``final_dev_error``/``final_train_loss``/``final_dev_loss`` (the
weights the run kept: summary.json's ``final_metrics``), the same four ``best_…`` (the best
epoch by ``early_stopping.monitor``), ``n_train`` (training examples used), ``seconds``
(the trial's wall time on its worker), ``worker`` (the Dask worker address),
``data_loaded`` (true when that trial loaded the data on its worker, false when it found it
in the worker's cache) and ``run_dir`` (relative to DIR). Errors are ``1 − accuracy``.

One writer (the sweep's client side) appends; ``results.jsonl`` is the record and
``results.csv`` its copy: on resume both are rewritten from the jsonl rows whose trial folder
is complete. A cancelled trial keeps its run folder but gets no row, so a resume runs it again.

Curves (:func:`validation_curve`, :func:`learning_curve`, :func:`parallel_coordinates`)
average the rows of one point over its seeds: mean and spread (the sample standard
deviation, ddof = 1; 0 with one seed). Pruned trials are left out (their errors are from an
early epoch, not comparable); the best point is the lowest mean dev error.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import field_spec
from engine.errors import DataError
from engine.fileio import atomic_write_text
from engine.sweep import canonical_json

SWEEP_FILE = "sweep.json"
RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
TRIALS_DIR = "trials"
PRUNED = "pruned"  # a sweep-only stop_reason: stopped by successive halving at a rung
METRIC_COLUMNS = tuple(
    f"{stage}_{split}_{kind}"
    for stage in ("final", "best")
    for split in ("train", "dev")
    for kind in ("error", "loss")
)
ROW_KEYS = (
    "trial_id",
    "values",
    "seed",
    "stop_reason",
    "epochs_run",
    "best_epoch",
    *METRIC_COLUMNS,
    "n_train",
    "seconds",
    "worker",
    "data_loaded",
    "run_dir",
)


def result_row(
    trial_id: str,
    values: Mapping[str, Any],
    seed: int,
    summary: Mapping[str, Any],
    *,
    n_train: int,
    seconds: float,
    worker: str,
    data_loaded: bool,
    run_dir: str,
) -> dict:
    """One results row from a finished trial's summary.json (see the module docstring)."""
    row: dict[str, Any] = {
        "trial_id": trial_id,
        "values": json.loads(canonical_json(dict(values))),
        "seed": int(seed),
        "stop_reason": summary.get("stop_reason"),
        "epochs_run": summary.get("epochs_run"),
        "best_epoch": summary.get("best_epoch"),
    }
    for stage in ("final", "best"):
        metrics = summary.get(f"{stage}_metrics") or {}
        for split in ("train", "dev"):
            acc = metrics.get(f"{split}_acc")
            row[f"{stage}_{split}_error"] = None if acc is None else 1.0 - float(acc)
            row[f"{stage}_{split}_loss"] = metrics.get(f"{split}_loss")
    row.update(
        n_train=int(n_train),
        seconds=float(seconds),
        worker=worker,
        data_loaded=bool(data_loaded),
        run_dir=run_dir,
    )
    return row


def csv_columns(fields: Sequence[str]) -> list[str]:
    """results.csv's header: trial_id, one column per varied field, then the other row keys."""
    return ["trial_id", *fields, *[k for k in ROW_KEYS if k not in ("trial_id", "values")]]


def _csv_cell(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    if v is None:
        return ""
    return v


def _csv_line(fields: Sequence[str], row: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    flat = {**{k: v for k, v in row.items() if k != "values"}, **(row.get("values") or {})}
    csv.writer(buf, lineterminator="\n").writerow([_csv_cell(flat.get(c)) for c in csv_columns(fields)])
    return buf.getvalue()


def _header(fields: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(csv_columns(fields))
    return buf.getvalue()


class ResultsWriter:
    """Appends rows to results.jsonl and results.csv, flushed after every row (one writer only)."""

    def __init__(self, out_dir: str | Path, fields: Sequence[str]):
        self.out_dir = Path(out_dir)
        self.fields = tuple(fields)
        self._jsonl = None
        self._csv = None

    def rewrite(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Replace both files with exactly these rows (atomically, each), then open them for appending."""
        self.close()
        rows = list(rows)
        atomic_write_text(
            self.out_dir / RESULTS_JSONL, "".join(json.dumps(r, allow_nan=False) + "\n" for r in rows)
        )
        atomic_write_text(
            self.out_dir / RESULTS_CSV,
            _header(self.fields) + "".join(_csv_line(self.fields, r) for r in rows),
        )
        self._jsonl = open(self.out_dir / RESULTS_JSONL, "a", encoding="utf-8")
        self._csv = open(self.out_dir / RESULTS_CSV, "a", encoding="utf-8", newline="")

    def append(self, row: Mapping[str, Any]) -> None:
        if self._jsonl is None:
            raise RuntimeError("ResultsWriter.rewrite() opens the files first")
        self._jsonl.write(json.dumps(row, allow_nan=False) + "\n")
        self._jsonl.flush()
        self._csv.write(_csv_line(self.fields, row))
        self._csv.flush()

    def close(self) -> None:
        for fh in (self._jsonl, self._csv):
            if fh is not None:
                fh.close()
        self._jsonl = self._csv = None


def read_results(out_dir: str | Path) -> list[dict]:
    """results.jsonl's rows; a truncated last line (a sweep killed mid-write) is skipped."""
    path = Path(out_dir) / RESULTS_JSONL
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise DataError(f"{path}: line {i + 1} is not valid JSON") from None
        if not isinstance(row, dict) or not isinstance(row.get("trial_id"), str):
            raise DataError(f"{path}: line {i + 1} is not a results row")
        rows.append(row)
    return rows


def read_sweep(out_dir: str | Path) -> tuple[dict, list[dict]]:
    """(sweep.json's definition dict, results rows) of a sweep folder, for the window."""
    path = Path(out_dir) / SWEEP_FILE
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{out_dir}: not a sweep folder (no {SWEEP_FILE})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable ({exc})") from None
    return definition, read_results(out_dir)


# ---------------------------------------------------------------- curves


@dataclass(frozen=True)
class CurvePoint:
    """One x value of a curve, averaged over its seeds."""

    value: Any  # the parameter's value (a list for list-valued fields)
    x: float | None  # the plotted x: the value for numbers, n_train for learning curves, None otherwise
    n: int  # trials (seeds) averaged
    train_error: float
    train_error_spread: float
    dev_error: float
    dev_error_spread: float
    trial_ids: tuple[str, ...]


@dataclass(frozen=True)
class Curve:
    """A validation or learning curve: train and dev error against one field."""

    field: str
    log: bool  # a log x axis suits the field (from its config spec, or a log range)
    points: tuple[CurvePoint, ...]
    best: CurvePoint | None  # lowest mean dev error
    fixed: dict  # the other varied fields' values the curve holds fixed
    stage: str  # "final" or "best" metrics


def _usable(rows: Iterable[Mapping[str, Any]], stage: str) -> list[Mapping[str, Any]]:
    return [
        r
        for r in rows
        if r.get("stop_reason") != PRUNED
        and r.get(f"{stage}_dev_error") is not None
        and r.get(f"{stage}_train_error") is not None
    ]


def _spread(xs: Sequence[float]) -> float:
    """Sample standard deviation (ddof = 1), two passes in floats: statistics.stdev computes in
    exact fractions, ~0.4 ms a call, and the window recomputes the curves as trials finish."""
    n = len(xs)
    if n < 2:
        return 0.0
    m = math.fsum(xs) / n
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (n - 1))


def point_summaries(rows: Iterable[Mapping[str, Any]], stage: str = "final") -> list[dict]:
    """Rows grouped by their varied values (seeds averaged), in first-seen order:
    ``{"values", "n", "train_error", "train_error_spread", "dev_error", "dev_error_spread",
    "n_train", "trial_ids"}``."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in _usable(rows, stage):
        groups.setdefault(canonical_json(r.get("values") or {}), []).append(r)
    out = []
    for members in groups.values():
        tr = [float(r[f"{stage}_train_error"]) for r in members]
        dv = [float(r[f"{stage}_dev_error"]) for r in members]
        out.append(
            {
                "values": dict(members[0].get("values") or {}),
                "n": len(members),
                "train_error": statistics.fmean(tr),
                "train_error_spread": _spread(tr),
                "dev_error": statistics.fmean(dv),
                "dev_error_spread": _spread(dv),
                "n_train": statistics.fmean(float(r.get("n_train") or 0) for r in members),
                "trial_ids": tuple(r["trial_id"] for r in members),
            }
        )
    return out


def best_point(rows: Iterable[Mapping[str, Any]], stage: str = "final") -> dict | None:
    """The point (seeds averaged, :func:`point_summaries`) with the lowest mean dev error."""
    points = point_summaries(rows, stage)
    return min(points, key=lambda p: p["dev_error"]) if points else None


def best_trial(rows: Iterable[Mapping[str, Any]], stage: str = "final") -> dict | None:
    """The row of the best point's best seed (lowest dev error): the trial to make the current experiment."""
    rows = list(rows)
    point = best_point(rows, stage)
    if point is None:
        return None
    members = [r for r in rows if r["trial_id"] in point["trial_ids"]]
    return dict(min(members, key=lambda r: float(r[f"{stage}_dev_error"])))


def validation_curve(
    rows: Iterable[Mapping[str, Any]],
    field: str,
    *,
    fixed: Mapping[str, Any] | None = None,
    stage: str = "final",
    log: bool | None = None,
    x_from_n_train: bool = False,
) -> Curve:
    """Train and dev error against one varied field, mean ± spread over seeds per value.

    With several varied fields the curve is a slice: the other fields are held at ``fixed``
    (default: their values at the best point). ``log`` defaults to the field's config spec.
    Points are ordered by x for numbers, else in first-seen order."""
    rows = list(rows)
    points = point_summaries(rows, stage)
    if fixed is None:
        best = best_point(rows, stage)
        fixed = {k: v for k, v in (best["values"] if best else {}).items() if k != field}
    fixed_json = {k: canonical_json(v) for k, v in fixed.items()}
    chosen = [
        p
        for p in points
        if field in p["values"]
        and all(canonical_json(p["values"].get(k)) == v for k, v in fixed_json.items() if k != field)
    ]
    curve_points = []
    for p in chosen:
        value = p["values"][field]
        if x_from_n_train:
            x = p["n_train"]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            x = float(value)
        else:
            x = None
        curve_points.append(
            CurvePoint(
                value=value,
                x=x,
                n=p["n"],
                train_error=p["train_error"],
                train_error_spread=p["train_error_spread"],
                dev_error=p["dev_error"],
                dev_error_spread=p["dev_error_spread"],
                trial_ids=p["trial_ids"],
            )
        )
    if all(cp.x is not None for cp in curve_points):
        curve_points.sort(key=lambda cp: cp.x)
    best_cp = min(curve_points, key=lambda cp: cp.dev_error) if curve_points else None
    if log is None:
        log = bool(field_spec(field).log)
    return Curve(field, bool(log), tuple(curve_points), best_cp, dict(fixed), stage)


def learning_curve(
    rows: Iterable[Mapping[str, Any]], *, fixed: Mapping[str, Any] | None = None, stage: str = "final"
) -> Curve:
    """Train and dev error against the number of training examples (a sweep over data.train_limit;
    x is the number actually used, so ``null`` (all) sits at the full training-set size)."""
    return validation_curve(rows, "data.train_limit", fixed=fixed, stage=stage, x_from_n_train=True)


def parallel_coordinates(
    rows: Iterable[Mapping[str, Any]], fields: Sequence[str], stage: str = "final"
) -> dict:
    """One line per point (seeds averaged) across the varied fields and the dev error.

    Returns ``{"axes": [{"field", "log", "numeric"}, …, {"field": "dev_error", …}],
    "lines": [{"values": [...one per axis...], "dev_error", "trial_ids"}, …], "best": index or None}``.
    Non-numeric values (names, architectures) are given as their JSON text; the view maps them to
    evenly spaced positions."""
    points = point_summaries(rows, stage)
    axes = []
    for f in fields:
        numeric = all(
            isinstance(p["values"].get(f), (int, float)) and not isinstance(p["values"].get(f), bool)
            for p in points
        )
        axes.append({"field": f, "log": bool(field_spec(f).log) and numeric, "numeric": numeric})
    axes.append({"field": f"{stage}_dev_error", "log": False, "numeric": True})
    lines = []
    for p in points:
        vals = []
        for ax in axes[:-1]:
            v = p["values"].get(ax["field"])
            vals.append(float(v) if ax["numeric"] else canonical_json(v))
        vals.append(p["dev_error"])
        lines.append({"values": vals, "dev_error": p["dev_error"], "trial_ids": p["trial_ids"]})
    best = min(range(len(lines)), key=lambda i: lines[i]["dev_error"]) if lines else None
    return {"axes": axes, "lines": lines, "best": best}
