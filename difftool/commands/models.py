"""`difftool models`, `pull` and `rm`: the registry, and models in huggingface_hub's own cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from difftool import console, options, registry
from difftool.commands.common import guarded
from difftool.errors import ModelUnavailable, UsageError


def _defaults(spec: registry.ModelSpec) -> dict[str, Any]:
    values = {"steps": spec.steps, "guidance": spec.guidance, "width": spec.width, "height": spec.height,
              "scheduler": spec.scheduler, **spec.extra}
    if spec.task == "text2img":
        values["strength"] = spec.strength
    return {k: v for k, v in values.items() if v is not None}


def _defaults_text(spec: registry.ModelSpec) -> str:
    parts = []
    if spec.steps is not None:
        parts.append(f"{spec.steps} step{'s' if spec.steps != 1 else ''}")
    if spec.guidance is not None:
        parts.append(f"cfg {spec.guidance:g}")
    if spec.width and spec.height:
        parts.append(f"{spec.width}x{spec.height}")
    if spec.extra.get("scale"):
        parts.append(f"x{spec.extra['scale']:g}")
    if spec.scheduler:
        parts.append(spec.scheduler)
    return ", ".join(parts) or "-"


def hub_repos(spec: registry.ModelSpec) -> list[str]:
    """The hub repos an alias needs (Kandinsky: decoder and prior)."""
    if spec.packaged:
        return []
    return [spec.repo] + ([spec.prior] if spec.prior else [])


def registry_rows(info: Any) -> list[dict[str, Any]]:
    """One record per alias, with its cache status, then the other model repos found in the cache."""
    from difftool import cache

    rows: list[dict[str, Any]] = []
    known: set[str] = set()
    for spec in registry.MODELS.values():
        repos = []
        for repo in hub_repos(spec):
            st = cache.status(info, repo)
            known.add(repo.lower())
            repos.append({"repo": repo, "cached": st.cached, "partial": st.partial, "size": st.size})
        if spec.packaged:
            path = spec.local_path
            assert path is not None
            present = (path / "model_index.json").is_file()
            cached, size, partial = present, cache.folder_size(path) if present else 0, False
        else:
            cached = all(r["cached"] for r in repos)
            size = sum(r["size"] for r in repos)
            partial = any(r["partial"] for r in repos) or (any(r["cached"] for r in repos) and not cached)
        rows.append({
            "alias": spec.alias, "repo": spec.repo if not spec.packaged else None, "prior": spec.prior,
            "task": "edit" if getattr(spec, "edit", False) else spec.task, "family": spec.family, "description": spec.description, "packaged": spec.packaged,
            "defaults": _defaults(spec), "cached": cached, "partial": partial, "size": size, "repos": repos,
        })
    for kind, table in (("controlnet", registry.CONTROLNETS), ("ip-adapter", registry.IP_ADAPTERS)):
        for guide in table.values():
            st = cache.status(info, guide.repo)
            known.add(guide.repo.lower())
            rows.append({"alias": guide.alias, "repo": guide.repo, "prior": None, "task": kind, "family": guide.family,
                         "description": guide.description, "packaged": False, "defaults": {}, "cached": st.cached,
                         "partial": st.partial, "size": st.size,
                         "repos": [{"repo": guide.repo, "cached": st.cached, "partial": st.partial, "size": st.size}]})
    for repo_id in sorted(cache.model_repos(info)):
        if repo_id.lower() in known:
            continue
        st = cache.status(info, repo_id)
        rows.append({"alias": None, "repo": repo_id, "prior": None, "task": None, "family": None,
                     "description": "in the cache", "packaged": False, "defaults": {}, "cached": st.cached,
                     "partial": st.partial, "size": st.size, "repos": []})
    return rows


def _cached_text(row: dict[str, Any]) -> str:
    from difftool import cache

    if row["packaged"]:
        return f"packaged {cache.human(row['size'])}" if row["cached"] else "missing from this install"
    if row["cached"]:
        return f"yes {cache.human(row['size'])}" + (" (partial)" if row["partial"] else "")
    if row["partial"]:
        return f"partial {cache.human(row['size'])}"
    return "no"


@guarded
def models(json_: options.Json = False) -> None:
    """List the model aliases: hub id(s), task, defaults, and whether each is in the local HF cache (with size)."""
    from difftool import cache

    rows = registry_rows(cache.scan())
    if json_:
        for row in rows:
            console.result_json(row)
        return
    table = [("ALIAS", "TASK", "HUB ID", "DEFAULTS", "CACHED")]
    for row in rows:
        if row["alias"] is None:
            continue
        hub_ids = "(ships with difftool)" if row["packaged"] else " + ".join(r["repo"] for r in row["repos"])
        spec = registry.MODELS.get(row["alias"])
        table.append((row["alias"], row["task"], hub_ids, _defaults_text(spec) if spec else row["family"],
                      _cached_text(row)))
    others = [row for row in rows if row["alias"] is None]
    if others:
        table.append(("", "", "", "", ""))
        table.extend(("-", "", row["repo"], "other cached model", _cached_text(row)) for row in others)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for line in table:
        console.result("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
    console.Console().info(f"cache: {cache.cache_dir()}")


def _hub_targets(text: str, prior_of_hub_id: bool = False) -> tuple[list[str], str | None]:
    """(hub repos, revision) that a reference stands for (an alias: its prior too; a known hub id: its prior
    too when `prior_of_hub_id`); UsageError for local models."""
    from difftool import references

    ref = references.resolve(text)
    if ref.kind in ("folder", "file") or (ref.spec is not None and ref.spec.packaged):
        raise UsageError(f"'{text}' is a local model ({ref.path}): there is nothing to pull or remove from the cache.")
    assert ref.repo_id is not None
    repos = [ref.repo_id]
    if ref.spec is not None and ref.spec.prior and (ref.kind == "alias" or prior_of_hub_id):
        repos.append(ref.spec.prior)
    return repos, ref.revision


@guarded
def pull(
    refs: Annotated[list[str], typer.Argument(help="Aliases or hub ids (org/name[@revision]).", show_default=False)],
    variant: Annotated[Optional[str], typer.Option("--variant", help="Weights variant to take, e.g. fp16 (half the "
                                                   "download; for GPUs).", show_default=False)] = None,
    allow_pickle: options.AllowPickle = False,
    json_: options.Json = False,
    quiet: options.Quiet = False,
) -> None:
    """Download models into the HF cache now, to use them offline later (prints each local folder).

    Only what the pipeline needs: safetensors weights, configs, tokenizers; the prior too for Kandinsky."""
    import warnings

    from difftool import cache

    say = console.Console(quiet)
    guides = {**registry.CONTROLNETS, **registry.IP_ADAPTERS}
    targets = [(text, [guides[text].repo], None) if text in guides else (text, *_hub_targets(text, prior_of_hub_id=True))
               for text in refs]  # validate every reference first
    if quiet:  # otherwise huggingface_hub's own download bars (HF_HUB_DISABLE_PROGRESS_BARS=1 turns them off)
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    for text, repos, revision in targets:
        for repo in repos:
            say.info(f"pulling {repo}{'@' + revision if revision else ''}"
                         f"{' (' + variant + ' weights)' if variant else ''}")
            path = _fetch_guide(text, allow_pickle) if text in guides else _fetch(repo, revision, variant, allow_pickle)
            size = cache.status(cache.scan(), repo).size
            if json_:
                console.result_json({"model": text, "repo": repo, "revision": revision, "path": str(path),
                                     "size": size})
            else:
                console.result(str(path))
            say.info(f"{repo}: {cache.human(size)} in the cache")


#: What `pull` takes from a repo that is not a pipeline (a LoRA, a tiny VAE, a single component).
COMPONENT_PATTERNS = ["*.json", "*.safetensors", "*.txt"]


def _is_pipeline(repo: str, revision: str | None) -> bool:
    """Whether `repo` is a diffusers pipeline (has model_index.json): from the cache, else from the Hub's file
    list. True when unknown, so that fetching the pipeline reports what is wrong."""
    from huggingface_hub import HfApi, try_to_load_from_cache

    from difftool import cache, hub

    if isinstance(try_to_load_from_cache(repo, "model_index.json", revision=revision), str):
        return True
    if hub.offline():
        return not cache.status(cache.scan(), repo).cached
    hub.install_timeouts()
    try:
        info = HfApi().model_info(repo, revision=revision, timeout=hub.READ_TIMEOUT)
    except Exception:
        return True
    return any(s.rfilename == "model_index.json" for s in info.siblings or [])


def _fetch_guide(alias: str, allow_pickle: bool) -> Path:
    """A ControlNet or IP-Adapter alias: just the files that `--control`/`--image-prompt` load (an IP-Adapter repo
    holds many adapters: only this one and its image encoder)."""
    from difftool import control, hub, ipadapter, registry

    refresh = not hub.offline()
    if alias in registry.CONTROLNETS:
        return control.fetch(control.resolve(alias), weights=True, allow_pickle=allow_pickle, refresh=refresh)
    return ipadapter.fetch(ipadapter.resolve(alias, allow_pickle), allow_pickle, refresh)


def _fetch(repo: str, revision: str | None, variant: str | None, allow_pickle: bool) -> Path:
    """Fetch the latest files of `repo` (cache first when offline or when the Hub cannot be reached)."""
    from difftool import hub

    if not _is_pipeline(repo, revision):  # a LoRA, a tiny VAE, ...: its safetensors weights and configs
        patterns = COMPONENT_PATTERNS + (["*.bin"] if allow_pickle else [])
        return hub.fetch_files(repo, revision, patterns, refresh=not hub.offline())

    if hub.offline():
        try:
            return hub.fetch_pipeline(repo, revision, allow_pickle=allow_pickle, variant=variant)
        except ModelUnavailable as exc:
            if "HF_HUB_OFFLINE" not in exc.message:
                raise
            raise ModelUnavailable(f"Model '{repo}' is not in the cache and HF_HUB_OFFLINE is set: unset it, "
                                   "online, to pull.") from exc
    try:
        return hub.fetch_pipeline(repo, revision, allow_pickle=allow_pickle, variant=variant, refresh=True)
    except ModelUnavailable as exc:
        if "reach the Hub" not in exc.message and "did not answer" not in exc.message:
            raise
        path = hub.fetch_pipeline(repo, revision, allow_pickle=allow_pickle, variant=variant)  # cached copy?
        console.warn(f"could not check the Hub for a newer {repo}; the cached copy is complete.")
        return path


@guarded
def rm(
    refs: Annotated[list[str], typer.Argument(help="Aliases or hub ids (org/name, org/name@revision) to remove.",
                                              show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    quiet: options.Quiet = False,
) -> None:
    """Remove models from the HF cache (every revision, or only org/name@revision); asks first unless --yes."""
    from difftool import cache, references

    say = console.Console(quiet)
    info = cache.scan()
    cached = cache.model_repos(info)
    plan: list[tuple[str, str | None, int]] = []
    for text in refs:
        try:
            repos, revision = _hub_targets(text)
        except ModelUnavailable:  # not a valid reference, but maybe a cached repo id all the same
            repo, revision = references.split_revision(text)
            repos = [repo]
        for repo in repos:
            st = cache.status(info, repo)
            if not st.cached and not st.partial:
                console.warn(f"{repo} is not in the cache ({cache.cache_dir()}).")
                continue
            if revision and not any(h.startswith(revision) for h in st.revisions) and revision not in st.refs:
                console.warn(f"{repo} has no cached revision '{revision}' (cached: {', '.join(st.refs or st.revisions)}).")
                continue
            plan.append((next(k for k in cached if k.lower() == repo.lower()), revision, st.size))
    if not plan:
        say.info("nothing to remove.")
        return
    for repo, revision, size in plan:
        say.info(f"  {repo}{'@' + revision if revision else ''}  {cache.human(size) if not revision else ''}".rstrip())
    if not yes:
        try:
            ok = typer.confirm(f"Remove {len(plan)} model{'s' if len(plan) > 1 else ''} from the cache?", err=True)
        except typer.Abort:
            ok = False
        if not ok:
            console.error("nothing removed.")
            raise typer.Exit(1)
    for repo, revision, _ in plan:
        freed = cache.delete(info, [repo], revision)
        console.result(f"{repo}{'@' + revision if revision else ''}")
        say.info(f"removed {repo}{'@' + revision if revision else ''} ({cache.human(freed)} freed)")
