"""Other tools' sampler and schedule names -> difftool scheduler names (schedulers.SCHEDULERS).

A sampler is a base algorithm plus a noise schedule. Each tool spells both its own way: A1111 "DPM++ 2M
Karras" (before v1.9) or "DPM++ 2M" + "Schedule type: Karras" (v1.9 on, where "Automatic" means each
sampler's own default); ComfyUI/Fooocus/SwarmUI `dpmpp_2m` + `karras`; InvokeAI `dpmpp_2m_k`; NovelAI
`k_dpmpp_2m` + `noise_schedule`. `scheduler_for(base, schedule)` gives ours, or None when diffusers (as
difftool names it) has no equivalent.
"""

from __future__ import annotations

from difftool.schedulers import SCHEDULERS

#: A1111/Forge sampler names (lower case, without a schedule suffix) -> our base name.
A1111_BASES = {
    "euler": "euler", "euler a": "euler-a", "heun": "heun", "lms": "lms", "ddim": "ddim", "ddpm": "ddpm",
    "plms": "pndm", "dpm++ 2m": "dpm++2m", "dpm++ 2m sde": "dpm++2m-sde", "dpm++ sde": "dpm++sde",
    "dpm++ 3m sde": "dpm++3m-sde", "dpm2": "dpm2", "dpm2 a": "dpm2-a", "unipc": "unipc", "lcm": "lcm",
}
#: A1111 v1.9+ "Schedule type: Automatic": the schedule each sampler uses by default
#: (modules/sd_samplers_kdiffusion.py, `samplers_k_diffusion` options).
A1111_DEFAULT_SCHEDULE = {
    "dpm++2m": "karras", "dpm++sde": "karras", "dpm++2m-sde": "exponential", "dpm++3m-sde": "exponential",
    "dpm2": "karras", "dpm2-a": "karras",
}
#: Schedule names as the tools write them (lower case) -> ours ("" = the model's own, uniform/normal).
SCHEDULES = {
    "": "", "automatic": None, "normal": "", "uniform": "", "native": "", "default": "",
    "karras": "karras", "exponential": "exponential",
}
#: ComfyUI (and Fooocus, SwarmUI, which use ComfyUI's names) sampler_name -> our base.
COMFY_BASES = {
    "euler": "euler", "euler_ancestral": "euler-a", "heun": "heun", "lms": "lms", "ddim": "ddim",
    "ddpm": "ddpm", "dpmpp_2m": "dpm++2m", "dpmpp_2m_sde": "dpm++2m-sde", "dpmpp_2m_sde_gpu": "dpm++2m-sde",
    "dpmpp_sde": "dpm++sde", "dpmpp_sde_gpu": "dpm++sde", "dpmpp_3m_sde": "dpm++3m-sde",
    "dpmpp_3m_sde_gpu": "dpm++3m-sde", "dpm_2": "dpm2", "dpm_2_ancestral": "dpm2-a", "uni_pc": "unipc",
    "uni_pc_bh2": "unipc", "lcm": "lcm",
}
#: InvokeAI scheduler names (a `_k` suffix = Karras) -> our base.
INVOKE_BASES = {
    "euler": "euler", "euler_a": "euler-a", "heun": "heun", "lms": "lms", "ddim": "ddim", "ddpm": "ddpm",
    "pndm": "pndm", "dpmpp_2m": "dpm++2m", "dpmpp_2m_sde": "dpm++2m-sde", "dpmpp_sde": "dpm++sde",
    "dpmpp_3m": None, "kdpm_2": "dpm2", "kdpm_2_a": "dpm2-a", "unipc": "unipc", "lcm": "lcm",
    # InvokeAI 2.x (`sd-metadata`, `Dream`) k-diffusion names
    "k_lms": "lms", "k_euler": "euler", "k_euler_a": "euler-a", "k_heun": "heun", "k_dpm_2": "dpm2",
    "k_dpm_2_a": "dpm2-a", "k_dpmpp_2": "dpm++2m", "plms": "pndm",
}
#: NovelAI `sampler` -> our base (NovelAI's schedule is `noise_schedule`).
NOVELAI_BASES = {
    "k_euler": "euler", "k_euler_ancestral": "euler-a", "k_heun": "heun", "k_lms": "lms", "ddim": "ddim",
    "ddim_v3": "ddim", "plms": "pndm", "k_dpmpp_2m": "dpm++2m", "k_dpmpp_sde": "dpm++sde", "k_dpm_2": "dpm2",
    "k_dpm_2_ancestral": "dpm2-a",
}


def scheduler_for(base: str | None, schedule: str | None = "") -> str | None:
    """Our scheduler name for a base algorithm and a schedule ("", "karras", "exponential"), if we have it."""
    if not base:
        return None
    name = f"{base}-{schedule}" if schedule else base
    return name if name in SCHEDULERS else None


def a1111(sampler: str, schedule_type: str | None) -> tuple[str | None, bool]:
    """(our scheduler, whether the schedule was honoured) for an A1111 `Sampler` (+ `Schedule type`)."""
    name = sampler.strip().lower()
    suffix = ""
    for candidate in ("karras", "exponential"):
        if name.endswith(" " + candidate):  # the pre-1.9 combined form, "DPM++ 2M Karras"
            name, suffix = name[: -len(candidate) - 1].strip(), candidate
    base = A1111_BASES.get(name)
    if base is None:
        return None, False
    if suffix:
        return scheduler_for(base, suffix), True
    if schedule_type is None:  # before v1.9: the sampler's name said it all
        return scheduler_for(base), True
    schedule = SCHEDULES.get(schedule_type.strip().lower(), "?")
    if schedule is None:  # Automatic
        schedule = A1111_DEFAULT_SCHEDULE.get(base, "")
    if schedule == "?":  # a schedule diffusers does not have: the base sampler, schedule not honoured
        return scheduler_for(base), False
    ours = scheduler_for(base, schedule)
    return (ours, True) if ours else (scheduler_for(base), False)


def comfy(sampler: str, schedule: str | None) -> tuple[str | None, bool]:
    """(our scheduler, whether the schedule was honoured) for ComfyUI's `sampler_name` + `scheduler`."""
    name = sampler.strip().lower()
    name = name[len("sample_"):] if name.startswith("sample_") else name  # old ComfyUI graphs
    base = COMFY_BASES.get(name)
    if base is None:
        return None, False
    wanted = SCHEDULES.get((schedule or "").strip().lower(), "?")
    if wanted in ("?", None):
        return scheduler_for(base), False
    ours = scheduler_for(base, wanted)
    return (ours, True) if ours else (scheduler_for(base), False)


def invokeai(name: str) -> str | None:
    """Our scheduler for an InvokeAI scheduler name (`dpmpp_2m_k` = DPM++ 2M Karras)."""
    name = name.strip().lower()
    if name.endswith("_k") and name[:-2] in INVOKE_BASES:
        return scheduler_for(INVOKE_BASES[name[:-2]], "karras")
    return scheduler_for(INVOKE_BASES.get(name))


def novelai(name: str, noise_schedule: str | None) -> tuple[str | None, bool]:
    """(our scheduler, whether the schedule was honoured) for NovelAI's `sampler` + `noise_schedule`."""
    base = NOVELAI_BASES.get(name.strip().lower())
    if base is None:
        return None, False
    wanted = SCHEDULES.get((noise_schedule or "").strip().lower(), "?")
    if wanted in ("?", None):
        return scheduler_for(base), False
    ours = scheduler_for(base, wanted)
    return (ours, True) if ours else (scheduler_for(base), False)
