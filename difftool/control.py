"""ControlNets: `--control MODEL:IMAGE[:SCALE]` (repeatable), and the ControlNet models themselves.

Parsing, model references and the family check are pure (no torch), so a typo or an SDXL ControlNet
given to an SD 1.5 model fails before anything heavy loads. Loading goes through diffusers: the
ControlNet classes' `from_pretrained` (safetensors only unless --allow-pickle), then the AutoPipeline
classes given `controlnet=`, which pick the ControlNet pipeline of the model's family (one model, or a
list for diffusers' multi-ControlNet). What runs at call time (images, scales, window) is in `guides.py`.

`MODEL:IMAGE[:SCALE]` with ':' inside paths: SCALE is the part after the last ':' when it is a number;
MODEL ends at the first ':' whose left part is a ControlNet alias, a hub id (`org/name[@rev]`, which
never holds a ':') or an existing folder; IMAGE is all the rest. So `./cn:v2:img:1.png:0.5` works when
`./cn:v2` is a folder, and a Windows path `C:\\cn:C:\\img.png` too.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool import registry
from difftool.errors import ModelUnavailable, UsageError
from difftool.registry import GUIDE_FAMILIES, GuideSpec

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(?:@[\w./-]+)?$")

#: ControlNet class (config.json `_class_name`) -> base family; ControlNetModel is SD 1.x/2.x or SDXL by its config.
CONTROLNET_FAMILIES = {"ControlNetModel": None, "ControlNetUnionModel": "sdxl", "SD3ControlNetModel": "sd3",
                       "FluxControlNetModel": "flux"}
#: Base pipeline classes (model_index.json `_class_name`) that diffusers has ControlNet pipelines for.
BASE_FAMILIES = {
    "StableDiffusionPipeline": "sd", "StableDiffusionImg2ImgPipeline": "sd", "StableDiffusionInpaintPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl", "StableDiffusionXLImg2ImgPipeline": "sdxl",
    "StableDiffusionXLInpaintPipeline": "sdxl",
    "StableDiffusion3Pipeline": "sd3", "StableDiffusion3Img2ImgPipeline": "sd3", "StableDiffusion3InpaintPipeline": "sd3",
    "FluxPipeline": "flux", "FluxImg2ImgPipeline": "flux", "FluxInpaintPipeline": "flux",
}
#: Config keys a ControlNet must share with the base model's UNet/transformer (when both have them).
SHARED_KEYS = ("cross_attention_dim", "addition_embed_type", "addition_time_embed_dim",
               "projection_class_embeddings_input_dim", "joint_attention_dim", "pooled_projection_dim", "in_channels")
#: ControlNet Union control types -> the index the model was trained with (`control_mode`), per family.
UNION_MODES = {
    # xinsir/controlnet-union-sdxl-1.0 (ControlNetUnionModel)
    "sdxl": {"pose": 0, "openpose": 0, "depth": 1, "softedge": 2, "hed": 2, "scribble": 2, "canny": 3,
             "lineart": 3, "mlsd": 3, "normal": 4, "segment": 5, "tile": 6, "inpaint": 7},
    # InstantX / Shakker-Labs FLUX.1-dev ControlNet Union (FluxControlNetModel with num_mode)
    "flux": {"canny": 0, "tile": 1, "depth": 2, "blur": 3, "pose": 4, "openpose": 4, "gray": 5, "lq": 6},
}


@dataclass(frozen=True)
class Control:
    """One `--control`: the ControlNet, its image, scale, preprocessor and (Union models) control type."""

    model: str
    """As typed (alias, hub id[@rev], folder); recorded as the resolved label."""
    image: str
    scale: float = 1.0
    preprocess: str = "none"
    mode: str | None = None


@dataclass(frozen=True)
class ControlNetRef:
    """A resolved ControlNet reference: a hub repo (alias or id) or a local folder."""

    text: str
    repo_id: str | None = None
    revision: str | None = None
    path: Path | None = None
    spec: GuideSpec | None = None

    @property
    def label(self) -> str:
        """What the metadata records: the alias, hub id[@rev], or the folder's absolute path."""
        if self.spec is not None:
            return self.spec.alias
        if self.repo_id:
            return f"{self.repo_id}@{self.revision}" if self.revision else self.repo_id
        return str(self.path)


# ---- parsing --------------------------------------------------------------------------------------------


def _names_model(text: str) -> bool:
    """Whether `text` can only be the MODEL part: an alias, an existing folder, or a hub id."""
    if not text:
        return False
    if text in registry.CONTROLNETS or Path(text).expanduser().is_dir():
        return True
    return bool(_HUB_ID.match(text)) and not text.startswith((".", "/", "~"))


def split(text: str) -> tuple[str, str, float]:
    """`MODEL:IMAGE[:SCALE]` -> (model, image, scale) by the rule in the module docstring."""
    body, scale = text.strip(), 1.0
    head, sep, tail = body.rpartition(":")
    if sep and head and tail.strip():
        try:
            scale = float(tail)
            body = head
        except ValueError:
            pass
    if not math.isfinite(scale) or scale < 0:
        raise UsageError(f"--control '{text}': the scale must be a number >= 0.")
    colons = [i for i, c in enumerate(body) if c == ":"]
    if not colons:
        raise UsageError(f"--control '{text}' is not MODEL:IMAGE[:SCALE] (e.g. --control canny-sd15:edges.png:0.8).")
    cut = next((i for i in colons if _names_model(body[:i])), colons[0])
    model, image = body[:cut].strip(), body[cut + 1:].strip()
    if not model or not image:
        raise UsageError(f"--control '{text}' is not MODEL:IMAGE[:SCALE] (e.g. --control canny-sd15:edges.png:0.8).")
    return model, image, scale


def spread(values: list[str] | None, count: int, flag: str) -> list[str | None]:
    """One value for every control, or one per control in order (`--control-preprocess`, `--control-mode`)."""
    if not values:
        return [None] * count
    if len(values) == 1:
        return list(values) * count
    if len(values) != count:
        raise UsageError(f"{flag} is given {len(values)} times for {count} --control: give it once (for all) or "
                         "once per --control, in the same order.")
    return list(values)


def parse_all(items: list[str] | None, preprocess: list[str] | None = None, modes: list[str] | None = None,
              ) -> tuple[Control, ...]:
    """Every `--control` with its preprocessor and mode; exit 2 for anything malformed (files are checked later)."""
    from difftool import preprocess as pre

    items = [i for i in items or [] if i.strip()]
    if not items:
        if preprocess or modes:
            raise UsageError("--control-preprocess and --control-mode apply to --control, which is not given.")
        return ()
    out = []
    for text, how, mode in zip(items, spread(preprocess, len(items), "--control-preprocess"),
                               spread(modes, len(items), "--control-mode")):
        model, image, scale = split(text)
        step = pre.parse(how or "none")
        if mode is not None:
            mode = mode.strip().lower()
            known = sorted({m for table in UNION_MODES.values() for m in table})
            if mode not in known:
                raise UsageError(f"Unknown --control-mode '{mode}'; use one of {', '.join(known)}.")
        out.append(Control(model, image, scale, step.text, mode))
    return tuple(out)


def check_window(start: float | None, end: float | None) -> tuple[float, float]:
    """`--control-start/--control-end` (fractions of the steps): 0 <= start < end <= 1."""
    lo = 0.0 if start is None else float(start)
    hi = 1.0 if end is None else float(end)
    if not (0.0 <= lo < hi <= 1.0):
        raise UsageError(f"--control-start {lo:g} / --control-end {hi:g}: need 0 <= start < end <= 1.")
    return lo, hi


# ---- model references -----------------------------------------------------------------------------------


def resolve(text: str) -> ControlNetRef:
    """An alias, a folder holding a diffusers ControlNet (config.json), or a hub id; exit 3 when none fits."""
    text = text.strip()
    spec = registry.CONTROLNETS.get(text)
    if spec is not None:
        return ControlNetRef(text, repo_id=spec.repo, spec=spec)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailable(f"ControlNet folder '{text}' has no config.json (save it with save_pretrained).")
        return ControlNetRef(text, path=path.resolve())
    if path.suffix.lower() in (".safetensors", ".ckpt", ".pth", ".bin", ".pt"):
        raise ModelUnavailable(f"ControlNet '{text}' is a single file; difftool loads ControlNets in the diffusers "
                               "layout (a folder with config.json, or a hub id).")
    if _HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        repo, _, rev = text.partition("@")
        return ControlNetRef(text, repo_id=repo, revision=rev or None)
    known = ", ".join(registry.CONTROLNETS)
    raise ModelUnavailable(f"Unknown ControlNet '{text}': not an alias ({known}), a hub id 'org/name', or a folder.")


def weight_patterns(variant: str | None, allow_pickle: bool) -> list[str]:
    """The files a ControlNet needs: its config and one set of weights (no duplicates in other formats)."""
    exts = [".safetensors"] + ([".bin"] if allow_pickle else [])
    stems = ["diffusion_pytorch_model"] + ([f"diffusion_pytorch_model.{variant}"] if variant else [])
    out = ["config.json"]
    for stem in stems:
        for ext in exts:
            out += [f"{stem}{ext}", f"{stem}{ext}.index.json", f"{stem}-*{ext}"]
    return out


def fetch(ref: ControlNetRef, weights: bool, variant: str | None = None, allow_pickle: bool = False,
          refresh: bool = False) -> Path:
    """The local folder of a ControlNet: its config only, or with its weights (hub: cache first)."""
    if ref.path is not None:
        return ref.path
    from difftool import hub

    assert ref.repo_id is not None
    patterns = weight_patterns(variant, allow_pickle) if weights else ["config.json"]
    try:
        folder = hub.fetch_files(ref.repo_id, ref.revision, patterns, refresh=refresh)
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"{exc.message.rstrip('.')} (ControlNet '{ref.label}'; --control FOLDER:IMAGE "
                               "uses a local copy).") from exc
    if not (folder / "config.json").is_file():
        raise ModelUnavailable(f"ControlNet '{ref.label}' has no config.json: it is not a diffusers ControlNet.")
    return folder


def read_config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"'{folder}' has no readable config.json.") from exc


def family_of(config: dict[str, Any]) -> str | None:
    """The base family a ControlNet config is made for (sd, sdxl, sd3, flux); None when difftool cannot use it."""
    cls = str(config.get("_class_name", ""))
    if cls not in CONTROLNET_FAMILIES:
        return None
    family = CONTROLNET_FAMILIES[cls]
    if family is None:
        family = "sdxl" if config.get("addition_embed_type") == "text_time" else "sd"
    return family


def is_union(config: dict[str, Any]) -> bool:
    """A ControlNet Union: several control types in one model, chosen per image with `control_mode`."""
    return config.get("_class_name") == "ControlNetUnionModel" or (
        config.get("_class_name") == "FluxControlNetModel" and config.get("num_mode") is not None)


def check_family(label: str, config: dict[str, Any], model_label: str, base_class: str | None,
                 denoiser: dict[str, Any] | None) -> str:
    """Refuse (exit 3) a ControlNet that does not fit the base model, before its weights load; returns the family.

    The family comes from the classes (an SDXL ControlNet has `addition_embed_type: text_time`); within a family
    the shared dimensions must agree (an SD 1.5 ControlNet, cross_attention_dim 768, on SD 2.1's 1024)."""
    base = BASE_FAMILIES.get(base_class or "")
    if base is None:
        raise ModelUnavailable(f"Model '{model_label}' is a {base_class or 'pipeline without a class name'}; ControlNets "
                               f"work with {', '.join(GUIDE_FAMILIES.values())} models.")
    family = family_of(config)
    if family is None:
        raise ModelUnavailable(f"'{label}' is a {config.get('_class_name') or 'model without a class name'}, not a "
                               f"ControlNet difftool can use ({', '.join(CONTROLNET_FAMILIES)}).")
    if family != base:
        raise ModelUnavailable(f"ControlNet '{label}' is made for {GUIDE_FAMILIES[family]} models, but '{model_label}' "
                               f"is {GUIDE_FAMILIES[base]} ({base_class}): use a {GUIDE_FAMILIES[base]} ControlNet.")
    for key in SHARED_KEYS:
        if key == "in_channels" and family in ("sd", "sdxl"):
            continue  # inpainting UNets take 9 channels, their ControlNets 4
        mine, theirs = config.get(key), (denoiser or {}).get(key)
        if mine is not None and theirs is not None and mine != theirs:
            raise ModelUnavailable(f"ControlNet '{label}' does not fit '{model_label}': its {key} is {mine}, the "
                                   f"model's is {theirs} (e.g. an SD 1.5 ControlNet on SD 2.x).")
    inner = [(c.get("num_attention_heads"), c.get("attention_head_dim")) for c in (config, denoiser or {})]
    if family in ("sd3", "flux") and all(h and d for h, d in inner) and inner[0][0] * inner[0][1] != inner[1][0] * inner[1][1]:
        raise ModelUnavailable(f"ControlNet '{label}' does not fit '{model_label}': its width is "
                               f"{inner[0][0] * inner[0][1]}, the model's {inner[1][0] * inner[1][1]} "
                               "(e.g. an SD3 medium ControlNet on SD 3.5 large).")
    return family


def denoiser_config(folder: Path) -> dict[str, Any] | None:
    """The base model's UNet or transformer config from its folder."""
    for name in ("unet", "transformer"):
        try:
            return json.loads((folder / name / "config.json").read_text())
        except (OSError, ValueError):
            continue
    return None


def pipe_denoiser_config(pipe: Any) -> dict[str, Any] | None:
    """The loaded pipeline's UNet or transformer config (single-file checkpoints)."""
    for name in ("unet", "transformer"):
        part = getattr(pipe, name, None)
        if part is not None:
            return dict(part.config)
    return None


def check_task(base_class: str, union: bool, task: str, model_label: str) -> None:
    """Refuse (exit 3) a task diffusers has no ControlNet pipeline for with this model (e.g. SD3 img2img)."""
    try:
        from diffusers.pipelines import auto_pipeline as auto
    except ImportError:  # pragma: no cover - diffusers layout change: let loading report it
        return
    mapping = {"text2img": "AUTO_TEXT2IMAGE_PIPELINES_MAPPING", "img2img": "AUTO_IMAGE2IMAGE_PIPELINES_MAPPING",
               "inpaint": "AUTO_INPAINT_PIPELINES_MAPPING"}.get(task)
    if mapping is None:
        raise UsageError("--control applies to gen, img2img and inpaint.")
    names = {cls.__name__ for cls in getattr(auto, mapping, {}).values()}
    family = BASE_FAMILIES.get(base_class)
    want = {"sd": "StableDiffusionControlNet", "sdxl": "StableDiffusionXLControlNetUnion" if union else
            "StableDiffusionXLControlNet", "sd3": "StableDiffusion3ControlNet", "flux": "FluxControlNet"}.get(family or "")
    if want and not any(n.startswith(want) and "PAG" not in n for n in names):
        words = {"text2img": "text-to-image", "img2img": "image-to-image", "inpaint": "inpainting"}[task]
        raise ModelUnavailable(f"diffusers has no {words} ControlNet pipeline for {GUIDE_FAMILIES[family or 'sd']} "
                               f"models ('{model_label}'); use --control with another command.")


# ---- loading --------------------------------------------------------------------------------------------


@dataclass
class LoadedControl:
    """What `controlnets()` loaded: the `controlnet=` value for diffusers, and each model's label/family/union."""

    value: Any
    labels: list[str]
    unions: list[bool]
    family: str


def controlnets(refs: tuple[str, ...], model_label: str, base_class: str | None, denoiser: dict[str, Any] | None,
                dtype: Any, task: str, variant: str | None = None, allow_pickle: bool = False,
                refresh: bool = False, say: Any = None) -> LoadedControl:
    """Check then load every ControlNet in `refs` for a base model: one model, or a list (multi-ControlNet)."""
    import diffusers

    resolved = [resolve(text) for text in refs]
    configs = [read_config(fetch(r, weights=False, refresh=refresh)) for r in resolved]
    family = ""
    for r, config in zip(resolved, configs):
        family = check_family(r.label, config, model_label, base_class, denoiser)
    unions = [is_union(c) for c in configs]
    if any(u and c.get("_class_name") == "ControlNetUnionModel" for u, c in zip(unions, configs)) and len(refs) > 1:
        raise UsageError("An SDXL ControlNet Union works alone: give it one --control (difftool does not combine it "
                         "with other ControlNets yet).")
    check_task(base_class or "", any(unions), task, model_label)
    models = []
    for r, config in zip(resolved, configs):
        folder = fetch(r, weights=True, variant=variant, allow_pickle=allow_pickle, refresh=refresh)
        cls = getattr(diffusers, str(config["_class_name"]))
        kwargs: dict[str, Any] = {"dtype": dtype, "use_safetensors": None if allow_pickle else True,
                                  "local_files_only": True}
        if variant and any(folder.glob(f"diffusion_pytorch_model.{variant}*")):
            kwargs["variant"] = variant
        if not allow_pickle and not any(folder.glob("diffusion_pytorch_model*.safetensors")):
            raise ModelUnavailable(f"ControlNet '{r.label}' has no safetensors weights; pickle weights can run code "
                                   "when loaded, so they are refused unless you pass --allow-pickle.")
        if say is not None:
            say(f"Loading ControlNet {r.label}")
        try:
            models.append(cls.from_pretrained(str(folder), **kwargs))
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelUnavailable(f"ControlNet '{r.label}' cannot be loaded: {str(exc).splitlines()[0]}") from exc
    value = models[0] if len(models) == 1 else models
    return LoadedControl(value, [r.label for r in resolved], unions, family)


def load_kwargs(ref: Any, folder: Path, opts: Any, dtype: Any, task: str, say: Any = None) -> dict[str, Any]:
    """`controlnet=` for `AutoPipeline*.from_pretrained(folder)` (empty without --control): the one call site in
    loading.load_pipeline. Checked against the folder's model_index.json and UNet/transformer config first."""
    if not getattr(opts, "controlnets", ()):
        return {}
    from difftool.loading.index import PipelineIndex

    loaded = controlnets(tuple(opts.controlnets), ref.label, PipelineIndex.read(folder).class_name,
                         denoiser_config(folder), dtype, task, variant=opts.variant, allow_pickle=opts.allow_pickle,
                         refresh=opts.refresh, say=say)
    return {"controlnet": loaded.value}


def attach(auto: Any, pipe: Any, ref: Any, opts: Any, dtype: Any, task: str, say: Any = None) -> Any:
    """A loaded (single-file) pipeline switched to its ControlNet pipeline for `task`, sharing its components."""
    loaded = controlnets(tuple(opts.controlnets), ref.label, type(pipe).__name__, pipe_denoiser_config(pipe), dtype,
                         task, variant=opts.variant, allow_pickle=opts.allow_pickle, refresh=opts.refresh, say=say)
    try:
        return auto.from_pipe(pipe, controlnet=loaded.value)
    except ValueError as exc:
        raise ModelUnavailable(f"Model '{ref.label}' ({type(pipe).__name__}) has no ControlNet pipeline for this "
                               f"task: {str(exc).splitlines()[0]}") from exc


def union_mode(config: Any, family: str, mode: str | None, preprocess: str, label: str) -> int | None:
    """The `control_mode` index for a Union ControlNet: --control-mode, else the preprocessor's kind; None for
    ordinary ControlNets."""
    name = mode or {"canny": "canny", "depth": "depth", "pose": "pose", "lineart": "lineart", "softedge": "softedge",
                    "scribble": "scribble", "mlsd": "mlsd", "normal": "normal"}.get(preprocess.split(":")[0])
    table = UNION_MODES.get(family, {})
    if name is None:
        raise UsageError(f"ControlNet '{label}' is a Union model: say what the control image is with --control-mode "
                         f"({', '.join(table)}), or make it with --control-preprocess.")
    if name not in table:
        raise UsageError(f"--control-mode {name} is not a mode of ControlNet '{label}'; use one of {', '.join(table)}.")
    index = table[name]
    limit = getattr(config, "num_control_type", None) or getattr(config, "num_mode", None)
    if limit is not None and index >= int(limit):
        raise UsageError(f"--control-mode {name} (index {index}) is beyond ControlNet '{label}' ({limit} modes).")
    return index
