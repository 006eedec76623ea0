"""`gen`: text to image with any pipeline AutoPipelineForText2Image serves (Kandinsky: prior + decoder)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from difftool import schedulers
from difftool.tasks.base import Context, Result, base_record, call, call_kwargs, image_result, ran


def run(ctx: Context, spec: Any) -> Iterator[Result]:
    """`num_images` images of the prompt; image i uses seed + i."""
    loaded = ctx.pipeline("text2img")
    pipe = loaded.pipe
    scheduler = ctx.value(spec, "scheduler")
    if scheduler:
        schedulers.apply(pipe, scheduler)
    values = {key: ctx.value(spec, key) for key in ("steps", "guidance", "width", "height", "prior_steps",
                                                    "prior_guidance")}
    kwargs = call_kwargs(pipe, {"negative": spec.negative, **values}, loaded.ref.label)
    record = {**base_record(loaded, "gen"), "prompt": spec.prompt, "negative": spec.negative, **ran(pipe, kwargs)}
    steps = record["steps"] or 0
    for i in range(spec.num_images):
        seed = ctx.first_seed + i
        label = f"image {i + 1}/{spec.num_images} seed {seed}"
        out = call(pipe, {"prompt": spec.prompt, **kwargs}, seed, steps=steps, label=label, step=ctx.step)
        yield image_result(out, {**record, "seed": seed}, {"prompt": spec.prompt}, ctx.step)
