"""engine/ never imports Qt: checked in a fresh interpreter and by reading the sources."""

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parent.parent
QT_MODULES = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "PySide2")
QT_NAMES = "|".join(QT_MODULES)
QT_IMPORT = re.compile(rf"^\s*(?:from|import)\s+(?:{QT_NAMES})\b", re.MULTILINE)


def engine_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(engine.__path__, prefix="engine."))


def test_engine_modules_are_found():
    names = engine_modules()
    for expected in ("engine.config", "engine.prepare", "engine.cli", "engine.splits", "engine.images"):
        assert expected in names


def test_fresh_interpreter_imports_every_engine_module_without_qt():
    code = (
        "import importlib, json, sys\n"
        f"names = {engine_modules()!r}\n"
        "import engine\n"
        "for n in names:\n"
        "    importlib.import_module(n)\n"
        f"qt = sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r})\n"
        "print(json.dumps({'imported': len(names), 'qt': qt}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json

    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["imported"] == len(engine_modules()) > 10
    assert result["qt"] == []


def test_cli_help_loads_no_qt():
    code = (
        "import sys, contextlib, io\n"
        "from engine.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_no_qt_import_statements_in_engine_sources():
    offenders = []
    files = sorted((ROOT / "engine").rglob("*.py"))
    assert len(files) > 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        for match in QT_IMPORT.finditer(text):
            offenders.append(f"{path.relative_to(ROOT)}: {match.group(0).strip()}")
        # importlib tricks count too
        if re.search(rf"import_module\(\s*['\"](?:{QT_NAMES})", text):
            offenders.append(f"{path.relative_to(ROOT)}: import_module of a Qt package")
    assert offenders == []


def test_the_pattern_catches_qt_imports():
    # the source check above must be able to fail
    assert QT_IMPORT.search("from PySide6.QtCore import QObject")
    assert QT_IMPORT.search("    import pyqtgraph as pg")
    assert QT_IMPORT.search("import shiboken6")
    assert not QT_IMPORT.search("# we never import PySide6 here\nx = 'pyqtgraph'")
