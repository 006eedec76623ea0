"""`img2img` and `inpaint`: repaint an input image (inpaint: only the mask's white part) following a prompt, with
any pipeline AutoPipelineForImage2Image / AutoPipelineForInpainting serves.

The input is resized to what the model takes: multiples of its size step, aspect kept, at most the model's
native pixel count; `width`/`height` override (both: exactly that size, center-cropped). A mask of another size
than its image is resized to it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from typing import Any

from difftool import callrules, images, schedulers
from difftool.errors import UsageError
from difftool.tasks import inputs
from difftool.tasks.base import (
    Context,
    Result,
    base_record,
    call,
    call_defaults,
    call_kwargs,
    check_accepts,
    image_result,
    ran,
    text_kwargs,
)

#: Default img2img strength for models the registry does not know.
DEFAULT_STRENGTH = 0.6


def native_area(ctx: Context, pipe: Any) -> int:
    """The pixel count the model is made for: the registry's size, else the pipeline's default sample size."""
    defaults = ctx.defaults()
    if defaults.get("width") and defaults.get("height"):
        return int(defaults["width"]) * int(defaults["height"])
    unet = getattr(pipe, "unet", None)
    sample = getattr(getattr(unet, "config", None), "sample_size", None)
    factor = getattr(pipe, "vae_scale_factor", None)
    if isinstance(sample, int) and isinstance(factor, int) and getattr(pipe, "movq", None) is None:
        return (sample * factor) ** 2
    default = getattr(pipe, "default_sample_size", None)
    if isinstance(default, int) and isinstance(factor, int):
        return (default * factor) ** 2
    return 512 * 512


def size_multiple(pipe: Any) -> int:
    """Sizes the pipeline takes: multiples of 8; for Kandinsky, of the MoVQ factor squared (64 for the real
    models), since Kandinsky rounds other sizes up."""
    movq = getattr(pipe, "movq", None)
    if movq is None:
        return callrules.size_multiple(pipe)  # packed-latent DiTs: 16
    factor = 2 ** (len(movq.config.block_out_channels) - 1)
    return max(8, factor * factor)


def swaps_size(pipe: Any) -> bool:
    """Whether the (decoder) pipeline hands `width, height` to `image_processor.preprocess(image, height, width)`:
    Kandinsky 2.1/2.2 img2img in diffusers 0.42 do, which turns a 64x48 input into a 48x64 result. Passing the
    two swapped undoes it (the image is already at its size, so preprocessing leaves it as it is)."""
    target = getattr(pipe, "decoder_pipe", None) or pipe
    try:
        return "preprocess(i, width, height)" in inspect.getsource(type(target).__call__)
    except (OSError, TypeError):
        return False


def strength_steps(ctx: Context, spec: Any, pipe: Any, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The strength and steps to run: a few-step model's default (sd-turbo: 1 step) gets enough steps for its
    strength to leave one denoising step; otherwise strength x steps < 1 is refused (exit 2)."""
    strength = spec.strength
    if strength is None and spec.task == "img2img" and "strength" in call_defaults(pipe):  # edit models take none
        strength = ctx.defaults().get("strength", DEFAULT_STRENGTH) if ctx.ref.spec else DEFAULT_STRENGTH
    if strength is not None:
        check_accepts(pipe, {"strength": "--strength"}, ctx.ref.label)
        kwargs["strength"] = strength
    defaults = call_defaults(pipe)
    steps = kwargs.get("num_inference_steps", defaults.get("num_inference_steps"))
    used = strength if strength is not None else defaults.get("strength")
    if isinstance(steps, int) and isinstance(used, (int, float)) and int(steps * used) < 1:
        if spec.steps is None and used > 0:
            steps = math.ceil(1 / used)
            while int(steps * used) < 1:  # float rounding (1/3 * 3 = 0.999...)
                steps += 1
            kwargs["num_inference_steps"] = steps
            ctx.step.reporter.info(f"{steps} steps, so that strength {used:g} leaves at least one denoising step")
        else:
            raise UsageError(f"--strength {used:g} with {steps} steps leaves no denoising step; "
                             f"raise --strength or --steps (at least {steps} x strength >= 1).")
    return used, steps


def work_size(src: Any, spec: Any, pipe: Any, area: int) -> tuple[int, int]:
    multiple = size_multiple(pipe)
    for flag, value in (("--width", spec.width), ("--height", spec.height)):
        if value is not None and value % multiple:
            raise UsageError(f"{flag} {value} is not a multiple of {multiple}, which {type(pipe).__name__} needs.")
    return images.fit_size(src.width, src.height, spec.width, spec.height, max_area=area, multiple=multiple)


def run(ctx: Context, spec: Any) -> Iterator[Result]:
    """img2img or inpaint (spec.task) of one input; image i uses seed + i."""
    task = spec.task
    source = inputs.source(spec)
    mask = inputs.mask(spec) if task == "inpaint" else None
    loaded = ctx.pipeline(task)
    pipe = loaded.pipe
    scheduler = ctx.value(spec, "scheduler")
    if scheduler:
        schedulers.apply(pipe, scheduler)
    values = {key: ctx.value(spec, key) for key in ("steps", "guidance", "prior_steps", "prior_guidance", "true_cfg",
                                                    "max_sequence_length")}
    kwargs = call_kwargs(pipe, {"negative": spec.negative, **values}, loaded.ref.label)
    used, steps = strength_steps(ctx, spec, pipe, kwargs)
    width, height = work_size(source.image, spec, pipe, native_area(ctx, pipe))
    if (width, height) != source.image.size:
        ctx.step.reporter.info(f"{source.path or 'input'}: {source.image.width}x{source.image.height} resized to "
                               f"{width}x{height}")
    record = {**base_record(loaded, task), "prompt": spec.prompt, "negative": spec.negative, **ran(pipe, kwargs),
              "strength": used, **source.record("source")}
    texts, said = text_kwargs(ctx, spec, pipe, kwargs)
    record.update(said)
    call_args: dict[str, Any] = {**texts, "image": images.resize_cover(source.image, width, height), **kwargs}
    if mask is not None:
        picture = mask.image
        if picture.size != source.image.size:
            ctx.step.reporter.warn(f"mask '{mask.path or 'mask'}' is {picture.width}x{picture.height} but image "
                                   f"'{source.path or 'input'}' is {source.image.width}x{source.image.height}: the "
                                   "mask is resized to the image.")
            picture = picture.resize(source.image.size)
        call_args["mask_image"] = images.resize_cover(picture, width, height)
        record.update(mask.record("mask"))
    if ctx.guides:  # ControlNet / IP-Adapter images at the working size
        guided, said = ctx.guides.call(loaded, width, height)
        call_args.update(guided)
        record.update(said)
    sized = call_defaults(pipe)
    call_args.update({k: v for k, v in (("width", width), ("height", height)) if k in sized})
    call_args.update(callrules.size_kwargs(pipe, width, height))  # Flux Kontext: max_area
    if "width" in sized and swaps_size(pipe):
        call_args["width"], call_args["height"] = height, width
    denoise = int(steps * used) if isinstance(steps, int) and isinstance(used, (int, float)) else None
    record["denoise_steps"] = denoise
    for i in range(spec.num_images):
        seed = ctx.first_seed + i
        label = f"{source.name} image {i + 1}/{spec.num_images} seed {seed}"
        out = call(pipe, call_args, seed, steps=denoise or steps or 0, label=label, step=ctx.step)
        yield image_result(out, {**record, "seed": seed}, {"prompt": spec.prompt, "name": source.name}, ctx.step)
