"""Exit codes and the errors that carry them.

Every failure the user can do something about is raised as a `DifftoolError` subclass whose
message is one sentence naming the next step; `cli.py` prints it and exits with its code.
Library exceptions are translated here, in one table, so commands never format errors themselves.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit statuses (README, "Exit codes")."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    MODEL_UNAVAILABLE = 3
    INTERRUPTED = 130


class DifftoolError(Exception):
    """A failure with a one-sentence message for the user."""

    code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(DifftoolError):
    """Bad option value, bad input file, or an option the model does not accept (exit 2)."""

    code = ExitCode.USAGE


class ModelUnavailable(DifftoolError):
    """Model not found, not cached while offline, wrong pipeline for the task, or a refused format (exit 3)."""

    code = ExitCode.MODEL_UNAVAILABLE


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes/contexts, outermost first (cycle-safe)."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def chain_names(exc: BaseException) -> set[str]:
    """Class names (with bases) along the cause chain, so callers can match without importing libraries."""
    return {cls.__name__ for e in _chain(exc) for cls in type(e).__mro__}


def explain(exc: BaseException) -> DifftoolError | None:
    """Turn a known library exception into a user-facing error; None for genuine bugs."""
    if isinstance(exc, DifftoolError):
        return exc
    names = chain_names(exc)
    text = " ".join(str(e) for e in _chain(exc))
    if "OutOfMemoryError" in names or "out of memory" in text.lower():
        return DifftoolError(
            "Ran out of memory; try a smaller --width/--height, --dtype fp16/bf16, --offload model, "
            "or --vae-tiling."
        )
    if "divisible by 8" in text:
        return UsageError("Width and height must be multiples of 8 for this model.")
    return None
