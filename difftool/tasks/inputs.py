"""Input images of a spec (`source`, `mask`, interpolation `items`): a path on this machine, or base64 bytes
inline (server requests). Decoded through `difftool.images` with the same checks either way (decompression
bombs, alpha, 16-bit, EXIF rotation); the SHA-256 of the bytes is what the PNG records."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool import images
from difftool.errors import InputError


@dataclass
class Input:
    """A decoded input image and where it came from."""

    image: Any
    """PIL image (RGB, or L for masks)."""
    name: str
    """For output names ({name}): the file's stem, or `image` for inline bytes."""
    path: Path | None
    sha256: str
    label: str | None = None
    """Inline bytes sent with the path they were read from (the CLI through a server): that path, recorded as is
    and never opened here."""

    @property
    def where(self) -> str | None:
        """The path the record names: the file's (resolved), else the label of inline bytes, else None."""
        return str(self.path.resolve()) if self.path else self.label

    def record(self, key: str) -> dict[str, Any]:
        """`{key: path, key_sha256: digest}` as the spec stores it (no path for unlabelled inline bytes)."""
        return {**({key: self.where} if self.where else {}), f"{key}_sha256": self.sha256}


def decode_data(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"The {what} is not valid base64 image data.") from None


def open_input(path: str | None, data: str | None, what: str, mode: str = "RGB",
               background: tuple[int, int, int] = (255, 255, 255)) -> Input:
    """Decode the input given by `path` or base64 `data` (`what` names it in errors). With both, `data` is the
    image and `path` only a label: where a client read it, recorded and used for output names, never opened."""
    if data is not None:
        raw = decode_data(data, what)
        return Input(images.load_bytes(raw, what, mode=mode, background=background),
                     Path(path).stem if path else "image", None, hashlib.sha256(raw).hexdigest(), label=path)
    if path is None:
        raise InputError(f"No {what} given.")
    p = Path(path).expanduser()
    image = images.load(p, mode=mode, background=background, what=what[:1].upper() + what[1:])
    return Input(image, p.stem, p, images.sha256(p))


def source(spec: Any) -> Input:
    return open_input(spec.source, spec.source_data, "input image")


def mask(spec: Any) -> Input:
    """The mask as 8-bit L (transparent = black); InputError when no pixel is white enough to repaint."""
    return check_mask(open_input(spec.mask, spec.mask_data, "mask", mode="L", background=(0, 0, 0)))


def check_mask(found: Input) -> Input:
    """Refuse a mask with nothing to repaint (checked by the command too, before a model loads)."""
    import numpy as np

    if int(np.asarray(found.image).max(initial=0)) < 128:
        where = f"Mask '{found.path}'" if found.path else "The mask"
        raise InputError(f"{where} has no white pixel (none above 50% grey): nothing to repaint "
                         "(white in the mask = repaint).")
    return found
