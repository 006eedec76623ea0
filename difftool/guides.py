"""Pictures that guide a generation: ControlNet control images and IP-Adapter image prompts, at call time.

A command builds one `Guides` from its options (`build`: everything parsed and every image file checked
before any model loads, exit 2 naming a bad file), puts the load-time part into LoadOptions
(`configure`: the ControlNet references and the IP-Adapter, which change what is loaded), and the task
asks `Guides.call(loaded, width, height)` for the pipeline kwargs and the settings to record, once per
generation size. Control images are laid over the generation size (scaled to cover it, then
center-cropped: never stretched) and only then preprocessed, so edges stay one pixel wide; diffusers then
takes them as they are. `--from` replays them by path (replay.py checks the files).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from difftool import images
from difftool.control import Control
from difftool.errors import UsageError
from difftool.ipadapter import ImagePrompt


@dataclass
class Guides:
    """ControlNets and image prompts of one request (spec fields `control`, `control_start`, `control_end`,
    `image_prompt`, `ip_adapter`)."""

    controls: tuple[Control, ...] = ()
    control_start: float = 0.0
    control_end: float = 1.0
    image_prompts: tuple[ImagePrompt, ...] = ()
    ip_adapter: str | None = None
    """As given; None with image prompts = the model family's standard adapter."""
    allow_pickle: bool = False
    refresh: bool = False
    inline: dict[str, Any] = field(default_factory=dict, repr=False)
    """Images given as base64 bytes (requests): key -> (PIL image, SHA-256, label or None); the key stands for a
    path."""
    say: Any = None
    """Where to report what runs (the engine's reporter's `info`)."""
    _prepared: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __bool__(self) -> bool:
        return bool(self.controls or self.image_prompts)

    @property
    def controlnets(self) -> tuple[str, ...]:
        """LoadOptions.controlnets: the ControlNet references, in order."""
        return tuple(c.model for c in self.controls)

    def call(self, loaded: Any, width: int | None, height: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Pipeline kwargs and recorded settings for images of `width` x `height` (None: the model's default)."""
        pipe = loaded.pipe
        kwargs: dict[str, Any] = {}
        settings: dict[str, Any] = {}
        if self.controls:
            if width is None or height is None:
                dw, dh = default_size(pipe)
                width, height = width or dw, height or dh
                kwargs.update(width=width, height=height)
            kwargs.update(self._control_kwargs(pipe, width, height))
            settings.update(self.control_settings())
        if self.image_prompts:
            label = self._ensure_adapter(pipe)
            from difftool import ipadapter

            ipadapter.set_scales(pipe, [p.scale for p in self.image_prompts])
            kwargs["ip_adapter_image"] = [self._image(p.image) for p in self.image_prompts]
            settings["ip_adapter"] = label
            settings["image_prompt"] = [{"image": self._record(p.image), "scale": p.scale} for p in self.image_prompts]
        return kwargs, settings

    # ---- ControlNets ----

    def _control_kwargs(self, pipe: Any, width: int, height: int) -> dict[str, Any]:
        from difftool import control

        net = getattr(pipe, "controlnet", None)
        if net is None:
            raise UsageError(f"--control: {type(pipe).__name__} has no ControlNet (was the model loaded with it?).")
        nets = list(getattr(net, "nets", [net]))
        family = "flux" if type(pipe).__name__.startswith("Flux") else "sdxl"
        pictures, modes = [], []
        for ctl, model in zip(self.controls, nets):
            pictures.append(self._control_image(ctl, width, height))
            config = model.config
            union = control.is_union(dict(config))
            modes.append(control.union_mode(config, family, ctl.mode, ctl.preprocess, control.resolve(ctl.model).label)
                         if union else None)
        params = inspect.signature(pipe.__call__).parameters
        key = "control_image" if "control_image" in params else "image"
        single = len(pictures) == 1
        kwargs: dict[str, Any] = {
            "controlnet_conditioning_scale": self.controls[0].scale if single else [c.scale for c in self.controls],
            "control_guidance_start": self.control_start,
            "control_guidance_end": self.control_end,
        }
        if type(net).__name__ == "ControlNetUnionModel":  # SDXL Union: lists of images and modes, one model
            kwargs[key], kwargs["control_mode"] = pictures, modes
        else:
            kwargs[key] = pictures[0] if single else pictures
            if any(m is not None for m in modes):
                kwargs["control_mode"] = modes[0] if single else modes
        return kwargs

    def _control_image(self, ctl: Control, width: int, height: int) -> Any:
        """The control image at the generation size, preprocessed (cached per image, size and preprocessor)."""
        key = ("control", ctl.image, ctl.preprocess, width, height)
        if key not in self._prepared:
            from difftool import preprocess

            picture = images.resize_cover(self._image(ctl.image), width, height)
            step = preprocess.parse(ctl.preprocess)
            if step.name != "none" and self.say is not None:
                self.say(f"control image {ctl.image}: {step.text} at {width}x{height}")
            self._prepared[key] = preprocess.run(step, picture, self.allow_pickle, self.refresh)
        return self._prepared[key]

    def control_settings(self) -> dict[str, Any]:
        """What ran, for the metadata: `control` entries (the model's label, the image's path and SHA-256, scale,
        preprocessor, Union mode) and the guidance window."""
        from difftool import control

        entries = []
        for ctl in self.controls:
            entry: dict[str, Any] = {"model": control.resolve(ctl.model).label, "image": self._record(ctl.image),
                                     "scale": ctl.scale, "preprocess": ctl.preprocess}
            if ctl.mode:
                entry["mode"] = ctl.mode
            entries.append(entry)
        return {"control": entries, "control_start": self.control_start, "control_end": self.control_end}

    # ---- IP-Adapter ----

    def _ensure_adapter(self, pipe: Any) -> str:
        from difftool import ipadapter

        return ipadapter.apply(pipe, self.ip_adapter or "auto", len(self.image_prompts), self.allow_pickle,
                               self.refresh, say=self.say)

    def _image(self, path: str) -> Any:
        if path in self.inline:
            return self.inline[path][0]
        key = ("file", path)
        if key not in self._prepared:
            self._prepared[key] = images.load(path)
        return self._prepared[key]

    def _record(self, path: str) -> dict[str, str]:
        if path in self.inline:
            _, digest, label = self.inline[path]
            return {"path": label, "sha256": digest} if label else {"sha256": digest}
        return _file_record(path)


def _file_record(path: str) -> dict[str, str]:
    p = Path(path).expanduser()
    return {"path": str(p.resolve()), "sha256": images.sha256(p)}


def default_size(pipe: Any) -> tuple[int, int]:
    """The size the pipeline makes without width/height (its UNet's sample size, or `default_sample_size`, in
    pixels): a ControlNet pipeline would take the control image's size instead, difftool keeps the model's."""
    factor = getattr(pipe, "vae_scale_factor", 8) or 8
    sample = getattr(pipe, "default_sample_size", None)
    if not isinstance(sample, int):
        unet = getattr(pipe, "unet", None)
        sample = getattr(getattr(unet, "config", None), "sample_size", None)
    side = int(sample) * int(factor) if isinstance(sample, int) else 512
    return side, side


def _check_file(path: str, what: str) -> None:
    """Exit 2 naming the file when it is missing or not a readable image (headers only)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UsageError(f"{what} '{path}' does not exist.")
    images.probe(p)


def build(
    control: list[str] | None = None,
    control_preprocess: list[str] | None = None,
    control_mode: list[str] | None = None,
    control_start: float | None = None,
    control_end: float | None = None,
    image_prompt: list[str] | None = None,
    ip_adapter: str | None = None,
    allow_pickle: bool = False,
    refresh: bool = False,
) -> Guides | None:
    """Parse and check the guide options (no torch); None when none is given."""
    from difftool import control as controls
    from difftool import ipadapter

    items = controls.parse_all(control, control_preprocess, control_mode)
    prompts = tuple(ipadapter.parse_prompt(t) for t in image_prompt or [] if t.strip())
    return _checked(items, control_start, control_end, prompts, ip_adapter, allow_pickle, refresh)


def from_fields(
    control: list[dict[str, Any]] | None = None,
    control_start: float | None = None,
    control_end: float | None = None,
    image_prompt: list[dict[str, Any]] | None = None,
    ip_adapter: str | None = None,
    allow_pickle: bool = False,
    refresh: bool = False,
) -> Guides | None:
    """`build` for the structured spec fields (a jobs API): `control` = [{"model", "image", "scale"?, "preprocess"?,
    "mode"?}], `image_prompt` = [{"image", "scale"?}], where "image" is a path or a recorded {"path", "sha256"}."""
    from difftool import control as controls
    from difftool import ipadapter
    from difftool import preprocess as pre

    inline: dict[str, Any] = {}

    def path_of(value: Any) -> str:
        if isinstance(value, dict) and value.get("data"):  # base64 bytes (a request): decoded now, keyed by digest
            import hashlib

            from difftool.tasks.inputs import decode_data

            raw = decode_data(str(value["data"]), "guide image")
            digest = hashlib.sha256(raw).hexdigest()
            label = value.get("path")  # where a client read the bytes: recorded, never opened
            key = str(label) if label else f"inline:{digest}"  # a label keys (and names) its image in messages
            if key in inline and inline[key][1] != digest:
                key = f"inline:{digest}:{label}"
            inline[key] = (images.load_bytes(raw, "guide image"), digest, label)
            return key
        value = value.get("path") if isinstance(value, dict) else value
        if not isinstance(value, str) or not value:
            raise UsageError("An image guide needs an image path.")
        return value

    def scale_of(entry: dict[str, Any], what: str) -> float:
        scale = float(entry.get("scale", 1.0))
        if not scale >= 0 or scale == float("inf"):
            raise UsageError(f"{what}: the scale must be a number >= 0.")
        return scale

    items = []
    for entry in control or []:
        if not isinstance(entry, dict) or not entry.get("model"):
            raise UsageError("Every control needs a model and an image.")
        step = pre.parse(str(entry.get("preprocess") or "none"))
        mode = entry.get("mode")
        items.append(controls.Control(str(entry["model"]), path_of(entry.get("image")), scale_of(entry, "control"),
                                      step.text, str(mode).lower() if mode else None))
    prompts = tuple(ipadapter.ImagePrompt(path_of(e.get("image") if isinstance(e, dict) else e),
                                          scale_of(e, "image_prompt") if isinstance(e, dict) else 1.0)
                    for e in image_prompt or [])
    found = _checked(tuple(items), control_start, control_end, prompts, ip_adapter, allow_pickle, refresh, inline)
    if found is not None:
        found.inline = inline
    return found


def _checked(items: tuple[Control, ...], control_start: float | None, control_end: float | None,
             prompts: tuple[ImagePrompt, ...], ip_adapter: str | None, allow_pickle: bool, refresh: bool,
             inline: dict[str, Any] | None = None) -> Guides | None:
    """The checks every way in shares: window, pairing of options, references and image files (exit 2/3)."""
    from difftool import control as controls
    from difftool import ipadapter

    if not items and (control_start is not None or control_end is not None):
        raise UsageError("--control-start/--control-end apply to --control, which is not given.")
    start, end = controls.check_window(control_start, control_end)
    if ip_adapter and not prompts:
        raise UsageError("--ip-adapter needs at least one --image-prompt IMAGE[:SCALE].")
    if not items and not prompts:
        return None
    for item in items:
        controls.resolve(item.model)  # an unknown alias or a missing folder: exit 3 before anything loads
        if item.image not in (inline or {}):
            _check_file(item.image, "Control image")
    if ip_adapter:
        ipadapter.resolve(ip_adapter, allow_pickle)
    for p in prompts:
        if p.image not in (inline or {}):
            _check_file(p.image, "Image prompt")
    return Guides(items, start, end, prompts, ip_adapter or None, allow_pickle, refresh)
