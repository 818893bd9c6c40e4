"""Decode one image file into a fixed-size uint8 array, or say in a few words why not.

Every mode Pillow opens is brought to 8-bit ``L`` or ``RGB``: alpha (RGBA, LA, PA, P with
transparency) is composited on a neutral grey background (128), 16-bit and 32-bit integer
greyscale (``I;16*``, ``I``) is scaled from 0..65535 to 0..255, CMYK/YCbCr/LAB/HSV are
converted, 1-bit becomes 0/255. EXIF orientation is applied before resizing. Images are
stretched to the configured ``(H, W)`` (no crop), with JPEG ``draft`` decoding at a reduced
scale and an antialiased bilinear resize with ``reducing_gap``.

Pillow's decompression-bomb guard stays on: images above ``Image.MAX_IMAGE_PIXELS`` (the
warning threshold) are refused as well as those above twice it (Pillow's error threshold).
The functions here are top-level so a process pool ("spawn"/"forkserver") can import them.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Lower-case suffixes of the formats read from class folders; compared case-insensitively.
IMAGE_EXTENSIONS = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".gif",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".webp",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".tga",
    }
)

BACKGROUND = 128  # neutral grey that transparent pixels are composited on
_RESIZE_FILTER = Image.Resampling.BILINEAR  # antialiased (support grows when shrinking)
_REDUCING_GAP = 2.0  # integer pre-reduction (Image.reduce) when shrinking by more than 2x


class SkipImage(Exception):
    """The file cannot be used; ``str(exc)`` is the short reason shown in the report."""


def is_image_name(name: str) -> bool:
    """True when the file name has an image suffix (any case) and is not hidden."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def channels(color: str) -> int:
    """Channels of a decoded image for ``color`` ("rgb" -> 3, "gray" -> 1)."""
    if color not in ("rgb", "gray"):
        raise ValueError(f"color must be 'rgb' or 'gray', got {color!r}")
    return 3 if color == "rgb" else 1


def _bomb_reason(pixels: int) -> str:
    return f"image too large ({pixels} pixels; possible decompression bomb)"


def _to_8bit(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> ``L`` or ``RGB`` (alpha composited on grey)."""
    mode = im.mode
    if mode in ("L", "RGB"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im).astype(np.int64)
        # 16-bit range to 8-bit with rounding: v * 255 / 65535
        a = (np.clip(a, 0, 65535) * 255 + 32767) // 65535
        return Image.fromarray(a.astype(np.uint8), "L")
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        a = np.nan_to_num(a, nan=0.0)
        if a.size and a.max() <= 1.0:  # float images are usually 0..1
            a = a * 255.0
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        return _to_8bit(im)
    if mode in ("LA", "La", "PA", "RGBa", "RGBA"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (BACKGROUND, BACKGROUND, BACKGROUND, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    # CMYK, YCbCr, LAB, HSV, RGBX, ...
    return im.convert("RGB")


def decode_image(
    path: str | os.PathLike | bytes, image_size: tuple[int, int], color: str
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode ``path`` to uint8 ``(H, W, C)`` (C = 3 for rgb, 1 for gray).

    ``path`` is a file name (``str`` or path-like), or ``bytes`` holding an encoded image
    (an image cell of a Parquet file); the two are never confused because file names are
    always passed as ``str``.

    Returns the array and the original ``(height, width)`` (after EXIF orientation).
    Raises :class:`SkipImage` with a short reason for any file that cannot be used.
    """
    height, width = int(image_size[0]), int(image_size[1])
    n_ch = channels(color)
    if isinstance(path, (bytes, bytearray, memoryview)):  # an encoded image held in memory (Parquet)
        if len(path) == 0:
            raise SkipImage("empty image (0 bytes)")
        fh = io.BytesIO(path)
    else:
        # open it ourselves, so an unreadable file is called that and not "corrupt"
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the with below
            empty = os.fstat(fh.fileno()).st_size == 0
        except OSError as exc:
            raise SkipImage(f"cannot read file ({exc.strerror or exc})") from None
        if empty:
            fh.close()
            raise SkipImage("empty file (0 bytes)")
    with fh:
        return _decode_open(fh, height, width, n_ch)


def _decode_open(fh, height: int, width: int, n_ch: int) -> tuple[np.ndarray, tuple[int, int]]:
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that: treat it as an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fh) as im:
                pixels = im.width * im.height
                # belt and braces: catch_warnings is process-global, so check the size too
                if Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS:
                    raise SkipImage(_bomb_reason(pixels))
                # original size as displayed: EXIF orientations 5-8 swap width and height
                swapped = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
                original = (im.width, im.height) if swapped else (im.height, im.width)
                if im.format == "JPEG":
                    side = max(height, width)  # EXIF rotation may swap axes afterwards
                    im.draft("L" if n_ch == 1 else "RGB", (side, side))
                im.load()
                out = ImageOps.exif_transpose(im) or im
                out = _to_8bit(out)
                if n_ch == 1 and out.mode != "L":
                    out = out.convert("L")
                elif n_ch == 3 and out.mode != "RGB":
                    out = out.convert("RGB")
                if out.size != (width, height):
                    out = out.resize((width, height), _RESIZE_FILTER, reducing_gap=_REDUCING_GAP)
                arr = np.asarray(out, dtype=np.uint8)
    except SkipImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        pixels = _pixels_from_message(str(exc))
        raise SkipImage(
            _bomb_reason(pixels) if pixels else "image too large (possible decompression bomb)"
        ) from None
    except UnidentifiedImageError:
        raise SkipImage("not a readable image (unknown or corrupt format)") from None
    except OSError as exc:
        if exc.errno is not None:  # the operating system failed to read it (EIO, EACCES, ...)
            raise SkipImage(f"cannot read file ({exc.strerror or exc})") from None
        text = str(exc)
        if "truncated" in text:
            raise SkipImage("truncated image") from None
        raise SkipImage(f"corrupt image ({_short(text)})") from None
    except MemoryError:
        raise SkipImage("image too large to decode (out of memory)") from None
    except Exception as exc:  # noqa: BLE001 - broken files raise all sorts; never crash a load
        raise SkipImage(f"cannot decode ({type(exc).__name__}: {_short(str(exc))})") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr, original


def _pixels_from_message(text: str) -> int | None:
    # Pillow: "Image size (400000000 pixels) exceeds limit of ..."
    for token in text.replace("(", " ").split():
        if token.isdigit():
            return int(token)
    return None


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def decode_chunk(
    paths: list[str], image_size: tuple[int, int], color: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, str]]]:
    """Decode a chunk of files (the unit of work of the parallel loader); an item may also
    be ``bytes`` holding an encoded image (see :func:`decode_image`).

    Returns ``(X, ok, sizes, failed)``: X uint8 ``(k, H, W, C)`` of the decoded files, ok
    int64 ``(k,)`` their positions in ``paths``, sizes int64 ``(k, 2)`` original (h, w),
    failed a list of ``(position, reason)``.
    """
    height, width = int(image_size[0]), int(image_size[1])
    n_ch = channels(color)
    X = np.empty((len(paths), height, width, n_ch), dtype=np.uint8)
    sizes = np.empty((len(paths), 2), dtype=np.int64)
    ok: list[int] = []
    failed: list[tuple[int, str]] = []
    for i, p in enumerate(paths):
        try:
            arr, original = decode_image(p, (height, width), color)
        except SkipImage as exc:
            failed.append((i, str(exc)))
            continue
        k = len(ok)
        X[k] = arr
        sizes[k] = original
        ok.append(i)
    k = len(ok)
    return X[:k].copy() if k < len(paths) else X, np.asarray(ok, dtype=np.int64), sizes[:k].copy(), failed


def relative_name(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """``path`` relative to ``root`` with forward slashes (for reports)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()
