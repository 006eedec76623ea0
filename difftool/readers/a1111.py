"""AUTOMATIC1111/Forge "infotext" (the `parameters` chunk, or the EXIF UserComment) -> settings.

The layout, as A1111 writes and reads it (modules/infotext_utils.py, `parse_generation_parameters`):

    prompt, possibly on several lines
    Negative prompt: negative, possibly on several lines
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x768, ...

The last line holds the `Key: value` pairs when at least three parse (else it is prompt too); a value with
a comma or colon is JSON-quoted (`Lora hashes: "a: 1, b: 2"`). Other tools write the same format: Forge,
ComfyUI metadata nodes (`Version: ComfyUI`), Fooocus in its A1111 scheme, civitai; `source_of` tells them
apart by `Version`. Parsing never raises and stays linear in the text's length.
"""

from __future__ import annotations

import json
import re
from typing import Any

from difftool.readers import samplers

#: One `Key: value` pair, matched at a position (A1111's `re_param_code`, with the quoted value handled
#: by `_pairs` so that an unterminated quote cannot make the scan quadratic).
_KEY = re.compile(r"\s*(\w[\w \-/]+):\s*")
_SIZE = re.compile(r"\s*(\d{1,9})\s*x\s*(\d{1,9})\s*")


def _pairs(line: str) -> list[tuple[str, str]]:
    """The `Key: value` pairs of a parameter line, in order."""
    out: list[tuple[str, str]] = []
    pos, n = 0, len(line)
    no_quote_from = n + 1  # a closing quote was searched from here and not found: none later either
    while pos < n:
        m = _KEY.match(line, pos)
        if not m:
            comma = line.find(",", pos)
            if comma < 0:
                break
            pos = comma + 1
            continue
        key, start = m.group(1), m.end()
        if start < n and line[start] == '"' and start < no_quote_from:
            end = _closing_quote(line, start + 1)
            if end < 0:
                no_quote_from = start
            elif end + 1 == n or line[end + 1] == ",":
                out.append((key, line[start : end + 1]))
                pos = end + 2
                continue
        comma = line.find(",", start)
        end = n if comma < 0 else comma
        out.append((key, line[start:end]))
        pos = end + 1
    return out


def _closing_quote(line: str, pos: int) -> int:
    """Index of the quote closing a JSON string that starts before `pos`, or -1."""
    while True:
        q = line.find('"', pos)
        if q < 0:
            return -1
        backslashes = 0
        while q - 1 - backslashes >= pos and line[q - 1 - backslashes] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return q
        pos = q + 1


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def split(text: str) -> tuple[str, str | None, list[tuple[str, str]]]:
    """(prompt, negative or None, pairs of the parameter line) of an infotext."""
    lines = text.strip().split("\n")
    pairs = _pairs(lines[-1]) if lines else []
    if len(pairs) < 3:  # no parameter line: all of it is prompt
        pairs = []
    else:
        lines = lines[:-1]
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        if not in_negative and line.lstrip().startswith("Negative prompt:"):
            in_negative = True
            line = line.lstrip()[len("Negative prompt:"):]
        (negative if in_negative else prompt).append(line)
    return "\n".join(prompt).strip(), ("\n".join(negative).strip() if in_negative else None), pairs


def _int(value: str) -> int | None:
    value = value.strip()
    if not re.fullmatch(r"[+-]?\d{1,40}", value):
        return None
    return int(value)


def _float(value: str) -> float | None:
    value = value.strip()
    if not re.fullmatch(r"[+-]?(\d{1,40}(\.\d{0,40})?|\.\d{1,40})([eE][+-]?\d{1,3})?", value):
        return None
    return float(value)


#: Infotext key -> (settings key, parser); the value stays under `extra` when it does not parse.
_NUMBERS: dict[str, tuple[str, Any]] = {
    "Steps": ("steps", _int), "CFG scale": ("guidance", _float), "Seed": ("seed", _int),
    "Hires upscale": ("hires_scale", _float), "Hires steps": ("hires_steps", _int),
}
#: A1111 Hires upscaler names with a counterpart in difftool's hires fix.
_UPSCALERS = {"latent": "latent", "lanczos": "lanczos"}
#: A1111 writes `Clip skip: N` counting from 1 (1 = the last layer, no skip); diffusers' `clip_skip`
#: counts skipped layers from 0. `clip_skip` in settings is diffusers' count.
A1111_CLIP_SKIP_OFFSET = 1


def parse_infotext(text: str) -> dict[str, Any]:
    """Settings from an A1111 infotext: prompt, negative, steps, guidance, seed (absent for -1: random),
    width, height, sampler (as written), scheduler (ours, when diffusers has it), model, strength (img2img)
    or hires_scale/hires_steps/hires_upscaler/hires_denoise (hires fix), clip_skip (diffusers' count);
    every other pair, and any value that does not parse, under `extra` as written."""
    prompt, negative, pairs = split(text)
    out: dict[str, Any] = {"prompt": prompt}
    if negative is not None:
        out["negative"] = negative
    raw: dict[str, str] = {}
    for key, value in pairs:
        key = key.strip()
        if key not in raw:  # the first wins, as a repeated key in a dict would not
            raw[key] = _unquote(value)
    extra: dict[str, str] = {}
    hires = "Hires upscale" in raw or "Hires resize" in raw or "Hires steps" in raw
    for key, value in raw.items():
        if key in _NUMBERS:
            name, parse = _NUMBERS[key]
            number = parse(value)
            if number is None:
                extra[key] = value
            elif not (key == "Seed" and number == -1):  # -1: A1111's "random seed"
                out[name] = number
        elif key == "Size":
            m = _SIZE.fullmatch(value)
            if m:
                out["width"], out["height"] = int(m.group(1)), int(m.group(2))
            else:
                extra[key] = value
        elif key == "Denoising strength":
            number = _float(value)
            if number is None:
                extra[key] = value
            else:
                out["hires_denoise" if hires else "strength"] = number
        elif key == "Clip skip":
            number = _int(value)
            if number is None:
                extra[key] = value
            elif number > A1111_CLIP_SKIP_OFFSET:
                out["clip_skip"] = number - A1111_CLIP_SKIP_OFFSET
        elif key == "Hires upscaler":
            out["hires_upscaler"] = _UPSCALERS.get(value.strip().lower(), value)
        elif key == "Model":
            out["model"] = value
        elif key == "Sampler":
            out["sampler"] = value
        elif key == "Schedule type":
            continue  # read with the sampler below
        else:
            extra[key] = value
    distilled = _float(extra.get("Distilled CFG Scale", ""))
    if distilled is not None:  # Forge's Flux: the distilled guidance is what diffusers' guidance_scale means
        del extra["Distilled CFG Scale"]
        if out.get("guidance") not in (None, 1.0):  # a real CFG on top: diffusers' Flux has no such
            extra["CFG scale"] = raw["CFG scale"]
        out["guidance"] = distilled
    sampler = out.get("sampler")
    if isinstance(sampler, str) and sampler:
        ours, schedule_honoured = samplers.a1111(sampler, raw.get("Schedule type"))
        if ours:
            out["scheduler"] = ours
        if "Schedule type" in raw and not (ours and schedule_honoured):
            extra["Schedule type"] = raw["Schedule type"]
    elif "Schedule type" in raw:
        extra["Schedule type"] = raw["Schedule type"]
    if extra:
        out["extra"] = extra
    return out


def source_of(settings: dict[str, Any]) -> str:
    """Which tool wrote an infotext, from its `Version`: forge, comfyui, fooocus, or a1111."""
    version = str((settings.get("extra") or {}).get("Version", "")).strip()
    if re.match(r"f\d", version):  # Forge: f0.0.17v1.8.0rc-latest-..., f2.0.1v1.10.1-previous-...
        return "forge"
    if version.lower().startswith("comfyui"):
        return "comfyui"
    if version.lower().startswith("fooocus"):
        return "fooocus"
    return "a1111"
