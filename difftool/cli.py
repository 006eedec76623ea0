"""The `difftool` command line: the Typer app and the one place where every command is registered.

Commands live in `difftool.commands.*` (one module per command or group) and call the task modules
in `difftool.tasks`. Nothing heavy is imported at start-up (torch, diffusers and transformers load
inside the tasks), so `--help` and input errors answer at once.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from difftool import __version__, config
from difftool.commands import common, edit, env, generate, info, models, settings, unclip, upscale

app = typer.Typer(
    name="difftool",
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
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (also DIFFTOOL_DEBUG=1).")] = False,
) -> None:
    """Diffusion images from the shell."""
    common.state["debug"] = debug
    config.use_model(None)


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


def main() -> None:
    """Console-script entry point."""
    app()
