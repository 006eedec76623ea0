"""Where a setting's value comes from: flag > environment (`DIFFTOOL_<KEY>`) > registry default.

Commands ask `lookup()` for every defaultable setting, so later layers (a config file) slot in here
without touching the commands.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from difftool.errors import UsageError

T = TypeVar("T")
ENV_PREFIX = "DIFFTOOL_"


def env_name(key: str) -> str:
    """`num-images` -> `DIFFTOOL_NUM_IMAGES`."""
    return ENV_PREFIX + key.upper().replace("-", "_")


def lookup(key: str, flag: T | None, default: T | None = None, cast: Callable[[str], T] = str) -> T | None:  # type: ignore[assignment]
    """The effective value of a setting: the flag if given, else the environment, else `default`."""
    if flag is not None:
        return flag
    raw = os.environ.get(env_name(key))
    if raw:
        try:
            return cast(raw)
        except ValueError as exc:
            raise UsageError(f"Environment variable {env_name(key)}={raw!r} is not a valid {key}.") from exc
    return default


def truthy(name: str) -> bool:
    """An environment flag such as DIFFTOOL_DEBUG=1."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
