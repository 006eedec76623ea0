"""`difftool inpaint`: repaint the white part of a mask with any pipeline AutoPipelineForInpainting serves.

The img2img flow (`tasks/img2img.py`) with a mask per job. Masks are decoded and checked before the
model loads: transparent pixels count as black (keep), a mask whose size differs from its image is
resized with a warning, and a mask with nothing white in it is refused (exit 2).
"""

from __future__ import annotations

from difftool import console, images
from difftool.errors import UsageError
from difftool.loading import LoadOptions
from difftool.outputs import OutputPlan
from difftool.references import ModelRef
from difftool.tasks.img2img import EditRequest, Outcome, Source, check_inputs, report_bad, run_edits


def load_mask(info: images.ImageInfo) -> object:
    """The mask as 8-bit L (transparent = black); UsageError when no pixel is white enough to repaint."""
    import numpy as np

    mask = images.load(info.path, mode="L", background=(0, 0, 0))
    if int(np.asarray(mask).max(initial=0)) < 128:
        raise UsageError(f"Mask '{info.path}' is all black: nothing to repaint (white in the mask = repaint).")
    return mask


def run(ref: ModelRef, req: EditRequest, opts: LoadOptions, plan: OutputPlan, as_json: bool = False) -> Outcome:
    """Inpaint every (image, mask) pair: one mask for many images, or many masks for one image."""
    good, errors = check_inputs(req.images)
    masks_ok, mask_errors = check_inputs(req.masks)
    decoded = []
    for info in masks_ok:
        try:
            decoded.append((info, load_mask(info)))
        except UsageError as exc:
            mask_errors.append(exc.message)
    pairs = len(req.images) * len(req.masks)
    if mask_errors and not decoded:
        report_bad(mask_errors, len(req.masks), "masks")
    report_bad(errors, len(req.images))
    for message in mask_errors if decoded else []:
        console.error(message)
    sources = []
    for info in good:
        for mask_info, mask in decoded:
            if mask.size != (info.width, info.height):
                console.warn(f"mask '{mask_info.path}' is {mask.width}x{mask.height} but image '{info.path}' is "
                             f"{info.width}x{info.height}: the mask is resized to the image.")
                mask = mask.resize((info.width, info.height))
            sources.append(Source(info, mask, mask_info))
    failed = pairs - len(sources)
    return run_edits(ref, req, opts, plan, sources, failed, "inpaint", None, as_json)
