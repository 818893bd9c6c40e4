"""Listing an image folder safely: symbolic links, loops and unreadable entries.

Rules (the data report's ``skipped`` list says which entries they left out, and why):

- Hidden entries (names starting with ``.``) and files without an image suffix are ignored.
- A symbolic link whose target lies outside the chosen folder is not followed (neither a
  folder link, which could add a whole tree from elsewhere or from ``/``, nor a file link).
- A folder link inside the chosen folder is followed, but every folder is read once: a link
  back to a parent folder (a loop), or to a folder already read (or about to be read as a
  class folder), is skipped. Real folders are read before links, so the real place wins.
- A dangling link, a link that cannot be resolved (loop of links), a folder that cannot be
  opened and an entry that is not a regular file (a FIFO named ``x.png`` would block) are
  skipped with the operating system's reason.

Walking is iterative, so deep trees cannot exhaust Python's recursion limit. Listing uses
``os.scandir`` (its cached ``d_type``) and resolves only links: cheap enough to run on every
load, cache hits included.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from engine.images.decode import is_image_name
from engine.text import printable


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


class FolderWalk:
    """Lists folders below one chosen root; collects ``{file, reason}`` for what it skips."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root_real = os.path.realpath(self.root)
        self.skipped: list[dict] = []
        self._visited: set[tuple[int, int]] = set()
        self._claim(self.root_real)

    # ------------------------------------------------------------------ helpers

    def rel(self, path: str | os.PathLike, folder: bool = False) -> str:
        """``path`` relative to the root, with ``/`` separators, printable; folders end in ``/``."""
        rel = os.path.relpath(path, self.root).replace(os.sep, "/")
        return printable(rel) + ("/" if folder and not rel.endswith("/") else "")

    def skip(self, path: str | os.PathLike, reason: str, folder: bool = False) -> None:
        self.skipped.append({"file": self.rel(path, folder), "reason": reason})

    def _inside(self, real: str) -> bool:
        return real == self.root_real or real.startswith(self.root_real.rstrip(os.sep) + os.sep)

    def _claim(self, real_dir: str) -> bool:
        """Mark a folder as read; False when it was read (or claimed) before."""
        try:
            st = os.stat(real_dir)
        except OSError:
            return True  # reading it will report the problem
        key = (st.st_dev, st.st_ino)
        if key in self._visited:
            return False
        self._visited.add(key)
        return True

    def claim(self, folders: list[Path]) -> None:
        """Pre-register folders that will be read as themselves (class folders), so a link
        elsewhere that leads to one of them is skipped rather than read twice."""
        for f in folders:
            self._claim(os.path.realpath(f))

    def _scandir(self, folder: str) -> list[os.DirEntry] | None:
        try:
            with os.scandir(folder) as it:
                entries = [e for e in it if not e.name.startswith(".")]
        except OSError as exc:
            self.skip(folder, f"cannot open folder ({_reason(exc)})", folder=True)
            return None
        entries.sort(key=lambda e: e.name)
        return entries

    def _resolve_link(self, entry: os.DirEntry) -> tuple[str, bool] | None:
        """``(real target, is_dir)`` of a link that may be followed, else None (skipped)."""
        try:
            target = os.path.realpath(entry.path, strict=True)
            is_dir = os.path.isdir(target)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                self.skip(entry.path, "dangling symbolic link (its target does not exist)")
            elif exc.errno == errno.ELOOP:
                self.skip(entry.path, "symbolic link loop (the link leads back to itself)")
            else:
                self.skip(entry.path, f"cannot follow symbolic link ({_reason(exc)})")
            return None
        if not self._inside(target):
            self.skip(
                entry.path,
                f"symbolic link leads outside the chosen folder (to {printable(target)})",
                folder=is_dir,
            )
            return None
        return target, is_dir

    # ------------------------------------------------------------------ listings

    def subfolders(self, folder: Path) -> list[tuple[str, Path]]:
        """``(name, path)`` of the visible sub-folders of ``folder`` that may be read, real
        folders and followable links (class or part folders); skips are recorded."""
        entries = self._scandir(os.fspath(folder))
        if entries is None:
            return []
        found = []
        for e in entries:
            if e.is_symlink():
                resolved = self._resolve_link(e)
                if resolved is not None and resolved[1]:
                    found.append((e.name, Path(e.path)))
            elif e.is_dir(follow_symlinks=False):
                found.append((e.name, Path(e.path)))
        return found

    def image_files(self, top: Path) -> list[str]:
        """Image files below ``top`` (nested folders included), sorted; ``top`` is read even
        if it was claimed (it is the folder being read)."""
        found: list[str] = []
        self._claim(os.path.realpath(top))
        stack = [os.fspath(top)]
        while stack:
            folder = stack.pop()
            entries = self._scandir(folder)
            if entries is None:
                continue
            real_dirs: list[str] = []
            link_dirs: list[tuple[str, str]] = []
            for e in entries:
                if e.is_symlink():
                    resolved = self._resolve_link(e)
                    if resolved is None:
                        continue
                    target, is_dir = resolved
                    if is_dir:
                        link_dirs.append((e.path, target))
                    elif is_image_name(e.name):
                        self._add_file(e.path, found)
                elif e.is_dir(follow_symlinks=False):
                    real_dirs.append(e.path)
                elif is_image_name(e.name):
                    self._add_file(e.path, found, entry=e)
            subdirs = []
            for d in real_dirs:  # real folders first: they win over links to them
                if self._claim(d):
                    subdirs.append(d)
            for path, target in link_dirs:
                parent_real = os.path.realpath(folder)
                if parent_real == target or parent_real.startswith(target.rstrip(os.sep) + os.sep):
                    self.skip(
                        path, f"symbolic link loop (leads back to {self.rel(target, True)})", folder=True
                    )
                elif not self._claim(target):
                    self.skip(
                        path, f"symbolic link to a folder read elsewhere ({self.rel(target, True)})", True
                    )
                else:
                    subdirs.append(path)
            stack.extend(reversed(subdirs))
        found.sort()
        return found

    def _add_file(self, path: str, found: list[str], entry: os.DirEntry | None = None) -> None:
        try:
            regular = entry.is_file() if entry is not None else os.path.isfile(path)
        except OSError as exc:
            self.skip(path, f"cannot read file ({_reason(exc)})")
            return
        if not regular:
            self.skip(path, "not a regular file")
            return
        found.append(path)
