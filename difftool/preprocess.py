"""Control-image preprocessors (`--control-preprocess`): turn a photo into what a ControlNet was trained on.

- `none`: the image is already a control image (an edge map, a depth map, a pose skeleton): used as is.
- `canny[:LOW:HIGH]`: Canny edges, built in (numpy only). It reproduces OpenCV's `cv2.Canny(rgb, LOW, HIGH)`
  bit for bit (3x3 Sobel with replicated borders, L1 magnitude, the strongest of the three colour channels,
  OpenCV's integer non-maximum suppression and its hysteresis), which is what diffusers' and ControlNet's own
  examples and `controlnet_aux.CannyDetector` run; defaults 100/200 like theirs. OpenCV itself is a 150 MB
  install, so it is only a test dependency (tests compare the two on fixed images).
- `depth[:MODEL]`: a depth map from a transformers depth-estimation model (default Depth Anything V2 Small,
  safetensors, fetched cache-first like any model): no extra package.
- `pose`, `lineart`, `softedge`, `mlsd`, `normal`, `scribble`: the detectors of `controlnet_aux` (the optional
  extra `difftool[preprocess]`); their annotator weights (lllyasviel/Annotators) are pickle files, so they also
  need --allow-pickle.

Every preprocessor takes and returns an 8-bit RGB PIL image of the same size; it runs after the control image
is resized to the generation size, so edges stay one pixel wide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from difftool.errors import ModelUnavailable, UsageError

#: Default depth model: Depth Anything V2 Small (Apache-2.0, safetensors, transformers' DepthAnything classes).
DEFAULT_DEPTH_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"
#: controlnet_aux detector class per preprocessor name (all load from lllyasviel/Annotators).
AUX_DETECTORS = {
    "pose": "OpenposeDetector",
    "lineart": "LineartDetector",
    "softedge": "HEDdetector",
    "scribble": "HEDdetector",
    "mlsd": "MLSDdetector",
    "normal": "NormalBaeDetector",
}
AUX_REPO = "lllyasviel/Annotators"
NAMES = ("none", "canny", "depth", *AUX_DETECTORS)
EXTRA = "difftool[preprocess]"


@dataclass(frozen=True)
class Preprocess:
    """One parsed `--control-preprocess` value: the name and its arguments as typed (recorded in metadata)."""

    name: str
    args: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return ":".join((self.name, *self.args))


def parse(text: str) -> Preprocess:
    """`canny`, `canny:50:150`, `depth`, `depth:org/name`, `none`, `pose`, ... -> Preprocess (exit 2 when unknown)."""
    name, *args = text.strip().split(":")
    name = name.lower()
    if name not in NAMES:
        raise UsageError(f"Unknown --control-preprocess '{text}'; use one of {', '.join(NAMES)}.")
    if name == "canny":
        if len(args) not in (0, 2):
            raise UsageError(f"--control-preprocess '{text}': canny takes no argument or LOW:HIGH (e.g. canny:100:200).")
        try:
            low, high = (float(a) for a in args) if args else (100.0, 200.0)
        except ValueError:
            raise UsageError(f"--control-preprocess '{text}': canny's LOW:HIGH must be numbers.") from None
        if low < 0 or high < 0:
            raise UsageError(f"--control-preprocess '{text}': canny thresholds must not be negative.")
    elif name == "depth":
        if len(args) > 1:
            raise UsageError(f"--control-preprocess '{text}': depth takes at most one argument, the model.")
    elif args:
        raise UsageError(f"--control-preprocess '{text}': {name} takes no arguments.")
    return Preprocess(name, tuple(args))


def run(pre: Preprocess, image: Any, allow_pickle: bool = False, refresh: bool = False) -> Any:
    """Apply the preprocessor to an RGB PIL image; returns an RGB PIL image of the same size."""
    if pre.name == "none":
        return image
    if pre.name == "canny":
        import numpy as np
        from PIL import Image

        low, high = (float(a) for a in pre.args) if pre.args else (100.0, 200.0)
        edges = canny(np.asarray(image.convert("RGB")), low, high)
        return Image.fromarray(edges).convert("RGB")
    if pre.name == "depth":
        return depth(image, pre.args[0] if pre.args else DEFAULT_DEPTH_MODEL, refresh)
    return aux(pre.name, image, allow_pickle)


# ---- Canny, as OpenCV computes it -------------------------------------------------------------------------

#: tan(22.5 deg) in OpenCV's fixed point (CANNY_SHIFT = 15).
_SHIFT = 15
_TG22 = int(0.4142135623730950488016887242097 * (1 << _SHIFT) + 0.5)


def _sobel(img: Any) -> tuple[Any, Any]:
    """3x3 Sobel x and y derivatives with replicated borders (OpenCV's BORDER_REPLICATE), as int32."""
    import numpy as np

    p = np.pad(img.astype(np.int32), [(1, 1), (1, 1)] + [(0, 0)] * (img.ndim - 2), mode="edge")
    diff_x = p[:, 2:] - p[:, :-2]  # rows: padded; columns: the image's
    dx = diff_x[:-2] + 2 * diff_x[1:-1] + diff_x[2:]
    diff_y = p[2:] - p[:-2]
    dy = diff_y[:, :-2] + 2 * diff_y[:, 1:-1] + diff_y[:, 2:]
    return dx, dy


def canny(img: Any, low: float, high: float) -> Any:
    """`cv2.Canny(img, low, high)` (aperture 3, L1 gradient) in numpy: a uint8 array of 0/255, the size of `img`
    (H x W grey or H x W x C colour; with colour, each pixel takes the channel with the largest gradient)."""
    import math

    import numpy as np

    if low > high:
        low, high = high, low
    lo, hi = math.floor(low), math.floor(high)
    dx, dy = _sobel(img)
    mag = np.abs(dx) + np.abs(dy)
    if mag.ndim == 3:  # the first channel holding the largest magnitude, with its derivatives
        pick = np.argmax(mag, axis=2)[..., None]
        mag = np.take_along_axis(mag, pick, 2)[..., 0]
        dx = np.take_along_axis(dx, pick, 2)[..., 0]
        dy = np.take_along_axis(dy, pick, 2)[..., 0]
    rows, cols = mag.shape
    m = np.pad(mag, 1).astype(np.int64)  # zero magnitude outside the image
    centre = m[1:-1, 1:-1]

    def at(di: int, dj: Any) -> Any:
        """The neighbour magnitude at row offset di and column offset dj (an int or a per-pixel array of -1/1)."""
        if isinstance(dj, int):
            return m[1 + di:rows + 1 + di, 1 + dj:cols + 1 + dj]
        ii = np.arange(rows)[:, None] + 1 + di
        jj = np.arange(cols)[None, :] + 1 + dj
        return m[ii, jj]

    x = np.abs(dx).astype(np.int64)
    y = np.abs(dy).astype(np.int64) << _SHIFT
    tg22x = x * _TG22
    tg67x = tg22x + (x << (_SHIFT + 1))
    horizontal = y < tg22x
    vertical = ~horizontal & (y > tg67x)
    diagonal = ~horizontal & ~vertical
    s = np.where((dx ^ dy) < 0, -1, 1)
    keep = np.zeros((rows, cols), dtype=bool)
    keep |= horizontal & (centre > at(0, -1)) & (centre >= at(0, 1))
    keep |= vertical & (centre > at(-1, 0)) & (centre >= at(1, 0))
    keep |= diagonal & (centre > at(-1, -s)) & (centre > at(1, s))
    candidate = keep & (centre > lo)
    strong = candidate & (centre > hi)
    return (_hysteresis(candidate, strong) * 255).astype(np.uint8)


def _hysteresis(candidate: Any, strong: Any) -> Any:
    """Candidates 8-connected (through candidates) to a strong pixel: a flood fill from the strong ones."""
    import numpy as np

    rows, cols = candidate.shape
    out = strong.copy()
    stack = list(zip(*np.nonzero(strong)))
    while stack:
        i, j = stack.pop()
        for di in (-1, 0, 1):
            ni = i + di
            if ni < 0 or ni >= rows:
                continue
            for dj in (-1, 0, 1):
                nj = j + dj
                if 0 <= nj < cols and candidate[ni, nj] and not out[ni, nj]:
                    out[ni, nj] = True
                    stack.append((ni, nj))
    return out


# ---- depth (transformers) and controlnet_aux detectors ------------------------------------------------------


def depth(image: Any, model: str, refresh: bool = False) -> Any:
    """A depth map (near = bright) by transformers' depth-estimation pipeline, as diffusers' depth ControlNet
    examples make it; the model is a folder or a hub id (cache first, safetensors only)."""
    from pathlib import Path

    from difftool import hub

    folder = Path(model).expanduser()
    if not folder.is_dir():
        from difftool.references import _HUB_ID, split_revision

        repo, rev = split_revision(model)
        if not _HUB_ID.match(repo):
            raise UsageError(f"--control-preprocess depth:{model}: not a folder or a hub id 'org/name'.")
        folder = hub.fetch_files(repo, rev, ["*.json", "*.safetensors", "*.txt"], refresh=refresh)
    from transformers import pipeline

    try:
        estimator = pipeline("depth-estimation", model=str(folder), device="cpu",
                             model_kwargs={"use_safetensors": True})
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"Depth model '{model}' cannot be loaded: {str(exc).splitlines()[0]}") from exc
    return estimator(image)["depth"].convert("RGB")


def aux(name: str, image: Any, allow_pickle: bool) -> Any:
    """A controlnet_aux detector (optional extra), resized back to the image's size."""
    try:
        import controlnet_aux
    except ImportError:
        raise ModelUnavailable(
            f"--control-preprocess {name} needs the controlnet_aux package: pip install '{EXTRA}' "
            f"torch==<your torch version> (pinning torch keeps pip from replacing it), or pass a ready-made "
            "control image with --control-preprocess none."
        ) from None
    if not allow_pickle:
        raise ModelUnavailable(
            f"--control-preprocess {name} loads the annotator weights of {AUX_REPO}, which are pickle files that "
            "can run code when loaded; pass --allow-pickle if you trust them, or a ready-made control image."
        )
    detector_cls = getattr(controlnet_aux, AUX_DETECTORS[name])
    try:
        detector = detector_cls.from_pretrained(AUX_REPO)
    except Exception as exc:
        from difftool import hub

        raise hub.translate(exc, AUX_REPO) from exc
    kwargs: dict[str, Any] = {"scribble": True} if name == "scribble" else {}
    result = detector(image, **kwargs)
    return result.convert("RGB").resize(image.size)
