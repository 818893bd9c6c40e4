"""The current run's model, for the views that show the model itself (boundary, weights, ...).

:class:`CurrentModel` follows the training session's current run and offers a
:class:`ModelSnapshot`: a display copy of the network (never the training network, which
lives in the training process), its normalization, classes and, when available, the run's
prepared data. While the current run trains, it asks the training process for the weights at
most every ``REFRESH_MS`` while some view wants them (a view registers with :meth:`want`
while it is visible); a finished run's model is read from its ``model.npz`` off the GUI
thread. A run whose data differs from the loaded data gets its data prepared off the GUI
thread too (generated sets are regenerated, image folders come from the disk cache).

Signals: ``changed()`` when a new snapshot is available; ``statsArrived(key, epoch, stats)``
relays the live run's layer statistics (views ask for them with ``want(owner, stats=True)``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from engine.config import ExperimentConfig
from engine.dataset import PreparedData
from gui.models.training_session import TrainingSession
from gui.state import ExperimentState
from gui.tasks import TaskRunner

REFRESH_MS = 200  # at most five weight snapshots per second from a live run


@dataclass(frozen=True)
class ModelSnapshot:
    """One moment of the current run's model. net: a display MLP (safe to read from a worker)."""

    key: str
    epoch: int | None  # the epoch the weights come from (None: not known, e.g. an old model file)
    live: bool
    net: object  # engine.network.MLP
    config: ExperimentConfig
    norm_mean: np.ndarray
    norm_std: np.ndarray
    classes: list[str]
    input_shape: tuple[int, ...]
    data: PreparedData | None  # the run's train/dev/test sets when available

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3

    @property
    def is_2d(self) -> bool:
        return tuple(self.input_shape) == (2,)


def _data_key(cfg: ExperimentConfig) -> str:
    return json.dumps(cfg.to_dict()["data"], sort_keys=True)


class CurrentModel(QObject):
    changed = Signal()
    statsArrived = Signal(str, int, object)

    def __init__(self, session: TrainingSession, state: ExperimentState, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.state = state
        self._snapshot: ModelSnapshot | None = None
        self._wanted: dict[int, tuple[bool, bool]] = {}  # id(owner) -> (weights, stats)
        self._data_cache: dict[str, PreparedData] = {}  # data config -> prepared data (2 most recent)
        self._display_net = None
        self._loader = TaskRunner(self)
        self._loader.finished.connect(self._on_loaded)
        self._loader.errored.connect(self._on_load_errored)
        self.error: str | None = None  # why the current run's model could not be shown
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._request_live_weights)
        session.currentChanged.connect(self._on_current_changed)
        session.runFinished.connect(self._on_run_finished)
        session.weightsArrived.connect(self._on_weights_arrived)
        session.statsArrived.connect(self.statsArrived)
        session.stateChanged.connect(lambda _s: self._update_timer())

    # ---------------------------------------------------------------- views
    def snapshot(self) -> ModelSnapshot | None:
        return self._snapshot

    def want(self, owner: QObject, weights: bool = True, stats: bool = False) -> None:
        """A view that is visible asks for live weights (and layer statistics); want(owner, False)
        when it is hidden. The live run only does this extra work while someone looks."""
        if weights or stats:
            self._wanted[id(owner)] = (weights, stats)
        else:
            self._wanted.pop(id(owner), None)
        self.session.want_stats(any(s for _, s in self._wanted.values()))
        self._update_timer()
        if weights and self._snapshot is None and self.session.current() is not None:
            self._on_current_changed(self.session.current_key or "")

    def shutdown(self) -> None:
        self._timer.stop()
        self._loader.shutdown()

    # ---------------------------------------------------------------- following the session
    def _wants_weights(self) -> bool:
        return any(w for w, _ in self._wanted.values())

    def _update_timer(self) -> None:
        run = self.session.current()
        live = run is not None and run.live and self.session.live_key == run.key
        if live and self._wants_weights():
            if not self._timer.isActive():
                self._timer.start()
                self._request_live_weights()
        else:
            self._timer.stop()

    def _request_live_weights(self) -> None:
        self.session.request_weights()

    def _on_current_changed(self, key: str) -> None:
        self.error = None
        run = self.session.current()
        if run is None:
            self._loader.cancel()
            self._set(None)
        elif run.live:
            self._loader.cancel()
            self._set(None)  # until the first weights arrive
        else:
            self._load_finished_run(run.key)
        self._update_timer()

    def _on_run_finished(self, key: str) -> None:
        if key == self.session.current_key:
            self._load_finished_run(key)
        self._update_timer()

    def _on_weights_arrived(self, key: str, epoch: int, params: np.ndarray, sizes: list) -> None:
        run = self.session.history.get(key)
        data = self.session.live_data
        if key != self.session.current_key or run is None or data is None:
            return
        from engine.network import MLP

        cfg = run.config
        net = self._display_net
        if (
            net is None
            or list(net.layer_sizes) != list(sizes)
            or net.activation != cfg.model.activation
            or net.output != cfg.model.output
            or str(net.dtype) != cfg.training.dtype
        ):
            net = MLP(
                sizes, cfg.model.activation, dtype=cfg.training.dtype, max_batch=1, output=cfg.model.output
            )
        else:
            net = net.clone()  # a snapshot a worker may still be reading stays untouched
        net.set_params(params)
        self._display_net = net
        self._set(
            ModelSnapshot(
                key=key,
                epoch=epoch,
                live=True,
                net=net,
                config=cfg,
                norm_mean=np.asarray(data.norm_mean),
                norm_std=np.asarray(data.norm_std),
                classes=list(data.classes),
                input_shape=tuple(data.input_shape),
                data=data,
            )
        )

    def _load_finished_run(self, key: str) -> None:
        run = self.session.history.get(key)
        if run is None:
            return
        prepared = self._known_data(run.config)

        def load(ctx):
            from engine.runs import load_model

            model = load_model(run.path / "model.npz")
            data = prepared
            if data is None and not ctx.cancelled():
                from engine.prepare import prepare_data

                data = prepare_data(run.config, cancel=ctx.cancelled)
            summary = run.summary or {}
            epoch = summary.get("weights_epoch") if isinstance(summary.get("weights_epoch"), int) else None
            return key, epoch, model, data

        self._loader.start(load)

    def _known_data(self, cfg: ExperimentConfig) -> PreparedData | None:
        """The run's prepared data without loading anything: the loaded data when it is the same."""
        state = self.state
        if state.prepared is not None and state.prepare_error is None and state.config.data == cfg.data:
            return state.prepared
        return self._data_cache.get(_data_key(cfg))

    def _on_loaded(self, result) -> None:
        key, epoch, model, data = result
        run = self.session.history.get(key)
        if key != self.session.current_key or run is None:
            return
        if data is not None:
            self._data_cache[_data_key(run.config)] = data
            while len(self._data_cache) > 2:
                self._data_cache.pop(next(iter(self._data_cache)))
        self._set(
            ModelSnapshot(
                key=key,
                epoch=epoch,
                live=False,
                net=model.net,
                config=run.config,
                norm_mean=np.asarray(model.norm_mean),
                norm_std=np.asarray(model.norm_std),
                classes=list(model.classes),
                input_shape=tuple(model.input_shape),
                data=data,
            )
        )

    def _on_load_errored(self, message: str) -> None:
        self.error = message
        self._snapshot = None
        self.changed.emit()  # even when there was no snapshot before: views show the error

    def _set(self, snapshot: ModelSnapshot | None) -> None:
        if snapshot is None and self._snapshot is None:
            return
        self._snapshot = snapshot
        self.changed.emit()
