"""Helpers every command uses: the error guard (exit codes, signals) and reading items from stdin."""

from __future__ import annotations

import functools
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer

from difftool import config, console
from difftool.errors import ExitCode, UsageError, explain

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C (temporary files removed), then exits 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _debug() -> bool:
    try:  # the root callback keeps --debug on the Click context
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover
        from click import get_current_context

    ctx = get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    return bool(getattr(root, "obj", None) and root.obj.get("debug")) or config.truthy("DIFFTOOL_DEBUG")


@contextmanager
def _signals() -> Iterator[None]:
    """SIGTERM/SIGHUP raise Terminated in the main thread while a command runs (then the old handlers return)."""
    def handler(signum: int, _frame: Any) -> None:
        raise Terminated(signum)

    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    try:
        old = {s: signal.signal(s, handler) for s in wanted}
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        old = {}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def guarded(fn: F) -> F:
    """Run a command body: DifftoolError -> message + its exit code; Ctrl-C -> 130; SIGTERM/SIGHUP -> 143/129;
    bugs -> exit 1 (traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = _debug()
        try:
            with _signals():
                return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            console.error("interrupted.")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except Terminated as exc:
            console.error(f"stopped by {signal.Signals(exc.signum).name}.")
            raise typer.Exit(128 + exc.signum) from None
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


def read_lines(items: list[str] | None, what: str, say: Any = None, skipped: list[int] | None = None) -> list[str]:
    """Expand `-` into the non-empty lines of stdin. A line that is not UTF-8 is reported by number, skipped, and
    its number added to `skipped` (the command then exits 2 at the end, like for other bad inputs)."""
    out: list[str] = []
    for item in items or []:
        if item != "-":
            out.append(item)
            continue
        if sys.stdin.isatty() and say is not None:
            say.info(f"reading {what} from stdin, one per line (Ctrl-D to end)")
        raw = getattr(sys.stdin, "buffer", None)
        lines = raw if raw is not None else (line.encode() for line in sys.stdin)
        for number, line in enumerate(lines, 1):
            try:
                text = line.decode("utf-8").strip()
            except UnicodeDecodeError:
                console.error(f"stdin line {number} is not UTF-8 text; skipped.")
                if skipped is not None:
                    skipped.append(number)
                continue
            if text:
                out.append(text)
    if not out:
        raise UsageError(f"No {what} given.")
    return out
