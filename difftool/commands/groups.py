"""Option groups: the options several commands share, declared once and added to a command by `@uses(...)`.

Typer reads a command's options from its function signature; `uses` adds each group's options to that signature
and hands the command one `Flags` object holding every value and knowing which ones were typed on the command
line (what `--from` must not override). A command declares only its own arguments and options.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from difftool import options

F = TypeVar("F", bound=Callable[..., Any])
#: (parameter name, Annotated type, default)
Group = tuple[tuple[str, Any, Any], ...]

SAMPLING: Group = (
    ("negative", options.Negative, None),
    ("steps", options.Steps, None),
    ("guidance", options.Guidance, None),
    ("seed", options.Seed, None),
    ("width", options.Width, None),
    ("height", options.Height, None),
    ("num_images", options.NumImages, 1),
    ("scheduler", options.Scheduler, None),
    ("max_pixels", options.MaxPixels, None),
)
PRIOR: Group = (
    ("prior", options.Prior, None),
    ("prior_steps", options.PriorSteps, None),
    ("prior_guidance", options.PriorGuidance, None),
)
MODEL: Group = (
    ("model", options.Model, None),
    ("config_ref", options.Config, None),
    ("device", options.Device, None),
    ("dtype", options.Dtype, None),
    ("allow_pickle", options.AllowPickle, False),
    ("no_safety_checker", options.NoSafetyChecker, False),
    ("refresh", options.Refresh, False),
    ("lora", options.Lora, None),
)
SPEED: Group = (
    ("offload", options.Offload, None),
    ("vae_tiling", options.VaeTiling, False),
    ("vae_slicing", options.VaeSlicing, False),
    ("compile_", options.Compile, False),
    ("tiny_vae", options.TinyVae, None),
)
OUTPUT: Group = (
    ("output", options.Output, None),
    ("overwrite", options.Overwrite, False),
    ("json_", options.Json, False),
    ("quiet", options.Quiet, False),
    ("grid", options.Grid, False),
    ("from_", options.From, None),
    ("no_server", options.NoServer, False),
)
PROMPTING: Group = (
    ("weighting", options.Weighting, None),
    ("clip_skip", options.ClipSkip, None),
    ("lora_dir", options.LoraDir, None),
)
HIRES: Group = (
    ("hires_scale", options.Hires, None),
    ("hires_steps", options.HiresSteps, None),
    ("hires_denoise", options.HiresDenoise, None),
    ("hires_upscaler", options.HiresUpscaler, None),
)
GUIDES: Group = (
    ("control", options.Control, None),
    ("control_preprocess", options.ControlPreprocess, None),
    ("control_mode", options.ControlMode, None),
    ("control_start", options.ControlStart, None),
    ("control_end", options.ControlEnd, None),
    ("image_prompt", options.ImagePrompt, None),
    ("ip_adapter", options.IpAdapter, None),
)
DIT: Group = (
    ("true_cfg", options.TrueCfg, None),
    ("max_sequence_length", options.MaxSequenceLength, None),
    ("quantize", options.Quantize, None),
    ("quantize_text", options.QuantizeText, None),
    ("transformer", options.Transformer, None),
    ("cache", options.Cache, None),
    ("cache_threshold", options.CacheThreshold, None),
)
#: Everything img2img and inpaint take besides their own arguments (gen: and the hires fix).
GENERATION: Group = SAMPLING + MODEL + SPEED + OUTPUT + PRIOR + PROMPTING + GUIDES + DIT
#: Command parameter -> spec field, where the names differ or the value needs converting.
SPEC_NAMES = {"config_ref": "config", "compile_": "compile"}
#: Parameters that are not spec fields (how to write, how to load: the caller's policy).
NOT_SPEC = {"output", "overwrite", "json_", "quiet", "grid", "from_", "allow_pickle", "refresh", "no_server",
            "prompts", "image", "mask", "images", "images_", "items", "weights", "control_preprocess", "control_mode"}
"""(The commands' own arguments are given to `spec_fields` as spec fields by the command itself.)"""


class Flags:
    """A command's option values, and which of them were typed on the command line."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self._typed = _typed_names()

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def typed(self, name: str) -> bool:
        """Whether `name` was given on the command line (not a default, the environment or the config file)."""
        if self._typed is None:  # called outside Click (the Python API): whatever is set counts
            return self.values.get(name) not in (None, False)
        return name in self._typed

    def spec_fields(self, own: dict[str, Any] | None = None) -> dict[str, Any]:
        """The spec fields the user typed (options, and the command's own values in `own` that are set)."""
        out: dict[str, Any] = {}
        for name, value in self.values.items():
            if name in NOT_SPEC or not self.typed(name):
                continue
            out.update(to_spec(name, value))
        if any(self.typed(name) for name in ("control", "control_preprocess", "control_mode")):
            out["control"] = controls(self.values.get("control"), self.values.get("control_preprocess"),
                                      self.values.get("control_mode"))
        for name, value in (own or {}).items():
            if value is not None:
                out[name] = value
        return out


def pick(group: Group, *names: str) -> Group:
    """The options of `group` named, in the order named (a command that takes only some of a group)."""
    found = {option[0]: option for option in group}
    return tuple(found[name] for name in names)


def to_spec(name: str, value: Any) -> dict[str, Any]:
    """One command parameter as spec field(s): `--no-safety-checker` -> safety_checker false, `--lora a:0.5`
    -> lora [{ref: a, scale: 0.5}], and renamed parameters."""
    if name == "no_safety_checker":
        return {"safety_checker": not value}
    if name == "control":
        return {"control": controls(value, None, None)}
    if name == "image_prompt":
        from difftool import ipadapter

        prompts = [ipadapter.parse_prompt(text) for text in value or [] if text.strip()]
        return {"image_prompt": [{"image": p.image, "scale": p.scale} for p in prompts]}
    if name == "lora_dir":
        return {"lora_dir": [value] if isinstance(value, str) else list(value) if value else None}
    if name == "lora":
        from difftool.lora import split_scale

        return {"lora": [dict(zip(("ref", "scale"), split_scale(item))) for item in value or []]}
    return {SPEC_NAMES.get(name, name): value}


def controls(items: list[str] | None, preprocess: list[str] | None, modes: list[str] | None) -> list[dict[str, Any]]:
    """`--control MODEL:IMAGE[:SCALE]` values with their `--control-preprocess`/`--control-mode` as spec entries."""
    from difftool import control

    return [{"model": c.model, "image": c.image, "scale": c.scale, "preprocess": c.preprocess,
             **({"mode": c.mode} if c.mode else {})} for c in control.parse_all(items, preprocess, modes)]


def _typed_names() -> set[str] | None:
    try:  # Typer >= 0.2x carries its own copy of click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover
        from click import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return None
    return {name for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", None) in ("COMMANDLINE", "PROMPT")}


def uses(*groups: Group) -> Callable[[F], F]:
    """Add the options of `groups` to the decorated command, which takes them as one `flags: Flags` argument.
    Options the command declares itself win over a group's option of the same name."""

    def decorate(fn: F) -> F:
        hints = typing.get_type_hints(fn, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(fn).parameters.values() if p.name != "flags"]
        taken = {p.name for p in own}
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                 for group in groups for name, annotation, default in group if name not in taken]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            values = {p.name: kwargs[p.name] for p in own + added if p.name in kwargs}
            mine = {p.name: kwargs[p.name] for p in own if p.name in kwargs}
            return fn(**mine, flags=Flags(values))

        del command.__wrapped__  # Typer must see the new signature, not the function's own
        command.__signature__ = inspect.Signature(own + added)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in own + added}
        return command  # type: ignore[return-value]

    return decorate
