"""RegLab's entry point, shared by ``reglab`` (the console script), ``python -m reglab`` and
``python main.py``: no sub-command opens the window, a sub-command of :mod:`engine.cli` runs
headless, ``--version`` prints the version.

Which arguments are headless is read from :func:`engine.cli.build_parser`, so a new
sub-command needs no second edit here.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

DISTRIBUTION = "reglab"
HELP_FLAGS = frozenset({"-h", "--help"})


def headless_commands() -> frozenset[str]:
    """The sub-commands of the headless command line (``train``, ``gradcheck``, ...)."""
    from engine.cli import build_parser

    # argparse keeps its sub-parsers in a private action list; walk it instead of repeating names
    return frozenset(
        name
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    )


def version() -> str:
    """This code's version: the source tree's pyproject.toml when run from a checkout (an
    editable install included), else the installed distribution's metadata."""
    tree = _source_tree_version(Path(__file__).resolve().parent.parent / "pyproject.toml")
    if tree is not None:
        return tree
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def _source_tree_version(pyproject: Path) -> str | None:
    """``[project] version`` of a pyproject.toml whose project is RegLab; None otherwise.

    A regular expression rather than tomllib, which Python 3.10 lacks."""
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    table = re.search(r"^\[project\][ \t]*$(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    if table is None:
        return None
    name = re.search(r'^name\s*=\s*"([^"]+)"', table.group(1), re.MULTILINE)
    found = re.search(r'^version\s*=\s*"([^"]+)"', table.group(1), re.MULTILINE)
    if name is None or found is None or name.group(1).lower() != DISTRIBUTION:
        return None
    return found.group(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch one command line (without the program name); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--version"]:
        print(f"reglab {version()}")
        return 0
    if args and (args[0] in HELP_FLAGS or args[0] in headless_commands()):
        from engine.cli import main as cli_main

        status = cli_main(args)
        if args[0] in HELP_FLAGS:
            from gui.app import window_parser

            print("\nWithout a sub-command RegLab opens its window:\n")
            print(window_parser().format_help(), end="")
        return status
    from gui.app import main as gui_main

    return gui_main(args)
