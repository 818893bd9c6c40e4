"""Image folders with symbolic links, loops, dangling links and unreadable entries.

Each case is built with os.symlink / os.mkfifo / chmod. Tests may run as root, where
chmod 000 does not stop reads: there the unreadable entry is simulated by making ``open``
(files) or ``os.scandir`` (folders) raise the PermissionError a normal user would get.
"""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.errors import DataError
from engine.images import decode as decode_module
from engine.images import load_source


def png(path: Path, red: int, size=(4, 4)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (red, 0, 0)).save(path)


def base_folder(tmp_path: Path) -> Path:
    """root/cats (2 images), root/dogs (2 images); red = 10, 11 (cats), 20, 21 (dogs)."""
    root = tmp_path / "root"
    for i in range(2):
        png(root / "cats" / f"c{i}.png", 10 + i)
        png(root / "dogs" / f"d{i}.png", 20 + i)
    return root


def load(root: Path, tmp_path: Path):
    return load_source(str(root), image_size=(4, 4), color="rgb", cache_dir=tmp_path / "cache")


def reds(sd) -> list[int]:
    return sorted(int(v) for v in sd.X[:, 0, 0, 0])


def skipped(sd) -> dict[str, str]:
    return {s["file"]: s["reason"] for s in sd.report["skipped"]}


def test_loops_and_a_link_to_root_are_skipped_and_reported(tmp_path):
    root = base_folder(tmp_path)
    os.symlink("..", root / "cats" / "up")  # back to root: a loop
    os.symlink(".", root / "dogs" / "here")  # itself
    os.symlink("self", root / "dogs" / "self")  # a link to itself (ELOOP)
    os.symlink("/", root / "cats" / "slash")
    sd = load(root, tmp_path)
    assert reds(sd) == [10, 11, 20, 21]
    assert skipped(sd) == {
        "cats/up/": "symbolic link loop (leads back to ./)",
        "dogs/here/": "symbolic link loop (leads back to dogs/)",
        "dogs/self": "symbolic link loop (the link leads back to itself)",
        "cats/slash/": "symbolic link leads outside the chosen folder (to /)",
    }


def test_links_leading_outside_are_not_followed(tmp_path):
    root = base_folder(tmp_path)
    outside = tmp_path / "elsewhere"
    png(outside / "o1.png", 99)
    png(outside / "deep" / "o2.png", 98)
    os.symlink(outside, root / "cats" / "more")  # folder link out
    os.symlink(outside / "o1.png", root / "dogs" / "o1.png")  # file link out
    os.symlink(outside, root / "birds")  # a would-be class folder outside
    sd = load(root, tmp_path)
    assert sd.classes == ["cats", "dogs"]
    assert reds(sd) == [10, 11, 20, 21]
    out = os.path.realpath(outside)
    assert skipped(sd) == {
        "birds/": f"symbolic link leads outside the chosen folder (to {out})",
        "cats/more/": f"symbolic link leads outside the chosen folder (to {out})",
        "dogs/o1.png": f"symbolic link leads outside the chosen folder (to {out}/o1.png)",
    }


def test_links_inside_are_read_once(tmp_path):
    root = base_folder(tmp_path)
    png(root / ".stash" / "s.png", 30)  # hidden: read only through the link
    os.symlink("../.stash", root / "cats" / "stash")
    os.symlink("../cats", root / "dogs" / "cats_again")  # would count cats twice, as dogs
    os.symlink("d0.png", root / "dogs" / "alias.png")  # a file link inside: followed
    sd = load(root, tmp_path)
    assert sd.report["counts"] == {"cats": 3, "dogs": 3}
    assert reds(sd) == [10, 11, 20, 20, 21, 30]
    assert skipped(sd) == {"dogs/cats_again/": "symbolic link to a folder read elsewhere (cats/)"}


def test_dangling_link_and_fifo_are_skipped_with_the_real_reason(tmp_path):
    root = base_folder(tmp_path)
    os.symlink("missing.png", root / "cats" / "gone.png")
    os.symlink("nowhere", root / "dogs" / "gone_folder")
    os.mkfifo(root / "dogs" / "pipe.png")  # opening it would block the load forever
    sd = load(root, tmp_path)
    assert reds(sd) == [10, 11, 20, 21]
    assert skipped(sd) == {
        "cats/gone.png": "dangling symbolic link (its target does not exist)",
        "dogs/gone_folder": "dangling symbolic link (its target does not exist)",
        "dogs/pipe.png": "not a regular file",
    }


def _chmod_blocks(path: Path) -> bool:
    """chmod 000 ``path``; True when that really stops this process reading it (not root)."""
    os.chmod(path, 0)
    try:
        if path.is_dir():
            os.listdir(path)
        else:
            open(path, "rb").close()
    except PermissionError:
        return True
    os.chmod(path, 0o755)
    return False


@pytest.fixture
def unreadable(monkeypatch):
    """Make a file or folder unreadable: chmod where that works, a PermissionError from
    ``open`` / ``os.scandir`` where it does not (root). Restores permissions afterwards."""
    blocked: list[Path] = []
    fake_files: set[str] = set()
    fake_dirs: set[str] = set()
    real_open, real_scandir = open, os.scandir

    def fake_open(path, *args, **kwargs):
        if os.fspath(path) in fake_files:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    def fake_scandir(path="."):
        if os.fspath(path) in fake_dirs:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    def make(path: Path) -> str:
        if _chmod_blocks(path):
            blocked.append(path)
            return "chmod"
        if path.is_dir():
            fake_dirs.add(os.fspath(path))
            monkeypatch.setattr(os, "scandir", fake_scandir)
        else:
            fake_files.add(os.fspath(path))
            monkeypatch.setattr(decode_module, "open", fake_open, raising=False)
        return "patched"

    def restore() -> None:
        for p in blocked:
            os.chmod(p, 0o755)
        blocked.clear()
        fake_files.clear()
        fake_dirs.clear()

    make.restore = restore
    yield make
    restore()


def test_unreadable_file_and_subfolder_are_skipped_then_reread_when_fixed(tmp_path, unreadable):
    root = base_folder(tmp_path)
    png(root / "cats" / "locked.png", 12)
    png(root / "dogs" / "private" / "p.png", 22)
    unreadable(root / "cats" / "locked.png")
    unreadable(root / "dogs" / "private")
    sd = load(root, tmp_path)
    assert reds(sd) == [10, 11, 20, 21]
    assert skipped(sd) == {
        "cats/locked.png": "cannot read file (Permission denied)",
        "dogs/private/": "cannot open folder (Permission denied)",
    }
    # permissions fixed (sizes and mtimes unchanged): the next load reads them, not a cache
    unreadable.restore()
    sd2 = load(root, tmp_path)
    assert reds(sd2) == [10, 11, 12, 20, 21, 22] and sd2.report["skipped"] == []


def test_unreadable_class_folder_is_an_error_with_the_real_reason(tmp_path, unreadable):
    root = base_folder(tmp_path)
    unreadable(root / "dogs")
    with pytest.raises(DataError) as info:
        load(root, tmp_path)
    assert str(info.value) == f"{root / 'dogs'}: cannot open folder (Permission denied)"


def test_skipped_entries_reach_the_data_json(tmp_path):
    root = base_folder(tmp_path)
    os.symlink("missing.png", root / "cats" / "gone.png")
    os.symlink("/", root / "dogs" / "slash")
    out = io.StringIO()
    assert (
        main(["data", "--source", str(root), "--image-size", "4", "4"], stdout=out, stderr=io.StringIO()) == 0
    )
    report = json.loads(out.getvalue())
    assert report["skipped"] == [
        {"file": "cats/gone.png", "reason": "dangling symbolic link (its target does not exist)"},
        {"file": "dogs/slash/", "reason": "symbolic link leads outside the chosen folder (to /)"},
    ]
    assert report["n_images"] == 4


def test_deep_real_tree_is_walked_without_recursion(tmp_path):
    root = base_folder(tmp_path)
    deep = root / "cats"
    for _ in range(300):  # deeper than Python's default recursion would like with os.walk-style code
        deep = deep / "d"
    png(deep / "bottom.png", 13)
    sd = load(root, tmp_path)
    assert reds(sd) == [10, 11, 13, 20, 21]
    np.testing.assert_array_equal(np.bincount(sd.y), [3, 2])
