"""Generation settings read back from images made by difftool and by the tools people share images from.

`read(path)` reads the file's metadata (never its pixels, except for A1111/NovelAI "stealth" metadata in
small PNGs that carry nothing else) and `identify(chunks)` tells the format and parses it:

| source     | where                                                      | parsed by                       |
| ---------- | ---------------------------------------------------------- | ------------------------------- |
| difftool   | PNG `difftool` (JSON)                                      | json                            |
| a1111      | PNG `parameters`, JPEG/WebP EXIF UserComment, stealth bits | readers.a1111                   |
| forge      | the same, `Version: f...`                                  | readers.a1111                   |
| comfyui    | PNG `prompt` (API graph), or infotext `Version: ComfyUI`   | readers.comfyui / readers.a1111 |
| fooocus    | PNG `parameters` JSON (+ `fooocus_scheme`), or infotext    | readers.json_formats / a1111    |
| invokeai   | PNG `invokeai_metadata`, `sd-metadata`, `Dream`            | readers.json_formats            |
| novelai    | PNG `Comment` + `Description` + `Source`, or stealth bits  | readers.json_formats            |
| swarmui    | PNG `parameters` JSON `sui_image_params`                   | readers.json_formats            |

`to_spec_fields(source, settings)` turns what was read into difftool's spec fields plus the keys `--from`
cannot honour. Nothing here imports more than Pillow (and that only inside functions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from difftool.readers.containers import ReadError
from difftool.readers.fields import to_spec_fields

__all__ = ["LABELS", "ReadError", "Reading", "identify", "read", "to_spec_fields"]

#: source -> how `info` names it.
LABELS = {
    "difftool": "difftool", "a1111": "AUTOMATIC1111", "forge": "Forge", "comfyui": "ComfyUI",
    "fooocus": "Fooocus", "invokeai": "InvokeAI", "novelai": "NovelAI", "swarmui": "SwarmUI",
}


@dataclass
class Reading:
    """What an image says about how it was made."""

    source: str | None  # a key of LABELS, or None: no generation settings found
    settings: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None  # the text the settings were parsed from (infotext or JSON)
    where: str | None = None  # where that text was: "PNG text", "EXIF UserComment", "stealth metadata ..."
    chunk: str | None = None  # its chunk name (`parameters`, `prompt`, ...)


def read(path: Path | str) -> Reading:
    """The settings stored in the image at `path`. Raises ReadError (one sentence) for a file that is
    missing or not an image; never reads more than the metadata, whatever the image's size."""
    from difftool.readers.containers import read_container, stealth_text

    box = read_container(path)
    found = identify(box.text)
    if found.source is not None:
        found.where = box.where.get(found.chunk or "", None)
        return found
    hidden = stealth_text(path, box)
    if hidden is not None:
        text, where = hidden
        found = _stealth(text)
        if found.source is not None:
            found.where = where
            return found
    return Reading(None)


def _stealth(text: str) -> Reading:
    """NovelAI hides a JSON of its chunks; the A1111 extension hides the infotext itself."""
    data = _json_object(text)
    if data is not None:
        chunks = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
        return identify(chunks)
    return identify({"parameters": text})


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def identify(chunks: dict[str, str]) -> Reading:
    """The source and settings of an image's text chunks (pure: no file access). Never raises: a chunk
    that does not parse counts as absent, so the answer is a result or "no settings" (source None)."""
    try:
        return _identify(chunks)
    except Exception:  # a parser bug must not stop `info` on one file: treated as no settings
        return Reading(None)


def _identify(chunks: dict[str, str]) -> Reading:
    from difftool.readers import a1111, comfyui, json_formats

    own = _json_object(chunks.get("difftool") or "")
    if own is not None:
        return Reading("difftool", own, chunks.get("parameters"), chunk="difftool")
    params = chunks.get("parameters")
    if isinstance(params, str) and params.strip():
        data = _json_object(params)
        if data is not None:
            if "sui_image_params" in data:
                settings = json_formats.swarmui(params)
                if settings is not None:
                    return Reading("swarmui", settings, params, chunk="parameters")
            if json_formats.is_fooocus(data) or chunks.get("fooocus_scheme") == "fooocus":
                settings = json_formats.fooocus(params)
                if settings is not None:
                    return Reading("fooocus", settings, params, chunk="parameters")
        else:
            settings = a1111.parse_infotext(params)
            return Reading(a1111.source_of(settings), settings, params, chunk="parameters")
    if chunks.get("prompt"):
        settings = comfyui.parse_prompt_graph(chunks["prompt"])
        if settings is not None:
            return Reading("comfyui", settings, chunks["prompt"], chunk="prompt")
    for chunk, parse in (("invokeai_metadata", json_formats.invokeai_metadata),
                         ("sd-metadata", json_formats.invokeai_sd_metadata), ("Dream", json_formats.invokeai_dream)):
        if chunks.get(chunk):
            settings = parse(chunks[chunk])
            if settings is not None:
                return Reading("invokeai", settings, chunks[chunk], chunk=chunk)
    comment = chunks.get("Comment")
    if comment and (chunks.get("Software", "").startswith("NovelAI") or "Source" in chunks or "Description" in chunks):
        settings = json_formats.novelai(comment, chunks.get("Description"), chunks.get("Source"))
        if settings is not None:
            return Reading("novelai", settings, comment, chunk="Comment")
    if chunks.get("workflow") and _json_object(chunks["workflow"]) is not None:
        # ComfyUI's editor layout without the `prompt` graph it ran: labelled, not parsed
        note = "the ComfyUI editor's workflow only (no `prompt` graph): settings not read"
        return Reading("comfyui", {"extra": {"workflow": note}}, None, chunk="workflow")
    return Reading(None)
