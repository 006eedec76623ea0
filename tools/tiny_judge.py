"""A simple, deterministic judge for pictures of the tiny model's procedural world.

Given a 64x64 RGB image it reads back the four attributes of a caption:

* background: the median colour of the 2-pixel border, snapped to the nearest named colour;
* shape region: the largest 4-connected set of pixels far (RGB distance > 40, half the distance
  of the closest pair of named colours, yellow/orange) from that background;
* colour: the most common named colour among the region's pixels (each pixel snapped to the
  nearest named colour; pixels nearest to the background colour are ignored);
* position: the region's centroid, snapped to the nearest of the five position centres;
* shape: a small CNN on the region's mask (cropped to its bounding box, padded square, resized to
  32x32), trained once on procedural masks (sharp and blurred) with a fixed seed; its weights are
  stored next to this file (``tiny_judge_shape.safetensors``) and rebuilt by ``python
  tools/tiny_judge.py --fit``.

Used by ``tools/eval_tiny.py``; never imported by the CLI.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tiny_data  # noqa: E402

WEIGHTS = Path(__file__).resolve().parent / "tiny_judge_shape.safetensors"
PALETTE = np.array([tiny_data.COLORS[c] for c in tiny_data.COLOR_NAMES], dtype=np.float32)
FG_THRESHOLD = 40.0  # the closest named colours (yellow, orange) are 80.6 apart
MIN_REGION = 25  # pixels; smaller means "no shape drawn"
MASK_SIZE = 32


@dataclass
class Reading:
    background: str
    color: str | None
    position: str | None
    shape: str | None
    area: int
    centroid: tuple[float, float] | None


def nearest_color(rgb: np.ndarray) -> np.ndarray:
    """Index of the nearest named colour for each RGB row."""
    d = ((rgb[:, None, :].astype(np.float32) - PALETTE[None]) ** 2).sum(-1)
    return d.argmin(1)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    best: list[tuple[int, int]] = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        comp = []
        q = deque([(y0, x0)])
        seen[y0, x0] = True
        while q:
            y, x = q.popleft()
            comp.append((y, x))
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w and mask[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    q.append((yy, xx))
        if len(comp) > len(best):
            best = comp
    out = np.zeros_like(mask, dtype=bool)
    if best:
        ys, xs = zip(*best)
        out[list(ys), list(xs)] = True
    return out


def region_of(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(background RGB, boolean mask of the shape region)."""
    img = img.astype(np.float32)
    border = np.concatenate([img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3), img[:, :2].reshape(-1, 3),
                             img[:, -2:].reshape(-1, 3)])
    bg = np.median(border, axis=0)
    dist = np.sqrt(((img - bg) ** 2).sum(-1))
    return bg, _largest_component(dist > FG_THRESHOLD)


def mask_to_input(mask: np.ndarray) -> np.ndarray:
    """Crop the mask to its bounding box, pad to a centred square (plus a 1 px margin), resize to 32x32."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = mask[y0:y1, x0:x1].astype(np.float32)
    h, w = crop.shape
    s = max(h, w) + 2
    sq = np.zeros((s, s), dtype=np.float32)
    oy, ox = (s - h) // 2, (s - w) // 2
    sq[oy:oy + h, ox:ox + w] = crop
    im = Image.fromarray((sq * 255).astype(np.uint8)).resize((MASK_SIZE, MASK_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.float32) / 255.0


class ShapeNet(nn.Module):
    def __init__(self, n_classes: int = len(tiny_data.SHAPES)):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.c3 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, n_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = F.max_pool2d(F.relu(self.c3(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


_NET: ShapeNet | None = None


def _net() -> ShapeNet:
    global _NET
    if _NET is None:
        from safetensors.torch import load_file

        if not WEIGHTS.exists():
            raise FileNotFoundError(f"{WEIGHTS} missing: run `python tools/tiny_judge.py --fit`")
        net = ShapeNet()
        net.load_state_dict(load_file(str(WEIGHTS)))
        _NET = net.eval()
    return _NET


def classify_masks(masks: list[np.ndarray]) -> list[str]:
    if not masks:
        return []
    x = torch.from_numpy(np.stack([mask_to_input(m) for m in masks]))[:, None]
    with torch.no_grad():
        pred = _net()(x).argmax(1).tolist()
    return [tiny_data.SHAPES[i] for i in pred]


def judge(images: list[np.ndarray] | np.ndarray) -> list[Reading]:
    """Read background, colour, position and shape back from 64x64 RGB uint8 images."""
    readings: list[Reading] = []
    masks, which = [], []
    for img in images:
        img = np.asarray(img)[..., :3]
        bg_rgb, mask = region_of(img)
        bg_idx = int(nearest_color(bg_rgb[None])[0])
        background = tiny_data.COLOR_NAMES[bg_idx]
        area = int(mask.sum())
        if area < MIN_REGION:
            readings.append(Reading(background, None, None, None, area, None))
            continue
        px = img[mask]
        idx = nearest_color(px)
        idx = idx[idx != bg_idx]
        color = tiny_data.COLOR_NAMES[int(np.bincount(idx, minlength=len(PALETTE)).argmax())] if len(idx) else None
        ys, xs = np.nonzero(mask)
        cx, cy = float(xs.mean()), float(ys.mean())
        position = min(tiny_data.POSITIONS,
                       key=lambda p: (tiny_data.POSITION_XY[p][0] - cx) ** 2 + (tiny_data.POSITION_XY[p][1] - cy) ** 2)
        readings.append(Reading(background, color, position, None, area, (cx, cy)))
        masks.append(mask)
        which.append(len(readings) - 1)
    for i, s in zip(which, classify_masks(masks)):
        readings[i].shape = s
    return readings


def score(reading: Reading, scene: tiny_data.Scene) -> dict[str, bool]:
    r = {
        "color": reading.color == scene.color,
        "background": reading.background == scene.background,
        "position": reading.position == scene.position,
        "shape": reading.shape == scene.shape,
    }
    r["all"] = all(r.values())
    return r


# ----------------------------------------------------------------------------------------------
# Fitting the shape classifier (deterministic: fixed seeds, one thread)
# ----------------------------------------------------------------------------------------------

def _augmented_masks(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks read (through region_of) from procedural images, half of them blurred."""
    rng = random.Random(seed)
    images, _, scenes = tiny_data.make_dataset(n, seed=seed, scenes=tiny_data.all_scenes())
    xs, ys = [], []
    for img, sc in zip(images, scenes):
        im = Image.fromarray(img)
        if rng.random() < 0.5:
            im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
        _, mask = region_of(np.asarray(im))
        if mask.sum() < MIN_REGION:
            continue
        xs.append(mask_to_input(mask))
        ys.append(tiny_data.SHAPES.index(sc.shape))
    return np.stack(xs)[:, None], np.array(ys)


def fit(n: int = 12000, epochs: int = 6, seed: int = 0) -> dict[str, float]:
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    x, y = _augmented_masks(n, seed + 100)
    xv, yv = _augmented_masks(2000, seed + 200)
    x, y, xv, yv = map(torch.from_numpy, (x, y, xv, yv))
    net = ShapeNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 128):
            b = perm[i:i + 128]
            loss = F.cross_entropy(net(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (net(xv).argmax(1) == yv).float().mean().item()
        print(f"epoch {ep}: loss {loss.item():.4f} val acc {acc:.4f}", flush=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(WEIGHTS))
    global _NET
    _NET = None
    return {"val_acc": acc}


def self_test(n: int = 400, seed: int = 7) -> dict[str, float]:
    """Judge accuracy on fresh procedural images, sharp and blurred (sigma 1)."""
    images, _, scenes = tiny_data.make_dataset(n, seed=seed, scenes=tiny_data.all_scenes())
    out = {}
    for name, imgs in [("sharp", images),
                       ("blur1", [np.asarray(Image.fromarray(i).filter(ImageFilter.GaussianBlur(1.0))) for i in images])]:
        rs = [score(r, s) for r, s in zip(judge(imgs), scenes)]
        for k in ("color", "background", "position", "shape", "all"):
            out[f"{name}_{k}"] = float(np.mean([r[k] for r in rs]))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="fit or self-test the tiny model's judge")
    ap.add_argument("--fit", action="store_true", help="(re)train the shape classifier and save its weights")
    args = ap.parse_args()
    if args.fit:
        print(fit())
    print(self_test())
