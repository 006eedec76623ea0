"""Files made from the images a command wrote: the `--grid` contact sheet and interpolate's `--gif` animation.

Both are written like images (temporary name, then linked into place, never overwriting) and reported as
results; both record in their metadata which images they were made of.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from difftool import __version__
from difftool.console import result, result_json
from difftool.outputs import write_with

GIF_FRAME_MS = 100


def _report(path: Path, as_json: bool, record: dict[str, Any], *, say: Any, note: str) -> None:
    if as_json:
        result_json({"path": str(path), **record})
    else:
        result(str(path))
    say.info(f"wrote {note} {path}")


def write_grid(paths: list[Path], overwrite: bool, as_json: bool, say: Any) -> Path | None:
    """One contact sheet of `paths` (rows of ceil(sqrt(n)) cells), next to the first image as `<first>-grid.png`.
    Nothing for fewer than two images."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    if len(paths) < 2:
        say.info("--grid: only one image, no contact sheet written")
        return None
    pictures = [Image.open(p).convert("RGB") for p in paths]
    cell_w, cell_h = max(im.width for im in pictures), max(im.height for im in pictures)
    cols = math.ceil(math.sqrt(len(pictures)))
    rows = math.ceil(len(pictures) / cols)
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), "white")
    for i, im in enumerate(pictures):
        x, y = (i % cols) * cell_w + (cell_w - im.width) // 2, (i // cols) * cell_h + (cell_h - im.height) // 2
        sheet.paste(im, (x, y))
    info = PngInfo()
    info.add_text("difftool", json.dumps({"difftool": __version__, "task": "grid", "images": [str(p) for p in paths]},
                                         ensure_ascii=False))
    target = paths[0].with_name(f"{paths[0].stem}-grid.png")
    path = write_with(lambda fh: sheet.save(fh, format="PNG", pnginfo=info), target, overwrite=overwrite,
                      fresh=not overwrite)
    _report(path, as_json, {"grid": True, "images": [str(p) for p in paths]}, say=say,
            note=f"contact sheet ({cols}x{rows})")
    return path


def write_gif(frames: list[Path], overwrite: bool, as_json: bool, say: Any) -> Path:
    """An animated GIF of the frames (looping, GIF_FRAME_MS per frame) next to the first frame, named like it
    without its frame number; its comment holds the first frame's settings and the frame list."""
    from PIL import Image

    first = frames[0]
    stem = first.stem
    for suffix in ("-000", "-0"):  # the default {frame} name, or `-o file.png` numbered by the output plan
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    pictures = [Image.open(p).convert("RGB") for p in frames]
    with Image.open(first) as im:
        settings = json.loads(im.text.get("difftool", "{}")) if hasattr(im, "text") else {}
    settings = {k: v for k, v in settings.items() if k not in ("frame", "weights")}
    comment = json.dumps({**settings, "task": "interpolate-gif", "frames": [str(p) for p in frames]},
                         ensure_ascii=False, default=str)

    def save(fh: Any) -> None:
        pictures[0].save(fh, format="GIF", save_all=True, append_images=pictures[1:], duration=GIF_FRAME_MS, loop=0,
                         comment=comment.encode())

    path = write_with(save, first.with_name(stem + ".gif"), overwrite=overwrite, fresh=not overwrite)
    _report(path, as_json, {"gif": True, "frames": [str(p) for p in frames]}, say=say,
            note=f"animation ({len(frames)} frames)")
    return path
