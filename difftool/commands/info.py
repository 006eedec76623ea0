"""`difftool info`: the generation settings stored in images (difftool's own chunk or A1111 `parameters`).

Loads no model and imports only Pillow, so it answers as fast as `--help`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from difftool import console
from difftool.commands.common import guarded
from difftool.errors import ExitCode, UsageError

#: Shown first, in this order; the other keys follow alphabetically.
ORDER = ("prompt", "negative", "model", "task", "seed", "steps", "guidance", "width", "height", "scheduler",
         "strength", "lora", "source", "mask", "prior", "items")
SOURCES = {"difftool": "difftool", "a1111": "AUTOMATIC1111 parameters"}


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def describe(path: Path, source: str | None, settings: dict[str, Any]) -> list[str]:
    """Human-readable lines for one image."""
    if source is None:
        return [f"{path}: no generation settings stored"]
    version = settings.get("version")
    lines = [f"{path}  ({SOURCES[source]}{' ' + str(version) if source == 'difftool' and version else ''})"]
    keys = [k for k in ORDER if k in settings] + sorted(k for k in settings if k not in ORDER and k != "version")
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
    from difftool import metadata

    failed = shown = 0
    for path in images:
        try:
            source, settings, raw = metadata.read(path)
        except UsageError as exc:
            console.error(exc.message)
            failed += 1
            continue
        if json_:
            record: dict[str, Any] = {"path": str(path), "source": source, "settings": settings}
            if raw is not None:
                record["parameters"] = raw
            console.result_json(record)
        else:
            if shown:
                console.result("")
            shown += 1
            for line in describe(path, source, settings):
                console.result(line)
    if failed:
        raise typer.Exit(ExitCode.USAGE)
