"""unCLIP (Kandinsky 2.1/2.2): find and load the prior that goes with a decoder folder.

Where the prior comes from, first match wins: `--prior`; the registry (aliases and known hub ids); the decoder's
README link (as on the Hub). A combined folder (saved with save_pretrained) carries its own prior. The prior is
fetched cache-first like any model, so a cached Kandinsky works offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool import hub
from difftool.errors import ModelUnavailable, UsageError
from difftool.loading.index import PipelineIndex
from difftool.references import ModelRef

#: Prior pipeline class -> the decoder family it serves ("Kandinsky" 2.1, "KandinskyV22" 2.2).
UNCLIP_PRIORS = {"KandinskyPriorPipeline": "Kandinsky", "KandinskyV22PriorPipeline": "KandinskyV22"}


def unclip_family(class_name: str | None) -> str | None:
    """"Kandinsky"/"KandinskyV22" for a Kandinsky 2.1/2.2 pipeline class (decoder, prior or combined), else None."""
    if not class_name or not class_name.startswith("Kandinsky") or class_name.startswith("Kandinsky3"):
        return None
    return "KandinskyV22" if class_name.startswith("KandinskyV22") else "Kandinsky"


def is_unclip(pipe: Any) -> bool:
    """A combined prior + decoder pipeline (what difftool loads for Kandinsky 2.1/2.2)."""
    return getattr(pipe, "prior_pipe", None) is not None and getattr(pipe, "decoder_pipe", None) is not None


@dataclass
class UnclipPrior:
    """The prior to load with a Kandinsky model: `prior_<name>` kwargs for the combined pipeline (empty when the
    folder is already a combined one), whether the folder holds only the decoder, and the label to record."""

    kwargs: dict[str, Any]
    decoder_only: bool
    label: str


def readme_prior(folder: Path) -> str | None:
    """The prior a Hub decoder repo names in its README's YAML front matter (`prior: - org/name`), if any."""
    readme = folder / "README.md"
    try:
        if not readme.read_text(encoding="utf-8", errors="replace").lstrip().startswith("---"):
            return None  # no YAML header (and no "metadata block not found" notice from huggingface_hub)
        from huggingface_hub import ModelCard

        value = ModelCard.load(readme).data.to_dict().get("prior")
    except Exception:  # an unreadable card is no link
        return None
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value).strip() or None if value else None


def _prior_ref(text: str, folder: Path, origin: str) -> ModelRef:
    """`--prior`/registry/README text -> a ModelRef: an alias (its prior), a folder, or a hub id.

    A relative path from a README is tried against the decoder folder first, then the current directory
    (where diffusers itself would look)."""
    from difftool import references

    if origin == "README.md" and not Path(text).is_absolute() and (folder / text).is_dir():
        text = str(folder / text)
    try:
        ref = references.resolve(text)
    except ModelUnavailable as exc:
        if origin == "--prior":
            raise
        raise ModelUnavailable(f"The prior that {origin} names ('{text}') is not usable ({exc.message.rstrip('.')}); "
                               "pass --prior with the prior's folder or hub id.") from exc
    if ref.kind == "alias" and ref.spec is not None and ref.spec.prior:  # `--prior kandinsky22`: that model's prior
        ref = references.resolve(ref.spec.prior)
    if ref.kind == "file":
        raise UsageError(f"--prior must be a prior pipeline folder or hub id, not the file '{ref.path}'.")
    return ref


def not_unclip(label: str, cls: str | None) -> UsageError:
    return UsageError(f"--prior applies to unCLIP models (Kandinsky 2.1/2.2); '{label}' is a "
                      f"{cls or 'pipeline without a class name'}.")


def unclip_prior(ref: ModelRef, index: PipelineIndex, opts: Any, *, dtype: Any, fetch: Any) -> UnclipPrior | None:
    """For a Kandinsky 2.1/2.2 folder: find and load its prior (None for other models); `opts` (LoadOptions) names
    `--prior` and the pickle policy. `fetch(ref)` returns the local folder of a model reference (cache first)."""
    prior, allow_pickle = opts.prior, opts.allow_pickle
    cls = index.class_name
    family = unclip_family(cls)
    if family is None or cls in UNCLIP_PRIORS:
        if prior:
            raise not_unclip(ref.label, cls)
        if cls in UNCLIP_PRIORS:
            raise ModelUnavailable(f"Model '{ref.label}' is a Kandinsky prior ({cls}); pass its decoder with --model "
                                   f"and the prior with --prior.")
        return None
    combined = "Combined" in (cls or "")
    if combined and not prior:
        return UnclipPrior({}, decoder_only=False, label=ref.label)
    if prior:
        prior_text, origin = prior, "--prior"
    elif ref.spec is not None and ref.spec.prior:
        prior_text, origin = ref.spec.prior, f"the registry entry of '{ref.spec.alias}'"
    else:
        readme = index.folder / "README.md"
        if not readme.is_file() and ref.repo_id:  # diffusers' download skips a decoder's README: fetch it
            fetched = hub.fetch_file(ref.repo_id, "README.md", ref.revision)
            readme = fetched if fetched is not None else readme
        prior_text, origin = readme_prior(readme.parent), "README.md"
    if not prior_text:
        raise ModelUnavailable(
            f"Model '{ref.label}' is a Kandinsky decoder ({cls}) without a link to its prior; pass --prior with "
            "the prior's folder or hub id (e.g. --prior kandinsky-community/kandinsky-2-2-prior)."
        )
    prior_ref = _prior_ref(prior_text, index.folder, origin)
    try:
        prior_folder = fetch(prior_ref)
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"{exc.message.rstrip('.')} (the prior of '{ref.label}', named by {origin}; "
                               "--prior FOLDER uses a local copy).") from exc
    prior_cls = PipelineIndex.read(prior_folder).class_name
    if prior_cls not in UNCLIP_PRIORS:
        raise ModelUnavailable(f"The prior '{prior_ref.label}' ({origin}) is a {prior_cls or 'folder without a pipeline'}"
                               ", not a Kandinsky prior pipeline; pass --prior with the decoder's prior.")
    if UNCLIP_PRIORS[prior_cls] != family:
        raise ModelUnavailable(f"The prior '{prior_ref.label}' is a {prior_cls}, which does not match the decoder "
                               f"'{ref.label}' ({cls}): Kandinsky 2.1 and 2.2 priors are not interchangeable.")
    import diffusers

    from difftool.errors import translate_load

    kwargs: dict[str, Any] = {"dtype": dtype, "use_safetensors": None if allow_pickle else True,
                              "local_files_only": True}
    try:
        loaded = diffusers.DiffusionPipeline.from_pretrained(prior_folder, **kwargs)
    except Exception as exc:
        raise translate_load(exc, prior_ref, "text2img", prior_cls) from exc
    return UnclipPrior({f"prior_{name}": part for name, part in loaded.components.items()},
                       decoder_only=not combined, label=prior_ref.label)


def check_inpaint_decoder(pipe: Any, label: str) -> None:
    """Kandinsky inpainting needs the inpainting decoder (9 input channels), not the text-to-image one."""
    decoder = getattr(pipe, "decoder_pipe", pipe)
    unet = getattr(decoder, "unet", None)
    if unet is not None and getattr(unet.config, "in_channels", None) == 4:
        raise ModelUnavailable(
            f"Model '{label}' is a Kandinsky text-to-image decoder; inpainting needs its inpainting decoder "
            "(e.g. kandinsky-community/kandinsky-2-2-decoder-inpaint, whose README names the prior)."
        )
