"""The headless command line: ``train``, ``gradcheck``, ``evaluate``, ``data`` and ``sweep``.

    python main.py train --config CFG.json --out DIR [--evaluate-test] [--human-error E]
    python main.py gradcheck --config CFG.json
    python main.py evaluate --run DIR --data SOURCE
    python main.py data --source SOURCE [--image-size H W] [--color rgb|gray]
    python main.py sweep --config BASE.json --param FIELD=VALUES ... --out DIR  (see engine.sweep_cli)

Results go to stdout (JSON for gradcheck, evaluate and data; a short text summary for
train); progress goes to stderr. Exit status: 0 success, 1 a gradient check that
failed, 2 bad configuration or input (one line on stderr naming the field or file, no
traceback), 130 interrupted (Ctrl-C; a training run stops cleanly with stop_reason
``cancelled`` and keeps its run directory).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from engine.config import ConfigError, from_dict, load_config
from engine.errors import Cancelled, InputError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


class _UsageError(InputError):
    """A command-line argument is wrong (argparse's complaint, made one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit status 2 through main()
        raise _UsageError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reglab", description="RegLab headless commands (no arguments opens the window).")
    sub = parser.add_subparsers(
        dest="command", parser_class=_Parser, metavar="{train,gradcheck,evaluate,data,sweep}"
    )
    sub.required = True

    p = sub.add_parser("train", help="train from a config file and write a run directory")
    p.add_argument("--config", required=True, metavar="CFG.json", help="experiment config (JSON)")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory to write")
    p.add_argument("--evaluate-test", action="store_true", help="also measure the test set at the end")
    p.add_argument(
        "--human-error", type=float, metavar="E", help="human-level error in [0, 1] (overrides the config)"
    )

    p = sub.add_parser("gradcheck", help="compare backprop gradients with finite differences (float64)")
    p.add_argument("--config", required=True, metavar="CFG.json")

    p = sub.add_parser("evaluate", help="accuracy and loss of a saved model on a dataset")
    p.add_argument("--run", required=True, metavar="DIR", help="run directory holding model.npz")
    p.add_argument("--data", required=True, metavar="SOURCE", help="builtin:NAME, an image folder, .npz, ...")

    p = sub.add_parser("data", help="print the data report of a source as JSON")
    p.add_argument("--source", required=True, metavar="SOURCE")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None)
    p.add_argument("--color", choices=("rgb", "gray"), default=None)

    from engine import sweep_cli  # light: imports distributed only when a sweep runs

    sweep_cli.add_parser(sub)
    return parser


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run one sub-command; returns the exit status (never raises for bad input)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        command = {
            "train": _train,
            "gradcheck": _gradcheck,
            "evaluate": _evaluate,
            "data": _data,
            "sweep": _sweep,
        }[args.command]
        return command(args, out, err)
    except InputError as exc:
        print(f"error: {_one_line(str(exc))}", file=err)
        return EXIT_INPUT
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        name = exc.filename if exc.filename is not None else ""
        print(f"error: {name}: {exc.strerror or exc}", file=err)
        return EXIT_INPUT
    except Cancelled:
        print("cancelled before training started", file=err)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return EXIT_INTERRUPTED


# ---------------------------------------------------------------- train


def _train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    cfg = load_config(args.config)
    if args.human_error is not None:
        e = args.human_error
        if not math.isfinite(e) or not 0.0 <= e <= 1.0:
            raise ConfigError(f"--human-error must be a fraction in [0, 1], got {e:g}")
        cfg = cfg.replace(**{"diagnosis.human_error": float(e)})
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a folder")

    from engine.experiment import run_experiment  # imported here: `data`/`--help` stay quick

    with _Interrupt() as interrupt:
        progress = _DataProgress(err)
        exp = run_experiment(
            cfg,
            out_dir,
            should_stop=interrupt.is_set,
            evaluate_test=args.evaluate_test,
            progress=progress,
            cancel=interrupt.is_set,
        )
        reporter = _EpochReporter(cfg.training.epochs, err)
        last = None
        for record in exp.records():
            progress.finish()
            reporter.show(record)
            last = record
        reporter.close()
        summary = exp.summary
    if summary is None:
        summary = {}
    for line in summary_lines(summary, out_dir, last):
        print(line, file=out)
    out.flush()
    stop = summary.get("stop_reason") or (last.stop_reason if last is not None else None)
    if interrupt.triggered or stop == "cancelled":
        return EXIT_INTERRUPTED
    return EXIT_OK


class _Interrupt:
    """Ctrl-C sets a flag the trainer polls between batches; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._old: Any = None
        self.triggered = False

    def is_set(self) -> bool:
        return self._event.is_set()

    def _handle(self, signum, frame) -> None:
        if self._event.is_set():
            raise KeyboardInterrupt
        self.triggered = True
        self._event.set()
        print(
            "\nstopping: finishing the run directory (Ctrl-C again to abort) ...", file=sys.stderr, flush=True
        )

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class _DataProgress:
    """(done, total) callback for data loading: an updating line on a terminal, nothing otherwise."""

    def __init__(self, err: TextIO) -> None:
        self._err = err
        self._tty = _isatty(err)
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self._tty or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        self._shown = True
        print(f"\rloading data {done}/{total}", end="", file=self._err, flush=True)

    def finish(self) -> None:
        if self._shown:
            print(file=self._err)
            self._shown = False


class _EpochReporter:
    """One line per epoch on stderr; on a terminal, one line updated in place (≤ 10 per second)."""

    def __init__(self, epochs: int, err: TextIO) -> None:
        self._epochs = epochs
        self._err = err
        self._tty = _isatty(err)
        self._last = 0.0
        self._pending = ""

    def show(self, record: Any) -> None:
        line = format_record(record, self._epochs)
        if self._tty:
            now = time.monotonic()
            self._pending = line
            if now - self._last >= 0.1 or record.stop_reason is not None:
                self._last = now
                print(f"\r{line}\x1b[K", end="", file=self._err, flush=True)
                self._pending = ""
        else:
            print(line, file=self._err, flush=True)
        if record.message:
            if self._tty:
                print(file=self._err)
            print(f"  {record.message}", file=self._err, flush=True)

    def close(self) -> None:
        if self._tty:
            if self._pending:
                print(f"\r{self._pending}\x1b[K", end="", file=self._err)
            print(file=self._err, flush=True)


def format_record(record: Any, epochs: int) -> str:
    """``epoch  12/100  train loss 0.3120 acc 0.871  dev loss 0.3502 acc 0.850  0.02 s``."""
    width = len(str(epochs))
    return (
        f"epoch {record.epoch:>{width}}/{epochs}  "
        f"train loss {_num(record.train_loss, '.4f')} acc {_num(record.train_acc, '.3f')}  "
        f"dev loss {_num(record.dev_loss, '.4f')} acc {_num(record.dev_acc, '.3f')}  "
        f"{_num(record.seconds, '.2f')} s"
    )


def summary_lines(summary: dict, out_dir: Path, last: Any = None) -> list[str]:
    """The human-readable end of `train`: how it stopped, the numbers, the diagnosis, next steps."""
    lines = [f"run directory: {out_dir}"]
    stop = summary.get("stop_reason", last.stop_reason if last is not None else None)
    epochs_run = summary.get("epochs_run", last.epoch if last is not None else None)
    lines.append(f"stopped: {stop} after {epochs_run} epochs (best epoch {summary.get('best_epoch', '?')})")
    final = summary.get("final") or summary.get("final_metrics") or {}
    if not final and last is not None:
        final = {
            "train_acc": last.train_acc,
            "dev_acc": last.dev_acc,
            "train_loss": last.train_loss,
            "dev_loss": last.dev_loss,
        }
    parts = [
        f"{k} {_num(final[k], '.4f')}"
        for k in ("train_loss", "train_acc", "dev_loss", "dev_acc")
        if k in final
    ]
    if parts:
        lines.append("final: " + "  ".join(parts))
    if "test_acc" in summary:
        lines.append(
            f"test: test_loss {_num(summary.get('test_loss'), '.4f')}  test_acc {_num(summary['test_acc'], '.4f')}"
        )
    diag = summary.get("diagnosis")
    if isinstance(diag, dict):
        lines.append(f"diagnosis: {diag.get('verdict', '?')}")
        if diag.get("explanation"):
            lines.append(f"  {diag['explanation']}")
        steps = diag.get("next_steps") or []
        if steps:
            lines.append("next steps:")
            lines.extend(f"  - {s}" for s in steps)
    for note in summary.get("notes") or []:
        lines.append(f"note: {note}")
    return lines


# ---------------------------------------------------------------- gradcheck


def _gradcheck(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    cfg = load_config(args.config)
    from engine.gradcheck import check_config
    from engine.prepare import prepare_data

    data = prepare_data(cfg, progress=_DataProgress(err))
    result = check_config(cfg, data)
    print(json.dumps(to_jsonable(result), allow_nan=False), file=out)
    return EXIT_OK if result.get("passed") else EXIT_FAILED


# ---------------------------------------------------------------- evaluate


def _evaluate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    source = _check_source_name(args.data, "--data")
    run_dir = Path(args.run)
    model_path = run_dir / "model.npz"
    if not run_dir.is_dir():
        raise InputError(f"--run {run_dir}: no such run directory")
    if not model_path.is_file():
        raise InputError(f"--run {run_dir}: no model.npz in this run directory (was the run finished?)")
    from engine.prepare import load_source
    from engine.runs import load_model

    loaded = load_model(model_path)  # np.load(..., allow_pickle=False)
    cfg = loaded.config
    # the run's data settings: image_size/color for images; n_samples/noise/seed regenerate a built-in set
    sd = load_source(source, cfg.data, cfg.data.seed, progress=_DataProgress(err))
    if list(sd.classes) != list(loaded.classes):
        raise InputError(
            f"--data {source}: classes {list(sd.classes)} do not match the model's classes {list(loaded.classes)}"
        )
    if tuple(sd.X.shape[1:]) != tuple(loaded.input_shape):
        raise InputError(
            f"--data {source}: samples of shape {tuple(sd.X.shape[1:])} do not fit the model's input "
            f"{tuple(loaded.input_shape)}"
        )
    loss, acc = loaded.evaluate(sd.X, sd.y)
    result = {"accuracy": acc, "loss": loss, "n_samples": int(len(sd.y)), "classes": list(sd.classes)}
    print(json.dumps(to_jsonable(result)), file=out)
    return EXIT_OK


# ---------------------------------------------------------------- data


def _data(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    source = _check_source_name(args.source, "--source")
    size = args.image_size if args.image_size is not None else [32, 32]
    for i, s in enumerate(size):
        if not 1 <= s <= 1024:
            raise InputError(f"--image-size: {'HW'[i]} must be in [1, 1024], got {s}")
    color = args.color or "rgb"
    from engine.prepare import builtin_2d_name

    if builtin_2d_name(source) is not None:
        report = _report_2d(source)
    else:
        from engine.images import data_report

        report = data_report(source, image_size=tuple(size), color=color, progress=_DataProgress(err))
    print(json.dumps(to_jsonable(report)), file=out)
    return EXIT_OK


def _report_2d(source: str) -> dict:
    """The data report of a generated 2-D set with the default data settings."""
    from engine.config import DataConfig
    from engine.prepare import load_source

    data = DataConfig(source=source)
    sd = load_source(source, data, data.seed)
    counts = np.bincount(sd.y, minlength=len(sd.classes))
    return {
        "source": source,
        "classes": list(sd.classes),
        "counts": {c: int(n) for c, n in zip(sd.classes, counts)},
        "n_samples": int(len(sd.y)),
        "n_features": int(sd.X.shape[1]),
        "noise": data.noise,
        "skipped": [],
    }


# ---------------------------------------------------------------- sweep


def _sweep(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from engine import sweep_cli

    return sweep_cli.run(args, out, err)


# ---------------------------------------------------------------- helpers


def _check_source_name(source: str, flag: str) -> str:
    try:
        return from_dict({"data": {"source": source}}).data.source
    except ConfigError as exc:
        raise InputError(_one_line(str(exc)).replace("data.source", flag)) from None


def to_jsonable(obj: Any) -> Any:
    """numpy scalars/arrays, tuples and dataclass-like dicts -> plain JSON values (NaN/inf -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _num(v: Any, fmt: str) -> str:
    if v is None:
        return "n/a"
    try:
        return format(float(v), fmt)
    except (TypeError, ValueError):
        return str(v)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
