"""Hires fix (`--hires SCALE`): AUTOMATIC1111's two-pass text to image, with diffusers' own pipelines.

1. The text-to-image call at the base size (`-W`/`-H`), seed S.
2. The upscale to SCALE x the base size (floored to a multiple of 8, as A1111's latent sizes are):
   - `latent` (A1111's default "Latent"): the first pass's latents interpolated (bilinear, no antialias),
     never decoded; `latent-antialiased`, `latent-bicubic`, `latent-bicubic-antialiased`, `latent-nearest`,
     `latent-nearest-exact` are A1111's other latent modes;
   - `lanczos` / `nearest`: the decoded image resized with Pillow;
   - a model reference (`x4`, `x2-latent`, `ldm-x4`, a folder or hub id of a diffusion upscaler): the
     decoded image enlarged by that pipeline (one call, no tiles), then resized to the target with Lanczos.
3. Image to image at the scaled size with `AutoPipelineForImage2Image.from_pipe(pipe)` (the loaded components,
   no second load), the same text kwargs, and a fresh CPU generator seeded with S again (as A1111 reseeds).
   Steps follow A1111: `--hires-steps N` (default: the first pass's steps) are the steps that run, over a
   schedule of int(N / D) steps entered where denoise D of it is left (`setup_img2img_steps` with steps given).

`hires_fix(pipe, kwargs, seed, hires)` does it all and returns the final image; `HiresFix` is the same as a
callable that stands in for the pipeline where a task calls `pipe(**kwargs, generator=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from difftool.errors import UsageError

#: --hires-upscaler latent modes -> (torch interpolate mode, antialias, A1111's name)
LATENT_MODES = {
    "latent": ("bilinear", False, "Latent"),
    "latent-antialiased": ("bilinear", True, "Latent (antialiased)"),
    "latent-bicubic": ("bicubic", False, "Latent (bicubic)"),
    "latent-bicubic-antialiased": ("bicubic", True, "Latent (bicubic antialiased)"),
    "latent-nearest": ("nearest", False, "Latent (nearest)"),
    "latent-nearest-exact": ("nearest-exact", False, "Latent (nearest-exact)"),
}
#: --hires-upscaler image resamplers -> (Pillow filter name, A1111's name)
IMAGE_MODES = {"lanczos": ("LANCZOS", "Lanczos"), "nearest": ("NEAREST", "Nearest")}
DEFAULT_UPSCALER = "latent"
DEFAULT_DENOISE = 0.7
"""A1111's default hires denoising strength."""


@dataclass(frozen=True)
class Hires:
    """Hires fix settings: the spec's hires_scale, hires_steps (None: the first pass's), hires_denoise,
    hires_upscaler (a name of LATENT_MODES or IMAGE_MODES, else a diffusion upscaler's model reference)."""

    scale: float
    steps: int | None = None
    denoise: float = DEFAULT_DENOISE
    upscaler: str = DEFAULT_UPSCALER

    @property
    def is_model(self) -> bool:
        return self.upscaler not in LATENT_MODES and self.upscaler not in IMAGE_MODES

    def a1111_upscaler(self) -> str:
        """The `Hires upscaler` name A1111 writes (a model reference is written as typed)."""
        if self.upscaler in LATENT_MODES:
            return LATENT_MODES[self.upscaler][2]
        if self.upscaler in IMAGE_MODES:
            return IMAGE_MODES[self.upscaler][1]
        return self.upscaler

    def record(self, first_pass_steps: int | None) -> dict[str, Any]:
        """The settings to store in the image (hires_steps resolved to what ran)."""
        return {"hires_scale": self.scale, "hires_steps": self.steps or first_pass_steps,
                "hires_denoise": self.denoise, "hires_upscaler": self.upscaler}


def check(scale: float | None, steps: int | None = None, denoise: float | None = None,
          upscaler: str | None = None) -> Hires | None:
    """Validate the hires options before anything loads; None when `--hires` is not given."""
    if scale is None:
        extra = [flag for flag, value in (("--hires-steps", steps), ("--hires-denoise", denoise),
                                          ("--hires-upscaler", upscaler)) if value is not None]
        if extra:
            raise UsageError(f"{', '.join(extra)} {'needs' if len(extra) == 1 else 'need'} --hires SCALE (the hires fix is off "
                             "without it).")
        return None
    if not 1.0 <= scale <= 8.0:
        raise UsageError(f"--hires {scale:g} is out of range: use a scale from 1 to 8 (2 doubles the size).")
    if steps is not None and steps < 1:
        raise UsageError(f"--hires-steps {steps} must be at least 1.")
    denoise = DEFAULT_DENOISE if denoise is None else denoise
    if not 0.0 < denoise <= 1.0:
        raise UsageError(f"--hires-denoise {denoise:g} is out of range: use more than 0, at most 1.")
    name = (upscaler or DEFAULT_UPSCALER).strip()
    lowered = name.lower()
    for known, (*_, a1111) in LATENT_MODES.items():  # A1111's names read back from infotext work too
        if lowered in (known, a1111.lower()):
            name = known
    for known, (_, a1111) in IMAGE_MODES.items():
        if lowered in (known, a1111.lower()):
            name = known
    return Hires(float(scale), steps, float(denoise), name)


def target_size(width: int, height: int, scale: float, multiple: int = 8) -> tuple[int, int]:
    """A1111's `int(size * scale)`, floored to a multiple of the VAE's factor."""
    return int(width * scale) // multiple * multiple, int(height * scale) // multiple * multiple


def base_size(pipe: Any, width: int | None, height: int | None) -> tuple[int, int]:
    """The first pass's size: the one asked for, else the pipeline's default (as SD/SDXL pipelines compute it)."""
    if width is not None and height is not None:
        return width, height
    import inspect

    params = inspect.signature(pipe.__call__).parameters
    own = [params[k].default if k in params and isinstance(params[k].default, int) else None for k in ("width", "height")]
    if own[0] is not None and own[1] is not None:  # pipelines with a fixed default size (Kandinsky: 512)
        return width or own[0], height or own[1]
    factor = int(getattr(pipe, "vae_scale_factor", 8))
    sample = getattr(pipe, "default_sample_size", None)
    if sample is None:
        sample = getattr(getattr(getattr(pipe, "unet", None), "config", None), "sample_size", None) or 64
    sample = sample if isinstance(sample, int) else sample[0]
    return width or int(sample) * factor, height or int(sample) * factor


def second_pass_schedule(steps: int, denoise: float, max_steps: int = 1000) -> tuple[int, float]:
    """(num_inference_steps, strength) for diffusers' img2img so that exactly `steps` steps run over A1111's
    schedule of int(steps / denoise): diffusers runs int(num_inference_steps * strength) of them."""
    total = min(max(int(steps / min(denoise, 0.999)), steps), max_steps)
    return total, min(1.0, (steps + 0.5) / total)


class HiresFix:
    """The hires fix as a stand-in for the text-to-image pipeline: `hires(**kwargs, generator=g)` makes the first
    pass with `g` and the second with a fresh CPU generator seeded like `g`. `img2img` is the same weights' image
    to image pipeline (from_pipe), `upscaler` the loaded diffusion upscaler when `hires.upscaler` names one."""

    def __init__(self, pipe: Any, hires: Hires, *, img2img: Any = None, upscaler: Upscaler | None = None) -> None:
        self.pipe, self.hires = pipe, hires
        name = type(pipe).__name__
        if img2img is None:
            from diffusers import AutoPipelineForImage2Image

            try:
                img2img = AutoPipelineForImage2Image.from_pipe(pipe)
            except (ValueError, KeyError) as exc:
                raise UsageError(f"--hires needs an image-to-image pipeline for {name}, and diffusers has none.") from exc
            if hasattr(img2img, "set_progress_bar_config"):
                img2img.set_progress_bar_config(disable=True)
        self.img2img = img2img
        if hires.upscaler in LATENT_MODES and getattr(pipe, "vae", None) is None:
            raise UsageError(f"--hires-upscaler {hires.upscaler} interpolates VAE latents; {name} has no VAE: "
                             "use --hires-upscaler lanczos.")
        if hires.is_model and upscaler is None:
            raise UsageError(f"--hires-upscaler {hires.upscaler}: the upscaler model was not loaded.")
        self.upscaler = upscaler

    def __call__(self, generator: Any, callback_on_step_end: Any = None, **kwargs: Any) -> Any:
        return run(self.pipe, kwargs, generator.initial_seed(), self.hires, img2img=self.img2img,
                   upscaler=self.upscaler, callback_on_step_end=callback_on_step_end, generator=generator)


def hires_fix(pipe: Any, kwargs: dict[str, Any], seed: int, hires: Hires, **extra: Any) -> Any:
    """The final PIL image of the hires fix for one text-to-image call (`kwargs` without generator)."""
    return run(pipe, kwargs, seed, hires, **extra).images[0]


def run(pipe: Any, kwargs: dict[str, Any], seed: int, hires: Hires, *, img2img: Any = None, upscaler: Upscaler | None = None,
        callback_on_step_end: Any = None, generator: Any = None) -> Any:
    """Both passes; returns the second pass's pipeline output (`.images`, and the safety checker's flags)."""
    import inspect

    import torch

    if img2img is None:
        img2img = HiresFix(pipe, hires, upscaler=upscaler).img2img
    first = dict(kwargs)
    if callback_on_step_end is not None:
        first["callback_on_step_end"] = callback_on_step_end
    latent = hires.upscaler in LATENT_MODES
    gen = generator if generator is not None else torch.Generator("cpu").manual_seed(seed)
    out = pipe(**first, generator=gen, output_type="latent" if latent else "pil")
    factor = int(getattr(pipe, "vae_scale_factor", 8))
    if latent:
        latents = out.images
        if not isinstance(latents, torch.Tensor) or latents.ndim != 4:
            raise UsageError(f"--hires-upscaler {hires.upscaler} needs 4-D image latents; {type(pipe).__name__} gives "
                             "other ones: use --hires-upscaler lanczos.")
        width, height = latents.shape[-1] * factor, latents.shape[-2] * factor
        tw, th = target_size(width, height, hires.scale, factor)
        mode, antialias, _ = LATENT_MODES[hires.upscaler]
        image: Any = torch.nn.functional.interpolate(latents, size=(th // factor, tw // factor), mode=mode,
                                                     antialias=antialias)
    else:
        low = out.images[0]
        tw, th = target_size(low.width, low.height, hires.scale, factor)
        image = _enlarge(low, tw, th, hires, upscaler, seed, kwargs)
    steps = hires.steps or kwargs.get("num_inference_steps") or _default_steps(pipe)
    scheduler = getattr(img2img, "scheduler", None)
    limit = int(getattr(getattr(scheduler, "config", None), "num_train_timesteps", 1000) or 1000)
    total, strength = second_pass_schedule(steps, hires.denoise, limit)
    params = inspect.signature(img2img.__call__).parameters
    second = {k: v for k, v in kwargs.items() if k in params and k not in ("width", "height", "image", "strength")}
    second.update(image=image, strength=strength, num_inference_steps=total)
    if callback_on_step_end is not None and "callback_on_step_end" in params:
        second["callback_on_step_end"] = callback_on_step_end
    return img2img(**second, generator=torch.Generator("cpu").manual_seed(seed))


def _default_steps(pipe: Any) -> int:
    import inspect

    return int(inspect.signature(pipe.__call__).parameters["num_inference_steps"].default)


def _enlarge(low: Any, width: int, height: int, hires: Hires, upscaler: Any, seed: int,
             kwargs: dict[str, Any]) -> Any:
    """The decoded first pass at width x height: Pillow resampling, or the upscaler model then Lanczos."""
    from PIL import Image

    if upscaler is not None:
        import torch

        call = dict(upscaler.kwargs)
        if "prompt" in call and isinstance(kwargs.get("prompt"), str):
            call["prompt"] = kwargs["prompt"]
        low = upscaler.pipe(image=low, generator=torch.Generator("cpu").manual_seed(seed), **call).images[0]
        if low.size == (width, height):
            return low
        return low.resize((width, height), Image.Resampling.LANCZOS)
    resample = getattr(Image.Resampling, IMAGE_MODES[hires.upscaler][0])
    return low.resize((width, height), resample)


@dataclass
class Upscaler:
    """A loaded diffusion upscaler and the call kwargs `difftool upscale` gives it by default."""

    pipe: Any
    kwargs: dict[str, Any]

    @classmethod
    def of(cls, loaded: Any) -> Upscaler:
        """From the engine's loaded upscaler (its registry defaults: steps, guidance, noise level)."""
        from types import SimpleNamespace

        from difftool.tasks.upscale import call_kwargs, defaults_for

        entry = defaults_for(loaded.ref, type(loaded.pipe).__name__)
        unset = SimpleNamespace(prompt=None, negative=None, steps=None, guidance=None, noise_level=None)
        return cls(loaded.pipe, call_kwargs(loaded.pipe, unset, entry, own=entry is loaded.ref.spec,
                                            label=loaded.ref.label))
