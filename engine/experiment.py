"""One experiment end to end: prepare data, train, write the run directory. What the CLI and the window call.

``run_experiment(cfg, out_dir, ...)`` returns an :class:`Experiment`; iterating its
``records()`` prepares the data (unless given), trains and writes the run directory as it
goes (see :mod:`engine.runs`). When the records end — completed, early stopping,
divergence, cancellation, or the caller closing the generator — ``summary.json`` and
``model.npz`` are written: the model holds the weights the summary's ``final_metrics``
describe (the best epoch's when restored; never NaN weights after a divergence).

summary.json keys: ``epochs_run``, ``best_epoch``, ``stop_reason``, ``message``,
``best_metrics``, ``final_metrics`` (metrics.jsonl-style dicts, or null when no epoch
completed), ``weights_epoch``, ``restored_best``, ``human_error`` (the value used) and
``human_error_source`` (``config``, ``bayes_estimate`` or ``default``, see
:func:`engine.diagnosis.resolve_human_error`), ``diagnosis`` (from the final train/dev
accuracy and the run's outcome, null when no epoch completed), ``notes``, ``warnings`` (a list
of ``{"code", "message"}``, codes ``diverged``, ``stalled``, ``weights_unchanged``,
``dev_not_finite``: see :mod:`engine.trainer`), ``n_test_available`` (the size of the test set
the run could be evaluated on), ``total_seconds``, and
``test_acc``/``test_loss``/``n_test`` only when the test set was evaluated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from engine.batches import EvalSet
from engine.config import ExperimentConfig
from engine.dataset import PreparedData
from engine.diagnosis import diagnose_run, resolve_human_error
from engine.errors import DataError
from engine.fileio import FolderLock, atomic_write_json
from engine.runs import (
    MODEL_FILE,
    SPLIT_FILE,
    SUMMARY_FILE,
    RunFolder,
    RunWriter,
    json_safe,
    load_model,
    load_run,
)
from engine.trainer import EpochRecord, Trainer, TrainingResult


class Experiment:
    """A prepared-or-not experiment; iterate :meth:`records` once to run it."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        out_dir: str | Path,
        *,
        data: PreparedData | None = None,
        should_stop: Callable[[], bool] | None = None,
        evaluate_test: bool = False,
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        max_blas_threads: int | None = None,
        overwrite: bool = False,
    ):
        self.cfg = cfg
        self.max_blas_threads = max_blas_threads
        self.out_dir = Path(out_dir)
        # checked now, before anything is loaded or written: InputError for a folder holding files
        self.folder = RunFolder(self.out_dir, overwrite=overwrite)
        self.data = data
        self.should_stop = should_stop
        self.evaluate_test = evaluate_test
        self.progress = progress
        self.cancel = cancel
        self.trainer: Trainer | None = None
        self.result: TrainingResult | None = None
        self.summary: dict | None = None
        self._lock = threading.Lock()
        self._paused = False
        self._started = False

    def pause(self) -> None:
        """Pause between mini-batches (also valid before training has started)."""
        with self._lock:
            self._paused = True
            if self.trainer is not None:
                self.trainer.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self.trainer is not None:
                self.trainer.resume()

    def records(self) -> Iterator[EpochRecord]:
        """Prepare data, train, write the run directory; yield one EpochRecord per epoch.

        The run folder is locked before the data is loaded (a second writer is refused at
        once) and unlocked when the records end; see :class:`engine.runs.RunFolder`.
        """
        if self._started:
            raise RuntimeError("Experiment.records() can be iterated only once")
        self._started = True
        t0 = time.perf_counter()
        folder = self.folder
        write_dir = folder.open()
        try:
            if self.data is None:
                from engine.prepare import prepare_data

                self.data = prepare_data(self.cfg, progress=self.progress, cancel=self.cancel)
            trainer = Trainer(
                self.cfg, self.data, should_stop=self.should_stop, max_blas_threads=self.max_blas_threads
            )
            with self._lock:
                self.trainer = trainer
                if self._paused:
                    trainer.pause()
            writer = RunWriter(write_dir, self.cfg, self.data, shown_as=folder.path)
            writer.start()
            run = trainer.run()
            try:
                for record in run:
                    writer.append(record)
                    yield record
            except GeneratorExit:
                run.close()  # the trainer records the stop as cancelled and keeps consistent weights
                self._finish(writer, t0)
                folder.commit()
                raise
            except BaseException:
                run.close()
                writer.close()  # leave the run without summary: load_run shows it as incomplete
                raise
            self._finish(writer, t0)
            folder.commit()
        except BaseException:
            folder.abort()  # a replacing run leaves the old one as it was
            raise

    def _finish(self, writer: RunWriter, t0: float) -> None:
        trainer = self.trainer
        res = trainer.result
        self.result = res
        human, human_source = resolve_human_error(self.cfg)
        notes = list(trainer.notes)
        diagnosis = diagnose_run(
            self.cfg,
            res.final_metrics,
            res.stop_reason,
            [w["code"] for w in res.warnings],
            image_data=bool(self.data.is_image),
        )
        summary: dict = {
            "epochs_run": res.epochs_run,
            "best_epoch": res.best_epoch,
            "stop_reason": res.stop_reason,
            "message": res.message,
            "best_metrics": res.best_metrics,
            "final_metrics": res.final_metrics,
            "weights_epoch": res.weights_epoch,
            "restored_best": res.restored_best,
            "human_error": human,
            "human_error_source": human_source,
            "diagnosis": diagnosis.to_dict() if diagnosis is not None else None,
            "notes": notes,
            "warnings": list(res.warnings),  # {"code", "message"}: see engine.trainer.WARNING_CODES
            "n_test_available": len(self.data.test),
        }
        if self.evaluate_test:
            if len(self.data.test) > 0:
                loss, acc = EvalSet(
                    self.data.test, self.data.norm_mean, self.data.norm_std, trainer.dtype
                ).evaluate(trainer.network)
                summary.update(test_acc=acc, test_loss=loss, n_test=len(self.data.test))
            else:
                notes.append("The test set is empty, so it was not evaluated.")
        summary["total_seconds"] = time.perf_counter() - t0
        self.summary = json_safe(summary)
        writer.finish(self.summary, trainer.network)


def run_experiment(
    cfg: ExperimentConfig,
    out_dir: str | Path,
    *,
    data: PreparedData | None = None,
    should_stop: Callable[[], bool] | None = None,
    evaluate_test: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    max_blas_threads: int | None = None,
    overwrite: bool = False,
) -> Experiment:
    """An Experiment ready to run: iterate ``.records()``; ``.summary`` is set when they end.

    out_dir must be new or an empty folder: a folder holding files raises InputError here,
    before anything is written. With overwrite=True a folder holding a RegLab run (and
    nothing else) is accepted, and replaced only once the new run has written all its
    files (see :class:`engine.runs.RunFolder`).
    should_stop is checked between mini-batches (a graceful stop, stop_reason "cancelled");
    cancel is the data-loading cancel token (raises engine.errors.Cancelled);
    max_blas_threads caps BLAS threads (see engine.trainer.Trainer).
    """
    return Experiment(
        cfg,
        out_dir,
        data=data,
        should_stop=should_stop,
        evaluate_test=evaluate_test,
        progress=progress,
        cancel=cancel,
        max_blas_threads=max_blas_threads,
        overwrite=overwrite,
    )


def _test_set(cfg: ExperimentConfig, run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The run's raw test samples: split.npz's test_idx into the main source when present."""
    from engine.prepare import load_sources, prepare_from_sources

    sources = load_sources(cfg.data)
    split_path = run_dir / SPLIT_FILE
    if cfg.data.test_source is None and split_path.is_file() and "main" in sources:
        try:
            with np.load(split_path, allow_pickle=False) as npz:
                test_idx = np.asarray(npz["test_idx"])
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{split_path}: not a readable split file ({exc})") from None
        main = sources["main"]
        if test_idx.ndim != 1 or not np.issubdtype(test_idx.dtype, np.integer):
            raise DataError(f"{split_path}: test_idx must be a 1-D integer array")
        if len(test_idx) and (test_idx.min() < 0 or test_idx.max() >= len(main.y)):
            raise DataError(f"{split_path}: test_idx does not fit {cfg.data.source} ({len(main.y)} samples)")
        return main.X[test_idx], main.y[test_idx]
    test = prepare_from_sources(cfg, sources).test
    return test.X, test.y


def evaluate_test(run_dir: str | Path) -> dict:
    """Evaluate a finished run's model on its test split; adds test_acc/test_loss/n_test to summary.json.

    Holds the run folder's lock meanwhile: refused (InputError naming the pid) while
    another process writes the run.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run directory")
    with FolderLock.acquire(run_dir, what="run folder"):
        run = load_run(run_dir)
        if run.summary is None:
            raise DataError(f"{run_dir}: the run has no {SUMMARY_FILE} yet (still running, or it crashed)")
        model = load_model(run_dir / MODEL_FILE)
        X, y = _test_set(run.config, run_dir)
        if len(y) == 0:
            raise DataError(
                f"{run_dir}: the run has no test set (data.split has no test fraction and no test_source)"
            )
        loss, acc = model.evaluate(X, y)
        result = {"test_acc": acc, "test_loss": loss, "n_test": int(len(y))}
        summary = dict(run.summary)
        summary.update(result)
        atomic_write_json(run_dir / SUMMARY_FILE, json_safe(summary))
    return json_safe(result)
