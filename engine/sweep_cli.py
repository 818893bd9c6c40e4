"""The ``sweep`` sub-command: parser options and the command (engine.cli wires them in).

    python main.py sweep --config BASE.json --param FIELD=V1,V2,… [--param FIELD=log:LO:HI:N]
        [--param 'FIELD=[…]'] [--seeds K] [--sample grid|random --budget N --seed S]
        [--prune halving [--eta 3] [--min-epochs 1]] [--workers N | --scheduler tcp://HOST:PORT]
        --out DIR

Progress goes to stderr (one line when the cluster is up, one per finished trial with the
ETA); the end goes to stdout (counts and the best point). Exit status: 0 when every trial is
done, 1 when a trial failed unexpectedly on its worker, 2 for bad parameters, config, output
folder, data or cluster (one line naming it), 130 when interrupted (Ctrl-C cancels: running
trials stop at their next mini-batch and a re-run resumes; Ctrl-C again aborts at once).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, TextIO

from engine.config import ConfigError, load_config

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def add_parser(sub: Any) -> None:
    """Add the ``sweep`` sub-parser to the CLI's sub-parsers."""
    p = sub.add_parser(
        "sweep",
        help="train a grid or random sample of configs (locally or on a Dask cluster) and tabulate them",
        description="Vary config fields around a base config; every trial is a run folder under DIR/trials.",
    )
    p.add_argument("--config", required=True, metavar="BASE.json", help="the base experiment config (JSON)")
    p.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="FIELD=VALUES",
        help="a field to vary: FIELD=V1,V2,…  FIELD=log:LO:HI:N  FIELD=lin:LO:HI:N  'FIELD=[JSON list]' (repeatable)",
    )
    p.add_argument("--seeds", type=int, default=1, metavar="K", help="runs per point, training.seed + 0…K−1")
    p.add_argument(
        "--sample", choices=("grid", "random"), default="grid", help="grid product (default) or random"
    )
    p.add_argument(
        "--budget", type=int, metavar="N", help="points to draw (random); the most a grid may have"
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of random sampling")
    p.add_argument("--prune", choices=("halving",), help="stop bad trials early by successive halving")
    p.add_argument("--eta", type=int, metavar="ETA", help="halving's reduction factor (default 3)")
    p.add_argument("--min-epochs", type=int, metavar="R", help="first rung epoch of halving (default 1)")
    p.add_argument("--workers", type=int, metavar="N", help="local cluster size (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (tcp://HOST:PORT)")
    p.add_argument("--out", required=True, metavar="DIR", help="sweep folder (re-running with it resumes)")


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The command; InputErrors (exit 2) propagate to engine.cli.main."""
    from engine.sweep import PruneSettings, make_definition, parse_param
    from engine.sweep_runner import SweepRunner, TrialFailed

    base = load_config(args.config)
    params = [parse_param(text, base) for text in args.param]
    if args.prune is None and (args.eta is not None or args.min_epochs is not None):
        raise ConfigError("--eta and --min-epochs need --prune halving")
    prune = None
    if args.prune is not None:
        prune = PruneSettings(
            args.prune,
            eta=3 if args.eta is None else args.eta,
            min_epochs=1 if args.min_epochs is None else args.min_epochs,
        )
    definition = make_definition(
        base,
        params,
        sampling=args.sample,
        budget=args.budget,
        sample_seed=args.seed,
        seeds=args.seeds,
        prune=prune,
    )
    if args.scheduler is not None:
        _check_address(args.scheduler)
    runner = SweepRunner(definition, args.out, workers=args.workers, scheduler=args.scheduler)
    runner.prepare()
    reporter = Reporter(err)
    try:
        with _CancelOnInterrupt(runner, err):
            outcome = runner.run(on_event=reporter)
    except TrialFailed as exc:
        print(f"error: {exc}", file=err)
        return EXIT_FAILED
    for line in outcome_lines(outcome, definition):
        print(line, file=out)
    out.flush()
    return EXIT_INTERRUPTED if runner.cancelled and not outcome.complete else EXIT_OK


def _check_address(address: str) -> None:
    if "://" in address and not address.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise ConfigError(f"--scheduler {address}: expected tcp://HOST:PORT")
    host_port = address.split("://", 1)[-1]
    if ":" not in host_port or not host_port.rsplit(":", 1)[1].isdigit():
        raise ConfigError(f"--scheduler {address}: expected tcp://HOST:PORT")


class Reporter:
    """Progress lines on stderr: the cluster, then one line per finished trial with the ETA."""

    def __init__(self, err: TextIO):
        self.err = err

    def __call__(self, event: Any) -> None:
        from engine.sweep_runner import SweepStarted, TrialFinished

        p = event.progress
        if isinstance(event, SweepStarted):
            if event.todo == 0:
                print(
                    f"sweep: all {p.total} trials are done already; nothing to run", file=self.err, flush=True
                )
            else:
                kept = f", {p.resumed} kept from an earlier run" if p.resumed else ""
                print(
                    f"sweep: {event.todo} of {p.total} trials to run{kept}, on {event.cluster}",
                    file=self.err,
                    flush=True,
                )
        elif isinstance(event, TrialFinished):
            width = len(str(p.total))
            head = f"[{p.done:>{width}}/{p.total}] {event.trial_id}"
            row = event.row
            if row is None:
                print(
                    f"{head}  cancelled (no results row; a re-run runs it again)", file=self.err, flush=True
                )
                return
            eta = f"  ETA {_duration(p.eta_seconds)}" if p.eta_seconds and p.done < p.total else ""
            print(
                f"{head}  {row['stop_reason']} after {row['epochs_run']} epochs  "
                f"dev error {_num(row['final_dev_error'])} train error {_num(row['final_train_error'])}  "
                f"{row['seconds']:.1f} s on {row['worker']}{eta}",
                file=self.err,
                flush=True,
            )


def outcome_lines(outcome: Any, definition: Any) -> list[str]:
    """The end of the command on stdout: where, how many, and the best point."""
    from engine.sweep_results import best_point

    lines = [f"sweep folder: {outcome.out_dir}"]
    parts = [f"{outcome.ran} run now"]
    if outcome.resumed:
        parts.append(f"{outcome.resumed} kept from before")
    if outcome.pruned:
        parts.append(f"{outcome.pruned} pruned")
    state = "" if outcome.complete else " — cancelled; re-run the same command to finish"
    lines.append(
        f"trials: {outcome.ran + outcome.resumed} of {outcome.total} done ({', '.join(parts)}){state}"
    )
    best = best_point(outcome.rows)
    if best is not None:
        values = "  ".join(f"{k}={_value(v)}" for k, v in best["values"].items())
        spread = f" ± {best['dev_error_spread']:.4f} over {best['n']} seeds" if best["n"] > 1 else ""
        lines.append(f"best: {values}  dev error {best['dev_error']:.4f}{spread}")
        rows = [r for r in outcome.rows if r["trial_id"] in best["trial_ids"]]
        top = min(rows, key=lambda r: r["final_dev_error"])
        lines.append(f"best trial: {outcome.out_dir}/{top['run_dir']}")
    lines.append(f"results: {outcome.out_dir}/results.csv, {outcome.out_dir}/results.jsonl")
    return lines


def _value(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ",".join(_value(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return "null" if v is None else str(v)


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.4f}"


def _duration(s: float) -> str:
    s = max(0.0, float(s))
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


class _CancelOnInterrupt:
    """Ctrl-C cancels the sweep (running trials stop at their next mini-batch); a second one aborts."""

    def __init__(self, runner: Any, err: TextIO):
        self.runner = runner
        self.err = err
        self._old: Any = None

    def _handle(self, signum, frame) -> None:
        if self.runner.cancelled:
            raise KeyboardInterrupt
        self.runner.cancel()
        print(
            "\nstopping the sweep: running trials end at their next mini-batch (Ctrl-C again to abort) ...",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> _CancelOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
