"""Decoding every Pillow mode to 8-bit at the configured size, and skipping broken files.

Pixel values are checked against hand-computed ones: RGBA composited on grey 128,
16-bit scaled by 255/65535, EXIF orientation 6 rotating the picture, gray conversion.
"""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import DataError
from engine.images import load_source
from engine.images.decode import SkipImage, decode_image, is_image_name


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(path: Path, width: int, height: int, with_data: bool) -> None:
    """A 1-bit PNG declaring width×height; with_data writes real (all-zero) rows, compressed tiny."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    body = b""
    if with_data:
        row = b"\x00" * (1 + (width + 7) // 8)
        comp = zlib.compressobj(9)
        body = comp.compress(row * height) + comp.flush()
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
    if body:
        png += _png_chunk(b"IDAT", body)
    path.write_bytes(png + _png_chunk(b"IEND", b""))


def solid(mode: str, value, size=(8, 8)) -> Image.Image:
    return Image.new(mode, size, value)


def exif_jpeg(path: Path, height: int = 8) -> None:
    """2·height wide × height high, left half white, right half black, EXIF orientation 6 (rotate 90° CW)."""
    a = np.zeros((height, 2 * height, 3), dtype=np.uint8)
    a[:, :height] = 255
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(path, quality=95, exif=exif.tobytes())


# ------------------------------------------------------------------ single files


def test_rgba_composited_on_neutral_grey(tmp_path):
    p = tmp_path / "a.png"
    solid("RGBA", (255, 0, 0, 128)).save(p)
    arr, orig = decode_image(p, (8, 8), "rgb")
    assert arr.shape == (8, 8, 3) and arr.dtype == np.uint8 and orig == (8, 8)
    # 255·128/255 + 128·127/255 = 191.75 ; 0 + 128·127/255 = 63.75
    assert abs(int(arr[4, 4, 0]) - 191.75) <= 1
    assert abs(int(arr[4, 4, 1]) - 63.75) <= 1 and abs(int(arr[4, 4, 2]) - 63.75) <= 1
    # fully transparent -> exactly the background
    solid("RGBA", (0, 255, 0, 0)).save(p)
    arr, _ = decode_image(p, (8, 8), "rgb")
    assert np.all(arr == 128)


def test_sixteen_bit_scaled_to_eight_bit(tmp_path):
    p = tmp_path / "g16.png"
    Image.fromarray(np.full((8, 8), 30000, dtype=np.uint16)).save(p)
    assert Image.open(p).mode.startswith("I")  # really stored as 16-bit
    arr, _ = decode_image(p, (8, 8), "gray")
    assert arr.shape == (8, 8, 1)
    assert np.all(arr == round(30000 * 255 / 65535))  # 117, not 30000 & 255 nor clipped 255
    t = tmp_path / "i32.tif"
    Image.fromarray(np.full((8, 8), 65535, dtype=np.int32)).save(t)  # mode "I"
    arr, _ = decode_image(t, (8, 8), "rgb")
    assert np.all(arr == 255)


def test_gray_conversion_uses_luma(tmp_path):
    p = tmp_path / "c.png"
    solid("RGB", (200, 100, 50)).save(p)
    arr, _ = decode_image(p, (8, 8), "gray")
    assert arr.shape == (8, 8, 1)
    expected = 0.299 * 200 + 0.587 * 100 + 0.114 * 50  # 124.2
    assert abs(int(arr[0, 0, 0]) - expected) <= 1
    # and gray sources become three equal channels for rgb
    solid("L", 77).save(p)
    arr, _ = decode_image(p, (8, 8), "rgb")
    assert arr.shape == (8, 8, 3) and np.all(arr == 77)


def test_palette_with_transparency_la_one_bit_cmyk(tmp_path):
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    arr, _ = decode_image(tmp_path / "p.png", (8, 8), "rgb")
    assert tuple(arr[0, 0]) == (128, 128, 128)  # transparent index -> background
    assert tuple(arr[5, 5]) == (10, 200, 30)

    solid("LA", (200, 0)).save(tmp_path / "la.png")
    arr, _ = decode_image(tmp_path / "la.png", (8, 8), "gray")
    assert np.all(arr == 128)

    one = Image.new("1", (8, 8), 0)
    one.putpixel((3, 2), 1)
    one.save(tmp_path / "one.bmp")
    arr, _ = decode_image(tmp_path / "one.bmp", (8, 8), "gray")
    assert arr[2, 3, 0] == 255 and arr.sum() == 255

    solid("CMYK", (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)  # pure red in CMYK
    arr, _ = decode_image(tmp_path / "cmyk.jpg", (8, 8), "rgb")
    assert arr[4, 4, 0] > 230 and arr[4, 4, 1] < 30 and arr[4, 4, 2] < 30


def test_exif_orientation_is_applied(tmp_path):
    p = tmp_path / "exif.jpg"
    exif_jpeg(p)
    arr, orig = decode_image(p, (16, 8), "gray")
    assert orig == (16, 8)  # displayed upright: 16 high, 8 wide
    # rotated 90° clockwise: the white left half is now on top
    assert arr[:6].mean() > 230 and arr[10:].mean() < 25
    assert arr.shape == (16, 8, 1)
    # a big JPEG is decoded at a reduced scale (draft); the report keeps the true size
    big = tmp_path / "big.jpg"
    exif_jpeg(big, height=400)
    arr, orig = decode_image(big, (8, 4), "gray")
    assert orig == (800, 400)
    assert arr[:3].mean() > 230 and arr[5:].mean() < 25


def test_resize_keeps_content(tmp_path):
    a = np.zeros((64, 64, 3), dtype=np.uint8)
    a[:, 32:] = 255
    Image.fromarray(a).save(tmp_path / "big.png")
    arr, orig = decode_image(tmp_path / "big.png", (16, 16), "rgb")
    assert orig == (64, 64) and arr.shape == (16, 16, 3)
    assert np.all(arr[:, :7] == 0) and np.all(arr[:, 9:] == 255)


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("zero.png", b"", "empty"),
        ("text.jpg", b"this is not an image\n", "not a readable image"),
    ],
)
def test_broken_files_raise_skip(tmp_path, name, content, reason):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(SkipImage, match=reason):
        decode_image(p, (8, 8), "rgb")


def test_decompression_bombs_are_refused_with_guard_on(tmp_path):
    limit = Image.MAX_IMAGE_PIXELS
    assert limit == 89478485  # Pillow's default guard is untouched
    warn = tmp_path / "warn.png"  # between the warning and the error threshold
    bomb_png(warn, 10000, 10000, with_data=True)
    assert warn.stat().st_size < 100_000
    with pytest.raises(SkipImage, match=r"image too large \(100000000 pixels; possible decompression bomb\)"):
        decode_image(warn, (8, 8), "rgb")
    err = tmp_path / "err.png"  # above twice the limit: Pillow's own DecompressionBombError
    bomb_png(err, 20000, 20000, with_data=False)
    with pytest.raises(SkipImage, match="possible decompression bomb"):
        decode_image(err, (8, 8), "rgb")
    assert Image.MAX_IMAGE_PIXELS == limit


def test_truncated_file(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "t.png"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(SkipImage, match="truncated|corrupt"):
        decode_image(p, (8, 8), "rgb")


def test_image_name_filter():
    assert (
        is_image_name("A.PNG")
        and is_image_name("b.JpEg")
        and is_image_name("c.webp")
        and is_image_name("d.TIFF")
    )
    assert not is_image_name(".hidden.png") and not is_image_name("notes.txt") and not is_image_name("png")


# ------------------------------------------------------------------ the mixed folder


def build_mixed_folder(root: Path) -> tuple[dict[str, int], set[str]]:
    """Valid images of every mode plus broken files; returns valid counts and broken names."""
    cat, dog = root / "cat", root / "dog"
    (cat / "nested" / "deeper").mkdir(parents=True)
    dog.mkdir()
    solid("L", 90).save(cat / "l.png")
    solid("RGB", (10, 20, 30)).save(cat / "rgb.jpg")
    solid("RGBA", (255, 0, 0, 128)).save(cat / "rgba.png")
    solid("P", 3).save(cat / "pal.gif")
    solid("CMYK", (0, 0, 0, 0)).save(cat / "cmyk.tif")
    Image.fromarray(np.full((8, 8), 1000, dtype=np.uint16)).save(cat / "i16.png")
    solid("LA", (50, 255)).save(cat / "la.png")
    solid("1", 1).save(cat / "one.bmp")
    exif_jpeg(cat / "exif.jpg")
    solid("RGB", (1, 2, 3)).save(cat / "UPPER.PNG")
    solid("RGB", (4, 5, 6)).save(cat / "nested" / "deeper" / "deep.webp")
    solid("RGB", (7, 8, 9)).save(cat / "tiff.TIFF")
    # dog: a few valid, all the broken ones
    for i in range(3):
        solid("RGB", (100 + i, 0, 0)).save(dog / f"ok{i}.png")
    (dog / "zero.png").write_bytes(b"")
    (dog / "text.JPG").write_text("hello, I am not a picture\n")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(dog / "trunc.png")
    data = (dog / "trunc.png").read_bytes()
    (dog / "trunc.png").write_bytes(data[: len(data) // 2])
    bomb_png(dog / "bomb.png", 10000, 10000, with_data=True)
    bomb_png(dog / "bigger_bomb.png", 20000, 20000, with_data=False)
    # ignored entirely: hidden files and folders, non-image files, files outside class folders
    (dog / ".hidden.png").write_bytes(b"")
    (dog / ".secret").mkdir()
    (dog / ".secret" / "x.png").write_bytes(b"broken")
    (dog / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("readme")
    (root / ".cache").mkdir()
    return {"cat": 12, "dog": 3}, {
        "dog/zero.png",
        "dog/text.JPG",
        "dog/trunc.png",
        "dog/bomb.png",
        "dog/bigger_bomb.png",
    }


def test_mixed_folder_loads_exactly_the_valid_images(tmp_path):
    root = tmp_path / "mixed"
    counts, broken = build_mixed_folder(root)
    sd = load_source(str(root), image_size=(8, 8), color="rgb", cache_dir=tmp_path / "cache")
    assert sd.classes == ["cat", "dog"]
    assert sd.X.shape == (15, 8, 8, 3) and sd.X.dtype == np.uint8
    assert sd.y.dtype == np.int64 and list(np.bincount(sd.y)) == [12, 3]
    rep = sd.report
    assert rep["counts"] == counts and rep["n_images"] == 15 and rep["image_shape"] == [8, 8, 3]
    skipped = {s["file"]: s["reason"] for s in rep["skipped"]}
    assert set(skipped) == broken
    assert "empty" in skipped["dog/zero.png"]
    assert "not a readable image" in skipped["dog/text.JPG"]
    assert "truncated" in skipped["dog/trunc.png"] or "corrupt" in skipped["dog/trunc.png"]
    assert skipped["dog/bomb.png"] == "image too large (100000000 pixels; possible decompression bomb)"
    assert "decompression bomb" in skipped["dog/bigger_bomb.png"]
    # order: files sorted by path within each class; dog's valid images are ok0, ok1, ok2
    np.testing.assert_array_equal(sd.X[12:, 0, 0, 0], [100, 101, 102])
    cat_files = sorted(p for p in (root / "cat").rglob("*") if p.is_file())
    pos = {p.relative_to(root).as_posix(): i for i, p in enumerate(cat_files)}
    assert tuple(sd.X[pos["cat/rgba.png"], 3, 3]) in {
        (191, 63, 63),
        (192, 64, 64),
        (191, 64, 64),
        (192, 63, 63),
    }
    assert np.all(sd.X[pos["cat/i16.png"]] == round(1000 * 255 / 65535))  # 4
    assert np.all(sd.X[pos["cat/la.png"]] == 50)  # opaque LA
    assert np.all(sd.X[pos["cat/one.bmp"]] == 255)
    assert np.all(sd.X[pos["cat/cmyk.tif"]] == 255)  # no ink = white
    webp = sd.X[pos["cat/nested/deeper/deep.webp"], 0, 0].astype(int)
    assert np.all(np.abs(webp - [4, 5, 6]) <= 3)  # lossy WebP
    assert sd.X[pos["cat/exif.jpg"], :3].mean() > 200 and sd.X[pos["cat/exif.jpg"], 5:].mean() < 50
    assert rep["original_size"]["max"] == [16, 8] and rep["original_size"]["min"] == [8, 8]


def test_class_whose_images_are_all_broken_is_refused(tmp_path):
    root = tmp_path / "d"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    solid("RGB", (1, 1, 1)).save(root / "a" / "x.png")
    (root / "b" / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"b: class folder has no readable images"):
        load_source(str(root), image_size=(8, 8), cache_dir=tmp_path / "cache")
