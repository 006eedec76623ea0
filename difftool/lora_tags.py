"""`<lora:name:0.8>` tags in prompts (A1111's "extra networks" syntax), resolved against `--lora-dir` folders.

A tag names a LoRA file by its name without extension, looked up in the folders given (subfolders
included; the exact name first, then ignoring case). Tags are removed from the text the text encoder
sees and the LoRA is applied with the tag's scale through `difftool.lora` (diffusers'
`load_lora_weights` + `set_adapters`), so `<lora:x:0.8>` gives the pixels of `--lora DIR/x.safetensors:0.8`.

Forms: `<lora:name>` (scale 1), `<lora:name:0.8>`, `<lora:name:TE:UNET>` and `te=`/`unet=` (one scale
serves the whole LoRA in diffusers: the UNet's is used, with a warning when they differ); `<lyco:...>`
is the same as `<lora:...>`. Other extra networks (`<hypernet:...>`) are removed with a warning, as
A1111 removes them. Tags in the negative prompt are applied too (a LoRA acts on the whole model).

Parsing and lookup are pure (no torch): an unknown name stops the command (exit 2) before any model loads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from difftool import console
from difftool.errors import ModelUnavailable, UsageError
from difftool.lora import PICKLE_SUFFIXES, Lora

_TAG = re.compile(r"<(\w+):([^>]+)>")
LORA_KINDS = ("lora", "lyco")


def _files(folder: Path, allow_pickle: bool) -> dict[str, list[Path]]:
    """stem -> LoRA files under `folder` (recursive; read each time, so files added meanwhile are found)."""
    suffixes = {".safetensors", *(PICKLE_SUFFIXES if allow_pickle else ())}
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in suffixes and path.is_file():
            found.setdefault(path.stem, []).append(path)
    return found


def find(name: str, dirs: Sequence[Path], allow_pickle: bool = False) -> Path:
    """The LoRA file a tag names: DIR/name.safetensors (or a relative path with subfolders), else any
    file of that name under DIR; the folders in order, exact names before case-insensitive ones."""
    if not dirs:
        raise UsageError(f"The prompt's <lora:{name}:...> tag needs a folder to look in: pass --lora-dir DIR "
                         "or set lora-dir in the config file.")
    for exact in (True, False):
        for folder in dirs:
            direct = folder / f"{name}.safetensors"
            if exact and direct.is_file():
                return direct
            index = _files(folder, allow_pickle)
            hits = index.get(name, []) if exact else \
                [p for stem, paths in index.items() if stem.casefold() == name.casefold() for p in paths]
            if hits:
                if len(hits) > 1:
                    console.warn(f"<lora:{name}>: {len(hits)} files match in {folder}; using {hits[0]}.")
                return hits[0]
    pickles = [p for folder in dirs for p in _files(folder, True).get(name, []) if p.suffix.lower() != ".safetensors"]
    if pickles and not allow_pickle:
        raise ModelUnavailable(f"LoRA '{name}' is a pickle file ({pickles[0]}), which can run code when loaded; use "
                               "a .safetensors LoRA or pass --allow-pickle if you trust it.")
    where = ", ".join(str(d) + ("" if d.is_dir() else " (not a folder)") for d in dirs)
    raise UsageError(f"LoRA '{name}' of the prompt's <lora:{name}:...> tag was not found in {where} "
                     f"(looked for {name}.safetensors, subfolders included).")


def _scale(name: str, params: list[str]) -> float:
    """The scale of a tag's parameters: positional TE[:UNET] or te=/unet= (dyn= is not honoured)."""
    positional = [p.strip() for p in params if "=" not in p]
    named = dict((k.strip(), v.strip()) for k, _, v in (p.partition("=") for p in params if "=" in p))
    try:
        te = float(named.get("te", positional[0] if positional else 1.0))
        unet = float(named.get("unet", positional[1] if len(positional) > 1 else te))
    except ValueError:
        raise UsageError(f"<lora:{name}:{':'.join(params)}>: the scale must be a number.") from None
    if te != unet:
        console.warn(f"<lora:{name}>: diffusers applies one scale per LoRA; using the UNet's ({unet:g}), not the "
                     f"text encoder's ({te:g}).")
    if "dyn" in named:
        console.warn(f"<lora:{name}>: dyn= (LyCORIS dynamic dimension) is not honoured.")
    return unet


def extract_lora_tags(prompt: str, dirs: Sequence[Path], allow_pickle: bool = False) -> tuple[str, list[Lora]]:
    """(`prompt` without its `<kind:...>` tags, the LoRAs its lora/lyco tags name with their scales).

    Raises UsageError (exit 2) for an unknown name, naming the folders searched."""
    loras: list[Lora] = []

    def take(match: re.Match[str]) -> str:
        kind, body = match.group(1), match.group(2)
        parts = body.split(":")
        if kind.lower() not in LORA_KINDS:
            console.warn(f"<{kind}:{body}>: {kind} networks are not supported; the tag is removed from the prompt.")
            return ""
        name = parts[0].strip()
        path = find(name, dirs, allow_pickle)
        loras.append(Lora(str(path), _scale(name, parts[1:]), path=path.resolve(), tag=name))
        return ""

    return _TAG.sub(take, prompt), loras


@dataclass
class TagPlan:
    """The LoRAs to load for a batch of prompts (`--lora` ones first, then every tagged file once) and each
    prompt's adapter weights (a tagged LoRA a prompt does not name gets weight 0 for it)."""

    adapters: tuple[Lora, ...]
    texts: list[str]
    """Each prompt without its tags."""
    negative: str | None
    """The negative prompt without its tags."""
    weights: list[list[float]]
    active: list[float] = field(default_factory=list)

    @property
    def varies(self) -> bool:
        """Whether prompts need different adapter weights (then `activate` switches them per prompt)."""
        return any(w != self.weights[0] for w in self.weights)

    def activate(self, pipe: Any, index: int) -> None:
        """Set prompt `index`'s adapter weights on the loaded pipeline (no-op when already set)."""
        weights = self.weights[index]
        if not self.adapters or weights == (self.active or self.weights[0]):
            self.active = weights
            return
        from difftool import lora

        pipe.set_adapters(lora.adapter_names(self.adapters), adapter_weights=weights)
        self.active = weights

    def record(self, index: int) -> list[dict[str, Any]]:
        """The tag LoRAs prompt `index` used (informational: the prompt's tags are what is replayed)."""
        return [{"tag": a.tag, "ref": a.ref, "scale": w}
                for a, w in zip(self.adapters, self.weights[index]) if a.tag and w]


def plan(prompts: Sequence[str], negative: str | None, base: Sequence[Lora], dirs: Sequence[Path],
         allow_pickle: bool = False) -> TagPlan:
    """Extract every prompt's tags (and the negative's, applied to all) and lay out the adapters to load."""
    neg_text, neg_loras = extract_lora_tags(negative, dirs, allow_pickle) if negative is not None else (None, [])
    texts: list[str] = []
    per_prompt: list[dict[Path, float]] = []
    order: dict[Path, Lora] = {}
    for prompt in prompts:
        text, loras = extract_lora_tags(prompt, dirs, allow_pickle)
        texts.append(text)
        scales: dict[Path, float] = {}
        for item in [*loras, *neg_loras]:
            assert item.path is not None
            scales[item.path] = scales.get(item.path, 0.0) + item.scale
            order.setdefault(item.path, item)
        per_prompt.append(scales)
    tagged = [replace(item, scale=per_prompt[0].get(path, 0.0)) for path, item in order.items()]
    adapters = (*base, *tagged)
    weights = [[b.scale for b in base] + [scales.get(path, 0.0) for path in order] for scales in per_prompt]
    return TagPlan(adapters, texts, neg_text, weights)
