"""LoRA adapters (`--lora REF[:SCALE]`, repeatable) through diffusers' `load_lora_weights` / `set_adapters`.

A REF is a `.safetensors` file, a folder holding one, a hub id (`org/name[@rev]`, its
`pytorch_lora_weights.safetensors` or only safetensors file) or `org/name/weight_name.safetensors`.
Parsing is pure (no torch), so a typo fails before anything loads. diffusers needs the `peft`
package to load LoRAs (it is a difftool dependency).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool.errors import ModelUnavailable, UsageError

DEFAULT_WEIGHT = "pytorch_lora_weights.safetensors"
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth")
_HUB = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+?)(?:@(?P<rev>[\w./-]+?))?(?:/(?P<weight>[^@]+\.safetensors))?$")


@dataclass(frozen=True)
class Lora:
    """One adapter: where it is and its scale."""

    ref: str
    """As typed, without the scale: recorded in metadata and replayed by --from."""
    scale: float = 1.0
    path: Path | None = None
    """The weights file, for local LoRAs."""
    repo_id: str | None = None
    revision: str | None = None
    weight_name: str | None = None
    tag: str | None = None
    """The name of the prompt's `<lora:name:...>` tag it comes from (not recorded: the prompt carries it)."""

    def record(self) -> dict[str, Any]:
        return {"ref": self.ref, "scale": self.scale}

    def __str__(self) -> str:
        return f"{self.ref}:{self.scale:g}"


def split_scale(text: str) -> tuple[str, float]:
    """`ref:0.8` -> (`ref`, 0.8); no (numeric) suffix -> scale 1.0."""
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            return head, float(tail)
        except ValueError:
            pass
    return text, 1.0


def parse(text: str, allow_pickle: bool = False) -> Lora:
    """Validate one `--lora` value without loading anything."""
    ref, scale = split_scale(text.strip())
    if not ref:
        raise UsageError(f"--lora '{text}': empty reference.")
    path = Path(ref).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise ModelUnavailable(
                f"LoRA '{ref}' is a pickle file, which can run code when loaded; use a .safetensors LoRA "
                "or pass --allow-pickle if you trust it."
            )
        if not path.is_file():
            raise UsageError(f"LoRA file '{ref}' does not exist.")
        return Lora(ref, scale, path=path.resolve())
    match = _HUB.match(ref) if not ref.startswith((".", "/", "~")) else None
    if path.suffix.lower() == ".safetensors" and not (match and match["weight"] and not path.exists()):
        if not path.is_file():
            raise UsageError(f"LoRA file '{ref}' does not exist.")
        return Lora(ref, scale, path=path.resolve())
    if path.is_dir():
        return Lora(ref, scale, path=_weights_in(path, ref))
    if match:
        return Lora(ref, scale, repo_id=match["repo"], revision=match["rev"], weight_name=match["weight"])
    raise UsageError(
        f"--lora '{text}' is not a .safetensors file, a folder, a hub id (org/name) or org/name/weight.safetensors."
    )


def parse_all(items: list[str] | tuple[str, ...] | None, allow_pickle: bool = False) -> tuple[Lora, ...]:
    return tuple(parse(item, allow_pickle) for item in items or ())


def _weights_in(folder: Path, ref: str) -> Path:
    """The LoRA weights file in a folder: the diffusers default name, else the only safetensors file."""
    if (folder / DEFAULT_WEIGHT).is_file():
        return folder / DEFAULT_WEIGHT
    found = sorted(folder.glob("*.safetensors"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelUnavailable(f"LoRA '{ref}' holds no .safetensors file.")
    names = ", ".join(p.name for p in found[:5])
    raise UsageError(f"LoRA '{ref}' holds several .safetensors files ({names}); name one: {ref}/FILE.safetensors.")


def locate(lora: Lora, refresh: bool = False) -> Path:
    """The local weights file (hub LoRAs: cache first, fetched if missing)."""
    if lora.path is not None:
        return lora.path
    from difftool import hub

    assert lora.repo_id is not None
    pattern = lora.weight_name or "*.safetensors"
    folder = hub.fetch_files(lora.repo_id, lora.revision, [pattern], refresh=refresh)
    if lora.weight_name:
        path = folder / lora.weight_name
        if not path.is_file():
            raise ModelUnavailable(f"LoRA '{lora.repo_id}' has no file '{lora.weight_name}'.")
        return path
    return _weights_in(folder, lora.ref)


def adapter_names(loras: tuple[Lora, ...]) -> list[str]:
    """The adapter names `apply` gives, in order (what `set_adapters` switches)."""
    return [f"lora{index}" for index in range(len(loras))]


def apply(pipe: Any, loras: tuple[Lora, ...], refresh: bool = False) -> None:
    """Load every adapter into the pipeline and activate them with their scales."""
    if not loras:
        return
    if not hasattr(pipe, "load_lora_weights"):
        raise UsageError(f"--lora is not supported by {type(pipe).__name__}.")
    from diffusers.utils import USE_PEFT_BACKEND

    if not USE_PEFT_BACKEND:
        raise ModelUnavailable("Loading LoRAs needs the peft package (pip install 'peft>=0.17').")
    import warnings

    # peft warns when a second adapter joins the first: that is what stacking LoRAs means
    warnings.filterwarnings("ignore", message=".*Already found a `peft_config` attribute.*")
    names = adapter_names(loras)
    for name, lora in zip(names, loras):
        path = locate(lora, refresh)
        try:
            pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name)
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelUnavailable(f"LoRA '{lora.ref}' cannot be loaded into {type(pipe).__name__}: {first}") from exc
    pipe.set_adapters(names, adapter_weights=[lora.scale for lora in loras])
