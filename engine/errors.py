"""Exceptions the engine raises for user-facing problems.

``InputError`` and its subclasses carry one clear line that names the file or field;
the command line prints it and exits with status 2, the window shows it in a dialog.
"""


class InputError(Exception):
    """Bad user input (config, file, folder); the message is one line naming it."""


class DataError(InputError):
    """A data source cannot be used (missing, empty class, no images, unreadable)."""


class WriteError(InputError, OSError):
    """A file could not be written (full disk, read-only file system, no permission, ...).

    The message names the file the user knows (never a temporary name) and the cause;
    what was on disk before is left as it was. Also an OSError, so code that already
    catches OSError around a write keeps working.
    """


class Cancelled(Exception):
    """A long operation was cancelled through its cancel token."""
