"""Procedural dataset, vocabulary and tokenizer for difftool's tiny shipped model.

Shared by ``tools/train_tiny.py`` and ``tools/eval_tiny.py``; never imported by the CLI.

A scene is one shape (circle, square, triangle, cross) in a named colour at a named position
(left, right, top, bottom, center) on a background of another named colour, drawn at 64x64 with
anti-aliased edges. Captions are word-level, e.g. "a red circle on the left, blue background" or
"a red circle on a white background" (position not stated: any position).

Everything here is deterministic: the same seed gives the same images, captions and held-out split.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
SUPERSAMPLE = 4

# Named colours: far apart in RGB so that "dominant colour" is well defined.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 70, 230),
    "yellow": (250, 220, 30),
    "orange": (250, 140, 20),
    "purple": (140, 40, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
COLOR_NAMES = list(COLORS)
SHAPES = ["circle", "square", "triangle", "cross"]
POSITIONS = ["left", "right", "top", "bottom", "center"]
# Shape centre (x, y) in pixels for each position.
POSITION_XY: dict[str, tuple[float, float]] = {
    "left": (18.0, 32.0),
    "right": (46.0, 32.0),
    "top": (32.0, 18.0),
    "bottom": (32.0, 46.0),
    "center": (32.0, 32.0),
}
# How a position is said in a caption.
POSITION_PHRASE = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}
HALF_SIZE_RANGE = (11.5, 14.0)  # half of the shape's extent, pixels
JITTER = 3.0  # pixels of random offset around the position's centre

# Fraction of training captions that leave the position out ("a red circle on a white background").
NO_POSITION_FRACTION = 0.2


@dataclass(frozen=True)
class Scene:
    color: str
    shape: str
    position: str
    background: str

    def key(self) -> tuple[str, str, str, str]:
        return (self.color, self.shape, self.position, self.background)


def caption(scene: Scene, with_position: bool = True) -> str:
    if with_position:
        return f"a {scene.color} {scene.shape} {POSITION_PHRASE[scene.position]}, {scene.background} background"
    return f"a {scene.color} {scene.shape} on a {scene.background} background"


def all_scenes() -> list[Scene]:
    return [
        Scene(c, s, p, b)
        for c in COLOR_NAMES
        for s in SHAPES
        for p in POSITIONS
        for b in COLOR_NAMES
        if b != c
    ]


def held_out_scenes(n: int = 40, seed: int = 1234) -> list[Scene]:
    """A fixed set of (colour, shape, position, background) combinations never shown in training.

    Balanced: each colour, shape, position and background appears equally often (n=40: 5 per
    colour, 10 per shape, 8 per position, 5 per background), so every attribute value is evaluated.
    """
    import math

    rng = random.Random(seed)
    pool = all_scenes()
    rng.shuffle(pool)
    caps = {
        "color": math.ceil(n / len(COLOR_NAMES)),
        "shape": math.ceil(n / len(SHAPES)),
        "position": math.ceil(n / len(POSITIONS)),
        "background": math.ceil(n / len(COLOR_NAMES)),
    }
    counts: dict[tuple[str, str], int] = {}
    chosen: list[Scene] = []
    for sc in pool:
        keys = [("color", sc.color), ("shape", sc.shape), ("position", sc.position), ("background", sc.background)]
        if all(counts.get(k, 0) < caps[k[0]] for k in keys):
            for k in keys:
                counts[k] = counts.get(k, 0) + 1
            chosen.append(sc)
            if len(chosen) == n:
                break
    assert len(chosen) == n
    return chosen


def train_scenes() -> list[Scene]:
    held = {s.key() for s in held_out_scenes()}
    return [s for s in all_scenes() if s.key() not in held]


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    if shape == "square":
        k = r * 0.9  # a square of the same "half size" looks bigger than a circle; shrink a little
        return [(cx - k, cy - k), (cx + k, cy - k), (cx + k, cy + k), (cx - k, cy + k)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 1.05, cy + r * 0.85), (cx - r * 1.05, cy + r * 0.85)]
    if shape == "cross":
        a = r * 0.38  # half arm width
        return [
            (cx - a, cy - r), (cx + a, cy - r), (cx + a, cy - a), (cx + r, cy - a),
            (cx + r, cy + a), (cx + a, cy + a), (cx + a, cy + r), (cx - a, cy + r),
            (cx - a, cy + a), (cx - r, cy + a), (cx - r, cy - a), (cx - a, cy - a),
        ]
    return None


def render(scene: Scene, cx: float, cy: float, r: float) -> Image.Image:
    """Draw a scene (anti-aliased by supersampling) as a 64x64 RGB image."""
    S = SUPERSAMPLE
    img = Image.new("RGB", (SIZE * S, SIZE * S), COLORS[scene.background])
    d = ImageDraw.Draw(img)
    fill = COLORS[scene.color]
    if scene.shape == "circle":
        d.ellipse([(cx - r) * S, (cy - r) * S, (cx + r) * S, (cy + r) * S], fill=fill)
    else:
        poly = _shape_polygon(scene.shape, cx, cy, r)
        d.polygon([(x * S, y * S) for x, y in poly], fill=fill)
    return img.resize((SIZE, SIZE), Image.Resampling.BOX)


def sample_geometry(scene: Scene, rng: random.Random) -> tuple[float, float, float]:
    x, y = POSITION_XY[scene.position]
    r = rng.uniform(*HALF_SIZE_RANGE)
    return x + rng.uniform(-JITTER, JITTER), y + rng.uniform(-JITTER, JITTER), r


def shape_mask(scene: Scene, cx: float, cy: float, r: float) -> np.ndarray:
    """Boolean 64x64 mask of the shape (pixels at least half covered)."""
    m = render(Scene("white", scene.shape, scene.position, "black"), cx, cy, r)
    return np.asarray(m)[..., 0] > 132


def make_dataset(n: int, seed: int, scenes: list[Scene] | None = None, no_position_fraction: float = NO_POSITION_FRACTION):
    """``n`` images (uint8 array n x 64 x 64 x 3), their captions and scenes, deterministic in ``seed``."""
    rng = random.Random(seed)
    scenes = scenes if scenes is not None else train_scenes()
    images = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    captions: list[str] = []
    picked: list[Scene] = []
    for i in range(n):
        sc = scenes[rng.randrange(len(scenes))]
        cx, cy, r = sample_geometry(sc, rng)
        images[i] = np.asarray(render(sc, cx, cy, r))
        captions.append(caption(sc, with_position=rng.random() >= no_position_fraction))
        picked.append(sc)
    return images, captions, picked


# ---------------------------------------------------------------------------------------------
# Word-level CLIP tokenizer (byte-level BPE format, each caption word a single token)
# ---------------------------------------------------------------------------------------------

def vocabulary_words() -> list[str]:
    words: set[str] = set()
    for c in COLOR_NAMES:
        words.add(c)
    words.update(SHAPES)
    for phrase in POSITION_PHRASE.values():
        words.update(phrase.split())
    words.update(["a", "on", "background"])
    return sorted(words)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte -> printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def _learn_merges(words: list[str]) -> list[tuple[str, str]]:
    """Deterministic BPE training on the word list until every word is one symbol."""
    seqs = [list(w[:-1]) + [w[-1] + "</w>"] for w in words]
    merges: list[tuple[str, str]] = []
    while any(len(s) > 1 for s in seqs):
        counts: dict[tuple[str, str], int] = {}
        for s in seqs:
            for a, b in zip(s, s[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        merges.append(best)
        new = []
        for s in seqs:
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            new.append(out)
        seqs = new
    return merges


def write_tokenizer_files(folder: Path) -> None:
    """Write vocab.json + merges.txt (CLIP BPE format) for the caption vocabulary."""
    folder.mkdir(parents=True, exist_ok=True)
    byte_chars = list(bytes_to_unicode().values())
    vocab_list = byte_chars + [c + "</w>" for c in byte_chars]
    merges = _learn_merges(vocabulary_words())
    for a, b in merges:
        vocab_list.append(a + b)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    assert len(vocab) == len(vocab_list), "duplicate tokens"
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    write_tokenizer_files(folder)
    tok = CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)
    check_tokenizer(tok)
    return tok


def check_tokenizer(tok) -> None:
    """Every caption word must be exactly one token; fail loudly otherwise."""
    for w in vocabulary_words() + [","]:
        ids = tok(w, add_special_tokens=False).input_ids
        assert len(ids) == 1, f"word {w!r} is {len(ids)} tokens: {ids}"
    c = caption(Scene("red", "circle", "left", "blue"))
    ids = tok(c, add_special_tokens=False).input_ids
    assert len(ids) == len(c.replace(",", " ,").split()), (c, ids)
