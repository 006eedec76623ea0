"""Single-file checkpoints (original-format `.safetensors`, or pickles with `--allow-pickle`) through diffusers'
`from_single_file`: the pipeline class comes from `--config`'s model_index.json, else from the checkpoint's keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from difftool import hub
from difftool.errors import ModelUnavailable
from difftool.loading.index import PipelineIndex
from difftool.references import ModelRef

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


def single_file_config(ref: ModelRef, refresh: bool = False) -> Path | None:
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
    return hub.fetch_files(repo, rev, SINGLE_FILE_CONFIG_PATTERNS, refresh=refresh)


def single_file_class(ref: ModelRef, config: Path | None = None) -> str:
    """Which pipeline class a single-file checkpoint belongs to: from its config folder, else from its keys."""
    if config is None and ref.config and Path(ref.config).expanduser().is_dir():
        config = Path(ref.config).expanduser()
    if config is not None:
        name = PipelineIndex.read(config).class_name
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


def load_single_file(ref: ModelRef, opts: Any, dtype: Any) -> Any:
    """Load an original-format checkpoint with diffusers' `from_single_file`."""
    if ref.is_pickle and not opts.allow_pickle:
        raise ModelUnavailable(
            f"'{ref.path}' is a pickle checkpoint, which can run code when loaded; "
            "use a .safetensors file or pass --allow-pickle if you trust it."
        )
    import diffusers

    config = single_file_config(ref, opts.refresh)
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
