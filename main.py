"""RegLab entry point: no arguments (or only window options) opens the window; sub-commands run headless."""

import sys

HEADLESS_COMMANDS = {"train", "gradcheck", "evaluate", "data", "sweep", "-h", "--help"}


def main(argv: list[str]) -> int:
    if argv and argv[0] in HEADLESS_COMMANDS:
        from engine.cli import main as cli_main

        return cli_main(argv)
    from gui.app import main as gui_main

    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
