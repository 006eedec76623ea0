"""Input images: open and check them, normalise them to 8-bit RGB (or L for masks), size them, hash them.

Every command that reads an image goes through here, so odd inputs are handled once: alpha and
palette modes, 16-bit and float PNG/TIFF, JPEG/WebP, EXIF-rotated photos. A file whose header claims
more pixels than `max_pixels()` is refused before anything is decoded (a decompression bomb).
Errors are InputError naming the file (exit 2): one bad input among several is reported and skipped.
PIL and numpy are imported inside the functions.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool.errors import InputError, UsageError

#: Default pixel limit: Pillow's own decompression-bomb threshold (about 9459 x 9459 px).
DEFAULT_MAX_PIXELS = 89_478_485
MAX_PIXELS_ENV = "DIFFTOOL_MAX_PIXELS"


def max_pixels() -> int:
    """The largest input (width x height) accepted: `$DIFFTOOL_MAX_PIXELS`, else Pillow's bomb threshold."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{MAX_PIXELS_ENV}={raw!r} is not a whole number of pixels.") from None
    if value < 1:
        raise UsageError(f"{MAX_PIXELS_ENV} must be positive, not {value}.")
    return value


def result_paths(lines: list[str]) -> list[str]:
    """Image paths read from stdin, where a line may also be one of difftool's `--json` result objects:
    it stands for its "path", so `difftool gen --json ... | difftool upscale -` chains too."""
    import json

    out = []
    for line in lines:
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict) and isinstance(record.get("path"), str):
                line = record["path"]
        out.append(line)
    return out


@dataclass(frozen=True)
class ImageInfo:
    """What the header of an input image says (nothing decoded yet)."""

    path: Path
    width: int
    height: int
    format: str
    mode: str

    @property
    def name(self) -> str:
        """The file's stem, for output names (`{name}`)."""
        return self.path.stem


def _open(path: Path | Any, what: str = "Input image") -> Any:
    """Image.open with our pixel limit; UsageError naming the file for anything unreadable. `path` may also be
    a binary file object (inline request bytes), named `what` in errors."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    limit = max_pixels()
    shown = f"{what} '{path}'" if isinstance(path, Path) else f"The {what.lower()}"
    if isinstance(path, Path):
        if not path.exists():
            raise InputError(f"{shown} does not exist.")
        if path.is_dir():
            raise InputError(f"{shown} is a folder, not an image file.")
    Image.MAX_IMAGE_PIXELS = None  # our own check below, from the header, names the size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb(shown, None, limit) from None
    except UnidentifiedImageError:
        raise InputError(f"{shown} is not an image (or not a format Pillow can read).") from None
    except OSError as exc:
        raise InputError(f"{shown} cannot be read: {exc.strerror or exc}.") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit  # Pillow's checks on anything it opens later use the same bound
    if im.width * im.height > limit:
        im.close()
        raise _bomb(shown, (im.width, im.height), limit)
    return im


def _bomb(shown: str, size: tuple[int, int] | None, limit: int) -> InputError:
    what = f"{size[0]}x{size[1]} pixels exceed" if size else "its size exceeds"
    return InputError(
        f"{shown} is refused: {what} the limit of {limit} pixels (a decompression bomb?); "
        f"raise {MAX_PIXELS_ENV} if you trust it."
    )


def probe(path: str | Path, what: str = "Input image") -> ImageInfo:
    """Check that `path` is a readable image of acceptable size, reading only its header."""
    p = Path(path).expanduser()
    im = _open(p, what)
    try:
        width, height = im.width, im.height
        orientation = _orientation(im)
        if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: report the size as displayed
            width, height = height, width
        return ImageInfo(p, width, height, format=im.format or "?", mode=im.mode)
    finally:
        im.close()


def _orientation(im: Any) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block is not worth refusing the image for
        return 1


def load(path: str | Path, mode: str = "RGB", background: tuple[int, int, int] = (255, 255, 255),
         what: str = "Input image") -> Any:
    """The image at `path`, fully decoded, upright (EXIF orientation applied), as 8-bit `mode` ("RGB" or "L").

    Transparent pixels (alpha, palette or `tRNS` transparency) are composited onto `background`;
    16-bit and float images are scaled down to 8 bits rather than clipped.
    """
    p = Path(path).expanduser()
    return _decode(_open(p, what), f"{what} '{p}'", mode, background)


def load_bytes(data: bytes, what: str, mode: str = "RGB", background: tuple[int, int, int] = (255, 255, 255)) -> Any:
    """`load` for an image given as bytes (a request's inline image), named `what` in errors."""
    import io

    return _decode(_open(io.BytesIO(data), what), f"The {what}", mode, background)


def _decode(im: Any, shown: str, mode: str, background: tuple[int, int, int]) -> Any:
    from PIL import Image, ImageOps

    try:
        try:
            im.load()
            im = ImageOps.exif_transpose(im) or im
        except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
            raise InputError(f"{shown} is damaged and cannot be decoded: {exc}.") from None
        im = _to_8bit(im)
        if im.mode in ("P", "PA", "LA", "La", "RGBa") or "transparency" in im.info:
            im = im.convert("RGBA")
        if im.mode == "RGBA":
            flat = Image.new("RGB", im.size, background)
            flat.paste(im, mask=im.getchannel("A"))
            im = flat
        return im.convert(mode) if im.mode != mode else im.copy()
    finally:
        im.close()


def _to_8bit(im: Any) -> Any:
    """16-bit integer ('I;16*', 'I') and float ('F') images as 8-bit 'L', scaled to their full range."""
    if im.mode not in ("I", "F") and not im.mode.startswith("I;16"):
        return im
    import numpy as np
    from PIL import Image

    arr = np.asarray(im).astype(np.float64)
    if im.mode == "F":
        top = 1.0 if arr.size and float(arr.max()) <= 1.0 else 255.0
    else:
        top = 65535.0 if arr.size and float(arr.max()) > 255 else 255.0
    out = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
    return Image.fromarray(out, mode="L")


def sha256(path: str | Path) -> str:
    """SHA-256 of the file's bytes (hex), recorded in metadata so the source can be identified."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def round_to(value: float, multiple: int) -> int:
    """`value` rounded to the nearest multiple of `multiple`, at least `multiple`."""
    return max(multiple, int(round(value / multiple)) * multiple)


def fit_size(
    width: int, height: int, want_w: int | None, want_h: int | None, *, max_area: int | None, multiple: int = 8,
) -> tuple[int, int]:
    """The size to work at for an input of `width` x `height`.

    Both `want_w` and `want_h`: exactly that. One of them: the other follows the input's aspect ratio.
    Neither: the input's own size, scaled down (never up) to at most `max_area` pixels, aspect kept.
    Results are multiples of `multiple`.
    """
    if want_w and want_h:
        return want_w, want_h
    if want_w:
        return want_w, round_to(want_w * height / width, multiple)
    if want_h:
        return round_to(want_h * width / height, multiple), want_h
    scale = 1.0
    if max_area and width * height > max_area:
        scale = math.sqrt(max_area / (width * height))
    w, h = width * scale, height * scale
    rw, rh = round_to(w, multiple), round_to(h, multiple)
    if max_area and rw * rh > max_area:  # rounding up pushed it over: round down instead
        rw, rh = max(multiple, int(w // multiple) * multiple), max(multiple, int(h // multiple) * multiple)
    return rw, rh


def resize_cover(im: Any, width: int, height: int) -> Any:
    """`im` at exactly `width` x `height`: scaled to cover the size (aspect kept), then center-cropped."""
    from PIL import Image

    if im.size == (width, height):
        return im
    scale = max(width / im.width, height / im.height)
    sw, sh = max(width, round(im.width * scale)), max(height, round(im.height * scale))
    resized = im.resize((sw, sh), Image.Resampling.LANCZOS)
    left, top = (sw - width) // 2, (sh - height) // 2
    return resized.crop((left, top, left + width, top + height))
