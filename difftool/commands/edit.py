"""`difftool img2img` and `difftool inpaint`: start from existing images.

IMAGE (and inpaint's MASK) may be `-`: paths are read from stdin, one per line, so
`difftool gen "a cat" -n 4 | difftool img2img - "in watercolor"` works. A missing or unreadable
input is reported naming the file; the other inputs still complete and the command exits 2.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from difftool import config, console, images, options, replay, schedulers
from difftool.commands.common import check_size, guarded, load_options, read_lines, resolve_model
from difftool.errors import UsageError

ImageArg = Annotated[Optional[str], typer.Argument(
    help="Input image; `-` reads image paths from stdin, one per line (optional with --from).", show_default=False,
    metavar="IMAGE")]
PromptArg = Annotated[Optional[str], typer.Argument(help="What the result should show (optional with --from).",
                                                    show_default=False, metavar="PROMPT")]
EditOutput = Annotated[Optional[str], typer.Option(
    "--output", "-o", help="File, folder, or template with {name} (the input's file name) {seed} {index} {prompt} "
    "{model} {date}. Default: ./{name}-{prompt}-{seed}.png.", rich_help_panel=options.OUT, show_default=False)]


def _plan(output: str | None, overwrite: bool, total: int) -> Any:
    from difftool.outputs import TEMPLATE_FIELDS, OutputPlan
    from difftool.tasks.img2img import DEFAULT_TEMPLATE

    plan = OutputPlan(config.lookup("output", output), overwrite=overwrite, default_template=DEFAULT_TEMPLATE,
                      fields=(*TEMPLATE_FIELDS, "name"))
    plan.validate(total)
    return plan


def _grid(grid: bool, outcome: Any, overwrite: bool, as_json: bool) -> None:
    if grid:
        from difftool.tasks.common import write_grid

        write_grid(outcome.written, overwrite=overwrite, as_json=as_json)


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
    image: ImageArg = None,
    prompt: PromptArg = None,
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
    output: EditOutput = None,
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
    lora: options.Lora = None,
    from_: options.From = None,
    grid: options.Grid = False,
    prior: options.Prior = None,
    prior_steps: options.PriorSteps = None,
    prior_guidance: options.PriorGuidance = None,
    true_cfg: options.TrueCfg = None,
    max_sequence_length: options.MaxSequenceLength = None,
    quantize: options.Quantize = None,
    quantize_text: options.QuantizeText = None,
    transformer: options.Transformer = None,
    cache: options.Cache = None,
    cache_threshold: options.CacheThreshold = None,
) -> None:
    """Repaint images following a prompt (one PNG path per line on stdout).

    The input is resized to what the model takes (multiples of 8, aspect kept, at most the model's native
    pixel count; --width/--height override, both = exactly that size, center-cropped). Output names default
    to ./{name}-{prompt}-{seed}.png; the PNG records the source's path and SHA-256.
    """
    console.set_quiet(quiet)
    (image, prompt, strength, model, negative, steps, guidance, seed, width, height, scheduler, lora, tiny_vae,
     vae_tiling, vae_slicing, config_ref, true_cfg, max_sequence_length, quantize, quantize_text, transformer, cache,
     cache_threshold) = replay.fill(
        from_, "img2img", {"image": replay.stored_file("source")}, image=image, prompt=prompt, strength=strength,
        model=model, negative=negative, steps=steps, guidance=guidance, seed=seed, width=width, height=height,
        scheduler=scheduler, lora=lora, tiny_vae=tiny_vae, vae_tiling=vae_tiling, vae_slicing=vae_slicing,
        config_ref=config_ref, true_cfg=true_cfg, max_sequence_length=max_sequence_length, quantize=quantize,
        quantize_text=quantize_text, transformer=transformer, cache=cache, cache_threshold=cache_threshold)
    if image is None or prompt is None:
        raise UsageError("img2img needs IMAGE and PROMPT (or --from IMAGE to re-run an image's settings).")
    ref = resolve_model(model, config_ref)
    req = _request(prompt, negative, steps, guidance, seed, width, height, num_images, scheduler, strength)
    req.prior_steps = config.lookup("prior-steps", prior_steps, None, int)
    req.prior_guidance = config.lookup("prior-guidance", prior_guidance, None, float)
    req.true_cfg = config.lookup("true-cfg", true_cfg, None, float)
    req.max_sequence_length = config.lookup("max-sequence-length", max_sequence_length, None, int)
    opts = load_options(device, dtype, allow_pickle, no_safety_checker, refresh, offload, vae_tiling, vae_slicing,
                        compile_, tiny_vae, lora, quantize, quantize_text, transformer, cache, cache_threshold)
    opts.prior = prior
    req.images = images.result_paths(read_lines([image], "image paths"))
    plan = _plan(output, overwrite, len(req.images) * num_images)

    from difftool.tasks import img2img as task

    outcome = task.run(ref, req, opts, plan, as_json=json_)
    _grid(grid, outcome, overwrite, json_)
    _finish(outcome, len(req.images))


@guarded
def inpaint(
    image: ImageArg = None,
    mask: Annotated[Optional[str], typer.Argument(help="Mask image: white = repaint, black = keep; `-` reads mask "
                                                  "paths from stdin (then IMAGE must be a file).",
                                                  show_default=False, metavar="MASK")] = None,
    prompt: PromptArg = None,
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
    output: EditOutput = None,
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
    lora: options.Lora = None,
    from_: options.From = None,
    grid: options.Grid = False,
    prior: options.Prior = None,
    prior_steps: options.PriorSteps = None,
    prior_guidance: options.PriorGuidance = None,
    true_cfg: options.TrueCfg = None,
    max_sequence_length: options.MaxSequenceLength = None,
    quantize: options.Quantize = None,
    quantize_text: options.QuantizeText = None,
    transformer: options.Transformer = None,
    cache: options.Cache = None,
    cache_threshold: options.CacheThreshold = None,
) -> None:
    """Repaint the white part of a mask following a prompt (one PNG path per line on stdout).

    A mask of another size than its image is resized to it (with a warning); a mask with nothing white is
    refused. Transparent mask pixels count as black. Sizes and output names as for img2img.
    """
    console.set_quiet(quiet)
    (image, mask, prompt, strength, model, negative, steps, guidance, seed, width, height, scheduler, lora, tiny_vae,
     vae_tiling, vae_slicing, config_ref, true_cfg, max_sequence_length, quantize, quantize_text, transformer, cache,
     cache_threshold) = replay.fill(
        from_, "inpaint", {"image": replay.stored_file("source"), "mask": replay.stored_file("mask")}, image=image,
        mask=mask, prompt=prompt, strength=strength, model=model, negative=negative, steps=steps, guidance=guidance,
        seed=seed, width=width, height=height, scheduler=scheduler, lora=lora, tiny_vae=tiny_vae,
        vae_tiling=vae_tiling, vae_slicing=vae_slicing, config_ref=config_ref, true_cfg=true_cfg,
        max_sequence_length=max_sequence_length, quantize=quantize, quantize_text=quantize_text,
        transformer=transformer, cache=cache, cache_threshold=cache_threshold)
    if image is None or mask is None or prompt is None:
        raise UsageError("inpaint needs IMAGE, MASK and PROMPT (or --from IMAGE to re-run an image's settings).")
    if image == "-" and mask == "-":
        raise UsageError("Only one of IMAGE and MASK can be `-` (read from stdin).")
    ref = resolve_model(model, config_ref)
    req = _request(prompt, negative, steps, guidance, seed, width, height, num_images, scheduler, strength)
    req.prior_steps = config.lookup("prior-steps", prior_steps, None, int)
    req.prior_guidance = config.lookup("prior-guidance", prior_guidance, None, float)
    req.true_cfg = config.lookup("true-cfg", true_cfg, None, float)
    req.max_sequence_length = config.lookup("max-sequence-length", max_sequence_length, None, int)
    opts = load_options(device, dtype, allow_pickle, no_safety_checker, refresh, offload, vae_tiling, vae_slicing,
                        compile_, tiny_vae, lora, quantize, quantize_text, transformer, cache, cache_threshold)
    opts.prior = prior
    req.images = images.result_paths(read_lines([image], "image paths"))
    req.masks = images.result_paths(read_lines([mask], "mask paths"))
    pairs = len(req.images) * len(req.masks)
    plan = _plan(output, overwrite, pairs * num_images)

    from difftool.tasks import inpaint as task

    outcome = task.run(ref, req, opts, plan, as_json=json_)
    _grid(grid, outcome, overwrite, json_)
    _finish(outcome, pairs)
