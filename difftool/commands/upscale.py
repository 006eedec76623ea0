"""`difftool upscale`: enlarge images with a diffusion upscaler (x4, x2-latent, ldm-x4), tiled.

`-` reads image paths from stdin, so `difftool gen "a cat" -n 4 | difftool upscale -` works. Outputs go
beside each input as NAME.x4.png (never overwriting) unless -o says otherwise.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from difftool import config, console, options
from difftool.commands.common import guarded, load_options, read_lines, resolve_model
from difftool.errors import ModelUnavailable, UsageError
from difftool.images import result_paths

DEFAULT_UPSCALER = "x4"


@guarded
def upscale(
    images: Annotated[Optional[list[str]], typer.Argument(
        help="Input images; `-` reads image paths from stdin, one per line (optional with --from).",
        show_default=False, metavar="IMAGES")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="x4 (default), x2-latent, ldm-x4, or a hub id / folder holding one of those pipelines.",
        rich_help_panel=options.MODEL, show_default=False)] = None,
    prompt: Annotated[Optional[str], typer.Option(
        "--prompt", help="What the image shows (x4 and x2-latent use it to guide details; default empty).",
        rich_help_panel=options.GEN, show_default=False)] = None,
    negative: options.Negative = None,
    steps: options.Steps = None,
    guidance: options.Guidance = None,
    noise_level: Annotated[Optional[int], typer.Option(
        "--noise-level", min=0, help="x4: noise added to the input before upscaling (0-350; more = more invented "
        "detail; default 20).", rich_help_panel=options.GEN, show_default=False)] = None,
    seed: options.Seed = None,
    tile: Annotated[Optional[int], typer.Option(
        "--tile", min=0, help="Largest input tile in pixels; larger images are upscaled in overlapping tiles blended "
        "without seams (default per model: 128 for x4 and ldm-x4, 256 for x2-latent; 0 = never tile).",
        rich_help_panel=options.GEN, show_default=False)] = None,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="File, folder, or template with {name} {scale} {dir} {seed} {index} {model} {date}. "
        "Default: {dir}/{name}.x{scale}.png, beside the input.", rich_help_panel=options.OUT,
        show_default=False)] = None,
    overwrite: options.Overwrite = False,
    json_: options.Json = False,
    quiet: options.Quiet = False,
    device: options.Device = None,
    dtype: options.Dtype = None,
    offload: options.Offload = None,
    vae_tiling: options.VaeTiling = False,
    compile_: options.Compile = False,
    allow_pickle: options.AllowPickle = False,
    no_safety_checker: options.NoSafetyChecker = False,
    refresh: options.Refresh = False,
    from_: options.From = None,
    grid: options.Grid = False,
) -> None:
    """Upscale images (one PNG path per line on stdout); large ones in tiles, with bounded memory."""
    console.set_quiet(quiet)
    from difftool import replay

    images, model, prompt, negative, steps, guidance, noise_level, seed, tile, vae_tiling = replay.fill(
        from_, "upscale", {"images": replay.stored_file("source", listed=True),
                           "model": lambda s: s.get("model") if s.get("task") == "upscale" else None},  # not gen's
        images=images, model=model,
        prompt=prompt, negative=negative, steps=steps, guidance=guidance, noise_level=noise_level, seed=seed,
        tile=tile, vae_tiling=vae_tiling)
    from difftool.outputs import OutputPlan

    # not the `model` setting ($DIFFTOOL_MODEL, config file): that names a text-to-image model
    ref = resolve_model(config.lookup("upscaler", model, DEFAULT_UPSCALER))
    if ref.spec is not None and ref.spec.task != "upscale":
        raise ModelUnavailable(f"'{ref.text}' is a {ref.spec.description} model, not an upscaler; use -m x4, x2-latent or "
                         "ldm-x4 (or a hub id / folder of an upscaler pipeline).")
    opts = load_options(device, dtype, allow_pickle, no_safety_checker, refresh, offload, vae_tiling, False, compile_)
    paths = result_paths(read_lines(images or [], "image paths"))

    from difftool.tasks import upscale as task

    plan = OutputPlan(output if output is not None else task.DEFAULT_TARGET, overwrite=overwrite,
                      default_template=task.DEFAULT_TEMPLATE, fields=task.FIELDS)
    plan.validate(len(paths))
    req = task.UpscaleRequest(
        images=paths, prompt=prompt, negative=negative, steps=steps, guidance=guidance,
        noise_level=config.lookup("noise-level", noise_level, None, int), seed=seed,
        tile=config.lookup("tile", tile, None, int),
    )
    outcome = task.run(ref, req, opts, plan, as_json=json_)
    if grid:
        from difftool.tasks.common import write_grid

        write_grid(outcome.written, overwrite=overwrite, as_json=json_)
    if outcome.failed:
        raise UsageError(f"{outcome.failed} of {len(paths)} inputs failed (see above); the others were written.")
