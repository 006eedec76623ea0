"""Tiled processing with feathered seams, written as a stream: memory does not grow with the image's height.

An input larger than the tile size is cut into overlapping tiles (`layout`), each tile is processed
(upscaled) on its own, and the results are blended back: in every overlap the two tiles' weights ramp
linearly in opposite directions and are normalised to sum to one, so the seam is a smooth cross-fade
(`weights`). Tiles are processed one row at a time; as soon as a band of output rows can no longer
be touched by a later tile it is written to the PNG (`PngStream`) and dropped, so what is held is one
row band of tiles (its size follows the width, not the height) plus the 8-bit input.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def positions(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering [0, length) with at least `overlap` shared pixels,
    spread evenly; the first starts at 0 and the last ends at `length`. One tile when it fits."""
    if length <= tile:
        return [0]
    step = tile - overlap
    count = math.ceil((length - overlap) / step)
    count = max(count, 2)
    span = length - tile
    return [round(i * span / (count - 1)) for i in range(count)]


@dataclass(frozen=True)
class Tile:
    """One tile: its box in input pixels (x0, y0, x1, y1) and its row/column in the grid."""

    row: int
    col: int
    box: tuple[int, int, int, int]


def layout(width: int, height: int, tile: int, overlap: int) -> list[list[Tile]]:
    """Rows of tiles covering a `width` x `height` input (tiles are at most `tile` px on a side)."""
    xs, ys = positions(width, tile, overlap), positions(height, tile, overlap)
    tw, th = min(tile, width), min(tile, height)
    return [[Tile(r, c, (x, y, x + tw, y + th)) for c, x in enumerate(xs)] for r, y in enumerate(ys)]


def weights(starts: list[int], size: int, length: int) -> list[Any]:
    """1-D blend weights of each tile along one axis (output pixels), a partition of unity.

    Tile i covers [starts[i], starts[i] + size). Within its overlap with a neighbour its raw weight
    ramps linearly towards that neighbour (from 1 down to nearly 0); raw weights are then divided by
    their sum at every position, so all tiles' weights add up to exactly one everywhere.
    """
    import numpy as np

    raw = []
    for i, s in enumerate(starts):
        w = np.ones(size, dtype=np.float64)
        if i > 0:  # overlap with the previous tile: [s, end of previous)
            n = starts[i - 1] + size - s
            if n > 0:
                w[:n] = np.minimum(w[:n], (np.arange(n) + 0.5) / n)
        if i + 1 < len(starts):  # overlap with the next tile: [start of next, s + size)
            n = s + size - starts[i + 1]
            if n > 0:
                w[size - n:] = np.minimum(w[size - n:], ((np.arange(n) + 0.5) / n)[::-1])
        raw.append(w)
    total = np.zeros(length, dtype=np.float64)
    for s, w in zip(starts, raw):
        total[s:s + size] += w
    return [(w / total[s:s + size]).astype(np.float32) for s, w in zip(starts, raw)]


def blend_rows(
    width: int,
    height: int,
    tile: int,
    overlap: int,
    *,
    scale: int,
    process: Callable[[Tile], Any],
) -> Iterator[Any]:
    """Process every tile of a `width` x `height` input and yield the blended output (scaled by `scale`)
    as consecutive uint8 RGB row bands (numpy arrays of shape (rows, width*scale, 3)), top to bottom.

    `process(tile)` returns the tile's result as an RGB image (PIL or array) of exactly `scale` times
    the tile's box size. At most one band of tile rows (plus its overlap) is held at a time.
    """
    import numpy as np

    grid = layout(width, height, tile, overlap)
    out_w = width * scale
    xs = [t.box[0] * scale for t in grid[0]]
    ys = [row[0].box[1] * scale for row in grid]
    tw, th = (grid[0][0].box[2] - grid[0][0].box[0]) * scale, (grid[0][0].box[3] - grid[0][0].box[1]) * scale
    wx = weights(xs, tw, out_w)
    wy = weights(ys, th, height * scale)
    band_top = 0  # output row of band[0]
    band = np.zeros((th, out_w, 3), dtype=np.float32)
    for r, row in enumerate(grid):
        y0 = ys[r]
        need = y0 + th - band_top  # grow the band to hold this tile row
        if need > band.shape[0]:
            band = np.concatenate([band, np.zeros((need - band.shape[0], out_w, 3), dtype=np.float32)])
        for t in row:
            result = np.asarray(process(t), dtype=np.float32)
            if result.shape[:2] != (th, tw):
                raise ValueError(f"tile result is {result.shape[1]}x{result.shape[0]}, expected {tw}x{th}")
            weight = wy[r][:, None, None] * wx[t.col][None, :, None]
            x0 = xs[t.col]
            band[y0 - band_top:y0 - band_top + th, x0:x0 + tw] += result[..., :3] * weight
        done = (ys[r + 1] if r + 1 < len(grid) else height * scale) - band_top  # rows no later tile touches
        yield np.clip(np.rint(band[:done]), 0, 255).astype(np.uint8)
        band = band[done:].copy()
        band_top += done


class PngStream:
    """Write an 8-bit RGB PNG row band by row band (zlib-compressed as it goes), with text chunks."""

    def __init__(self, fh: BinaryIO, width: int, height: int, chunks: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
        self.fh, self.width, self.height = fh, width, height
        self.rows = 0
        self.z = zlib.compressobj(6)
        fh.write(PNG_SIGNATURE)
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        for cid, data in chunks:
            self._chunk(cid, data)

    def _chunk(self, cid: bytes, data: bytes) -> None:
        self.fh.write(struct.pack(">I", len(data)) + cid + data)
        self.fh.write(struct.pack(">I", zlib.crc32(cid + data) & 0xFFFFFFFF))

    def write(self, band: Any) -> None:
        """Append rows (uint8 array of shape (rows, width, 3)); each row uses PNG's 'Up' filter."""
        import numpy as np

        if band.shape[1:] != (self.width, 3):
            raise ValueError(f"band of shape {band.shape} does not fit a {self.width} px wide RGB image")
        prev = getattr(self, "_prev", np.zeros((self.width, 3), dtype=np.uint8))
        rows = np.concatenate([prev[None], band]).astype(np.int16)
        up = ((rows[1:] - rows[:-1]) % 256).astype(np.uint8).reshape(band.shape[0], -1)
        data = np.concatenate([np.full((band.shape[0], 1), 2, dtype=np.uint8), up], axis=1)
        self._flush(self.z.compress(data.tobytes()))
        self._prev = band[-1].copy()
        self.rows += band.shape[0]

    def _flush(self, data: bytes) -> None:
        if data:
            self._chunk(b"IDAT", data)

    def close(self) -> None:
        if self.rows != self.height:
            raise ValueError(f"PNG stream got {self.rows} rows, expected {self.height}")
        self._flush(self.z.flush())
        self._chunk(b"IEND", b"")


def text_chunks(pnginfo: Any) -> list[tuple[bytes, bytes]]:
    """The chunks of a Pillow PngInfo (tEXt/iTXt/zTXt), to pass to PngStream."""
    return [(cid, data) for cid, data, *_ in getattr(pnginfo, "chunks", [])]
