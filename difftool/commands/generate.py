"""`difftool gen`: text to image."""

from __future__ import annotations

from typing import Annotated, Optional

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
    true_cfg: options.TrueCfg = None,
    max_sequence_length: options.MaxSequenceLength = None,
    quantize: options.Quantize = None,
    quantize_text: options.QuantizeText = None,
    transformer: options.Transformer = None,
    cache: options.Cache = None,
    cache_threshold: options.CacheThreshold = None,
) -> None:
    """Make images from text prompts (one PNG path per line on stdout)."""
    from difftool import replay
    from difftool.outputs import OutputPlan

    console.set_quiet(quiet)
    (prompts, model, negative, steps, guidance, seed, width, height, scheduler, lora, tiny_vae, vae_tiling,
     vae_slicing, config_ref, prior, prior_steps, prior_guidance, true_cfg, max_sequence_length, quantize, quantize_text,
     transformer, cache, cache_threshold) = replay.fill(
        from_, "gen", prompts=prompts, model=model, negative=negative, steps=steps, guidance=guidance, seed=seed,
        width=width, height=height, scheduler=scheduler, lora=lora, tiny_vae=tiny_vae, vae_tiling=vae_tiling,
        vae_slicing=vae_slicing, config_ref=config_ref, prior=prior, prior_steps=prior_steps,
        prior_guidance=prior_guidance, true_cfg=true_cfg, max_sequence_length=max_sequence_length, quantize=quantize,
        quantize_text=quantize_text, transformer=transformer, cache=cache, cache_threshold=cache_threshold)
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
                        compile_, tiny_vae, lora, quantize, quantize_text, transformer, cache, cache_threshold)
    opts.prior = prior
    plan = OutputPlan(config.lookup("output", output), overwrite=overwrite)
    texts = read_lines(prompts or [], "prompts")
    plan.validate(len(texts) * num_images)

    from difftool.tasks import text2img

    req = text2img.GenRequest(
        prompts=texts, negative=negative, steps=steps, guidance=guidance, seed=seed, width=width, height=height,
        num_images=num_images, scheduler=sched, prior_steps=config.lookup("prior-steps", prior_steps, None, int),
        prior_guidance=config.lookup("prior-guidance", prior_guidance, None, float),
        true_cfg=config.lookup("true-cfg", true_cfg, None, float),
        max_sequence_length=config.lookup("max-sequence-length", max_sequence_length, None, int),
    )
    paths = text2img.run(ref, req, opts, plan, as_json=json_)
    if grid:
        from difftool.tasks.common import write_grid

        write_grid(paths, overwrite=overwrite, as_json=json_)
