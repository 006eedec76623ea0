"""Step caches (`--cache`, `--cache-threshold`): diffusers' own caching hooks on the transformer of a DiT model.

Consecutive denoising steps change the transformer's intermediate outputs little; these methods reuse them
instead of recomputing, for the published 1.5-2x speed-ups at a small cost in fidelity:

| --cache | diffusers config | what it skips | --cache-threshold |
| --- | --- | --- | --- |
| first-block | `FirstBlockCacheConfig` | all blocks after the first when the first block's output barely changed | 0.05 (higher: faster) |
| taylorseer | `TaylorSeerCacheConfig` | full steps between refreshes, predicted by a Taylor expansion (every 5th step computed) | - |
| faster | `FasterCacheConfig` | attention every other step in the middle of denoising, and the unconditional branch of CFG | - |
| mag | `MagCacheConfig` | blocks while the accumulated residual-magnitude error stays small; needs per-model magnitude ratios (diffusers ships Flux's) | 0.06 |

Applied with `transformer.enable_cache(config)` on transformers that have diffusers' `CacheMixin` (Flux, Flux
Kontext, Flux.2, Chroma, Qwen-Image in diffusers 0.42). Others are refused (exit 2): SD3, Z-Image and Sana
transformers have no `enable_cache`, and the hooks applied by hand fail at the first step there (Z-Image's
blocks do not take `hidden_states`); UNet models (SD 1.x/2.x/XL) have no step cache in diffusers.
"""

from __future__ import annotations

from typing import Any

from difftool.errors import UsageError

CACHES = ("first-block", "taylorseer", "faster", "mag")
#: caches that take --cache-threshold, and its default
THRESHOLDS = {"first-block": 0.05, "mag": 0.06}
#: Pipelines whose transformer matches diffusers' FLUX_MAG_RATIOS (the only magnitude ratios it ships).
MAG_FLUX_CLASSES = ("FluxPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline", "FluxKontextPipeline")


def check(cache: str | None, threshold: float | None) -> str | None:
    """Validate `--cache`/`--cache-threshold` before torch is imported; the normalised cache name."""
    if cache is None:
        if threshold is not None:
            raise UsageError("--cache-threshold needs --cache first-block or --cache mag.")
        return None
    cache = cache.lower()
    if cache not in CACHES:
        raise UsageError(f"Unknown --cache '{cache}'; use one of {', '.join(CACHES)}.")
    if threshold is not None:
        if cache not in THRESHOLDS:
            raise UsageError(f"--cache-threshold applies to --cache {' and '.join(THRESHOLDS)}, not to {cache}.")
        if threshold <= 0:
            raise UsageError(f"--cache-threshold must be positive, not {threshold:g}.")
    return cache


def _is_guidance_distilled(pipe: Any) -> bool:
    """No batched classifier-free guidance to skip: Flux-style distilled guidance, or true CFG run separately."""
    import inspect

    params = inspect.signature(pipe.__call__).parameters
    return "true_cfg_scale" in params or not hasattr(type(pipe), "do_classifier_free_guidance")


def make_config(pipe: Any, cache: str, threshold: float | None, steps: int | None = None) -> Any:
    """The diffusers cache config for `cache` on this pipeline."""
    import diffusers

    if cache == "first-block":
        return diffusers.FirstBlockCacheConfig(threshold=threshold or THRESHOLDS[cache])
    if cache == "taylorseer":
        return diffusers.TaylorSeerCacheConfig(cache_interval=5, disable_cache_before_step=3, max_order=1)
    if cache == "faster":
        return diffusers.FasterCacheConfig(
            spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(-1, 681),
            unconditional_batch_skip_range=5, unconditional_batch_timestep_skip_range=(-1, 781),
            spatial_attention_block_identifiers=("transformer_blocks.*attn", "blocks.*attn"),
            attention_weight_callback=lambda _: 0.3, current_timestep_callback=lambda: pipe.current_timestep,
            tensor_format="BCHW", is_guidance_distilled=_is_guidance_distilled(pipe),
        )
    from diffusers.hooks.mag_cache import FLUX_MAG_RATIOS

    if type(pipe).__name__ not in MAG_FLUX_CLASSES:
        raise UsageError(f"--cache mag needs magnitude ratios calibrated for the model, and diffusers ships them for "
                         f"FLUX.1 only, not for {type(pipe).__name__}; use --cache first-block.")
    return diffusers.MagCacheConfig(threshold=threshold or THRESHOLDS[cache], mag_ratios=FLUX_MAG_RATIOS,
                                    num_inference_steps=steps or len(FLUX_MAG_RATIOS))


def apply(pipe: Any, cache: str, threshold: float | None) -> None:
    """Enable `cache` on the pipeline's transformer (load time); UsageError where diffusers has none."""
    model = getattr(pipe, "transformer", None)
    if model is None:
        what = "a UNet" if getattr(pipe, "unet", None) is not None else "no transformer"
        raise UsageError(f"--cache works on transformer (DiT) models; {type(pipe).__name__} has {what}, for which "
                         "diffusers has no step cache.")
    if not hasattr(model, "enable_cache"):
        raise UsageError(f"--cache: diffusers has no step cache for {type(model).__name__} ({type(pipe).__name__}); "
                         "it has them for Flux, Flux Kontext, Flux.2, Chroma and Qwen-Image transformers.")
    config = make_config(pipe, cache, threshold)
    try:
        model.enable_cache(config)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"--cache {cache} is not supported by {type(model).__name__} ({type(pipe).__name__}): "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}.") from exc
    pipe._difftool_step_cache = config  # read by before_call


def before_call(pipe: Any, steps: int | None) -> None:
    """Per call: MagCache interpolates its magnitude ratios to the step count, which is known only now."""
    config = getattr(pipe, "_difftool_step_cache", None)
    if config is None or type(config).__name__ != "MagCacheConfig" or not steps:
        return
    from diffusers.hooks.mag_cache import FLUX_MAG_RATIOS, nearest_interp

    if config.num_inference_steps != steps:
        config.num_inference_steps = steps
        config.mag_ratios = nearest_interp(FLUX_MAG_RATIOS, steps)
