"""After loading: move the pipeline to its device and apply the speed/memory switches, each through diffusers'
own API (LoRAs, CPU offload, VAE tiling/slicing, a tiny VAE, torch.compile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from difftool import hub
from difftool.errors import ModelUnavailable, UsageError


def place(pipe: Any, device: str, dtype: Any, opts: Any, say: Any = None) -> None:
    """Apply `opts` (a LoadOptions) to a freshly loaded pipeline on `device`; `say` reports what loads."""
    if opts.tiny_vae and getattr(pipe, "vae", None) is None and getattr(pipe, "movq", None) is not None:
        raise UsageError(f"--tiny-vae replaces a VAE; {type(pipe).__name__} decodes with MoVQ, which it cannot replace.")
    if opts.tiny_vae and getattr(pipe, "vae", None) is not None and type(pipe.vae).__name__ != "AutoencoderTiny":
        pipe.vae = load_tiny_vae(opts.tiny_vae, dtype, opts.refresh)  # single-file checkpoints: swapped after loading
    if opts.lora:  # before offload hooks and torch.compile
        from difftool import lora

        lora.apply(pipe, opts.lora, refresh=opts.refresh)
    if opts.ip_adapter:  # likewise before offload and compile
        from difftool import ipadapter

        ipadapter.apply(pipe, opts.ip_adapter, opts.ip_adapter_count, opts.allow_pickle, opts.refresh, say=say)
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
    _vae_switches(pipe, opts)
    if opts.cache:  # after offload hooks, before torch.compile
        from difftool import stepcache

        stepcache.apply(pipe, opts.cache, opts.cache_threshold)
    if opts.compile:
        _compile(pipe)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)


def _vae_switches(pipe: Any, opts: Any) -> None:
    vae = getattr(pipe, "vae", None) or getattr(pipe, "movq", None)
    for flag, method in ((opts.vae_tiling, "enable_tiling"), (opts.vae_slicing, "enable_slicing")):
        if not flag:
            continue
        name = f"--vae-{method.split('_')[1][:-3]}ing"
        if vae is None or not hasattr(vae, method):
            raise UsageError(f"{name} is not supported by {type(pipe).__name__}.")
        if method == "enable_tiling" and vae is getattr(pipe, "movq", None) and not hasattr(vae, "use_tiling"):
            from difftool.loading import movq

            movq.enable_tiling(vae)  # diffusers does not tile MoVQ (Kandinsky): our tiled decode
            continue
        try:
            getattr(vae, method)()
        except NotImplementedError as exc:
            raise UsageError(f"{name} is not supported by {type(vae).__name__} ({type(pipe).__name__}).") from exc


def _compile(pipe: Any) -> None:
    import torch

    denoiser = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
    if getattr(pipe, denoiser, None) is None:
        raise UsageError(f"--compile: {type(pipe).__name__} has no unet or transformer to compile.")
    setattr(pipe, denoiser, torch.compile(getattr(pipe, denoiser)))
    decoder = getattr(pipe, "decoder_pipe", None)  # combined Kandinsky pipelines: the decoder holds its own
    if decoder is not None and getattr(decoder, denoiser, None) is not None:
        setattr(decoder, denoiser, getattr(pipe, denoiser))


def load_tiny_vae(ref_text: str, dtype: Any, refresh: bool = False) -> Any:
    """An AutoencoderTiny from a folder or hub id (cache first, like pipelines)."""
    from diffusers import AutoencoderTiny

    path = Path(ref_text).expanduser()
    if not path.is_dir():
        from difftool.references import split_revision

        repo, rev = split_revision(ref_text)
        path = hub.fetch_files(repo, rev, ["*.json", "*.safetensors"], refresh=refresh)
    try:
        return AutoencoderTiny.from_pretrained(str(path), dtype=dtype, use_safetensors=True, local_files_only=True)
    except Exception as exc:
        raise ModelUnavailable(f"--tiny-vae '{ref_text}' is not an AutoencoderTiny folder: "
                               f"{str(exc).splitlines()[0]}") from exc
