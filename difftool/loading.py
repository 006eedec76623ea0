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

from difftool import console, devices, hub
from difftool.errors import ModelUnavailable, UsageError
from difftool.references import ModelRef

#: task -> the diffusers class that serves it
TASK_CLASSES = {
    "text2img": "AutoPipelineForText2Image",
    "img2img": "AutoPipelineForImage2Image",
    "inpaint": "AutoPipelineForInpainting",
    "upscale": "DiffusionPipeline",  # upscalers are not served by AutoPipeline: loaded by their own class
}
OFFLOAD_MODES = ("model", "sequential")
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

    def switches(self) -> dict[str, object]:
        """The speed/memory switches in effect, recorded in every image's metadata."""
        values = {"offload": self.offload, "vae_tiling": self.vae_tiling, "vae_slicing": self.vae_slicing,
                  "compile": self.compile, "tiny_vae": self.tiny_vae}
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

    @property
    def dtype_name(self) -> str:
        return devices.dtype_name(self.dtype)


def quiet_libraries() -> None:
    """Keep library chatter (tqdm bars, deprecation notices) off the user's stderr."""
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
    return hub.fetch_pipeline(
        ref.repo_id, ref.revision, allow_pickle=opts.allow_pickle, variant=opts.variant, refresh=opts.refresh
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
    return kwargs


def load_pipeline(ref: ModelRef, task: str, opts: LoadOptions, **extra: Any) -> Loaded:
    """Load `ref` for `task` (a key of TASK_CLASSES) on the chosen device and dtype."""
    device = devices.resolve_device(opts.device)
    dtype = devices.resolve_dtype(opts.dtype, device)
    if opts.offload and device == "cpu":
        raise UsageError("--offload moves weights between CPU and GPU: it needs --device cuda (or mps).")
    quiet_libraries()
    import diffusers

    console.info(f"Loading {ref.label} on {device} ({devices.dtype_name(dtype)})")
    auto = getattr(diffusers, TASK_CLASSES[task])
    if ref.kind == "file" and task == "upscale":
        raise ModelUnavailable(f"'{ref.path}' is a single-file checkpoint; upscalers load from a pipeline folder "
                               "or hub id (x4, x2-latent, ldm-x4).")
    if ref.kind == "file":
        pipe = load_single_file(ref, opts, dtype)
        if task != "text2img":
            pipe = _switch_task(auto, pipe, ref, task)
    else:
        folder = local_folder(ref, opts)
        kwargs: dict[str, Any] = {
            "dtype": dtype,
            "use_safetensors": None if opts.allow_pickle else True,
            "local_files_only": True,
            **component_kwargs(folder, opts),
            **extra,
        }
        if opts.variant:
            kwargs["variant"] = opts.variant
        if task == "upscale":
            check_upscaler(ref, folder)
        try:
            pipe = auto.from_pretrained(folder, **kwargs)
        except Exception as exc:
            raise _load_error(exc, ref, task, folder) from exc
    place(pipe, device, dtype, opts)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return Loaded(pipe, ref, device, dtype, opts)


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
    if opts.tiny_vae and getattr(pipe, "vae", None) is not None:
        pipe.vae = load_tiny_vae(opts.tiny_vae, dtype, opts)
    if opts.lora:  # before offload hooks and torch.compile
        from difftool import lora

        lora.apply(pipe, opts.lora, refresh=opts.refresh)
    if opts.offload:
        gpu = "cuda" if device.startswith("cuda") else device
        if opts.offload == "model":
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
            getattr(vae, method)()
    if opts.compile:
        import torch

        denoiser = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
        if getattr(pipe, denoiser, None) is None:
            raise UsageError(f"--compile: {type(pipe).__name__} has no unet or transformer to compile.")
        setattr(pipe, denoiser, torch.compile(getattr(pipe, denoiser)))


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
