"""`difftool upscale`: enlarge images with a diffusion upscaler, in tiles, streamed to disk.

Upscalers (Stable Diffusion x4, the x2 latent upscaler, LDM x4 super-resolution) are loaded by their
own class (`load_pipeline(ref, "upscale", ...)`). Each input is padded to the sizes the model takes,
cut into overlapping tiles no larger than `tile` (`difftool.tiles`), and every tile is one pipeline
call with its own seed (seed + tile index); the blended result is written band by band, so memory
holds one row of tiles, whatever the image's height. The output is exactly `scale` times the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool import console, images, metadata, registry, tiles
from difftool.errors import DifftoolError, UsageError
from difftool.loading import Loaded, LoadOptions, call_defaults, check_accepts, load_pipeline
from difftool.outputs import OutputPlan, write_with
from difftool.references import ModelRef
from difftool.tasks.common import base_settings, run_pipe
from difftool.tasks.img2img import Outcome, check_inputs, report_bad
from difftool.tasks.text2img import seeds

#: Upscaler pipeline class -> the registry alias whose defaults (tile, noise level) a folder of that class gets.
CLASS_ALIAS = {
    "StableDiffusionUpscalePipeline": "x4",
    "StableDiffusionLatentUpscalePipeline": "x2-latent",
    "LDMSuperResolutionPipeline": "ldm-x4",
}
#: Output names: beside the input, `NAME.x4.png`.
DEFAULT_TARGET = "{dir}/{name}.x{scale}.png"
DEFAULT_TEMPLATE = "{name}.x{scale}.png"
FIELDS = ("seed", "index", "model", "date", "name", "scale", "dir")


@dataclass
class UpscaleRequest:
    """What the user asked for; None means the model's default. tile 0 = never tile."""

    images: list[str]
    prompt: str | None = None
    negative: str | None = None
    steps: int | None = None
    guidance: float | None = None
    noise_level: int | None = None
    seed: int | None = None
    tile: int | None = None


def defaults_for(ref: ModelRef, cls: str) -> registry.ModelSpec | None:
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


def call_kwargs(loaded: Loaded, req: UpscaleRequest, spec: registry.ModelSpec | None) -> dict[str, Any]:
    """Pipeline kwargs shared by every tile, refusing options the pipeline does not take (exit 2)."""
    pipe = loaded.pipe
    params = call_defaults(pipe)
    given = {"prompt": ("--prompt", req.prompt), "negative_prompt": ("--negative", req.negative),
             "num_inference_steps": ("--steps", req.steps), "guidance_scale": ("--guidance", req.guidance),
             "noise_level": ("--noise-level", req.noise_level)}
    check_accepts(pipe, {kwarg: flag for kwarg, (flag, value) in given.items() if value is not None})
    kwargs = {kwarg: value for kwarg, (_, value) in given.items() if value is not None}
    if spec is not None:  # registry defaults where the pipeline takes them (steps/guidance: the model's own entry)
        own = spec is loaded.ref.spec
        for kwarg, value in (("num_inference_steps", spec.steps if own else None),
                             ("guidance_scale", spec.guidance if own else None),
                             ("noise_level", spec.extra.get("noise_level"))):
            if value is not None and kwarg in params and kwarg not in kwargs:
                kwargs[kwarg] = value if kwarg == "guidance_scale" else int(value)
    if "prompt" in params and "prompt" not in kwargs:
        kwargs["prompt"] = ""  # text-guided upscalers need a prompt; an empty one means "just enlarge"
    max_noise = getattr(getattr(pipe, "config", None), "max_noise_level", None)
    if "noise_level" in kwargs and isinstance(max_noise, int) and not 0 <= kwargs["noise_level"] <= max_noise:
        raise UsageError(f"--noise-level {kwargs['noise_level']} is out of range: this model takes 0 to {max_noise}.")
    return kwargs


def run(ref: ModelRef, req: UpscaleRequest, opts: LoadOptions, plan: OutputPlan, as_json: bool = False) -> Outcome:
    """Upscale every readable input; bad inputs are reported and skipped (the command then exits 2)."""
    good, errors = check_inputs(req.images)
    report_bad(errors, len(req.images))
    loaded = load_pipeline(ref, "upscale", opts)
    pipe = loaded.pipe
    cls = type(pipe).__name__
    spec = defaults_for(ref, cls)
    kwargs = call_kwargs(loaded, req, spec)
    scale = scale_of(pipe)
    grain = granularity(pipe)
    tile = req.tile if req.tile is not None else int(spec.extra.get("tile", 128)) if spec else 128
    if tile and tile < grain:
        raise UsageError(f"--tile {tile} is too small for {cls}: use at least {grain} (or 0 for no tiling).")
    tile -= tile % grain
    overlap = max(grain, (tile // 4) // grain * grain) if tile else 0
    defaults = call_defaults(pipe)
    steps = kwargs.get("num_inference_steps", defaults.get("num_inference_steps"))
    settings = {
        **base_settings(loaded, "upscale"),
        "prompt": kwargs.get("prompt"), "negative": kwargs.get("negative_prompt"), "steps": steps,
        "guidance": kwargs.get("guidance_scale", defaults.get("guidance_scale")),
        "noise_level": kwargs.get("noise_level", defaults.get("noise_level")),
        "scale": scale, "tile": tile, "tile_overlap": overlap,
    }
    settings = {k: v for k, v in settings.items() if v is not None or k in ("prompt",)}
    first = seeds(UpscaleRequest([], seed=req.seed))  # type: ignore[arg-type]
    written: list[Path] = []
    failed = len(errors)
    for index, info in enumerate(good):
        try:
            source = _pixels(images.load(info.path))  # the decoded image is held once, as a uint8 array
        except UsageError as exc:
            console.error(exc.message)
            failed += 1
            continue
        height, width = source.shape[:2]
        record = {**settings, "seed": first, "width": width * scale, "height": height * scale,
                  "source": str(info.path.resolve()), "source_sha256": images.sha256(info.path)}
        path, fresh = plan.path_for(index, len(good), seed=first, model=loaded.ref.name, name=info.name,
                                    dir=str(info.path.parent), scale=scale)
        label = f"image {index + 1}/{len(good)}"
        path = write_with(
            lambda fh, source=source, record=record, label=label: _upscale_to(
                fh, pipe, source, kwargs, first, steps or 0, scale, grain, tile, overlap, record, label),
            path, overwrite=plan.overwrite, fresh=fresh,
        )
        written.append(path)
        if as_json:
            console.result_json({"path": str(path), **record})
        else:
            console.result(str(path))
        console.info(f"wrote {path} ({width}x{height} -> {width * scale}x{height * scale})")
        del source
    return Outcome(written, failed)


def _pixels(image: Any) -> Any:
    import numpy as np

    return np.asarray(image)


def _upscale_to(fh: Any, pipe: Any, source: Any, kwargs: dict[str, Any], seed: int, steps: int, scale: int,
                grain: int, tile: int, overlap: int, record: dict[str, Any], label: str) -> None:
    """Upscale `source` (uint8 RGB array) tile by tile and stream the PNG into `fh`."""
    import numpy as np

    height, width = source.shape[:2]
    padded_w, padded_h = -(-width // grain) * grain, -(-height // grain) * grain
    if (padded_w, padded_h) != (width, height):  # repeat the edge pixels up to the sizes the model takes
        source = np.pad(source, ((0, padded_h - height), (0, padded_w - width), (0, 0)), mode="edge")
    size = tile if tile and (padded_w > tile or padded_h > tile) else max(padded_w, padded_h)
    grid = tiles.layout(padded_w, padded_h, size, overlap)
    count = sum(len(row) for row in grid)
    if count > 1:
        console.info(f"{label}: {count} tiles of {min(size, padded_w)}x{min(size, padded_h)} px, overlap {overlap} px")
    from PIL import Image

    def process(t: tiles.Tile) -> Any:
        x0, y0, x1, y1 = t.box
        number = t.row * len(grid[0]) + t.col
        crop = Image.fromarray(source[y0:y1, x0:x1])
        tile_label = f"{label} tile {number + 1}/{count}" if count > 1 else label
        out = run_pipe(pipe, {**kwargs, "image": crop}, seed + number, steps, tile_label).images[0]
        if out.size != ((x1 - x0) * scale, (y1 - y0) * scale):
            raise DifftoolError(f"{type(pipe).__name__} returned {out.width}x{out.height} for a "
                                f"{x1 - x0}x{y1 - y0} tile, not x{scale}; this upscaler is not supported.")
        return out.convert("RGB")

    out_w, out_h = width * scale, height * scale
    stream = tiles.PngStream(fh, out_w, out_h, tiles.text_chunks(metadata.pnginfo(record)))
    emitted = 0
    for band in tiles.blend_rows(padded_w, padded_h, size, overlap, scale, process):
        keep = band[: max(0, out_h - emitted), :out_w]
        if len(keep):
            stream.write(keep)
        emitted += len(band)
    stream.close()
