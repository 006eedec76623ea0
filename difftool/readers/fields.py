"""What read settings mean for a difftool job: spec fields, and the keys `--from` cannot honour."""

from __future__ import annotations

from typing import Any

#: Settings keys that are difftool spec fields, with the Python types a reader gives them.
SPEC_FIELDS: dict[str, tuple[type, ...]] = {
    "prompt": (str,), "negative": (str,), "seed": (int,), "steps": (int,), "guidance": (int, float),
    "width": (int,), "height": (int,), "scheduler": (str,), "strength": (int, float), "model": (str,),
    "clip_skip": (int,), "hires_scale": (int, float), "hires_steps": (int,), "hires_upscaler": (str,),
    "hires_denoise": (int, float),
}
#: Per source, `extra` keys that describe the file or the run rather than the picture: not reported.
INFORMATIONAL: dict[str, set[str]] = {
    "a1111": {"Version", "Batch size", "Batch pos", "App", "User"},
    "forge": {"Version", "Batch size", "Batch pos", "App", "User"},
    "comfyui": {"Version", "Batch size", "Batch index"},
    "fooocus": {"Version", "User", "performance", "styles"},
}


def to_spec_fields(source: str | None, settings: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(spec fields, keys not honoured) for settings read from an image (`readers.read(path).settings`).

    Fields: prompt, negative, seed, steps, guidance, width, height, scheduler (a name of
    schedulers.SCHEDULERS), strength (img2img), model (a hint: the name the other tool used, for the caller
    to resolve or drop), clip_skip (diffusers' count: A1111 `Clip skip: 2` -> 1), hires_scale, hires_steps,
    hires_upscaler ("latent", "lanczos" or the other tool's upscaler name), hires_denoise. Values are as
    read (ints and floats typed, nothing range-checked: validation is the spec's). A1111 `Seed: -1`
    (random) gives no seed. LoRA tags stay in the prompt text.

    Not honoured: display strings naming, in the image's own spelling, each key that difftool does not
    reproduce (ENSD, Model hash, Variation seed, extensions' keys, ComfyUI nodes by class, a sampler
    diffusers lacks as "Sampler (name)"), sorted, for `--from` to print once. For a difftool image the
    settings are its own chunk: returned as they are (minus `version`), nothing listed.
    Never raises.
    """
    if not isinstance(settings, dict):
        return {}, []
    if source == "difftool":
        return {k: v for k, v in settings.items() if k != "version"}, []
    fields: dict[str, Any] = {}
    for key, kinds in SPEC_FIELDS.items():
        value = settings.get(key)
        if isinstance(value, kinds) and not isinstance(value, bool):
            fields[key] = float(value) if float in kinds and not isinstance(value, str) else value
    extra = settings.get("extra")
    skip = INFORMATIONAL.get(source or "", set())
    not_honoured = sorted(str(k) for k in (extra if isinstance(extra, dict) else {}) if k not in skip)
    sampler = settings.get("sampler")
    if isinstance(sampler, str) and sampler and "scheduler" not in fields:
        not_honoured.append(f"Sampler ({sampler})")
    return fields, not_honoured
