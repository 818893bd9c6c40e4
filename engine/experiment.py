"""One experiment end to end: prepare data, train, write the run directory. What the CLI and the window call.

``run_experiment(cfg, out_dir, ...)`` returns an :class:`Experiment`; iterating its
``records()`` prepares the data (unless given), trains and writes the run directory as it
goes (see :mod:`engine.runs`). When the records end — completed, early stopping,
divergence, cancellation, or the caller closing the generator — ``summary.json`` and
``model.npz`` are written: the model holds the weights the summary's ``final_metrics``
describe (the best epoch's when restored; never NaN weights after a divergence).

summary.json keys: ``epochs_run``, ``best_epoch``, ``stop_reason``, ``message``,
``best_metrics``, ``final_metrics`` (metrics.jsonl-style dicts, or null when no epoch
completed), ``weights_epoch``, ``restored_best``, ``human_error``, ``diagnosis`` (from the
final train/dev accuracy, null when no epoch completed), ``notes``, ``total_seconds``, and
``test_acc``/``test_loss``/``n_test`` only when the test set was evaluated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from engine.batches import EvalSet
from engine.config import ExperimentConfig, validate
from engine.dataset import PreparedData
from engine.diagnosis import diagnose
from engine.errors import DataError
from engine.fileio import atomic_write_json
from engine.runs import MODEL_FILE, SPLIT_FILE, SUMMARY_FILE, RunWriter, json_safe, load_model, load_run
from engine.trainer import EpochRecord, Trainer, TrainingResult


def diagnosis_from_metrics(metrics: dict | None, human_error: float) -> dict | None:
    """Diagnosis dict from a metrics dict's train_acc/dev_acc (errors = 1 − accuracy); None if unknown."""
    if not metrics or metrics.get("train_acc") is None or metrics.get("dev_acc") is None:
        return None
    return diagnose(1.0 - metrics["train_acc"], 1.0 - metrics["dev_acc"], human_error).to_dict()


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
    ):
        self.cfg = validate(cfg)
        self.max_blas_threads = max_blas_threads
        self.out_dir = Path(out_dir)
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
        """Prepare data, train, write the run directory; yield one EpochRecord per epoch."""
        if self._started:
            raise RuntimeError("Experiment.records() can be iterated only once")
        self._started = True
        t0 = time.perf_counter()
        from engine.memory import check_config_memory, check_prepared_memory

        if self.data is None:
            from engine.prepare import prepare_data

            check_config_memory(self.cfg)  # refuse before generating or decoding anything large
            self.data = prepare_data(self.cfg, progress=self.progress, cancel=self.cancel)
        else:
            check_prepared_memory(self.cfg, self.data)  # the model, batches and evaluation
        trainer = Trainer(
            self.cfg, self.data, should_stop=self.should_stop, max_blas_threads=self.max_blas_threads
        )
        with self._lock:
            self.trainer = trainer
            if self._paused:
                trainer.pause()
        writer = RunWriter(self.out_dir, self.cfg, self.data)
        writer.start()
        run = trainer.run()
        try:
            for record in run:
                writer.append(record)
                yield record
        except GeneratorExit:
            run.close()  # the trainer records the stop as cancelled and keeps consistent weights
            self._finish(writer, t0)
            raise
        except BaseException:
            writer.close()  # leave the run without summary: load_run shows it as incomplete
            raise
        self._finish(writer, t0)

    def _finish(self, writer: RunWriter, t0: float) -> None:
        trainer = self.trainer
        res = trainer.result
        self.result = res
        human = float(self.cfg.diagnosis.human_error)
        notes = list(trainer.notes)
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
            "diagnosis": diagnosis_from_metrics(res.final_metrics, human),
            "notes": notes,
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
) -> Experiment:
    """An Experiment ready to run: iterate ``.records()``; ``.summary`` is set when they end.

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
    """Evaluate a finished run's model on its test split; adds test_acc/test_loss/n_test to summary.json."""
    run_dir = Path(run_dir)
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
