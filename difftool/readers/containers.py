"""The text an image file carries, read without decoding its pixels.

PNG: every tEXt/zTXt/iTXt chunk, wherever it is (difftool's own streamed upscales, and some tools, write
them after IDAT), read chunk by chunk with IDAT skipped: a 30000x30000 image costs what a small one does,
and Pillow's decompression-bomb guard and 1 MB text limit never apply. JPEG: the EXIF (APP1) and COM
segments before the image data. WebP: the EXIF RIFF chunk. Where A1111 keeps its infotext in JPEG and
WebP (EXIF UserComment, written by piexif as "UNICODE\\0" + UTF-16) the text comes back under
`parameters`. Other formats go through Pillow's lazy open (no pixel decoding either).

The one reader that does decode pixels is `stealth_text` (A1111/NovelAI "stealth" metadata hidden in
the alpha or RGB low bits), and only for PNGs up to `STEALTH_MAX_PIXELS`.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Most bytes one text chunk may hold once decompressed (ComfyUI workflows are a few MB at most).
MAX_TEXT_BYTES = 32 * 1024 * 1024
#: Most bytes of text (all chunks together) read from one file.
MAX_TOTAL_TEXT = 64 * 1024 * 1024
#: Largest image (width x height) whose pixels are decoded to look for stealth metadata.
STEALTH_MAX_PIXELS = 16 * 1024 * 1024
#: Most bytes a stealth payload may inflate to.
MAX_STEALTH_BYTES = 8 * 1024 * 1024


class ReadError(Exception):
    """The file could not be read as an image; the message is one sentence for the user."""


class _TooMuch(Exception):
    """A limit on text was passed (the message says which); the file is reported, not read."""


@dataclass
class Container:
    """What a file holds besides pixels."""

    format: str  # "PNG", "JPEG", "WEBP", or Pillow's format name
    text: dict[str, str] = field(default_factory=dict)  # chunk keyword -> text (EXIF text under `parameters`)
    where: dict[str, str] = field(default_factory=dict)  # chunk keyword -> where it was found, for messages
    width: int | None = None
    height: int | None = None
    png_color_type: int | None = None
    png_bit_depth: int | None = None
    png_interlaced: bool = False


def read_container(path: Path | str) -> Container:
    """The text chunks of the image at `path`. Raises ReadError when it is missing or not an image."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(0)
            if head.startswith(PNG_SIGNATURE):
                return _read_png(f)
            if head.startswith(b"\xff\xd8\xff"):
                return _read_jpeg(f)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _read_webp(f)
    except FileNotFoundError:
        raise ReadError(f"'{path}' does not exist.") from None
    except IsADirectoryError:
        raise ReadError(f"'{path}' is a folder, not an image.") from None
    except PermissionError:
        raise ReadError(f"'{path}' cannot be read (permission denied).") from None
    except OSError as exc:
        raise ReadError(f"'{path}' cannot be read ({exc.strerror or type(exc).__name__}).") from None
    except _TooMuch as exc:
        raise ReadError(f"'{path}' was not read: {exc}.") from None
    return _read_other(path)


# ---- PNG ------------------------------------------------------------------------------------------------


def _read_png(f: BinaryIO) -> Container:
    out = Container("PNG")
    f.seek(len(PNG_SIGNATURE))
    total = 0
    after_idat = False
    while True:
        header = f.read(8)
        if len(header) < 8:
            break  # truncated: keep what was read
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            break
        if kind == b"IHDR" and length >= 13:
            data = f.read(13)
            if len(data) < 13:
                break
            out.width, out.height, out.png_bit_depth, out.png_color_type = struct.unpack(">IIBB", data[:10])
            out.png_interlaced = data[12] == 1
            f.seek(length - 13 + 4, io.SEEK_CUR)
            continue
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            if length > MAX_TEXT_BYTES:
                raise _TooMuch(f"a text chunk holds more than {MAX_TEXT_BYTES // 2**20} MiB")
            data = f.read(length)
            if len(data) < length:
                break  # truncated inside the chunk
            f.seek(4, io.SEEK_CUR)  # CRC: not checked; a damaged chunk shows as damaged text
            parsed = _png_text(kind, data)
            if parsed is None:
                continue
            key, text = parsed
            total += len(text)
            if total > MAX_TOTAL_TEXT:
                raise _TooMuch(f"its text chunks hold more than {MAX_TOTAL_TEXT // 2**20} MiB")
            if key not in out.text:  # the first of repeated keywords wins, as in Pillow
                out.text[key] = text
                out.where[key] = "PNG text after the image data" if after_idat else "PNG text"
            continue
        if kind == b"IDAT":
            after_idat = True
        f.seek(length + 4, io.SEEK_CUR)
    return out


def _inflate(data: bytes, limit: int, wbits: int = zlib.MAX_WBITS, strict: bool = True) -> bytes | None:
    """zlib (or gzip, wbits=31) data inflated; None when broken. Past `limit` bytes: _TooMuch when
    `strict`, else None. Inflating stops at limit + 1 bytes, so a zip bomb costs nothing."""
    try:
        out = zlib.decompressobj(wbits).decompress(data, limit + 1)
    except zlib.error:
        return None
    if len(out) > limit:
        if strict:
            raise _TooMuch(f"a compressed text chunk inflates past {limit // 2**20} MiB")
        return None
    return out


def _png_text(kind: bytes, data: bytes) -> tuple[str, str] | None:
    """(keyword, text) of one tEXt/zTXt/iTXt chunk; None when it is malformed."""
    key, sep, rest = data.partition(b"\0")
    if not sep or not key:
        return None
    keyword = key.decode("latin-1")
    if kind == b"tEXt":
        return keyword, _decode_text(rest)
    if kind == b"zTXt":
        raw = _inflate(rest[1:], MAX_TEXT_BYTES) if rest[:1] == b"\0" else None
        return None if raw is None else (keyword, _decode_text(raw))
    # iTXt: compression flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2:
        return None
    flag, method, rest = rest[0], rest[1], rest[2:]
    _, sep1, rest = rest.partition(b"\0")
    _, sep2, body = rest.partition(b"\0")
    if not (sep1 and sep2):
        return None
    if flag:
        raw = _inflate(body, MAX_TEXT_BYTES) if method == 0 else None
        if raw is None:
            return None
        body = raw
    return keyword, body.decode("utf-8", errors="replace")


def _decode_text(raw: bytes) -> str:
    """tEXt is Latin-1 by the standard, but tools in the wild write UTF-8 into it: take UTF-8 when valid."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# ---- JPEG and WebP: EXIF ----------------------------------------------------------------------------------


def _read_jpeg(f: BinaryIO) -> Container:
    out = Container("JPEG")
    f.seek(2)
    while True:
        byte = f.read(1)
        if not byte:
            break
        if byte != b"\xff":
            break  # lost sync: stop here with what was read
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker or marker in (b"\xd9", b"\xda"):  # end of image, start of scan: no metadata after
            break
        if marker == b"\x01" or b"\xd0" <= marker <= b"\xd7":
            continue  # standalone markers
        size = f.read(2)
        if len(size) < 2:
            break
        length = struct.unpack(">H", size)[0] - 2
        if length < 0:
            break
        if marker == b"\xe1" or marker == b"\xfe" or b"\xc0" <= marker <= b"\xcf":
            data = f.read(length)
            if marker == b"\xe1" and data.startswith(b"Exif\0\0"):
                _exif_text(data, out)
            elif marker == b"\xfe" and data.strip(b"\0 "):
                out.text.setdefault("comment", _decode_text(data.rstrip(b"\0")))
                out.where.setdefault("comment", "JPEG comment")
            elif marker in (b"\xc0", b"\xc1", b"\xc2") and len(data) >= 5:  # start of frame: the size
                out.height, out.width = struct.unpack(">HH", data[1:5])
        else:
            f.seek(length, io.SEEK_CUR)
    return out


def _read_webp(f: BinaryIO) -> Container:
    out = Container("WEBP")
    f.seek(12)
    while True:
        header = f.read(8)
        if len(header) < 8:
            break
        kind, length = struct.unpack("<4sI", header)
        padded = length + (length & 1)
        if kind == b"EXIF" and length <= MAX_TEXT_BYTES:
            _exif_text(f.read(padded)[:length], out)
        elif kind == b"VP8X" and length >= 10:
            data = f.read(10)
            out.width = 1 + int.from_bytes(data[4:7], "little")
            out.height = 1 + int.from_bytes(data[7:10], "little")
            f.seek(padded - len(data), io.SEEK_CUR)
        else:
            f.seek(padded, io.SEEK_CUR)
    return out


def _exif_text(data: bytes, out: Container) -> None:
    """The generation text of an EXIF block: UserComment (A1111, Fooocus, SwarmUI) as `parameters`."""
    try:
        from PIL import Image

        exif = Image.Exif()
        exif.load(data)
        comment = exif.get_ifd(0x8769).get(0x9286)
        description = exif.get(0x010E)
        software = exif.get(0x0131)
    except Exception:  # broken EXIF: no text from it
        return
    text = user_comment(comment)
    if text and "parameters" not in out.text:
        out.text["parameters"] = text
        out.where["parameters"] = "EXIF UserComment"
    if isinstance(description, str) and description.strip("\0 "):
        out.text.setdefault("Description", description.strip("\0"))
        out.where.setdefault("Description", "EXIF ImageDescription")
    if isinstance(software, str) and software.strip("\0 "):
        out.text.setdefault("Software", software.strip("\0"))
        out.where.setdefault("Software", "EXIF Software")


def user_comment(raw: Any) -> str | None:
    """An EXIF UserComment decoded: an 8-byte charset header ("UNICODE\\0", "ASCII\\0\\0\\0", zeros) then the
    text. piexif (A1111) writes UTF-16 big-endian; some writers use little-endian: told apart by where the
    zero bytes of ASCII-range characters fall."""
    if isinstance(raw, str):
        return raw.strip("\0").strip() or None
    if not isinstance(raw, (bytes, bytearray)) or len(raw) < 8:
        return None
    head, body = bytes(raw[:8]), bytes(raw[8:])
    if head == b"UNICODE\0":
        zeros_even = body[0:2000:2].count(0)
        zeros_odd = body[1:2000:2].count(0)
        text = body.decode("utf-16-be" if zeros_even >= zeros_odd else "utf-16-le", errors="replace")
    else:
        text = _decode_text(body)
    return text.strip("\0").strip() or None


# ---- other formats ----------------------------------------------------------------------------------------


def _read_other(path: Path | str) -> Container:
    """Formats difftool does not parse itself: Pillow's lazy open, which reads headers only."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                out = Container(im.format or "image", width=im.width, height=im.height)
                for key, value in im.info.items():
                    if isinstance(value, str):
                        out.text[key] = value
                        out.where[key] = f"{out.format} metadata"
                    elif key == "comment" and isinstance(value, bytes):
                        out.text[key] = _decode_text(value)
                        out.where[key] = f"{out.format} comment"
                return out
    except Image.DecompressionBombError:
        return Container("image")  # a huge image: it has no text Pillow reads before its pixels anyway
    except (UnidentifiedImageError, ValueError, SyntaxError):
        raise ReadError(f"'{path}' is not an image.") from None
    except OSError as exc:
        raise ReadError(f"'{path}' is not an image ({type(exc).__name__}).") from None


# ---- stealth metadata (A1111 extension "stealth_pnginfo", NovelAI) -----------------------------------------

_SIGNATURES = {
    b"stealth_pnginfo": ("alpha", False), b"stealth_pngcomp": ("alpha", True),
    b"stealth_rgbinfo": ("rgb", False), b"stealth_rgbcomp": ("rgb", True),
}


def stealth_text(path: Path | str, box: Container) -> tuple[str, str] | None:
    """(text, where) hidden in the low bits of a PNG's pixels, or None.

    Layout (ashen-sensored/sd_webui_stealth_pnginfo, NovelAI/novelai-image-metadata): a bit stream read
    column by column (x outer, y inner), one bit per pixel from alpha or three (R, G, B) per pixel; a 15-byte
    signature (`stealth_png{info,comp}` in alpha, `stealth_rgb{info,comp}` in RGB), a 32-bit big-endian
    payload length in bits, then the payload, gzip-compressed for `*comp`. Only 8-bit RGB/RGBA PNGs up to
    STEALTH_MAX_PIXELS are decoded.
    """
    if box.format != "PNG" or box.png_bit_depth != 8 or box.png_color_type not in (2, 6):
        return None
    if not box.width or not box.height or box.width * box.height > STEALTH_MAX_PIXELS:
        return None
    try:
        from PIL import Image

        with Image.open(path) as im:
            if im.mode not in ("RGB", "RGBA"):
                return None
            im.load()
            for rgb in ([False, True] if im.mode == "RGBA" else [True]):
                found = _stealth_payload(im, rgb)
                if found is not None:
                    return found
    except Exception:  # a broken or truncated image: no stealth text
        return None
    return None


#: bytes.translate table: each byte -> b"0" or b"1", its low bit.
_LOW_BIT = bytes.maketrans(bytes(range(256)), bytes(b"01"[i & 1] for i in range(256)))


def _stealth_payload(im: Any, rgb: bool) -> tuple[str, str] | None:
    """The payload hidden in a loaded RGB/RGBA image: the signature is checked on its 120 bits first (a few
    pixels of the first column), then the bit stream is taken at C speed (the image transposed, so that its
    bytes come column by column, each mapped to its low bit)."""
    width, height = im.size
    pixels = im.load()
    per_pixel = 3 if rgb else 1
    if width * height * per_pixel < 8 * 15 + 32:
        return None

    def bit(i: int) -> int:
        pixel, channel = divmod(i, 3) if rgb else (i, 3)
        x, y = divmod(pixel, height)
        return pixels[x, y][channel] & 1

    head = bytes(int("".join(str(bit(8 * n + k)) for k in range(8)), 2) for n in range(15))
    mode = _SIGNATURES.get(head)
    if mode is None or (mode[0] == "rgb") != rgb:
        return None
    from PIL import Image

    plane = im.convert("RGB") if rgb else im.getchannel("A")
    stream = plane.transpose(Image.Transpose.TRANSPOSE).tobytes().translate(_LOW_BIT)
    bits = int(stream[120:152], 2)
    if bits <= 0 or bits % 8 or 152 + bits > len(stream) or bits // 8 > MAX_STEALTH_BYTES:
        return None
    payload: bytes | None = int(stream[152 : 152 + bits], 2).to_bytes(bits // 8, "big")
    if mode[1]:
        payload = _inflate(payload, MAX_STEALTH_BYTES, wbits=31, strict=False)  # gzip
        if payload is None:
            return None
    return payload.decode("utf-8", errors="replace"), f"stealth metadata in the {mode[0]} channel"
