"""Helpers every command uses: the error guard, stdin expansion, and cheap validation of shared options."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from difftool import config, console, devices, registry
from difftool.errors import ExitCode, UsageError, explain

F = TypeVar("F", bound=Callable[..., Any])
state: dict[str, bool] = {"debug": False}


def guarded(fn: F) -> F:
    """Run a command body: DifftoolError -> message + its exit code; Ctrl-C -> 130; bugs -> exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = state["debug"] or config.truthy("DIFFTOOL_DEBUG")
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            console.error("interrupted.")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except Exception as exc:  # the one place errors become exit codes
            known = explain(exc)
            if debug:
                traceback.print_exc(file=sys.stderr)
            if known is None:
                first = str(exc).splitlines()[0] if str(exc) else ""
                console.error(f"{type(exc).__name__}: {first} (rerun with --debug for the traceback).")
                raise typer.Exit(ExitCode.FAILURE) from None
            console.error(known.message)
            raise typer.Exit(known.code) from None

    return wrapper  # type: ignore[return-value]


def read_lines(items: list[str], what: str) -> list[str]:
    """Expand `-` into the non-empty lines of stdin."""
    out: list[str] = []
    for item in items:
        if item == "-":
            if sys.stdin.isatty():
                console.info(f"reading {what} from stdin, one per line (Ctrl-D to end)")
            out.extend(line.strip() for line in sys.stdin if line.strip())
        else:
            out.append(item)
    if not out:
        raise UsageError(f"No {what} given.")
    return out


def check_size(width: int | None, height: int | None) -> None:
    for flag, value in (("--width", width), ("--height", height)):
        if value is not None and value % 8:
            raise UsageError(f"{flag} {value} is not a multiple of 8.")


def load_options(
    device: str | None,
    dtype: str | None,
    allow_pickle: bool = False,
    no_safety_checker: bool = False,
    refresh: bool = False,
    offload: str | None = None,
    vae_tiling: bool = False,
    vae_slicing: bool = False,
    compile: bool = False,
    tiny_vae: str | None = None,
    lora: list[str] | None = None,
    quantize: str | None = None,
    quantize_text: str | None = None,
    transformer: str | None = None,
    cache: str | None = None,
    cache_threshold: float | None = None,
) -> Any:
    """LoadOptions from flags/environment/config file, validated before torch is imported."""
    from difftool import components, stepcache
    from difftool import lora as loras
    from difftool import quantize as quant
    from difftool.loading import OFFLOAD_MODES, LoadOptions

    dev = config.lookup("device", device, "auto")
    dt = config.lookup("dtype", dtype, "auto")
    assert dev is not None and dt is not None
    devices.check(dev, dt)
    offload = config.lookup("offload", offload)
    tiny_vae = config.lookup("tiny-vae", tiny_vae)
    lora_items = config.lookup("lora", lora or None, None, lambda raw: [v for v in raw.split(",") if v.strip()])
    adapters = loras.parse_all(lora_items, allow_pickle)
    if offload is not None and offload not in OFFLOAD_MODES:
        raise UsageError(f"Unknown --offload mode '{offload}'; use {' or '.join(OFFLOAD_MODES)}.")
    threshold = config.lookup("cache-threshold", cache_threshold, None, float)
    return LoadOptions(
        device=dev, dtype=dt, allow_pickle=allow_pickle, safety_checker=not no_safety_checker, refresh=refresh,
        offload=offload, vae_tiling=vae_tiling, vae_slicing=vae_slicing, compile=compile, tiny_vae=tiny_vae,
        variant=config.lookup("variant", None), lora=adapters,
        quantize=quant.check_scheme(config.lookup("quantize", quantize), "--quantize"),
        quantize_text=quant.check_scheme(config.lookup("quantize-text", quantize_text), "--quantize-text"),
        transformer=components.check_transformer_file(transformer),
        cache=stepcache.check(config.lookup("cache", cache), threshold), cache_threshold=threshold,
    )


def resolve_model(model: str | None, config_ref: str | None = None, default: str = registry.DEFAULT_MODEL) -> Any:
    """The ModelRef for -m (or $DIFFTOOL_MODEL, or `default`)."""
    from difftool import references

    ref = config.lookup("model", model, default)
    assert ref is not None
    resolved = references.resolve(ref, config=config_ref)
    config.use_model(resolved)  # later lookups see its [models.X] table in the config file
    return resolved
