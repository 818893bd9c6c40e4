"""What runs on a Dask worker: one sweep trial, with the data cached per worker process.

:func:`execute` is the task the sweep runner submits, once per trial. It trains the
trial's config with :func:`engine.experiment.run_experiment` into a temporary run folder
on the worker, with ONE BLAS thread (``threadpoolctl.threadpool_limits(1)`` and the
trainer's ``max_blas_threads=1``: a worker per core, each single-threaded), and returns the
folder's files in a :class:`TrialOutput`; the client writes them into ``DIR/trials/<id>/``.
So the worker's disk and the client's need not be shared, and a run folder has one writer.

Talking to the client while a trial runs (:class:`DaskChannel`), all named per sweep run:

- per-epoch metrics: ``Worker.log_event(topic, …)`` — fire-and-forget through the worker's
  batched connection to the scheduler, which forwards to the subscribed client. Records are
  batched: at most one event every ``progress_interval`` seconds per trial (and one at the
  end), so thousands of short epochs do not flood the scheduler;
- stop: a ``distributed.Event``; a watcher thread long-polls it and sets a local flag that
  the trainer checks between mini-batches (``should_stop``), so a running trial stops at
  its next mini-batch with ``stop_reason`` ``cancelled`` (Dask cannot interrupt a task);
- pruning: at a rung epoch the trial sends its dev loss and waits for the client's verdict
  on a ``distributed.Variable`` (one decision maker, see :mod:`engine.sweep_prune`); a
  pruned trial stops there and its summary.json says ``stop_reason: "pruned"``.

Data once per worker: :func:`cached_data` keeps the loaded sources (keyed by the data
config without ``train_limit``, so a learning curve loads once) and the prepared sets
(keyed by the whole data config) in small LRU caches of this worker process. Trials on the
same worker with the same data settings reuse them; a path source must exist at the same
path on every worker (built-in sets are generated on the worker).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import sys
import tempfile
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import ExperimentConfig, from_dict
from engine.dataset import PreparedData, SourceData
from engine.errors import Cancelled, InputError
from engine.sweep import canonical_json

PROTOCOL = 1  # bumped when TrialTask / TrialOutput / the event messages change
SOURCES_CACHE_SIZE = 2
PREPARED_CACHE_SIZE = 2


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs for one trial (small: the data is loaded on the worker)."""

    trial_id: str
    config: dict  # the full config (ExperimentConfig.to_dict())
    topic: str  # event topic of this sweep run; also the prefix of its Variable names
    stop_event: str  # name of the sweep run's distributed.Event
    rungs: tuple[int, ...] = ()  # pruning rung epochs (empty: no pruning)
    progress_interval: float = 0.25  # seconds between progress events of one trial


@dataclass(frozen=True)
class TrialOutput:
    """What a trial sends back. files: the run folder's files (name -> bytes), empty when the
    trial was cancelled before it trained; error: an InputError's one line (stops the sweep)."""

    trial_id: str
    worker: str
    seconds: float  # wall time of the trial on the worker
    n_train: int = 0
    data_loaded: bool = False
    summary: dict | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None
    crash: str | None = None  # an unexpected exception, ``Type: message`` (a bug: exit status 1)
    details: str | None = None  # its traceback on the worker


def rung_variable(topic: str, trial_id: str, epoch: int) -> str:
    """Name of the Variable carrying the client's verdict for one trial at one rung."""
    return f"{topic}:rung:{trial_id}:{epoch}"


# ---------------------------------------------------------------- the data cache

_cache_lock = threading.Lock()
_sources: OrderedDict[str, dict[str, SourceData]] = OrderedDict()
_prepared: OrderedDict[str, PreparedData] = OrderedDict()
_loads = 0


def cached_data(cfg: ExperimentConfig, cancel: Callable[[], bool] | None = None) -> tuple[PreparedData, bool]:
    """(prepared data, whether the sources were loaded now) for cfg's data settings, from this
    process's cache when possible (see the module docstring)."""
    from engine.prepare import load_sources, prepare_from_sources

    global _loads
    data = dataclasses.asdict(cfg.data)
    key_prepared = canonical_json(data)
    key_sources = canonical_json({**data, "train_limit": None})
    with _cache_lock:
        if key_prepared in _prepared:
            _prepared.move_to_end(key_prepared)
            return _prepared[key_prepared], False
        loaded = key_sources not in _sources
        if loaded:
            _sources[key_sources] = load_sources(cfg.data, cancel=cancel)
            _loads += 1
            while len(_sources) > SOURCES_CACHE_SIZE:
                _sources.popitem(last=False)
        else:
            _sources.move_to_end(key_sources)
        prepared = prepare_from_sources(cfg, _sources[key_sources])
        _prepared[key_prepared] = prepared
        while len(_prepared) > PREPARED_CACHE_SIZE:
            _prepared.popitem(last=False)
        return prepared, loaded


def cache_info() -> dict:
    """How often this process loaded sources, and what its caches hold (for tests and probes)."""
    with _cache_lock:
        return {"loads": _loads, "sources": len(_sources), "prepared": len(_prepared)}


def clear_cache() -> None:
    global _loads
    with _cache_lock:
        _sources.clear()
        _prepared.clear()
        _loads = 0


# ---------------------------------------------------------------- the worker's identity


def engine_digest() -> str:
    """A hash of the engine's source files: workers must run the client's RegLab code."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def probe() -> dict:
    """Run on every worker before a sweep: importing this module proves RegLab is installed there."""
    return {
        "protocol": PROTOCOL,
        "engine": engine_digest(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }


# ---------------------------------------------------------------- the channel to the client


class DaskChannel:
    """A trial's line to the sweep's client through the scheduler (see the module docstring).

    Create it in the task's thread (it finds the worker and its client there)."""

    def __init__(self, task: TrialTask):
        from distributed import Event, get_worker

        self.task = task
        self.worker = get_worker()
        self.address = str(self.worker.address)
        self._stop = threading.Event()
        self._done = threading.Event()
        self._pending: list[dict] = []
        self._last_flush = time.monotonic()
        self._dask_stop = Event(task.stop_event)
        if self._dask_stop.is_set():  # cancelled while this task was queued
            self._stop.set()
        else:
            threading.Thread(target=self._watch, name=f"stop-watch {task.trial_id}", daemon=True).start()

    def _watch(self) -> None:
        while not self._done.is_set():
            try:
                if self._dask_stop.wait(timeout=0.5):
                    self._stop.set()
                    return
            except Exception:  # the client or scheduler went away: stop rather than run orphaned
                if not self._done.is_set():
                    self._stop.set()
                return

    def _emit(self, kind: str, **payload: Any) -> None:
        self.worker.log_event(self.task.topic, {"kind": kind, "trial": self.task.trial_id, **payload})

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def started(self) -> None:
        self._emit("start", worker=self.address)

    def progress(self, record: dict) -> None:
        """Queue one epoch's metrics dict; sent in batches (at most one event per interval)."""
        self._pending.append(record)
        if time.monotonic() - self._last_flush >= self.task.progress_interval:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._emit("progress", records=self._pending)
            self._pending = []
        self._last_flush = time.monotonic()

    def ask_rung(self, epoch: int, dev_loss: float | None) -> dict:
        """Report a rung and wait for the verdict ``{"promote": bool, "message": str}``."""
        from distributed import Variable

        self.flush()
        self._emit("rung", epoch=int(epoch), dev_loss=_finite_or_none(dev_loss))
        var = Variable(rung_variable(self.task.topic, self.task.trial_id, epoch))
        while True:
            try:
                verdict = var.get(timeout=0.5)
                break
            except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
                if self._stop.is_set():
                    return {"promote": True, "message": "stopped while waiting for the pruning verdict"}
        var.delete()
        return dict(verdict)

    def close(self) -> None:
        self.flush()
        self._emit("end")
        self._done.set()


def _finite_or_none(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


# ---------------------------------------------------------------- the trial


def execute(task: TrialTask) -> TrialOutput:
    """The Dask task: one trial on this worker (see the module docstring)."""
    channel = DaskChannel(task)
    t0 = time.perf_counter()
    try:
        return run_trial(task, channel)
    except Exception as exc:  # a bug: reported to the client, not logged by Dask on the worker
        return TrialOutput(
            task.trial_id,
            channel.address,
            time.perf_counter() - t0,
            crash=f"{type(exc).__name__}: {' '.join(str(exc).split())}",
            details=traceback.format_exc(),
        )
    finally:
        channel.close()


def run_trial(task: TrialTask, channel: DaskChannel) -> TrialOutput:
    """Train one trial with `channel` for progress, stop and pruning; the run folder comes back as files."""
    from threadpoolctl import threadpool_limits

    from engine.experiment import run_experiment
    from engine.fileio import atomic_write_json
    from engine.runs import SUMMARY_FILE

    t0 = time.perf_counter()
    address = channel.address

    def output(**kw: Any) -> TrialOutput:
        return TrialOutput(task.trial_id, address, time.perf_counter() - t0, **kw)

    if channel.should_stop():
        return output()
    channel.started()
    try:
        cfg = from_dict(task.config)
        data, loaded = cached_data(cfg, cancel=channel.should_stop)
    except InputError as exc:
        return output(error=str(exc))
    except Cancelled:
        return output()
    rungs = set(task.rungs)
    verdict = None
    with threadpool_limits(limits=1), tempfile.TemporaryDirectory(prefix="reglab-trial-") as tmp:
        run_dir = Path(tmp) / "run"
        exp = run_experiment(cfg, run_dir, data=data, should_stop=channel.should_stop, max_blas_threads=1)
        records = exp.records()
        for record in records:
            channel.progress(record.metrics_dict())
            if record.epoch in rungs and record.stop_reason is None:
                answer = channel.ask_rung(record.epoch, record.dev_loss)
                if not answer.get("promote", True):
                    verdict = answer
                    records.close()  # the experiment writes its summary and model now
                    break
        summary = dict(exp.summary or {})
        if verdict is not None:
            summary["stop_reason"] = "pruned"
            summary["message"] = str(verdict.get("message") or "pruned by successive halving")
            atomic_write_json(run_dir / SUMMARY_FILE, summary)
        files = {
            p.name: p.read_bytes()
            for p in sorted(run_dir.iterdir())
            if p.is_file() and not p.is_symlink() and not p.name.startswith(".")
        }
    return output(n_train=len(data.train), data_loaded=loaded, summary=summary, files=files)
