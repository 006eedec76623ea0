"""The JSON metadata of Fooocus, InvokeAI, NovelAI and SwarmUI -> settings.

Each parser takes the chunk text(s) and returns settings (prompt, negative, seed, steps, guidance, width,
height, sampler as written, scheduler when ours, model as a hint, strength, clip_skip) with every other
key under `extra`, or None when the text is not that format. None of them raises.

Layouts (as written by each tool; the test data notes where each sample comes from):
- Fooocus (modules/meta_parser.py, "fooocus" scheme): `parameters` = JSON with prompt, negative_prompt,
  seed (a string), steps, guidance_scale, resolution "(width, height)", sampler/scheduler in ComfyUI's
  names, base_model, clip_skip (A1111's count), plus styles, performance, sharpness, loras...
- InvokeAI 3+: `invokeai_metadata` = JSON with positive_prompt, negative_prompt, seed, steps, cfg_scale,
  width, height, scheduler (InvokeAI names), model {model_name|name}, strength, clip_skip.
  InvokeAI 2.x: `sd-metadata` = JSON {model_weights, image: {prompt: [{prompt, weight}], seed, steps,
  cfg_scale, width, height, sampler, strength}}, negative text in [brackets] inside the prompt; and `Dream`
  = `"prompt [negative]" -s 50 -S 2980747362 -W 512 -H 768 -C 5 -A k_lms` (its command line).
- NovelAI: `Comment` = JSON with steps, scale, seed, sampler, noise_schedule, uc (negative), width, height,
  prompt (V3+); `Description` = the prompt; `Software` = "NovelAI"; `Source` = the model.
- SwarmUI: `parameters` = JSON {"sui_image_params": {prompt, negativeprompt, seed, steps, cfgscale, width,
  height, sampler, scheduler, model, ...}}.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from difftool.readers import samplers

#: Fooocus writes A1111's "Clip skip" count; settings hold diffusers' (see a1111.A1111_CLIP_SKIP_OFFSET).
_CLIP_SKIP_OFFSET = 1


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,40}\s*", value):
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?(\d{1,40}(\.\d{0,40})?|\.\d{1,40})\s*", value):
        number = float(value)
    else:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _rest(data: dict[str, Any], used: set[str]) -> dict[str, Any]:
    """The keys not mapped, as `extra` (values shortened to one line)."""
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key in used or value in (None, "", [], {}):
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        extra[str(key)] = text if len(text) <= 300 else text[:299] + "…"
    return extra


def fooocus(text: str) -> dict[str, Any] | None:
    """Settings from Fooocus' JSON `parameters` (its "fooocus" metadata scheme)."""
    data = _json(text)
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
        return None
    out: dict[str, Any] = {"prompt": data["prompt"]}
    _put(out, "negative", _text(data.get("negative_prompt")))
    _put(out, "seed", _int(data.get("seed")))
    _put(out, "steps", _int(data.get("steps")))
    _put(out, "guidance", _float(data.get("guidance_scale")))
    _put(out, "model", _text(data.get("base_model")))
    size = re.fullmatch(r"\s*\(\s*'?(\d{1,9})'?\s*,\s*'?(\d{1,9})'?\s*\)\s*", str(data.get("resolution", "")))
    if size:
        out["width"], out["height"] = int(size.group(1)), int(size.group(2))
    clip = _int(data.get("clip_skip"))
    if clip is not None and clip > _CLIP_SKIP_OFFSET:
        out["clip_skip"] = clip - _CLIP_SKIP_OFFSET
    used = {"prompt", "negative_prompt", "seed", "steps", "guidance_scale", "base_model", "clip_skip",
            "version", "metadata_scheme", "full_prompt", "full_negative_prompt", "base_model_hash"}
    if size:
        used.add("resolution")
    sampler, schedule = _text(data.get("sampler")), _text(data.get("scheduler"))
    if sampler:
        out["sampler"] = f"{sampler} ({schedule})" if schedule else sampler
        ours, honoured = samplers.comfy(sampler, schedule)
        if ours:
            out["scheduler"] = ours
            used.add("sampler")
            if honoured:
                used.add("scheduler")
    extra = _rest(data, used)
    if extra:
        out["extra"] = extra
    return out


def is_fooocus(data: Any) -> bool:
    return isinstance(data, dict) and (
        str(data.get("version", "")).startswith("Fooocus") or data.get("metadata_scheme") == "fooocus"
        or "base_model" in data and "prompt" in data and "guidance_scale" in data)


def swarmui(text: str) -> dict[str, Any] | None:
    """Settings from SwarmUI's JSON `parameters` (`sui_image_params`)."""
    data = _json(text)
    params = data.get("sui_image_params") if isinstance(data, dict) else None
    if not isinstance(params, dict):
        return None
    out: dict[str, Any] = {"prompt": _text(params.get("prompt")) or ""}
    _put(out, "negative", _text(params.get("negativeprompt")))
    _put(out, "seed", _int(params.get("seed")))
    _put(out, "steps", _int(params.get("steps")))
    _put(out, "guidance", _float(params.get("cfgscale")))
    _put(out, "width", _int(params.get("width")))
    _put(out, "height", _int(params.get("height")))
    _put(out, "model", _text(params.get("model")))
    used = {"prompt", "negativeprompt", "seed", "steps", "cfgscale", "width", "height", "model",
            "swarm_version", "date", "generation_time", "aspectratio"}
    sampler, schedule = _text(params.get("sampler")), _text(params.get("scheduler"))
    if sampler:
        out["sampler"] = f"{sampler} ({schedule})" if schedule else sampler
        ours, honoured = samplers.comfy(sampler, schedule or "normal")
        if ours:
            out["scheduler"] = ours
            used.add("sampler")
            if honoured:
                used.add("scheduler")
    extra = _rest(params, used)
    if extra:
        out["extra"] = extra
    return out


def invokeai_metadata(text: str) -> dict[str, Any] | None:
    """Settings from InvokeAI 3+'s `invokeai_metadata`."""
    data = _json(text)
    if not isinstance(data, dict):
        return None
    out: dict[str, Any] = {"prompt": _text(data.get("positive_prompt")) or ""}
    _put(out, "negative", _text(data.get("negative_prompt")))
    _put(out, "seed", _int(data.get("seed")))
    _put(out, "steps", _int(data.get("steps")))
    _put(out, "guidance", _float(data.get("cfg_scale")))
    _put(out, "width", _int(data.get("width")))
    _put(out, "height", _int(data.get("height")))
    used = {"positive_prompt", "negative_prompt", "seed", "steps", "cfg_scale", "width", "height",
            "generation_mode", "app_version", "rand_device", "positive_style_prompt", "negative_style_prompt"}
    model = data.get("model")
    if isinstance(model, dict):
        _put(out, "model", _text(model.get("model_name")) or _text(model.get("name")))
        used.add("model")
    elif isinstance(model, str):
        out["model"] = model
        used.add("model")
    strength = _float(data.get("strength"))
    if strength is not None and "img2img" in str(data.get("generation_mode", "")):
        out["strength"] = strength
        used.add("strength")
    clip = _int(data.get("clip_skip"))
    if clip is not None:
        used.add("clip_skip")
        if clip > 0:  # InvokeAI counts skipped layers, as diffusers does
            out["clip_skip"] = clip
    name = _text(data.get("scheduler"))
    if name:
        out["sampler"] = name
        ours = samplers.invokeai(name)
        if ours:
            out["scheduler"] = ours
            used.add("scheduler")
    if data.get("cfg_rescale_multiplier") in (0, 0.0):
        used.add("cfg_rescale_multiplier")
    extra = _rest(data, used)
    if extra:
        out["extra"] = extra
    return out


def _split_brackets(prompt: str) -> tuple[str, str | None]:
    """InvokeAI 2.x prompt "a cat [blurry, dog]" -> ("a cat", "blurry, dog")."""
    negatives = [m.strip(" ,") for m in re.findall(r"\[([^\[\]]*)\]", prompt)]
    positive = re.sub(r"\[[^\[\]]*\]", "", prompt).strip(" ,")
    negatives = [n for n in negatives if n]
    return re.sub(r"\s{2,}", " ", positive), (", ".join(negatives) if negatives else None)


def invokeai_sd_metadata(text: str) -> dict[str, Any] | None:
    """Settings from InvokeAI 2.x's `sd-metadata`."""
    data = _json(text)
    image = data.get("image") if isinstance(data, dict) else None
    if not isinstance(image, dict):
        return None
    prompts = image.get("prompt")
    if isinstance(prompts, list):
        texts = [p.get("prompt") for p in prompts if isinstance(p, dict) and isinstance(p.get("prompt"), str)]
        prompt_text = " ".join(texts)
    else:
        prompt_text = _text(prompts) or ""
    prompt, negative = _split_brackets(prompt_text)
    out: dict[str, Any] = {"prompt": prompt}
    _put(out, "negative", negative)
    _put(out, "seed", _int(image.get("seed")))
    _put(out, "steps", _int(image.get("steps")))
    _put(out, "guidance", _float(image.get("cfg_scale")))
    _put(out, "width", _int(image.get("width")))
    _put(out, "height", _int(image.get("height")))
    _put(out, "model", _text(data.get("model_weights")))
    used = {"prompt", "seed", "steps", "cfg_scale", "width", "height", "type", "threshold", "perlin",
            "seamless", "hires_fix", "variations"}
    if image.get("type") == "img2img":
        _put(out, "strength", _float(image.get("strength")))
        used.add("strength")
    name = _text(image.get("sampler"))
    if name:
        out["sampler"] = name
        ours = samplers.invokeai(name)
        if ours:
            out["scheduler"] = ours
            used.add("sampler")
    extra = _rest(image, used)
    for key in ("threshold", "perlin"):  # 0 = off
        if image.get(key) not in (None, 0, 0.0):
            extra[key] = str(image.get(key))
    if image.get("seamless") is True:
        extra["seamless"] = "true"
    if image.get("hires_fix") is True:
        extra["hires_fix"] = "true"
    if image.get("variations"):
        extra["variations"] = json.dumps(image.get("variations"), default=str)[:300]
    if extra:
        out["extra"] = extra
    return out


#: InvokeAI 2.x `Dream` command-line switches -> settings keys and parsers.
_DREAM = {"-s": ("steps", _int), "-S": ("seed", _int), "-W": ("width", _int), "-H": ("height", _int),
          "-C": ("guidance", _float), "-f": ("strength", _float)}


def invokeai_dream(text: str) -> dict[str, Any] | None:
    """Settings from InvokeAI 2.x's `Dream` (its command line: `"prompt" -s 50 -S 1 -A k_lms ...`)."""
    if not isinstance(text, str) or not text.lstrip().startswith('"'):
        return None
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    if not words:
        return None
    prompt, negative = _split_brackets(words[0])
    out: dict[str, Any] = {"prompt": prompt}
    _put(out, "negative", negative)
    extra: dict[str, Any] = {}
    i = 1
    while i < len(words):
        flag = words[i]
        values: list[str] = []
        while i + 1 < len(words) and not re.fullmatch(r"-[A-Za-z]+", words[i + 1]):
            values.append(words[i + 1])
            i += 1
        i += 1
        if flag in _DREAM and len(values) == 1:
            key, parse = _DREAM[flag]
            number = parse(values[0])
            if number is not None:
                out[key] = number
                continue
        if flag == "-A" and len(values) == 1:
            out["sampler"] = values[0]
            ours = samplers.invokeai(values[0])
            if ours:
                out["scheduler"] = ours
                continue
        extra[flag] = " ".join(values)
    if extra:
        out["extra"] = extra
    return out


def novelai(comment: str, description: str | None = None, source: str | None = None) -> dict[str, Any] | None:
    """Settings from NovelAI's `Comment` JSON (with its `Description` and `Source` chunks)."""
    data = _json(comment)
    if not isinstance(data, dict):
        return None
    prompt = _text(data.get("prompt")) or _text(description) or ""
    out: dict[str, Any] = {"prompt": prompt.strip()}
    _put(out, "negative", _text(data.get("uc")))
    _put(out, "seed", _int(data.get("seed")))
    _put(out, "steps", _int(data.get("steps")))
    _put(out, "guidance", _float(data.get("scale")))
    _put(out, "width", _int(data.get("width")))
    _put(out, "height", _int(data.get("height")))
    _put(out, "model", _text(source))
    used = {"prompt", "uc", "seed", "steps", "scale", "width", "height", "n_samples", "signed_hash",
            "request_type", "strength", "noise", "extra_noise_seed", "hide_debug_overlay"}
    if "img2img" in str(data.get("request_type", "")).lower():
        _put(out, "strength", _float(data.get("strength")))
    name = _text(data.get("sampler"))
    if name:
        out["sampler"] = name
        ours, honoured = samplers.novelai(name, _text(data.get("noise_schedule")))
        if ours:
            out["scheduler"] = ours
            used.add("sampler")
            if honoured:
                used.add("noise_schedule")
    extra = _rest(data, used)
    if extra:
        out["extra"] = extra
    return out
