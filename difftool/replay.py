"""`--from IMAGE`: re-run the settings stored in an image; options given on the command line win.

The stored values take the place of the options the user did not type, so they beat the
environment and the config file (they are what made the image) and only explicit flags beat them.
Machine-specific settings (device, dtype, offload, compile) are not replayed: the same pixels need
the same device and dtype, which `auto` picks again on the same machine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from difftool import console, schedulers
from difftool.errors import UsageError

#: Stored keys that describe the machine or the run, not the image: never replayed.
NOT_REPLAYED = {"device", "dtype", "offload", "compile", "pipeline", "task", "version", "num_images", "output"}


def load(path: Path) -> dict[str, Any]:
    """The settings stored in `path` (difftool chunk, else A1111 infotext); UsageError when there are none."""
    from difftool import metadata, references

    source, settings, _ = metadata.read(path)
    if source is None:
        raise UsageError(f"--from: '{path}' holds no generation settings to re-run.")
    settings = dict(settings)
    if source == "a1111":
        model = settings.pop("model", None)
        if model:
            try:
                references.resolve(str(model))
                settings["model"] = model
            except Exception:
                console.info(f"--from: model '{model}' of {path} is not a difftool model reference; "
                             "using -m or the default model")
    where = ", ".join(str(settings[k]) for k in ("device", "dtype") if settings.get(k))
    console.info(f"re-running the settings of {path}" + (f" (made on {where})" if where else ""))
    return settings


def given(name: str) -> bool:
    """Whether the option `name` (the Python parameter's name) was typed on the command line."""
    try:  # Typer >= 0.2x carries its own copy of click
        from typer._click.globals import get_current_context
    except ImportError:
        from click import get_current_context

    ctx = get_current_context(silent=True)
    source = ctx.get_parameter_source(name) if ctx is not None else None
    return getattr(source, "name", None) in ("COMMANDLINE", "PROMPT")


def stored_value(name: str, settings: dict[str, Any]) -> Any:
    """The stored value for command parameter `name` (None when the image does not say)."""
    if name in NOT_REPLAYED:
        return None
    if name == "prompts":
        return [settings["prompt"]] if settings.get("prompt") is not None else None
    if name == "lora":
        items = settings.get("lora") or []
        return [f"{item['ref']}:{item['scale']:g}" if isinstance(item, dict) else str(item) for item in items] or None
    if name == "config_ref":
        return settings.get("config")
    if name == "scheduler":
        value = settings.get("scheduler")
        return value if value in schedulers.SCHEDULERS else None
    value = settings.get(name, settings.get(name.rstrip("_")))
    return value if value not in ("",) else None


def apply(
    path: Path | None,
    values: dict[str, Any],
    special: dict[str, Callable[[dict[str, Any]], Any]] | None = None,
    task: str | None = None,
) -> dict[str, Any]:
    """`values` (command parameter -> value as parsed) with every parameter not typed on the command
    line replaced by the image's stored value, when it has one. `special` maps a parameter to its own
    reader of the stored settings (e.g. the source image of img2img); `task` is the command's own task
    name, to say when the image was made by another command."""
    if path is None:
        return values
    settings = load(path)
    made_by = settings.get("task")
    if task and made_by and made_by != task and made_by != "grid":
        console.warn(f"{path} was made by `difftool {made_by}`; re-running the settings this command takes.")
    out = dict(values)
    for name in values:
        if given(name):
            continue
        reader = (special or {}).get(name)
        stored = reader(settings) if reader else stored_value(name, settings)
        if stored is not None:
            out[name] = stored
    return out


def fill(
    path: Path | None, task: str, special: dict[str, Callable[[dict[str, Any]], Any]] | None = None, **values: Any,
) -> list[Any]:
    """`apply` for one-line use in a command: the values back in the order given.

    `image, prompt, steps = replay.fill(from_, "img2img", image=image, prompt=prompt, steps=steps)`
    """
    return list(apply(path, values, special, task).values())


def stored_file(key: str, listed: bool = False) -> Callable[[dict[str, Any]], Any]:
    """A `special` reader for an input file recorded by path (img2img's `source`, inpaint's `mask`): the
    path if the file is still there (a warning when its SHA-256 changed), else a UsageError."""

    def read(settings: dict[str, Any]) -> Any:
        value = settings.get(key)
        if not value:
            return None
        path = Path(value)
        if not path.is_file():
            raise UsageError(f"--from: the {key} image {path} recorded in the image no longer exists; pass it again.")
        digest = settings.get(f"{key}_sha256")
        if digest:
            import hashlib

            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                console.warn(f"{path} changed since the image was made: the result will differ.")
        return [str(path)] if listed else str(path)

    return read


def stored_items(settings: dict[str, Any]) -> list[str] | None:
    """`special` reader for interpolate's ITEMs (`items`: [{"text": ...} | {"image": path, "sha256": ...}]):
    texts as they were, image paths checked like `stored_file` (a missing one would otherwise read as a text)."""
    items = settings.get("items")
    if not isinstance(items, list) or not items:
        return None
    out: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            out.append(str(item))
        elif item.get("image"):
            out.append(stored_file("image")({"image": item["image"], "image_sha256": item.get("sha256")}))
        else:
            out.append(str(item.get("text", "")))
    return out


def same_task(key: str, *tasks: str) -> Callable[[dict[str, Any]], Any]:
    """`special` reader replaying `key` only from images made by one of `tasks` (e.g. the model: a gen
    image's model is not an upscaler)."""
    return lambda settings: settings.get(key) if settings.get("task") in tasks else None
