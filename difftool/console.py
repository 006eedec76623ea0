"""Everything the user reads that is not a result: logs, warnings, progress bars, all on stderr.

stdout is reserved for results (paths or JSON lines), so `difftool gen ... | xargs` always works. Every line
shows untrusted text (prompts and paths from other people's images) with control and bidi characters escaped. `Console` is
one command's stderr (its `-q` decides what shows); `error`, `warn` and the result writers hold no state.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console as RichConsole

from difftool.terminal import escape_json, printable


def _stderr() -> RichConsole:
    # made per call: the streams may be swapped (tests, redirections), and Rich reads sys.stderr at creation
    return RichConsole(stderr=True, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """A warning; shown even with -q."""
    _stderr().print(f"warning: {printable(message)}", style="yellow", markup=False)


def error(message: str) -> None:
    _stderr().print(f"error: {printable(message)}", style="bold red", markup=False)


def result(line: str) -> None:
    """One result line on stdout, flushed at once so a downstream pipe can start."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def result_json(record: dict[str, Any]) -> None:
    """One JSON result line: strict JSON (no NaN/Infinity, which strict parsers reject)."""
    result(escape_json(json.dumps(record, ensure_ascii=False, default=str, allow_nan=False)))


class Console:
    """One command's stderr: info lines and progress bars unless quiet; implements the engine's Reporter."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.err = _stderr()

    def info(self, message: str) -> None:
        """A progress/log line; silenced by -q."""
        if not self.quiet:
            self.err.print(printable(message), markup=False)

    def warn(self, message: str) -> None:
        warn(message)

    def bars_enabled(self) -> bool:
        """Progress bars only for a person watching a terminal."""
        return not self.quiet and self.err.is_terminal

    @contextmanager
    def progress(self, label: str, total: int) -> Iterator[Callable[[], None] | None]:
        """A Rich progress bar on stderr; yields a function advancing it one step (None when disabled)."""
        if not self.bars_enabled():
            yield None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.err, transient=False,
        ) as bar:
            task = bar.add_task(label, total=total)
            yield lambda: bar.advance(task)
