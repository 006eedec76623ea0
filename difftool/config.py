"""Where a setting's value comes from: flag > environment (`DIFFTOOL_<KEY>`) > config file > default.

Commands ask `lookup()` for every defaultable setting. The config file is TOML (`config_path()`:
`$DIFFTOOL_CONFIG`, else `config.toml` in the platform's user config folder) with top-level keys
named like the long flags and `[models.ALIAS]` tables of per-model overrides; a per-model value wins
over a top-level one for the model given as `lookup(..., model=)`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from difftool.errors import UsageError

T = TypeVar("T")
ENV_PREFIX = "DIFFTOOL_"


def env_name(key: str) -> str:
    """`num-images` -> `DIFFTOOL_NUM_IMAGES`."""
    return ENV_PREFIX + key.upper().replace("-", "_")


def lookup(
    key: str, flag: T | None, default: T | None = None, cast: Callable[[str], T] = str,  # type: ignore[assignment]
    model: Any = None,
) -> T | None:
    """The effective value of a setting: the flag if given, else the environment, else the config file
    (the model's `[models.X]` table, then the top level), else `default`."""
    return explain(key, flag, default, cast, model=model)[0]


def explain(
    key: str, flag: Any, default: Any = None, cast: Callable[[str], Any] = str, model: Any = None,
) -> tuple[Any, str]:
    """`lookup`, and where the value came from (`flag`, `env DIFFTOOL_X`, `PATH [models.X]`, `PATH`, `default`)."""
    if flag is not None:
        return flag, "flag"
    raw = os.environ.get(env_name(key))
    if raw:
        try:
            return cast(raw), f"env {env_name(key)}"
        except ValueError as exc:
            raise UsageError(f"Environment variable {env_name(key)}={raw!r} is not a valid {key}.") from exc
    found = file_value(key, model)
    if found is not None:
        return found
    return default, "default"


def truthy(name: str) -> bool:
    """An environment flag such as DIFFTOOL_DEBUG=1."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


# ---- the config file ----------------------------------------------------------------------------------

#: Keys a config file may hold (top level and `[models.X]` tables), named like the long flags, and
#: their TOML types. A key added here is accepted in the file and shown by `difftool config`;
#: a command picks it up by calling `lookup(key, ...)`.
SETTINGS: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "device": (str,),
    "dtype": (str,),
    "output": (str,),
    "scheduler": (str,),
    "steps": (int,),
    "guidance": (float, int),
    "width": (int,),
    "height": (int,),
    "negative": (str,),
    "strength": (float, int),
    "offload": (str,),
    "tiny-vae": (str,),
    "variant": (str,),
    "lora": (list, str),
    "prior-steps": (int,),
    "prior-guidance": (float, int),
    "noise-level": (int,),
    "tile": (int,),
    "upscaler": (str,),
    "max-pixels": (int,),
    "weighting": (str,),
    "clip-skip": (int,),
    "hires": (float, int),
    "hires-steps": (int,),
    "hires-denoise": (float, int),
    "hires-upscaler": (str,),
    "lora-dir": (list, str),
    "quantize": (str,),
    "quantize-text": (str,),
    "cache": (str,),
    "cache-threshold": (float, int),
    "true-cfg": (float, int),
    "max-sequence-length": (int,),
}
#: Keys that make no sense per model.
GLOBAL_ONLY = {"model", "upscaler"}
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", list: "a list", bool: "true or false"}
_cache: dict[str, Any] = {}
"""The parsed file, kept while its (path, mtime, size) stay the same: a memo, not per-run state."""


def config_path() -> Path:
    """`$DIFFTOOL_CONFIG`, else `config.toml` in the user config folder (platformdirs)."""
    given = os.environ.get("DIFFTOOL_CONFIG")
    if given:
        return Path(given).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("difftool", appauthor=False)) / "config.toml"


def _norm(key: str) -> str:
    return key.strip().lower().replace("_", "-")


def _bad(path: Path, where: str, message: str) -> UsageError:
    return UsageError(f"Config file {path}: {where} {message}.")


def _check_value(path: Path, where: str, key: str, value: Any) -> Any:
    """Validate one value against SETTINGS (and the names devices/schedulers accept) before use."""
    types = SETTINGS[key]
    if isinstance(value, bool) or not isinstance(value, types):
        words = " or ".join(_TYPE_WORDS[t] for t in types if not (t is int and float in types))
        raise _bad(path, where, f"must be {words}, not {value!r}")
    if float in types and isinstance(value, int):
        value = float(value)
    if key == "lora":
        value = [value] if isinstance(value, str) else value
        if not all(isinstance(v, str) for v in value):
            raise _bad(path, where, "must be a list of strings like \"file.safetensors:0.8\"")
    if key in ("steps", "width", "height", "prior-steps", "tile") and value < 1:
        raise _bad(path, where, f"must be a positive integer, not {value}")
    if key in ("width", "height") and value % 8:
        raise _bad(path, where, f"must be a multiple of 8, not {value}")
    from difftool import devices, schedulers

    try:
        if key == "device":
            devices.check(value, "auto")
        elif key == "dtype":
            devices.check("auto", value)
        elif key == "scheduler":
            schedulers.check_name(value)
    except UsageError as exc:
        raise _bad(path, where, exc.message[0].lower() + exc.message[1:].rstrip(".")) from None
    return value


def _validate(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The file's settings with normalised keys: {key: value, "models": {name: {key: value}}}."""
    known = ", ".join(SETTINGS)
    out: dict[str, Any] = {"models": {}}
    for raw_key, value in data.items():
        key = _norm(raw_key)
        if key == "models":
            if not isinstance(value, dict):
                raise _bad(path, "key 'models'", "must be a table of per-model tables ([models.sd15])")
            for name, table in value.items():
                if not isinstance(table, dict):
                    raise _bad(path, f"key 'models.{name}'", "must be a table ([models.NAME] with key = value lines)")
                entries: dict[str, Any] = {}
                for raw_sub, sub_value in table.items():
                    sub = _norm(raw_sub)
                    where = f"key 'models.{name}.{raw_sub}'"
                    if sub not in SETTINGS or sub in GLOBAL_ONLY:
                        raise _bad(path, where, f"is not a per-model setting; use one of {known.replace('model, ', '')}")
                    entries[sub] = _check_value(path, where, sub, sub_value)
                out["models"][name] = entries
            continue
        if key not in SETTINGS:
            raise _bad(path, f"key '{raw_key}'", f"is unknown; use one of {known} or a [models.NAME] table")
        out[key] = _check_value(path, f"key '{raw_key}'", key, value)
    return out


def load_file() -> tuple[Path, dict[str, Any] | None]:
    """The config file's path and validated content (None when there is no file). Cached per file version."""
    path = config_path()
    try:
        stat = path.stat()
    except OSError:
        return path, None
    if path.is_dir():
        raise UsageError(f"Config file {path} is a folder, not a TOML file.")
    stamp = (str(path), stat.st_mtime_ns, stat.st_size)
    if _cache.get("stamp") == stamp:
        return path, _cache["data"]
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"Config file {path} is not valid TOML: {exc}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Config file {path} cannot be read: {exc}.") from None
    data = _validate(path, raw)
    _cache.update(stamp=stamp, data=data)
    return path, data


def model_names(model: Any) -> list[str]:
    """Names under which `[models.X]` may hold a model: what was typed, the alias, the hub id, the short name."""
    if model is None:
        return []
    if isinstance(model, str):
        return [model]
    names = [getattr(model, "text", None), getattr(getattr(model, "spec", None), "alias", None),
             getattr(model, "repo_id", None), getattr(model, "label", None), getattr(model, "name", None)]
    return [n for i, n in enumerate(names) if n and n not in names[:i]]


def file_value(key: str, model: Any = None) -> tuple[Any, str] | None:
    """(value, source) from the config file: the model's table first, then the top level; None if unset."""
    path, data = load_file()
    if data is None:
        return None
    key = _norm(key)
    for name in model_names(model):
        table = data["models"].get(name)
        if table and key in table:
            return table[key], f"{path} [models.{name}]"
    if key in data:
        return data[key], str(path)
    return None


def cast_for(key: str) -> Callable[[str], Any]:
    """How an environment value of a config key is read (int, float, list or str)."""
    kind = SETTINGS.get(_norm(key), (str,))[0]
    if kind is list:
        return lambda raw: [v for v in raw.split(",") if v.strip()]
    return kind if kind in (int, float) else str
