"""The run history: every run, live or finished, with its records, summary and identity. Qt-free.

The window's runs table, plots, diagnosis and file actions all read this one object, so a
run's state lives in one place. Observers subscribe with :meth:`RunHistory.subscribe` and get
``(event, key)`` calls: ``added``, ``removed``, ``changed`` (name, visibility, summary, test
figures) and ``records`` (new epochs of a live run). Adding an epoch record is O(1): a list
append and one notification.

A run's *key* is its folder path. Display labels (a run's name, whether its curves are
hidden) live beside the run in ``reglab_gui.json``; names are unique within the history. A live
run's labels are written when it ends: until then its folder belongs to the training process,
which refuses to start in a folder that already holds files.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import BUILTIN_2D, ExperimentConfig
from engine.errors import InputError
from engine.fileio import atomic_write_json

LABELS_FILE = "reglab_gui.json"  # display name and hidden flag of a run (kept beside the run)

# one vocabulary for how a run ended, wherever it is shown
STOP_TEXT = {
    "completed": "completed",
    "early_stopping": "stopped early",
    "diverged": "diverged",
    "cancelled": "stopped by you",
    "pruned": "pruned",
    None: "incomplete",
}

Listener = Callable[[str, str], None]


@dataclass(eq=False)
class RunInfo:
    """One run. ``metrics``: metrics.jsonl dicts in epoch order; ``summary`` None until it ends."""

    key: str
    name: str
    config: ExperimentConfig
    metrics: list[dict] = field(default_factory=list)
    summary: dict | None = None
    live: bool = False
    hidden: bool = False
    param_count: int = 0
    param_bytes: int = 0
    failed: str | None = None  # why a live run ended without a summary (an error)

    @property
    def path(self) -> Path:
        return Path(self.key)

    # ---------------------------------------------------------------- outcome
    def stop_reason(self) -> str | None:
        if self.summary is None:
            return None
        reason = self.summary.get("stop_reason")
        return reason if isinstance(reason, str) else None

    def status_text(self) -> str:
        if self.live:
            return "training"
        if self.failed:
            return "failed"
        return STOP_TEXT.get(self.stop_reason(), str(self.stop_reason()))

    def warning_codes(self) -> list[str]:
        warnings = (self.summary or {}).get("warnings") or []
        return [w.get("code") for w in warnings if isinstance(w, dict) and isinstance(w.get("code"), str)]

    def final_metrics(self) -> tuple[dict | None, int | None]:
        """(metrics dict, epoch) the run's figures describe: the summary's final metrics (the
        restored best epoch after early stopping) once it ended, else the latest epoch."""
        if self.summary is not None:
            final = self.summary.get("final_metrics")
            if isinstance(final, dict):
                epoch = self.summary.get("weights_epoch")
                return final, int(epoch) if isinstance(epoch, int) else final.get("epoch")
        if self.metrics:
            return self.metrics[-1], self.metrics[-1].get("epoch")
        return None, None

    def restored_best(self) -> bool:
        return bool((self.summary or {}).get("restored_best"))

    # ---------------------------------------------------------------- figures
    def best_dev_acc(self) -> float | None:
        best_epoch = (self.summary or {}).get("best_epoch")
        for m in self.metrics:
            if best_epoch and m.get("epoch") == best_epoch and m.get("dev_acc") is not None:
                return float(m["dev_acc"])
        accs = [m["dev_acc"] for m in self.metrics if m.get("dev_acc") is not None]
        return max(accs) if accs else None

    def test_acc(self) -> float | None:
        v = (self.summary or {}).get("test_acc")
        return float(v) if isinstance(v, (int, float)) else None

    def has_test_set(self) -> bool:
        """True when the run was made with a non-empty test set (so Evaluate on test can work)."""
        n = (self.summary or {}).get("n_test_available")
        if isinstance(n, int):
            return n > 0
        data = self.config.data
        if data.test_source is not None or data.split[2] > 0:
            return True
        src = Path(data.source)
        return not data.source.startswith("builtin:") and (src / "test").is_dir()

    def is_image(self) -> bool:
        """Image data (so augmentation applies): the run folder has a data report, or shapes."""
        source = self.config.data.source
        if source.startswith("builtin:"):
            return source.split(":", 1)[1] not in BUILTIN_2D
        return (self.path / "data_report.json").exists()

    def seconds(self) -> float:
        return float(sum(m.get("seconds") or 0.0 for m in self.metrics))

    def seconds_per_epoch(self) -> float | None:
        return self.seconds() / len(self.metrics) if self.metrics else None

    def samples_per_sec(self) -> float | None:
        v = [m["samples_per_sec"] for m in self.metrics if m.get("samples_per_sec")]
        v = [x for x in v if math.isfinite(x)]
        return float(np.mean(v)) if v else None

    def series(self, key: str) -> np.ndarray:
        """One metric over the epochs as floats (None -> NaN)."""
        return np.array(
            [math.nan if m.get(key) is None else float(m[key]) for m in self.metrics], dtype=float
        )


_STAMPED = re.compile(r"^run-(\d{8})-(\d{2})(\d{2})(\d{2})-(\d+)$")


def default_run_name(run_dir: str | Path) -> str:
    """A short display name: 'run 09:51:14' for the window's run-YYYYMMDD-HHMMSS-NN folders."""
    name = Path(run_dir).name
    m = _STAMPED.match(name)
    if not m:
        return name
    suffix = "" if m.group(5) == "01" else f" ({int(m.group(5))})"
    return f"run {m.group(2)}:{m.group(3)}:{m.group(4)}{suffix}"


def read_labels(run_dir: str | Path) -> dict:
    """A run's display labels; {} when the file is missing or unusable (the run keeps its defaults)."""
    from engine.jsonfile import read_json_file

    path = Path(run_dir) / LABELS_FILE
    if not path.exists():
        return {}
    try:
        meta = read_json_file(path, what="run labels", max_bytes=64_000, streams=False)
    except InputError:
        return {}
    if not isinstance(meta, dict):
        return {}
    out = {}
    if isinstance(meta.get("name"), str) and meta["name"].strip():
        out["name"] = meta["name"].strip()[:200]
    if isinstance(meta.get("hidden"), bool):
        out["hidden"] = meta["hidden"]
    return out


def write_labels(run_dir: str | Path, **labels: Any) -> None:
    meta = read_labels(run_dir)
    meta.update(labels)
    atomic_write_json(Path(run_dir) / LABELS_FILE, meta)


def param_size(model_path: str | Path) -> tuple[int, int]:
    """(number of parameters, bytes) of the W*/b* arrays in a model.npz, read from headers only."""
    count = nbytes = 0
    try:
        with zipfile.ZipFile(model_path) as zf:
            for name in zf.namelist():
                stem = name[:-4] if name.endswith(".npy") else name
                if not (stem[:1] in ("W", "b") and stem[1:].isdigit()):
                    continue
                with zf.open(name) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                n = int(np.prod(shape)) if shape else 1
                count += n
                nbytes += n * np.dtype(dtype).itemsize
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return 0, 0
    return count, nbytes


def layer_sizes_param_count(sizes: Iterable[int]) -> int:
    sizes = list(sizes)
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


class RunHistory:
    """Every run the window knows, in the order they were added (oldest first)."""

    def __init__(self) -> None:
        self._runs: dict[str, RunInfo] = {}
        self._listeners: list[Listener] = []
        self._pending_labels: dict[str, dict[str, Any]] = {}  # labels of live runs, written when they end

    # ---------------------------------------------------------------- observers
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: str, key: str) -> None:
        for listener in list(self._listeners):
            listener(event, key)

    # ---------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._runs)

    def __contains__(self, key: object) -> bool:
        return key in self._runs

    def keys(self) -> list[str]:
        return list(self._runs)

    def runs(self) -> list[RunInfo]:
        return list(self._runs.values())

    def get(self, key: str | None) -> RunInfo | None:
        return self._runs.get(key) if key else None

    def index(self, key: str) -> int:
        return list(self._runs).index(key)

    def unique_name(self, name: str, exclude: str | None = None) -> str:
        taken = {r.name for k, r in self._runs.items() if k != exclude}
        if name not in taken:
            return name
        n = 2
        while f"{name} ({n})" in taken:
            n += 1
        return f"{name} ({n})"

    # ---------------------------------------------------------------- changes
    def add(self, run: RunInfo) -> RunInfo:
        """Add (or replace, keeping its place) a run; its name is made unique."""
        run.name = self.unique_name(run.name, exclude=run.key)
        replacing = run.key in self._runs
        self._runs[run.key] = run
        self._emit("changed" if replacing else "added", run.key)
        return run

    def remove(self, key: str) -> RunInfo | None:
        run = self._runs.pop(key, None)
        self._pending_labels.pop(key, None)
        if run is not None:
            self._emit("removed", key)
        return run

    def append_records(self, key: str, metrics: list[dict]) -> None:
        """New epochs of a live run (metrics.jsonl dicts)."""
        run = self._runs.get(key)
        if run is not None and metrics:
            run.metrics.extend(metrics)
            self._emit("records", key)

    def update(self, key: str, **fields: Any) -> None:
        """Change fields of a run (summary, live, failed, param sizes, ...) and announce it."""
        run = self._runs.get(key)
        if run is None:
            return
        for name, value in fields.items():
            if not hasattr(run, name):
                raise AttributeError(name)
            setattr(run, name, value)
        if not run.live and key in self._pending_labels:
            try:
                write_labels(key, **self._pending_labels.pop(key))
            except OSError:
                pass  # the label still holds for this session; the run itself is intact
        self._emit("changed", key)

    def rename(self, key: str, name: str) -> str | None:
        """Rename a run (made unique, persisted; a live run's once it ends); returns the name
        given, None if refused."""
        run = self._runs.get(key)
        name = " ".join(name.split())[:200]
        if run is None or not name:
            return None
        name = self.unique_name(name, exclude=key)
        if name != run.name:
            run.name = name
            self._write_labels(run, name=name)
            self._emit("changed", key)
        return name

    def set_hidden(self, key: str, hidden: bool) -> None:
        run = self._runs.get(key)
        if run is not None and run.hidden != hidden:
            run.hidden = hidden
            self._write_labels(run, hidden=hidden)
            self._emit("changed", key)

    def _write_labels(self, run: RunInfo, **labels: Any) -> None:
        # a live run's folder must stay empty until its writer has opened it (the engine refuses
        # a run folder that holds files), so its labels wait for the end of the run (update())
        if run.live:
            self._pending_labels.setdefault(run.key, {}).update(labels)
        else:
            write_labels(run.key, **labels)

    # ---------------------------------------------------------------- reading folders
    def load_dir(self, runs_dir: str | Path) -> list[str]:
        """Add every run folder below runs_dir (in folder-name order); returns one line per
        folder that could not be read. Never raises: reading runs is parsing untrusted files."""
        from engine.runs import scan_runs  # lazy: keeps the window's start-up light

        records, problems = scan_runs(runs_dir)
        for rec in records:
            self.add(_run_info(rec))
        return problems


def read_run(path: str | Path) -> RunInfo:
    """A finished or interrupted run folder as a RunInfo (DataError when it cannot be read)."""
    from engine.runs import load_run  # lazy: keeps the window's start-up light

    return _run_info(load_run(path))


def _run_info(rec) -> RunInfo:
    path = rec.path
    labels = read_labels(path)
    count, nbytes = param_size(Path(path) / "model.npz")
    return RunInfo(
        key=str(path),
        name=labels.get("name") or default_run_name(path),
        config=rec.config,
        metrics=list(rec.metrics),
        summary=rec.summary,
        hidden=labels.get("hidden", False),
        param_count=count,
        param_bytes=nbytes,
    )
