"""One dispatch behind ``reglab``, ``python -m reglab`` and ``python main.py``: ``--version``,
headless sub-commands read from engine.cli's parser, the window otherwise; and the console
script that ``pip install`` creates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import engine.cli
import reglab

try:
    import tomllib
except ImportError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]


def run(cmd: list[str], cwd: Path = ROOT, env: dict | None = None, timeout: float = 120):
    env = dict(os.environ if env is None else env, OPENBLAS_NUM_THREADS="1")
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_pyproject_declares_the_console_script_and_ships_the_package():
    assert PYPROJECT["project"]["scripts"] == {"reglab": "reglab:main"}
    assert "reglab*" in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]


@pytest.mark.parametrize("entry", [["-m", "reglab"], ["main.py"]])
def test_version_from_a_source_tree(entry):
    out = run([sys.executable, *entry, "--version"])
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"reglab {VERSION}\n"
    assert out.stderr == ""


def test_python_m_reglab_runs_a_headless_command_like_main_py():
    outs = [
        run([sys.executable, *e, "data", "--source", "builtin:moons"])
        for e in (["-m", "reglab"], ["main.py"])
    ]
    for out in outs:
        assert out.returncode == 0, out.stderr
    report = json.loads(outs[0].stdout)
    assert report["counts"] == {"upper moon": 500, "lower moon": 500}  # the default 1,000 points
    assert outs[0].stdout == outs[1].stdout


def test_bad_input_through_python_m_reglab_is_one_line_and_status_2():
    out = run([sys.executable, "-m", "reglab", "data", "--source", "builtin:nope"])
    assert out.returncode == 2
    assert out.stderr.startswith("error: --source: ") and "'nope'" in out.stderr
    assert len(out.stderr.splitlines()) == 1


def test_help_lists_the_sub_commands_and_the_window_options():
    out = run([sys.executable, "-m", "reglab", "--help"])
    assert out.returncode == 0, out.stderr
    for word in ("train", "gradcheck", "evaluate", "data", "--screenshot", "--runs-dir", "--dark"):
        assert word in out.stdout


def test_headless_commands_come_from_the_cli_parser():
    assert {"train", "gradcheck", "evaluate", "data"} <= reglab.headless_commands()
    assert "--screenshot" not in reglab.headless_commands()


def test_a_sub_command_added_to_the_cli_parser_dispatches_with_no_other_edit(monkeypatch):
    original = engine.cli.build_parser

    def with_hello():
        parser = original()
        sub = next(a for a in parser._actions if a.dest == "command")
        sub.add_parser("hello")
        return parser

    seen = []
    monkeypatch.setattr(engine.cli, "build_parser", with_hello)
    monkeypatch.setattr(engine.cli, "main", lambda argv: seen.append(argv) or 7)
    assert reglab.main(["hello", "--x"]) == 7
    assert seen == [["hello", "--x"]]


def test_window_options_go_to_the_window(monkeypatch):
    import gui.app

    seen = []
    monkeypatch.setattr(gui.app, "main", lambda argv: seen.append(argv) or 0)
    assert reglab.main(["--dark"]) == 0 and reglab.main([]) == 0
    assert seen == [["--dark"], []]


def test_source_tree_version_reads_only_reglabs_pyproject(tmp_path):
    ours = tmp_path / "ours.toml"
    ours.write_text('[build-system]\nrequires = []\n\n[project]\nname = "reglab"\nversion = "9.8.7"\n')
    other = tmp_path / "other.toml"
    other.write_text('[project]\nname = "something-else"\nversion = "1.0"\n')
    tool_only = tmp_path / "tool.toml"
    tool_only.write_text('[tool.x]\nname = "reglab"\nversion = "2.0"\n')
    assert reglab._source_tree_version(ours) == "9.8.7"
    assert reglab._source_tree_version(other) is None
    assert reglab._source_tree_version(tool_only) is None
    assert reglab._source_tree_version(tmp_path / "missing.toml") is None
    assert reglab._source_tree_version(ROOT / "pyproject.toml") == VERSION


@pytest.mark.slow
def test_pip_install_creates_a_working_reglab_script(tmp_path):
    """Build and install the project as pip does (into a folder, offline) and run the script
    pip wrote: --version then comes from the installed metadata, not a source tree."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("engine", "gui", "reglab"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    out = run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--target", str(target), str(src)],
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    script = target / "bin" / ("reglab.exe" if os.name == "nt" else "reglab")
    assert script.is_file(), f"pip wrote no reglab script: {sorted(p.name for p in target.iterdir())}"
    env = dict(os.environ, PYTHONPATH=str(target))
    out = run([str(script), "--version"], cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"reglab {VERSION}\n"
    out = run([str(script), "data", "--source", "builtin:moons"], cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"] == {"upper moon": 500, "lower moon": 500}
    # and it ran the installed copy, not this checkout
    out = run([sys.executable, "-c", "import reglab; print(reglab.__file__)"], cwd=tmp_path, env=env)
    assert Path(out.stdout.strip()).parent == target / "reglab"


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["data", "--source", "builtin:moons"]])
def test_headless_paths_never_load_qt(args):
    # a server without Qt's system libraries can still run the headless commands
    code = (
        "import io, contextlib, sys, reglab\n"
        f"with contextlib.redirect_stdout(io.StringIO()): status = reglab.main({args!r})\n"
        "print(status, sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')))\n"
    )
    out = run([sys.executable, "-c", code])
    assert out.returncode == 0, out.stderr
    assert out.stdout == "0 []\n"
