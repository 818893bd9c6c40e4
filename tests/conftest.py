import os
import sys
from pathlib import Path

# Qt must not look for a display; set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# keep decoded-image caches of the tests out of the user's cache folder
os.environ.setdefault(
    "REGLAB_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "reglab")
)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


def _uses_qt(request) -> bool:
    return "qtbot" in request.fixturenames or "qapp" in request.fixturenames


@pytest.fixture(autouse=True)
def isolated_settings(request):
    """GUI tests keep QSettings in a temporary folder, never the user's real settings."""
    if not _uses_qt(request):
        yield
        return
    request.getfixturevalue("qapp")
    from PySide6.QtCore import QCoreApplication, QSettings

    folder = request.getfixturevalue("tmp_path") / "settings"
    QCoreApplication.setOrganizationName("RegLabTest")
    QCoreApplication.setApplicationName("RegLabTest")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield


@pytest.fixture(autouse=True)
def no_dangling_threads(request):
    """Fail a GUI test that leaves a QThread running (as napari's _dangling_qthreads does).

    Yields the QThreads started during the test, for tests that check them.
    """
    if "PySide6.QtCore" not in sys.modules and not _uses_qt(request):
        yield []
        return
    from PySide6.QtCore import QThread

    started = []
    original_start = QThread.start

    def tracking_start(self, *args, **kwargs):
        started.append(self)
        return original_start(self, *args, **kwargs)

    QThread.start = tracking_start
    try:
        yield started
    finally:
        QThread.start = original_start
    still_running = []
    for thread in started:
        try:
            if thread.isRunning() and not thread.wait(10000):
                still_running.append(thread)
        except RuntimeError:  # the C++ object is already gone: it has stopped
            pass
    if still_running:
        pytest.fail(f"{len(still_running)} QThread(s) still running 10 s after the test ended")
