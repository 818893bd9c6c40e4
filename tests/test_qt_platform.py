"""Start-up without Qt's abort: gui.qt_platform decides before the QApplication exists whether
Qt can open a window, and the window's start-up prints one message and exits 1 instead.

Unit tests feed fake environments and fake ldd output; the subprocess tests run the real
``python main.py`` with no display, and with a fake ``ldd`` on PATH that reports missing
libraries, and check that Qt never got as far as aborting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gui import qt_platform
from gui.qt_platform import NO_DISPLAY, import_problem, missing_libraries, startup_problem

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = Path("/venv/site-packages/PySide6/Qt/plugins/platforms/libqxcb.so")

# `ldd libqxcb.so` on a fresh Debian 12 with PySide6 6.11 (trimmed): ldd repeats a missing
# library once per library that needs it
LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd5a3e2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f1c2c000000)
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f1c2c9f4000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f1c2c9ee000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f1c2c9e7000)
\tlibxcb-keysyms.so.1 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1c2b81f000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f1c2ca2c000)
"""
LDD_COMPLETE = "\n".join(line for line in LDD_MISSING.splitlines() if "not found" not in line)


class FakeLdd:
    def __init__(self, output: str | None):
        self.output = output
        self.calls: list[Path] = []

    def __call__(self, path: Path) -> str | None:
        self.calls.append(path)
        return self.output


def problem(env: dict, output: str | None = LDD_MISSING, **kw) -> tuple[str | None, FakeLdd]:
    ldd = FakeLdd(output)
    kw.setdefault("platform", "linux")
    kw.setdefault("as_root", False)
    return startup_problem(env, ldd=ldd, plugin=lambda: PLUGIN, **kw), ldd


def test_missing_libraries_are_named_once_each_in_ldds_order():
    assert missing_libraries(LDD_MISSING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert missing_libraries(LDD_COMPLETE) == []


def test_an_x11_desktop_missing_xcb_libraries_gets_the_apt_get_line():
    message, ldd = problem({"DISPLAY": ":0"})
    assert ldd.calls == [PLUGIN]
    first, second = message.splitlines()
    assert first.startswith("error: Qt's X11 (xcb) platform plugin cannot load")
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in first
    assert second == "    sudo apt-get install libxcb-icccm4 libxcb-keysyms1"
    assert "cursor" not in message  # Qt's own message wrongly blames libxcb-cursor0


def test_root_is_not_told_to_use_sudo():
    message, _ = problem({"DISPLAY": ":0"}, as_root=True)
    assert message.splitlines()[1] == "    apt-get install libxcb-icccm4 libxcb-keysyms1"


def test_a_library_without_a_known_package_is_named():
    output = LDD_MISSING + "\tlibfancy.so.3 => not found\n"
    message, _ = problem({"DISPLAY": ":0"}, output)
    assert message.splitlines()[1] == (
        "    sudo apt-get install libxcb-icccm4 libxcb-keysyms1 and the packages that provide libfancy.so.3"
    )


@pytest.mark.parametrize("output", [LDD_COMPLETE, None])  # None: no ldd on this system
def test_a_complete_plugin_or_no_ldd_lets_qt_start(output):
    message, ldd = problem({"DISPLAY": ":0"}, output)
    assert message is None and ldd.calls == [PLUGIN]


@pytest.mark.parametrize("env", [{}, {"QT_QPA_PLATFORM": "xcb"}, {"QT_QPA_PLATFORM": "xcb:foo=1"}])
def test_no_display_is_said_plainly_without_running_ldd(env):
    message, ldd = problem(env)
    assert message == NO_DISPLAY and ldd.calls == []
    assert "xvfb-run reglab" in message and "QT_QPA_PLATFORM=offscreen reglab" in message


@pytest.mark.parametrize(
    "env",
    [
        {"QT_QPA_PLATFORM": "offscreen"},  # chosen by the user: not ours to judge
        {"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":0"},
        {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"},  # Qt tries wayland first
        {"XDG_SESSION_TYPE": "wayland"},
    ],
)
def test_platforms_other_than_xcb_first_are_not_checked(env):
    message, ldd = problem(env)
    assert message is None and ldd.calls == []


def test_explicit_xcb_with_a_display_is_checked():
    message, ldd = problem({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":1"})
    assert ldd.calls == [PLUGIN] and "libxcb-keysyms1" in message


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_other_systems_are_left_to_qt(platform):
    message, ldd = problem({}, platform=platform)
    assert message is None and ldd.calls == []


def test_a_pyside6_import_failure_lists_every_missing_library():
    exc = ImportError("libEGL.so.1: cannot open shared object file: No such file or directory")
    ldd = FakeLdd("\tlibEGL.so.1 => not found\n\tlibfontconfig.so.1 => not found\n")
    module = Path("/venv/PySide6/QtWidgets.abi3.so")
    message = import_problem(exc, ldd=ldd, module=lambda: module, as_root=False)
    assert ldd.calls == [module]
    assert message.splitlines() == [
        "error: Qt cannot load: these system libraries are missing: libEGL.so.1, libfontconfig.so.1. "
        "On Debian or Ubuntu install them with:",
        "    sudo apt-get install libegl1 libfontconfig1",
    ]
    # without ldd the library the loader named is still reported
    message = import_problem(exc, ldd=FakeLdd(None), module=lambda: module, as_root=True)
    assert message.splitlines()[1] == "    apt-get install libegl1"
    assert import_problem(ImportError("No module named 'PySide6'"), ldd=ldd, module=lambda: module) is None


def test_every_system_library_of_the_real_xcb_plugin_has_a_debian_package():
    plugin = qt_platform.xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
    output = qt_platform.run_ldd(plugin)
    assert output, "ldd gave no output"
    names = []
    for line in output.splitlines():
        parts = line.split()
        if "=>" in parts and "/PySide6/" not in line:  # libraries outside the wheel
            names.append(parts[0])
    assert "libxcb.so.1" in names and "libxcb-icccm.so.4" in names
    assert [n for n in names if n not in qt_platform.DEBIAN_PACKAGES] == []


# ---------------------------------------------------------------- the real start-up


def clean_env(tmp_path: Path, **extra: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "XDG_SESSION_TYPE"}
    }
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"), **extra)
    return env


def run_main(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_window_without_a_display_says_so_and_exits_1(tmp_path):
    out = run_main([], clean_env(tmp_path))
    assert out.returncode == 1, out.stderr  # not 134: Qt never aborted
    assert out.stderr.splitlines() == [NO_DISPLAY]
    assert out.stdout == ""


def test_the_window_with_missing_xcb_libraries_prints_the_install_line(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    ldd = fake / "ldd"
    ldd.write_text(
        "#!/bin/sh\nprintf '\\tlibxcb-icccm.so.4 => not found\\n\\tlibxcb-keysyms.so.1 => not found\\n'\n"
    )
    ldd.chmod(0o755)
    env = clean_env(tmp_path, DISPLAY=":97", PATH=f"{fake}{os.pathsep}{os.environ.get('PATH', '')}")
    out = run_main([], env)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 2 and "xcb" in lines[0] and "qt.qpa" not in out.stderr
    assert lines[1].endswith("apt-get install libxcb-icccm4 libxcb-keysyms1")


def test_the_readme_install_line_covers_every_x11_library_of_the_real_plugin():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(x.strip() for x in readme.splitlines() if x.strip().startswith("sudo apt-get install"))
    listed = set(line.split()[3:])
    output = qt_platform.run_ldd(qt_platform.xcb_plugin())
    x11 = {
        qt_platform.DEBIAN_PACKAGES[line.split()[0]]
        for line in output.splitlines()
        if "=>" in line
        and "/PySide6/" not in line
        and line.split()[0].startswith(("libxcb", "libxkb", "libX11-xcb"))
    }
    assert {"libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0"} <= x11
    # apt installs these as dependencies of the listed ones (apt-cache depends --recurse, Debian 12)
    implied = {"libxcb1", "libxcb-render0", "libxcb-shm0", "libxcb-sync1", "libxcb-util1", "libxcb-xfixes0"}
    assert x11 - implied - {"libxkbcommon0"} <= listed
