"""`gen`: text to image with any pipeline AutoPipelineForText2Image serves (Kandinsky: prior + decoder), with
A1111's prompt syntax and hires fix where the pipeline allows (`difftool.prompts`, `difftool.hires`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from difftool import callrules, schedulers
from difftool.tasks.base import Context, Result, base_record, call, call_kwargs, image_result, ran, text_kwargs


def _prepare(ctx: Context, spec: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The loaded pipeline (scheduler set), the call's settings as kwargs, and what every image records."""
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
    return loaded, kwargs, record


def run(ctx: Context, spec: Any) -> Iterator[Result]:
    """`num_images` images of the prompt; image i uses seed + i."""
    loaded, kwargs, record = _prepare(ctx, spec)
    pipe = loaded.pipe
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


def batch_key(spec: Any) -> str | None:
    """What gen specs must share to be made in one pipeline call: everything but prompt, seed and count. None for
    a spec made alone: the hires fix, ControlNet/IP-Adapter guides and <lora:...> tags act per image."""
    import json

    if spec.task != "gen" or spec.hires_scale or spec.control or spec.image_prompt:
        return None
    if "<" in (spec.prompt or "") or "<" in (spec.negative or ""):
        return None
    return json.dumps(spec.model_dump(mode="json", exclude={"prompt", "seed", "num_images"}), sort_keys=True)


def run_batch(ctx: Context, spec: Any, items: list[tuple[str, int]]) -> list[Result]:
    """len(items) images of `spec`'s settings in ONE pipeline call, one (prompt, seed) each, each image with its
    own CPU generator (diffusers takes a list). The initial noise is the one-image call's; the batched maths may
    differ from it in the last bits (see README). Prompts whose text kwargs do not stack (embeddings of different
    lengths) are made one call each, exactly as `run` makes them."""
    loaded, kwargs, record = _prepare(ctx, spec)
    pipe = loaded.pipe
    texts, said = [], []
    for prompt, _ in items:
        rest = dict(kwargs)
        t, s = text_kwargs(ctx, spec.model_copy(update={"prompt": prompt}), pipe, rest)
        texts.append(t)
        said.append(s)
    rest = {k: v for k, v in kwargs.items() if k != "negative_prompt"}
    steps = record["steps"] or 0
    stacked = _stack(texts)
    if stacked is None:
        outs = [call(pipe, {**rest, **t}, seed, steps=steps, label=f"seed {seed}", step=ctx.step).images[0]
                for t, (_, seed) in zip(texts, items)]
        nsfw: list[Any] = [None] * len(items)
    else:
        label = f"{len(items)} images, seeds {items[0][1]}..{items[-1][1]}"
        out = call(pipe, {**rest, **stacked}, [seed for _, seed in items], steps=steps, label=label, step=ctx.step)
        outs, nsfw = list(out.images), list(getattr(out, "nsfw_content_detected", None) or [None] * len(items))
    results = []
    for image, flagged, s, (prompt, seed) in zip(outs, nsfw, said, items):
        if flagged:
            ctx.step.reporter.warn(f"the safety checker blacked out the image of seed {seed}.")
        results.append(Result({"width": image.width, "height": image.height, **record, "prompt": prompt, **s,
                               "seed": seed}, {"prompt": prompt}, image=image))
    return results


def _stack(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The text kwargs of several images as one call's: texts as lists, embeddings concatenated (same shapes)."""
    import torch

    keys = set(parts[0])
    if any(set(p) != keys for p in parts):
        return None
    out: dict[str, Any] = {}
    for key in keys:
        values = [p[key] for p in parts]
        if all(isinstance(v, str) for v in values):
            out[key] = values
        elif all(isinstance(v, torch.Tensor) for v in values) and len({tuple(v.shape) for v in values}) == 1:
            out[key] = torch.cat(values)
        else:
            return None
    return out
