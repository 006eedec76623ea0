"""What every image-making task shares: seeds, the per-image call, progress, safe writes, results.

A task builds `Job`s (one per output image, each with its own seed) and hands them to `run_jobs`,
which calls the pipeline once per image with a CPU `torch.Generator` seeded with the job's seed,
so image i of a batch is exactly the plain diffusers call with seed+i.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from difftool import console, metadata, stepcache
from difftool.errors import DifftoolError
from difftool.loading import Loaded, is_usage_error
from difftool.outputs import OutputPlan, write_png

MAX_SEED = 2**32 - 1


def draw_seed() -> int:
    """A random seed, reported everywhere so the image can be remade."""
    return secrets.randbelow(MAX_SEED + 1)


@dataclass
class Job:
    """One image to make: the pipeline kwargs (without generator) and the settings to record."""

    kwargs: dict[str, Any]
    seed: int
    settings: dict[str, Any]
    name_fields: dict[str, Any] = field(default_factory=dict)
    steps: int = 0


def run_pipe(pipe: Any, kwargs: dict[str, Any], seed: int, steps: int, label: str) -> Any:
    """Call the pipeline once with a fresh CPU generator, driving a progress bar from its step callback."""
    import torch

    params = inspect.signature(pipe.__call__).parameters
    call = dict(kwargs)
    call["generator"] = torch.Generator("cpu").manual_seed(seed)
    stepcache.before_call(pipe, call.get("num_inference_steps") or getattr(params.get("num_inference_steps"), "default", None))
    with console.step_bar(label, total=max(steps, 1)) as advance:
        if console.bars_enabled() and "callback_on_step_end" in params:

            def on_step(_pipe: Any, _step: int, _t: Any, cb_kwargs: dict[str, Any]) -> dict[str, Any]:
                advance()
                return cb_kwargs

            call["callback_on_step_end"] = on_step
        try:
            return pipe(**call)
        except ValueError as exc:
            usage = is_usage_error(exc)
            if usage:
                raise usage from exc
            raise


def run_jobs(loaded: Loaded, jobs: Iterable[Job], plan: OutputPlan, total: int, as_json: bool) -> list[Path]:
    """Make, write and report every job's image; returns the written paths."""
    written: list[Path] = []
    for index, job in enumerate(jobs):
        label = f"image {index + 1}/{total} seed {job.seed}"
        out = run_pipe(loaded.pipe, job.kwargs, job.seed, job.steps, label)
        image = out.images[0]
        nsfw = getattr(out, "nsfw_content_detected", None)
        if nsfw and nsfw[0]:
            console.warn(f"the safety checker blacked out image {index + 1} (seed {job.seed}).")
        settings = {**job.settings, "width": image.width, "height": image.height}
        path, fresh = plan.path_for(index, total, seed=job.seed, model=loaded.ref.name, **job.name_fields)
        path = write_png(image, path, metadata.pnginfo(settings), overwrite=plan.overwrite, fresh=fresh)
        written.append(path)
        if as_json:
            console.result_json({"path": str(path), **settings})
        else:
            console.result(str(path))
        console.info(f"wrote {path} (seed {job.seed})")
    return written


def base_settings(loaded: Loaded, task: str) -> dict[str, Any]:
    """Settings every image records: task, model, pipeline class, device and dtype."""
    return {
        "task": task,
        "model": loaded.ref.label,
        **({"prior": loaded.prior} if loaded.prior else {}),
        "pipeline": type(loaded.pipe).__name__,
        "device": loaded.device,
        "dtype": loaded.dtype_name,
        "safety_checker": getattr(loaded.pipe, "safety_checker", None) is not None,
        **({"config": loaded.ref.config} if loaded.ref.config else {}),
        **loaded.opts.switches(),
    }


def require(condition: bool, message: str) -> None:
    if not condition:
        raise DifftoolError(message)


def write_grid(paths: list[Path], overwrite: bool = False, as_json: bool = False) -> Path | None:
    """`--grid`: one contact sheet of `paths` (rows of ceil(sqrt(n)) cells), next to the first image as
    `<first>-grid.png`; reported like an image. Nothing for fewer than two images."""
    import json
    import math

    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    if len(paths) < 2:
        console.info("--grid: only one image, no contact sheet written")
        return None
    images = [Image.open(p).convert("RGB") for p in paths]
    cell_w, cell_h = max(im.width for im in images), max(im.height for im in images)
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), "white")
    for i, im in enumerate(images):
        x, y = (i % cols) * cell_w + (cell_w - im.width) // 2, (i // cols) * cell_h + (cell_h - im.height) // 2
        sheet.paste(im, (x, y))
    info = PngInfo()
    info.add_text("difftool", json.dumps({"version": metadata.__version__, "task": "grid",
                                          "images": [str(p) for p in paths]}, ensure_ascii=False))
    target = paths[0].with_name(f"{paths[0].stem}-grid.png")
    path = write_png(sheet, target, info, overwrite=overwrite, fresh=not overwrite)
    if as_json:
        console.result_json({"path": str(path), "grid": True, "images": [str(p) for p in paths]})
    else:
        console.result(str(path))
    console.info(f"wrote contact sheet {path} ({cols}x{rows})")
    return path
