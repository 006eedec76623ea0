"""Everything the user reads that is not a result: logs, warnings, progress bars, all on stderr.

stdout is reserved for results (paths or JSON lines), so `difftool gen ... | xargs` always works.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

_state = {"quiet": False}
err = Console(stderr=True, highlight=False, soft_wrap=True)


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = quiet


def info(message: str) -> None:
    """A progress/log line; silenced by -q."""
    if not _state["quiet"]:
        err.print(message, markup=False)


def warn(message: str) -> None:
    """A warning; shown even with -q."""
    err.print(f"warning: {message}", style="yellow", markup=False)


def error(message: str) -> None:
    err.print(f"error: {message}", style="bold red", markup=False)


def result(line: str) -> None:
    """One result line on stdout, flushed at once so a downstream pipe can start."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def result_json(record: dict[str, Any]) -> None:
    result(json.dumps(record, ensure_ascii=False, default=str))


def bars_enabled() -> bool:
    """Progress bars only for a person watching a terminal."""
    return not _state["quiet"] and err.is_terminal


@contextmanager
def step_bar(description: str, total: int) -> Iterator[Any]:
    """A Rich progress bar on stderr; yields a function advancing it one step (a no-op when disabled)."""
    if not bars_enabled():
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)
