"""Running a sweep: the output folder, resume, the Dask cluster, trials as they finish, cancel.

What the command line and the window call (Qt-free)::

    runner = SweepRunner(definition, out_dir, workers=None, scheduler=None)
    runner.prepare()                 # check/create DIR, write sweep.json, find finished trials
    for event in runner.events():    # blocking; or runner.start(on_event) in a thread of its own
        ...                          # SweepStarted, TrialStarted, TrialProgress, TrialFinished, SweepFinished
    runner.cancel()                  # from any thread: running trials stop at their next mini-batch

Execution: by default a ``distributed.LocalCluster`` of processes (one thread and one BLAS
thread each; ``workers`` of them, default one per core, never more than the trials left),
started only when there is a trial to run and closed at the end; ``scheduler`` =
``tcp://HOST:PORT`` uses an existing cluster instead (its workers need RegLab installed:
every worker is probed before anything is submitted, and a worker that cannot import
RegLab, or runs different engine code, stops the sweep with one line naming its address).
``distributed`` is imported only here, inside :meth:`SweepRunner.events`, never when the
module is imported, so the window and the other commands start as fast as before.

Output folder (see :mod:`engine.sweep_results`): ``sweep.json`` is written atomically before
any trial runs; a folder that holds a different sweep, or other files and no sweep.json, is
refused (ConfigError / InputError). Each trial's run folder is written by this (client)
side from the files the worker sends back: into ``trials/.<id>.partial-<random>`` first,
then renamed to ``trials/<id>``, and its row is appended to the results files afterwards.

Resume: a trial counts as done when ``trials/<id>/summary.json`` exists and results.jsonl has
its row (and it was not cancelled). Everything else of this sweep under ``trials/`` — a folder
without a row, a cancelled trial, a staging folder of a killed run — is removed (only direct
children of ``DIR/trials`` whose names are this sweep's trial ids or staging names) and the
trial runs again; the results files are rewritten from the done rows. A sweep with nothing
left to run starts no cluster.

Cancel: the stop Event is set (running trials end at their next mini-batch with
``stop_reason`` ``cancelled``, their run folders are kept but get no results row), trials
not yet started are cancelled, the runner waits until every started trial has reported its
end (``cancel_timeout``), and then closes the client and the local cluster, so nothing keeps
running on the cluster.

Errors: a trial whose data or config is unusable on its worker (an InputError there) stops
the sweep with :class:`SweepError` (an InputError, exit status 2); any other exception in a
trial stops it with :class:`TrialFailed` (exit status 1). Either way the cluster is torn down.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import ConfigError
from engine.errors import DataError, InputError
from engine.fileio import atomic_write_json
from engine.runs import METRICS_FILE, SUMMARY_FILE, read_metrics
from engine.sweep import SweepDefinition, Trial
from engine.sweep_prune import SuccessiveHalving
from engine.sweep_results import (
    PRUNED,
    SWEEP_FILE,
    TRIALS_DIR,
    ResultsWriter,
    read_results,
    result_row,
)

CANCELLED = "cancelled"
_STAGING_MARK = ".partial-"
_LOG = logging.getLogger(__name__)


class SweepError(InputError):
    """The sweep cannot run: a cluster that cannot be reached or cannot run RegLab, a trial's
    unusable data (one line, exit status 2)."""


class TrialFailed(RuntimeError):
    """A trial raised an unexpected exception on its worker (one line, exit status 1);
    ``details`` holds the worker's traceback when there is one."""

    def __init__(self, message: str, details: str | None = None):
        super().__init__(message)
        self.details = details


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class SweepProgress:
    """Counts for a progress bar: trials done (this run + found done) of total, running, ETA."""

    total: int
    done: int
    resumed: int  # done before this run started (kept from an earlier run)
    running: int
    pruned: int
    elapsed: float  # seconds since trials were first submitted
    eta_seconds: float | None  # None until a trial of this run has finished


@dataclass(frozen=True)
class SweepStarted:
    progress: SweepProgress
    todo: int  # trials this run will run
    cluster: str  # "local (N workers)", the scheduler address, or "none" when nothing is left to run
    workers: tuple[str, ...]  # worker addresses


@dataclass(frozen=True)
class TrialStarted:
    progress: SweepProgress
    trial_id: str
    worker: str


@dataclass(frozen=True)
class TrialProgress:
    """New epochs of a running trial: metrics.jsonl-style dicts, batched (several per event)."""

    progress: SweepProgress
    trial_id: str
    records: tuple[dict, ...]


@dataclass(frozen=True)
class TrialFinished:
    """A trial ended. row: its results row (None for a cancelled trial, which gets no row)."""

    progress: SweepProgress
    trial_id: str
    stop_reason: str | None
    row: dict | None
    run_dir: Path | None  # None when it was cancelled before it trained


@dataclass(frozen=True)
class SweepFinished:
    progress: SweepProgress
    outcome: SweepOutcome


@dataclass(frozen=True)
class SweepOutcome:
    out_dir: Path
    total: int
    ran: int  # trials finished in this run (with a results row)
    resumed: int
    pruned: int  # pruned trials among all done ones
    cancelled: bool
    cluster_started: bool
    seconds: float
    rows: tuple[dict, ...] = field(default=())  # every results row, in results.jsonl order

    @property
    def complete(self) -> bool:
        return self.ran + self.resumed == self.total


SweepEvent = SweepStarted | TrialStarted | TrialProgress | TrialFinished | SweepFinished


# ---------------------------------------------------------------- the runner


class SweepRunner:
    """Runs one sweep into an output folder (see the module docstring)."""

    def __init__(
        self,
        definition: SweepDefinition,
        out_dir: str | Path,
        *,
        workers: int | None = None,
        scheduler: str | None = None,
        trial_function: Callable | None = None,
        progress_interval: float = 0.25,
        connect_timeout: float = 10.0,
        cancel_timeout: float = 60.0,
    ):
        if workers is not None and scheduler is not None:
            raise ConfigError("--workers applies to the local cluster only; leave it out with --scheduler")
        if workers is not None and not 1 <= workers <= 1024:
            raise ConfigError(f"--workers must be in [1, 1024], got {workers}")
        self.definition = definition
        self._trials = {t.id: t for t in definition.trials}
        self.out_dir = Path(out_dir)
        self.workers = workers
        self.scheduler = scheduler
        self.trial_function = trial_function
        self.progress_interval = float(progress_interval)
        self.connect_timeout = float(connect_timeout)
        self.cancel_timeout = float(cancel_timeout)
        self._cancel = threading.Event()
        self._wake: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._prepared = False
        self._done_rows: dict[str, dict] = {}
        self._rows: list[dict] = []
        self._history: dict[str, list[dict]] = {}
        self._running: dict[str, str] = {}  # trial id -> worker
        self._ran = 0
        self._t_start: float | None = None
        self._thread: threading.Thread | None = None
        self._outcome: SweepOutcome | None = None
        self._trial_error: BaseException | None = None  # ends the sweep once the cluster is torn down
        self._thread_error: BaseException | None = None  # what start()'s thread ended with
        self._used = False
        self._pruner: SuccessiveHalving | None = None
        self._finished: set[str] = set()  # trials of this run whose task has ended
        self._verdicts: list[str] = []  # rung Variables set on the scheduler (deleted at the end)
        self.cluster_started = False

    # ------------------------------------------------------------ control (any thread)
    def cancel(self) -> None:
        """Stop the sweep: running trials end at their next mini-batch, nothing new starts."""
        self._cancel.set()
        self._wake.put(("cancel", None))

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def trial_history(self, trial_id: str) -> list[dict]:
        """A trial's epochs: those received so far while it runs (metrics.jsonl-style dicts), its
        run folder's metrics.jsonl once it has one. Only running trials are held in memory."""
        with self._lock:
            if trial_id in self._history:
                return list(self._history[trial_id])
        return read_metrics(self.out_dir / TRIALS_DIR / trial_id / METRICS_FILE)

    @property
    def progress(self) -> SweepProgress:
        with self._lock:
            return self._progress_locked()

    def start(self, on_event: Callable[[SweepEvent], None] | None = None) -> None:
        """Run :meth:`events` in a background thread, passing each event to on_event (called in
        that thread: a window must hand it to its own thread). :meth:`wait` collects the end."""
        if self._thread is not None:
            raise RuntimeError("a SweepRunner runs once")

        def drive() -> None:
            try:
                for event in self.events():
                    if on_event is not None:
                        on_event(event)
            except BaseException as exc:  # handed to wait()
                self._thread_error = exc

        self._thread = threading.Thread(target=drive, name="sweep-runner", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> SweepOutcome | None:
        """Wait for a started sweep; returns its outcome (None on timeout), re-raises its error."""
        if self._thread is None:
            raise RuntimeError("start() first")
        self._thread.join(timeout)
        if self._thread.is_alive():
            return None
        if self._thread_error is not None:
            raise self._thread_error
        return self._outcome

    def run(self, on_event: Callable[[SweepEvent], None] | None = None) -> SweepOutcome:
        """Run the sweep in this thread (the command line's way)."""
        for event in self.events():
            if on_event is not None:
                on_event(event)
        assert self._outcome is not None
        return self._outcome

    # ------------------------------------------------------------ the output folder
    def prepare(self) -> list[Trial]:
        """Check or create the output folder, write sweep.json, keep finished trials, clean the
        rest (see the module docstring); returns the trials left to run."""
        d = self.definition
        out = self.out_dir
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out}: exists and is not a folder")
        sweep_file = out / SWEEP_FILE
        if sweep_file.is_file():
            import json

            try:
                stored = json.loads(sweep_file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(f"--out {out}: {SWEEP_FILE} is not readable ({exc})") from None
            reason = d.difference(stored)
            if reason is not None:
                raise ConfigError(f"--out {out} holds a different sweep: {reason}; use another --out folder")
        else:
            if out.is_dir() and any(out.iterdir()):
                raise InputError(
                    f"--out {out}: the folder is not empty and holds no {SWEEP_FILE}; use a new folder"
                )
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(sweep_file, d.to_dict())
        trials_dir = out / TRIALS_DIR
        trials_dir.mkdir(exist_ok=True)

        ids = {t.id for t in d.trials}
        rows_by_id: dict[str, dict] = {}
        for row in read_results(out):
            tid = row["trial_id"]
            if tid in ids and row.get("stop_reason") != CANCELLED and _complete(trials_dir / tid):
                rows_by_id[tid] = row
        # every other folder of this sweep's trials is redone cleanly
        for child in list(trials_dir.iterdir()):
            name = child.name
            staging = (
                name.startswith(".") and _STAGING_MARK in name and name[1:].split(_STAGING_MARK)[0] in ids
            )
            if staging or (name in ids and name not in rows_by_id):
                _remove_inside(trials_dir, child)
        keep = [r for r in read_results(out) if r["trial_id"] in rows_by_id]
        seen: set[str] = set()
        unique = []
        for r in reversed(keep):  # the last row of a trial wins
            if r["trial_id"] not in seen:
                seen.add(r["trial_id"])
                unique.append(r)
        unique.reverse()
        self._results = ResultsWriter(out, d.fields)
        self._results.rewrite(unique)
        with self._lock:
            self._done_rows = {r["trial_id"]: r for r in unique}
            self._rows = list(unique)
        if d.prune is not None:
            self._pruner = SuccessiveHalving(d.prune.eta, d.prune.min_epochs)
            for r in unique:
                losses = [m.get("dev_loss") for m in read_metrics(trials_dir / r["trial_id"] / METRICS_FILE)]
                self._pruner.record_history(r["trial_id"], losses)
        self._prepared = True
        return [t for t in d.trials if t.id not in self._done_rows]

    # ------------------------------------------------------------ the run
    def events(self) -> Iterator[SweepEvent]:
        """Run the sweep, yielding events as they happen (see the module docstring)."""
        if self._used:
            raise RuntimeError("a SweepRunner runs once; make a new one to run the sweep again")
        self._used = True
        t0 = time.perf_counter()
        todo = (
            self.prepare()
            if not self._prepared
            else [t for t in self.definition.trials if t.id not in self._done_rows]
        )
        resumed = len(self._done_rows)
        try:
            if not todo or self._cancel.is_set():
                yield SweepStarted(self.progress, 0, "none", ())
            else:
                yield from self._run_on_cluster(todo)
        finally:
            self._results.close()
        with self._lock:
            rows = tuple(self._rows)
            pruned = sum(1 for r in rows if r.get("stop_reason") == PRUNED)
        self._outcome = SweepOutcome(
            out_dir=self.out_dir,
            total=len(self.definition.trials),
            ran=self._ran,
            resumed=resumed,
            pruned=pruned,
            cancelled=self._cancel.is_set() and self._ran + resumed < len(self.definition.trials),
            cluster_started=self.cluster_started,
            seconds=time.perf_counter() - t0,
            rows=rows,
        )
        yield SweepFinished(self.progress, self._outcome)

    def _run_on_cluster(self, todo: list[Trial]) -> Iterator[SweepEvent]:
        import distributed  # the only place distributed is imported (see the module docstring)

        run_id = uuid.uuid4().hex[:12]
        topic = f"reglab-sweep-{run_id}"
        stop_name = f"{topic}-stop"
        cluster = client = None
        futures: dict[str, Any] = {}
        key_of: dict[str, str] = {}
        inbox = self._wake
        stopping = False
        try:
            cluster, client, label = self._connect(distributed, len(todo))
            workers = self._probe(client)
            stop_event = distributed.Event(stop_name, client=client)
            client.subscribe_topic(topic, lambda ev: inbox.put(("event", ev[1])))
            with self._lock:
                self._t_start = time.perf_counter()
            yield SweepStarted(self.progress, len(todo), label, tuple(workers))
            if self._cancel.is_set():  # cancelled while the cluster started: submit nothing
                return

            fn = self.trial_function
            if fn is None:
                from engine.sweep_worker import execute as fn
            from engine.sweep_worker import TrialTask

            for trial in todo:
                cfg = self.definition.trial_config(trial)
                rungs = self._pruner.rungs(cfg.training.epochs) if self._pruner is not None else ()
                task = TrialTask(
                    trial.id, cfg.to_dict(), topic, stop_name, tuple(rungs), self.progress_interval
                )
                key = f"reglab-trial-{run_id}-{trial.id}"
                fut = client.submit(fn, task, key=key, pure=False)
                futures[trial.id] = fut
                key_of[key] = trial.id
                fut.add_done_callback(lambda f: inbox.put(("done", f)))

            deadline = None
            while futures or (stopping and self._running_count()):
                if self._cancel.is_set() and not stopping:
                    stopping = True
                    deadline = time.monotonic() + self.cancel_timeout
                    self._stop_trials(client, stop_event, futures)
                if stopping and time.monotonic() > deadline:
                    _LOG.warning("sweep: trials still running %.0f s after cancel", self.cancel_timeout)
                    break
                try:
                    kind, item = inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                if kind == "event":
                    event = self._on_message(client, distributed, topic, item)
                    if event is not None:
                        yield event
                elif kind == "done":
                    tid = key_of.get(item.key)
                    if tid is None or futures.pop(tid, None) is None:
                        continue
                    self._finished.add(tid)
                    with self._lock:
                        self._history.pop(tid, None)
                    if item.status == "cancelled":
                        continue
                    yield from self._on_done(tid, item)
                    if self._trial_error is not None and not stopping:
                        self._cancel.set()
        finally:
            self._teardown(client, cluster, futures, topic, stop_name, stopping)
        if self._trial_error is not None:
            raise self._trial_error

    def _connect(self, distributed, n_todo: int):
        silence = logging.ERROR
        logging.getLogger("distributed").setLevel(silence)
        if self.scheduler is None:
            n = min(self.workers or _cpu_count(), n_todo)
            cluster = start_local_cluster(n)
            self.cluster_started = True
            try:
                client = distributed.Client(cluster, set_as_default=False)
            except BaseException:
                cluster.close()
                raise
            return cluster, client, f"local ({n} worker{'s' if n != 1 else ''})"
        address = self.scheduler
        try:
            client = distributed.Client(address, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepError(f"--scheduler {address}: cannot connect ({_one_line(exc)})") from None
        self.cluster_started = True
        try:
            client.wait_for_workers(1, timeout=self.connect_timeout)
        except (TimeoutError, OSError) as exc:
            client.close()
            raise SweepError(
                f"--scheduler {address}: no workers joined within {self.connect_timeout:g} s "
                f"(start one with: dask worker {address}) ({_one_line(exc)})"
            ) from None
        return None, client, address

    def _probe(self, client) -> list[str]:
        """Every worker (and an outside scheduler) must import RegLab and run this engine code;
        one line naming the one that cannot."""
        from engine.sweep_worker import probe

        timeout = self.connect_timeout * 3
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            if self.scheduler is not None:
                # the scheduler unpickles the submitted tasks, so it needs RegLab too
                try:
                    answer = pool.submit(client.run_on_scheduler, probe).result(timeout=timeout)
                except FutureTimeout:
                    raise SweepError(
                        f"--scheduler {self.scheduler}: no answer within {timeout:g} s"
                    ) from None
                except Exception as exc:
                    answer = exc
                self._check_probe(f"the scheduler {self.scheduler}", answer)
            try:
                answers = pool.submit(client.run, probe, on_error="return").result(timeout=timeout)
            except FutureTimeout:
                raise SweepError(
                    f"the workers did not answer within {timeout:g} s (are they busy or stuck?)"
                ) from None
        finally:
            pool.shutdown(wait=False)
        for address, answer in sorted(answers.items()):
            self._check_probe(f"worker {address}", answer)
        if not answers:
            raise SweepError("the cluster has no workers")
        return sorted(answers)

    @staticmethod
    def _check_probe(who: str, answer: Any) -> None:
        from engine.sweep_worker import PROTOCOL, engine_digest

        if isinstance(answer, BaseException):
            detail = _exception_text(answer)
            raise SweepError(
                f"{who} cannot run RegLab trials ({detail}); install RegLab in its Python environment "
                "(the scheduler and every worker need it)"
            )
        mine = engine_digest()
        if not isinstance(answer, dict) or answer.get("protocol") != PROTOCOL or answer.get("engine") != mine:
            theirs = answer.get("engine") if isinstance(answer, dict) else answer
            raise SweepError(
                f"{who} runs different RegLab engine code (engine {theirs}, here {mine}); "
                "install the same RegLab version everywhere"
            )

    def _on_message(self, client, distributed, topic: str, msg: dict) -> SweepEvent | None:
        kind = msg.get("kind")
        tid = msg.get("trial")
        if not isinstance(tid, str):
            return None
        if kind == "end":
            # also for a finished task: a trial cancelled while it had just started (its start
            # came after the cancel was decided) has a done future and still runs; its end is
            # what the wait for running trials waits for
            with self._lock:
                self._running.pop(tid, None)
            return None
        if tid in self._finished:
            return None  # a late message of a trial whose task is over (or was cancelled)
        if kind == "start":
            with self._lock:
                self._running[tid] = str(msg.get("worker"))
                self._history[tid] = []
            return TrialStarted(self.progress, tid, str(msg.get("worker")))
        if kind == "progress":
            # msgpack hands lists back as tuples: make each record equal its metrics.jsonl line
            records = tuple(
                {k: list(v) if isinstance(v, tuple) else v for k, v in r.items()}
                for r in msg.get("records") or ()
            )
            with self._lock:
                if tid not in self._running:
                    return None  # late epochs of a trial that has already ended
                self._history.setdefault(tid, []).extend(records)
            return TrialProgress(self.progress, tid, records)
        if kind == "rung" and self._pruner is not None:
            from engine.sweep_worker import rung_variable

            decision = self._pruner.report(tid, int(msg["epoch"]), msg.get("dev_loss"))
            verdict = {"promote": bool(decision.promote), "message": decision.message()}
            name = rung_variable(topic, tid, decision.epoch)
            distributed.Variable(name, client=client).set(verdict)
            self._verdicts.append(name)
        return None

    def _on_done(self, tid: str, future) -> Iterator[SweepEvent]:
        trial = self._trials[tid]
        try:
            out = future.result()
        except Exception as exc:  # the task raised, its worker died, or the scheduler lost it
            with self._lock:
                worker = self._running.pop(tid, None) or self._erred_on(future)
            if self._trial_error is None:
                self._trial_error = TrialFailed(
                    f"trial {tid} failed on worker {worker}: {_exception_text(exc)}"
                )
            return
        with self._lock:
            self._running.pop(tid, None)
        if out.crash is not None:
            if self._trial_error is None:
                self._trial_error = TrialFailed(
                    f"trial {tid} failed on worker {out.worker}: {out.crash}", out.details
                )
            return
        if out.error is not None:
            if self._trial_error is None:
                self._trial_error = SweepError(f"trial {tid} on worker {out.worker}: {out.error}")
            return
        if not out.files:  # cancelled before it trained
            yield TrialFinished(self.progress, tid, CANCELLED, None, None)
            return
        run_dir = _write_trial(self.out_dir / TRIALS_DIR, tid, out.files)
        stop = (out.summary or {}).get("stop_reason")
        if stop == CANCELLED:
            yield TrialFinished(self.progress, tid, stop, None, run_dir)
            return
        row = result_row(
            tid,
            trial.values,
            trial.seed,
            out.summary or {},
            n_train=out.n_train,
            seconds=out.seconds,
            worker=out.worker,
            data_loaded=out.data_loaded,
            run_dir=f"{TRIALS_DIR}/{tid}",
        )
        self._results.append(row)
        with self._lock:
            self._rows.append(row)
            self._done_rows[tid] = row
            self._ran += 1
        yield TrialFinished(self.progress, tid, stop, row, run_dir)

    @staticmethod
    def _erred_on(future) -> str:
        """The worker a failed task ran on, asked of the scheduler ("?" when it cannot say)."""
        try:
            return ", ".join(future.client.run_on_scheduler(erred_on, future.key)) or "?"
        except Exception:
            return "?"

    def _stop_trials(self, client, stop_event, futures: dict[str, Any]) -> None:
        stop_event.set()
        with self._lock:
            started = set(self._running)
        queued = [f for tid, f in futures.items() if tid not in started]
        if queued:
            client.cancel(queued)

    def _running_count(self) -> int:
        with self._lock:
            return len(self._running)

    def _teardown(self, client, cluster, futures, topic: str, stop_name: str, stopping: bool) -> None:
        """Stop what still runs, then close the client and the local cluster.

        The stop Event is set in every case: it also wakes the workers' stop watchers, so no
        wait is pending on the scheduler when it closes; it is cleared (deleted) at the end."""
        try:
            if client is not None:
                import distributed

                stop = distributed.Event(stop_name, client=client)
                if futures or self._running_count():
                    self._cancel.set()
                    self._stop_trials(client, stop, futures)
                    deadline = time.monotonic() + self.cancel_timeout
                    while self._running_count() and time.monotonic() < deadline:
                        try:
                            kind, item = self._wake.get(timeout=0.1)
                        except queue.Empty:
                            continue
                        if kind == "event" and item.get("kind") == "end":
                            with self._lock:
                                self._running.pop(item.get("trial"), None)
                    if futures:
                        client.cancel(list(futures.values()))
                try:
                    stop.set()
                    client.unsubscribe_topic(topic)
                    for name in self._verdicts:  # verdicts not read by a trial
                        distributed.Variable(name, client=client).delete()
                    time.sleep(0.05)  # let the woken watchers' waits return before the event goes
                    stop.clear()
                except Exception as exc:  # the scheduler may be gone already
                    _LOG.debug("sweep teardown: %s", exc)
                client.close()
        finally:
            if cluster is not None:
                cluster.close()

    # ------------------------------------------------------------ helpers
    def _progress_locked(self) -> SweepProgress:
        total = len(self.definition.trials)
        done = len(self._done_rows)
        resumed = done - self._ran
        elapsed = time.perf_counter() - self._t_start if self._t_start is not None else 0.0
        eta = None
        if self._ran > 0 and elapsed > 0:
            eta = (total - done) * elapsed / self._ran
        pruned = sum(1 for r in self._done_rows.values() if r.get("stop_reason") == PRUNED)
        return SweepProgress(total, done, resumed, len(self._running), pruned, elapsed, eta)


def erred_on(key: str, dask_scheduler=None) -> list[str]:
    """Run on the scheduler: the workers a failed task failed on."""
    ts = dask_scheduler.tasks.get(key)
    return sorted(getattr(ts, "erred_on", ()) or ()) if ts is not None else []


# ---------------------------------------------------------------- the local cluster

BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Preloaded in the forkserver that forks the local workers: each worker starts as a copy of a
# process that has already imported these, instead of importing them itself.
WORKER_PRELOAD = ("distributed", "numpy", "engine.sweep_worker", "engine.experiment")


def start_local_cluster(n_workers: int):
    """A ``distributed.LocalCluster`` of n single-threaded worker processes on 127.0.0.1, without
    dashboard or log noise, each with one BLAS thread.

    On Linux the workers are forked from a ``forkserver`` with :data:`WORKER_PRELOAD` imported
    (never plain ``fork``: the calling process may run Qt threads). Measured on the 2-core build
    machine under load (average 4.8): a 2-worker cluster started in 1.5–2.0 s this way against
    2.8–5.0 s with ``spawn`` (each spawned worker imports distributed itself), and closed in
    0.1 s against 1.0 s (benchmarks/sweep_bench.py measures it). The Nanny writes its
    ``pre-spawn-environ`` (OMP/MKL/OPENBLAS_NUM_THREADS=1, PYTHONHASHSEED, …) into this
    process's environment before it starts a worker; the environment is put back afterwards
    so the caller (the window) is not changed.
    """
    import logging
    import multiprocessing
    import sys

    import dask
    import distributed
    from distributed.utils import get_mp_context

    method = "spawn"
    if sys.platform.startswith("linux") and "forkserver" in multiprocessing.get_all_start_methods():
        method = "forkserver"
    saved = dict(os.environ)
    try:
        with dask.config.set({"distributed.worker.multiprocessing-method": method}):
            if method == "forkserver":
                get_mp_context()  # distributed sets its own preload list once; ours replaces it
                multiprocessing.get_context("forkserver").set_forkserver_preload(list(WORKER_PRELOAD))
            return distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # the scheduler serves a few HTTP routes even without a dashboard, by default on
                # port 8787 (with a warning when that is taken): a free loopback port instead
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
                host="127.0.0.1",
                env=dict(BLAS_ENV),
            )
    finally:
        _restore_environ(saved)


def _restore_environ(saved: dict[str, str]) -> None:
    for key in [k for k in os.environ if k not in saved]:
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


# ---------------------------------------------------------------- files


def _complete(run_dir: Path) -> bool:
    """A trial folder whose summary.json is there and readable."""
    import json

    path = run_dir / SUMMARY_FILE
    if run_dir.is_symlink() or not path.is_file():
        return False
    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False


def _remove_inside(parent: Path, child: Path) -> None:
    """Remove one direct child of parent (a symlink is unlinked, never followed)."""
    if child.parent != parent:
        raise ValueError(f"{child} is not directly inside {parent}")
    if child.is_symlink() or not child.is_dir():
        child.unlink()
    else:
        shutil.rmtree(child)


def _write_trial(trials_dir: Path, trial_id: str, files: dict[str, bytes]) -> Path:
    """Write a trial's run folder: staging folder first, then one rename (see the module docstring)."""
    final = trials_dir / trial_id
    staging = trials_dir / f".{trial_id}{_STAGING_MARK}{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        for name, data in files.items():
            if not name or "/" in name or "\\" in name or name.startswith(".") or name in ("..",):
                raise DataError(f"a worker sent a run file with an unusable name {name!r}")
            with open(staging / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if final.exists() or final.is_symlink():
            _remove_inside(trials_dir, final)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _exception_text(exc: BaseException) -> str:
    """``Type: message`` of an exception, also when a worker's error arrives as
    ``Exception('ModuleNotFoundError("No module named \'engine\'")')`` (the repr of the original)."""
    if type(exc) is Exception and len(exc.args) == 1 and isinstance(exc.args[0], str):
        match = re.fullmatch(r"(\w+)\((['\"])(.*)\2\)", exc.args[0].strip(), re.S)
        if match:
            return f"{match.group(1)}: {_one_line(match.group(3))}"
        return _one_line(exc.args[0])
    return f"{type(exc).__name__}: {_one_line(exc)}"


def _one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:299] + "…"
