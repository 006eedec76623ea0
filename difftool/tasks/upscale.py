"""`upscale`: enlarge an image with a diffusion upscaler, in tiles, streamed to disk.

Upscalers (Stable Diffusion x4, the x2 latent upscaler, LDM x4 super-resolution) are loaded by their own class.
The input is padded to the sizes the model takes, cut into overlapping tiles no larger than `tile`
(`difftool.tiles`), and every tile is one pipeline call with its own seed (seed + tile index); the blended result
is written band by band while the PNG is written, so memory holds one row of tiles, whatever the image's height.
The output is exactly `scale` times the input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from difftool import registry, tiles
from difftool.errors import DifftoolError, UsageError
from difftool.tasks import inputs
from difftool.tasks.base import Context, Result, Step, base_record, call, call_defaults, check_accepts

#: Upscaler pipeline class -> the registry alias whose defaults (tile, noise level) a folder of that class gets.
CLASS_ALIAS = {
    "StableDiffusionUpscalePipeline": "x4",
    "StableDiffusionLatentUpscalePipeline": "x2-latent",
    "LDMSuperResolutionPipeline": "ldm-x4",
}


def defaults_for(ref: Any, cls: str) -> registry.ModelSpec | None:
    """The registry entry giving this upscaler its defaults: its own, else the alias of its class."""
    if ref.spec is not None and ref.spec.task == "upscale":
        return ref.spec
    alias = CLASS_ALIAS.get(cls)
    return registry.get(alias) if alias else None


def scale_of(pipe: Any) -> int:
    """How many times larger the pipeline's output is."""
    cls = type(pipe).__name__
    if cls == "StableDiffusionLatentUpscalePipeline":
        return 2
    if cls == "LDMSuperResolutionPipeline":
        return 2 ** (len(pipe.vqvae.config.block_out_channels) - 1)
    return int(pipe.vae_scale_factor)


def granularity(pipe: Any) -> int:
    """Input sizes the pipeline handles without cropping or failing: multiples of this."""
    cls = type(pipe).__name__
    down = 2 ** (len(pipe.unet.config.block_out_channels) - 1)
    if cls == "StableDiffusionLatentUpscalePipeline":  # 2x latents through the UNet
        return max(8, int(pipe.vae_scale_factor) * down // 2)
    if cls == "LDMSuperResolutionPipeline":  # its preprocessing crops to multiples of 32
        return max(32, down)
    return max(8, down, int(getattr(pipe, "vae_scale_factor", 8)))


def call_kwargs(pipe: Any, spec: Any, entry: registry.ModelSpec | None, *, own: bool, label: str) -> dict[str, Any]:
    """Pipeline kwargs shared by every tile, refusing options the pipeline does not take (exit 2)."""
    params = call_defaults(pipe)
    given = {"prompt": ("--prompt", spec.prompt), "negative_prompt": ("--negative", spec.negative),
             "num_inference_steps": ("--steps", spec.steps), "guidance_scale": ("--guidance", spec.guidance),
             "noise_level": ("--noise-level", spec.noise_level)}
    check_accepts(pipe, {kwarg: flag for kwarg, (flag, value) in given.items() if value is not None}, label)
    kwargs = {kwarg: value for kwarg, (_, value) in given.items() if value is not None}
    if entry is not None:  # registry defaults where the pipeline takes them (steps/guidance: the model's own entry)
        for kwarg, value in (("num_inference_steps", entry.steps if own else None),
                             ("guidance_scale", entry.guidance if own else None),
                             ("noise_level", entry.extra.get("noise_level"))):
            if value is not None and kwarg in params and kwarg not in kwargs:
                kwargs[kwarg] = value if kwarg == "guidance_scale" else int(value)
    if "prompt" in params and "prompt" not in kwargs:
        kwargs["prompt"] = ""  # text-guided upscalers need a prompt; an empty one means "just enlarge"
    max_noise = getattr(getattr(pipe, "config", None), "max_noise_level", None)
    if "noise_level" in kwargs and isinstance(max_noise, int) and not 0 <= kwargs["noise_level"] <= max_noise:
        raise UsageError(f"--noise-level {kwargs['noise_level']} is out of range: this model takes 0 to {max_noise}.")
    return kwargs


def run(ctx: Context, spec: Any) -> Iterator[Result]:
    """One upscaled image of the input, streamed when it is written."""
    loaded = ctx.pipeline("upscale")
    pipe = loaded.pipe
    cls = type(pipe).__name__
    entry = defaults_for(ctx.ref, cls)
    kwargs = call_kwargs(pipe, spec, entry, own=entry is ctx.ref.spec, label=loaded.ref.label)
    scale, grain = scale_of(pipe), granularity(pipe)
    tile = spec.tile if spec.tile is not None else int(entry.extra.get("tile", 128)) if entry else 128
    if tile and tile < grain:
        raise UsageError(f"--tile {tile} is too small for {cls}: use at least {grain} (or 0 for no tiling).")
    tile -= tile % grain
    overlap = max(grain, (tile // 4) // grain * grain) if tile else 0
    defaults = call_defaults(pipe)
    steps = kwargs.get("num_inference_steps", defaults.get("num_inference_steps"))
    source = inputs.source(spec)
    import numpy as np

    pixels = np.asarray(source.image)  # the decoded image is held once, as a uint8 array
    height, width = pixels.shape[:2]
    record = {
        **base_record(loaded, "upscale"),
        "prompt": kwargs.get("prompt") or None, "negative": kwargs.get("negative_prompt"), "steps": steps,
        "guidance": kwargs.get("guidance_scale", defaults.get("guidance_scale")),
        "noise_level": kwargs.get("noise_level", defaults.get("noise_level")),
        "scale": scale, "tile": tile, "tile_overlap": overlap, "seed": ctx.first_seed,
        "width": width * scale, "height": height * scale, **source.record("source"),
    }
    plan = Tiling(pipe=pipe, kwargs=kwargs, seed=ctx.first_seed, steps=steps or 0, scale=scale, grain=grain,
                  tile=tile, overlap=overlap, step=ctx.step,
                  label=f"{source.name} ({width}x{height} -> {width * scale}x{height * scale})")
    yield Result(record, {"name": source.name, "dir": str((source.path or Path(source.label or "x")).parent),
                          "scale": scale},
                 stream=lambda fh, rec: plan.write(fh, pixels, rec))


@dataclass
class Tiling:
    """How one input is upscaled tile by tile, kept until the PNG is written (the pixels are made then)."""

    pipe: Any
    kwargs: dict[str, Any]
    seed: int
    steps: int
    scale: int
    grain: int
    tile: int
    overlap: int
    step: Step
    label: str

    def write(self, fh: BinaryIO, source: Any, record: dict[str, Any]) -> None:
        """Upscale `source` (uint8 RGB array) and stream the PNG, with `record` in its chunks, into `fh`."""
        import numpy as np
        from PIL import Image

        from difftool import metadata

        height, width = source.shape[:2]
        grain, scale = self.grain, self.scale
        padded_w, padded_h = -(-width // grain) * grain, -(-height // grain) * grain
        if (padded_w, padded_h) != (width, height):  # repeat the edge pixels up to the sizes the model takes
            source = np.pad(source, ((0, padded_h - height), (0, padded_w - width), (0, 0)), mode="edge")
        size = self.tile if self.tile and (padded_w > self.tile or padded_h > self.tile) else max(padded_w, padded_h)
        grid = tiles.layout(padded_w, padded_h, size, self.overlap)
        count = sum(len(row) for row in grid)
        if count > 1:
            self.step.reporter.info(f"{self.label}: {count} tiles of {min(size, padded_w)}x{min(size, padded_h)} px, "
                                    f"overlap {self.overlap} px")

        def process(t: tiles.Tile) -> Any:
            x0, y0, x1, y1 = t.box
            number = t.row * len(grid[0]) + t.col
            crop = Image.fromarray(source[y0:y1, x0:x1])
            tile_label = f"{self.label} tile {number + 1}/{count}" if count > 1 else self.label
            out = call(self.pipe, {**self.kwargs, "image": crop}, self.seed + number, steps=self.steps,
                       label=tile_label, step=self.step).images[0]
            if out.size != ((x1 - x0) * scale, (y1 - y0) * scale):
                raise DifftoolError(f"{type(self.pipe).__name__} returned {out.width}x{out.height} for a "
                                    f"{x1 - x0}x{y1 - y0} tile, not x{scale}; this upscaler is not supported.")
            return out.convert("RGB")

        out_w, out_h = width * scale, height * scale
        stream = tiles.PngStream(fh, out_w, out_h, tiles.text_chunks(metadata.pnginfo(record)))
        emitted = 0
        for band in tiles.blend_rows(padded_w, padded_h, size, self.overlap, scale=scale, process=process):
            keep = band[: max(0, out_h - emitted), :out_w]
            if len(keep):
                stream.write(keep)
            emitted += len(band)
        stream.close()
