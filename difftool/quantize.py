"""Quantization: `--quantize` (the transformer/UNet), `--quantize-text` (the text encoders), GGUF transformer files.

Everything goes through diffusers' own mechanisms: a `PipelineQuantizationConfig` with one config per component
(`quant_mapping`) passed to `from_pretrained`, so weights are quantized while they load and the full-precision
copy never sits in memory; a `GGUFQuantizationConfig` for `.gguf` transformer files. Schemes and backends:

| scheme | backend | where |
| --- | --- | --- |
| int8 | torchao `Int8WeightOnlyConfig` | CPU and GPU |
| fp8 | torchao `Float8WeightOnlyConfig` | CPU (emulated: memory saving only) and GPU (fast on compute capability 8.9+) |
| int4 | torchao `Int4WeightOnlyConfig` (group size 128, tinygemm "tile_packed_to_4d" layout) | CUDA GPUs |
| nf4 | bitsandbytes 4-bit NF4 (bf16 compute) | CUDA GPUs |

A missing backend package or a device the scheme cannot run on is a usage error (exit 2) naming the extra to
install (`pip install 'difftool[quant]'`) or the device to use.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from difftool.errors import UsageError

SCHEMES = ("int8", "fp8", "int4", "nf4")
#: scheme -> the backend package that implements it
BACKENDS = {"int8": "torchao", "fp8": "torchao", "int4": "torchao", "nf4": "bitsandbytes"}
#: schemes whose kernels exist only on CUDA GPUs
CUDA_ONLY = {"int4", "nf4"}
EXTRA = "pip install 'difftool[quant]'"


def check_scheme(value: str | None, flag: str) -> str | None:
    """Validate a scheme name before torch is imported (None: no quantization)."""
    if value is None:
        return None
    value = value.lower()
    if value not in SCHEMES:
        raise UsageError(f"Unknown {flag} scheme '{value}'; use one of {', '.join(SCHEMES)}.")
    return value


def require_package(package: str, what: str) -> None:
    """UsageError naming the extra when `package` is not installed (a cheap check: no import)."""
    if importlib.util.find_spec(package) is None:
        raise UsageError(f"{what} needs the '{package}' package, which is not installed: {EXTRA}.")


def check_device(scheme: str, device: str, flag: str) -> None:
    """Refuse a scheme that has no kernels on `device`, and a missing backend package."""
    backend = BACKENDS[scheme]
    if scheme in CUDA_ONLY and not device.startswith("cuda"):
        where = "CPU" if device == "cpu" else device
        raise UsageError(f"{flag} {scheme} ({backend}) runs on CUDA GPUs only, not on {where}; "
                         f"use {flag} int8 (torchao), which works everywhere.")
    require_package(backend, f"{flag} {scheme} ({backend})")


def _torchao_type(scheme: str) -> Any:
    from torchao.quantization import Float8WeightOnlyConfig, Int4WeightOnlyConfig, Int8WeightOnlyConfig

    if scheme == "int8":
        return Int8WeightOnlyConfig()
    if scheme == "fp8":
        return Float8WeightOnlyConfig()
    return Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d")  # torch's own CUDA kernel


def component_config(scheme: str, library: str, dtype: Any) -> Any:
    """The quantization config object for one component: diffusers' class for diffusers models (transformer,
    UNet), transformers' for the text encoders (PipelineQuantizationConfig wants each library's own)."""
    if library == "diffusers":
        import diffusers as lib
    else:
        import transformers as lib
    if BACKENDS[scheme] == "torchao":
        return lib.TorchAoConfig(_torchao_type(scheme))
    import torch

    compute = dtype if dtype in (torch.float16, torch.bfloat16) else torch.bfloat16
    return lib.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)


def _index(folder: Path) -> dict[str, Any]:
    from difftool.loading.index import PipelineIndex

    return PipelineIndex.read(folder).data


def denoiser_name(index: dict[str, Any]) -> str | None:
    """`transformer` or `unet`: the pipeline's denoiser component (None when it has neither)."""
    for name in ("transformer", "unet"):
        value = index.get(name)
        if isinstance(value, list) and value[0] is not None:
            return name
    return None


def text_encoder_names(index: dict[str, Any]) -> list[str]:
    """The pipeline's text encoders (`text_encoder`, `text_encoder_2`, ...), transformers models all."""
    return [name for name, value in index.items() if name.startswith("text_encoder") and isinstance(value, list)
            and value[0] == "transformers" and value[1] is not None]


def pipeline_config(folder: Path, denoiser: str | None, text: str | None, dtype: Any, label: str,
                    skip: tuple[str, ...] = ()) -> Any:
    """The `PipelineQuantizationConfig` for `from_pretrained` (None when nothing is quantized).

    `skip` names components loaded separately (a `--transformer` file), which get their own config."""
    if not denoiser and not text:
        return None
    index = _index(folder)
    mapping: dict[str, Any] = {}
    if denoiser:
        name = denoiser_name(index)
        if name is None:
            raise UsageError(f"--quantize: '{label}' ({index.get('_class_name', 'pipeline')}) has no transformer or "
                             "UNet to quantize.")
        if name not in skip:
            mapping[name] = component_config(denoiser, "diffusers", dtype)
    if text:
        names = text_encoder_names(index)
        if not names:
            raise UsageError(f"--quantize-text: '{label}' ({index.get('_class_name', 'pipeline')}) has no text "
                             "encoder to quantize.")
        for name in names:
            mapping[name] = component_config(text, "transformers", dtype)
    if not mapping:
        return None
    from diffusers import PipelineQuantizationConfig

    return PipelineQuantizationConfig(quant_mapping=mapping)


def gguf_config(dtype: Any) -> Any:
    """diffusers' GGUF config: weights stay quantized in memory and are dequantized to `dtype` layer by layer."""
    from diffusers import GGUFQuantizationConfig

    require_package("gguf", "A .gguf --transformer file")
    return GGUFQuantizationConfig(compute_dtype=dtype)


def quiet_backends() -> None:
    """torchao logs C-extension load failures (CUDA kernels on a CPU machine) and torch warns about its enums when
    diffusers/peft import it: keep that off the user's stderr (called before those imports)."""
    import logging

    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
