"""Device and dtype choice (`--device`, `--dtype`), right for CUDA, Apple MPS and CPU users."""

from __future__ import annotations

from typing import Any

from difftool import console
from difftool.errors import UsageError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "fp16", "bf16", "fp32")


def check(device: str, dtype: str) -> None:
    """Validate names before torch is imported."""
    if device not in DEVICES and not device.startswith("cuda:"):
        raise UsageError(f"Unknown device '{device}'; use one of {', '.join(DEVICES)} (or cuda:N).")
    if dtype not in DTYPES:
        raise UsageError(f"Unknown dtype '{dtype}'; use one of {', '.join(DTYPES)}.")


def resolve_device(name: str) -> str:
    """auto: cuda, then mps, then cpu. An explicit device that is missing is an error, not a fallback."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: this torch build sees no CUDA GPU (is the CUDA build of torch installed?).")
    if name == "mps" and not has_mps:
        raise UsageError("--device mps: Apple MPS is not available on this machine.")
    return name


def resolve_dtype(name: str, device: str) -> Any:
    """auto: fp16 on GPUs (cuda, mps), fp32 on CPU, where fp16 is slow and bf16 is the fast choice."""
    import torch

    if name == "auto":
        return torch.float32 if device == "cpu" else torch.float16
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]
    if dtype is torch.bfloat16 and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        raise UsageError("--dtype bf16: this GPU does not support bfloat16; use fp16.")
    if dtype is torch.float16 and device == "cpu":
        console.warn("fp16 on CPU is slow and some operations lack fp16 kernels; bf16 is the fast CPU choice.")
    return dtype


def dtype_name(dtype: Any) -> str:
    return {"torch.float16": "fp16", "torch.bfloat16": "bf16", "torch.float32": "fp32"}.get(str(dtype), str(dtype))
