"""Named schedulers (samplers): a user-facing name -> a diffusers scheduler class and its options.

The names follow what users know from other tools; `A1111_NAMES` gives the "Sampler" names
written to the AUTOMATIC1111 infotext so other tools read them.
"""

from __future__ import annotations

from typing import Any

from difftool.errors import UsageError

#: name -> (diffusers class name, config overrides)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "dpm++2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": False}),
    "dpm++2m-karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True}),
    "dpm++2m-sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": False}),
    "dpm++2m-sde-karras": (
        "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
    ),
    "dpm++sde": ("DPMSolverSinglestepScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
    # more of A1111's samplers, as diffusers' scheduler docs map them (read from shared images, --from)
    "euler-karras": ("EulerDiscreteScheduler", {"use_karras_sigmas": True}),
    "heun-karras": ("HeunDiscreteScheduler", {"use_karras_sigmas": True}),
    "lms-karras": ("LMSDiscreteScheduler", {"use_karras_sigmas": True}),
    "dpm++sde-karras": ("DPMSolverSinglestepScheduler", {"use_karras_sigmas": True}),
    "dpm++2m-sde-exponential": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": False, "use_exponential_sigmas": True},
    ),
    "dpm++3m-sde": (
        "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 3, "use_karras_sigmas": False},
    ),
    "dpm++3m-sde-karras": (
        "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 3, "use_karras_sigmas": True},
    ),
    "dpm++3m-sde-exponential": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 3, "use_karras_sigmas": False, "use_exponential_sigmas": True},
    ),
    "dpm2": ("KDPM2DiscreteScheduler", {}),
    "dpm2-karras": ("KDPM2DiscreteScheduler", {"use_karras_sigmas": True}),
    "dpm2-a": ("KDPM2AncestralDiscreteScheduler", {}),
    "dpm2-a-karras": ("KDPM2AncestralDiscreteScheduler", {"use_karras_sigmas": True}),
}

A1111_NAMES = {
    "euler": "Euler", "euler-a": "Euler a", "heun": "Heun", "lms": "LMS", "ddim": "DDIM", "ddpm": "DDPM",
    "pndm": "PLMS", "dpm++2m": "DPM++ 2M", "dpm++2m-karras": "DPM++ 2M Karras", "dpm++2m-sde": "DPM++ 2M SDE",
    "dpm++2m-sde-karras": "DPM++ 2M SDE Karras", "dpm++sde": "DPM++ SDE", "unipc": "UniPC", "lcm": "LCM",
    "euler-karras": "Euler Karras", "heun-karras": "Heun Karras", "lms-karras": "LMS Karras",
    "dpm++sde-karras": "DPM++ SDE Karras", "dpm++2m-sde-exponential": "DPM++ 2M SDE Exponential",
    "dpm++3m-sde": "DPM++ 3M SDE", "dpm++3m-sde-karras": "DPM++ 3M SDE Karras",
    "dpm++3m-sde-exponential": "DPM++ 3M SDE Exponential", "dpm2": "DPM2", "dpm2-karras": "DPM2 Karras",
    "dpm2-a": "DPM2 a", "dpm2-a-karras": "DPM2 a Karras",
}


def check_name(name: str | None) -> str | None:
    """Validate a scheduler name before anything heavy is imported."""
    if name is None or name in SCHEDULERS:
        return name
    raise UsageError(f"Unknown scheduler '{name}'; valid names: {', '.join(SCHEDULERS)}.")


def apply(pipe: Any, name: str) -> None:
    """Swap the pipeline's scheduler for `name`, keeping the model's own config (betas, prediction type)."""
    import diffusers

    class_name, overrides = SCHEDULERS[name]
    cls = getattr(diffusers, class_name)
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **overrides)
    decoder = getattr(pipe, "decoder_pipe", None)  # combined Kandinsky pipelines: the decoder holds its own reference
    if decoder is not None and hasattr(decoder, "scheduler"):
        decoder.scheduler = pipe.scheduler


def share(pipe: Any, scheduler: Any) -> None:
    """Give `pipe` (and a combined Kandinsky's decoder) `scheduler`, as `apply` does with a new one."""
    if scheduler is None or getattr(pipe, "scheduler", scheduler) is scheduler:
        return
    pipe.scheduler = scheduler
    decoder = getattr(pipe, "decoder_pipe", None)
    if decoder is not None and hasattr(decoder, "scheduler"):
        decoder.scheduler = scheduler


def describe(scheduler: Any) -> str:
    """The user-facing name of a live scheduler, for metadata (the class name when unnamed)."""
    cls = type(scheduler).__name__
    cfg = scheduler.config
    matches = [
        (len(overrides), name) for name, (class_name, overrides) in SCHEDULERS.items()
        if class_name == cls and all(cfg.get(k) == v for k, v in overrides.items())
    ]
    # the most specific entry wins: a Karras Euler is "euler-karras", not "euler" (whose overrides are none)
    return max(matches, key=lambda m: m[0])[1] if matches else cls
