"""Lessons: one call sets up a classic comparison, runs its variants and says what to look for.

A lesson is a handful of *variants*, each an ordinary experiment file in
``assets/lessons/<lesson>/<variant>.json`` (openable in the window like any other), plus a
title, two or three sentences on what to look for, and the ``objectName`` of the view that
shows it. :data:`LESSONS` lists them; :func:`load_lesson` reads and validates the variant
configs; :func:`run_lesson` runs the variants one after another into ``DIR/<variant>/``
(ordinary run folders, through :func:`engine.experiment.run_experiment`), writes
``DIR/lesson.json`` and returns a :class:`LessonResult`; :func:`read_lesson` reads such a
folder back; :func:`comparison_table` turns a result into one row per variant.

``quick=True`` trains fewer epochs where the outcome is already clear (the tests use it;
each variant's ``quick`` overrides say how many). The window calls the same functions: it
may also take :attr:`LoadedLesson.configs` and run each variant through its own worker.

Shapes: nothing here handles arrays; the runs' metrics are the usual metrics.jsonl dicts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import ExperimentConfig, load_config
from engine.errors import InputError
from engine.fileio import atomic_write_json

LESSONS_DIR = Path(__file__).resolve().parent.parent / "assets" / "lessons"
LESSON_FILE = "lesson.json"

# objectNames of the window's views a lesson can point at
VIEWS = (
    "lossPlot",
    "decisionBoundaryPlot",
    "depthLab",
    "confusionMatrix",
    "landscapePlot",
    "diagnosisPanel",
    "normalizeView",
)


@dataclass(frozen=True)
class Variant:
    """One run of a lesson: an experiment file plus dotted-path overrides."""

    name: str  # also the run folder's name inside the lesson folder
    label: str  # short legend text, e.g. "He (2/n_in)"
    config: str  # path of the experiment file, relative to LESSONS_DIR
    overrides: Mapping[str, Any] = field(default_factory=dict)  # applied in both modes
    quick: Mapping[str, Any] = field(default_factory=dict)  # applied on top in quick mode


@dataclass(frozen=True)
class DepthLabSettings:
    """What the depth lab should show next to the depth lesson's runs."""

    hidden_layers: int
    width: int
    activation: str
    inits: tuple[str, ...]
    scales: tuple[float, ...]


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    variants: tuple[Variant, ...]
    look_for: str  # two or three sentences: what to look at, and where
    view: str  # objectName of the view that shows it (one of VIEWS)
    evaluate_test: bool = False  # measure each variant's test set at the end (mismatch)
    depth_lab: DepthLabSettings | None = None

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise InputError(
            f"lesson {self.name}: no variant {name!r} (known: {', '.join(v.name for v in self.variants)})"
        )


def _v(lesson: str, name: str, label: str, quick: Mapping[str, Any] | None = None) -> Variant:
    return Variant(name, label, f"{lesson}/{name}.json", quick=dict(quick or {}))


LESSONS: dict[str, Lesson] = {
    lesson.name: lesson
    for lesson in (
        Lesson(
            "initialization",
            "Initialization: zeros, large random, He",
            (
                _v("initialization", "zeros", "zeros", {"training.epochs": 1000}),
                _v("initialization", "random", "random × 10", {"training.epochs": 1000}),
                _v("initialization", "he", "He (2/n_in)", {"training.epochs": 8000}),
            ),
            "Zeros never breaks the symmetry: every unit of a layer stays the same, the cost stays at "
            "ln 2 = 0.693 and accuracy at 50 %. Random × 10 starts with a huge cost (its first point is "
            "far above the others) and ends worse; He starts near 0.69 and reaches about 98 % train and "
            "96 % dev. Compare the cost curves and the decision boundaries.",
            "lossPlot",
        ),
        Lesson(
            "regularization",
            "Regularization: none, L2, dropout",
            (
                _v("regularization", "none", "no regularization", {"training.epochs": 3000}),
                _v("regularization", "l2", "L2 λ = 0.7", {"training.epochs": 3000}),
                _v("regularization", "dropout", "dropout keep 0.86", {"training.epochs": 3000}),
            ),
            "Without regularization the 2-20-3-1 network bends its boundary around single noisy training "
            "points: train accuracy climbs while dev accuracy falls (a train–dev gap of about 14 points). "
            "L2 and dropout keep the boundary smooth: lower train accuracy, higher dev accuracy and a gap "
            "of a point or two. Put the decision boundaries side by side.",
            "decisionBoundaryPlot",
        ),
        Lesson(
            "early-stopping",
            "Early stopping: the dev curve turns up",
            (
                _v("early-stopping", "no-stopping", "trained to the end", {"training.epochs": 400}),
                _v("early-stopping", "early-stopping", "early stopping, best weights restored"),
            ),
            "The train loss keeps falling but the dev loss bottoms out and then climbs: after that point "
            "the network memorizes the training set. Early stopping watches the dev loss, stops "
            "`patience` epochs after its minimum and puts the best epoch's weights back; the stop and "
            "the best epoch are marked on the loss curves.",
            "lossPlot",
        ),
        Lesson(
            "normalization",
            "Input normalization: one feature 100× larger",
            (
                _v("normalization", "raw", "raw features", {"training.epochs": 30}),
                _v("normalization", "standardized", "standardized", {"training.epochs": 30}),
            ),
            "The second feature is 100× the first, so the cost is a long narrow valley: at the same "
            "learning rate the raw run's steps are dominated by that feature and it stalls at a much "
            "higher cost, while the standardized run (mean 0, std 1 per feature, from the training set) "
            "goes straight down. The Why normalize tab shows why: the raw cost over two weights is a long, "
            "narrow valley that gradient descent zig-zags across, the standardized one is round.",
            "normalizeView",
        ),
        Lesson(
            "depth",
            "Vanishing and exploding gradients in a 15-layer network",
            tuple(
                _v("depth", f"{init}-{scale}", f"{'He' if init == 'he' else 'Xavier'} × {scale}")
                for init in ("he", "xavier")
                for scale in ("0.5", "1.0", "1.5")
            ),
            "Each layer multiplies the signal by about init_scale × √(variance · n_in / 2), so after 15 "
            "ReLU layers the gradients are (that gain)^15 of He's: He × 0.5 and Xavier (1/n_in, made for "
            "tanh) vanish and barely learn, He × 1.5 explodes (a huge first cost, then it diverges). "
            "Read the per-layer gradient norms of the first epoch, and move the depth lab's scale slider.",
            "depthLab",
            depth_lab=DepthLabSettings(15, 32, "relu", ("he", "xavier"), (0.5, 1.0, 1.5)),
        ),
        Lesson(
            "augmentation",
            "Data augmentation on 200 training images",
            (
                _v("augmentation", "none", "no augmentation", {"training.epochs": 150}),
                _v("augmentation", "augmented", "flips, rotation, shifts", {"training.epochs": 150}),
            ),
            "Without augmentation the network memorizes the 200 training images (train accuracy 100 %) "
            "and stops improving on dev. Flipped, rotated and shifted copies are new examples of the same "
            "classes: training is slower and noisier, but dev accuracy ends several points higher.",
            "lossPlot",
        ),
        Lesson(
            "mismatch",
            "Mismatched dev and test distributions",
            (
                _v("mismatch", "same-distribution", "test like dev"),
                _v("mismatch", "shifted-test", "noisier test images"),
            ),
            "Both runs train on the same images and have the same dev accuracy; only the test set differs. "
            "When the test images come from a noisier camera, test accuracy falls far below dev accuracy: "
            "the dev set promised a result the test set does not keep. Dev and test must come from the same "
            "distribution (the one you care about); training data may differ.",
            "confusionMatrix",
            evaluate_test=True,
        ),
        Lesson(
            "bias-variance",
            "Bias and variance: the basic recipe",
            (
                _v("bias-variance", "tiny", "no hidden layer"),
                _v("bias-variance", "large", "128-128, 100 examples"),
                _v("bias-variance", "large-more-data", "128-128, 1,000 examples"),
            ),
            "The network without hidden layers cannot bend its boundary: its training error is well above "
            "the human-level (Bayes) error, a high-bias verdict, so the recipe says a bigger network. The "
            "128-128 network fits the 100 training points perfectly but not the dev set: high variance, so "
            "the recipe says more data, and with 10× the examples the train–dev gap shrinks.",
            "diagnosisPanel",
        ),
    )
}


# ---------------------------------------------------------------- loading


@dataclass(frozen=True)
class LoadedLesson:
    lesson: Lesson
    configs: dict[str, ExperimentConfig]  # variant name -> validated config, in lesson order
    quick: bool


def lesson_names() -> list[str]:
    return list(LESSONS)


def get_lesson(name: str) -> Lesson:
    """The lesson record; InputError naming the known lessons for an unknown name."""
    lesson = LESSONS.get(name)
    if lesson is None:
        raise InputError(f"unknown lesson {name!r} (known: {', '.join(LESSONS)})")
    return lesson


def variant_config(variant: Variant, quick: bool = False) -> ExperimentConfig:
    """The variant's experiment file with its overrides (and quick overrides) applied, validated."""
    cfg = load_config(LESSONS_DIR / variant.config)
    values = dict(variant.overrides)
    if quick:
        values.update(variant.quick)
    return cfg.replace(**values) if values else cfg


def load_lesson(name: str, *, quick: bool = False) -> LoadedLesson:
    """Read and validate every variant config of lesson ``name`` (ConfigError names the file)."""
    lesson = get_lesson(name)
    return LoadedLesson(lesson, {v.name: variant_config(v, quick) for v in lesson.variants}, quick)


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class VariantRun:
    """One finished (or stopped) variant: its run folder, summary.json and metrics.jsonl rows."""

    name: str
    label: str
    run_dir: Path
    summary: dict
    metrics: tuple[dict, ...]  # one metrics.jsonl dict per epoch (NaN/inf as None)

    @property
    def first_cost(self) -> float | None:
        return self.metrics[0].get("cost") if self.metrics else None


@dataclass(frozen=True)
class LessonResult:
    lesson: Lesson
    out_dir: Path
    quick: bool
    runs: tuple[VariantRun, ...]
    cancelled: bool  # should_stop ended the lesson before every variant had finished

    def run(self, variant: str) -> VariantRun:
        for r in self.runs:
            if r.name == variant:
                return r
        raise KeyError(variant)


def check_output_folder(path: str | Path, overwrite: bool = False) -> Path:
    """Refuse an existing non-empty folder (or a file) unless ``overwrite``.

    With overwrite, each variant's run folder is replaced the way ``train --overwrite`` replaces
    a run (:class:`engine.runs.RunFolder`: only once the new run has finished) and lesson.json
    is rewritten; other files in the folder are left alone.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a folder")
    if path.is_dir() and not overwrite and any(path.iterdir()):
        raise InputError(f"{path}: the folder is not empty; choose a new folder or overwrite it")
    return path


def run_lesson(
    name: str,
    out_dir: str | Path,
    *,
    quick: bool = False,
    progress: Callable[[str, Any], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    overwrite: bool = False,
    max_blas_threads: int | None = None,
) -> LessonResult:
    """Run every variant of lesson ``name`` into ``out_dir/<variant>/``, one after another.

    ``progress(variant_name, record)`` is called after every epoch of every variant with the
    trainer's EpochRecord. ``should_stop()`` is checked between mini-batches (the running
    variant ends with stop_reason ``cancelled`` and keeps its run folder) and before each
    variant (the rest are not started; ``result.cancelled`` is True). A variant that diverges
    or stops early still counts as run. ``out_dir`` must be new or empty unless ``overwrite``.
    Writes ``out_dir/lesson.json``: the lesson, its variants and :func:`comparison_table`.
    """
    from engine.experiment import run_experiment  # imported late: `lesson --list` stays quick

    loaded = load_lesson(name, quick=quick)
    lesson = loaded.lesson
    out = check_output_folder(out_dir, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[VariantRun] = []
    cancelled = False
    for variant in lesson.variants:
        if should_stop is not None and should_stop():
            cancelled = True
            break
        exp = run_experiment(
            loaded.configs[variant.name],
            out / variant.name,
            should_stop=should_stop,
            evaluate_test=lesson.evaluate_test,
            max_blas_threads=max_blas_threads,
            overwrite=overwrite,  # each variant folder is replaced only once its new run has finished
        )
        for record in exp.records():
            if progress is not None:
                progress(variant.name, record)
        summary = exp.summary or {}
        history = exp.result.history if exp.result is not None else ()
        metrics = tuple(r.metrics_dict() for r in history)
        runs.append(VariantRun(variant.name, variant.label, out / variant.name, summary, metrics))
        if summary.get("stop_reason") == "cancelled":
            cancelled = True
            break
    result = LessonResult(lesson, out, quick, tuple(runs), cancelled)
    atomic_write_json(out / LESSON_FILE, lesson_record(result))
    return result


def read_lesson(out_dir: str | Path) -> LessonResult:
    """A lesson folder read back (lesson.json and each variant's run folder), e.g. to overlay it again.

    Variants without a summary.json (not started before a lesson was cancelled) are left out.
    DataError names the folder when it is not a lesson folder.
    """
    from engine.errors import DataError
    from engine.runs import load_run

    out = Path(out_dir)
    path = out / LESSON_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        name = record["lesson"]
    except FileNotFoundError:
        raise DataError(f"{out}: not a lesson folder (no {LESSON_FILE})") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a readable lesson record ({exc})") from None
    lesson = get_lesson(name)
    runs = []
    for variant in lesson.variants:
        run_dir = out / variant.name
        if not (run_dir / "summary.json").is_file():
            continue
        run = load_run(run_dir)
        runs.append(VariantRun(variant.name, variant.label, run_dir, run.summary or {}, tuple(run.metrics)))
    return LessonResult(lesson, out, bool(record.get("quick")), tuple(runs), bool(record.get("cancelled")))


# ---------------------------------------------------------------- reporting

TABLE_COLUMNS = (
    "variant",
    "stop_reason",
    "epochs",
    "train_acc",
    "dev_acc",
    "gap",
    "first_cost",
    "final_cost",
)


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def comparison_table(result: LessonResult) -> list[dict]:
    """One row per variant that ran: :data:`TABLE_COLUMNS` plus ``label``, ``best_epoch``,
    ``verdict`` (the diagnosis code) and, when the test set was measured, ``test_acc``.

    Final figures describe the weights the run kept (summary.json's ``final_metrics``: the
    best epoch's when early stopping restored them); ``gap`` = train_acc − dev_acc;
    ``first_cost`` is the first epoch's mean mini-batch cost. Non-finite numbers are None.
    """
    rows = []
    for run in result.runs:
        s = run.summary
        final = s.get("final_metrics") or {}
        train_acc, dev_acc = _finite(final.get("train_acc")), _finite(final.get("dev_acc"))
        row = {
            "variant": run.name,
            "label": run.label,
            "stop_reason": s.get("stop_reason"),
            "epochs": s.get("epochs_run"),
            "best_epoch": s.get("best_epoch"),
            "train_acc": train_acc,
            "dev_acc": dev_acc,
            "gap": None if train_acc is None or dev_acc is None else train_acc - dev_acc,
            "first_cost": _finite(run.first_cost),
            "final_cost": _finite(final.get("cost")),
            "verdict": (s.get("diagnosis") or {}).get("verdict_code"),
        }
        if "test_acc" in s:
            row["test_acc"] = _finite(s.get("test_acc"))
        rows.append(row)
    return rows


def lesson_record(result: LessonResult) -> dict:
    """What ``lesson.json`` holds: the lesson, how it ran, and the comparison table."""
    lesson = result.lesson
    record = {
        "lesson": lesson.name,
        "title": lesson.title,
        "quick": result.quick,
        "cancelled": result.cancelled,
        "view": lesson.view,
        "look_for": lesson.look_for,
        "variants": [{"name": v.name, "label": v.label, "config": v.config} for v in lesson.variants],
        "table": comparison_table(result),
    }
    if lesson.depth_lab is not None:
        d = lesson.depth_lab
        record["depth_lab"] = {
            "hidden_layers": d.hidden_layers,
            "width": d.width,
            "activation": d.activation,
            "inits": list(d.inits),
            "scales": list(d.scales),
        }
    return record
