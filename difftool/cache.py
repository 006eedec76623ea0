"""What is in huggingface_hub's own cache, and removing models from it (`difftool models`, `rm`).

Thin layer over `huggingface_hub.scan_cache_dir` and `HFCacheInfo.delete_revisions`: difftool keeps
no cache of its own, so `hf cache scan`/`hf cache delete` and difftool always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RepoStatus:
    """One hub repo in the local cache."""

    repo_id: str
    cached: bool = False
    size: int = 0
    revisions: list[str] = field(default_factory=list)
    """Commit hashes held locally."""
    refs: list[str] = field(default_factory=list)
    """Branch/tag names pointing at them (`main`, ...)."""
    partial: bool = False
    """Some downloads were interrupted (`.incomplete` blobs left)."""
    path: Path | None = None


def cache_dir() -> Path:
    """The hub cache folder huggingface_hub uses now (HF_HUB_CACHE / HF_HOME)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def scan() -> Any:
    """huggingface_hub's HFCacheInfo, or None when there is no cache folder yet."""
    from huggingface_hub import CacheNotFound, scan_cache_dir

    try:
        return scan_cache_dir(cache_dir())
    except CacheNotFound:
        return None


def model_repos(info: Any) -> dict[str, Any]:
    """repo_id -> CachedRepoInfo for the model repos in the cache."""
    if info is None:
        return {}
    return {repo.repo_id: repo for repo in info.repos if repo.repo_type == "model"}


def status(info: Any, repo_id: str) -> RepoStatus:
    """The cache status of one hub repo (case-insensitive match, like the Hub)."""
    repos = {k.lower(): v for k, v in model_repos(info).items()}
    repo = repos.get(repo_id.lower())
    if repo is None:
        return RepoStatus(repo_id)
    incomplete = [f for f in getattr(info, "incomplete_files", []) or []
                  if Path(f.file_path).is_relative_to(repo.repo_path)]
    return RepoStatus(
        repo.repo_id, cached=bool(repo.revisions), size=repo.size_on_disk,
        revisions=sorted(r.commit_hash for r in repo.revisions),
        refs=sorted(ref for r in repo.revisions for ref in r.refs), partial=bool(incomplete), path=repo.repo_path,
    )


def delete(info: Any, repo_ids: list[str], revision: str | None = None) -> int:
    """Remove the repos (every revision, or only `revision`: a commit hash or a ref such as `main`)
    through huggingface_hub's own delete strategy; returns the bytes freed."""
    repos = {k.lower(): v for k, v in model_repos(info).items()}
    hashes: list[str] = []
    for repo_id in repo_ids:
        repo = repos[repo_id.lower()]
        for rev in repo.revisions:
            if revision is None or rev.commit_hash.startswith(revision) or revision in rev.refs:
                hashes.append(rev.commit_hash)
    if not hashes:
        return 0
    strategy = info.delete_revisions(*hashes)
    freed = strategy.expected_freed_size
    strategy.execute()
    return freed


def folder_size(path: Path) -> int:
    """Bytes of the files under `path` (packaged models)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def human(size: int) -> str:
    """1234567 -> `1.2 MB` (decimal units, like `hf cache scan`)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
