"""`difftool env`: what a bug report needs (versions, device, dtype support, cache and config folders).

Never prints a token: only whether huggingface_hub has one and where it comes from.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from difftool import __version__, console, options
from difftool.commands.common import guarded

PACKAGES = ("torch", "diffusers", "transformers", "huggingface_hub", "accelerate", "safetensors", "peft", "pillow",
            "typer", "rich", "numpy")


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _devices() -> dict[str, Any]:
    import torch

    from difftool import devices

    auto = devices.resolve_device("auto")
    out: dict[str, Any] = {"auto": auto, "cuda": None, "mps": False}
    if torch.cuda.is_available():
        out["cuda"] = {
            "version": torch.version.cuda,
            "devices": [f"{torch.cuda.get_device_name(i)} ({torch.cuda.get_device_properties(i).total_memory / 2**30:.1f} GiB)"
                        for i in range(torch.cuda.device_count())],
        }
    mps = getattr(torch.backends, "mps", None)
    out["mps"] = bool(mps and mps.is_available())
    dtypes = {"fp32": True, "fp16": True, "bf16": True}
    if auto == "cuda":
        dtypes["bf16"] = bool(torch.cuda.is_bf16_supported())
    out["dtypes"] = dtypes
    out["default_dtype"] = devices.dtype_name(devices.resolve_dtype("auto", auto))
    out["threads"] = torch.get_num_threads()
    return out


def _token() -> str:
    from huggingface_hub import get_token

    if not get_token():
        return "not set (gated models need `hf auth login` or HF_TOKEN)"
    return "set (HF_TOKEN)" if os.environ.get("HF_TOKEN") else "set (hf auth login)"


def collect() -> dict[str, Any]:
    from difftool import cache, config, hub

    path = config.config_path()
    return {
        "difftool": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "device": _devices(),
        "hf_cache": str(cache.cache_dir()),
        "hf_offline": hub.offline(),
        "hf_token": _token(),
        "config_file": str(path) + ("" if path.is_file() else " (not found)"),
    }


@guarded
def env(json_: options.Json = False) -> None:
    """Versions, device and dtype support, cache and config folders: paste this into bug reports."""
    data = collect()
    if json_:
        console.result_json(data)
        return
    dev = data["device"]
    lines = [f"difftool {data['difftool']}", f"python {data['python']} on {data['platform']}"]
    lines += [f"{name} {ver or 'not installed'}" for name, ver in data["packages"].items()]
    cuda = dev["cuda"]
    lines.append(f"device (auto): {dev['auto']}, {dev['threads']} CPU threads")
    lines.append("cuda: " + (f"{cuda['version']}: {', '.join(cuda['devices'])}" if cuda else "not available"))
    lines.append(f"mps: {'available' if dev['mps'] else 'not available'}")
    supported = ", ".join(name for name, ok in dev["dtypes"].items() if ok)
    lines.append(f"dtypes on {dev['auto']}: {supported} (auto: {dev['default_dtype']})")
    lines.append(f"HF cache: {data['hf_cache']}{' (offline)' if data['hf_offline'] else ''}")
    lines.append(f"HF token: {data['hf_token']}")
    lines.append(f"config file: {data['config_file']}")
    for line in lines:
        console.result(line)
