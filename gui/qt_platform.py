"""Will Qt be able to open a window here? Decided before the QApplication exists, because a
QApplication whose platform plugin cannot load aborts the whole process (exit 134) with a
message that misleads: on Linux it names ``libxcb-cursor0`` whatever library is missing.

This module imports no Qt. :func:`startup_problem` returns one message (what is wrong and
the command that fixes it) or None; the window's start-up prints it and exits instead of
creating the QApplication. Cheap: without a display it only reads the environment; only
when Qt is going to use its X11 (xcb) plugin it runs ``ldd`` once on that plugin (~50 ms).
:func:`import_problem` does the same for PySide6 itself failing to import (QtGui needs
libEGL, libGL, fontconfig, xkbcommon even off screen).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

# Debian/Ubuntu package of each system library PySide6's xcb plugin and QtGui load (the
# plugin's whole ldd closure outside the wheel). Built on Debian 12 with `dpkg -S` on each
# library `ldd Qt/plugins/platforms/libqxcb.so` resolved, and for the two it reported "not
# found" there (libxcb-icccm.so.4, libxcb-keysyms.so.1) with `dpkg -c` on the downloaded
# packages; with those two added the window opened on an Xvfb display.
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libpng16.so.16": "libpng16-16",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    # what the libraries above load in turn (present on almost every system)
    "libzstd.so.1": "libzstd1",
    "libbrotlidec.so.1": "libbrotli1",
    "libbrotlicommon.so.1": "libbrotli1",
    "libbsd.so.0": "libbsd0",
    "libmd.so.0": "libmd0",
    "libpcre2-8.so.0": "libpcre2-8-0",
    "libexpat.so.1": "libexpat1",
    "libsystemd.so.0": "libsystemd0",
    "liblz4.so.1": "liblz4-1",
    "libgcrypt.so.20": "libgcrypt20",
    "libgpg-error.so.0": "libgpg-error0",
    "libcap.so.2": "libcap2",
    "liblzma.so.5": "liblzma5",
    "libz.so.1": "zlib1g",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
    "libc.so.6": "libc6",
    "libm.so.6": "libc6",
    "libdl.so.2": "libc6",
    "libpthread.so.0": "libc6",
}

NO_DISPLAY = (
    "error: there is no display to open the RegLab window on (neither DISPLAY nor WAYLAND_DISPLAY "
    "is set). Run it in a desktop session, under a virtual display (`xvfb-run reglab`) or off "
    "screen (`QT_QPA_PLATFORM=offscreen reglab`; `reglab --screenshot out.png` does that itself); "
    "the headless sub-commands need no display (`reglab --help`)."
)

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$", re.MULTILINE)
_CANNOT_OPEN = re.compile(r"(\S+\.so[.\d]*): cannot open shared object file")


def _pyside6_folders() -> list[Path]:
    """Where the PySide6 package lives, found without importing it (that may fail)."""
    spec = importlib.util.find_spec("PySide6")
    return [Path(folder) for folder in (spec.submodule_search_locations or [])] if spec else []


def xcb_plugin() -> Path | None:
    """PySide6's ``Qt/plugins/platforms/libqxcb.so``."""
    for folder in _pyside6_folders():
        path = folder / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if path.is_file():
            return path
    return None


def run_ldd(path: Path) -> str | None:
    """``ldd path``'s output; None when ldd is missing or fails."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        done = subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def missing_libraries(ldd_output: str) -> list[str]:
    """Library names ldd reports as ``not found``, each once, in ldd's order."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def install_hint(libraries: Iterable[str], as_root: bool) -> str:
    """One line that installs the Debian/Ubuntu packages of libraries (the unknown ones are
    named instead)."""
    libraries = list(libraries)
    packages = list(dict.fromkeys(DEBIAN_PACKAGES[lib] for lib in libraries if lib in DEBIAN_PACKAGES))
    unknown = [lib for lib in libraries if lib not in DEBIAN_PACKAGES]
    parts = []
    if packages:
        parts.append(f"{'' if as_root else 'sudo '}apt-get install {' '.join(packages)}")
    if unknown:
        parts.append(f"and the packages that provide {', '.join(unknown)}")
    return "    " + " ".join(parts)


def _platforms(env: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt will try, in order (qguiapplication.cpp's choice on Linux)."""
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen:
        return [name.split(":", 1)[0] for name in chosen.split(";") if name]
    order = []
    if env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland":
        order.append("wayland")
    if env.get("DISPLAY"):
        order.append("xcb")
    return order


def startup_problem(
    env: Mapping[str, str],
    *,
    platform: str = sys.platform,
    ldd: Callable[[Path], str | None] = run_ldd,
    plugin: Callable[[], Path | None] = xcb_plugin,
    as_root: bool | None = None,
) -> str | None:
    """Why a QApplication would abort here, as the message to print; None when it should start.

    Linux only (elsewhere the wheel carries what Qt needs). Checks that a display is expected
    and, when the xcb plugin is the one Qt tries first, that ldd finds every library it needs.
    """
    if not platform.startswith("linux"):
        return None
    order = _platforms(env)
    if not order:
        return NO_DISPLAY
    if order[0] != "xcb":
        return None
    if not env.get("DISPLAY"):  # QT_QPA_PLATFORM=xcb without an X display
        return NO_DISPLAY
    path = plugin()
    output = ldd(path) if path is not None else None
    missing = missing_libraries(output or "")
    if not missing:
        return None
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    return (
        "error: Qt's X11 (xcb) platform plugin cannot load: these system libraries are missing: "
        f"{', '.join(missing)}. On Debian or Ubuntu install them with:\n{install_hint(missing, as_root)}"
    )


def widgets_module() -> Path | None:
    """PySide6's QtWidgets extension module (its ldd closure holds QtGui's and QtCore's)."""
    for folder in _pyside6_folders():
        found = sorted(folder.glob("QtWidgets*.so"))
        if found:
            return found[0]
    return None


def import_problem(
    exc: ImportError,
    *,
    ldd: Callable[[Path], str | None] = run_ldd,
    module: Callable[[], Path | None] = widgets_module,
    as_root: bool | None = None,
) -> str | None:
    """The message for PySide6 failing to import because system libraries are missing (all
    of them, from ldd on QtWidgets, not only the first one the loader tripped on); None when
    exc is some other import error."""
    found = _CANNOT_OPEN.search(str(exc))
    if found is None:
        return None
    path = module()
    missing = missing_libraries((ldd(path) if path is not None else None) or "") or [found.group(1)]
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    return (
        f"error: Qt cannot load: these system libraries are missing: {', '.join(missing)}. "
        f"On Debian or Ubuntu install them with:\n{install_hint(missing, as_root)}"
    )
