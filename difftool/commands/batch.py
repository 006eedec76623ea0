"""`difftool batch JOBS -o DIR`: thousands of jobs from a file, resumable, over every process accelerate starts.

The options of `gen` apply to every job (a JSONL line's own fields win; an option applies to the tasks that take
it); see `difftool.batch` for how jobs, the manifest, locks and processes work.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from difftool import options
from difftool.commands.common import guarded
from difftool.commands.groups import DIT, GUIDES, HIRES, MODEL, PRIOR, PROMPTING, SAMPLING, SPEED, Flags, uses
from difftool.errors import UsageError

BATCH = "Batch"
#: This command's own parameters that are not spec fields.
OWN = ("ctx", "jobs", "output", "vary", "batch_size", "processes", "retry_failed", "verify", "format_", "json_", "quiet")


@guarded
@uses(SAMPLING + MODEL + SPEED + PRIOR + PROMPTING + GUIDES + DIT + HIRES)
def batch(
    ctx: typer.Context,
    jobs: Annotated[str, typer.Argument(
        help="Text file (one prompt per line), JSONL file (one job spec per line, any task; fields not given come "
        "from the options), or - for stdin.", show_default=False, metavar="JOBS")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Folder for the images (named by job id) and the manifest; rerun with the same "
        "folder to resume.", rich_help_panel=options.OUT, show_default=False, file_okay=False)],
    vary: Annotated[Optional[list[str]], typer.Option(
        "--vary", help="FIELD=VALUES, repeatable: every job for every value, cross product (seed=1..8, "
        "guidance=3,5,7, steps=10..50:10, 'prompt=[\"a\", \"b\"]').", rich_help_panel=BATCH,
        show_default=False)] = None,
    strength: options.Strength = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, max=1024, help="Images per pipeline call, for jobs that share their settings "
        "(each image keeps its own seeded generator). The GPU throughput switch.", rich_help_panel=BATCH)] = 1,
    processes: Annotated[Optional[int], typer.Option(
        "--processes", min=1, max=1024, help="Run in N processes on this machine through accelerate's launcher "
        "(one per GPU; on CPU, gloo). Or start it yourself: accelerate launch -m difftool batch ...",
        rich_help_panel=BATCH, show_default=False)] = None,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Make again the jobs that failed in an earlier run (skipped otherwise).",
        rich_help_panel=BATCH)] = False,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Check the SHA-256 of every image made earlier, not only that it exists with its size.",
        rich_help_panel=BATCH)] = False,
    format_: Annotated[str, typer.Option(
        "--format", help="auto (by extension: .jsonl/.json = JSONL, .txt = text; else JSONL when the first line "
        "is a JSON object), text, or jsonl.", rich_help_panel=BATCH)] = "auto",
    json_: Annotated[bool, typer.Option(
        "--json", help="One JSON object per job on stdout (its manifest record), instead of image paths.",
        rich_help_panel=options.OUT)] = False,
    quiet: options.Quiet = False,
    *,
    flags: Flags,
) -> None:
    """Make every job of a file, resumably: a manifest in DIR records what is made; rerun to finish."""
    from difftool.batch import processes as procs
    from difftool.batch import runner

    if processes is not None and processes > 1:
        argv = ((ctx.find_root().obj or {}).get("argv")) or []
        if not argv:
            raise UsageError("--processes needs the command line it was given; use accelerate launch instead.")
        with tempfile.TemporaryDirectory(prefix="difftool-batch-") as tmp:
            code = procs.launch(processes, argv, Path(tmp) / "status")
        if code:
            raise typer.Exit(code)
        return
    spec_flags = Flags({k: v for k, v in flags.values.items() if k not in OWN})
    opts = runner.Options(
        out=output.expanduser(), out_text=str(output), batch_size=batch_size, retry_failed=retry_failed,
        verify=verify, as_json=json_, quiet=quiet, allow_pickle=bool(flags.values.get("allow_pickle")),
        refresh=bool(flags.values.get("refresh")), device=flags.values.get("device"),
        debug=bool((ctx.find_root().obj or {}).get("debug")),
    )
    _check_defaults(spec_flags)
    code = runner.run(jobs, format_, vary, spec_flags, opts)
    if code:
        raise typer.Exit(code)


def _check_defaults(flags: Flags) -> None:
    """The typed options, checked once before any job (a bad value would otherwise fail every line)."""
    from difftool import spec

    spec.build(flags.spec_fields(), flags=True, partial=True)
