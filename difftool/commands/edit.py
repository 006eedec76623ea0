"""`difftool img2img` and `difftool inpaint`: start from existing images.

IMAGE (and inpaint's MASK) may be `-`: paths are read from stdin, one per line, so
`difftool gen "a cat" -n 4 | difftool img2img - "in watercolor"` works. A missing or unreadable
input is reported naming the file; the other inputs still complete and the command exits 2.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from difftool import options
from difftool.commands.common import guarded
from difftool.commands.groups import GENERATION, Flags, uses
from difftool.errors import UsageError

ImageArg = Annotated[Optional[str], typer.Argument(
    help="Input image; `-` reads image paths from stdin, one per line (optional with --from).", show_default=False,
    metavar="IMAGE")]
PromptArg = Annotated[Optional[str], typer.Argument(help="What the result should show (optional with --from).",
                                                    show_default=False, metavar="PROMPT")]
EditOutput = Annotated[Optional[str], typer.Option(
    "--output", "-o", help="File, folder, or template with {name} (the input's file name) {seed} {index} {prompt} "
    "{model} {date}. Default: ./{name}-{prompt}-{seed}.png.", rich_help_panel=options.OUT, show_default=False)]
#: Default output names: the input's name, the prompt and the seed, in the current folder.
TEMPLATE = "{name}-{prompt}-{seed}.png"


@guarded
@uses(GENERATION)
def img2img(
    image: ImageArg = None,
    prompt: PromptArg = None,
    strength: options.Strength = None,
    output: EditOutput = None,
    *,
    flags: Flags,
) -> None:
    """Repaint images following a prompt (one PNG path per line on stdout).

    The input is resized to what the model takes (multiples of 8, aspect kept, at most the model's native
    pixel count; --width/--height override, both = exactly that size, center-cropped). Output names default
    to ./{name}-{prompt}-{seed}.png; the PNG records the source's path and SHA-256.
    """
    from difftool.commands.invocation import Invocation
    from difftool.outputs import TEMPLATE_FIELDS

    run = Invocation("img2img", flags, own={"source": image, "prompt": prompt})
    paths = run.inputs(image, "source", "image paths")
    if not paths or "prompt" not in run.fields:
        raise UsageError("img2img needs IMAGE and PROMPT (or --from IMAGE to re-run an image's settings).")
    specs, failed = run.per_source(paths)
    plan = run.plan(sum(s.num_images for s in specs), TEMPLATE, (*TEMPLATE_FIELDS, "name"))
    run.execute(specs, plan, inputs=len(paths), failed=failed)


@guarded
@uses(GENERATION)
def inpaint(
    image: ImageArg = None,
    mask: Annotated[Optional[str], typer.Argument(help="Mask image: white = repaint, black = keep; `-` reads mask "
                                                  "paths from stdin (then IMAGE must be a file).",
                                                  show_default=False, metavar="MASK")] = None,
    prompt: PromptArg = None,
    strength: options.Strength = None,
    output: EditOutput = None,
    *,
    flags: Flags,
) -> None:
    """Repaint the white part of a mask following a prompt (one PNG path per line on stdout).

    A mask of another size than its image is resized to it (with a warning); a mask with nothing white is
    refused. Transparent mask pixels count as black. Sizes and output names as for img2img.
    """
    from difftool.commands.invocation import Invocation, probe_inputs, report_bad
    from difftool.outputs import TEMPLATE_FIELDS
    from difftool.tasks import inputs

    if image == "-" and mask == "-":
        raise UsageError("Only one of IMAGE and MASK can be `-` (read from stdin).")
    run = Invocation("inpaint", flags, own={"source": image, "mask": mask, "prompt": prompt})
    paths = run.inputs(image, "source", "image paths")
    masks = run.inputs(mask, "mask", "mask paths")
    if not paths or not masks or "prompt" not in run.fields:
        raise UsageError("inpaint needs IMAGE, MASK and PROMPT (or --from IMAGE to re-run an image's settings).")
    good_masks, mask_errors = probe_inputs(masks, "Mask")
    usable = []
    for info in good_masks:
        try:
            inputs.check_mask(inputs.open_input(str(info.path), None, "mask", mode="L", background=(0, 0, 0)))
            usable.append(info)
        except UsageError as exc:
            mask_errors.append(exc.message)
    if mask_errors and not usable:
        report_bad(mask_errors, len(masks), "masks")
    good, errors = probe_inputs(paths)
    report_bad(errors, len(paths))
    report_bad(mask_errors, len(masks) + 1, "masks")  # some masks are usable: just say which are not
    specs = [run.spec(source=str(src.path), mask=str(m.path)) for src in good for m in usable]
    plan = run.plan(sum(s.num_images for s in specs), TEMPLATE, (*TEMPLATE_FIELDS, "name"))
    pairs = len(paths) * len(masks)
    run.execute(specs, plan, inputs=pairs, failed=pairs - len(specs))
