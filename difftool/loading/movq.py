"""Tiled decoding for Kandinsky's MoVQ (`VQModel`), which diffusers does not tile by itself.

`--vae-tiling` on Kandinsky: latents larger than `TILE_LATENT` are decoded in overlapping tiles and the
overlaps blended linearly, the way diffusers' `AutoencoderKL.tiled_decode` does it, so a 768 px (or larger)
image decodes in the memory of a 512 px one. Smaller latents decode exactly as without tiling.
"""

from __future__ import annotations

from typing import Any

#: Tile edge in latent pixels (64 latents = 512 image pixels at MoVQ's factor 8) and the overlap fraction.
TILE_LATENT = 64
OVERLAP = 0.25


def enable_tiling(movq: Any) -> None:
    """Replace this MoVQ instance's `decode` with a tiled one (the class is left alone)."""
    import torch
    from diffusers.models.autoencoders.vae import DecoderOutput

    original = movq.decode
    factor = 2 ** (len(movq.config.block_out_channels) - 1)

    def decode(h: Any, force_not_quantize: bool = False, return_dict: bool = True, shape: Any = None) -> Any:
        tile = TILE_LATENT
        if h.shape[-2] <= tile and h.shape[-1] <= tile:
            return original(h, force_not_quantize=force_not_quantize, return_dict=return_dict, shape=shape)
        stride = max(1, int(tile * (1 - OVERLAP)))
        blend = (tile - stride) * factor
        limit = stride * factor
        rows = []
        for i in range(0, h.shape[-2], stride):
            rows.append([
                original(h[:, :, i:i + tile, j:j + tile], force_not_quantize=force_not_quantize).sample
                for j in range(0, h.shape[-1], stride)
            ])
        out_rows = []
        for i, row in enumerate(rows):
            parts = []
            for j, part in enumerate(row):
                if i > 0:
                    part = _blend_v(rows[i - 1][j], part, blend)
                if j > 0:
                    part = _blend_h(row[j - 1], part, blend)
                row[j] = part
                parts.append(part[:, :, :limit, :limit])
            out_rows.append(torch.cat(parts, dim=3))
        dec = torch.cat(out_rows, dim=2)[:, :, : h.shape[-2] * factor, : h.shape[-1] * factor]
        commit = torch.zeros(h.shape[0], device=dec.device, dtype=dec.dtype)
        return DecoderOutput(sample=dec, commit_loss=commit) if return_dict else (dec, commit)

    movq.decode = decode
    movq.use_tiling = True


def _blend_v(a: Any, b: Any, extent: int) -> Any:
    extent = min(a.shape[2], b.shape[2], extent)
    for y in range(extent):
        b[:, :, y, :] = a[:, :, -extent + y, :] * (1 - y / extent) + b[:, :, y, :] * (y / extent)
    return b


def _blend_h(a: Any, b: Any, extent: int) -> Any:
    extent = min(a.shape[3], b.shape[3], extent)
    for x in range(extent):
        b[:, :, :, x] = a[:, :, :, -extent + x] * (1 - x / extent) + b[:, :, :, x] * (x / extent)
    return b
