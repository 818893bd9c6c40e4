"""Window preferences kept between sessions through QSettings.

Only small user preferences live here (window geometry, the last folder used in a file
dialog, the runs folder). Tests point QSettings at a temporary folder with
``QSettings.setPath`` / ``QSettings.setDefaultFormat(IniFormat)`` so the user's real
settings are never touched.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

ORGANIZATION = "RegLab"
APPLICATION = "RegLab"
RUNS_DIR_ENV = "REGLAB_RUNS_DIR"


class SettingsStore:
    """Typed access to the few QSettings keys the window uses."""

    def __init__(self, settings: QSettings | None = None):
        self._s = settings if settings is not None else QSettings()

    # window geometry / dock layout
    def geometry(self) -> QByteArray | None:
        value = self._s.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, data: QByteArray) -> None:
        self._s.setValue("window/geometry", data)

    def splitter_state(self, name: str) -> QByteArray | None:
        value = self._s.value(f"window/splitter_{name}")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_splitter_state(self, name: str, data: QByteArray) -> None:
        self._s.setValue(f"window/splitter_{name}", data)

    # the folder of the last file dialog
    def last_folder(self) -> str:
        value = self._s.value("files/last_folder", "")
        if isinstance(value, str) and value and Path(value).is_dir():
            return value
        return str(Path.home())

    def set_last_folder(self, path: str | Path) -> None:
        p = Path(path)
        folder = p if p.is_dir() else p.parent
        self._s.setValue("files/last_folder", str(folder))

    def sync(self) -> None:
        self._s.sync()


def default_runs_dir(override: str | Path | None = None) -> Path:
    """Where runs are written: --runs-dir, else $REGLAB_RUNS_DIR, else AppDataLocation/runs."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(RUNS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    if not base:
        base = str(Path.home() / ".reglab")
    return Path(base) / "runs"
