"""The window's model: one experiment config plus the data loaded for it.

Panels take an ExperimentState in their constructor, write user edits into
``state.config`` through :meth:`update`, and listen to ``configChanged`` to refresh.
No training math lives here.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject, Signal

from engine.config import ExperimentConfig, from_dict
from engine.dataset import PreparedData, SourceData


class ExperimentState(QObject):
    """Holds the current ExperimentConfig and the loaded/prepared data.

    configChanged(section): a config section changed ("data", "augment", "model", ...,
    or "all" after New/Open). dataChanged(): sources or the prepared split changed.
    """

    configChanged = Signal(str)
    dataChanged = Signal()

    def __init__(self, config: ExperimentConfig | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.config: ExperimentConfig = config if config is not None else default_config()
        self.sources: dict[str, SourceData] = {}  # "main", optionally "dev" and "test"
        self.prepared: PreparedData | None = None
        self.prepare_error: str | None = None  # why the current split cannot be prepared

    def update(self, section: str, **fields) -> None:
        """Set fields of one config section and announce it (no-op when nothing changes).

        The config is immutable: a new, validated config replaces it (ConfigError when the
        values are refused; the config then stays as it was)."""
        sub = getattr(self.config, section)
        for name in fields:
            if not any(f.name == name for f in dataclasses.fields(sub)):
                raise AttributeError(f"{section}.{name} is not a config field")
        new = self.config.replace(**{f"{section}.{k}": v for k, v in fields.items()})
        if new != self.config:
            self.config = new
            self.configChanged.emit(section)

    def update_values(self, values: dict) -> None:
        """Set dotted-path fields of several sections at once (fields that must agree, such as
        model.hidden and a per-layer keep_prob); announces each changed section."""
        new = self.config.replace(**values)
        if new != self.config:
            old, self.config = self.config, new
            for section in dict.fromkeys(path.split(".")[0] for path in values):
                if getattr(old, section) != getattr(new, section):
                    self.configChanged.emit(section)

    def set_config(self, config: ExperimentConfig) -> None:
        """Replace the whole config (New / Open experiment)."""
        self.config = config
        self.configChanged.emit("all")

    def set_data(
        self, sources: dict[str, SourceData], prepared: PreparedData | None, error: str | None = None
    ) -> None:
        self.sources = sources
        self.prepared = prepared
        self.prepare_error = error
        self.dataChanged.emit()


def default_config() -> ExperimentConfig:
    """What `python main.py` opens on: a small, quick 2-D experiment ready to train."""
    return from_dict(
        {
            "data": {"source": "builtin:moons", "n_samples": 600, "noise": 0.3, "split": [0.6, 0.2, 0.2]},
            "model": {"hidden": [64, 32], "activation": "relu", "init": "he"},
            "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"epochs": 200, "batch_size": 64},
        }
    )
