"""Generation settings embedded in PNGs, so every image can be reproduced.

Two text chunks: `parameters` in the AUTOMATIC1111 "infotext" format (read by A1111, ComfyUI,
civitai, ...) and `difftool` with the full settings as JSON (read back by `--from`).
"""

from __future__ import annotations

import json
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
