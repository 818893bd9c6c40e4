"""Safe file writes: atomic replacement, appends that never leave half a line, folder locks.

- :func:`atomic_write_bytes` (and the text/JSON/npz variants) writes to a temporary file
  in the same folder, named ``.<name>.<pid>-<random>.reglab-tmp``, then renames it over
  the target. A crash mid-write leaves the old file (or none), never a half-written one.
  The temporary name carries the writer's pid, so a later write to the same target
  removes temporary files whose writer has died (after ``kill -9``) as it goes.
- :class:`AppendFile` appends whole lines; when a write fails the file is cut back to its
  last complete line.
- :class:`FolderLock`: one writer per folder, through an OS lock (``flock``) on
  ``<folder>/.reglab.lock`` that the operating system releases when the process dies,
  so a killed writer never leaves a folder locked. The holder's pid is written in the
  file, so a refused writer can say who holds it.

Every ``OSError`` while writing (full disk, read-only file system, no permission, …)
becomes :class:`engine.errors.WriteError` with one line naming the file the user knows
(``shown_as``, never the temporary name) and the cause.
"""

from __future__ import annotations

import ctypes
import errno
import io
import json
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError, WriteError

TMP_SUFFIX = ".reglab-tmp"
LOCK_FILE = ".reglab.lock"

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def write_error(path: str | Path, exc: OSError, verb: str = "write") -> WriteError:
    """WriteError('cannot write PATH: No space left on device') for an OSError."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    return WriteError(f"cannot {verb} {path}: {cause}")


# ---------------------------------------------------------------------------- temporary files


def temp_path(path: str | Path) -> Path:
    """A fresh temporary name beside path: ``.<name>.<pid>-<random>.reglab-tmp``."""
    path = Path(path)
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}"


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (or cannot be checked: then assume it does)."""
    if pid <= 0 or pid == os.getpid():
        return pid == os.getpid()
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def _temp_owner(name: str) -> int | None:
    """The pid in a temporary file name, or None when name is not one of ours."""
    if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
        return None
    stem = name[: -len(TMP_SUFFIX)]
    tag = stem.rsplit(".", 1)[-1]
    pid, _, token = tag.partition("-")
    return int(pid) if pid.isdigit() and token else None


def remove_stale_temps(folder: str | Path, target: str | None = None) -> list[Path]:
    """Remove our temporary files in folder whose writer process is gone; returns them.

    target limits the sweep to temporary files of one file name. Errors are ignored:
    this is tidying, never a reason to fail a write.
    """
    folder = Path(folder)
    prefix = f".{target}." if target is not None else "."
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid = _temp_owner(entry.name)
        if pid is None or pid_alive(pid):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable; not every system or file system can, which is fine."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, *, shown_as: str | Path | None = None) -> None:
    """Write data to path atomically: a temporary file in the same folder, fsync, rename.

    On any OSError the temporary file is removed, path keeps its old content, and
    WriteError names ``shown_as`` (default path) and the cause.
    """
    path = Path(path)
    shown = path if shown_as is None else shown_as
    remove_stale_temps(path.parent, path.name)
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0o666 minus the umask: the mode a plain open() would give
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise write_error(shown, exc) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_folder(path.parent)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write_text(path: str | Path, text: str, *, shown_as: str | Path | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), shown_as=shown_as)


def atomic_write_json(path: str | Path, obj: Any, *, shown_as: str | Path | None = None) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n", shown_as=shown_as)


def atomic_save_npz(path: str | Path, *, shown_as: str | Path | None = None, **arrays: np.ndarray) -> None:
    """np.savez_compressed to a temporary name, then rename; arrays must not be object arrays."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getbuffer(), shown_as=shown_as)


def is_npz_archive(path: str | Path) -> bool:
    """True when the file starts like a zip archive (what .npz files are).

    np.load treats anything else as a pickle and, with allow_pickle=False, reports
    "pickled data", which would mislead a user who picked a wrong or broken file.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return head in (b"PK\x03\x04", b"PK\x05\x06")


# ---------------------------------------------------------------------------- appending


class AppendFile:
    """A new file that grows by whole lines (metrics.jsonl); each line reaches the OS at once.

    Created with O_EXCL: it never truncates an existing file. A failed append cuts the file
    back to its last complete line before raising WriteError naming ``shown_as``.
    """

    def __init__(self, path: str | Path, *, shown_as: str | Path | None = None):
        self.path = Path(path)
        self.shown_as = self.path if shown_as is None else shown_as
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise write_error(self.shown_as, exc) from None
        self._size = 0

    def append_line(self, line: str) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        try:
            _write_all(self._fd, (line + "\n").encode("utf-8"))
        except OSError as exc:
            try:  # no half line for a reader to trip over
                os.ftruncate(self._fd, self._size)
                os.lseek(self._fd, self._size, os.SEEK_SET)
            except OSError:
                pass
            raise write_error(self.shown_as, exc) from None
        self._size = os.lseek(self._fd, 0, os.SEEK_CUR)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


# ---------------------------------------------------------------------------- folder locks


class FolderBusy(InputError):
    """Another process holds the folder's lock."""


def _lock_fd(fd: int) -> bool:
    """Try to take the OS lock on fd without waiting; True when taken."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True
    import msvcrt  # pragma: no cover - Windows: lock the first byte; the pid is written after it

    try:  # pragma: no cover
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # pragma: no cover
        return False
    return True  # pragma: no cover


def _holder_pid(path: Path) -> int | None:
    try:
        with open(path, "rb") as fh:
            text = fh.read(64).lstrip(b"\0 ").split(b"\n")[0]
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class FolderLock:
    """An exclusive lock on a folder (``<folder>/.reglab.lock``), released when the process dies.

    ``FolderLock.acquire(folder)`` takes it or raises :class:`FolderBusy` naming the holder's
    pid; ``release()`` removes the lock file (while still holding the lock) and closes it.
    """

    def __init__(self, folder: Path, fd: int):
        self.folder = folder
        self._fd: int | None = fd

    @property
    def path(self) -> Path:
        return self.folder / LOCK_FILE

    @classmethod
    def acquire(cls, folder: str | Path, *, what: str = "folder") -> FolderLock:
        folder = Path(folder)
        path = folder / LOCK_FILE
        for _ in range(20):  # retried only when a holder removed the file as we opened it
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
            except OSError as exc:
                raise write_error(folder, exc, "lock") from None
            try:
                if not _lock_fd(fd):
                    pid = _holder_pid(path)
                    who = f"another RegLab process (pid {pid})" if pid else "another RegLab process"
                    raise FolderBusy(
                        f"{folder}: {who} is writing this {what}; wait until it has finished or choose another"
                    )
                try:  # the file we locked must still be the one at path (not unlinked by its last holder)
                    same = os.path.samestat(os.fstat(fd), os.stat(path))
                except FileNotFoundError:
                    same = False
                if same:
                    text = f"{os.getpid()}\n".encode()
                    if fcntl is None:  # pragma: no cover - Windows: byte 0 is the locked one
                        text = b"\0" + text
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    _write_all(fd, text)
                    return cls(folder, fd)
            except OSError as exc:
                os.close(fd)
                raise write_error(folder, exc, "lock") from None
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise FolderBusy(f"{folder}: could not lock this {what} (its lock file keeps changing)")

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the lock file if it is still ours, then let go of the lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                os.unlink(self.path)
        except OSError:
            pass  # gone with its folder, or a file system that will not unlink an open file
        finally:
            os.close(fd)

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_is_free(folder: str | Path) -> bool:
    """True when nobody holds the folder's lock (a stale lock file counts as free)."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        return _lock_fd(fd)  # closing fd below drops the lock again
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- folder swaps


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange_folders(a: str | Path, b: str | Path) -> bool:
    """Swap the names of two folders in one atomic step (Linux renameat2 RENAME_EXCHANGE).

    Returns False when the system or file system cannot (the caller then renames twice);
    raises OSError for any other failure.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def remove_tree(path: str | Path) -> None:
    """Remove a folder tree, ignoring errors (used on our own temporary folders only)."""
    shutil.rmtree(path, ignore_errors=True)
