"""`difftool serve`: keep one engine warm behind HTTP, for the CLI itself and for tools that speak the OpenAI
Images API or AUTOMATIC1111's API (`difftool.server`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from difftool.commands.common import guarded

LIMITS = "Limits (per request)"


@guarded
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on. Any other than loopback needs --token.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free one).")] = 7860,
    models: Annotated[Optional[str], typer.Option(
        "--models", help="Comma-separated model references to preload and allow (GET /v1/models lists them as "
        "given). Default: any alias or hub id already in the cache, loaded on first use.", show_default=False)] = None,
    token: Annotated[Optional[str], typer.Option(
        "--token", envvar="DIFFTOOL_TOKEN", help="Bearer token every TCP request must send (the per-user socket needs "
        "none). Also $DIFFTOOL_TOKEN, which keeps it out of the process list.", show_default=False)] = None,
    idle_unload: Annotated[Optional[float], typer.Option(
        "--idle-unload", help="Unload the models after this many seconds without a job.", show_default=False,
        metavar="SECONDS")] = None,
    memory_budget: Annotated[Optional[float], typer.Option(
        "--memory-budget", help="GB of model weights to keep loaded (least recently used ones are unloaded).",
        show_default=False, metavar="GB")] = None,
    queue: Annotated[int, typer.Option("--queue", help="Jobs that may wait behind the running one (then 429).")]
    = 16,
    max_pixels: Annotated[int, typer.Option("--max-pixels", help="Largest image (width x height) a request may ask.",
                                            rich_help_panel=LIMITS)] = 2048 * 2048,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Most steps a request may ask.",
                                           rich_help_panel=LIMITS)] = 150,
    max_images: Annotated[int, typer.Option("--max-images", help="Most images (n) a request may ask.",
                                            rich_help_panel=LIMITS)] = 8,
    max_body: Annotated[float, typer.Option("--max-body", help="Largest request body, in MB.", metavar="MB",
                                            rich_help_panel=LIMITS)] = 50,
    no_socket: Annotated[bool, typer.Option("--no-socket", help="Do not listen on the per-user Unix socket (then "
                                            "the CLI uses this server only through $DIFFTOOL_SERVER).")] = False,
) -> None:
    """Serve generation over HTTP with one warm engine; the CLI's commands use it by themselves.

    Native jobs API (/v1/jobs), the OpenAI Images API (/v1/images/...) and an AUTOMATIC1111 API subset
    (/sdapi/v1/...), on 127.0.0.1:7860 and on a per-user Unix socket. SIGTERM finishes the running job and exits 0.
    """
    from difftool.errors import UsageError
    from difftool.server.policy import Limits
    from difftool.server.run import Settings
    from difftool.server.run import serve as run

    for name, value in (("--max-pixels", max_pixels), ("--max-steps", max_steps), ("--max-images", max_images),
                        ("--max-body", max_body)):
        if value <= 0:
            raise UsageError(f"{name} must be positive.")
    if idle_unload is not None and idle_unload <= 0:
        raise UsageError("--idle-unload must be a positive number of seconds.")
    if memory_budget is not None and memory_budget <= 0:
        raise UsageError("--memory-budget must be a positive number of GB.")
    refs = tuple(m.strip() for m in (models or "").split(",") if m.strip())
    limits = Limits(max_pixels=max_pixels, max_steps=max_steps, max_images=max_images, max_body=int(max_body * 2**20))
    code = run(Settings(host=host, port=port, models=refs, token=token or None, idle_unload=idle_unload,
                        memory_budget=memory_budget, queue=queue, limits=limits, unix=not no_socket))
    if code:
        raise typer.Exit(code)
