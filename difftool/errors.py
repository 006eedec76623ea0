"""Exit codes and the errors that carry them.

Every failure the user can do something about is raised as a `DifftoolError` subclass whose
message is one sentence naming the next step; `cli.py` prints it and exits with its code.
Library exceptions are translated here, in one table, so commands never format errors themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Any


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


class InputError(UsageError):
    """An input image that cannot be used (missing, not an image, damaged, too large): exit 2. A command with
    several inputs reports it and goes on with the others."""


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


class Cancelled(DifftoolError):
    """A job cancelled while it ran (the server's DELETE, a client that went away)."""

    code = ExitCode.INTERRUPTED


#: The one table of library failures we can explain: (test on (class names along the cause chain, lower-cased
#: text), error class, message). Messages may use {label} (the model), {task} (what it was loaded for) and
#: {cls} (its pipeline class); `explain` and `translate_load` read it top down, first match wins.
RULES: list[tuple[Callable[[set[str], str], bool], type[DifftoolError], str]] = [
    (lambda n, t: "OutOfMemoryError" in n or "out of memory" in t, DifftoolError,
     "Ran out of memory; try a smaller --width/--height, --dtype fp16/bf16, --offload model, or --vae-tiling."),
    (lambda n, t: "divisible by 8" in t, UsageError, "Width and height must be multiples of 8 for this model."),
    (lambda n, t: "autopipeline can't find a pipeline linked to" in t, ModelUnavailable,
     "Model '{label}' is a {cls}, not a {task} pipeline."),
    (lambda n, t: "safetensors" in t and ("could not find" in t or "no file named" in t), ModelUnavailable,
     "Model '{label}' has no safetensors weights; pickle weights can run code when loaded, so they are refused "
     "unless you pass --allow-pickle."),
    (lambda n, t: "variant=" in t or ("variant" in t and "no such modeling files" in t), ModelUnavailable,
     "Model '{label}' has no weights of the requested variant."),
]
TASK_WORDS = {"text2img": "text-to-image", "img2img": "image-to-image", "inpaint": "inpainting",
              "upscale": "upscaler"}


def _match(exc: BaseException, **context: str) -> DifftoolError | None:
    names = chain_names(exc)
    text = " ".join(str(e) for e in _chain(exc)).lower()
    for test, cls, message in RULES:
        if test(names, text):
            try:
                return cls(message.format(**context))
            except KeyError:  # a rule that needs the model, outside loading
                continue
    return None


def explain(exc: BaseException) -> DifftoolError | None:
    """Turn a known library exception into a user-facing error; None for genuine bugs."""
    if isinstance(exc, DifftoolError):
        return exc
    return _match(exc)


def translate_load(exc: BaseException, ref: Any, task: str, cls: str | None) -> Exception:
    """A failure while loading `ref` for `task`, as the one-sentence error the user gets."""
    if isinstance(exc, DifftoolError):
        return exc
    found = _match(exc, label=ref.label, task=TASK_WORDS.get(task, task), cls=cls or "this pipeline")
    if found is not None:
        return found
    if getattr(ref, "repo_id", None):
        from difftool import hub

        translated = hub.translate(exc, ref.repo_id)
        if translated is not exc:
            return translated
    if isinstance(exc, OSError):
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return ModelUnavailable(f"Could not load model '{ref.label}': {first}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))
