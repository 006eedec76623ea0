"""Pipeline loading: a resolved model reference -> a ready diffusers pipeline on the right device.

Generic on purpose: folders and hub ids go through diffusers' AutoPipeline classes, so any
pipeline they serve (SD 1.x/2.x/XL, Kandinsky, SD3, Flux, PixArt, ...) works with no code here.
Weights come from safetensors only unless `--allow-pickle`; remote code is never trusted.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool import components, console, devices, hub
from difftool.errors import ModelUnavailable, UsageError
from difftool.references import ModelRef

#: task -> the diffusers class that serves it
TASK_CLASSES = {
    "text2img": "AutoPipelineForText2Image",
    "img2img": "AutoPipelineForImage2Image",
    "inpaint": "AutoPipelineForInpainting",
    "upscale": "DiffusionPipeline",  # upscalers are not served by AutoPipeline: loaded by their own class
}
OFFLOAD_MODES = ("model", "sequential", "group")
TASK_WORDS = {"text2img": "text-to-image", "img2img": "image-to-image", "inpaint": "inpainting",
              "upscale": "upscaler"}
#: The pipeline classes the `upscale` task accepts (read from the folder's model_index.json).
UPSCALER_CLASSES = ("StableDiffusionUpscalePipeline", "StableDiffusionLatentUpscalePipeline",
                    "LDMSuperResolutionPipeline")


@dataclass
class LoadOptions:
    """How to load: device, dtype and the safety switches shared by every command."""

    device: str = "auto"
    dtype: str = "auto"
    allow_pickle: bool = False
    safety_checker: bool = True
    refresh: bool = False
    variant: str | None = None
    offload: str | None = None
    """`model` or `sequential` CPU offload (GPU only)."""
    vae_tiling: bool = False
    vae_slicing: bool = False
    compile: bool = False
    tiny_vae: str | None = None
    """Hub id or folder of an AutoencoderTiny used for decoding."""
    lora: tuple = ()
    """`difftool.lora.Lora` adapters to load (`--lora`)."""
    prior: str | None = None
    """`--prior`: the unCLIP prior (Kandinsky) to load with a decoder, overriding its own link."""
    quantize: str | None = None
    """`--quantize`: int8|fp8|int4|nf4 for the transformer/UNet (difftool.quantize)."""
    quantize_text: str | None = None
    """`--quantize-text`: the same schemes for the text encoders."""
    transformer: str | None = None
    """`--transformer`: a .safetensors/.gguf file of the transformer, configured by the base model (difftool.components)."""
    cache: str | None = None
    """`--cache`: first-block|taylorseer|faster|mag step cache on the transformer (difftool.stepcache)."""
    cache_threshold: float | None = None
    """`--cache-threshold`: first-block/mag threshold (None: diffusers' default)."""

    def switches(self) -> dict[str, object]:
        """The speed/memory switches in effect, recorded in every image's metadata."""
        values = {"offload": self.offload, "vae_tiling": self.vae_tiling, "vae_slicing": self.vae_slicing,
                  "compile": self.compile, "tiny_vae": self.tiny_vae, "quantize": self.quantize,
                  "quantize_text": self.quantize_text, "transformer": self.transformer, "cache": self.cache,
                  "cache_threshold": self.cache_threshold}
        if self.lora:
            values["lora"] = [lora.record() for lora in self.lora]
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


def quiet_libraries() -> None:
    """Keep library chatter (tqdm bars, deprecation notices) off the user's stderr."""
    from difftool import quantize

    quantize.quiet_backends()  # before transformers/peft import torchao
    import transformers

    transformers.utils.logging.set_verbosity(50)  # CRITICAL: failures reach the user as our own one-liners
    transformers.utils.logging.disable_progress_bar()
    import diffusers

    diffusers.utils.logging.set_verbosity(50)
    diffusers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")


def local_folder(ref: ModelRef, opts: LoadOptions) -> Path:
    """The folder holding `ref`'s pipeline, from disk or the HF cache (downloaded if missing)."""
    if ref.path is not None:
        return ref.path
    assert ref.repo_id is not None
    from difftool.components import skipped

    return hub.fetch_pipeline(
        ref.repo_id, ref.revision, allow_pickle=opts.allow_pickle, variant=opts.variant, refresh=opts.refresh,
        skip=skipped(opts),
    )


def pipeline_class_name(folder: Path) -> str | None:
    """`_class_name` from model_index.json."""
    try:
        return json.loads((folder / "model_index.json").read_text())["_class_name"]
    except (OSError, ValueError, KeyError):
        return None


def component_kwargs(folder: Path, opts: LoadOptions) -> dict[str, Any]:
    """Loader kwargs that depend on the pipeline's components (the safety checker switch)."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return {}
    kwargs: dict[str, Any] = {}
    checker = index.get("safety_checker")
    if not opts.safety_checker and isinstance(checker, list) and checker[0] is not None:
        kwargs["safety_checker"] = None
        if "requires_safety_checker" in index:
            kwargs["requires_safety_checker"] = False
    encoder = index.get("image_encoder")  # SD/SDXL use it only for IP-Adapter, which difftool does not load
    if str(index.get("_class_name", "")).startswith("StableDiffusion") and isinstance(encoder, list) \
            and encoder[0] is not None:
        kwargs["image_encoder"] = None
    return kwargs


def has_component(folder: Path, name: str) -> bool:
    """Whether the folder's model_index.json lists component `name` (with a class)."""
    try:
        value = json.loads((folder / "model_index.json").read_text()).get(name)
    except (OSError, ValueError):
        return False
    return isinstance(value, list) and value[0] is not None


def cpu_threads() -> int | None:
    """Cap torch's CPU threads at the cores this process may really use (affinity, cgroup quota), unless the
    user chose (OMP_NUM_THREADS / MKL_NUM_THREADS / DIFFTOOL_THREADS). Returns the count set, or None."""
    import os

    import torch

    from difftool import config

    chosen = config.lookup("threads", None, None, int)
    if chosen is None and (os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS")):
        return None
    cap = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:  # a container's CPU quota (cgroup v2): "max 100000" or "200000 100000"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cap = min(cap, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    threads = max(1, chosen) if chosen is not None else min(torch.get_num_threads(), cap)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


def load_pipeline(ref: ModelRef, task: str, opts: LoadOptions, **extra: Any) -> Loaded:
    """Load `ref` for `task` (a key of TASK_CLASSES) on the chosen device and dtype."""
    device = devices.resolve_device(opts.device)
    dtype = devices.resolve_dtype(opts.dtype, device)
    if opts.offload and device == "cpu":
        raise UsageError("--offload moves weights between CPU and GPU: it needs --device cuda (or mps).")
    quiet_libraries()
    import diffusers

    if device == "cpu":
        cpu_threads()
    console.info(f"Loading {ref.label} on {device} ({devices.dtype_name(dtype)})")
    auto = getattr(diffusers, TASK_CLASSES[task])
    if ref.kind == "file" and task == "upscale":
        raise ModelUnavailable(f"'{ref.path}' is a single-file checkpoint; upscalers load from a pipeline folder "
                               "or hub id (x4, x2-latent, ldm-x4).")
    unclip = None
    if ref.kind == "file":
        if opts.prior:
            raise UsageError(f"--prior applies to unCLIP models (Kandinsky 2.1/2.2), not to checkpoint '{ref.path}'.")
        components.refuse_for_single_file(ref, opts)
        pipe = load_single_file(ref, opts, dtype)
        if task != "text2img":
            pipe = _switch_task(auto, pipe, ref, task)
    else:
        folder = local_folder(ref, opts)
        kwargs: dict[str, Any] = {
            "dtype": dtype,
            "use_safetensors": None if opts.allow_pickle else True,
            "local_files_only": True,
            "low_cpu_mem_usage": True,  # memory-mapped safetensors, no random init (diffusers' default with accelerate)
            **component_kwargs(folder, opts),
            **components.load_kwargs(folder, opts, device, dtype, ref.label),  # --transformer, --quantize(-text)
            **extra,
        }
        if opts.tiny_vae and has_component(folder, "vae") and "vae" not in kwargs:
            kwargs["vae"] = load_tiny_vae(opts.tiny_vae, dtype, opts)  # the full VAE is then never loaded
        if opts.variant:
            kwargs["variant"] = opts.variant
        if task == "upscale":
            check_upscaler(ref, folder)
        unclip = unclip_prior(ref, folder, opts, dtype, task)
        try:
            if unclip is not None and unclip.decoder_only:  # decoder + separate prior -> the combined pipeline
                decoder = diffusers.DiffusionPipeline.from_pretrained(folder, **kwargs)
                pipe = auto.from_pipe(decoder, **unclip.kwargs)
            else:
                pipe = auto.from_pretrained(folder, **kwargs, **(unclip.kwargs if unclip else {}))
        except Exception as exc:
            raise _load_error(exc, ref, task, folder) from exc
    place(pipe, device, dtype, opts)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    if opts.prior and not is_unclip(pipe):
        raise UsageError(f"--prior applies to unCLIP models (Kandinsky 2.1/2.2); '{ref.label}' is a "
                         f"{type(pipe).__name__}.")
    return Loaded(pipe, ref, device, dtype, opts, prior=unclip.label if unclip else None)


# ---- unCLIP (Kandinsky 2.1/2.2): a decoder and its prior ------------------------------------------------

#: Prior pipeline class -> the decoder family it serves ("Kandinsky" 2.1, "KandinskyV22" 2.2).
UNCLIP_PRIORS = {"KandinskyPriorPipeline": "Kandinsky", "KandinskyV22PriorPipeline": "KandinskyV22"}


def unclip_family(class_name: str | None) -> str | None:
    """"Kandinsky"/"KandinskyV22" for a Kandinsky 2.1/2.2 pipeline class (decoder, prior or combined), else None."""
    if not class_name or not class_name.startswith("Kandinsky") or class_name.startswith("Kandinsky3"):
        return None
    return "KandinskyV22" if class_name.startswith("KandinskyV22") else "Kandinsky"


def is_unclip(pipe: Any) -> bool:
    """A combined prior + decoder pipeline (what difftool loads for Kandinsky 2.1/2.2)."""
    return getattr(pipe, "prior_pipe", None) is not None and getattr(pipe, "decoder_pipe", None) is not None


@dataclass
class UnclipPrior:
    """The prior to load with a Kandinsky model: `prior_<name>` kwargs for the combined pipeline (empty when the
    folder is already a combined one), whether the folder holds only the decoder, and the label to record."""

    kwargs: dict[str, Any]
    decoder_only: bool
    label: str


def readme_prior(folder: Path) -> str | None:
    """The prior a Hub decoder repo names in its README's YAML front matter (`prior: - org/name`), if any."""
    readme = folder / "README.md"
    try:
        if not readme.read_text(encoding="utf-8", errors="replace").lstrip().startswith("---"):
            return None  # no YAML header (and no "metadata block not found" notice from huggingface_hub)
        from huggingface_hub import ModelCard

        value = ModelCard.load(readme).data.to_dict().get("prior")
    except Exception:  # an unreadable card is no link
        return None
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value).strip() or None if value else None


def _prior_ref(text: str, folder: Path, origin: str) -> ModelRef:
    """`--prior`/registry/README text -> a ModelRef: an alias (its prior), a folder, or a hub id.

    A relative path from a README is tried against the decoder folder first, then the current directory
    (where diffusers itself would look)."""
    from difftool import references

    if origin == "README.md" and not Path(text).is_absolute() and (folder / text).is_dir():
        text = str(folder / text)
    try:
        ref = references.resolve(text)
    except ModelUnavailable as exc:
        if origin == "--prior":
            raise
        raise ModelUnavailable(f"The prior that {origin} names ('{text}') is not usable ({exc.message.rstrip('.')}); "
                               "pass --prior with the prior's folder or hub id.") from exc
    if ref.kind == "alias" and ref.spec is not None and ref.spec.prior:  # `--prior kandinsky22`: that model's prior
        ref = references.resolve(ref.spec.prior)
    if ref.kind == "file":
        raise UsageError(f"--prior must be a prior pipeline folder or hub id, not the file '{ref.path}'.")
    return ref


def unclip_prior(ref: ModelRef, folder: Path, opts: LoadOptions, dtype: Any, task: str = "text2img",
                 ) -> UnclipPrior | None:
    """For a Kandinsky 2.1/2.2 folder: find and load its prior (None for other models).

    Where the prior comes from, first match wins: `--prior`; the registry (aliases and known hub ids); the
    decoder's README link (as on the Hub). A combined folder (saved with save_pretrained) carries its own prior.
    The prior is fetched cache-first like any model, so a cached Kandinsky works offline.
    """
    cls = pipeline_class_name(folder)
    family = unclip_family(cls)
    if family is None or cls in UNCLIP_PRIORS:
        if opts.prior:
            raise UsageError(f"--prior applies to unCLIP models (Kandinsky 2.1/2.2); '{ref.label}' is a "
                             f"{cls or 'pipeline without a class name'}.")
        if cls in UNCLIP_PRIORS:
            raise ModelUnavailable(f"Model '{ref.label}' is a Kandinsky prior ({cls}); pass its decoder with --model "
                                   f"and the prior with --prior.")
        return None
    combined = "Combined" in (cls or "")
    if task == "inpaint" and _unet_in_channels(folder) == 4:
        raise ModelUnavailable(
            f"Model '{ref.label}' is a Kandinsky text-to-image decoder; inpainting needs its inpainting decoder "
            "(e.g. kandinsky-community/kandinsky-2-2-decoder-inpaint, whose README names the prior)."
        )
    if combined and not opts.prior:
        return UnclipPrior({}, decoder_only=False, label=ref.label)
    if opts.prior:
        prior_text, origin = opts.prior, "--prior"
    elif ref.spec is not None and ref.spec.prior:
        prior_text, origin = ref.spec.prior, f"the registry entry of '{ref.spec.alias}'"
    else:
        readme = folder / "README.md"
        if not readme.is_file() and ref.repo_id:  # diffusers' download skips a decoder's README: fetch it
            fetched = hub.fetch_file(ref.repo_id, "README.md", ref.revision)
            readme = fetched if fetched is not None else readme
        prior_text, origin = readme_prior(readme.parent), "README.md"
    if not prior_text:
        raise ModelUnavailable(
            f"Model '{ref.label}' is a Kandinsky decoder ({cls}) without a link to its prior; pass --prior with "
            "the prior's folder or hub id (e.g. --prior kandinsky-community/kandinsky-2-2-prior)."
        )
    prior_ref = _prior_ref(prior_text, folder, origin)
    try:
        prior_folder = local_folder(prior_ref, opts)
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"{exc.message.rstrip('.')} (the prior of '{ref.label}', named by {origin}; "
                               "--prior FOLDER uses a local copy).") from exc
    prior_cls = pipeline_class_name(prior_folder)
    if prior_cls not in UNCLIP_PRIORS:
        raise ModelUnavailable(f"The prior '{prior_ref.label}' ({origin}) is a {prior_cls or 'folder without a pipeline'}"
                               ", not a Kandinsky prior pipeline; pass --prior with the decoder's prior.")
    if UNCLIP_PRIORS[prior_cls] != family:
        raise ModelUnavailable(f"The prior '{prior_ref.label}' is a {prior_cls}, which does not match the decoder "
                               f"'{ref.label}' ({cls}): Kandinsky 2.1 and 2.2 priors are not interchangeable.")
    import diffusers

    console.info(f"Loading prior {prior_ref.label}")
    kwargs: dict[str, Any] = {"dtype": dtype, "use_safetensors": None if opts.allow_pickle else True,
                              "local_files_only": True}
    try:
        prior = diffusers.DiffusionPipeline.from_pretrained(prior_folder, **kwargs)
    except Exception as exc:
        raise _load_error(exc, prior_ref, "text2img", prior_folder) from exc
    return UnclipPrior({f"prior_{name}": part for name, part in prior.components.items()},
                       decoder_only=not combined, label=prior_ref.label)


def _unet_in_channels(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / "unet" / "config.json").read_text())["in_channels"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_upscaler(ref: ModelRef, folder: Path) -> None:
    """Refuse (exit 3) a folder whose pipeline class is not one of UPSCALER_CLASSES, before loading it."""
    cls = pipeline_class_name(folder)
    if cls not in UPSCALER_CLASSES:
        raise ModelUnavailable(
            f"Model '{ref.label}' is a {cls or 'folder without a pipeline class'}, not an upscaler; "
            "use x4, x2-latent, ldm-x4, or a folder/hub id holding one of " + ", ".join(UPSCALER_CLASSES) + "."
        )


def place(pipe: Any, device: str, dtype: Any, opts: LoadOptions) -> None:
    """Move the pipeline to its device and apply the speed/memory switches, each through diffusers' own API."""
    if opts.tiny_vae and getattr(pipe, "vae", None) is None and getattr(pipe, "movq", None) is not None:
        raise UsageError(f"--tiny-vae replaces a VAE; {type(pipe).__name__} decodes with MoVQ, which it cannot replace.")
    if opts.tiny_vae and getattr(pipe, "vae", None) is not None and type(pipe.vae).__name__ != "AutoencoderTiny":
        pipe.vae = load_tiny_vae(opts.tiny_vae, dtype, opts)  # single-file checkpoints: swapped after loading
    if opts.lora:  # before offload hooks and torch.compile
        from difftool import lora

        lora.apply(pipe, opts.lora, refresh=opts.refresh)
    if opts.offload:
        gpu = "cuda" if device.startswith("cuda") else device
        if opts.offload == "group":
            from difftool import offload

            offload.enable_group(pipe, device)
        elif opts.offload == "model":
            pipe.enable_model_cpu_offload(device=gpu)
        else:
            pipe.enable_sequential_cpu_offload(device=gpu)
    else:
        pipe.to(device)
    vae = getattr(pipe, "vae", None) or getattr(pipe, "movq", None)
    for flag, method in ((opts.vae_tiling, "enable_tiling"), (opts.vae_slicing, "enable_slicing")):
        if flag:
            if vae is None or not hasattr(vae, method):
                raise UsageError(f"--vae-{method.split('_')[1][:-3]}ing is not supported by {type(pipe).__name__}.")
            if method == "enable_tiling" and vae is getattr(pipe, "movq", None) and not hasattr(vae, "use_tiling"):
                from difftool import movq

                movq.enable_tiling(vae)  # diffusers does not tile MoVQ (Kandinsky): our tiled decode
                continue
            try:
                getattr(vae, method)()
            except NotImplementedError as exc:
                raise UsageError(f"--vae-{method.split('_')[1][:-3]}ing is not supported by "
                                 f"{type(vae).__name__} ({type(pipe).__name__}).") from exc
    if opts.cache:  # after offload hooks, before torch.compile
        from difftool import stepcache

        stepcache.apply(pipe, opts.cache, opts.cache_threshold)
    if opts.compile:
        import torch

        denoiser = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
        if getattr(pipe, denoiser, None) is None:
            raise UsageError(f"--compile: {type(pipe).__name__} has no unet or transformer to compile.")
        setattr(pipe, denoiser, torch.compile(getattr(pipe, denoiser)))
        decoder = getattr(pipe, "decoder_pipe", None)  # combined Kandinsky pipelines: the decoder holds its own
        if decoder is not None and getattr(decoder, denoiser, None) is not None:
            setattr(decoder, denoiser, getattr(pipe, denoiser))


def load_tiny_vae(ref_text: str, dtype: Any, opts: LoadOptions) -> Any:
    """An AutoencoderTiny from a folder or hub id (cache first, like pipelines)."""
    from diffusers import AutoencoderTiny

    path = Path(ref_text).expanduser()
    if not path.is_dir():
        from difftool.references import split_revision

        repo, rev = split_revision(ref_text)
        path = hub.fetch_files(repo, rev, ["*.json", "*.safetensors"], refresh=opts.refresh)
    try:
        return AutoencoderTiny.from_pretrained(str(path), dtype=dtype, use_safetensors=True, local_files_only=True)
    except Exception as exc:
        raise ModelUnavailable(f"--tiny-vae '{ref_text}' is not an AutoencoderTiny folder: {str(exc).splitlines()[0]}") from exc


def _switch_task(auto: Any, pipe: Any, ref: ModelRef, task: str) -> Any:
    try:
        return auto.from_pipe(pipe)
    except ValueError as exc:
        raise ModelUnavailable(
            f"Model '{ref.label}' ({type(pipe).__name__}) has no {TASK_WORDS[task]} pipeline."
        ) from exc


def _load_error(exc: Exception, ref: ModelRef, task: str, folder: Path) -> Exception:
    text = str(exc)
    if "AutoPipeline can't find a pipeline linked to" in text:
        cls = pipeline_class_name(folder) or "this pipeline"
        return ModelUnavailable(f"Model '{ref.label}' is a {cls}, not a {TASK_WORDS[task]} pipeline.")
    if "safetensors" in text.lower() and ("could not find" in text.lower() or "no file named" in text.lower()):
        return ModelUnavailable(
            f"Model '{ref.label}' has no safetensors weights; pickle weights can run code when loaded, "
            "so they are refused unless you pass --allow-pickle."
        )
    if "variant" in text.lower() and "no such modeling files" in text.lower() or "variant=" in text:
        return ModelUnavailable(f"Model '{ref.label}' has no '{text.split('variant=')[-1][:20]}' weights variant.")
    if ref.repo_id:
        translated = hub.translate(exc, ref.repo_id)
        if translated is not exc:
            return translated
    if isinstance(exc, (OSError, EnvironmentError)):
        return ModelUnavailable(f"Could not load model '{ref.label}': {text.splitlines()[0] if text else type(exc).__name__}")
    return exc


# ---- single-file checkpoints -------------------------------------------------------------------------

#: A key that only this family's original checkpoints hold -> the diffusers text-to-image class.
_SINGLE_FILE_MARKERS = (
    ("double_blocks.", "FluxPipeline"),
    ("model.diffusion_model.double_blocks.", "FluxPipeline"),
    ("model.diffusion_model.joint_blocks.", "StableDiffusion3Pipeline"),
    ("joint_blocks.", "StableDiffusion3Pipeline"),
    ("conditioner.embedders.1.", "StableDiffusionXLPipeline"),
)


#: What `from_single_file` reads from a config repo (diffusers' own allow-list): configs and tokenizers, no weights.
SINGLE_FILE_CONFIG_PATTERNS = ["**/*.json", "*.json", "*.txt", "**/*.txt", "**/*.model"]


def single_file_config(ref: ModelRef, opts: LoadOptions) -> Path | None:
    """The local folder holding --config's pipeline configs: the folder given, or the hub id's cached snapshot.

    A hub id goes through `hub.fetch_files` (cache first, bounded network only when missing), so
    `from_single_file` always gets a local folder and never goes online by itself.
    """
    if not ref.config:
        return None
    path = Path(ref.config).expanduser()
    if path.is_dir():
        return path
    from difftool.references import _HUB_ID, split_revision

    repo, rev = split_revision(ref.config)
    if not _HUB_ID.match(repo) or ref.config.startswith((".", "/", "~")):
        raise ModelUnavailable(f"--config '{ref.config}' is neither a folder of pipeline configs nor a hub id 'org/name'.")
    return hub.fetch_files(repo, rev, SINGLE_FILE_CONFIG_PATTERNS, refresh=opts.refresh)


def single_file_class(ref: ModelRef, config: Path | None = None) -> str:
    """Which pipeline class a single-file checkpoint belongs to: from its config folder, else from its keys."""
    if config is None and ref.config and Path(ref.config).expanduser().is_dir():
        config = Path(ref.config).expanduser()
    if config is not None:
        name = pipeline_class_name(config)
        if name:
            return name
    assert ref.path is not None
    if ref.path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(ref.path), framework="pt") as fh:
                keys = list(fh.keys())
        except Exception as exc:
            raise ModelUnavailable(f"'{ref.path}' is not a readable safetensors file.") from exc
        for marker, cls in _SINGLE_FILE_MARKERS:
            if any(k.startswith(marker) for k in keys):
                return cls
    return "StableDiffusionPipeline"


def load_single_file(ref: ModelRef, opts: LoadOptions, dtype: Any) -> Any:
    """Load an original-format checkpoint with diffusers' `from_single_file`."""
    if ref.is_pickle and not opts.allow_pickle:
        raise ModelUnavailable(
            f"'{ref.path}' is a pickle checkpoint, which can run code when loaded; "
            "use a .safetensors file or pass --allow-pickle if you trust it."
        )
    import diffusers

    config = single_file_config(ref, opts)
    cls_name = single_file_class(ref, config)
    cls = getattr(diffusers, cls_name, None)
    if cls is None or not hasattr(cls, "from_single_file"):
        raise ModelUnavailable(f"'{ref.path}' is a {cls_name} checkpoint, which cannot be loaded from a single file.")
    kwargs: dict[str, Any] = {"dtype": dtype}
    if config is not None:
        kwargs["config"] = str(config)
    if not opts.safety_checker:
        kwargs["safety_checker"] = None
    if hub.offline() or config is not None:
        kwargs["local_files_only"] = True
    else:
        hub.install_timeouts()
    try:
        return cls.from_single_file(str(ref.path), **kwargs)
    except Exception as exc:
        from difftool.errors import chain_names

        if chain_names(exc) & {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectError", "TimeoutException"}:
            raise ModelUnavailable(
                f"Loading '{ref.path.name if ref.path else ref.text}' needs its pipeline configs: pass --config with a "
                "folder or a cached hub id of the same architecture (e.g. --config sd15's hub id)."
            ) from exc
        if isinstance(exc, (ValueError, KeyError, RuntimeError, OSError)):
            raise ModelUnavailable(f"Could not load checkpoint '{ref.path}' as {cls_name}: {str(exc).splitlines()[0]}") from exc
        raise


def check_accepts(pipe: Any, given: dict[str, str]) -> None:
    """Refuse (exit 2) any option the loaded pipeline does not take, rather than dropping it."""
    import inspect

    params = inspect.signature(pipe.__call__).parameters
    for kwarg, flag in given.items():
        if kwarg not in params:
            raise UsageError(f"{flag} is not accepted by {type(pipe).__name__} (model '{pipe_label(pipe)}').")


def pipe_label(pipe: Any) -> str:
    return str(getattr(getattr(pipe, "config", {}), "get", lambda *_: None)("_name_or_path") or type(pipe).__name__)


def call_defaults(pipe: Any) -> dict[str, Any]:
    """The defaults the pipeline's __call__ uses, to record what actually ran."""
    import inspect

    return {
        name: p.default
        for name, p in inspect.signature(pipe.__call__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def is_usage_error(exc: BaseException) -> UsageError | None:
    """Pipelines report bad sizes/values as ValueError: pass those on as usage errors."""
    if isinstance(exc, ValueError):
        text = str(exc).splitlines()[0] if str(exc) else ""
        if any(w in text for w in ("divisible by", "must be", "has to be", "should be", "can't be", "cannot be")):
            return UsageError(text.rstrip(".") + ".")
    return None
