"""`difftool upscale`: enlarge images with a diffusion upscaler (x4, x2-latent, ldm-x4), tiled.

`-` reads image paths from stdin, so `difftool gen "a cat" -n 4 | difftool upscale -` works. Outputs go
beside each input as NAME.x4.png (never overwriting) unless -o says otherwise.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from difftool import options
from difftool.commands.common import guarded
from difftool.commands.groups import MODEL, OUTPUT, SAMPLING, SPEED, Flags, pick, uses

#: The shared options an upscaler takes (its own --model, --prompt, --tile, ... are declared below).
UPSCALE = pick(SAMPLING + MODEL + SPEED + OUTPUT, "negative", "steps", "guidance", "seed", "device", "dtype", "offload",
               "vae_tiling", "compile_", "allow_pickle", "no_safety_checker", "refresh", "overwrite", "json_", "quiet",
               "grid", "from_", "no_server")
FIELDS = ("seed", "index", "model", "date", "name", "scale", "dir")


@guarded
@uses(UPSCALE)
def upscale(
    images_: Annotated[Optional[list[str]], typer.Argument(
        help="Input images; `-` reads image paths from stdin, one per line (optional with --from).",
        show_default=False, metavar="IMAGES")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="x4 (default), x2-latent, ldm-x4, or a hub id / folder holding one of those pipelines.",
        rich_help_panel=options.MODEL, show_default=False)] = None,
    prompt: Annotated[Optional[str], typer.Option(
        "--prompt", help="What the image shows (x4 and x2-latent use it to guide details; default empty).",
        rich_help_panel=options.GEN, show_default=False)] = None,
    noise_level: Annotated[Optional[int], typer.Option(
        "--noise-level", help="x4: noise added to the input before upscaling (0-350; more = more invented "
        "detail; default 20).", rich_help_panel=options.GEN, show_default=False)] = None,
    tile: Annotated[Optional[int], typer.Option(
        "--tile", help="Largest input tile in pixels; larger images are upscaled in overlapping tiles blended "
        "without seams (default per model: 128 for x4 and ldm-x4, 256 for x2-latent; 0 = never tile).",
        rich_help_panel=options.GEN, show_default=False)] = None,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="File, folder, or template with {name} {scale} {dir} {seed} {index} {model} {date}. "
        "Default: {dir}/{name}.x{scale}.png, beside the input.", rich_help_panel=options.OUT,
        show_default=False)] = None,
    *,
    flags: Flags,
) -> None:
    """Upscale images (one PNG path per line on stdout); large ones in tiles, with bounded memory."""
    from difftool.commands.invocation import Invocation

    run = Invocation("upscale", flags, own={"source": images_})
    paths = run.inputs(images_, "source", "image paths")
    specs, failed = run.per_source(paths)
    plan = run.plan(len(specs), "{name}.x{scale}.png", FIELDS, target="{dir}/{name}.x{scale}.png")
    run.execute(specs, plan, inputs=len(paths), failed=failed)
