"""Call-time rules of transformer (DiT) pipelines that diffusers would otherwise apply silently.

- **True CFG and negative prompts.** Flux, Flux Kontext and Qwen-Image pipelines take `negative_prompt` but use it
  only when `true_cfg_scale > 1` (real classifier-free guidance: two transformer passes per step), and Qwen-Image
  turns its default `true_cfg_scale=4` off when no negative prompt is given. difftool never drops a negative:
  `--negative` with true CFG off is refused (exit 2, "add --true-cfg"), and true CFG on without `--negative`
  passes `" "` as the negative prompt (what Qwen-Image's model card does), so `--true-cfg X` alone turns it on.
- **Guidance that does nothing.** On those pipelines `guidance_scale` feeds a guidance embedding; a transformer
  without one (FLUX.1 [schnell], Qwen-Image) ignores it: a non-zero `--guidance` there gets a warning (not an
  error: images made before record the pipeline's default guidance, and `--from` replays it).
- **Flux Kontext's `max_area`.** Kontext scales every request to `max_area` (1024x1024 by default); difftool
  passes `max_area = width x height` so the size asked for (or the input's working size) is the size made.
- **Size multiples.** Packed-latent pipelines need sizes in multiples of twice the VAE factor (16 for Flux,
  SD3, Qwen-Image); `size_multiple` says which, for img2img's sizing.
"""

from __future__ import annotations

import inspect
from typing import Any

from difftool.errors import UsageError

#: The negative prompt passed when true CFG is on and none was given (Qwen-Image's model card uses it).
BLANK_NEGATIVE = " "


def _params(pipe: Any) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(pipe.__call__).parameters)


def true_cfg(pipe: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Apply the true-CFG/negative and guidance rules to the call kwargs shared by every image (returns them)."""
    params = _params(pipe)
    if "true_cfg_scale" not in params:
        return kwargs
    name = type(pipe).__name__
    scale = kwargs.get("true_cfg_scale", params["true_cfg_scale"].default)
    on = isinstance(scale, (int, float)) and scale > 1
    if kwargs.get("negative_prompt") is not None and not on:
        raise UsageError(f"--negative is ignored by {name} unless true classifier-free guidance is on: add "
                         "--true-cfg 4 (any value > 1; each step then runs the transformer twice).")
    if on and kwargs.get("negative_prompt") is None and "negative_prompt" in params:
        kwargs["negative_prompt"] = BLANK_NEGATIVE
        kwargs["true_cfg_scale"] = scale  # recorded: it decides what ran
    guidance = kwargs.get("guidance_scale")
    transformer = getattr(pipe, "transformer", None)
    embeds = getattr(getattr(transformer, "config", None), "guidance_embeds", True)
    if guidance not in (None, 0, 0.0) and embeds is False:
        from difftool import console

        console.warn(f"--guidance has no effect on {name} (its transformer has no guidance embedding); use "
                     "--true-cfg for classifier-free guidance.")
    return kwargs


def size_kwargs(pipe: Any, width: int | None, height: int | None) -> dict[str, Any]:
    """`max_area` for pipelines that rescale every request to it (Flux Kontext), so the size made is the one asked."""
    if width and height and "max_area" in _params(pipe):
        return {"max_area": width * height}
    return {}


def size_multiple(pipe: Any) -> int:
    """The multiple image sizes must have: the image processor's factor (twice the VAE's for packed latents), or
    the VAE factor times the transformer's patch size, whichever is larger; 8 at least."""
    processor = getattr(getattr(pipe, "image_processor", None), "config", None)
    factors = [8, int(getattr(processor, "vae_scale_factor", 8) or 8)]
    vae_factor = getattr(pipe, "vae_scale_factor", None)
    patch = getattr(getattr(getattr(pipe, "transformer", None), "config", None), "patch_size", None)
    if isinstance(vae_factor, int) and isinstance(patch, int):
        factors.append(vae_factor * patch)
    return max(factors)


def recorded(kwargs: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The DiT settings passed to the pipeline (flag, config or registry), for the metadata and `--from`. The
    pipeline's own defaults are not written: replayed onto another model they would be refused there."""
    out: dict[str, Any] = {}
    for key, name in (("true_cfg_scale", "true_cfg"), ("max_sequence_length", "max_sequence_length")):
        if key in defaults and kwargs.get(key) is not None:
            out[name] = kwargs[key]
    return out
