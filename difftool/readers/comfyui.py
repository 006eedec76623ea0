"""ComfyUI's `prompt` chunk (the API graph it ran) -> settings.

The graph maps node ids to `{"class_type": ..., "inputs": {name: value | [node_id, output_index]}}`.
The sampler that made the picture is found first (KSampler, KSamplerAdvanced, SamplerCustom[Advanced]:
when there are several, e.g. a hires second pass, the one that starts from an empty latent), then its
settings are followed along the links: the text encoders behind `positive`/`negative` (through
conditioning combiners, ControlNet appliers, ...), the checkpoint behind `model` (through LoRA loaders),
the latent size, CLIPSetLastLayer for clip skip, RandomNoise/CFGGuider/KSamplerSelect/BasicScheduler for
the custom samplers. Every other node is listed under `extra` by class, since diffusers does not run
ComfyUI graphs: those are what `--from` cannot honour. The `workflow` chunk (the editor's layout) is not
needed and not read. Never raises; the walk is bounded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from difftool.readers import samplers

SAMPLER_CLASSES = ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")
#: Nodes whose meaning the settings carry (or that do not change pixels): not listed as not honoured.
UNDERSTOOD = {
    "CheckpointLoaderSimple", "CheckpointLoader", "unCLIPCheckpointLoader", "UNETLoader", "CLIPTextEncode",
    "CLIPTextEncodeSDXL", "CLIPTextEncodeSDXLRefiner", "EmptyLatentImage", "EmptySD3LatentImage",
    "VAEDecode", "VAEEncode", "SaveImage", "PreviewImage", "CLIPSetLastLayer", "KSamplerSelect",
    "BasicScheduler", "RandomNoise", "CFGGuider", "BasicGuider", "FluxGuidance", "Note", "PrimitiveNode",
    "Reroute", "DualCLIPLoader", "CLIPLoader", "TripleCLIPLoader",
}
MAX_STEPS = 2000  # bound on links followed in one walk


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))


class _Graph:
    def __init__(self, graph: dict[str, Any]) -> None:
        self.nodes = {str(k): v for k, v in graph.items() if isinstance(v, dict)}
        self.budget = MAX_STEPS
        self.sources: set[str] = set()  # nodes a value was taken from (a primitive, a string node)

    def node(self, link: Any) -> tuple[str, dict[str, Any]] | None:
        if not _is_link(link) or self.budget <= 0:
            return None
        self.budget -= 1
        key = str(link[0])
        node = self.nodes.get(key)
        return (key, node) if isinstance(node, dict) else None

    @staticmethod
    def inputs(node: dict[str, Any]) -> dict[str, Any]:
        inputs = node.get("inputs")
        return inputs if isinstance(inputs, dict) else {}

    @staticmethod
    def kind(node: dict[str, Any]) -> str:
        return str(node.get("class_type", ""))

    def value(self, node: dict[str, Any], names: tuple[str, ...], depth: int = 0) -> Any:
        """A scalar input under one of `names`, following a link to a primitive/string node if needed."""
        inputs = self.inputs(node)
        for name in names:
            if name not in inputs:
                continue
            value = inputs[name]
            if _is_link(value) and depth < 6:
                target = self.node(value)
                if target is not None:
                    found = self.value(target[1], (name, *_VALUE_NAMES), depth + 1)
                    if found is not None:
                        self.sources.add(target[0])
                        return found
                continue
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                return value
        return None

    def walk(self, link: Any, follow: tuple[str, ...], through_samplers: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
        """Nodes reached from `link` through inputs named in `follow` (or starting with one), depth first;
        a sampler node is yielded but not walked through unless `through_samplers`."""
        seen: set[str] = set()
        stack = [link]
        while stack:
            found = self.node(stack.pop())
            if found is None or found[0] in seen:
                continue
            seen.add(found[0])
            yield found
            if not through_samplers and _is_sampler(found[1]):
                continue
            for name, value in reversed(list(self.inputs(found[1]).items())):
                if _is_link(value) and any(name == f or name.startswith(f) for f in follow):
                    stack.append(value)


_VALUE_NAMES = ("value", "seed", "noise_seed", "int", "float", "number", "text", "string", "STRING", "prompt")
_TEXT_NAMES = ("text", "text_g", "prompt", "string", "positive", "negative")


def _texts(graph: _Graph, link: Any, role: str) -> list[str]:
    """The prompt texts behind a conditioning link, in graph order."""
    texts: list[str] = []
    for _, node in graph.walk(link, (role, "conditioning", "cond", "base")):
        if "Sampler" in graph.kind(node) or graph.kind(node) in ("CFGGuider", "BasicGuider"):
            continue
        inputs = graph.inputs(node)
        if graph.kind(node).startswith("CLIPTextEncode") or "text" in inputs or "text_g" in inputs:
            text = graph.value(node, ("text", "text_g", "prompt", "string"))
            if isinstance(text, str) and text.strip() and text.strip() not in texts:
                texts.append(text.strip())
    return texts


def _is_sampler(node: dict[str, Any]) -> bool:
    return _Graph.kind(node) in SAMPLER_CLASSES or {"steps", "cfg", "sampler_name"} <= set(_Graph.inputs(node))


def _choose_sampler(graph: _Graph) -> tuple[str, dict[str, Any]] | None:
    found = [(k, n) for k, n in graph.nodes.items() if _is_sampler(n)]
    if not found:
        return None

    def order(item: tuple[str, dict[str, Any]]) -> tuple[int, int, str]:
        latent = _Graph.inputs(item[1]).get("latent_image")
        empty = any(_Graph.kind(n).startswith("Empty") for _, n in graph.walk(latent, ("samples", "latent")))
        return (0 if empty else 1, int(item[0]) if item[0].isdigit() else 1 << 30, item[0])

    return min(found, key=order)


def _short(inputs: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in inputs.items() if not _is_link(v))
    return text if len(text) <= 200 else text[:199] + "…"


def parse_prompt_graph(text: str) -> dict[str, Any] | None:
    """Settings from ComfyUI's `prompt` chunk, or None when it is not such a graph."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    graph = _Graph(data)
    chosen = _choose_sampler(graph)
    if chosen is None:
        return None
    key, sampler = chosen
    inputs = graph.inputs(sampler)
    out: dict[str, Any] = {}
    used = {key}

    def setting(names: tuple[str, ...], via: tuple[str, ...] = ("noise", "guider", "sampler", "sigmas")) -> Any:
        value = graph.value(sampler, names)
        if value is None:  # the custom samplers keep their settings on linked nodes
            for name in via:
                target = graph.node(inputs.get(name))
                if target is not None:
                    value = graph.value(target[1], names)
                    if value is not None:
                        used.add(target[0])
                        break
        return value

    seed = setting(("seed", "noise_seed"))
    steps = setting(("steps",))
    cfg = setting(("cfg",))
    name = setting(("sampler_name",))
    schedule = setting(("scheduler",))
    denoise = setting(("denoise",))
    if isinstance(seed, int) and not isinstance(seed, bool):
        out["seed"] = seed
    if isinstance(steps, int) and not isinstance(steps, bool):
        out["steps"] = steps
    if isinstance(cfg, (int, float)) and not isinstance(cfg, bool):
        out["guidance"] = float(cfg)
    extra: dict[str, Any] = {}
    if isinstance(name, str):
        out["sampler"] = f"{name} ({schedule})" if isinstance(schedule, str) else name
        ours, honoured = samplers.comfy(name, schedule if isinstance(schedule, str) else None)
        if ours:
            out["scheduler"] = ours
        if not (ours and honoured) and isinstance(schedule, str):
            extra["scheduler"] = schedule
    # conditioning: on the sampler, or on its guider
    guider = graph.node(inputs.get("guider"))
    holder = graph.inputs(guider[1]) if guider else inputs
    positive = holder.get("positive", holder.get("conditioning"))
    for role, link in (("positive", positive), ("negative", holder.get("negative"))):
        texts = _texts(graph, link, role)
        if texts:
            out["prompt" if role == "positive" else "negative"] = texts[0]
            if len(texts) > 1:
                extra[f"{role} texts"] = f"{len(texts)} texts combined in the graph; the first is used"
        for node_key, _ in graph.walk(link, (role, "conditioning", "cond", "base")):
            used.add(node_key)
    if "guidance" not in out:  # Flux: the distilled guidance rides on the conditioning
        for _, node in graph.walk(positive, ("conditioning",)):
            if graph.kind(node) == "FluxGuidance":
                value = graph.value(node, ("guidance",))
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out["guidance"] = float(value)
    # clip skip, on the text encoder's clip input
    for node_key, node in graph.walk(positive, ("conditioning", "positive", "clip")):
        if graph.kind(node) == "CLIPSetLastLayer":
            layer = graph.value(node, ("stop_at_clip_layer",))
            if isinstance(layer, int) and not isinstance(layer, bool) and layer < -1:
                out["clip_skip"] = -layer - 1  # -2 = skip one layer = diffusers' clip_skip 1
            used.add(node_key)
            break
    # the checkpoint, behind LoRA loaders and model patches
    model_link = inputs.get("model") or (graph.inputs(guider[1]).get("model") if guider else None)
    for node_key, node in graph.walk(model_link, ("model",)):
        ckpt = graph.value(node, ("ckpt_name", "unet_name", "model_name", "model_path"))
        if isinstance(ckpt, str) and "lora" not in graph.kind(node).lower():
            out["model"] = ckpt
            used.add(node_key)
            break
    # the size, or an encoded source image (img2img)
    img2img = False
    for node_key, node in graph.walk(inputs.get("latent_image"), ("samples", "latent", "pixels", "image")):
        width, height = graph.value(node, ("width",)), graph.value(node, ("height",))
        if graph.kind(node).startswith("VAEEncode") or "pixels" in graph.inputs(node):
            img2img = True
            used.add(node_key)
        elif isinstance(width, int) and isinstance(height, int) and "width" not in out:
            if graph.kind(node).startswith("Empty") or not img2img:
                out["width"], out["height"] = width, height
                used.add(node_key)
    if isinstance(denoise, (int, float)) and not isinstance(denoise, bool) and denoise < 1:
        if img2img:
            out["strength"] = float(denoise)
        else:
            extra["denoise"] = denoise
    used |= graph.sources
    for node_key, node in graph.nodes.items():
        kind = graph.kind(node)
        if node_key in used or kind in UNDERSTOOD:
            continue
        label = f"{kind} #{node_key}" if kind in extra or kind in SAMPLER_CLASSES else kind
        extra[label] = _short(graph.inputs(node))
    if extra:
        out["extra"] = extra
    return out
