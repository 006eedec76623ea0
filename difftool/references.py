"""Model references: turn what the user typed after `-m` into something loadable.

A reference is an alias from the registry, a hub id (`org/name[@revision]`), a local folder in the
Hub layout (`model_index.json`), or a single-file checkpoint. Resolution is pure (no torch, no
network), so a typo fails before any heavy import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from difftool import registry
from difftool.errors import ModelUnavailable, UsageError
from difftool.registry import ModelSpec

SAFE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelRef:
    """A resolved model reference."""

    text: str
    """As the user wrote it."""
    kind: str
    """`alias`, `hub`, `folder` or `file`."""
    repo_id: str | None = None
    revision: str | None = None
    path: Path | None = None
    spec: ModelSpec | None = None
    config: str | None = None
    """For single files: a folder or hub id holding the pipeline configs."""

    @property
    def name(self) -> str:
        """Short name for metadata and the `{model}` output template."""
        if self.kind == "alias":
            return self.text
        if self.repo_id:
            return self.repo_id.split("/")[-1]
        assert self.path is not None
        return self.path.stem if self.kind == "file" else self.path.name

    @property
    def label(self) -> str:
        """What the metadata records as the model: alias, hub id[@rev], or path."""
        if self.kind == "alias":
            return self.text
        if self.kind == "hub":
            return f"{self.repo_id}@{self.revision}" if self.revision else str(self.repo_id)
        return str(self.path)

    @property
    def is_pickle(self) -> bool:
        return self.kind == "file" and self.path is not None and self.path.suffix.lower() in PICKLE_SUFFIXES


def split_revision(text: str) -> tuple[str, str | None]:
    """`org/name@rev` -> (`org/name`, `rev`)."""
    if "@" in text:
        repo, _, rev = text.partition("@")
        if not rev:
            raise UsageError(f"Model reference '{text}' has an empty revision after '@'.")
        return repo, rev
    return text, None


def resolve(text: str, config: str | None = None) -> ModelRef:
    """Resolve a model reference; raises ModelUnavailable with the way out when nothing matches."""
    text = text.strip()
    if not text:
        raise UsageError("The model reference is empty.")
    spec = registry.get(text)
    if spec is not None:
        if spec.packaged:
            path = spec.local_path
            assert path is not None
            if not (path / "model_index.json").is_file():
                raise ModelUnavailable(f"The packaged model '{text}' is missing from this install ({path}).")
            return ModelRef(text, "alias", path=path, spec=spec)
        return ModelRef(text, "alias", repo_id=spec.repo, spec=spec)

    path = Path(text).expanduser()
    if path.suffix.lower() in SAFE_SUFFIXES + PICKLE_SUFFIXES:
        if not path.is_file():
            raise ModelUnavailable(f"Checkpoint file '{text}' does not exist.")
        return ModelRef(text, "file", path=path.resolve(), config=config)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelUnavailable(
                f"Folder '{text}' is not a diffusers pipeline (no model_index.json); pass a folder saved with "
                "save_pretrained, a hub id, or a .safetensors file."
            )
        return ModelRef(text, "folder", path=path.resolve(), spec=_spec_for_folder(path))
    if path.exists():
        raise ModelUnavailable(f"'{text}' is neither a pipeline folder nor a .safetensors checkpoint.")
    repo, revision = split_revision(text)
    if _HUB_ID.match(repo) and not text.startswith((".", "/", "~")):
        return ModelRef(text, "hub", repo_id=repo, revision=revision, spec=registry.by_repo(repo))
    known = ", ".join(registry.MODELS)
    raise ModelUnavailable(
        f"Unknown model '{text}': not an alias ({known}), a hub id 'org/name', an existing folder, "
        "or a .safetensors file."
    )


def _spec_for_folder(path: Path) -> ModelSpec | None:
    """A packaged model given by path keeps its registry defaults."""
    for spec in registry.MODELS.values():
        if spec.local_path is not None and spec.local_path.resolve() == path.resolve():
            return spec
    return None
