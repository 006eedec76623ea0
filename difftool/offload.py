"""`--offload group`: diffusers' group offloading, between `--offload model` and `--offload sequential`.

Weights live in CPU memory and move to the GPU a group of layers at a time (leaf-level groups, prefetched on a
CUDA stream so transfers overlap compute): near `sequential`'s memory floor at a fraction of its slowdown. For
GPUs smaller than one component of the model (the 12-32B transformers of Flux, Flux.2, Qwen-Image). GPU only,
like the other offload modes.
"""

from __future__ import annotations

from typing import Any


def enable_group(pipe: Any, device: str) -> None:
    """`pipe.enable_group_offload` onto `device` (streams on CUDA), offloading to the CPU."""
    import torch

    cuda = device.startswith("cuda")
    pipe.enable_group_offload(onload_device=torch.device(device), offload_device=torch.device("cpu"),
                              offload_type="leaf_level", use_stream=cuda)
