"""`difftool variation` and `difftool interpolate`: the unCLIP (Kandinsky 2.1/2.2) commands.

Both default to `kandinsky22` (-m picks another Kandinsky model; other models are refused with exit 2) and
take gen's model, generation, output and speed/memory options plus the prior's.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from difftool import config, console, options, replay, schedulers
from difftool.commands.common import check_size, guarded, load_options, read_lines, resolve_model
from difftool.errors import UsageError

#: The model these commands use without -m (DIFFTOOL_MODEL/the config file's model usually name a gen model).
DEFAULT_UNCLIP_MODEL = "kandinsky22"


def _common(model: str | None, negative: str | None, steps: int | None, guidance: float | None, seed: int | None,
            width: int | None, height: int | None, num_images: int, scheduler: str | None, prior_steps: int | None,
            prior_guidance: float | None) -> tuple[Any, dict[str, Any]]:
    """The model reference and the request fields shared by both commands (flag > environment > config file)."""
    ref = resolve_model(model or DEFAULT_UNCLIP_MODEL)
    width = config.lookup("width", width, None, int)
    height = config.lookup("height", height, None, int)
    check_size(width, height)
    fields = dict(
        negative=config.lookup("negative", negative), steps=config.lookup("steps", steps, None, int),
        guidance=config.lookup("guidance", guidance, None, float), seed=seed, width=width, height=height,
        num_images=num_images, scheduler=schedulers.check_name(config.lookup("scheduler", scheduler)),
        prior_steps=config.lookup("prior-steps", prior_steps, None, int),
        prior_guidance=config.lookup("prior-guidance", prior_guidance, None, float),
    )
    return ref, fields


#: --from: the model and prior of an unCLIP image only (a gen image's model may not be unCLIP).
_SAME_TASK = {"model": replay.same_task("model", "variation", "interpolate"),
              "prior": replay.same_task("prior", "variation", "interpolate")}


def _stored_weights(settings: dict[str, Any]) -> str | None:
    """--from: interpolate's recorded weights as --weights (equal weights stay the default, which is exact)."""
    values = settings.get("weights")
    if settings.get("task") != "interpolate" or not isinstance(values, list) or not values:
        return None
    if max(values) - min(values) < 1e-6:
        return None
    return ",".join(repr(float(v)) for v in values)


def _plan(output: str | None, overwrite: bool, template: str, total: int) -> Any:
    from difftool.outputs import TEMPLATE_FIELDS, OutputPlan

    plan = OutputPlan(config.lookup("output", output), overwrite=overwrite, default_template=template,
                      fields=(*TEMPLATE_FIELDS, "name", "frame"))
    plan.validate(total)
    return plan


@guarded
def variation(
    images: Annotated[Optional[list[str]], typer.Argument(
        help="Input images; `-` reads image paths from stdin, one per line.", show_default=False,
        metavar="IMAGE...")] = None,
    prompt: Annotated[Optional[str], typer.Option(
        "--prompt", help="Also steer the variations with this text (mixed in by --prompt-weight).",
        rich_help_panel=options.GEN, show_default=False)] = None,
    prompt_weight: Annotated[Optional[float], typer.Option(
        "--prompt-weight", min=0.0, max=1.0, help="Share of --prompt in the mix, 0..1 (the image gets the rest). "
        "Default: 0.3.", rich_help_panel=options.GEN, show_default=False)] = None,
    num_images: options.NumImages = 1,
    model: options.Model = None,
    prior: options.Prior = None,
    negative: options.Negative = None,
    steps: options.Steps = None,
    guidance: options.Guidance = None,
    prior_steps: options.PriorSteps = None,
    prior_guidance: options.PriorGuidance = None,
    seed: options.Seed = None,
    width: options.Width = None,
    height: options.Height = None,
    scheduler: options.Scheduler = None,
    output: options.Output = None,
    overwrite: options.Overwrite = False,
    json_: options.Json = False,
    quiet: options.Quiet = False,
    grid: options.Grid = False,
    device: options.Device = None,
    dtype: options.Dtype = None,
    offload: options.Offload = None,
    vae_tiling: options.VaeTiling = False,
    vae_slicing: options.VaeSlicing = False,
    compile_: options.Compile = False,
    tiny_vae: options.TinyVae = None,
    allow_pickle: options.AllowPickle = False,
    no_safety_checker: options.NoSafetyChecker = False,
    refresh: options.Refresh = False,
    lora: options.Lora = None,
    from_: options.From = None,
) -> None:
    """New images from images, the unCLIP way: the prior's CLIP image encoder embeds each input and the decoder
    draws from that embedding (one PNG path per line on stdout).

    Default model: kandinsky22. Image i of an input uses seed+i; output names default to
    ./{name}-variation-{seed}.png ({name}: the input's file name; with --prompt: {name}-{prompt}-{seed}.png).
    """
    console.set_quiet(quiet)
    (images, prompt, prompt_weight, model, prior, negative, steps, guidance, prior_steps, prior_guidance, seed, width,
     height, scheduler, lora, tiny_vae, vae_tiling, vae_slicing) = replay.fill(
        from_, "variation", {"images": replay.stored_file("source", listed=True), **_SAME_TASK}, images=images,
        prompt=prompt, prompt_weight=prompt_weight, model=model, prior=prior, negative=negative, steps=steps,
        guidance=guidance, prior_steps=prior_steps, prior_guidance=prior_guidance, seed=seed, width=width,
        height=height, scheduler=scheduler, lora=lora, tiny_vae=tiny_vae, vae_tiling=vae_tiling,
        vae_slicing=vae_slicing)
    prior = None if prior is not None and prior == model else prior  # a combined folder records itself
    if prompt_weight is not None and prompt is None:
        raise UsageError("--prompt-weight needs --prompt.")
    if prompt is not None and not prompt.strip():
        raise UsageError("The --prompt is empty.")
    ref, fields = _common(model, negative, steps, guidance, seed, width, height, num_images, scheduler, prior_steps,
                          prior_guidance)
    opts = load_options(device, dtype, allow_pickle, no_safety_checker, refresh, offload, vae_tiling, vae_slicing,
                        compile_, tiny_vae, lora)
    opts.prior = prior
    sources = read_lines(images or [], "image paths")

    from difftool.tasks import unclip

    plan = _plan(output, overwrite, unclip.VARIATION_TEMPLATE, len(sources) * num_images)
    req = unclip.UnclipRequest(prompts=[], sources=sources, variation_prompt=prompt, prompt_weight=prompt_weight,
                               **fields)
    written, failed = unclip.variation(ref, req, opts, plan, as_json=json_)
    if grid:
        from difftool.tasks.common import write_grid

        write_grid(written, overwrite=overwrite, as_json=json_)
    if failed:
        raise UsageError(f"{failed} of {len(sources)} inputs failed (see above); the others were written.")


def _weights(text: str | None, count: int) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--weights '{text}' must be numbers separated by commas, e.g. 0.3,0.7.") from None
    if len(values) != count:
        raise UsageError(f"--weights has {len(values)} values for {count} items; give one weight per item.")
    if abs(sum(values) - 1.0) > 1e-3:
        console.warn(f"--weights add up to {sum(values):g}, not 1: the mixed embedding is scaled by that much.")
    return values


@guarded
def interpolate(
    items: Annotated[Optional[list[str]], typer.Argument(
        help="Two or more texts or image paths (an existing file is an image; anything else is a text; optional "
        "with --from).", show_default=False, metavar="ITEM ITEM...")] = None,
    weights: Annotated[Optional[str], typer.Option(
        "--weights", help="One weight per item, comma-separated, e.g. 0.3,0.7 (default: equal weights).",
        rich_help_panel=options.GEN, show_default=False)] = None,
    frames: Annotated[Optional[int], typer.Option(
        "--frames", min=2, help="Render N images along the path from the first item to the last (same seed for "
        "every frame), numbered in order.", rich_help_panel=options.GEN, show_default=False)] = None,
    gif: Annotated[bool, typer.Option("--gif", help="With --frames: also write an animated GIF of the frames.",
                                      rich_help_panel=options.OUT)] = False,
    num_images: options.NumImages = 1,
    model: options.Model = None,
    prior: options.Prior = None,
    negative: options.Negative = None,
    steps: options.Steps = None,
    guidance: options.Guidance = None,
    prior_steps: options.PriorSteps = None,
    prior_guidance: options.PriorGuidance = None,
    seed: options.Seed = None,
    width: options.Width = None,
    height: options.Height = None,
    scheduler: options.Scheduler = None,
    output: options.Output = None,
    overwrite: options.Overwrite = False,
    json_: options.Json = False,
    quiet: options.Quiet = False,
    grid: options.Grid = False,
    device: options.Device = None,
    dtype: options.Dtype = None,
    offload: options.Offload = None,
    vae_tiling: options.VaeTiling = False,
    vae_slicing: options.VaeSlicing = False,
    compile_: options.Compile = False,
    tiny_vae: options.TinyVae = None,
    allow_pickle: options.AllowPickle = False,
    no_safety_checker: options.NoSafetyChecker = False,
    refresh: options.Refresh = False,
    lora: options.Lora = None,
    from_: options.From = None,
) -> None:
    """Mix texts and images into one image: the prior turns each item into a CLIP image embedding, the weighted
    sum is drawn by the decoder (one PNG path per line on stdout).

    Default model: kandinsky22. Output names default to ./{prompt}-{seed}.png ({prompt}: the items), with
    --frames ./{prompt}-{seed}-{frame}.png ({frame}: 000, 001, ...) and, with --gif, ./{prompt}-{seed}.gif.
    """
    console.set_quiet(quiet)
    (items, weights, model, prior, negative, steps, guidance, prior_steps, prior_guidance, seed, width, height,
     scheduler, lora, tiny_vae, vae_tiling, vae_slicing) = replay.fill(
        from_, "interpolate", {"items": replay.stored_items, "weights": _stored_weights, **_SAME_TASK}, items=items,
        weights=weights, model=model, prior=prior, negative=negative, steps=steps, guidance=guidance,
        prior_steps=prior_steps, prior_guidance=prior_guidance, seed=seed, width=width, height=height,
        scheduler=scheduler, lora=lora, tiny_vae=tiny_vae, vae_tiling=vae_tiling, vae_slicing=vae_slicing)
    prior = None if prior is not None and prior == model else prior
    if from_ is not None and replay.given("items") and not replay.given("weights"):
        weights = None  # the stored weights belong to the stored items
    items = items or []
    if len(items) < 2:
        raise UsageError("interpolate needs at least two ITEMs (texts or image paths).")
    if gif and frames is None:
        raise UsageError("--gif needs --frames N.")
    if frames is not None and weights is not None:
        raise UsageError("--weights and --frames do not combine: --frames walks from the first item to the last.")
    if frames is not None and num_images > 1:
        raise UsageError("-n and --frames do not combine: every frame uses the same seed (pick it with --seed).")

    from difftool.tasks import unclip

    parsed = [unclip.classify(item) for item in items]
    mix = _weights(weights, len(parsed))
    ref, fields = _common(model, negative, steps, guidance, seed, width, height, num_images, scheduler, prior_steps,
                          prior_guidance)
    opts = load_options(device, dtype, allow_pickle, no_safety_checker, refresh, offload, vae_tiling, vae_slicing,
                        compile_, tiny_vae, lora)
    opts.prior = prior
    template = unclip.FRAMES_TEMPLATE if frames else unclip.INTERPOLATE_TEMPLATE
    plan = _plan(output, overwrite, template, frames or num_images)
    req = unclip.UnclipRequest(prompts=[], items=parsed, weights=mix, frames=frames, gif=gif, **fields)
    written = unclip.interpolate(ref, req, opts, plan, as_json=json_)
    if grid:
        from difftool.tasks.common import write_grid

        write_grid(written, overwrite=overwrite, as_json=json_)
