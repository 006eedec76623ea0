"""The `difftool` command line: the Typer app and the one place where every command is registered.

Commands live in `difftool.commands.*` (one module per command or group) and call the task modules
in `difftool.tasks`. Nothing heavy is imported at start-up (torch, diffusers and transformers load
inside the tasks), so `--help` and input errors answer at once.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from difftool import __version__, console
from difftool.commands import batch, edit, env, generate, info, models, schema, serve, settings, unclip, upscale


class OneLineErrors(TyperGroup):
    """The app's command group: usage errors (a bad flag or value) are one sentence on stderr and exit 2, like
    every other difftool error, instead of Typer's multi-line box."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        # the command line as given, for commands that re-run it (`batch --processes` under accelerate's launcher)
        extra.setdefault("obj", {"argv": list(args) if args is not None else sys.argv[1:]})
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        from typer import _click as click

        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # `difftool` alone: the help, as Typer shows it
            from typer import rich_utils

            rich_utils.rich_format_error(exc)
            sys.exit(exc.exit_code)
        except click.exceptions.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            console.error(f"{exc.format_message().rstrip('.')}{where}.")
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            console.error(exc.format_message())
            sys.exit(exc.exit_code)
        except typer.Abort:
            console.error("aborted.")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="difftool",
    cls=OneLineErrors,
    help="Diffusion images from the shell: text-to-image, img2img, inpainting, upscaling, Kandinsky variations.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"difftool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (also DIFFTOOL_DEBUG=1).")] = False,
) -> None:
    """Diffusion images from the shell."""
    ctx.obj = {**(ctx.obj or {}), "debug": debug}  # this invocation's state travels on the Click context


# ---- command registry: one line per command ---------------------------------------------------------
app.command()(generate.gen)
app.command()(info.info)
app.command("config")(settings.config_cmd)
app.command()(models.models)
app.command()(models.pull)
app.command()(models.rm)
app.command()(env.env)
app.command()(edit.img2img)
app.command()(edit.inpaint)
app.command()(upscale.upscale)
app.command()(unclip.variation)
app.command()(unclip.interpolate)
app.command()(schema.schema)
app.command()(batch.batch)
app.command()(serve.serve)


def main() -> None:
    """Console-script entry point."""
    app()
