"""The data session: loads and prepares the data the experiment config describes.

It owns the background jobs (``engine.prepare.load_sources`` and ``prepare_from_sources``,
which fits the normalization statistics), their cancellation, and the answer to "is the
loaded data the data the config describes?". Config edits are reconciled after a short
debounce: a change of the source or its generation settings reloads, a change of split /
stratify / normalize only prepares again. Results land in ``state.set_data``.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engine.config import DataConfig, ExperimentConfig
from engine.dataset import PreparedData, SourceData
from engine.errors import InputError
from gui.state import ExperimentState
from gui.tasks import TaskRunner

PREPARE_ONLY = ("split", "stratify", "normalize", "train_limit")  # data fields that need no reload
DEBOUNCE_MS = 250
MAX_SCATTER = 2000
MAX_NORM_IMAGES = 400


def load_key(data: DataConfig) -> str:
    """Everything that decides what load_sources returns."""
    d = {k: v for k, v in dataclasses.asdict(data).items() if k not in PREPARE_ONLY}
    return json.dumps(d, sort_keys=True)


def prepare_key(data: DataConfig) -> str:
    return json.dumps(dataclasses.asdict(data), sort_keys=True)


# ---------------------------------------------------------------- worker-side helpers (no widgets)


def _prepare(cfg: ExperimentConfig, sources: dict[str, SourceData]) -> tuple[PreparedData | None, str | None]:
    from engine.prepare import prepare_from_sources

    try:
        return prepare_from_sources(cfg, sources), None
    except InputError as exc:
        return None, str(exc)


def source_views(sources: dict[str, SourceData]) -> dict:
    """Thumbnails per class (images) or a subsample of points (2-D) of the main source."""
    main = sources["main"]
    rng = np.random.default_rng(0)
    if main.is_image:
        from engine.images import preview_images

        per_class = 4 if len(main.classes) <= 8 else 2
        return {"thumbnails": preview_images(main, per_class, rng)}
    X = np.asarray(main.X)
    idx = (
        np.arange(len(X))
        if len(X) <= MAX_SCATTER
        else np.sort(rng.choice(len(X), MAX_SCATTER, replace=False))
    )
    return {"points": (X[idx, :2].astype(np.float64), main.y[idx])}


def norm_views(prepared: PreparedData | None) -> dict | None:
    """Before/after views of the training split: per-channel pixel histograms or 2-D points."""
    if prepared is None or len(prepared.train) == 0:
        return None
    from engine.normalization import apply_standardizer, feature_matrix

    X, y = prepared.train, prepared.train.y  # an ArraySet: indexing reads rows, never the whole set
    rng = np.random.default_rng(0)
    limit = MAX_NORM_IMAGES if prepared.is_image else MAX_SCATTER
    if len(X) > limit:
        idx = np.sort(rng.choice(len(X), limit, replace=False))
        X, y = X[idx], y[idx]
    before = feature_matrix(X)
    after = apply_standardizer(before, prepared.norm_mean, prepared.norm_std)
    if not prepared.is_image:
        return {"kind": "points", "before": before[:, :2], "after": after[:, :2], "y": y}
    c = prepared.input_shape[2]
    hist_before, hist_after = [], []
    for ch in range(c):
        b = before[:, ch::c].ravel()
        a = after[:, ch::c].ravel()
        hist_before.append(np.histogram(b, bins=40, range=(0.0, 1.0)))
        lo, hi = float(np.min(a)), float(np.max(a))
        hist_after.append(np.histogram(a, bins=40, range=(lo, hi if hi > lo else lo + 1.0)))
    return {"kind": "hist", "before": hist_before, "after": hist_after, "channels": c}


class DataSession(QObject):
    """Loads and prepares ``state.config.data``; see the module docstring.

    Signals: loadStarted(source), loadProgressed(done, total), loadEnded() (finished, failed or
    cancelled), statusChanged(text), errorOccurred(message) for a dialog, problemsChanged().
    """

    loadStarted = Signal(str)
    loadProgressed = Signal(int, int)
    loadEnded = Signal()
    statusChanged = Signal(str)
    errorOccurred = Signal(str)
    problemsChanged = Signal()

    def __init__(self, state: ExperimentState, parent: QObject | None = None, autoload: bool = True):
        super().__init__(parent)
        self.state = state
        self.views: dict = {}  # preview pictures computed with the data (thumbnails, points, norm)
        self._loaded_key: str | None = None  # load_key of state.sources
        self._prepared_key: str | None = None  # prepare_key of state.prepared / prepare_error
        self._loaded_data: DataConfig | None = None  # data config of state.sources
        self._loading_key: str | None = None
        self._preparing_key: str | None = None
        self.load_error: str | None = None  # loading failed and no earlier data is loaded
        self.failed_message: str | None = None  # loading failed; the earlier data stays in use
        self._attempted_key: str | None = None  # load_key of the last load started
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.reconcile)
        self._load_runner = TaskRunner(self)
        self._load_runner.progressed.connect(self._on_load_progressed)
        self._load_runner.finished.connect(self._on_load_finished)
        self._load_runner.errored.connect(self._on_load_errored)
        self._load_runner.aborted.connect(self._on_load_aborted)
        self._prepare_runner = TaskRunner(self)
        self._prepare_runner.finished.connect(self._on_prepare_finished)
        self._prepare_runner.errored.connect(self._on_prepare_errored)
        if state.sources:  # data loaded by someone else: assume it matches the config
            self._loaded_key = load_key(state.config.data)
            self._prepared_key = prepare_key(state.config.data)
            self._loaded_data = state.config.data
        state.configChanged.connect(self._on_state_config_changed)
        if autoload and not state.sources:
            self.load()

    # ---------------------------------------------------------------- queries
    def is_loading(self) -> bool:
        return self._load_runner.is_running() or self._loading_key is not None

    def is_preparing(self) -> bool:
        """A split of the loaded sources is being prepared (normalization statistics fitted)."""
        return self._preparing_key is not None

    def is_current(self) -> bool:
        """The prepared data is the data the config describes (ready to train on)."""
        d = self.state.config.data
        return (
            self.state.prepared is not None
            and self.state.prepare_error is None
            and self._loaded_key == load_key(d)
            and self._prepared_key == prepare_key(d)
            and self._preparing_key is None
        )

    def problems(self) -> list[str]:
        """Why the data cannot be trained on now (empty when it can)."""
        out = []
        d = self.state.config.data
        if self._loading_key is not None:
            out.append("The data is still loading.")
        elif self.load_error:
            out.append(f"Could not load the data: {self.load_error}")
        elif not self.state.sources:
            out.append("No data is loaded.")
        elif self._loaded_key != load_key(d):
            out.append("The data settings changed; the data is being reloaded.")
        elif self._prepared_key != prepare_key(d) or self._preparing_key is not None:
            out.append("The split is being prepared again.")
        if self.state.prepare_error:
            out.append(self.state.prepare_error)
        return out

    # ---------------------------------------------------------------- actions
    def load(self) -> None:
        """Load the configured sources in the background, then prepare the split."""
        cfg = self.state.config
        self._loading_key = load_key(cfg.data)
        self._attempted_key = self._loading_key
        self.load_error = None
        self.failed_message = None

        def job(ctx):
            from engine.prepare import load_sources

            sources = load_sources(cfg.data, progress=lambda d, t: ctx.progress((d, t)), cancel=ctx.cancelled)
            if ctx.cancelled():
                return None
            prepared, error = _prepare(cfg, sources)
            return {
                "cfg": cfg,
                "sources": sources,
                "prepared": prepared,
                "error": error,
                "views": source_views(sources),
                "norm": norm_views(prepared),
            }

        self._load_runner.start(job)
        self.loadStarted.emit(cfg.data.source)
        self.problemsChanged.emit()

    def cancel(self) -> None:
        """Stop the running load; the previously loaded data stays (and its settings return)."""
        if self._loading_key is None:
            return
        self._load_runner.cancel()
        self._on_load_aborted()

    def reconcile(self) -> None:
        """Reload or re-prepare when the config no longer matches the loaded data."""
        d = self.state.config.data
        lk = load_key(d)
        if self._loading_key is not None:
            if self._loading_key != lk:
                self.load()
            return
        if lk != self._loaded_key:
            if self.load_error is None or lk != self._attempted_key:
                self.load()
            return
        pk = prepare_key(d)
        if pk != self._prepared_key and pk != self._preparing_key:
            self._start_prepare()

    def shutdown(self, msecs: int = 10000) -> bool:
        """Stop timers and background jobs (the window calls this when it closes)."""
        self._timer.stop()
        ok = self._load_runner.shutdown(msecs)
        return self._prepare_runner.shutdown(msecs) and ok

    # ---------------------------------------------------------------- internals
    def _on_state_config_changed(self, section: str) -> None:
        if section in ("data", "all"):
            self._timer.start()
            self.problemsChanged.emit()

    def _on_load_progressed(self, value) -> None:
        done, total = value
        self.loadProgressed.emit(int(done), int(total))

    def _end_load(self) -> None:
        self._loading_key = None
        self.loadEnded.emit()

    def _on_load_finished(self, result) -> None:
        self._end_load()
        if result is None:
            return
        cfg: ExperimentConfig = result["cfg"]
        self.load_error = None
        self._loaded_key = load_key(cfg.data)
        self._prepared_key = prepare_key(cfg.data)
        self._loaded_data = cfg.data
        self.views = {**result["views"], "norm": result["norm"]}
        if self._prepared_key != prepare_key(self.state.config.data):
            # the split changed while loading: never publish a split the config no longer describes
            self._prepared_key = None
            self.state.set_data(result["sources"], None, None)
        else:
            self.state.set_data(result["sources"], result["prepared"], result["error"])
            if result["error"]:
                self.errorOccurred.emit(result["error"])
        self.statusChanged.emit("")
        self.problemsChanged.emit()
        self.reconcile()

    def _on_load_errored(self, message: str) -> None:
        self._end_load()
        if self.state.sources and self._loaded_data is not None:
            # like Cancel: go back to the data that is loaded, so the user can keep working
            # with it (and train) while the message says what went wrong with the new source
            self.failed_message = message
            self._revert_to_loaded()
            self.statusChanged.emit("Loading failed; the previous data is still loaded and in use.")
        else:
            self.load_error = message
            self.statusChanged.emit("Loading failed.")
        self.problemsChanged.emit()
        self.errorOccurred.emit(message)

    def _on_load_aborted(self) -> None:
        self._end_load()
        self._revert_to_loaded()
        self.statusChanged.emit("Loading cancelled; the previous data is kept.")
        self.problemsChanged.emit()

    def _revert_to_loaded(self) -> None:
        """Put back the data settings of the data that is actually loaded."""
        if self._loaded_data is None:
            return
        keep = {
            f.name: getattr(self._loaded_data, f.name)
            for f in dataclasses.fields(DataConfig)
            if f.name not in PREPARE_ONLY
        }
        self.state.update("data", **keep)

    def _start_prepare(self) -> None:
        if not self.state.sources:
            return
        cfg = self.state.config
        sources = self.state.sources
        self._preparing_key = prepare_key(cfg.data)

        def job(ctx):
            prepared, error = _prepare(cfg, sources)
            return {
                "cfg": cfg,
                "sources": sources,
                "prepared": prepared,
                "error": error,
                "norm": norm_views(prepared),
            }

        self._prepare_runner.start(job)
        self.problemsChanged.emit()

    def _on_prepare_finished(self, result) -> None:
        self._preparing_key = None
        if result["sources"] is not self.state.sources:
            return  # data was reloaded meanwhile
        if prepare_key(result["cfg"].data) != prepare_key(self.state.config.data):
            self.reconcile()  # settings changed meanwhile: prepare again, publish nothing stale
            return
        self._prepared_key = prepare_key(result["cfg"].data)
        self.views["norm"] = result["norm"]
        self.state.set_data(result["sources"], result["prepared"], result["error"])
        self.problemsChanged.emit()

    def _on_prepare_errored(self, message: str) -> None:
        self._preparing_key = None
        self._prepared_key = prepare_key(self.state.config.data)  # do not retry the same settings
        self.state.set_data(self.state.sources, None, message)
        self.problemsChanged.emit()
