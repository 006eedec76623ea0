"""The `difftool` command line: parse options, validate cheaply, call the task modules.

Nothing heavy is imported here (torch, diffusers and transformers load inside the tasks), so
`--help` and input errors answer at once. Every command runs inside `guarded`, which turns
errors into one sentence on stderr and a documented exit code.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any, Optional, TypeVar

import typer

from difftool import __version__, config, console, devices, options, registry, schedulers
from difftool.errors import ExitCode, UsageError, explain

app = typer.Typer(
    name="difftool",
    help="Diffusion images from the shell: text-to-image, img2img, inpainting, upscaling, Kandinsky variations.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
_state: dict[str, bool] = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """Run a command body: DifftoolError -> message + its exit code; Ctrl-C -> 130; bugs -> exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = _state["debug"] or config.truthy("DIFFTOOL_DEBUG")
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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"difftool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (also DIFFTOOL_DEBUG=1).")] = False,
) -> None:
    """Diffusion images from the shell."""
    _state["debug"] = debug


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


def load_options(device: str | None, dtype: str | None, allow_pickle: bool, no_safety_checker: bool,
                 refresh: bool) -> Any:
    """LoadOptions from flags/environment, validated before torch is imported."""
    from difftool.loading import LoadOptions

    dev = config.lookup("device", device, "auto")
    dt = config.lookup("dtype", dtype, "auto")
    assert dev is not None and dt is not None
    devices.check(dev, dt)
    return LoadOptions(device=dev, dtype=dt, allow_pickle=allow_pickle, safety_checker=not no_safety_checker,
                       refresh=refresh)


def resolve_model(model: str | None, config_ref: str | None) -> Any:
    from difftool import references

    ref = config.lookup("model", model, registry.DEFAULT_MODEL)
    assert ref is not None
    return references.resolve(ref, config=config_ref)


@app.command()
@guarded
def gen(
    prompts: Annotated[list[str], typer.Argument(help="Prompts; `-` reads prompts from stdin, one per line.",
                                                 show_default=False)],
    model: options.Model = None,
    negative: options.Negative = None,
    steps: options.Steps = None,
    guidance: options.Guidance = None,
    seed: options.Seed = None,
    width: options.Width = None,
    height: options.Height = None,
    num_images: options.NumImages = 1,
    scheduler: options.Scheduler = None,
    output: options.Output = None,
    overwrite: options.Overwrite = False,
    json_: options.Json = False,
    quiet: options.Quiet = False,
    device: options.Device = None,
    dtype: options.Dtype = None,
    config_ref: options.Config = None,
    allow_pickle: options.AllowPickle = False,
    no_safety_checker: options.NoSafetyChecker = False,
    refresh: options.Refresh = False,
) -> None:
    """Make images from text prompts (one PNG path per line on stdout)."""
    from difftool.outputs import OutputPlan

    console.set_quiet(quiet)
    check_size(width, height)
    sched = schedulers.check_name(config.lookup("scheduler", scheduler))
    opts = load_options(device, dtype, allow_pickle, no_safety_checker, refresh)
    ref = resolve_model(model, config_ref)
    plan = OutputPlan(config.lookup("output", output), overwrite=overwrite)
    texts = read_lines(prompts, "prompts")
    plan.validate(len(texts) * num_images)

    from difftool.tasks import text2img

    req = text2img.GenRequest(
        prompts=texts, negative=negative, steps=steps, guidance=guidance, seed=seed, width=width, height=height,
        num_images=num_images, scheduler=sched,
    )
    text2img.run(ref, req, opts, plan, as_json=json_)


def main() -> None:
    """Console-script entry point."""
    app()
