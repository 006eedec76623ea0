"""What a request to `difftool serve` may ask for: limits, the models served, and no paths on the server.

Pure Python (no web framework, no torch): the server checks every request here before it queues it, and the CLI's
client (`difftool.client`) asks `local_files` before it sends a spec, so that a spec the server would refuse runs
locally instead.

Paths: a request never names a file on the server. Input images travel as base64 bytes (`source_data`,
`mask_data`, an item's or guide image's `data`); a path sent next to such bytes is only a label (what the PNG
records, and the `{name}` of output names). Other references (LoRAs, `tiny_vae`, `prior`, the hires upscaler,
ControlNets, IP-Adapters) must be registry aliases or hub ids, which load from the local cache only: the server
never downloads anything. Models are those given to `--models` (or, without it, aliases and hub ids already in
the cache).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool import registry
from difftool.errors import DifftoolError, ModelUnavailable

#: Spec fields holding a single model-like reference that a path could fill.
REF_FIELDS = ("prior", "config", "tiny_vae", "hires_upscaler", "ip_adapter")
#: Spec fields that always name local files or folders.
ALWAYS_PATHS = ("lora_dir", "transformer")


class RequestError(DifftoolError):
    """A request the server refuses: HTTP `status`, a one-sentence message, the field at fault (`param`)."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.param, self.kind = status, param, kind


@dataclass(frozen=True)
class Limits:
    """Per-request limits (`difftool serve --max-*`): a request over one is refused (400, 413 for the body)."""

    max_pixels: int = 2048 * 2048
    """Width x height of an image made (with the hires fix: of the enlarged one; upscale: of the result)."""
    max_steps: int = 150
    max_images: int = 8
    """Images (or frames) per request."""
    max_body: int = 50 * 2**20
    """Request body bytes."""

    def check(self, job: Any) -> None:
        """Refuse (400, naming the field) a validated JobSpec over a limit."""
        count = job.frames or job.num_images
        if count > self.max_images:
            field = "frames" if job.frames else "num_images"
            raise RequestError(400, f"{field} {count} is over this server's limit of {self.max_images} images per "
                                    "request.", field)
        for field in ("steps", "prior_steps", "hires_steps"):
            value = getattr(job, field, None)
            if value is not None and value > self.max_steps:
                raise RequestError(400, f"{field} {value} is over this server's limit of {self.max_steps}.", field)
        if job.max_pixels is not None and job.max_pixels > self.max_pixels:
            raise RequestError(400, f"max_pixels {job.max_pixels} is over this server's limit of {self.max_pixels}.",
                               "max_pixels")
        width, height = job.width, job.height
        if width and height:
            scale = job.hires_scale or 1.0
            pixels = int(width * scale) * int(height * scale)
            if pixels > self.max_pixels:
                raise RequestError(400, f"{width}x{height}{f' x{scale:g}' if scale != 1 else ''} makes {pixels} "
                                        f"pixels, over this server's limit of {self.max_pixels}.", "width")
        else:
            side = width or height
            if side and side * side * (job.hires_scale or 1.0) ** 2 > self.max_pixels:
                raise RequestError(400, f"a side of {side} px is over this server's limit of {self.max_pixels} "
                                        "pixels.", "width" if width else "height")

    def check_upscale(self, width: int, height: int, scale: int) -> None:
        """An upscale's result must fit the pixel limit too (it is made in memory here, not streamed to disk)."""
        if width * height * scale * scale > self.max_pixels:
            raise RequestError(400, f"upscaling {width}x{height} x{scale} makes {width * height * scale * scale} "
                                    f"pixels, over this server's limit of {self.max_pixels}.", "source_data")


def names_path(text: str) -> bool:
    """Whether a reference names a file or folder (here), rather than an alias or a hub id."""
    text = text.strip()
    if text.startswith(("/", ".", "~", "\\")) or "\\" in text or ".." in text.split("/"):
        return True
    return os.path.exists(text)


def local_files(fields: dict[str, Any]) -> list[str]:
    """The fields of a spec (plain JSON fields) that name files on the machine that would run it, inputs sent as
    bytes excepted: a server refuses them; the CLI keeps such specs local. `model` is not checked here."""
    found: list[str] = []
    for key in ("source", "mask"):
        if fields.get(key) is not None and fields.get(f"{key}_data") is None:
            found.append(key)
    for i, item in enumerate(fields.get("items") or []):
        if isinstance(item, dict) and item.get("image") is not None and item.get("data") is None:
            found.append(f"items[{i}].image")
    for key in ("control", "image_prompt"):
        for i, entry in enumerate(fields.get(key) or []):
            if not isinstance(entry, dict):
                continue
            image = entry.get("image")
            if isinstance(image, str) or (isinstance(image, dict) and image.get("data") is None):
                found.append(f"{key}[{i}].image")
            if key == "control" and isinstance(entry.get("model"), str) and names_path(entry["model"]):
                found.append(f"control[{i}].model")
    for i, lora in enumerate(fields.get("lora") or []):
        ref = lora.get("ref") if isinstance(lora, dict) else lora
        if isinstance(ref, str) and names_path(ref):
            found.append(f"lora[{i}]")
    for key in ALWAYS_PATHS:
        if fields.get(key):
            found.append(key)
    for key in REF_FIELDS:
        value = fields.get(key)
        if isinstance(value, str) and names_path(value):
            found.append(key)
    return found


@dataclass(frozen=True)
class Served:
    """One model the server allows: the reference as given, and where it resolved."""

    text: str
    """As given to `--models` (what `GET /v1/models` lists and requests name)."""
    ref: Any
    """Its `references.ModelRef`."""

    @property
    def canonical(self) -> str:
        """What the engine is given: the absolute path for folders and files (the server's cwd does not matter)."""
        return str(self.ref.path) if self.ref.kind in ("folder", "file") else self.ref.text

    def matches(self, text: str) -> bool:
        """`text` names this model: as given, by its absolute path, or (hub) by the same id and revision."""
        if text == self.text or text == self.canonical:
            return True
        if self.ref.repo_id and self.ref.kind == "hub":
            repo, _, rev = text.partition("@")
            return repo.lower() == self.ref.repo_id.lower() and (rev or None) == self.ref.revision
        return False


class Models:
    """The models a server runs: those of `--models`, else any alias or hub id already in the local cache."""

    def __init__(self, given: list[str]) -> None:
        """Resolve every `--models` entry now: one that is missing or not cached stops the server (exit 3)."""
        from difftool import references

        self.served: list[Served] = []
        for text in given:
            ref = references.resolve(text)
            if ref.repo_id and not cached(ref.repo_id, ref.revision):
                raise ModelUnavailable(f"Model '{text}' is not in the local cache, and the server never downloads "
                                       f"anything: run `difftool pull {text}` first.")
            self.served.append(Served(text, ref))

    @property
    def restricted(self) -> bool:
        return bool(self.served)

    def default(self) -> str:
        """The model of requests that name none: the first of `--models`, else difftool's default model."""
        if self.served:
            return self.served[0].canonical
        from difftool import config

        return str(config.lookup("model", None, registry.DEFAULT_MODEL))

    def match(self, text: str | None) -> str:
        """The engine's reference for the model a request names (None: the default); 404 when not served."""
        if text is None or text == "":
            return self.default()
        text = str(text).strip()
        for served in self.served:
            if served.matches(text):
                return served.canonical
        if not self.served and not names_path(text):
            from difftool import references

            try:
                ref = references.resolve(text)
            except DifftoolError:
                ref = None
            if ref is not None and ref.kind in ("alias", "hub") and (ref.repo_id is None or
                                                                    cached(ref.repo_id, ref.revision)):
                return ref.text
        raise RequestError(404, f"The model '{text}' is not served here (GET /v1/models lists those that are).",
                           "model", kind="model_not_found")

    def listing(self) -> list[str]:
        """The model ids requests may name."""
        if self.served:
            return [s.text for s in self.served]
        return [alias for alias, spec in registry.MODELS.items()
                if spec.packaged or cached(spec.repo, None)]

    def unclip(self) -> str | None:
        """The first served model that is an unCLIP (Kandinsky) one: the default of image variations."""
        candidates = [(s.canonical, s.ref) for s in self.served] if self.served else [
            (alias, None) for alias in self.listing()]
        for text, ref in candidates:
            if is_unclip(text, ref):
                return text
        return None


def pipeline_class(ref: Any) -> str:
    """The `_class_name` of a folder's model_index.json ("" when there is none to read)."""
    path = getattr(ref, "path", None)
    index = Path(path) / "model_index.json" if path else None
    if index is None or not index.is_file():
        return ""
    import json

    try:
        return str(json.loads(index.read_text()).get("_class_name", ""))
    except (OSError, ValueError):
        return ""


def is_upscaler(ref: Any) -> bool:
    """Whether a served model is an upscaler (preloaded for `upscale`, not text to image)."""
    if ref.spec is not None:
        return ref.spec.task == "upscale"
    return pipeline_class(ref) in ("StableDiffusionUpscalePipeline", "StableDiffusionLatentUpscalePipeline",
                                   "LDMSuperResolutionPipeline")


def is_unclip(text: str, ref: Any = None) -> bool:
    """Whether a model is a Kandinsky 2.1/2.2 (prior + decoder), from the registry or its model_index.json."""
    spec = registry.get(text) if ref is None else ref.spec
    if spec is not None:
        return spec.prior is not None
    name = pipeline_class(ref)
    return name.startswith("Kandinsky") and "Prior" not in name


def cached(repo_id: str, revision: str | None) -> bool:
    """Whether a hub pipeline is in the local cache (its model_index.json), without any network."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "model_index.json", revision=revision), str)


def json_object(raw: bytes, empty: bool = False) -> dict[str, Any]:
    """A request body that must be one JSON object (400 otherwise); `empty`: no body at all stands for {}."""
    import json

    if empty and not raw.strip():
        return {}
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        raise RequestError(400, "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise RequestError(400, "The body must be a JSON object.")
    return data
