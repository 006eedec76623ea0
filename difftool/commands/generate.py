"""`difftool gen`: text to image."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from difftool import config, console, options, schedulers
from difftool.commands.common import check_size, guarded, load_options, read_lines, resolve_model


@guarded
def gen(
    prompts: Annotated[Optional[list[str]], typer.Argument(
        help="Prompts; `-` reads prompts from stdin, one per line (optional with --from).", show_default=False)] = None,
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
    lora: options.Lora = None,
    from_: options.From = None,
    grid: options.Grid = False,
    prior: options.Prior = None,
    prior_steps: options.PriorSteps = None,
    prior_guidance: options.PriorGuidance = None,
    weighting: options.Weighting = None,
    clip_skip: options.ClipSkip = None,
    lora_dir: options.LoraDir = None,
    hires_scale: options.Hires = None,
    hires_steps: options.HiresSteps = None,
    hires_denoise: options.HiresDenoise = None,
    hires_upscaler: options.HiresUpscaler = None,
) -> None:
    """Make images from text prompts (one PNG path per line on stdout)."""
    from difftool import replay
    from difftool.outputs import OutputPlan

    console.set_quiet(quiet)
    (prompts, model, negative, steps, guidance, seed, width, height, scheduler, lora, tiny_vae, vae_tiling,
     vae_slicing, config_ref, prior, prior_steps, prior_guidance, weighting, clip_skip, lora_dir, hires_scale,
     hires_steps, hires_denoise, hires_upscaler) = replay.fill(
        from_, "gen", prompts=prompts, model=model, negative=negative, steps=steps, guidance=guidance, seed=seed,
        width=width, height=height, scheduler=scheduler, lora=lora, tiny_vae=tiny_vae, vae_tiling=vae_tiling,
        vae_slicing=vae_slicing, config_ref=config_ref, prior=prior, prior_steps=prior_steps,
        prior_guidance=prior_guidance, weighting=weighting, clip_skip=clip_skip, lora_dir=lora_dir,
        hires_scale=hires_scale, hires_steps=hires_steps, hires_denoise=hires_denoise, hires_upscaler=hires_upscaler)
    if prior is not None and prior == model:  # a combined Kandinsky folder records itself as its prior
        prior = None
    ref = resolve_model(model, config_ref)  # first, so the config file's [models.X] table applies below
    negative = config.lookup("negative", negative)
    steps = config.lookup("steps", steps, None, int)
    guidance = config.lookup("guidance", guidance, None, float)
    width = config.lookup("width", width, None, int)
    height = config.lookup("height", height, None, int)
    check_size(width, height)
    sched = schedulers.check_name(config.lookup("scheduler", scheduler))
    opts = load_options(device, dtype, allow_pickle, no_safety_checker, refresh, offload, vae_tiling, vae_slicing,
                        compile_, tiny_vae, lora)
    opts.prior = prior
    plan = OutputPlan(config.lookup("output", output), overwrite=overwrite)
    texts = read_lines(prompts or [], "prompts")
    plan.validate(len(texts) * num_images)
    extras = prompt_options(texts, negative, opts, allow_pickle, weighting, clip_skip, lora_dir, hires_scale,
                            hires_steps, hires_denoise, hires_upscaler)

    from difftool.tasks import text2img

    req = text2img.GenRequest(
        prompts=texts, negative=negative, steps=steps, guidance=guidance, seed=seed, width=width, height=height,
        num_images=num_images, scheduler=sched, prior_steps=config.lookup("prior-steps", prior_steps, None, int),
        prior_guidance=config.lookup("prior-guidance", prior_guidance, None, float), **extras,
    )
    paths = text2img.run(ref, req, opts, plan, as_json=json_)
    if grid:
        from difftool.tasks.common import write_grid

        write_grid(paths, overwrite=overwrite, as_json=json_)


def prompt_options(texts: list[str], negative: str | None, opts: Any, allow_pickle: bool, weighting: str | None,
                   clip_skip: int | None, lora_dir: list[str] | None, hires_scale: float | None,
                   hires_steps: int | None, hires_denoise: float | None, hires_upscaler: str | None) -> dict[str, Any]:
    """--weighting, --clip-skip, --lora-dir (prompt tags: their LoRAs join opts.lora) and --hires*, from flags >
    environment > config file, validated before anything loads; the GenRequest fields they fill."""
    from pathlib import Path

    from difftool import hires, lora_tags, prompts

    dirs = config.lookup("lora-dir", lora_dir or None, None, config.cast_for("lora-dir"))
    dirs = [dirs] if isinstance(dirs, str) else list(dirs or [])
    tags = lora_tags.plan(texts, negative, opts.lora, [Path(str(d)).expanduser() for d in dirs], allow_pickle)
    opts.lora = tags.adapters
    return {
        "weighting": prompts.check_weighting(config.lookup("weighting", weighting)),
        "clip_skip": prompts.check_clip_skip(config.lookup("clip-skip", clip_skip, None, int)),
        "hires": hires.check(config.lookup("hires", hires_scale, None, float),
                             config.lookup("hires-steps", hires_steps, None, int),
                             config.lookup("hires-denoise", hires_denoise, None, float),
                             config.lookup("hires-upscaler", hires_upscaler)),
        "tags": tags if any(a.tag for a in tags.adapters) else None,
        "lora_dir": [str(d) for d in dirs] or None,
    }
