"""`difftool info`: the generation settings stored in images (difftool's own chunk, A1111/Forge infotext,
ComfyUI, Fooocus, InvokeAI, NovelAI, SwarmUI: see difftool.readers).

Loads no model and imports only Pillow, so it answers as fast as `--help`. Reads metadata only, so a huge
image costs what a small one does. Text from the image is escaped for the terminal (terminal.printable).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from difftool import console
from difftool.commands.common import guarded
from difftool.errors import ExitCode
from difftool.terminal import printable

#: Shown first, in this order; the other keys follow alphabetically.
ORDER = ("prompt", "negative", "model", "task", "seed", "steps", "guidance", "width", "height", "scheduler",
         "sampler", "strength", "clip_skip", "hires_scale", "hires_steps", "hires_upscaler", "hires_denoise", "lora",
         "source", "mask", "prior", "items")


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def describe(path: Path, source: str | None, settings: dict[str, Any], where: str | None = None) -> list[str]:
    """Human-readable lines for one image (raw: escape them with terminal.printable before printing)."""
    from difftool.readers import LABELS

    if source is None:
        return [f"{path}: no generation settings stored"]
    version = settings.get("version")
    label = LABELS.get(source, source) + (f" {version}" if source == "difftool" and version else "")
    lines = [f"{path}  ({label}{f', {where}' if where and where != 'PNG text' else ''})"]
    keys = [k for k in ORDER if k in settings] + sorted(k for k in settings if k not in (*ORDER, "version", "extra"))
    keys += ["extra"] if "extra" in settings else []  # what other tools stored that difftool has no field for
    shown = [(k, settings[k]) for k in keys if settings[k] not in (None, "", [], {})]
    width = max((len(k) for k, _ in shown), default=0)
    for key, value in shown:
        text = _show(value).replace("\n", "\n" + " " * (width + 4))
        lines.append(f"  {key:<{width}}  {text}")
    return lines


@guarded
def info(
    images: Annotated[list[Path], typer.Argument(help="PNG images (or any image Pillow reads).", show_default=False)],
    json_: Annotated[bool, typer.Option("--json", help="One JSON object per image on stdout.")] = False,
) -> None:
    """Show the settings stored in images: prompt, model, seed, steps, ... (loads no model)."""
    from difftool import readers

    failed = shown = 0
    for path in images:
        try:
            found = readers.read(path)
        except readers.ReadError as exc:  # reported; the other files are still read (exit 2 at the end)
            console.error(printable(str(exc)))
            failed += 1
            continue
        if json_:
            record: dict[str, Any] = {"path": str(path), "source": found.source, "settings": found.settings}
            if found.where:
                record["stored_in"] = found.where
            if found.raw is not None:
                record["parameters" if found.chunk in ("parameters", "difftool") else "raw"] = found.raw
            console.result_json(record)
        else:
            if shown:
                console.result("")
            shown += 1
            for line in describe(path, found.source, found.settings, found.where):
                console.result(printable(line))
    if failed:
        raise typer.Exit(ExitCode.USAGE)
