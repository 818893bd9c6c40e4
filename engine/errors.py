"""Exceptions the engine raises for user-facing problems.

``InputError`` and its subclasses carry one clear line that names the file or field;
the command line prints it and exits with status 2, the window shows it in a dialog.
"""


class InputError(Exception):
    """Bad user input (config, file, folder); the message is one line naming it."""


class DataError(InputError):
    """A data source cannot be used (missing, empty class, no images, unreadable)."""


class Cancelled(Exception):
    """A long operation was cancelled through its cancel token."""
