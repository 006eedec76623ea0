"""Generation settings embedded in PNGs, so every image can be reproduced.

Two text chunks: `parameters` in the AUTOMATIC1111 "infotext" format (read by A1111, ComfyUI,
civitai, ...) and `difftool` with the full settings as JSON (read back by `--from`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from difftool import __version__
from difftool.schedulers import A1111_NAMES

#: Our settings keys -> A1111 infotext names, in A1111's order.
_INFOTEXT_KEYS = (
    ("steps", "Steps"), ("sampler", "Sampler"), ("guidance", "CFG scale"), ("seed", "Seed"), ("size", "Size"),
    ("model", "Model"), ("strength", "Denoising strength"), ("a1111_clip_skip", "Clip skip"),
    ("hires_scale", "Hires upscale"), ("hires_steps", "Hires steps"), ("a1111_hires_upscaler", "Hires upscaler"),
)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return json.dumps(text) if ("," in text or ":" in text or "\n" in text) else text


def infotext(settings: dict[str, Any]) -> str:
    """The A1111 `parameters` text for one image's settings."""
    lines = [str(settings.get("prompt") or "")]
    if settings.get("negative"):
        lines.append(f"Negative prompt: {settings['negative']}")
    values = dict(settings)
    sched = values.get("scheduler")
    if sched:
        values["sampler"] = A1111_NAMES.get(sched, sched)
    if values.get("width") and values.get("height"):
        values["size"] = f"{values['width']}x{values['height']}"  # with the hires fix: the first pass's, as A1111
    values.update(_a1111_extras(values))
    parts = [f"{label}: {_fmt(values[key])}" for key, label in _INFOTEXT_KEYS if values.get(key) is not None]
    parts.append(f"Version: difftool {__version__}")
    lines.append(", ".join(parts))
    return "\n".join(lines)


def _a1111_extras(values: dict[str, Any]) -> dict[str, Any]:
    """Clip skip and hires fix values as A1111 writes them (its clip skip counts from 1; the hires fix's
    denoise is its `Denoising strength`)."""
    from difftool.prompts import clip_skip_to_a1111

    out: dict[str, Any] = {"a1111_clip_skip": clip_skip_to_a1111(values.get("clip_skip"), str(values.get("pipeline")))}
    if values.get("hires_scale"):
        from difftool.hires import Hires

        out["a1111_hires_upscaler"] = Hires(1.0, upscaler=str(values.get("hires_upscaler") or "latent")).a1111_upscaler()
        if values.get("strength") is None:
            out["strength"] = values.get("hires_denoise")
    return out


def pnginfo(settings: dict[str, Any]) -> Any:
    """A Pillow PngInfo holding both chunks."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", infotext(settings))
    info.add_text("difftool", json.dumps({"version": __version__, **settings}, ensure_ascii=False, default=str))
    return info


# ---- reading settings back (difftool info, --from) ------------------------------------------------------

#: A1111's own pattern for one `Key: value` pair of the last infotext line (values may be JSON-quoted).
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
#: A1111 infotext names -> our settings keys and value types.
_FROM_INFOTEXT: dict[str, tuple[str, type]] = {
    "Steps": ("steps", int), "CFG scale": ("guidance", float), "Seed": ("seed", int), "Model": ("model", str),
    "Denoising strength": ("strength", float), "Sampler": ("sampler", str),
    "Hires upscale": ("hires_scale", float), "Hires steps": ("hires_steps", int),
}


def parse_infotext(text: str) -> dict[str, Any]:
    """An A1111 `parameters` text -> settings (prompt, negative, steps, guidance, seed, width, height,
    scheduler when the sampler is one we know, model, strength) plus every other pair under `extra`."""
    lines = text.strip().split("\n")
    last = lines[-1] if lines else ""
    if len(_PARAM.findall(last)) < 3:  # no parameter line: it is all prompt
        last = ""
    else:
        lines = lines[:-1]
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    out: dict[str, Any] = {"prompt": "\n".join(prompt).strip()}
    if in_negative:
        out["negative"] = "\n".join(negative).strip()
    extra: dict[str, str] = {}
    for key, value in _PARAM.findall(last):
        key, value = key.strip(), value.strip()
        if value.startswith('"') and value.endswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        if key == "Size" and re.fullmatch(r"\d+x\d+", value):
            out["width"], out["height"] = (int(v) for v in value.split("x"))
        elif key in _FROM_INFOTEXT:
            name, kind = _FROM_INFOTEXT[key]
            try:
                out[name] = kind(value)
            except ValueError:
                extra[key] = value
        else:
            extra[key] = value
    _read_hires(out, extra)
    sampler = out.pop("sampler", None)
    if sampler:
        if extra.get("Schedule type", "").lower() == "karras" and not sampler.endswith("Karras"):
            sampler += " Karras"
        ours = {v.lower(): k for k, v in A1111_NAMES.items()}.get(sampler.lower())
        out["scheduler"] = ours or sampler
    if extra:
        out["extra"] = extra
    return out


def _read_hires(out: dict[str, Any], extra: dict[str, str]) -> None:
    """A1111's hires fix keys -> hires_* settings: with `Hires upscale`, `Denoising strength` is the hires
    denoise; `Hires steps: 0` means the first pass's steps; an upscaler difftool does not have (ESRGAN
    models ...) stays in `extra` for the caller to report."""
    if "hires_scale" not in out:
        return
    if "strength" in out:
        out["hires_denoise"] = out.pop("strength")
    if not out.get("hires_steps"):
        out.pop("hires_steps", None)
    name = extra.get("Hires upscaler")
    if name is not None:
        from difftool.hires import IMAGE_MODES, LATENT_MODES

        known = {a1111.lower(): ours for ours, (*_, a1111) in {**LATENT_MODES, **IMAGE_MODES}.items()}
        if name.lower() in known:
            out["hires_upscaler"] = known[name.lower()]
            del extra["Hires upscaler"]


def read(path: Any) -> tuple[str | None, dict[str, Any], str | None]:
    """(source, settings, raw infotext) stored in an image: source is `difftool`, `a1111` or None.

    Raises UsageError when the file is missing or not an image. Only Pillow is imported.
    """
    from PIL import Image, UnidentifiedImageError

    from difftool.errors import UsageError

    try:
        with Image.open(path) as im:
            chunks = {k: v for k, v in (getattr(im, "text", None) or im.info).items() if isinstance(v, str)}
            if "parameters" not in chunks:  # A1111 JPEG/WebP: EXIF UserComment
                comment = _exif_comment(im)
                if comment:
                    chunks["parameters"] = comment
    except FileNotFoundError:
        raise UsageError(f"'{path}' does not exist.") from None
    except IsADirectoryError:
        raise UsageError(f"'{path}' is a folder, not an image.") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"'{path}' is not an image ({type(exc).__name__}).") from None
    raw = chunks.get("parameters")
    own = chunks.get("difftool")
    if own:
        try:
            data = json.loads(own)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return "difftool", data, raw
    if raw:
        return "a1111", parse_infotext(raw), raw
    return None, {}, None


def _exif_comment(im: Any) -> str | None:
    """The EXIF UserComment (where A1111 stores `parameters` in JPEG and WebP files), decoded."""
    try:
        raw = im.getexif().get_ifd(0x8769).get(0x9286)
    except Exception:  # no or broken EXIF: no settings
        return None
    if isinstance(raw, str):
        return raw.strip("\0").strip() or None
    if not isinstance(raw, bytes) or len(raw) < 8:
        return None
    head, body = raw[:8], raw[8:]
    if head == b"UNICODE\0":
        # piexif writes UTF-16 big-endian; a little-endian body has its zero bytes second
        be = len(body) > 1 and body[0] == 0
        text = body.decode("utf-16-be" if be or not body[1:2] == b"\0" else "utf-16-le", errors="replace")
    else:
        text = body.decode("utf-8", errors="replace")
    return text.strip("\0").strip() or None

