"""`difftool gen`: text to image with any pipeline AutoPipelineForText2Image serves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from difftool import callrules, console, schedulers
from difftool.loading import Loaded, LoadOptions, call_defaults, check_accepts, load_pipeline
from difftool.outputs import OutputPlan
from difftool.references import ModelRef
from difftool.tasks.common import Job, base_settings, draw_seed, run_jobs


@dataclass
class GenRequest:
    """What the user asked for; None means "the model's default"."""

    prompts: list[str]
    negative: str | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    num_images: int = 1
    scheduler: str | None = None
    prior_steps: int | None = None
    """unCLIP (Kandinsky) prior steps and guidance (the combined pipelines' prior_* kwargs)."""
    prior_guidance: float | None = None
    true_cfg: float | None = None
    """`--true-cfg`: true_cfg_scale of Flux/Qwen-Image pipelines (real CFG; difftool.callrules)."""
    max_sequence_length: int | None = None
    """`--max-sequence-length`: text tokens the T5/LLM encoders read."""


#: GenRequest field -> (pipeline kwarg, the flag named in errors)
CALL_ARGS = {
    "negative": ("negative_prompt", "--negative"),
    "steps": ("num_inference_steps", "--steps"),
    "guidance": ("guidance_scale", "--guidance"),
    "width": ("width", "--width"),
    "height": ("height", "--height"),
    "prior_steps": ("prior_num_inference_steps", "--prior-steps"),
    "prior_guidance": ("prior_guidance_scale", "--prior-guidance"),
    "true_cfg": ("true_cfg_scale", "--true-cfg"),
    "max_sequence_length": ("max_sequence_length", "--max-sequence-length"),
}


def with_registry_defaults(ref: ModelRef, req: GenRequest) -> GenRequest:
    """Fill unset values from the model's registry entry (aliases and known hub ids)."""
    spec = ref.spec
    if spec is None:
        return req
    return replace(  # keeps the other fields (and the class of a request subclass, e.g. img2img's)
        req,
        steps=req.steps if req.steps is not None else spec.steps,
        guidance=req.guidance if req.guidance is not None else spec.guidance,
        width=req.width if req.width is not None else spec.width,
        height=req.height if req.height is not None else spec.height,
        scheduler=req.scheduler if req.scheduler is not None else spec.scheduler,
        prior_steps=req.prior_steps if req.prior_steps is not None else _int(spec.extra.get("prior_steps")),
        prior_guidance=req.prior_guidance if req.prior_guidance is not None else spec.extra.get("prior_guidance"),
        true_cfg=req.true_cfg if req.true_cfg is not None else spec.true_cfg,
        max_sequence_length=req.max_sequence_length if req.max_sequence_length is not None else spec.max_sequence_length,
    )


def _int(value: float | None) -> int | None:
    return int(value) if value is not None else None


def call_kwargs(loaded: Loaded, req: GenRequest) -> dict[str, Any]:
    """The pipeline kwargs shared by every image, after refusing those the pipeline does not take."""
    given = {name: CALL_ARGS[name] for name in CALL_ARGS if getattr(req, name) is not None}
    check_accepts(loaded.pipe, {kwarg: flag for kwarg, flag in given.values()})
    kwargs = {kwarg: getattr(req, name) for name, (kwarg, _) in given.items()}
    return {**callrules.true_cfg(loaded.pipe, kwargs), **callrules.size_kwargs(loaded.pipe, req.width, req.height)}


def recorded(loaded: Loaded, req: GenRequest, kwargs: dict[str, Any], task: str) -> dict[str, Any]:
    """Settings to embed: what actually ran, the pipeline's own defaults filled in."""
    defaults = call_defaults(loaded.pipe)
    return {
        **base_settings(loaded, task),
        "negative": req.negative,
        "steps": kwargs.get("num_inference_steps", defaults.get("num_inference_steps")),
        "guidance": kwargs.get("guidance_scale", defaults.get("guidance_scale")),
        "scheduler": schedulers.describe(loaded.pipe.scheduler) if hasattr(loaded.pipe, "scheduler") else None,
        **prior_settings(loaded, kwargs, defaults),
        **callrules.recorded(kwargs, defaults),
    }


def prior_settings(loaded: Loaded, kwargs: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """unCLIP (Kandinsky) only: the prior's steps and guidance that ran."""
    if "prior_num_inference_steps" not in defaults:
        return {}
    return {
        "prior_steps": kwargs.get("prior_num_inference_steps", defaults.get("prior_num_inference_steps")),
        "prior_guidance": kwargs.get("prior_guidance_scale", defaults.get("prior_guidance_scale")),
    }


def seeds(req: GenRequest) -> int:
    """The first seed: the user's, or a random one that is reported."""
    if req.seed is not None:
        return req.seed
    seed = draw_seed()
    console.info(f"seed {seed} (random; pass --seed {seed} to remake these images)")
    return seed


def run(ref: ModelRef, req: GenRequest, opts: LoadOptions, plan: OutputPlan, as_json: bool = False) -> list[Path]:
    """Load once, then make `num_images` images per prompt; image i of a prompt uses seed+i."""
    req = with_registry_defaults(ref, req)
    loaded = load_pipeline(ref, "text2img", opts)
    if req.scheduler:
        schedulers.apply(loaded.pipe, req.scheduler)
    kwargs = call_kwargs(loaded, req)
    settings = recorded(loaded, req, kwargs, "gen")
    first = seeds(req)
    total = len(req.prompts) * req.num_images

    def jobs() -> Iterator[Job]:
        for prompt in req.prompts:
            for i in range(req.num_images):
                seed = first + i
                yield Job(
                    kwargs={"prompt": prompt, **kwargs},
                    seed=seed,
                    settings={**settings, "prompt": prompt, "seed": seed},
                    name_fields={"prompt": prompt},
                    steps=settings["steps"] or 0,
                )

    return run_jobs(loaded, jobs(), plan, total, as_json)
