"""`--from IMAGE`: the spec fields stored in an image, for a command to re-run; options typed on the command line win.

The stored values take the place of the options the user did not type, so they beat the environment and the
config file (they are what made the image) and only explicit flags beat them. Machine-specific settings
(device, dtype, offload, compile) are not replayed: the same pixels need the same device and dtype, which `auto`
picks again on the same machine. Stored values go through the spec's validation on their own first, so a bad
value is named with the image it came from (exit 2).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from difftool import schedulers, spec
from difftool.errors import UsageError

#: Fields a replay takes only from an image made by a task of the same model family (a gen image's model is
#: not an upscaler; its LoRAs do not fit a Kandinsky).
MODEL_BOUND = ("model", "prior", "config", "lora", "variant", "tiny_vae")


#: A typed field that replaces stored ones with it (a new input image has another SHA-256; new items, new weights).
TOGETHER = {"source": ("source_sha256", "source_data"), "mask": ("mask_sha256", "mask_data"), "items": ("weights",)}


def load(path: Path, task: str, say: Any, typed: set[str] = frozenset(),  # type: ignore[assignment]
         notes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec fields stored in `path` that a `task` command re-runs, leaving out the `typed` ones (and what
    goes with them); UsageError when there are none or one is invalid. `say` (a Console) reports what happens;
    `notes` receives `source`, the tool that wrote the settings."""
    from difftool import readers

    try:
        found = readers.read(path)
    except readers.ReadError as exc:
        raise UsageError(f"--from: {exc}") from None
    settings = found.settings
    if notes is not None:
        notes["source"] = found.source
    if found.source is None:
        raise UsageError(f"--from: '{path}' holds no generation settings to re-run.")
    if found.source == "difftool":
        fields = spec.from_record(settings)
    else:
        fields, not_honoured = readers.to_spec_fields(found.source, settings)
        fields = _model_hint(fields, path, say)
        unknown = sorted(k for k in fields if k not in spec.TASK_FIELDS[task])
        if not_honoured or unknown:
            say.warn(f"--from {path} ({readers.LABELS[found.source]}): not honoured: "
                     f"{', '.join([*not_honoured, *unknown])}.")
    made_by = fields.get("task", "gen")
    if made_by != task:
        say.warn(f"{path} was made by `difftool {made_by}`; re-running the settings this command takes.")
    same_family = any(task in family and made_by in family for family in spec.MODEL_FAMILIES)
    out = {k: v for k, v in fields.items()
           if k in spec.TASK_FIELDS[task] and k not in spec.MACHINE_FIELDS and k not in ("task", "version")
           and (same_family or k not in MODEL_BOUND)}
    for name in typed:
        for key in (name, *TOGETHER.get(name, ())):
            out.pop(key, None)
    if out.get("scheduler") not in schedulers.SCHEDULERS:  # the model's own scheduler (a class name) is no choice
        out.pop("scheduler", None)
    for key in ("source", "mask"):
        if out.get(key):
            _check_file(Path(out[key]), out.get(f"{key}_sha256"), key, say)
    for item in out.get("items") or []:
        if isinstance(item, dict) and item.get("image"):
            _check_file(Path(item["image"]), item.get("sha256"), "image", say)
    for key, what in (("control", "control image"), ("image_prompt", "image prompt")):
        for entry in out.get(key) or []:
            image = entry.get("image") if isinstance(entry, dict) else None
            if isinstance(image, dict) and image.get("path"):
                _check_file(Path(image["path"]), image.get("sha256"), what, say)
    spec.build({"task": task, **out}, origin=f"--from {path}", flags=False, partial=True)
    where = ", ".join(str(settings[k]) for k in ("device", "dtype") if settings.get(k))
    say.info(f"re-running the settings of {path}" + (f" (made on {where})" if where else ""))
    return out


def _model_hint(fields: dict[str, Any], path: Path, say: Any) -> dict[str, Any]:
    """Another tool's model name is used only when difftool can load it (an alias, a folder, a cached hub id)."""
    from difftool import references

    model = fields.pop("model", None)
    if model:
        try:
            references.resolve(str(model))
            fields["model"] = model
        except Exception:
            say.info(f"--from: model '{model}' of {path} is not a difftool model reference; using -m or the default "
                     "model")
    return fields


def _check_file(path: Path, digest: str | None, key: str, say: Any) -> None:
    """A recorded input must still be there; a changed one is said (the result will differ)."""
    if not path.is_file():
        raise UsageError(f"--from: the {key} image {path} recorded in the image no longer exists; pass it again.")
    if digest and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        say.warn(f"{path} changed since the image was made: the result will differ.")
