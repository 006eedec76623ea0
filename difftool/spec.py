"""The job spec: one typed, validated, JSON-serialisable description of a piece of work.

A spec is what the CLI builds from its options, what the PNG's `difftool` chunk records (with what ran filled
in), what `--from` loads back, what `--json` result lines carry, and what the server and `difftool batch`
accept. It is flat, with fields named like the long flags (`--prior-steps` -> `prior_steps`), so a JSONL line
can give just a few of them: `{"prompt": "a cat", "seed": 3}`. `None` means "the model's default".

Every value is checked here, whatever it came from (flag, environment, config file, a stored image, a
request), before any model loads: invalid specs are `SpecError`s (exit 2) naming the field. Limits that
protect memory (`MAX_PIXELS` and friends) apply to every source too; `max_pixels` raises the size one.
pydantic is imported only when a spec is built, never by `--help`.
"""

from __future__ import annotations

import math
from typing import Any

from difftool.errors import UsageError

#: The spec format's version (`version` in every spec and PNG chunk). Version 1 is the flat dict the first
#: releases wrote, with difftool's version string in `version`: still read (`from_record`).
VERSION = 2
TASKS = ("gen", "img2img", "inpaint", "upscale", "variation", "interpolate")
#: The largest seed; image i of a spec uses seed + i, which must stay in range too.
MAX_SEED = 2**63 - 1
#: Protective limits (the same for flags, config, --from and requests). Sizes: `max_pixels` raises that one.
MAX_PIXELS = 4096 * 4096
MAX_SIDE = 16384
MAX_STEPS = 1000
MAX_IMAGES = 10000
MAX_FRAMES = 1000
MAX_PROMPT = 20000
#: Field -> the flag that sets it, for messages.
FLAGS = {
    "num_images": "-n/--num-images", "width": "--width", "height": "--height", "steps": "--steps",
    "guidance": "--guidance", "seed": "--seed", "negative": "--negative", "scheduler": "--scheduler",
    "strength": "--strength", "prior_steps": "--prior-steps", "prior_guidance": "--prior-guidance",
    "noise_level": "--noise-level", "tile": "--tile", "model": "--model", "prior": "--prior", "config": "--config",
    "device": "--device", "dtype": "--dtype", "offload": "--offload", "tiny_vae": "--tiny-vae",
    "vae_tiling": "--vae-tiling", "vae_slicing": "--vae-slicing", "compile": "--compile", "lora": "--lora",
    "frames": "--frames", "weights": "--weights", "gif": "--gif", "prompt_weight": "--prompt-weight",
    "variant": "variant", "safety_checker": "--no-safety-checker", "max_pixels": "--max-pixels",
    "weighting": "--weighting", "clip_skip": "--clip-skip", "lora_dir": "--lora-dir", "hires_scale": "--hires",
    "hires_steps": "--hires-steps", "hires_denoise": "--hires-denoise", "hires_upscaler": "--hires-upscaler",
    "control": "--control", "control_start": "--control-start", "control_end": "--control-end",
    "image_prompt": "--image-prompt", "ip_adapter": "--ip-adapter", "true_cfg": "--true-cfg",
    "max_sequence_length": "--max-sequence-length", "quantize": "--quantize", "quantize_text": "--quantize-text",
    "transformer": "--transformer", "cache": "--cache", "cache_threshold": "--cache-threshold",
}
_LOAD = {"version", "task", "model", "config", "variant", "lora", "seed", "device", "dtype", "offload", "vae_tiling",
         "vae_slicing", "compile", "tiny_vae", "safety_checker"}
_GEN = _LOAD | {"prompt", "negative", "steps", "guidance", "scheduler", "width", "height", "max_pixels", "num_images",
                "prior", "prior_steps", "prior_guidance"}
_SOURCE = {"source", "source_sha256", "source_data"}
_PROMPTING = {"weighting", "clip_skip", "lora_dir"}
_HIRES = {"hires_scale", "hires_steps", "hires_denoise", "hires_upscaler"}
_GUIDES = {"control", "control_start", "control_end", "image_prompt", "ip_adapter"}
_DIT = {"true_cfg", "max_sequence_length", "quantize", "quantize_text", "transformer", "cache", "cache_threshold"}
#: The fields each task takes: a spec may set no other (a typo in a JSONL line is an error, not ignored).
TASK_FIELDS = {
    "gen": _GEN | _PROMPTING | _HIRES | _GUIDES | _DIT,
    "img2img": _GEN | _PROMPTING | _GUIDES | _DIT | _SOURCE | {"strength"},
    "inpaint": _GEN | _PROMPTING | _GUIDES | _DIT | _SOURCE | {"strength", "mask", "mask_sha256", "mask_data"},
    "upscale": (_LOAD - {"lora", "tiny_vae", "vae_slicing", "config"}) | _SOURCE | {
        "prompt", "negative", "steps", "guidance", "noise_level", "tile"},
    "variation": (_GEN - {"config"}) | _SOURCE | {"prompt_weight"},
    "interpolate": (_GEN - {"config", "prompt"}) | {"items", "weights", "frames", "gif"},
}
#: Tasks whose models are interchangeable: `--from` replays the model (and prior, LoRAs) only within a family.
MODEL_FAMILIES = ({"gen", "img2img", "inpaint"}, {"upscale"}, {"variation", "interpolate"})
#: Spec fields that describe the machine a job ran on, not the image: `--from` does not replay them.
MACHINE_FIELDS = ("device", "dtype", "offload", "compile")
#: Keys a stored record carries besides the spec: what ran (recorded, never read back as settings).
RECORD_ONLY = ("pipeline", "difftool", "lora_tags", "denoise_steps", "scale", "tile_overlap", "frame", "safety_checker_ran",
               "path", "images", "frames_written")


class SpecError(UsageError):
    """An invalid spec (exit 2): the message names the field (or flag) and the rule."""


def __getattr__(name: str) -> Any:
    """`JobSpec` and `LoraRef` are pydantic models built on first use: pydantic costs ~0.1 s to import, which
    `--help` and the commands that make no image never pay."""
    global _BUILT
    if name in ("JobSpec", "LoraRef", "Item"):
        if _BUILT is None:
            _BUILT = _build()
        return _BUILT[name]
    raise AttributeError(name)


_BUILT: dict[str, Any] | None = None


def _build() -> dict[str, Any]:
    from typing import Literal, Optional

    from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

    from difftool import devices, schedulers

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", validate_assignment=False)

    class LoraRef(Strict):
        """A LoRA adapter: a .safetensors file, a folder, a hub id or org/name/file.safetensors, and its scale."""

        ref: str = Field(min_length=1)
        scale: float = 1.0

        @field_validator("scale")
        @classmethod
        def _finite(cls, v: float) -> float:
            if not math.isfinite(v):
                raise ValueError("must be a finite number")
            return v

    class Item(Strict):
        """An interpolation item: a text, or an image (a path, with its SHA-256 when recorded; or inline
        base64 bytes in `data`, for requests, where a path given too is only its label)."""

        text: Optional[str] = None
        image: Optional[str] = None
        sha256: Optional[str] = Field(None, pattern=r"^[0-9a-f]{64}$")
        data: Optional[str] = None

        @model_validator(mode="after")
        def _one(self) -> Any:
            given = [k for k in ("text", "image", "data") if getattr(self, k) is not None]
            if len(given) != 1 and given != ["image", "data"]:  # both: data, labelled with its path
                raise ValueError("an item is exactly one of text, image (a path) or data (base64 image bytes)")
            return self

    class FileRef(Strict):
        """An image a guide uses: a path (with its SHA-256 once recorded), or base64 bytes in `data` (requests;
        a path given too is only the label recorded for them). A plain string is a path."""

        path: Optional[str] = None
        sha256: Optional[str] = Field(None, pattern=r"^[0-9a-f]{64}$")
        data: Optional[str] = None

        @model_validator(mode="before")
        @classmethod
        def _path(cls, value: Any) -> Any:
            return {"path": value} if isinstance(value, str) else value

        @model_validator(mode="after")
        def _one(self) -> Any:
            if self.path is None and self.data is None:
                raise ValueError("an image is a path or base64 data (with both, the path is only a label)")
            return self

    class ControlRef(Strict):
        """One ControlNet: its model (alias, hub id, folder), its control image, scale, preprocessor and (Union
        models) control type."""

        model: str = Field(min_length=1)
        image: FileRef
        scale: float = Field(1.0, ge=0, le=10, allow_inf_nan=False)
        preprocess: str = "none"
        mode: Optional[str] = None

        @field_validator("preprocess")
        @classmethod
        def _preprocess(cls, v: str) -> str:
            from difftool import preprocess

            return preprocess.parse(v).text

    class ImagePromptRef(Strict):
        """One IP-Adapter image prompt and its scale."""

        image: FileRef
        scale: float = Field(1.0, ge=0, le=10, allow_inf_nan=False)

    class JobSpec(Strict):
        """One piece of work for difftool's engine. Fields left out (None) take the model's defaults."""

        version: Literal[2] = Field(VERSION, description="Spec format version.")
        task: Literal["gen", "img2img", "inpaint", "upscale", "variation", "interpolate"] = "gen"
        # -- the model
        model: Optional[str] = Field(None, description="Alias, hub id org/name[@rev], pipeline folder or "
                                     ".safetensors file; None: the task's default model.")
        prior: Optional[str] = Field(None, description="unCLIP (Kandinsky) prior: folder, hub id or alias.")
        config: Optional[str] = Field(None, description="Single-file checkpoints: folder or hub id of configs.")
        variant: Optional[str] = Field(None, description="Weights variant (e.g. fp16).")
        lora: list[LoraRef] = Field(default_factory=list)
        # -- what to make
        prompt: Optional[str] = Field(None, max_length=MAX_PROMPT)
        negative: Optional[str] = Field(None, max_length=MAX_PROMPT)
        seed: Optional[int] = Field(None, ge=0, le=MAX_SEED, description="Seed of the first image; image i "
                                    "uses seed + i. None: drawn at random and recorded.")
        num_images: int = Field(1, ge=1, le=MAX_IMAGES)
        steps: Optional[int] = Field(None, ge=1, le=MAX_STEPS)
        guidance: Optional[float] = Field(None, ge=0, le=1000, allow_inf_nan=False)
        scheduler: Optional[str] = None
        width: Optional[int] = Field(None, ge=8, le=MAX_SIDE)
        height: Optional[int] = Field(None, ge=8, le=MAX_SIDE)
        max_pixels: Optional[int] = Field(None, ge=64, description="Raise the size limit (width x height, "
                                          f"default {MAX_PIXELS}) for sizes you mean.")
        strength: Optional[float] = Field(None, ge=0, le=1, allow_inf_nan=False)
        prior_steps: Optional[int] = Field(None, ge=1, le=MAX_STEPS)
        prior_guidance: Optional[float] = Field(None, ge=0, le=1000, allow_inf_nan=False)
        noise_level: Optional[int] = Field(None, ge=0, le=1000)
        tile: Optional[int] = Field(None, ge=0, le=MAX_SIDE)
        # -- prompt syntax, hires fix (difftool.prompts, difftool.hires, difftool.lora_tags)
        weighting: Optional[str] = Field(None, description="Prompt syntax: a1111 (default), compel or off.")
        clip_skip: Optional[int] = Field(None, ge=0, le=24, description="CLIP layers to skip (diffusers' count: "
                                         "A1111's 'Clip skip: 2' is 1 on SD 1.x).")
        lora_dir: Optional[list[str]] = Field(None, description="Folders where <lora:name:scale> tags are looked up.")
        hires_scale: Optional[float] = Field(None, ge=1, le=8, allow_inf_nan=False)
        hires_steps: Optional[int] = Field(None, ge=1, le=MAX_STEPS)
        hires_denoise: Optional[float] = Field(None, gt=0, le=1, allow_inf_nan=False)
        hires_upscaler: Optional[str] = Field(None, description="latent (default), latent-bicubic, ..., lanczos, "
                                              "nearest, or an upscaler model reference.")
        # -- image guides (difftool.control, difftool.ipadapter, difftool.guides)
        control: list[ControlRef] = Field(default_factory=list, description="ControlNets and their control images.")
        control_start: Optional[float] = Field(None, ge=0, le=1, allow_inf_nan=False)
        control_end: Optional[float] = Field(None, ge=0, le=1, allow_inf_nan=False)
        image_prompt: list[ImagePromptRef] = Field(default_factory=list, description="IP-Adapter image prompts.")
        ip_adapter: Optional[str] = Field(None, description="IP-Adapter for image_prompt (default: the model "
                                          "family's standard one).")
        # -- transformer (DiT) models: call settings, quantization, step caches (difftool.callrules, .quantize,
        #    .stepcache, .components)
        true_cfg: Optional[float] = Field(None, ge=1, le=100, allow_inf_nan=False, description="Flux/Qwen-Image: "
                                          "real classifier-free guidance (true_cfg_scale); > 1 makes negative work.")
        max_sequence_length: Optional[int] = Field(None, ge=1, le=8192)
        quantize: Optional[str] = Field(None, description="int8, fp8, int4 or nf4 for the transformer/UNet.")
        quantize_text: Optional[str] = Field(None, description="int8, fp8, int4 or nf4 for the text encoders.")
        transformer: Optional[str] = Field(None, description="A .safetensors or .gguf file of the transformer.")
        cache: Optional[str] = Field(None, description="Step cache: first-block, taylorseer, faster or mag.")
        cache_threshold: Optional[float] = Field(None, gt=0, le=10, allow_inf_nan=False)
        # -- inputs: a path (with its SHA-256 once recorded), or base64 bytes in *_data for requests
        source: Optional[str] = Field(None, description="Input image path (img2img, inpaint, upscale, variation).")
        source_sha256: Optional[str] = Field(None, pattern=r"^[0-9a-f]{64}$")
        source_data: Optional[str] = Field(None, description="Input image as base64 bytes (server requests).")
        mask: Optional[str] = Field(None, description="Inpainting mask path: white = repaint.")
        mask_sha256: Optional[str] = Field(None, pattern=r"^[0-9a-f]{64}$")
        mask_data: Optional[str] = None
        items: list[Item] = Field(default_factory=list, description="interpolate: texts and images to mix.")
        weights: Optional[list[float]] = None
        frames: Optional[int] = Field(None, ge=2, le=MAX_FRAMES)
        gif: bool = False
        prompt_weight: Optional[float] = Field(None, ge=0, le=1, allow_inf_nan=False,
                                               description="variation: share of the prompt.")
        # -- how to load and run
        device: Optional[str] = None
        dtype: Optional[str] = None
        offload: Optional[str] = None
        vae_tiling: bool = False
        vae_slicing: bool = False
        compile: bool = False
        tiny_vae: Optional[str] = None
        safety_checker: bool = True

        @field_validator("guidance", "prior_guidance", "strength", "prompt_weight")
        @classmethod
        def _finite(cls, v: Optional[float]) -> Optional[float]:
            if v is not None and not math.isfinite(v):
                raise ValueError("must be a finite number")
            return v

        @field_validator("weights")
        @classmethod
        def _finite_list(cls, v: Optional[list[float]]) -> Optional[list[float]]:
            if v is not None and not all(math.isfinite(x) for x in v):
                raise ValueError("must be finite numbers")
            return v

        @field_validator("weighting")
        @classmethod
        def _weighting(cls, v: Optional[str]) -> Optional[str]:
            from difftool import prompts

            return None if v is None else prompts.check_weighting(v)

        @field_validator("hires_upscaler")
        @classmethod
        def _upscaler(cls, v: Optional[str]) -> Optional[str]:
            from difftool import hires

            return None if v is None else hires.check(1.0, upscaler=v).upscaler  # A1111's names read back too

        @field_validator("quantize", "quantize_text")
        @classmethod
        def _scheme(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
            from difftool import quantize

            return quantize.check_scheme(v, FLAGS[info.field_name or "quantize"])

        @field_validator("transformer")
        @classmethod
        def _transformer(cls, v: Optional[str]) -> Optional[str]:
            from difftool import components

            return components.check_transformer_file(v)

        @field_validator("width", "height")
        @classmethod
        def _multiple(cls, v: Optional[int]) -> Optional[int]:
            if v is not None and v % 8:
                raise ValueError(f"{v} is not a multiple of 8")
            return v

        @field_validator("scheduler")
        @classmethod
        def _scheduler(cls, v: Optional[str]) -> Optional[str]:
            return schedulers.check_name(v)

        @field_validator("device")
        @classmethod
        def _device(cls, v: Optional[str]) -> Optional[str]:
            if v is not None:
                devices.check(v, "auto")
            return v

        @field_validator("dtype")
        @classmethod
        def _dtype(cls, v: Optional[str]) -> Optional[str]:
            if v is not None:
                devices.check("auto", v)
            return v

        @field_validator("offload")
        @classmethod
        def _offload(cls, v: Optional[str]) -> Optional[str]:
            if v is not None and v not in OFFLOAD_MODES:
                raise ValueError(f"unknown mode '{v}'; use {', '.join(OFFLOAD_MODES[:-1])} or {OFFLOAD_MODES[-1]}")
            return v

        @field_validator("prompt", "negative")
        @classmethod
        def _text(cls, v: Optional[str]) -> Optional[str]:
            if v is not None and "\0" in v:
                raise ValueError("contains a NUL character")
            return v

        @model_validator(mode="after")
        def _whole(self, info: ValidationInfo) -> Any:
            context = info.context or {}
            if not context.get("partial"):  # a record's fields checked alone, before merging
                check_whole(self, bool(context.get("flags")))
            return self

    return {"JobSpec": JobSpec, "LoraRef": LoraRef, "Item": Item, "FileRef": FileRef, "ControlRef": ControlRef}


OFFLOAD_MODES = ("model", "group", "sequential")
_ALL_FIELDS = set().union(*TASK_FIELDS.values())


def check_whole(spec: Any, flags: bool = False) -> None:
    """Rules across fields: what each task needs, sizes against the pixel limit, seeds in range. Messages name
    the flags (`--frames`) when `flags`, else the fields (`frames`)."""

    def n(field: str) -> str:
        return FLAGS.get(field, field) if flags else field

    task = spec.task
    foreign = sorted(name for name in spec.model_fields_set if name not in TASK_FIELDS[task])
    if foreign:
        raise ValueError(f"{task} does not take {', '.join(n(f) for f in foreign)}")
    if task in ("gen",) and spec.prompt is None:
        raise ValueError("gen needs a prompt")
    if spec.prompt is not None and not spec.prompt.strip() and task in ("gen", "img2img", "inpaint"):
        raise ValueError("the prompt is empty")
    if task in ("img2img", "inpaint") and spec.prompt is None:
        raise ValueError(f"{task} needs a prompt")
    if task in ("img2img", "inpaint", "upscale", "variation") and spec.source is None and spec.source_data is None:
        raise ValueError(f"{task} needs an input image (source)")
    if task == "inpaint" and spec.mask is None and spec.mask_data is None:
        raise ValueError("inpaint needs a mask")
    if task == "interpolate":
        if len(spec.items) < 2:
            raise ValueError("interpolate needs at least two items (texts or images)")
        if spec.weights is not None and len(spec.weights) != len(spec.items):
            raise ValueError(f"{n('weights')} has {len(spec.weights)} values for {len(spec.items)} items; give one "
                             "weight per item")
    if spec.gif and spec.frames is None:
        raise ValueError(f"{n('gif')} needs {n('frames')}")
    if spec.frames is not None and spec.weights is not None:
        raise ValueError(f"{n('weights')} and {n('frames')} do not combine: the frames walk from the first item to "
                         "the last")
    if spec.frames is not None and spec.num_images > 1:
        raise ValueError(f"{n('num_images')} and {n('frames')} do not combine: every frame uses the same seed "
                         f"(pick it with {n('seed')})")
    if spec.prompt_weight is not None and spec.prompt is None:
        raise ValueError(f"{n('prompt_weight')} needs {'--prompt' if flags else 'prompt'}")
    if task in ("img2img", "inpaint") and spec.steps and spec.strength is not None and spec.steps * spec.strength < 1:
        raise ValueError(f"{n('strength')} {spec.strength:g} with {spec.steps} steps leaves no denoising step; raise "
                         f"{n('strength')} or {n('steps')} (at least steps x strength >= 1)")
    if not spec.control and (spec.control_start is not None or spec.control_end is not None):
        raise ValueError(f"{n('control_start')}/{n('control_end')} apply to {n('control')}, which is not given")
    if (spec.control_start or 0.0) >= (1.0 if spec.control_end is None else spec.control_end):
        raise ValueError(f"{n('control_start')} must be below {n('control_end')}")
    if spec.ip_adapter and not spec.image_prompt:
        raise ValueError(f"{n('ip_adapter')} needs at least one {n('image_prompt')}")
    if spec.cache is not None or spec.cache_threshold is not None:
        from difftool import stepcache

        stepcache.check(spec.cache, spec.cache_threshold)
    if spec.hires_scale is not None and (spec.control or spec.image_prompt):
        raise ValueError(f"{n('hires_scale')} does not combine with {n('control')} or {n('image_prompt')} yet")
    if spec.hires_scale is None:
        given = [n(f) for f in ("hires_steps", "hires_denoise", "hires_upscaler") if getattr(spec, f) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} {n('hires_scale')} SCALE "
                             "(the hires fix is off without it)")
    limit = spec.max_pixels or MAX_PIXELS
    if spec.hires_scale and spec.width and spec.height:
        size = int(spec.width * spec.hires_scale) * int(spec.height * spec.hires_scale)
        if size > limit:
            raise ValueError(f"{n('hires_scale')} {spec.hires_scale:g} makes {size} pixels, over the limit of {limit}; "
                             f"pass {n('max_pixels')} {size} if you mean it")
    if spec.width and spec.height and spec.width * spec.height > limit:
        raise ValueError(f"{spec.width}x{spec.height} is {spec.width * spec.height} pixels, over the limit of "
                         f"{limit}; pass {n('max_pixels')} {spec.width * spec.height} if you mean it")
    for side in (spec.width, spec.height):
        if side and side * side > limit and not (spec.width and spec.height):
            raise ValueError(f"a side of {side} px makes images over the limit of {limit} pixels; pass "
                             f"{n('max_pixels')} if you mean it")
    if spec.seed is not None and spec.seed + spec.num_images - 1 > MAX_SEED:
        raise ValueError(f"{n('seed')} {spec.seed} with {spec.num_images} images goes past the largest seed "
                         f"{MAX_SEED}")


def schema() -> dict[str, Any]:
    """The JSON Schema of a job spec (`difftool schema`)."""
    out = __getattr__("JobSpec").model_json_schema()
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["title"] = "difftool job spec"
    return out


def describe_error(exc: Any, origin: str | None = None, flags: bool = True,
                   origins: dict[str, str] | None = None) -> str:
    """A pydantic ValidationError as one sentence naming the field (its flag when `flags`, or where its value
    came from in `origins`: an environment variable, the config file) and the rule."""
    parts = []
    for err in exc.errors()[:3]:
        loc = [str(x) for x in err.get("loc", ())]
        field = loc[0] if loc else ""
        name = (origins or {}).get(field) or (FLAGS.get(field, field) if flags and field else field)
        where = name + ("".join(f"[{x}]" if x.isdigit() else f".{x}" for x in loc[1:]) if len(loc) > 1 else "")
        message = str(err.get("msg", "is invalid"))
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        value = err.get("input")
        shown = "" if isinstance(value, (dict, list)) or value is None or not field else f" {value!r}"
        if err.get("type") == "extra_forbidden":
            parts.append(f"unknown field '{'.'.join(loc)}'")
        elif field:
            parts.append(f"{where}{shown}: {message}")
        else:
            parts.append(message)
    text = "; ".join(parts)
    return (f"{origin}: {text}" if origin else text[:1].upper() + text[1:]).rstrip(".") + "."


def build(fields: dict[str, Any], origin: str | None = None, flags: bool = True, partial: bool = False,
          origins: dict[str, str] | None = None) -> Any:
    """A validated JobSpec from plain fields; SpecError (exit 2) naming the field (the flag, with `flags`)
    otherwise, after `origin` (e.g. "--from x.png"). `partial`: check each field, not what a task needs."""
    from pydantic import ValidationError

    try:
        return __getattr__("JobSpec").model_validate(fields, context={"partial": partial, "flags": flags})
    except ValidationError as exc:
        raise SpecError(describe_error(exc, origin, flags, origins)) from None
    except UsageError as exc:  # raised by a name check (scheduler, device) inside a validator
        raise SpecError(f"{origin}: {exc.message}" if origin else exc.message) from None


def dump(spec: Any) -> dict[str, Any]:
    """The spec as JSON-ready fields, leaving out what is unset (None, False, empty) except `version`/`task`."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    return {"version": VERSION, "task": spec.task, **data, "safety_checker": spec.safety_checker}


def from_record(record: dict[str, Any]) -> dict[str, Any]:
    """Spec fields from a stored record: a PNG's `difftool` chunk (this version or a first-release one), a
    `--json` result line, or a JSONL line. Keys that record what ran (pipeline, device name...) are dropped;
    unknown keys are kept so that validation names them."""
    data = dict(record)
    legacy = isinstance(data.get("version"), str)  # first releases: version = difftool's version string
    if legacy:
        data.pop("version")
        data["version"] = VERSION
        items = data.get("items")
        if isinstance(items, list):
            data["items"] = [_legacy_item(item) for item in items]
        for key in ("lora",):
            if isinstance(data.get(key), list):
                data[key] = [x if isinstance(x, dict) else {"ref": str(x)} for x in data[key]]
    elif "difftool" in data and "version" not in data:
        data["version"] = VERSION
    if data.get("task") == "variation":  # what was mixed, recorded: the source and prompt make it
        data.pop("items", None)
        data.pop("weights", None)
    if "frame" in data:  # one frame of an interpolation: its own weights make it; the walk is not replayed
        data.pop("frames", None)
        data.pop("gif", None)
    for key in RECORD_ONLY:
        data.pop(key, None)
    task = data.get("task", "gen")
    if task in ("grid", "interpolate-gif"):
        raise SpecError(f"this image is a {task} of other images, not one job: run --from on one of them")
    if task in TASK_FIELDS:  # what else a record holds describes the result (an upscale's output size...)
        data = {k: v for k, v in data.items() if k in TASK_FIELDS[task] or k not in _ALL_FIELDS}
    return {k: v for k, v in data.items() if v is not None}


def _legacy_item(item: Any) -> Any:
    if isinstance(item, dict) and "image" in item and not isinstance(item["image"], dict):
        return {"image": item["image"], **({"sha256": item["sha256"]} if item.get("sha256") else {})}
    return item
