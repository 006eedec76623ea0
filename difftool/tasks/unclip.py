"""unCLIP (Kandinsky 2.1/2.2): image variations and interpolation between texts and images.

The combined pipeline holds the two halves: `prior_pipe` (CLIP text/image encoders + the prior that maps a text
embedding to an image embedding) and `decoder_pipe` (draws an image from an image embedding). Both tasks are the
plain diffusers calls `prior_pipe.interpolate(items, weights, ...)` then `decoder_pipe(image_embeds=...,
negative_image_embeds=..., ...)`, with ONE CPU generator seeded with the image's seed used by both in that order,
as the combined pipelines do. `Embedder` computes the per-item embeddings exactly as `interpolate` does (same calls
in the same order) and keeps them, so `frames` runs the prior once, not once per frame; tests check it against
`interpolate` itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from difftool import schedulers
from difftool.errors import UsageError
from difftool.loading.unclip import is_unclip
from difftool.tasks import inputs
from difftool.tasks.base import Context, Result, base_record, call, call_defaults, image_result

#: Default weight of the prompt against the image in `variation`.
PROMPT_WEIGHT = 0.3


def frame_weights(count: int, frames: int) -> list[list[float]]:
    """Weights along the path item 0 -> item 1 -> ... -> last item, `frames` evenly spaced points, ends included."""
    out = []
    for i in range(frames):
        pos = i / (frames - 1) * (count - 1)
        seg = min(int(pos), count - 2)
        local = pos - seg
        weights = [0.0] * count
        weights[seg] = 1.0 - local
        weights[seg + 1] = local
        out.append(weights)
    return out


class Embedder:
    """`prior_pipe.interpolate`, split in two: the per-item embeddings (run once per seed and kept) and their
    weighted sum (per image). Same calls, same order, same generator use as diffusers' `interpolate`."""

    def __init__(self, prior: Any, steps: int, guidance: float, negative: str | None) -> None:
        self.prior, self.steps, self.guidance, self.negative = prior, steps, guidance, negative
        self.v21 = type(prior).__name__ == "KandinskyPriorPipeline"  # 2.1 keeps embeddings 2-D, 2.2 adds a dim
        self._cache: dict[tuple[int, int], tuple[list[Any], Any, Any]] = {}

    def embeddings(self, key: int, items: list[Any], generator: Any) -> tuple[list[Any], Any]:
        """(per-item image embeddings, negative embedding); leaves `generator` where interpolate leaves it."""
        cache_key = (key, generator.initial_seed())
        if cache_key in self._cache:
            embeds, zero, state = self._cache[cache_key]
            generator.set_state(state)
            return embeds, zero
        prior = self.prior
        device = prior.device
        embeds = []
        for cond in items:
            if isinstance(cond, str):
                emb = prior(cond, num_inference_steps=self.steps, num_images_per_prompt=1, generator=generator,
                            latents=None, negative_prompt=self.negative, guidance_scale=self.guidance,
                            ).image_embeds
                emb = emb if self.v21 else emb.unsqueeze(0)
            else:
                pixels = prior.image_processor(cond, return_tensors="pt").pixel_values[0].unsqueeze(0)
                pixels = pixels.to(dtype=prior.image_encoder.dtype, device=device)
                emb = prior.image_encoder(pixels)["image_embeds"]
                emb = emb if self.v21 else emb.repeat(1, 1).unsqueeze(0)
            embeds.append(emb)
        negative = self.negative or ""
        out_zero = prior(negative, num_inference_steps=self.steps, num_images_per_prompt=1, generator=generator,
                         latents=None, negative_prompt=self.negative, guidance_scale=self.guidance)
        zero = out_zero.negative_image_embeds if negative == "" else out_zero.image_embeds
        self._cache[cache_key] = (embeds, zero, generator.get_state())
        return embeds, zero

    def mix(self, embeds: list[Any], weights: list[float]) -> Any:
        import torch

        return torch.cat([emb * weight for emb, weight in zip(embeds, weights)]).sum(dim=0, keepdim=self.v21)


class UnclipCall:
    """What `run_jobs` calls per image: embed (prior), mix, draw (decoder), one generator for both."""

    def __init__(self, pipe: Any, embedder: Embedder) -> None:
        self.pipe, self.embedder = pipe, embedder
        self.decoder = pipe.decoder_pipe
        self.decoder_params = inspect.signature(self.decoder.__call__).parameters
        self.scheduler = pipe.scheduler

    def __call__(self, items: list[Any], weights: list[float], items_key: int, decoder_kwargs: dict[str, Any],
                 generator: Any, text: str = "", callback_on_step_end: Any = None) -> Any:
        embeds, zero = self.embedder.embeddings(items_key, items, generator)
        call = dict(decoder_kwargs)
        if "prompt" in self.decoder_params:  # Kandinsky 2.1's decoder also reads a text
            call["prompt"] = text
        if callback_on_step_end is not None and "callback_on_step_end" in self.decoder_params:
            call["callback_on_step_end"] = callback_on_step_end
        return self.decoder(image_embeds=self.embedder.mix(embeds, weights), negative_image_embeds=zero,
                            generator=generator, **call)


def _prepare(ctx: Context, spec: Any) -> tuple[Any, Embedder, dict[str, Any], dict[str, Any]]:
    """Load the combined pipeline (refusing models that are not unCLIP, exit 2), and work out the decoder kwargs
    and the settings every image records."""
    loaded = ctx.pipeline("text2img")
    pipe = loaded.pipe
    if not is_unclip(pipe):
        raise UsageError(f"`difftool {spec.task}` needs an unCLIP model (a Kandinsky 2.1/2.2 prior + decoder, e.g. "
                         f"kandinsky22); '{ctx.ref.label}' is a {type(pipe).__name__}.")
    scheduler = ctx.value(spec, "scheduler")
    if scheduler:
        schedulers.apply(pipe, scheduler)
    decoder = pipe.decoder_pipe
    dec = call_defaults(decoder)
    params = inspect.signature(pipe.prior_pipe.interpolate).parameters
    prior_steps = ctx.value(spec, "prior_steps") or params["num_inference_steps"].default
    prior_guidance = ctx.value(spec, "prior_guidance")
    prior_guidance = params["guidance_scale"].default if prior_guidance is None else prior_guidance
    kwargs: dict[str, Any] = {}
    for key, kwarg in (("steps", "num_inference_steps"), ("guidance", "guidance_scale"), ("height", "height"),
                       ("width", "width")):
        value = ctx.value(spec, key)
        kwargs[kwarg] = value if value is not None else dec.get(kwarg)
    if spec.negative and "negative_prompt" in dec:  # 2.1: the decoder's text too
        kwargs["negative_prompt"] = spec.negative
    record = {
        **base_record(loaded, spec.task),
        "pipeline": f"{type(pipe.prior_pipe).__name__}+{type(decoder).__name__}",
        "negative": spec.negative, "steps": kwargs["num_inference_steps"], "guidance": kwargs["guidance_scale"],
        "scheduler": schedulers.describe(pipe.scheduler), "prior_steps": prior_steps, "prior_guidance": prior_guidance,
    }
    return pipe, Embedder(pipe.prior_pipe, prior_steps, prior_guidance, spec.negative), kwargs, record


def variation(ctx: Context, spec: Any) -> Iterator[Result]:
    """`num_images` variations of the input image (image i uses seed + i), optionally steered by the prompt."""
    source = inputs.source(spec)
    pipe, embedder, kwargs, record = _prepare(ctx, spec)
    unclip = UnclipCall(pipe, embedder)
    weight = spec.prompt_weight if spec.prompt_weight is not None else PROMPT_WEIGHT
    items: list[Any] = [source.image, spec.prompt] if spec.prompt else [source.image]
    weights = [1.0 - weight, weight] if spec.prompt else [1.0]
    record.update(prompt=spec.prompt, prompt_weight=weight if spec.prompt else None, **source.record("source"))
    image_item = {"image": record["source"], "sha256": source.sha256} if source.where else {"sha256": source.sha256}
    record.update(items=[image_item] + ([{"text": spec.prompt}] if spec.prompt else []), weights=weights)
    for i in range(spec.num_images):
        seed = ctx.first_seed + i
        call_args = {"items": items, "weights": weights, "items_key": 0, "decoder_kwargs": kwargs,
                     "text": spec.prompt or ""}
        out = call(unclip, call_args, seed, steps=kwargs["num_inference_steps"] or 0,
                   label=f"{source.name} image {i + 1}/{spec.num_images} seed {seed}", step=ctx.step)
        yield image_result(out, {**record, "seed": seed},
                           {"prompt": spec.prompt or "variation", "name": source.name}, ctx.step)


def interpolate(ctx: Context, spec: Any) -> Iterator[Result]:
    """One image per seed from the weighted mix of the items, or `frames` images along the path from the first
    item to the last (same seed for every frame)."""
    opened = [inputs.open_input(item.image, item.data, "interpolation image") if item.text is None else None
              for item in spec.items]
    pipe, embedder, kwargs, record = _prepare(ctx, spec)
    unclip = UnclipCall(pipe, embedder)
    pictures = [found.image if found else item.text for item, found in zip(spec.items, opened)]
    recorded = [{"image": found.where, "sha256": found.sha256} if found
                else {"text": item.text} for item, found in zip(spec.items, opened)]
    recorded = [{k: v for k, v in item.items() if v is not None} for item in recorded]
    label = " ".join(item.text if item.text is not None else found.name for item, found in zip(spec.items, opened))
    first = ctx.first_seed
    if spec.frames:
        plans = [(first, w, {"frame": i, "frames": spec.frames}) for i, w in enumerate(
            frame_weights(len(pictures), spec.frames))]
    else:
        n = len(pictures)
        weights = spec.weights or [1.0 / n] * n
        plans = [(first + i, weights, {}) for i in range(spec.num_images)]
    record.update(prompt=label, items=recorded)
    for number, (seed, weights, frame) in enumerate(plans):
        call_args = {"items": pictures, "weights": weights, "items_key": 0, "decoder_kwargs": kwargs, "text": ""}
        out = call(unclip, call_args, seed, steps=kwargs["num_inference_steps"] or 0,
                   label=f"image {number + 1}/{len(plans)} seed {seed}", step=ctx.step)
        names = {"prompt": label, "frame": f"{frame['frame']:03d}" if frame else ""}
        yield image_result(out, {**record, "weights": [round(w, 6) for w in weights], **frame, "seed": seed},
                           names, ctx.step)
