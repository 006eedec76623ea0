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
}

A1111_NAMES = {
    "euler": "Euler", "euler-a": "Euler a", "heun": "Heun", "lms": "LMS", "ddim": "DDIM", "ddpm": "DDPM",
    "pndm": "PLMS", "dpm++2m": "DPM++ 2M", "dpm++2m-karras": "DPM++ 2M Karras", "dpm++2m-sde": "DPM++ 2M SDE",
    "dpm++2m-sde-karras": "DPM++ 2M SDE Karras", "dpm++sde": "DPM++ SDE", "unipc": "UniPC", "lcm": "LCM",
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


def describe(scheduler: Any) -> str:
    """The user-facing name of a live scheduler, for metadata (the class name when unnamed)."""
    cls = type(scheduler).__name__
    cfg = scheduler.config
    for name, (class_name, overrides) in SCHEDULERS.items():
        if class_name == cls and all(cfg.get(k) == v for k, v in overrides.items()):
            return name
    return cls
