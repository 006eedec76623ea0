"""`difftool img2img`: repaint existing images with any pipeline AutoPipelineForImage2Image serves.

Built on gen's request machinery (`GenRequest`, registry defaults, `call_kwargs`, `recorded`) and
`run_jobs`; this module adds the input images: each is checked before the model loads, a bad one is
reported (naming the file) and skipped while the others complete, and the command exits 2 at the end.
Inpainting (`tasks/inpaint.py`) is the same flow with a mask per job.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from difftool import callrules, console, images, schedulers
from difftool.errors import UsageError
from difftool.loading import Loaded, LoadOptions, call_defaults, check_accepts, load_pipeline
from difftool.outputs import OutputPlan
from difftool.references import ModelRef
from difftool.tasks.common import Job, run_jobs
from difftool.tasks.text2img import GenRequest, call_kwargs, recorded, seeds, with_registry_defaults

#: Default img2img strength for models the registry does not know.
DEFAULT_STRENGTH = 0.6
#: Default output names: the input's name, the prompt and the seed, in the current folder.
DEFAULT_TEMPLATE = "{name}-{prompt}-{seed}.png"


@dataclass
class EditRequest(GenRequest):
    """A GenRequest (one prompt) plus the input images; width/height are the user's override only."""

    images: list[str] = field(default_factory=list)
    masks: list[str] = field(default_factory=list)
    strength: float | None = None


@dataclass
class Source:
    """One input that passed its checks: the image's header info, and for inpainting its mask (decoded)."""

    info: images.ImageInfo
    mask: Any = None
    mask_info: images.ImageInfo | None = None


@dataclass
class Outcome:
    written: list[Path]
    failed: int


def check_inputs(paths: list[str]) -> tuple[list[images.ImageInfo], list[str]]:
    """Probe every input (headers only): the good ones, and one error message per bad one."""
    good: list[images.ImageInfo] = []
    errors: list[str] = []
    for path in paths:
        try:
            good.append(images.probe(path))
        except UsageError as exc:
            errors.append(exc.message)
    return good, errors


def report_bad(errors: list[str], total: int, what: str = "input images") -> None:
    """Print the bad inputs' errors; if nothing is left to do, stop now (exit 2) before loading a model."""
    if errors and len(errors) == total:
        if total == 1:
            raise UsageError(errors[0])
        for message in errors:
            console.error(message)
        raise UsageError(f"None of the {total} {what} could be read.")
    for message in errors:
        console.error(message)


def native_area(ref: ModelRef, loaded: Loaded) -> int:
    """The pixel count the model is made for: the registry's size, else the pipeline's default sample size."""
    spec = ref.spec
    if spec is not None and spec.width and spec.height:
        return spec.width * spec.height
    pipe = loaded.pipe
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
        return callrules.size_multiple(pipe)
    factor = 2 ** (len(movq.config.block_out_channels) - 1)
    return max(8, factor * factor)


def swaps_size(pipe: Any) -> bool:
    """Whether the (decoder) pipeline hands `width, height` to `image_processor.preprocess(image, height, width)`:
    Kandinsky 2.1/2.2 img2img in diffusers 0.42 do, which turns a 64x48 input into a 48x64 result. Passing the
    two swapped undoes it (the image is already at its size, so preprocessing leaves it as it is)."""
    import inspect

    target = getattr(pipe, "decoder_pipe", None) or pipe
    try:
        return "preprocess(i, width, height)" in inspect.getsource(type(target).__call__)
    except (OSError, TypeError):
        return False


def prepare(ref: ModelRef, req: EditRequest, opts: LoadOptions, task: str, strength_default: float | None,
            ) -> tuple[Loaded, EditRequest, dict[str, Any], dict[str, Any]]:
    """Load the pipeline and work out the kwargs and recorded settings shared by every image."""
    user_w, user_h, user_steps = req.width, req.height, req.steps
    req = replace(with_registry_defaults(ref, req), width=user_w, height=user_h)
    loaded = load_pipeline(ref, task, opts)
    if req.scheduler:
        schedulers.apply(loaded.pipe, req.scheduler)
    kwargs = call_kwargs(loaded, replace(req, width=None, height=None))  # sizes are applied to the image itself
    strength = req.strength if req.strength is not None else strength_default
    if req.strength is None and "strength" not in call_defaults(loaded.pipe):
        strength = None  # edit pipelines (Flux Kontext, Flux.2, Qwen-Image-Edit) take no strength
    if strength is not None:
        check_accepts(loaded.pipe, {"strength": "--strength"})
        kwargs["strength"] = strength
    defaults = call_defaults(loaded.pipe)
    steps = kwargs.get("num_inference_steps", defaults.get("num_inference_steps"))
    used = strength if strength is not None else defaults.get("strength")
    if isinstance(steps, int) and isinstance(used, (int, float)) and int(steps * used) < 1:
        if user_steps is None and used > 0:  # a few-step model's default (sd-turbo: 1 step): take enough steps
            steps = math.ceil(1 / used)
            while int(steps * used) < 1:  # float rounding (1/3 * 3 = 0.999...)
                steps += 1
            kwargs["num_inference_steps"] = req.steps = steps
            console.info(f"{steps} steps, so that strength {used:g} leaves at least one denoising step")
    if isinstance(steps, int) and isinstance(used, (int, float)) and int(steps * used) < 1:
        raise UsageError(f"--strength {used:g} with {steps} steps leaves no denoising step; "
                         f"raise --strength or --steps (at least {steps} x strength >= 1).")
    settings = {**recorded(loaded, req, kwargs, task), "strength": used}
    settings["denoise_steps"] = int(steps * used) if isinstance(steps, int) and isinstance(used, (int, float)) else None
    return loaded, req, kwargs, settings


def work_size(src: images.ImageInfo, req: EditRequest, loaded: Loaded, area: int) -> tuple[int, int]:
    multiple = size_multiple(loaded.pipe)
    for flag, value in (("--width", req.width), ("--height", req.height)):
        if value is not None and value % multiple:
            raise UsageError(f"{flag} {value} is not a multiple of {multiple}, which {type(loaded.pipe).__name__} needs.")
    return images.fit_size(src.width, src.height, req.width, req.height, area, multiple)


def run_edits(
    ref: ModelRef, req: EditRequest, opts: LoadOptions, plan: OutputPlan, sources: list[Source], failed: int,
    task: str, strength_default: float | None, as_json: bool = False,
) -> Outcome:
    """Load once, then make `num_images` images per source (image i uses seed+i); a source that fails to
    decode is reported and skipped."""
    loaded, req, kwargs, settings = prepare(ref, req, opts, task, strength_default)
    area = native_area(ref, loaded)
    sized = {k: k in call_defaults(loaded.pipe) for k in ("width", "height")}
    first = seeds(req)
    prompt = req.prompts[0]
    total = len(sources) * req.num_images
    bad = [failed]

    def jobs() -> Iterator[Job]:
        for src in sources:
            try:
                width, height = work_size(src.info, req, loaded, area)
                image = images.resize_cover(images.load(src.info.path), width, height)
                extra: dict[str, Any] = {"source": str(src.info.path.resolve()),
                                         "source_sha256": images.sha256(src.info.path)}
                call: dict[str, Any] = {"prompt": prompt, "image": image, **kwargs}
                if src.mask is not None and src.mask_info is not None:
                    call["mask_image"] = images.resize_cover(src.mask, width, height)
                    extra.update(mask=str(src.mask_info.path.resolve()), mask_sha256=images.sha256(src.mask_info.path))
                call.update({k: v for k, v in (("width", width), ("height", height)) if sized[k]})
                call.update(callrules.size_kwargs(loaded.pipe, width, height))  # Flux Kontext: max_area
                if sized["width"] and swaps_size(loaded.pipe):
                    call["width"], call["height"] = height, width
            except UsageError as exc:
                console.error(exc.message)
                bad[0] += 1
                continue
            if (width, height) != (src.info.width, src.info.height):
                console.info(f"{src.info.path}: {src.info.width}x{src.info.height} resized to {width}x{height}")
            for i in range(req.num_images):
                seed = first + i
                yield Job(
                    kwargs=call,
                    seed=seed,
                    settings={**settings, "prompt": prompt, "seed": seed, **extra},
                    name_fields={"prompt": prompt, "name": src.info.name},
                    steps=settings["denoise_steps"] or settings["steps"] or 0,
                )

    written = run_jobs(loaded, jobs(), plan, total, as_json)
    return Outcome(written, bad[0])


def run(ref: ModelRef, req: EditRequest, opts: LoadOptions, plan: OutputPlan, as_json: bool = False) -> Outcome:
    """img2img over every readable input image."""
    good, errors = check_inputs(req.images)
    report_bad(errors, len(req.images))
    spec_strength = ref.spec.strength if ref.spec is not None else DEFAULT_STRENGTH
    return run_edits(ref, req, opts, plan, [Source(info) for info in good], len(errors), "img2img", spec_strength,
                     as_json)
