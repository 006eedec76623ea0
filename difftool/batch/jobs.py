"""Reading JOBS into jobs: one validated spec per line (and per grid point), each with a stable id.

JOBS is a text file (one prompt per line), a JSONL file (one job spec per line, any task; a line may give only
a few fields: the command line's options fill in the rest, the line's own fields win), or `-` for stdin.
`--vary FIELD=VALUES` makes the cross product of every line with the values (`seed=1..8`, `guidance=3,5,7`).

A job's id is the hash of its settings as canonical JSON (the validated spec without the fields that describe the
machine: device, offload, compile), so every run and every process computes the same ids and the same output
names; a line repeated in JOBS gets a numbered id for each repeat. A job without a seed gets one derived from
its id: a batch is reproducible, and a rerun or another process makes the same pixels.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool import spec
from difftool.errors import DifftoolError, ExitCode, UsageError

#: Spec fields left out of a job's id: they say where a job runs (each rank picks its own device), not what it makes.
NOT_IN_ID = ("version", "device", "offload", "compile")
#: Tasks whose model `-m` names (the others take their own: upscale an upscaler, variation a Kandinsky).
GEN_FAMILY = ("gen", "img2img", "inpaint")
#: The most values one --vary may give, and the most jobs a batch may hold (a typo in a range stays cheap).
MAX_VALUES = 100_000
MAX_JOBS = 10_000_000
_RANGE = re.compile(r"^(-?\d+(?:\.\d+)?)\.\.(-?\d+(?:\.\d+)?)(?::(\d+(?:\.\d+)?))?$")


@dataclass
class Job:
    """One job: its id, its line in JOBS, its spec fields (None when the line is invalid, with `error`)."""

    id: str
    line: int
    fields: dict[str, Any] | None
    images: int = 0
    error: str | None = None
    code: int = 0
    text: str = ""
    """The start of an invalid line, for the manifest."""


def read(source: str) -> list[tuple[int, bytes]]:
    """The non-empty lines of JOBS (a path, or `-` for stdin) as (line number, raw bytes)."""
    if source == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    else:
        path = Path(source).expanduser()
        try:
            data = path.read_bytes()
        except IsADirectoryError:
            raise UsageError(f"JOBS '{source}' is a folder; name a text or JSONL file (or - for stdin).") from None
        except FileNotFoundError:
            raise UsageError(f"JOBS file '{source}' does not exist.") from None
        except OSError as exc:
            raise UsageError(f"Cannot read JOBS file '{source}': {exc.strerror or exc}.") from None
    lines = [(n, raw.strip()) for n, raw in enumerate(data.splitlines(), 1)]
    return [(n, raw) for n, raw in lines if raw]


def detect_format(source: str, lines: list[tuple[int, bytes]], given: str) -> str:
    """`text` or `jsonl`: as given; else by the file's extension; else JSONL when the first line is a JSON object."""
    if given != "auto":
        if given not in ("text", "jsonl"):
            raise UsageError(f"Unknown --format '{given}'; use auto, text or jsonl.")
        return given
    suffix = Path(source).suffix.lower() if source != "-" else ""
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".txt":
        return "text"
    return "jsonl" if lines and lines[0][1].startswith(b"{") else "text"


def field_name(name: str) -> str:
    """A spec field from a field name or a long flag (`hires-steps`, `--hires-steps`, `hires`)."""
    flags = {flag.split("/")[-1].lstrip("-").replace("-", "_"): f for f, flag in spec.FLAGS.items()}
    key = name.strip().lstrip("-").replace("-", "_")
    fields = set().union(*spec.TASK_FIELDS.values())
    key = key if key in fields else flags.get(key, key)
    if key not in fields:
        raise UsageError(f"--vary: unknown field '{name}'; use a spec field such as seed, guidance, steps "
                         "(see `difftool schema`).")
    return key


def parse_vary(items: list[str] | None) -> list[tuple[str, list[Any]]]:
    """`--vary FIELD=VALUES` options: VALUES is `A..B` or `A..B:STEP` (inclusive), a JSON list, or `a,b,c`
    (each value read as JSON when it is, else as text). Every value is checked now (exit 2 before any model)."""
    out: list[tuple[str, list[Any]]] = []
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not text.strip():
            raise UsageError(f"--vary '{item}': write FIELD=VALUES, e.g. seed=1..8 or guidance=3,5,7.")
        key = field_name(name)
        values = _values(text.strip(), item)
        if not values:
            raise UsageError(f"--vary '{item}' gives no values.")
        if len(values) > MAX_VALUES:
            raise UsageError(f"--vary '{item}' gives {len(values)} values, more than {MAX_VALUES}.")
        for value in values:
            spec.build({key: value}, origin=f"--vary {key}", flags=False, partial=True)
        out.append((key, values))
    return out


def _values(text: str, item: str) -> list[Any]:
    match = _RANGE.match(text)
    if match:
        first, last, step = match.group(1), match.group(2), match.group(3)
        if all(x is None or "." not in x for x in (first, last, step)):
            a, b, s = int(first), int(last), int(step or 1)
            if s <= 0:
                raise UsageError(f"--vary '{item}': the step must be positive.")
            return list(range(a, b + 1, s) if a <= b else range(a, b - 1, -s))[: MAX_VALUES + 1]
        fa, fb, fs = float(first), float(last), float(step or 1)
        if fs <= 0:
            raise UsageError(f"--vary '{item}': the step must be positive.")
        count = int(abs(fb - fa) / fs + 1e-9) + 1
        sign = 1 if fb >= fa else -1
        return [round(fa + sign * i * fs, 10) for i in range(min(count, MAX_VALUES + 1))]
    if text.startswith("["):
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"--vary '{item}': not a JSON list ({exc}).") from None
        if not isinstance(values, list):
            raise UsageError(f"--vary '{item}': not a JSON list.")
        return values
    return [_scalar(part.strip()) for part in text.split(",") if part.strip()]


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def canonical(fields: dict[str, Any]) -> str:
    """The settings that make a job's images, as canonical JSON (sorted keys, no spaces): what its id hashes."""
    kept = {k: v for k, v in fields.items() if k not in NOT_IN_ID}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class Specs:
    """Builds each line's spec through the command layer (`Invocation`: typed options > environment/config >
    registry), one Invocation per (task, model, config) a line names."""

    def __init__(self, flags: Any) -> None:
        self.flags = flags
        self._runs: dict[tuple[str, Any, Any], Any] = {}

    def invocation(self, task: str, model: Any, config: Any) -> Any:
        from difftool.commands.invocation import Invocation

        key = (task, model, config)
        if key not in self._runs:
            run = Invocation(task, self.flags, own={"model": model, "config": config})
            allowed = spec.TASK_FIELDS[task]
            run.fields = {k: v for k, v in run.fields.items() if k in allowed}  # options apply where they can
            if task not in GEN_FAMILY and model is None:  # -m names a gen model; these tasks have their own
                run.fields.pop("model", None)
                run.fields.pop("config", None)
            self._runs[key] = run
        return self._runs[key]

    def build(self, line: int, fields: dict[str, Any]) -> Any:
        """The line's validated spec (SpecError naming the field, ModelUnavailable for a model that is not one)."""
        origin = f"line {line}"
        spec.build(fields, origin=origin, flags=False, partial=True)  # the line's own fields, named as fields
        if fields.get("gif"):
            raise UsageError(f"{origin}: gif is made by `difftool interpolate`, not by batch (the frames are).")
        task = fields.get("task") or "gen"
        run = self.invocation(task, fields.get("model"), fields.get("config"))
        return run.spec(**{k: v for k, v in fields.items() if k != "task"})


def build(lines: list[tuple[int, bytes]], fmt: str, varies: list[tuple[str, list[Any]]], specs: Specs) -> list[Job]:
    """Every job of JOBS: one per line and grid point, valid or not (an invalid one carries its error)."""
    grid = list(itertools.product(*[[(key, v) for v in values] for key, values in varies])) or [()]
    if len(lines) * len(grid) > MAX_JOBS:
        raise UsageError(f"This batch would hold {len(lines) * len(grid)} jobs, more than {MAX_JOBS}.")
    seen: dict[str, int] = {}
    jobs: list[Job] = []
    for number, raw in lines:
        try:
            base = _fields(number, raw, fmt)
        except DifftoolError as exc:
            jobs.append(_bad(number, raw, exc, seen))
            continue
        for point in grid:
            fields = {**base, **dict(point)}
            try:
                made = specs.build(number, fields)
            except DifftoolError as exc:
                jobs.append(_bad(number, raw, exc, seen, point))
                continue
            jobs.append(_job(number, made, seen))
    return jobs


def _fields(number: int, raw: bytes, fmt: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"line {number} is not UTF-8 text.") from None
    if fmt == "text":
        return {"prompt": text}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"line {number}: not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise UsageError(f"line {number}: not a JSON object (a job spec is {{\"prompt\": ..., ...}}).")
    return spec.from_record(data)


def _digest(text: str, seen: dict[str, int]) -> str:
    """sha256 of `text`, numbered by how often it came before (a repeated line is a job of its own)."""
    count = seen.get(text, 0)
    seen[text] = count + 1
    return hashlib.sha256((text if count == 0 else f"{text}#{count}").encode()).hexdigest()


def _job(number: int, made: Any, seen: dict[str, int]) -> Job:
    fields = spec.dump(made)
    digest = _digest(canonical(fields), seen)
    if made.seed is None:  # derived from the id: the same in every run and process
        fields["seed"] = int(digest[:8], 16)
    return Job(digest[:16], number, fields, images=made.frames or made.num_images)


def _bad(number: int, raw: bytes, exc: DifftoolError, seen: dict[str, int], point: tuple[Any, ...] = ()) -> Job:
    message = exc.message if exc.message.startswith(f"line {number}") else f"line {number}: {exc.message}"
    key = "bad\n" + raw.decode("utf-8", "replace") + json.dumps(point, default=str)
    return Job(_digest(key, seen)[:16], number, None, error=message, code=int(getattr(exc, "code", ExitCode.USAGE)),
               text=raw[:200].decode("utf-8", "replace"))
