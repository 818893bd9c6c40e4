"""The headless command line: ``train``, ``gradcheck``, ``evaluate``, ``data``, ``lesson``, ``depth-lab``,
``landscape`` and ``sweep``.

    python main.py train --config CFG.json --out DIR [--overwrite] [--evaluate-test] [--human-error E]
    python main.py gradcheck --config CFG.json
    python main.py evaluate --run DIR --data SOURCE
    python main.py data --source SOURCE [--image-size H W] [--color rgb|gray] [--pixel-shape H W C]
    python main.py lesson NAME --out DIR [--overwrite] [--quick]  |  python main.py lesson --list
    python main.py depth-lab --depth N --width W --activation A --init I --scale S [--samples M] [--seed K]
    python main.py landscape --run DIR --data SOURCE [--points P] [--span S] [--directions D] [--seed K]
    python main.py sweep --config BASE.json --param FIELD=VALUES ... --out DIR  (see engine.sweep_cli)

Results go to stdout (JSON for gradcheck, evaluate, data, depth-lab and landscape; a short
text summary for train and lesson); progress goes to stderr.

``train --out DIR`` writes a new run folder: DIR must not exist or be empty. A folder that
already holds files is refused (exit 2), unless ``--overwrite`` is given and DIR holds a
RegLab run: the new run is then written beside it and replaces it only once it has
written all its files (also after Ctrl-C, which saves the run); if it fails, DIR is left
as it was. One process writes a run folder at a time: a second ``train`` into the same
DIR is refused (exit 2) naming the pid that holds it.

Ctrl-C, SIGTERM and SIGHUP stop a training run at the next mini-batch and save it
(``stop_reason`` ``cancelled``); a second one aborts at once without saving.

Exit status:

- 0: success (``train``: the run completed or stopped early; warnings such as
  ``weights_unchanged`` are printed and written to summary.json, see below; ``lesson``:
  every variant ran, whatever each variant's stop reason, a diverged variant included);
- 1: ``gradcheck`` ran and the gradients do not match;
- 2: bad configuration or input, a refused run folder, an unusable model (NaN weights,
  zero norm_std) or a write error (full disk, read-only file system): one line on stderr
  naming the field or file and what is wrong, no traceback; what was on disk before is
  left intact;
- 3: ``train``: the run diverged (the loss became NaN or infinite; the run folder holds
  the last finite weights and ``stop_reason`` ``diverged``);
- 130: interrupted (Ctrl-C, SIGTERM, SIGHUP): a training run stops cleanly with
  ``stop_reason`` ``cancelled`` and keeps its run directory.

``train`` prints each entry of summary.json's ``warnings`` (codes ``diverged``,
``stalled``, ``weights_unchanged``, ``dev_not_finite``; see :mod:`engine.trainer`) as a
``warning:`` line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
from engine.text import printable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130
# the signals that stop a training run gracefully (the first one) or at once (the second)
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class _UsageError(InputError):
    """A command-line argument is wrong (argparse's complaint, made one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit status 2 through main()
        raise _UsageError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reglab", description="RegLab headless commands (no arguments opens the window).")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("train", help="train from a config file and write a run directory")
    p.add_argument("--config", required=True, metavar="CFG.json", help="experiment config (JSON)")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory to write (new or empty)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in DIR, once the new run has finished (DIR is kept if it fails)",
    )
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
    p.add_argument(
        "--pixel-shape",
        type=int,
        nargs=3,
        metavar=("H", "W", "C"),
        default=None,
        help="image shape of a CSV of pixels (default: inferred for square images)",
    )

    p = sub.add_parser("lesson", help="run every variant of a lesson into DIR/<variant>/ and compare them")
    p.add_argument("name", nargs="?", metavar="NAME", help="the lesson (see --list)")
    p.add_argument("--out", metavar="DIR", help="folder for the lesson's run folders (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty DIR, replacing its runs")
    p.add_argument("--quick", action="store_true", help="fewer epochs where the outcome is already clear")
    p.add_argument("--list", action="store_true", help="list the lessons and exit")
    _add_insight_commands(sub)

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
            "lesson": _lesson,
            "depth-lab": _depth_lab,
            "landscape": _landscape,
            "sweep": _sweep,
        }[args.command]
        return command(args, out, err)
    except InputError as exc:
        print(f"error: {printable(_one_line(str(exc)))}", file=err)
        return EXIT_INPUT
    except OSError as exc:  # a file or folder the command could not read or write
        name = f"{printable(str(exc.filename))}: " if exc.filename is not None else ""
        print(f"error: {name}{_one_line(exc.strerror or str(exc) or type(exc).__name__)}", file=err)
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

    err = _QuietOnError(err)  # a closed terminal (SIGHUP) must not stop the run from saving
    with _Interrupt(err) as interrupt:
        progress = _DataProgress(err)
        exp = run_experiment(
            cfg,
            out_dir,
            should_stop=interrupt.is_set,
            evaluate_test=args.evaluate_test,
            progress=progress,
            cancel=interrupt.is_set,
            overwrite=args.overwrite,
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
    if stop == "diverged":
        return EXIT_DIVERGED
    return EXIT_OK


class _QuietOnError:
    """A text stream whose writes never raise: after SIGHUP the terminal is gone (EIO), and
    progress lines must not keep the run from writing its folder."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.failed = False

    def write(self, text: str) -> int:
        if not self.failed:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):
                self.failed = True
        return len(text)

    def flush(self) -> None:
        if not self.failed:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.failed = True

    def isatty(self) -> bool:
        return _isatty(self._stream)

    def fileno(self) -> int:
        return self._stream.fileno()


class _Interrupt:
    """Ctrl-C, SIGTERM or SIGHUP set a flag the trainer polls between batches; a second one aborts at once."""

    def __init__(self, err: TextIO | None = None) -> None:
        self._event = threading.Event()
        self._old: dict[int, Any] = {}
        self._err = err
        self.triggered = False

    def is_set(self) -> bool:
        return self._event.is_set()

    def _handle(self, signum, frame) -> None:
        if self._event.is_set():
            raise KeyboardInterrupt
        self.triggered = True
        self._event.set()
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        # os.write, not print: the signal may arrive in the middle of a print to the same stream
        text = f"\nstopping ({name}): finishing the run directory (again to abort) ...\n"
        try:
            os.write(self._err.fileno(), text.encode())
        except (OSError, ValueError, AttributeError):
            pass  # no file descriptor (tests pass a StringIO) or the terminal is gone

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


class _DataProgress:
    """(done, total) callback: ``label done/total`` as an updating line on a terminal (at most 10
    times a second), nothing otherwise."""

    def __init__(self, err: TextIO, label: str = "loading data") -> None:
        self._err = err
        self._label = label
        self._tty = _isatty(err)
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self._tty or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        self._shown = True
        print(f"\r{self._label} {done}/{total}", end="", file=self._err, flush=True)

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
        message = record.message or ""
        for warning in getattr(record, "warnings", ()):  # printed once, with its code, at the end
            message = message.replace(warning["message"], "")
        if message.strip():
            if self._tty:
                print(file=self._err)
            print(f"  {message.strip()}", file=self._err, flush=True)

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
    for warning in summary.get("warnings") or []:
        if isinstance(warning, dict) and warning.get("code") != "diverged":  # diverged: said by "stopped:"
            text = str(warning.get("message") or warning.get("code"))
            lines.append(f"warning ({warning.get('code')}): {text.removeprefix('Warning: ')}")
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
    loaded, sd, source = _load_run_and_data(args.run, args.data, err)
    loss, acc = loaded.evaluate(sd.X, sd.y)
    from engine.insight.confusion import confusion_matrix, predict_raw, predicted_classes

    probs = predict_raw(loaded.net, sd.X, loaded.norm_mean, loaded.norm_std)
    confusion = confusion_matrix(sd.y, predicted_classes(probs), len(loaded.classes))
    result = {
        "accuracy": acc,
        "loss": loss,
        "n_samples": int(len(sd.y)),
        "classes": list(sd.classes),
        "confusion": confusion.tolist(),  # rows: true class, columns: predicted class, in `classes` order
    }
    print(json.dumps(to_jsonable(result)), file=out)
    return EXIT_OK


def _load_run_and_data(run: str, data: str, err: TextIO):
    """(LoadedModel, SourceData, source) for ``--run DIR --data SOURCE``; InputError naming the flag."""
    source = _check_source_name(data, "--data")
    run_dir = Path(run)
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
    return loaded, sd, source


# ---------------------------------------------------------------- data


def _data(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    source = _check_source_name(args.source, "--source")
    size = args.image_size if args.image_size is not None else [32, 32]
    for i, s in enumerate(size):
        if not 1 <= s <= 1024:
            raise InputError(f"--image-size: {'HW'[i]} must be in [1, 1024], got {s}")
    color = args.color or "rgb"
    shape = args.pixel_shape
    if shape is not None and (min(shape) < 1 or shape[2] not in (1, 3, 4)):
        raise InputError(f"--pixel-shape: H and W must be at least 1 and C one of 1, 3, 4; got {shape}")
    from engine.prepare import builtin_2d_name

    if builtin_2d_name(source) is not None:
        report = _report_2d(source)
    else:
        from engine.images import data_report

        report = data_report(
            source, image_size=tuple(size), color=color, progress=_DataProgress(err), pixel_shape=shape
        )
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


# ---------------------------------------------------------------- lesson


def _lesson(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from engine import lessons

    if args.list:
        width = max(len(n) for n in lessons.LESSONS)
        for name, lesson in lessons.LESSONS.items():
            print(f"{name:<{width}}  {lesson.title}", file=out)
        return EXIT_OK
    if args.name is None:
        raise InputError(f"lesson: give a lesson NAME (known: {', '.join(lessons.LESSONS)}) or --list")
    lesson = lessons.get_lesson(args.name)
    if args.out is None:
        raise InputError(f"lesson {lesson.name}: --out DIR is required (the folder for its run folders)")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a folder")
    if out_dir.is_dir() and not args.overwrite and any(out_dir.iterdir()):
        raise InputError(f"--out {out_dir}: the folder is not empty; choose a new folder or pass --overwrite")
    loaded = lessons.load_lesson(lesson.name, quick=args.quick)  # every variant config, validated first

    with _Interrupt() as interrupt:
        reporter = _LessonReporter(loaded, err)
        result = lessons.run_lesson(
            lesson.name,
            out_dir,
            quick=args.quick,
            progress=reporter.show,
            should_stop=interrupt.is_set,
            overwrite=args.overwrite,
        )
        reporter.close()
    for line in lesson_table_lines(lessons.comparison_table(result)):
        print(line, file=out)
    print(f"\nWhat to look for: {lesson.look_for}", file=out)
    print(f"run folders: {out_dir}/<variant>/", file=out)
    out.flush()
    if interrupt.triggered or result.cancelled:
        return EXIT_INTERRUPTED
    return EXIT_OK


class _LessonReporter:
    """Progress of a lesson on stderr: a line when a variant starts, then its epochs.

    On a terminal the epoch line updates in place (≤ 10 per second); otherwise about ten
    epoch lines per variant are printed (a lesson can train tens of thousands of epochs).
    """

    def __init__(self, loaded: Any, err: TextIO) -> None:
        self._loaded = loaded
        self._err = err
        self._tty = _isatty(err)
        self._variant: str | None = None
        self._epochs = 0
        self._every = 1
        self._last = 0.0
        self._pending = ""

    def show(self, variant: str, record: Any) -> None:
        if variant != self._variant:
            self._end_line()
            names = list(self._loaded.configs)
            self._variant = variant
            self._epochs = self._loaded.configs[variant].training.epochs
            self._every = max(1, self._epochs // 10)
            print(
                f"lesson {self._loaded.lesson.name}: variant {names.index(variant) + 1}/{len(names)} "
                f"{variant} ({self._epochs} epochs)",
                file=self._err,
                flush=True,
            )
        line = f"  {format_record(record, self._epochs)}"
        last = record.stop_reason is not None
        if self._tty:
            now = time.monotonic()
            self._pending = line
            if now - self._last >= 0.1 or last:
                self._last = now
                print(f"\r{line}\x1b[K", end="", file=self._err, flush=True)
                self._pending = ""
        elif record.epoch == 1 or record.epoch % self._every == 0 or last:
            print(line, file=self._err, flush=True)
        if record.message:
            self._end_line()
            print(f"  {record.message}", file=self._err, flush=True)

    def _end_line(self) -> None:
        if self._tty and self._variant is not None:
            if self._pending:
                print(f"\r{self._pending}\x1b[K", end="", file=self._err)
                self._pending = ""
            print(file=self._err, flush=True)

    def close(self) -> None:
        self._end_line()
        self._variant = None


def lesson_table_lines(rows: list[dict]) -> list[str]:
    """The comparison table as aligned text: one header line, one line per variant."""
    cols = [
        ("variant", "variant", "s"),
        ("stop_reason", "stop", "s"),
        ("epochs", "epochs", "d"),
        ("train_acc", "train acc", ".3f"),
        ("dev_acc", "dev acc", ".3f"),
        ("gap", "gap", "+.3f"),
        ("first_cost", "first cost", ".4g"),
        ("final_cost", "final cost", ".4g"),
    ]
    if any("test_acc" in r for r in rows):
        cols.insert(5, ("test_acc", "test acc", ".3f"))
    cells = [[_cell(r.get(key), fmt) for key, _, fmt in cols] for r in rows]
    widths = [max([len(title)] + [len(c[i]) for c in cells]) for i, (_, title, _) in enumerate(cols)]
    lines = [
        "  ".join(
            title.ljust(w) if i < 2 else title.rjust(w)
            for i, ((_, title, _), w) in enumerate(zip(cols, widths))
        )
    ]
    for c in cells:
        lines.append(
            "  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths)))
        )
    return lines


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "n/a"
    if fmt == "s":
        return str(value)
    if fmt == "d":
        return str(int(value))
    return format(float(value), fmt)


# ---------------------------------------------------------------- depth-lab, landscape


def _add_insight_commands(sub) -> None:
    p = sub.add_parser(
        "depth-lab", help="activation std and gradient norm by layer of a deep untrained network, as JSON"
    )
    p.add_argument("--depth", type=int, required=True, metavar="N", help="hidden layers, 2 to 100")
    p.add_argument("--width", type=int, required=True, metavar="W", help="units per hidden layer, 1 to 1024")
    p.add_argument("--activation", required=True, metavar="A", help="relu, leaky_relu, tanh, sigmoid, linear")
    p.add_argument("--init", required=True, metavar="I", help="zeros, random, xavier, glorot, he, lecun")
    p.add_argument("--scale", type=float, required=True, metavar="S", help="init_scale: multiplies the std")
    p.add_argument("--samples", type=int, default=256, metavar="M", help="random inputs (default 256)")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="seed of inputs and weights (default 0)")

    p = sub.add_parser(
        "landscape", help="loss along random filter-normalized directions around a saved model"
    )
    p.add_argument("--run", required=True, metavar="DIR", help="run directory holding model.npz")
    p.add_argument("--data", required=True, metavar="SOURCE", help="builtin:NAME, an image folder, .npz, ...")
    p.add_argument("--points", type=int, default=21, metavar="P", help="odd number of alphas (default 21)")
    p.add_argument("--span", type=float, default=1.0, metavar="S", help="alphas run from -S to S (default 1)")
    p.add_argument("--directions", type=int, default=3, metavar="D", help="directions averaged (default 3)")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="seed of the directions (default 0)")


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise InputError(f"--seed must be a whole number ≥ 0, got {seed}")


def _depth_lab(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from engine.insight.depthlab import check_settings, depth_profile

    check_settings(args.depth, args.width, args.activation, args.init, args.samples, args.scale, prefix="--")
    _check_seed(args.seed)
    result = depth_profile(
        args.depth, args.width, args.activation, args.init, args.scale, samples=args.samples, seed=args.seed
    )
    print(json.dumps(to_jsonable(result)), file=out)
    return EXIT_OK


def _landscape(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from engine.insight.landscape import DIRECTIONS_RANGE, POINTS_RANGE

    lo, hi = POINTS_RANGE
    if not (lo <= args.points <= hi and args.points % 2 == 1):
        raise InputError(
            f"--points must be an odd number in [{lo}, {hi}] (so 0 is one of the alphas), got {args.points}"
        )
    if not (math.isfinite(args.span) and 0 < args.span <= 100):
        raise InputError(f"--span must be a number in (0, 100], got {args.span}")
    lo, hi = DIRECTIONS_RANGE
    if not lo <= args.directions <= hi:
        raise InputError(f"--directions must be in [{lo}, {hi}], got {args.directions}")
    _check_seed(args.seed)
    loaded, sd, source = _load_run_and_data(args.run, args.data, err)
    from engine.batches import EvalSet
    from engine.dataset import ArraySet
    from engine.insight.landscape import loss_slice_1d

    # the set as LoadedModel.evaluate (and so `evaluate`) measures it
    eval_set = EvalSet(ArraySet(sd.X, sd.y), loaded.norm_mean, loaded.norm_std, loaded.config.training.dtype)
    progress = _DataProgress(err, "landscape")
    # Ctrl-C raises KeyboardInterrupt here: main() prints "interrupted" and exits 130
    sl = loss_slice_1d(
        loaded.net,
        {"loss": eval_set},
        points=args.points,
        span=args.span,
        n_directions=args.directions,
        seed=args.seed,
        progress=progress,
    )
    progress.finish()
    result = {
        "alphas": sl.alphas,
        "loss": sl.loss["loss"],  # mean over the directions
        "loss_by_direction": sl.per_direction["loss"],
        "source": source,
        "n_samples": int(len(sd.y)),
        "points": args.points,
        "span": args.span,
        "directions": args.directions,
        "seed": args.seed,
    }
    print(json.dumps(to_jsonable(result)), file=out)
    return EXIT_OK


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
