"""A pipeline folder's `model_index.json`, read once: its class and components, and the loader kwargs they imply."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PipelineIndex:
    """What `model_index.json` says (empty when the folder has none or it is unreadable)."""

    folder: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path) -> PipelineIndex:
        """The folder's index, parsed once per file version (every loading helper asks this one)."""
        try:
            stamp = (folder / "model_index.json").stat().st_mtime_ns
        except OSError:
            stamp = None
        return _read(str(folder), stamp)

    @property
    def class_name(self) -> str | None:
        value = self.data.get("_class_name")
        return value if isinstance(value, str) else None

    def has(self, name: str) -> bool:
        """Whether component `name` is listed with a class."""
        value = self.data.get(name)
        return isinstance(value, list) and bool(value) and value[0] is not None

    def component_kwargs(self, safety_checker: bool) -> dict[str, Any]:
        """Loader kwargs that depend on the components: no safety checker when refused, and no IP-Adapter image
        encoder for SD/SDXL (difftool never uses it; loading it costs memory and time)."""
        kwargs: dict[str, Any] = {}
        if not safety_checker and self.has("safety_checker"):
            kwargs["safety_checker"] = None
            if "requires_safety_checker" in self.data:
                kwargs["requires_safety_checker"] = False
        if (self.class_name or "").startswith("StableDiffusion") and self.has("image_encoder"):
            kwargs["image_encoder"] = None
        return kwargs

    def component_class(self, name: str) -> str | None:
        """The class name component `name` is listed with (`["diffusers", "FluxTransformer2DModel"]`)."""
        value = self.data.get(name)
        return value[1] if isinstance(value, list) and len(value) > 1 and isinstance(value[1], str) else None

    def unet_in_channels(self) -> int | None:
        try:
            return int(json.loads((self.folder / "unet" / "config.json").read_text())["in_channels"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


@functools.lru_cache(maxsize=64)
def _read(folder: str, stamp: int | None) -> PipelineIndex:
    try:
        data = json.loads((Path(folder) / "model_index.json").read_text())
    except (OSError, ValueError):
        data = {}
    return PipelineIndex(Path(folder), data if isinstance(data, dict) else {})
