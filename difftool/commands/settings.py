"""`difftool config`: the effective settings and where each comes from (flag, environment, config file, registry)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from difftool import config, console, options, registry
from difftool.commands.common import guarded

#: Built-in defaults of settings that are not per-model (what a command uses when nothing sets them).
BUILTIN = {"model": registry.DEFAULT_MODEL, "upscaler": "x4", "device": "auto", "dtype": "auto",
           "output": "./{prompt}-{seed}.png"}
#: Config key -> ModelSpec attribute (or key of ModelSpec.extra) for registry defaults.
SPEC_FIELDS = {"steps": "steps", "guidance": "guidance", "width": "width", "height": "height",
               "scheduler": "scheduler", "strength": "strength", "prior-steps": "prior_steps",
               "prior-guidance": "prior_guidance", "noise-level": "noise_level", "tile": "tile"}


def _registry_value(spec: Any, key: str) -> Any:
    attr = SPEC_FIELDS.get(key)
    if spec is None or attr is None:
        return None
    value = getattr(spec, attr, None)
    return spec.extra.get(attr) if value is None else value


def effective(model: str | None) -> dict[str, tuple[Any, str]]:
    """Every setting in config.SETTINGS -> (value, source), for `model` (or the configured one)."""
    from difftool import references

    out: dict[str, tuple[Any, str]] = {}
    value, source = config.explain("model", model, None)
    out["model"] = (value, source) if value is not None else (BUILTIN["model"], "built-in default")
    try:
        ref: Any = references.resolve(str(out["model"][0]))
    except Exception:  # an unresolvable model still shows the rest
        ref = str(out["model"][0])
    spec = getattr(ref, "spec", None)
    for key in config.SETTINGS:
        if key == "model":
            continue
        value, source = config.explain(key, None, None, config.cast_for(key), model=ref)
        if value is None:
            reg = _registry_value(spec, key)
            if reg is not None:
                value, source = reg, f"registry ({spec.alias})"
            elif key in BUILTIN:
                value, source = BUILTIN[key], "built-in default"
            else:
                source = "the model's own" if key in SPEC_FIELDS or key == "negative" else "unset"
        out[key] = (value, source)
    return out


@guarded
def config_cmd(
    model: options.Model = None,
    path_only: Annotated[bool, typer.Option("--path", help="Print only the config file's path.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Show the effective settings and where each comes from: flag > environment > config file > registry.

    The config file is TOML: top-level keys named like the long flags (model = "sd15", steps = 25, ...)
    and [models.ALIAS] tables of per-model overrides. It lives at $DIFFTOOL_CONFIG, else config.toml in
    the user config folder (--path prints it).
    """
    path = config.config_path()
    if path_only:
        console.result(str(path))
        return
    _, data = config.load_file()  # an invalid file fails here, naming the file and the key
    rows = effective(model)
    if json_:
        console.result_json({
            "config_file": str(path), "exists": data is not None,
            "settings": {k: {"value": v, "source": s} for k, (v, s) in rows.items()},
            "models": (data or {}).get("models", {}),
        })
        return
    console.result(f"config file: {path}{'' if data is not None else ' (not found)'}")
    width = max(len(k) for k in rows)
    shown = [(k, "-" if v is None else str(v), s) for k, (v, s) in rows.items()]
    vwidth = max(len(v) for _, v, _ in shown)
    for key, value, source in shown:
        console.result(f"{key:<{width}}  {value:<{vwidth}}  {source}")
    for name, table in sorted((data or {}).get("models", {}).items()):
        values = ", ".join(f"{k} = {v!r}" for k, v in table.items())
        console.result(f"[models.{name}] {values}")
