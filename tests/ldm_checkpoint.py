"""Write a diffusers Stable Diffusion 1.x folder as ONE original-format (CompVis/LDM) `.safetensors` checkpoint.

The inverse of diffusers' `convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint` and
`convert_ldm_clip_checkpoint` (diffusers/loaders/single_file_utils.py), so tests can load a real
single-file checkpoint with `from_single_file(path, config=folder)` without downloading one.
General over the UNet/VAE shapes of the folder's configs (blocks, layers per block, which blocks
have attention); it covers what SD 1.x has, nothing more (no EMA, class or addition embeddings).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

UNET = "model.diffusion_model."
VAE = "first_stage_model."
CLIP = "cond_stage_model.transformer.text_model."

_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
}
_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_VAE_TOP = {"encoder.conv_norm_out": "encoder.norm_out", "decoder.conv_norm_out": "decoder.norm_out"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _resnet(rest: str, names: dict[str, str]) -> str:
    layer, _, param = rest.rpartition(".")
    return f"{names.get(layer, layer)}.{param}"


def unet_key(key: str, layers_per_block: int, up_with_attention: set[int]) -> str:
    """A diffusers UNet2DConditionModel key -> its LDM `model.diffusion_model.*` key."""
    per = layers_per_block + 1  # LDM counts a down block's downsampler (an up block's extra layer) as a layer
    layer, _, param = key.rpartition(".")
    if layer in _UNET_TOP:
        return f"{UNET}{_UNET_TOP[layer]}.{param}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, i, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = 1 + block * per + i
        return f"{UNET}input_blocks.{index}." + (f"0.{_resnet(rest, _UNET_RESNET)}" if kind == "resnets" else f"1.{rest}")
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key):
        return f"{UNET}input_blocks.{1 + int(m[1]) * per + layers_per_block}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"{UNET}middle_block.{2 * int(m[1])}.{_resnet(m[2], _UNET_RESNET)}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"{UNET}middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, i, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = block * per + i
        return f"{UNET}output_blocks.{index}." + (f"0.{_resnet(rest, _UNET_RESNET)}" if kind == "resnets" else f"1.{rest}")
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key):
        block = int(m[1])
        slot = 2 if block in up_with_attention else 1  # the upsampler follows the last layer's resnet (+ attention)
        return f"{UNET}output_blocks.{block * per + layers_per_block}.{slot}.conv.{m[2]}"
    raise KeyError(f"no LDM name for UNet key {key!r}")


def vae_key(key: str, num_up_blocks: int) -> str:
    """A diffusers AutoencoderKL key -> its LDM `first_stage_model.*` key."""
    layer, _, param = key.rpartition(".")
    if layer in _VAE_TOP:
        return f"{VAE}{_VAE_TOP[layer]}.{param}"
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"{VAE}encoder.down.{m[1]}.block.{m[2]}.{_resnet(m[3], {'conv_shortcut': 'nin_shortcut'})}"
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key):
        return f"{VAE}encoder.down.{m[1]}.downsample.conv.{m[2]}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):  # LDM numbers up blocks in reverse
        up = num_up_blocks - 1 - int(m[1])
        return f"{VAE}decoder.up.{up}.block.{m[2]}.{_resnet(m[3], {'conv_shortcut': 'nin_shortcut'})}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key):
        return f"{VAE}decoder.up.{num_up_blocks - 1 - int(m[1])}.upsample.conv.{m[2]}"
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"{VAE}{m[1]}.mid.block_{int(m[2]) + 1}.{_resnet(m[3], {'conv_shortcut': 'nin_shortcut'})}"
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(\w+)", key):
        return f"{VAE}{m[1]}.mid.attn_1.{_VAE_ATTN[m[2]]}.{m[3]}"
    if re.fullmatch(r"(encoder|decoder)\.(conv_in|conv_out)\.\w+|(post_)?quant_conv\.\w+", key):
        return VAE + key
    raise KeyError(f"no LDM name for VAE key {key!r}")


def write_original_sd_checkpoint(diffusers_folder: Path, out: Path) -> Path:
    """Convert the SD 1.x pipeline saved in `diffusers_folder` into one LDM-format `.safetensors` file at `out`."""
    from safetensors.torch import load_file, save_file

    folder = Path(diffusers_folder)
    unet_cfg = json.loads((folder / "unet" / "config.json").read_text())
    vae_cfg = json.loads((folder / "vae" / "config.json").read_text())
    lpb = unet_cfg["layers_per_block"]
    assert isinstance(lpb, int), "per-block layers_per_block is not SD 1.x"
    up_with_attention = {i for i, t in enumerate(unet_cfg["up_block_types"]) if "CrossAttn" in t}

    ckpt = {}
    for key, value in load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors")).items():
        ckpt[unet_key(key, lpb, up_with_attention)] = value
    for key, value in load_file(str(folder / "vae" / "diffusion_pytorch_model.safetensors")).items():
        new = vae_key(key, len(vae_cfg["up_block_types"]))
        if ".mid.attn_1." in new and new.endswith(".weight") and value.ndim == 2:
            value = value[:, :, None, None]  # LDM's attention q/k/v/proj_out are 1x1 convolutions
        ckpt[new] = value
    for key, value in load_file(str(folder / "text_encoder" / "model.safetensors")).items():
        ckpt[CLIP + key.removeprefix("text_model.")] = value  # transformers 5 saves CLIPTextModel without text_model.
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in ckpt.items()}, str(out))
    return out
