"""`difftool img2img` and `difftool inpaint`: start from existing images.

IMAGE (and inpaint's MASK) may be `-`: paths are read from stdin, one per line, so
`difftool gen "a cat" -n 4 | difftool img2img - "in watercolor"` works. A missing or unreadable
input is reported naming the file; the other inputs still complete and the command exits 2.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from difftool import config, console, options, schedulers
from difftool.commands.common import check_size, guarded, load_options, read_lines, resolve_model
from difftool.errors import UsageError

ImageArg = Annotated[str, typer.Argument(help="Input image; `-` reads image paths from stdin, one per line.",
                                         show_default=False)]
PromptArg = Annotated[str, typer.Argument(help="What the result should show.", show_default=False)]
EDIT_OUTPUT_HELP = "Default: ./{name}-{prompt}-{seed}.png ({name}: the input's file name)."


def _plan(output: str | None, overwrite: bool, total: int) -> Any:
    from difftool.outputs import TEMPLATE_FIELDS, OutputPlan
    from difftool.tasks.img2img import DEFAULT_TEMPLATE

    plan = OutputPlan(config.lookup("output", output), overwrite=overwrite, default_template=DEFAULT_TEMPLATE,
                      fields=(*TEMPLATE_FIELDS, "name"))
    plan.validate(total)
    return plan


def _finish(outcome: Any, inputs: int) -> None:
    if outcome.failed:
        raise UsageError(f"{outcome.failed} of {inputs} inputs failed (see above); the others were written.")


def _request(prompt: str, negative: str | None, steps: int | None, guidance: float | None, seed: int | None,
             width: int | None, height: int | None, num_images: int, scheduler: str | None,
             strength: float | None) -> Any:
    """Shared options -> EditRequest (flag > environment > config file), validated before torch loads."""
    from difftool.tasks.img2img import EditRequest

    if not prompt.strip():
        raise UsageError("The prompt is empty.")
    width = config.lookup("width", width, None, int)
    height = config.lookup("height", height, None, int)
    check_size(width, height)
    return EditRequest(
        prompts=[prompt], negative=config.lookup("negative", negative),
        steps=config.lookup("steps", steps, None, int), guidance=config.lookup("guidance", guidance, None, float),
        seed=seed, width=width, height=height, num_images=num_images,
        scheduler=schedulers.check_name(config.lookup("scheduler", scheduler)),
        strength=config.lookup("strength", strength, None, float),
    )


@guarded
def img2img(
    image: ImageArg,
    prompt: PromptArg,
    strength: options.Strength = None,
    model: options.Model = None,
    negative: options.Negative = None,
    steps: options.Steps = None,
    guidance: options.Guidance = None,
    seed: options.Seed = None,
    width: options.Width = None,
    height: options.Height = None,
    num_images: options.NumImages = 1,
    scheduler: options.Scheduler = None,
    output: options.Output = None,
    overwrite: options.Overwrite = False,
    json_: options.Json = False,
    quiet: options.Quiet = False,
    device: options.Device = None,
    dtype: options.Dtype = None,
    offload: options.Offload = None,
    vae_tiling: options.VaeTiling = False,
    vae_slicing: options.VaeSlicing = False,
    compile_: options.Compile = False,
    tiny_vae: options.TinyVae = None,
    config_ref: options.Config = None,
    allow_pickle: options.AllowPickle = False,
    no_safety_checker: options.NoSafetyChecker = False,
    refresh: options.Refresh = False,
) -> None:
    """Repaint images following a prompt (one PNG path per line on stdout).

    The input is resized to what the model takes (multiples of 8, aspect kept, at most the model's native
    pixel count; --width/--height override, both = exactly that size, center-cropped). Output names default
    to ./{name}-{prompt}-{seed}.png; the PNG records the source's path and SHA-256.
    """
    console.set_quiet(quiet)
    ref = resolve_model(model, config_ref)
    req = _request(prompt, negative, steps, guidance, seed, width, height, num_images, scheduler, strength)
    opts = load_options(device, dtype, allow_pickle, no_safety_checker, refresh, offload, vae_tiling, vae_slicing,
                        compile_, tiny_vae)
    req.images = read_lines([image], "image paths")
    plan = _plan(output, overwrite, len(req.images) * num_images)

    from difftool.tasks import img2img as task

    _finish(task.run(ref, req, opts, plan, as_json=json_), len(req.images))


@guarded
def inpaint(
    image: ImageArg,
    mask: Annotated[str, typer.Argument(help="Mask image: white = repaint, black = keep; `-` reads mask paths "
                                        "from stdin (then IMAGE must be a file).", show_default=False)],
    prompt: PromptArg,
    strength: options.Strength = None,
    model: options.Model = None,
    negative: options.Negative = None,
    steps: options.Steps = None,
    guidance: options.Guidance = None,
    seed: options.Seed = None,
    width: options.Width = None,
    height: options.Height = None,
    num_images: options.NumImages = 1,
    scheduler: options.Scheduler = None,
    output: options.Output = None,
    overwrite: options.Overwrite = False,
    json_: options.Json = False,
    quiet: options.Quiet = False,
    device: options.Device = None,
    dtype: options.Dtype = None,
    offload: options.Offload = None,
    vae_tiling: options.VaeTiling = False,
    vae_slicing: options.VaeSlicing = False,
    compile_: options.Compile = False,
    tiny_vae: options.TinyVae = None,
    config_ref: options.Config = None,
    allow_pickle: options.AllowPickle = False,
    no_safety_checker: options.NoSafetyChecker = False,
    refresh: options.Refresh = False,
) -> None:
    """Repaint the white part of a mask following a prompt (one PNG path per line on stdout).

    A mask of another size than its image is resized to it (with a warning); a mask with nothing white is
    refused. Transparent mask pixels count as black. Sizes and output names as for img2img.
    """
    console.set_quiet(quiet)
    if image == "-" and mask == "-":
        raise UsageError("Only one of IMAGE and MASK can be `-` (read from stdin).")
    ref = resolve_model(model, config_ref)
    req = _request(prompt, negative, steps, guidance, seed, width, height, num_images, scheduler, strength)
    opts = load_options(device, dtype, allow_pickle, no_safety_checker, refresh, offload, vae_tiling, vae_slicing,
                        compile_, tiny_vae)
    req.images = read_lines([image], "image paths")
    req.masks = read_lines([mask], "mask paths")
    pairs = len(req.images) * len(req.masks)
    plan = _plan(output, overwrite, pairs * num_images)

    from difftool.tasks import inpaint as task

    _finish(task.run(ref, req, opts, plan, as_json=json_), pairs)
