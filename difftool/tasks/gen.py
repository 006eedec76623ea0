"""`gen`: text to image with any pipeline AutoPipelineForText2Image serves (Kandinsky: prior + decoder), with
A1111's prompt syntax and hires fix where the pipeline allows (`difftool.prompts`, `difftool.hires`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from difftool import callrules, schedulers
from difftool.tasks.base import Context, Result, base_record, call, call_kwargs, image_result, ran, text_kwargs


def run(ctx: Context, spec: Any) -> Iterator[Result]:
    """`num_images` images of the prompt; image i uses seed + i."""
    loaded = ctx.pipeline("text2img")
    pipe = loaded.pipe
    scheduler = ctx.value(spec, "scheduler")
    if scheduler:
        schedulers.apply(pipe, scheduler)
    values = {key: ctx.value(spec, key) for key in ("steps", "guidance", "width", "height", "prior_steps",
                                                    "prior_guidance", "true_cfg", "max_sequence_length")}
    kwargs = call_kwargs(pipe, {"negative": spec.negative, **values}, loaded.ref.label)
    kwargs.update(callrules.size_kwargs(pipe, values["width"], values["height"]))  # Flux Kontext: max_area
    record = {**base_record(loaded, "gen"), "prompt": spec.prompt, "negative": spec.negative, **ran(pipe, kwargs)}
    texts, said = text_kwargs(ctx, spec, pipe, kwargs)
    record.update(said)
    if ctx.guides:  # ControlNet / IP-Adapter images at the size made, and what to record of them
        guided, said = ctx.guides.call(loaded, kwargs.get("width"), kwargs.get("height"))
        kwargs.update(guided)
        record.update(said)
    steps = record["steps"] or 0
    runner: Any = pipe
    if spec.hires_scale:
        runner, extra = _hires(ctx, spec, loaded, kwargs, steps)
        record.update(extra)
        steps += record["hires_steps"] or 0
    for i in range(spec.num_images):
        seed = ctx.first_seed + i
        label = f"image {i + 1}/{spec.num_images} seed {seed}"
        out = call(runner, {**kwargs, **texts}, seed, steps=steps, label=label, step=ctx.step)
        yield image_result(out, {**record, "seed": seed}, {"prompt": spec.prompt}, ctx.step)


def _hires(ctx: Context, spec: Any, loaded: Any, kwargs: dict[str, Any], steps: int) -> tuple[Any, dict[str, Any]]:
    """The hires fix standing in for the pipeline; the first pass's size is what the image records as its size,
    as A1111's `Size` (the file is `hires_scale` times larger)."""
    from difftool import hires

    fix = hires.check(spec.hires_scale, spec.hires_steps, spec.hires_denoise, spec.hires_upscaler)
    assert fix is not None
    kwargs["width"], kwargs["height"] = hires.base_size(loaded.pipe, kwargs.get("width"), kwargs.get("height"))
    upscaler = None
    if fix.is_model:
        assert ctx.other is not None
        upscaler = hires.Upscaler.of(ctx.other(fix.upscaler, "upscale"))
    runner = hires.HiresFix(loaded.pipe, fix, img2img=ctx.pipeline("img2img").pipe, upscaler=upscaler)
    return runner, {**fix.record(steps), "width": kwargs["width"], "height": kwargs["height"]}
