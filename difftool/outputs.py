"""Output naming and safe writes: never overwrite or half-write a user's file.

`OutputPlan` turns `-o` (a file, a folder, or a template) into one path per image and is validated
before any model loads. `write_png` writes to a temporary name in the target folder and links or
renames it into place, so an interrupted run leaves no partial file and an existing file survives.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool.errors import UsageError

TEMPLATE_FIELDS = ("seed", "index", "prompt", "model", "date")
#: The longest file name most file systems take, in bytes.
NAME_MAX = 255
DEFAULT_TEMPLATE = "{prompt}-{seed}.png"


def slug(text: str, limit: int = 60) -> str:
    """A file-name-safe piece of a prompt."""
    s = re.sub(r"[^\w]+", "-", text.lower(), flags=re.UNICODE).strip("-_")
    return s[:limit].rstrip("-_") or "image"


@dataclass
class OutputPlan:
    """Where the images of one command go."""

    target: str | None
    overwrite: bool = False
    default_template: str = DEFAULT_TEMPLATE
    fields: tuple[str, ...] = TEMPLATE_FIELDS

    def __post_init__(self) -> None:
        self._used: set[Path] = set()

    @property
    def _template(self) -> tuple[str, bool]:
        """(template, explicit): explicit means one named file whose existence is an error."""
        t = self.target
        if t is None:
            return self.default_template, False
        if "{" in t:
            return t, False
        p = Path(t).expanduser()
        if t.endswith(("/", os.sep)) or p.is_dir():
            return str(p / self.default_template), False
        return str(p), True

    @property
    def to_stdout(self) -> bool:
        """`-o -`: the one PNG goes to stdout (for a pipe), not to a file."""
        return self.target == "-"

    def validate(self, total: int | None = None) -> None:
        """Check the whole plan now, so that a typo fails before a model loads (exit 2): the template's fields and
        format, the suffix, a name the file system takes, a folder that exists (or can be made) and is writable."""
        if self.to_stdout:
            import sys

            if (total or 1) != 1:
                raise UsageError(f"-o - writes one PNG to stdout, but this makes {total} images; name a file or folder.")
            if sys.stdout.isatty():
                raise UsageError("-o - would write PNG bytes to the terminal; redirect stdout to a file or a pipe.")
            return
        raw = Path(self.target).expanduser() if self.target else None
        if raw is not None and raw.exists() and not (raw.is_file() or raw.is_dir()):
            raise UsageError(f"Output '{self.target}' is not a regular file or a folder; name a .png file or a folder.")
        template, explicit = self._template
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise UsageError(f"Output template '{self.target}' is not valid: {exc}.") from None
        for _, name, spec, _ in parts:
            if name is None:
                continue
            if name not in self.fields:
                raise UsageError(
                    f"Unknown field '{{{name}}}' in output template; use {', '.join('{' + f + '}' for f in self.fields)}."
                )
            if any(int(n) > NAME_MAX for n in re.findall(r"\d+", spec or "")):
                raise UsageError(f"Output template field '{{{name}:{spec}}}' would make a name longer than the file "
                                 f"system takes ({NAME_MAX} bytes).")
        try:
            sample = self._render(template, {**{f: "x" * 8 for f in self.fields}, "seed": 2**63 - 1, "index": 99999})
        except (ValueError, KeyError, IndexError) as exc:
            raise UsageError(f"Output template '{self.target}' cannot be used: {exc}.") from None
        if sample.suffix.lower() not in ("", ".png"):
            raise UsageError(f"Output '{self.target}' must be a .png file: difftool writes PNG images.")
        if len(sample.name.encode()) + 12 > NAME_MAX:  # room for `-N` and the temporary name's parts
            raise UsageError(f"Output name '{sample.name[:40]}...' is too long for the file system ({NAME_MAX} bytes).")
        folder = _existing_ancestor(sample.parent)
        if explicit and folder != sample.parent.resolve():
            raise UsageError(f"Output folder '{sample.parent}' does not exist.")
        if not folder.is_dir():
            raise UsageError(f"Output folder '{folder}' is not a folder.")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"Output folder '{folder}' is not writable.")
        if explicit and (total or 1) == 1 and sample.exists() and not self.overwrite:
            raise UsageError(f"Output file '{sample}' exists; pass --overwrite or choose another name.")

    @staticmethod
    def _render(template: str, values: dict[str, Any]) -> Path:
        path = Path(template.format(**values)).expanduser()
        return path if path.suffix else path.with_suffix(".png")

    def path_for(self, index: int, total: int, **values: Any) -> tuple[Path, bool]:
        """The path for image `index` of `total`, and whether a fresh name may be picked if it exists."""
        template, explicit = self._template
        vals = {"date": _dt.date.today().isoformat(), "index": index, **values}
        if "prompt" in vals:
            vals["prompt"] = slug(str(vals["prompt"]))
        path = self._render(template, vals)
        if explicit and total > 1:
            path = path.with_name(f"{path.stem}-{index}{path.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not explicit or total > 1
        if not self.overwrite and fresh:
            path = next_free(path, self._used)
        elif path in self._used:
            path = next_free(path, self._used)
        self._used.add(path)
        return path, fresh


def _existing_ancestor(folder: Path) -> Path:
    """The folder itself if it exists, else its nearest existing parent (where the missing ones will be made)."""
    current = folder.resolve()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def file_mode() -> int:
    """The mode the user's umask gives a new file (tempfile's 0600 is for secrets, not pictures)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def next_free(path: Path, taken: set[Path] = frozenset()) -> Path:  # type: ignore[assignment]
    """`a.png`, else `a-1.png`, `a-2.png`, ...: the first name not on disk nor taken by this run."""
    candidate, n = path, 0
    while candidate.exists() or candidate in taken:
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def write_png(image: Any, path: Path, pnginfo: Any = None, overwrite: bool = False, fresh: bool = False) -> Path:
    """Write `image` (PIL) as PNG at `path` atomically; returns the final path.

    Without `overwrite` an existing file is never replaced: a fresh name is picked when `fresh`,
    otherwise UsageError. The temporary file is removed whatever happens (Ctrl-C included).
    """
    return write_with(lambda fh: image.save(fh, format="PNG", pnginfo=pnginfo), path, overwrite, fresh)


def write_with(write: Any, path: Path, overwrite: bool = False, fresh: bool = False) -> Path:
    """`write_png` for any writer: `write(fh)` fills a temporary file, which then takes `path` by the same
    no-clobber rules (used to stream large images band by band)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        if overwrite:
            os.replace(tmp, path)
            return path
        while True:
            try:
                _link_no_clobber(tmp, path)
                return path
            except FileExistsError:
                if not fresh:
                    raise UsageError(f"Output file '{path}' exists; pass --overwrite or choose another name.") from None
                path = next_free(path)
    finally:
        tmp.unlink(missing_ok=True)


def _link_no_clobber(src: Path, dst: Path) -> None:
    """Atomically create `dst` from `src`, failing with FileExistsError if it exists."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:  # file systems without hard links: check, then rename (tiny race window)
        if dst.exists():
            raise FileExistsError(dst) from None
        os.replace(src, dst)
