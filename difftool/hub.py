"""The only place that talks to the HuggingFace Hub.

Policy: a model in the local cache is used as is, with no network round trip (works on a plane);
only a model missing from the cache (or `--refresh`) goes online. Every network wait is bounded:
huggingface_hub leaves some requests without a timeout, so a request hook fills in ours, and a
Hub that cannot be reached fails within seconds with a message naming the way out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from difftool.errors import ModelUnavailable, chain_names

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = float(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT") or 10.0)


def offline() -> bool:
    """True when HF_HUB_OFFLINE is set (read by huggingface_hub at import)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _bound_timeouts(request: Any) -> None:
    """httpx request hook: replace every missing timeout with ours."""
    given = request.extensions.get("timeout") or {}
    bounds = {"connect": CONNECT_TIMEOUT, "read": READ_TIMEOUT, "write": READ_TIMEOUT, "pool": CONNECT_TIMEOUT}
    request.extensions["timeout"] = {k: given.get(k) if given.get(k) is not None else v for k, v in bounds.items()}


def install_timeouts() -> None:
    """Make sure huggingface_hub's shared HTTP client never waits forever."""
    from huggingface_hub.utils import get_session

    hooks = get_session().event_hooks
    if _bound_timeouts not in hooks["request"]:
        hooks["request"].append(_bound_timeouts)
        get_session().event_hooks = hooks


def how_to_get(repo_id: str) -> str:
    return f"fetch it while online (`difftool pull {repo_id}`), or pass a local folder or file with --model PATH"


def require_cached_offline(repo_id: str, revision: str | None = None) -> None:
    """With HF_HUB_OFFLINE, a pipeline missing from the cache fails now, from huggingface_hub's cache index
    alone: no torch or diffusers import (seconds) before saying so."""
    if not offline():
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(repo_id, "model_index.json", revision=revision), str):
        raise ModelUnavailable(f"Model '{repo_id}' is not in the local cache and HF_HUB_OFFLINE is set; "
                               f"{how_to_get(repo_id)}.")


def fetch_pipeline(
    repo_id: str,
    revision: str | None = None,
    *,
    allow_pickle: bool = False,
    variant: str | None = None,
    refresh: bool = False,
    pipeline_class: Any = None,
    skip: tuple[str, ...] = (),
) -> Path:
    """Return a local folder holding the pipeline `repo_id`, downloading what is missing.

    Uses diffusers' own `download`, which fetches only what the pipeline needs (configs, tokenizers,
    one set of weights). Cached models are returned without touching the network unless `refresh`.
    """
    from diffusers import DiffusionPipeline

    cls = pipeline_class or DiffusionPipeline
    kwargs: dict[str, Any] = {"revision": revision, "variant": variant, "use_safetensors": None if allow_pickle else True}
    kwargs.update({name: None for name in skip})  # components passed separately (--transformer): weights not fetched
    if not refresh:
        try:
            return Path(cls.download(repo_id, local_files_only=True, **kwargs))
        except Exception as exc:  # not cached (or incompletely): go online below
            if not _is_not_cached(exc):
                raise translate(exc, repo_id) from exc
    if offline():
        raise ModelUnavailable(f"Model '{repo_id}' is not in the local cache and HF_HUB_OFFLINE is set; {how_to_get(repo_id)}.")
    install_timeouts()
    _probe(repo_id, revision)
    try:
        return Path(cls.download(repo_id, **kwargs))
    except Exception as exc:
        raise translate(exc, repo_id) from exc


def fetch_files(repo_id: str, revision: str | None, patterns: list[str], refresh: bool = False) -> Path:
    """Return a local snapshot of `repo_id` limited to `patterns` (a non-pipeline model: tiny VAE, LoRA)."""
    from huggingface_hub import snapshot_download

    if not refresh:
        try:
            return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True))
        except Exception as exc:
            if not _is_not_cached(exc):
                raise translate(exc, repo_id) from exc
    if offline():
        raise ModelUnavailable(f"Model '{repo_id}' is not in the local cache and HF_HUB_OFFLINE is set; {how_to_get(repo_id)}.")
    install_timeouts()
    _probe(repo_id, revision)
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except Exception as exc:
        raise translate(exc, repo_id) from exc


def _probe(repo_id: str, revision: str | None) -> None:
    """One bounded request before downloading, so an unreachable or silent Hub fails fast and clearly."""
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(repo_id, revision=revision, timeout=READ_TIMEOUT)
    except Exception as exc:
        raise translate(exc, repo_id) from exc


def _is_not_cached(exc: BaseException) -> bool:
    names = chain_names(exc)
    return bool(names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "CachedRepoTreeNotFoundError"}) or (
        "not fully cached" in str(exc) or "outgoing traffic has been disabled" in str(exc)
    )


def translate(exc: BaseException, repo_id: str) -> Exception:
    """A Hub failure as a one-sentence ModelUnavailable naming the model and the way out."""
    names = chain_names(exc)
    if "GatedRepoError" in names:
        return ModelUnavailable(
            f"Model '{repo_id}' is gated: accept its terms on the Hub, then log in with `hf auth login` or set HF_TOKEN."
        )
    if "RepositoryNotFoundError" in names:
        return ModelUnavailable(
            f"Model '{repo_id}' was not found on the Hub (or is private: log in with `hf auth login` or set HF_TOKEN)."
        )
    if "RevisionNotFoundError" in names:
        return ModelUnavailable(f"Model '{repo_id}' has no such revision.")
    if "HFValidationError" in names:
        return ModelUnavailable(f"'{repo_id}' is not a valid hub id.")
    if "OfflineModeIsEnabled" in names or _is_not_cached(exc) and offline():
        return ModelUnavailable(f"Model '{repo_id}' is not in the local cache and HF_HUB_OFFLINE is set; {how_to_get(repo_id)}.")
    if names & {"TimeoutException", "ReadTimeout", "ConnectTimeout", "TimeoutError", "PoolTimeout"}:
        return ModelUnavailable(
            f"The Hub did not answer within {READ_TIMEOUT:g} s while fetching '{repo_id}'; {how_to_get(repo_id)}."
        )
    if names & {"ConnectError", "NetworkError", "ConnectionError", "ProxyError"}:
        return ModelUnavailable(f"Could not reach the Hub to fetch '{repo_id}' (no network?); {how_to_get(repo_id)}.")
    if "safetensors" in str(exc).lower() and ("could not find" in str(exc).lower() or "not found" in str(exc).lower()):
        return ModelUnavailable(
            f"Model '{repo_id}' has no safetensors weights; pickle checkpoints run code when loaded, "
            "so they are refused unless you pass --allow-pickle."
        )
    if _is_not_cached(exc):
        return ModelUnavailable(f"Model '{repo_id}' is not in the local cache and could not be fetched; {how_to_get(repo_id)}.")
    status = _http_status(exc)
    if status in (401, 403):
        return ModelUnavailable(
            f"The Hub refused access to '{repo_id}' (HTTP {status}): the token is missing, invalid or has no access; "
            "log in with `hf auth login` or set HF_TOKEN (and accept the model's terms on its Hub page if it is gated)."
        )
    if "HfHubHTTPError" in names:
        return ModelUnavailable(f"The Hub refused the request for '{repo_id}': {str(exc).splitlines()[0]}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status of the first Hub response along the cause chain, if any."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        status = getattr(getattr(cur, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
        cur = cur.__cause__ or cur.__context__
    return None


def fetch_file(repo_id: str, filename: str, revision: str | None = None) -> Path | None:
    """One small file of a repo (a README.md), cache first, then one bounded download; None when it cannot be had
    (not in the repo, offline and not cached, Hub unreachable): callers treat it as optional."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, local_files_only=True))
    except Exception:  # not cached: go online below, unless offline
        pass
    if offline():
        return None
    install_timeouts()
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except Exception:
        return None
