"""`difftool variation` and `difftool interpolate`: the unCLIP (Kandinsky 2.1/2.2) commands.

Both default to `kandinsky22` (-m picks another Kandinsky model; other models are refused with exit 2) and take
gen's model, generation, output and speed/memory options plus the prior's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from difftool import console, options
from difftool.commands.common import guarded
from difftool.commands.groups import MODEL, OUTPUT, PRIOR, SAMPLING, SPEED, Flags, uses
from difftool.errors import InputError, UsageError

#: File suffixes that mark an interpolation ITEM as an image path even when the file is missing (a typo).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
#: gen's options but --config (no single-file Kandinsky checkpoints).
UNCLIP = tuple(o for o in SAMPLING + MODEL + SPEED + OUTPUT + PRIOR if o[0] != "config_ref")


@guarded
@uses(UNCLIP)
def variation(
    images: Annotated[Optional[list[str]], typer.Argument(
        help="Input images; `-` reads image paths from stdin, one per line.", show_default=False,
        metavar="IMAGE...")] = None,
    prompt: Annotated[Optional[str], typer.Option(
        "--prompt", help="Also steer the variations with this text (mixed in by --prompt-weight).",
        rich_help_panel=options.GEN, show_default=False)] = None,
    prompt_weight: Annotated[Optional[float], typer.Option(
        "--prompt-weight", help="Share of --prompt in the mix, 0..1 (the image gets the rest). Default: 0.3.",
        rich_help_panel=options.GEN, show_default=False)] = None,
    *,
    flags: Flags,
) -> None:
    """New images from images, the unCLIP way (one PNG path per line on stdout).

    The prior's CLIP image encoder embeds each input and the decoder draws from that embedding. Default model: kandinsky22. Image i of an input uses seed+i; output names default to
    ./{name}-variation-{seed}.png ({name}: the input's file name; with --prompt: {name}-{prompt}-{seed}.png).
    """
    from difftool.commands.invocation import Invocation
    from difftool.outputs import TEMPLATE_FIELDS

    if prompt is not None and not prompt.strip():
        raise UsageError("The --prompt is empty.")
    run = Invocation("variation", flags, own={"source": images})
    if run.fields.get("prompt_weight") is not None and run.fields.get("prompt") is None:
        raise UsageError("--prompt-weight needs --prompt.")
    paths = run.inputs(images, "source", "image paths")
    specs, failed = run.per_source(paths)
    plan = run.plan(sum(s.num_images for s in specs), "{name}-{prompt}-{seed}.png", (*TEMPLATE_FIELDS, "name", "frame"))
    run.execute(specs, plan, inputs=len(paths), failed=failed)


def classify(text: str) -> dict[str, str]:
    """An ITEM is an image when it names an existing file (or looks like an image path), else a text."""
    from difftool import images

    path = Path(text).expanduser()
    if path.is_file():
        images.probe(path)
        return {"image": str(path)}
    if path.suffix.lower() in IMAGE_SUFFIXES and " " not in text:
        raise InputError(f"Image '{text}' does not exist (an ITEM ending in {path.suffix} is taken as an image path).")
    if path.is_dir():
        raise UsageError(f"'{text}' is a folder, not an image or a text.")
    if not text.strip():
        raise UsageError("An ITEM is empty.")
    return {"text": text}


def parse_weights(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--weights '{text}' must be numbers separated by commas, e.g. 0.3,0.7.") from None


@guarded
@uses(UNCLIP)
def interpolate(
    items: Annotated[Optional[list[str]], typer.Argument(
        help="Two or more texts or image paths (an existing file is an image; anything else is a text; optional "
        "with --from).", show_default=False, metavar="ITEM ITEM...")] = None,
    weights: Annotated[Optional[str], typer.Option(
        "--weights", help="One weight per item, comma-separated, e.g. 0.3,0.7 (default: equal weights).",
        rich_help_panel=options.GEN, show_default=False)] = None,
    frames: Annotated[Optional[int], typer.Option(
        "--frames", help="Render N images along the path from the first item to the last (same seed for "
        "every frame), numbered in order.", rich_help_panel=options.GEN, show_default=False)] = None,
    gif: Annotated[bool, typer.Option("--gif", help="With --frames: also write an animated GIF of the frames.",
                                      rich_help_panel=options.OUT)] = False,
    *,
    flags: Flags,
) -> None:
    """Mix texts and images into one image, the unCLIP way (one PNG path per line on stdout).

    The prior turns each item into a CLIP image embedding; the decoder draws their weighted sum. Default model: kandinsky22. Output names default to ./{prompt}-{seed}.png ({prompt}: the items), with
    --frames ./{prompt}-{seed}-{frame}.png ({frame}: 000, 001, ...) and, with --gif, ./{prompt}-{seed}.gif.
    """
    from difftool.commands.invocation import Invocation
    from difftool.outputs import TEMPLATE_FIELDS

    parsed = [classify(item) for item in items] if items else None
    mix = parse_weights(weights) if weights is not None else None
    run = Invocation("interpolate", flags, own={"items": parsed, "weights": mix})
    job = run.spec()
    if job.weights and abs(sum(job.weights) - 1.0) > 1e-3:
        console.warn(f"--weights add up to {sum(job.weights):g}, not 1: the mixed embedding is scaled by that much.")
    template = "{prompt}-{seed}-{frame}.png" if job.frames else "{prompt}-{seed}.png"
    plan = run.plan(job.frames or job.num_images, template, (*TEMPLATE_FIELDS, "name", "frame"))
    run.execute([job], plan)


