"""IP-Adapters: `--image-prompt IMAGE[:SCALE]` (repeatable) with `--ip-adapter REF`, through diffusers'
`load_ip_adapter` / `set_ip_adapter_scale` and `ip_adapter_image=`.

REF is an alias (registry.IP_ADAPTERS: the h94/IP-Adapter weights for SD 1.5 and SDXL), a file in a hub
repo (`org/name[@rev]/SUBFOLDER/WEIGHT.safetensors`), or a local weights file laid out like h94's repo
(its image encoder in `image_encoder/` beside it, or in `../models/image_encoder` for the SDXL ViT-H
adapters). Without --ip-adapter, the standard adapter of the model's family (SD 1.x: ip-adapter-sd15,
SDXL: ip-adapter-sdxl). Safetensors only: a `.bin` adapter (or image encoder) needs --allow-pickle.

Each --image-prompt gets its own copy of the adapter (diffusers' multi-adapter form: the same weights
loaded once per image, one image encoder shared), so every image has its own scale and the images'
influences add up, as in other tools' multi-unit IP-Adapter. diffusers' other IP-Adapter mixins (SD3,
Flux) take other arguments and encoders: not wired yet (a clear error), nor is Flux Redux.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool import registry
from difftool.errors import ModelUnavailable, UsageError
from difftool.registry import GuideSpec

_HUB_FILE = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+?)(?:@(?P<rev>[\w.-]+))?/(?P<file>[^@]+)$")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
#: Attribute set on a pipeline once difftool loaded adapters into it: (REF as given, copies, resolved label).
STATE_ATTR = "_difftool_ip_adapter"


@dataclass(frozen=True)
class ImagePrompt:
    """One `--image-prompt`: the image and its scale."""

    image: str
    scale: float = 1.0


def parse_prompt(text: str) -> ImagePrompt:
    """`IMAGE[:SCALE]` (SCALE: the part after the last ':' when it is a number; default 1)."""
    body, scale = text.strip(), 1.0
    head, sep, tail = body.rpartition(":")
    if sep and head and tail.strip():
        try:
            scale = float(tail)
            body = head
        except ValueError:
            pass
    if not body:
        raise UsageError(f"--image-prompt '{text}' names no image.")
    if not math.isfinite(scale) or scale < 0:
        raise UsageError(f"--image-prompt '{text}': the scale must be a number >= 0.")
    return ImagePrompt(body, scale)


@dataclass(frozen=True)
class AdapterRef:
    """Where an adapter's weights and image encoder are: a hub repo or a local root folder, both in h94's layout."""

    text: str
    subfolder: str
    weight_name: str
    image_encoder: str
    """The image encoder's folder, relative to the root."""
    repo_id: str | None = None
    revision: str | None = None
    root: Path | None = None
    spec: GuideSpec | None = None

    @property
    def label(self) -> str:
        """What the metadata records: the alias, the hub file as typed, or the local file's absolute path."""
        if self.spec is not None:
            return self.spec.alias
        if self.root is not None:
            return str(self.root / self.subfolder / self.weight_name)
        return self.text


def _encoder_for(subfolder: str, weight_name: str) -> str:
    """h94's layout: `<subfolder>/image_encoder`, except the SDXL ViT-H adapters, which use `models/image_encoder`."""
    if "vit-h" in weight_name.lower() and subfolder != "models":
        return "models/image_encoder"
    return f"{subfolder}/image_encoder" if subfolder else "image_encoder"


def resolve(text: str, allow_pickle: bool = False) -> AdapterRef:
    """An alias, a local weights file, or `org/name[@rev]/SUB/WEIGHT.safetensors`; exit 3 when none fits."""
    text = text.strip()
    spec = registry.IP_ADAPTERS.get(text)
    if spec is not None:
        assert spec.weight_name is not None
        return AdapterRef(text, spec.subfolder, spec.weight_name,
                          spec.image_encoder or _encoder_for(spec.subfolder, spec.weight_name), repo_id=spec.repo,
                          spec=spec)
    name = text.rsplit("/", 1)[-1]
    suffix = Path(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES and not allow_pickle:
        raise ModelUnavailable(f"IP-Adapter '{text}' is a pickle file, which can run code when loaded; use its "
                               ".safetensors version or pass --allow-pickle if you trust it.")
    if suffix not in (".safetensors", *PICKLE_SUFFIXES):
        known = ", ".join(registry.IP_ADAPTERS)
        raise ModelUnavailable(f"Unknown IP-Adapter '{text}': use an alias ({known}), a weights file, or "
                               "org/name/SUBFOLDER/WEIGHT.safetensors.")
    path = Path(text).expanduser()
    if path.is_file():
        path = path.resolve()
        root, sub = path.parent.parent, path.parent.name
        encoder = next((c for c in (f"{sub}/image_encoder", "models/image_encoder")
                        if (root / c / "config.json").is_file()), None)
        if encoder is None:
            raise ModelUnavailable(f"IP-Adapter '{text}' has no image encoder beside it (image_encoder/ with its "
                                   "config.json, as in h94/IP-Adapter).")
        return AdapterRef(text, sub, path.name, encoder, root=root)
    match = _HUB_FILE.match(text) if not text.startswith((".", "/", "~")) else None
    if match is None:
        raise UsageError(f"IP-Adapter file '{text}' does not exist.")
    sub, _, weight = match["file"].rpartition("/")
    return AdapterRef(text, sub, weight, _encoder_for(sub, weight), repo_id=match["repo"], revision=match["rev"])


def fetch(ref: AdapterRef, allow_pickle: bool = False, refresh: bool = False) -> Path:
    """The local root holding the adapter and its image encoder (hub: cache first, only those files)."""
    if ref.root is not None:
        return ref.root
    from difftool import hub

    assert ref.repo_id is not None
    weight = f"{ref.subfolder}/{ref.weight_name}" if ref.subfolder else ref.weight_name
    patterns = [weight, f"{ref.image_encoder}/config.json", f"{ref.image_encoder}/*.safetensors"]
    if allow_pickle:
        patterns.append(f"{ref.image_encoder}/*.bin")
    try:
        root = hub.fetch_files(ref.repo_id, ref.revision, patterns, refresh=refresh)
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"{exc.message.rstrip('.')} (IP-Adapter '{ref.label}'; --ip-adapter "
                               "PATH/TO/WEIGHTS.safetensors uses a local copy).") from exc
    if not (root / weight).is_file():
        raise ModelUnavailable(f"IP-Adapter '{ref.label}' has no file '{weight}' in {ref.repo_id}.")
    if not (root / ref.image_encoder / "config.json").is_file():
        raise ModelUnavailable(f"IP-Adapter '{ref.label}' has no image encoder in {ref.repo_id}/{ref.image_encoder}.")
    return root


def default_for(pipe: Any) -> str:
    """The standard adapter for the loaded pipeline's family (`--image-prompt` without `--ip-adapter`)."""
    name = type(pipe).__name__
    family = "sdxl" if name.startswith("StableDiffusionXL") else "sd" if name.startswith("StableDiffusion") \
        and not name.startswith("StableDiffusion3") else None
    if family is None:
        raise UsageError(f"--image-prompt: no standard IP-Adapter for {name}; pass --ip-adapter.")
    return registry.DEFAULT_IP_ADAPTERS[family]


def _cross_attention_dim(path: Path) -> int | None:
    """The text width an adapter's weights were trained against (the input width of its `to_k_ip` layers)."""
    if path.suffix.lower() != ".safetensors":
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        for key in fh.keys():
            if key.endswith("to_k_ip.weight"):
                return int(fh.get_slice(key).get_shape()[-1])
    return None


def apply(pipe: Any, text: str, count: int, allow_pickle: bool = False, refresh: bool = False, say: Any = None) -> str:
    """Load `count` copies of adapter `text` ("auto": the family's standard one) into the pipeline, unless they are
    already there (then nothing happens); returns the adapter's label. Before offload hooks and torch.compile."""
    count = max(1, count)
    state = getattr(pipe, STATE_ATTR, None)
    if state is not None and state[:2] == (text, count):
        return state[2]
    if not hasattr(pipe, "load_ip_adapter"):
        raise UsageError(f"--image-prompt is not supported by {type(pipe).__name__}.")
    from diffusers.loaders import IPAdapterMixin

    if not isinstance(pipe, IPAdapterMixin):
        raise ModelUnavailable(f"--image-prompt: difftool loads IP-Adapters for Stable Diffusion 1.x/2.x and SDXL; "
                               f"{type(pipe).__name__}'s adapters (SD3, Flux) are not supported yet.")
    ref = resolve(default_for(pipe) if text == "auto" else text, allow_pickle)
    root = fetch(ref, allow_pickle, refresh)
    weights = root / ref.subfolder / ref.weight_name
    unet = getattr(pipe, "unet", None)
    want = getattr(getattr(unet, "config", None), "cross_attention_dim", None)
    have = _cross_attention_dim(weights)
    if want is not None and have is not None and want != have:
        raise ModelUnavailable(f"IP-Adapter '{ref.label}' is made for models with cross_attention_dim {have}, but "
                               f"{type(pipe).__name__} has {want} (e.g. an SDXL adapter on SD 1.5).")
    if state is not None:
        pipe.unload_ip_adapter()
    encoder = ref.image_encoder if "/" in ref.image_encoder else f"./{ref.image_encoder}"
    if say is not None:
        say(f"Loading IP-Adapter {ref.label}" + (f" ({count} copies, one per --image-prompt)" if count > 1 else ""))
    try:
        pipe.load_ip_adapter([str(root)] * count, subfolder=[ref.subfolder] * count,
                             weight_name=[ref.weight_name] * count, image_encoder_folder=encoder,
                             local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnavailable(f"IP-Adapter '{ref.label}' cannot be loaded into {type(pipe).__name__}: "
                               f"{str(exc).splitlines()[0]}") from exc
    setattr(pipe, STATE_ATTR, (text, count, ref.label))
    return ref.label


def set_scales(pipe: Any, scales: list[float]) -> None:
    """One scale per adapter copy (per --image-prompt); set before every call, since it is pipeline state."""
    pipe.set_ip_adapter_scale(list(scales))
