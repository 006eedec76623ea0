"""Pipeline loading: a resolved model reference -> a ready diffusers pipeline on the right device.

Generic on purpose: folders and hub ids go through diffusers' AutoPipeline classes, so any pipeline they serve
(SD 1.x/2.x/XL, Kandinsky, SD3, Flux, PixArt, ...) works with no code here. Weights come from safetensors only
unless `allow_pickle`; remote code is never trusted. The package's modules, one concern each: `index`
(model_index.json, read once), `setup` (process set-up), `unclip` (Kandinsky priors), `single_file`,
`switches` (what is applied after loading), `movq` (tiled MoVQ decode).

Only the engine (`difftool.engine`) calls `load` and `derive`; it caches what they return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from difftool import devices, hub
from difftool.errors import ModelUnavailable, UsageError, translate_load
from difftool.loading.index import PipelineIndex
from difftool.references import ModelRef

#: task -> the diffusers class that serves it
TASK_CLASSES = {
    "text2img": "AutoPipelineForText2Image",
    "img2img": "AutoPipelineForImage2Image",
    "inpaint": "AutoPipelineForInpainting",
    "upscale": "DiffusionPipeline",  # upscalers are not served by AutoPipeline: loaded by their own class
}
#: The pipeline classes the `upscale` task accepts (read from the folder's model_index.json).
UPSCALER_CLASSES = ("StableDiffusionUpscalePipeline", "StableDiffusionLatentUpscalePipeline",
                    "LDMSuperResolutionPipeline")


@dataclass(frozen=True)
class LoadOptions:
    """Everything that makes one loaded pipeline differ from another (the engine's cache key with the model)."""

    device: str = "auto"
    dtype: str = "auto"
    safety_checker: bool = True
    variant: str | None = None
    offload: str | None = None
    """`model` or `sequential` CPU offload (GPU only)."""
    vae_tiling: bool = False
    vae_slicing: bool = False
    compile: bool = False
    tiny_vae: str | None = None
    """Hub id or folder of an AutoencoderTiny used for decoding."""
    lora: tuple[Any, ...] = ()
    """`difftool.lora.Lora` adapters to load (`--lora`)."""
    prior: str | None = None
    """The unCLIP prior (Kandinsky) to load with a decoder, overriding its own link."""
    controlnets: tuple[str, ...] = ()
    """ControlNet references, in order (difftool.control): the ControlNet pipeline is loaded."""
    ip_adapter: str | None = None
    """The IP-Adapter ("auto": the family's standard one) and how many copies (one per image prompt)."""
    ip_adapter_count: int = 0
    quantize: str | None = None
    """int8|fp8|int4|nf4 for the transformer/UNet (difftool.quantize); `quantize_text` for the text encoders."""
    quantize_text: str | None = None
    transformer: str | None = None
    """A .safetensors/.gguf file of the transformer, configured by the base model (difftool.components)."""
    cache: str | None = None
    """first-block|taylorseer|faster|mag step cache on the transformer (difftool.stepcache)."""
    cache_threshold: float | None = None
    allow_pickle: bool = field(default=False, compare=False)
    refresh: bool = field(default=False, compare=False)
    """Policies of the caller, not properties of the pipeline: not part of the cache key."""

    def switches(self) -> dict[str, object]:
        """The speed/memory switches in effect, recorded in every image's metadata."""
        values = {"offload": self.offload, "vae_tiling": self.vae_tiling, "vae_slicing": self.vae_slicing,
                  "compile": self.compile, "tiny_vae": self.tiny_vae, "quantize": self.quantize,
                  "quantize_text": self.quantize_text, "transformer": self.transformer, "cache": self.cache,
                  "cache_threshold": self.cache_threshold}
        if self.lora:  # a prompt's <lora:...> tags are not listed: the prompt carries them
            values["lora"] = [lora.record() for lora in self.lora if not getattr(lora, "tag", None)] or None
        return {k: v for k, v in values.items() if v}


@dataclass
class Loaded:
    """A loaded pipeline and what it was loaded with (recorded in metadata)."""

    pipe: Any
    ref: ModelRef
    device: str
    dtype: Any
    opts: LoadOptions
    prior: str | None = None
    """unCLIP (Kandinsky): the prior that was loaded (its label), recorded in metadata."""

    @property
    def dtype_name(self) -> str:
        return devices.dtype_name(self.dtype)


def local_folder(ref: ModelRef, opts: LoadOptions) -> Path:
    """The folder holding `ref`'s pipeline, from disk or the HF cache (downloaded if missing)."""
    if ref.path is not None:
        return ref.path
    assert ref.repo_id is not None
    from difftool.components import skipped

    return hub.fetch_pipeline(
        ref.repo_id, ref.revision, allow_pickle=opts.allow_pickle, variant=opts.variant, refresh=opts.refresh,
        skip=skipped(opts),  # components given as files (--transformer): their weights are not downloaded
    )


def load(ref: ModelRef, task: str, opts: LoadOptions, threads: int | None = None,
         say: Callable[[str], None] | None = None) -> Loaded:
    """Load `ref` for `task` (a key of TASK_CLASSES) on the chosen device and dtype, switches applied; `say`
    reports what loads."""
    from difftool.loading import setup, switches, unclip

    device = devices.resolve_device(opts.device)
    dtype = devices.resolve_dtype(opts.dtype, device)
    if opts.offload and device == "cpu":
        raise UsageError("--offload moves weights between CPU and GPU: it needs --device cuda (or mps).")
    setup.quiet_libraries()
    import diffusers

    if device == "cpu":
        setup.cpu_threads(threads)
    say = say or (lambda _message: None)
    say(f"Loading {ref.label} on {device} ({devices.dtype_name(dtype)})")
    auto = getattr(diffusers, TASK_CLASSES[task])
    if ref.kind == "file" and task == "upscale":
        raise ModelUnavailable(f"'{ref.path}' is a single-file checkpoint; upscalers load from a pipeline folder "
                               "or hub id (x4, x2-latent, ldm-x4).")
    prior = None
    if ref.kind == "file":
        if opts.prior:
            raise UsageError(f"--prior applies to unCLIP models (Kandinsky 2.1/2.2), not to checkpoint '{ref.path}'.")
        from difftool import components
        from difftool.loading.single_file import load_single_file

        components.refuse_for_single_file(ref, opts)
        pipe = load_single_file(ref, opts, dtype)
        if opts.controlnets:
            from difftool import control

            pipe = control.attach(getattr(diffusers, TASK_CLASSES[task]), pipe, ref, opts, dtype, task, say=say)
        elif task != "text2img":
            pipe = switch_task(pipe, ref, task)
    else:
        index = PipelineIndex.read(local_folder(ref, opts))
        kwargs: dict[str, Any] = {
            "dtype": dtype,
            "use_safetensors": None if opts.allow_pickle else True,
            "local_files_only": True,
            "low_cpu_mem_usage": True,  # memory-mapped safetensors, no random init (diffusers' default with accelerate)
            **index.component_kwargs(opts.safety_checker),
        }
        if opts.transformer or opts.quantize or opts.quantize_text:
            from difftool import components

            kwargs.update(components.load_kwargs(index.folder, opts, device, dtype, ref.label, say=say))
        if opts.controlnets:
            from difftool import control

            kwargs.update(control.load_kwargs(ref, index.folder, opts, dtype, task, say=say))
        if opts.tiny_vae and index.has("vae"):
            kwargs["vae"] = switches.load_tiny_vae(opts.tiny_vae, dtype, opts.refresh)  # the full VAE is never loaded
        if opts.variant:
            kwargs["variant"] = opts.variant
        if task == "upscale" and index.class_name not in UPSCALER_CLASSES:
            raise ModelUnavailable(
                f"Model '{ref.label}' is a {index.class_name or 'folder without a pipeline class'}, not an upscaler; "
                "use x4, x2-latent, ldm-x4, or a folder/hub id holding one of " + ", ".join(UPSCALER_CLASSES) + "."
            )
        prior = unclip.unclip_prior(ref, index, opts, dtype=dtype, fetch=lambda r: local_folder(r, opts))
        if prior is not None and prior.label != ref.label:
            say(f"Loaded prior {prior.label}")
        try:
            if prior is not None and prior.decoder_only:  # decoder + separate prior -> the combined pipeline
                decoder = diffusers.DiffusionPipeline.from_pretrained(index.folder, **kwargs)
                pipe = auto.from_pipe(decoder, **prior.kwargs)
            else:
                pipe = auto.from_pretrained(index.folder, **kwargs, **(prior.kwargs if prior else {}))
        except Exception as exc:
            raise translate_load(exc, ref, task, index.class_name) from exc
        if task == "inpaint" and prior is not None:
            unclip.check_inpaint_decoder(pipe, ref.label)
    switches.place(pipe, device, dtype, opts, say)
    return Loaded(pipe, ref, device, dtype, opts=opts, prior=prior.label if prior else None)


def derive(loaded: Loaded, task: str) -> Loaded:
    """The same weights for another task (diffusers' `from_pipe`: no second read from disk, ~1 ms)."""
    from difftool.loading import unclip

    pipe = switch_task(loaded.pipe, loaded.ref, task)
    from difftool import ipadapter

    if hasattr(loaded.pipe, ipadapter.STATE_ATTR):  # the shared UNet already holds the adapter's layers
        setattr(pipe, ipadapter.STATE_ATTR, getattr(loaded.pipe, ipadapter.STATE_ATTR))
    if task == "inpaint" and unclip.is_unclip(pipe):
        unclip.check_inpaint_decoder(pipe, loaded.ref.label)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return Loaded(pipe, loaded.ref, loaded.device, loaded.dtype, opts=loaded.opts, prior=loaded.prior)


def switch_task(pipe: Any, ref: ModelRef, task: str) -> Any:
    """`AutoPipelineFor<task>.from_pipe(pipe)`, or ModelUnavailable (exit 3) when the model has no such pipeline."""
    import diffusers

    from difftool.errors import TASK_WORDS

    auto = getattr(diffusers, TASK_CLASSES[task])
    try:
        return auto.from_pipe(pipe)
    except ValueError as exc:
        raise ModelUnavailable(
            f"Model '{ref.label}' ({type(pipe).__name__}) has no {TASK_WORDS[task]} pipeline."
        ) from exc
