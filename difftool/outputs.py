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

    def validate(self, total: int | None = None) -> None:
        """Check the template and folders now, so a typo fails before a model loads."""
        template, explicit = self._template
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        for name in names:
            if name not in self.fields:
                raise UsageError(
                    f"Unknown field '{{{name}}}' in output template; use {', '.join('{' + f + '}' for f in self.fields)}."
                )
        sample = self._render(template, {f: "x" for f in self.fields})
        if sample.suffix.lower() not in ("", ".png"):
            raise UsageError(f"Output '{self.target}' must be a .png file: difftool writes PNG images.")
        if explicit:
            parent = sample.parent
            if not parent.is_dir():
                raise UsageError(f"Output folder '{parent}' does not exist.")
            if not os.access(parent, os.W_OK):
                raise UsageError(f"Output folder '{parent}' is not writable.")
            if (total or 1) == 1 and sample.exists() and not self.overwrite:
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
