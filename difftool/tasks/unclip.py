"""unCLIP (Kandinsky 2.1/2.2): image variations and interpolation between texts and images.

The combined pipeline `gen` loads (`loading.load_pipeline`, which finds and loads the prior) holds the two
halves: `prior_pipe` (CLIP text/image encoders + the prior that maps a text embedding to an image
embedding) and `decoder_pipe` (draws an image from an image embedding). Both commands are the plain
diffusers calls `prior_pipe.interpolate(items, weights, ...)` then `decoder_pipe(image_embeds=...,
negative_image_embeds=..., ...)`, with ONE CPU generator seeded with the image's seed used by both in that
order, as the combined pipelines do. `Embedder` computes the per-item embeddings exactly as `interpolate`
does (same calls in the same order) and keeps them, so `--frames` runs the prior once, not once per frame;
tests check it against `interpolate` itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from difftool import console, images, schedulers
from difftool.errors import UsageError
from difftool.loading import Loaded, LoadOptions, call_defaults, is_unclip, load_pipeline
from difftool.outputs import OutputPlan, write_with
from difftool.references import ModelRef
from difftool.tasks.common import Job, base_settings, run_jobs
from difftool.tasks.text2img import GenRequest, seeds, with_registry_defaults

#: File suffixes that mark an interpolation ITEM as an image path even when the file is missing (a typo).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
#: Default output names.
VARIATION_TEMPLATE = "{name}-{prompt}-{seed}.png"
INTERPOLATE_TEMPLATE = "{prompt}-{seed}.png"
FRAMES_TEMPLATE = "{prompt}-{seed}-{frame}.png"
#: Default weight of --prompt against the image in `variation`.
PROMPT_WEIGHT = 0.3
GIF_FRAME_MS = 100


@dataclass(frozen=True)
class Item:
    """One interpolation item: a text, or an image (decoded later)."""

    text: str | None = None
    image: images.ImageInfo | None = None

    @property
    def label(self) -> str:
        return self.text if self.text is not None else (self.image.name if self.image else "")

    def record(self) -> dict[str, str]:
        if self.image is not None:
            return {"image": str(self.image.path.resolve()), "sha256": images.sha256(self.image.path)}
        return {"text": str(self.text)}


def classify(text: str) -> Item:
    """An ITEM is an image when it names an existing file (or looks like an image path), else a text."""
    path = Path(text).expanduser()
    if path.is_file():
        return Item(image=images.probe(path))
    if path.suffix.lower() in IMAGE_SUFFIXES and " " not in text:
        raise UsageError(f"Image '{text}' does not exist (an ITEM ending in {path.suffix} is taken as an image path).")
    if path.is_dir():
        raise UsageError(f"'{text}' is a folder, not an image or a text.")
    if not text.strip():
        raise UsageError("An ITEM is empty.")
    return Item(text=text)


@dataclass
class UnclipRequest(GenRequest):
    """A GenRequest (steps, guidance, sizes, prior settings, seed, -n) plus the items and their weights."""

    items: list[Item] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    """variation: the input image paths."""
    weights: list[float] | None = None
    frames: int | None = None
    gif: bool = False
    prompt_weight: float | None = None
    variation_prompt: str | None = None


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


def _decoder_kwargs(loaded: Loaded, req: UnclipRequest) -> dict[str, Any]:
    decoder = loaded.pipe.decoder_pipe
    defaults = call_defaults(decoder)
    kwargs: dict[str, Any] = {
        "num_inference_steps": req.steps if req.steps is not None else defaults.get("num_inference_steps"),
        "guidance_scale": req.guidance if req.guidance is not None else defaults.get("guidance_scale"),
        "height": req.height if req.height is not None else defaults.get("height"),
        "width": req.width if req.width is not None else defaults.get("width"),
    }
    if req.negative and "negative_prompt" in call_defaults(decoder):  # 2.1: the decoder's text too
        kwargs["negative_prompt"] = req.negative
    return kwargs


def _prior_values(loaded: Loaded, req: UnclipRequest) -> tuple[int, float]:
    params = inspect.signature(loaded.pipe.prior_pipe.interpolate).parameters
    defaults = {name: p.default for name, p in params.items()}
    steps = req.prior_steps if req.prior_steps is not None else defaults["num_inference_steps"]
    guidance = req.prior_guidance if req.prior_guidance is not None else defaults["guidance_scale"]
    return steps, guidance


def load(ref: ModelRef, req: UnclipRequest, opts: LoadOptions, task: str) -> tuple[Loaded, UnclipRequest, dict]:
    """Load the combined pipeline; refuse models that are not unCLIP (exit 2)."""
    req = with_registry_defaults(ref, req)
    loaded = load_pipeline(ref, "text2img", opts)
    if not is_unclip(loaded.pipe):
        raise UsageError(f"`difftool {task}` needs an unCLIP model (a Kandinsky 2.1/2.2 prior + decoder, e.g. "
                         f"kandinsky22); '{ref.label}' is a {type(loaded.pipe).__name__}.")
    if req.scheduler:
        schedulers.apply(loaded.pipe, req.scheduler)
    prior_steps, prior_guidance = _prior_values(loaded, req)
    req = replace(req, prior_steps=prior_steps, prior_guidance=prior_guidance)
    kwargs = _decoder_kwargs(loaded, req)
    settings = {
        **base_settings(loaded, task),
        "pipeline": f"{type(loaded.pipe.prior_pipe).__name__}+{type(loaded.pipe.decoder_pipe).__name__}",
        "negative": req.negative,
        "steps": kwargs["num_inference_steps"],
        "guidance": kwargs["guidance_scale"],
        "scheduler": schedulers.describe(loaded.pipe.scheduler),
        "prior_steps": prior_steps,
        "prior_guidance": prior_guidance,
    }
    return loaded, req, {"decoder": kwargs, "settings": settings}


def _embedder(loaded: Loaded, req: UnclipRequest) -> Embedder:
    assert req.prior_steps is not None and req.prior_guidance is not None
    return Embedder(loaded.pipe.prior_pipe, req.prior_steps, req.prior_guidance, req.negative)


def variation(ref: ModelRef, req: UnclipRequest, opts: LoadOptions, plan: OutputPlan, as_json: bool = False,
              ) -> tuple[list[Path], int]:
    """`num_images` variations of every readable input image (image i of an input uses seed+i); returns the
    written paths and how many inputs failed."""
    from difftool.tasks.img2img import check_inputs, report_bad

    good, errors = check_inputs(req.sources)
    report_bad(errors, len(req.sources))
    loaded, req, parts = load(ref, req, opts, "variation")
    embedder = _embedder(loaded, req)
    call = UnclipCall(loaded.pipe, embedder)
    prompt = req.variation_prompt
    weight = req.prompt_weight if req.prompt_weight is not None else PROMPT_WEIGHT
    weights = [1.0 - weight, weight] if prompt else [1.0]
    first = seeds(req)
    total = len(good) * req.num_images
    failed = [len(errors)]

    def jobs() -> Iterator[Job]:
        for key, info in enumerate(good):
            try:
                image = images.load(info.path)
            except UsageError as exc:
                console.error(exc.message)
                failed[0] += 1
                continue
            item = Item(image=info)
            items: list[Any] = [image, prompt] if prompt else [image]
            recorded_items = [item.record()] + ([{"text": prompt}] if prompt else [])
            for i in range(req.num_images):
                seed = first + i
                yield Job(
                    kwargs={"items": items, "weights": weights, "items_key": key, "decoder_kwargs": parts["decoder"],
                            "text": prompt or ""},
                    seed=seed,
                    settings={**parts["settings"], "prompt": prompt, "prompt_weight": weight if prompt else None,
                              "source": recorded_items[0]["image"], "source_sha256": recorded_items[0]["sha256"],
                              "items": recorded_items, "weights": weights, "seed": seed},
                    name_fields={"prompt": prompt or "variation", "name": info.name},
                    steps=parts["settings"]["steps"] or 0,
                )

    written = run_jobs(replace(loaded, pipe=call), jobs(), plan, total, as_json)
    return written, failed[0]


def interpolate(ref: ModelRef, req: UnclipRequest, opts: LoadOptions, plan: OutputPlan, as_json: bool = False,
                ) -> list[Path]:
    """One image per seed from the weighted mix of the items, or `frames` images along the path from the first
    item to the last (same seed for every frame), plus an animated GIF with `gif`."""
    loaded, req, parts = load(ref, req, opts, "interpolate")
    pils: list[Any] = [images.load(item.image.path) if item.image else item.text for item in req.items]
    call = UnclipCall(loaded.pipe, _embedder(loaded, req))
    recorded_items = [item.record() for item in req.items]
    label = " ".join(item.label for item in req.items)
    first = seeds(req)
    if req.frames:
        plans = [(first, w, {"frame": f"{i:03d}", "frame_index": i}) for i, w in enumerate(
            frame_weights(len(pils), req.frames))]
    else:
        n = len(pils)
        weights = req.weights or [1.0 / n] * n
        plans = [(first + i, weights, {}) for i in range(req.num_images)]

    def jobs() -> Iterator[Job]:
        for seed, weights, extra in plans:
            frame = {"frame": extra["frame_index"], "frames": req.frames} if extra else {}
            yield Job(
                kwargs={"items": pils, "weights": weights, "items_key": 0, "decoder_kwargs": parts["decoder"],
                        "text": ""},
                seed=seed,
                settings={**parts["settings"], "prompt": label, "items": recorded_items,
                          "weights": [round(w, 6) for w in weights], **frame, "seed": seed},
                name_fields={"prompt": label, **({"frame": extra["frame"]} if extra else {"frame": ""})},
                steps=parts["settings"]["steps"] or 0,
            )

    written = run_jobs(replace(loaded, pipe=call), jobs(), plan, len(plans), as_json)
    if req.frames and req.gif and written:
        write_gif(written, plan.overwrite, as_json, {**parts["settings"], "items": recorded_items, "seed": first})
    return written


def write_gif(frames: list[Path], overwrite: bool, as_json: bool, settings: dict[str, Any]) -> Path:
    """An animated GIF of the frames (looping, GIF_FRAME_MS per frame) next to the first frame."""
    import json

    from PIL import Image

    from difftool import metadata

    first = frames[0]
    stem = first.stem
    for suffix in ("-000", "-0"):  # the default {frame} name, or `-o file.png` numbered by the output plan
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    target = first.with_name(stem + ".gif")
    pictures = [Image.open(p).convert("RGB") for p in frames]
    comment = json.dumps({"version": metadata.__version__, **settings, "task": "interpolate-gif",
                          "frames": [str(p) for p in frames]}, ensure_ascii=False, default=str)

    def save(fh: Any) -> None:
        pictures[0].save(fh, format="GIF", save_all=True, append_images=pictures[1:], duration=GIF_FRAME_MS, loop=0,
                         comment=comment.encode())

    path = write_with(save, target, overwrite=overwrite, fresh=not overwrite)
    if as_json:
        console.result_json({"path": str(path), "gif": True, "frames": [str(p) for p in frames]})
    else:
        console.result(str(path))
    console.info(f"wrote {path} ({len(frames)} frames)")
    return path

