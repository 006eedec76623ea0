"""The built-in model registry: one source of truth for every alias, its hub id(s) and defaults.

Pure data: importing this module costs nothing, so `difftool models` and `--help` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Where models shipped inside the package live (the `tiny` model).
PACKAGED_WEIGHTS = Path(__file__).parent / "weights"

#: The model used when neither `-m`, `DIFFTOOL_MODEL` nor the config file names one.
#: SDXL base: the best openly licensed model in the registry, commercial use allowed, and it fits a
#: consumer GPU with 8 GB or more in fp16 (with `--offload model` below that). README, "Default model".
DEFAULT_MODEL = "sdxl"


@dataclass(frozen=True)
class ModelSpec:
    """An alias and what we know about the model behind it."""

    alias: str
    repo: str
    """Hub id (`org/name`), or a folder name under `PACKAGED_WEIGHTS` when `packaged` is true."""
    task: str
    """`text2img` (also serves img2img/inpaint through AutoPipeline) or `upscale`."""
    description: str
    family: str
    prior: str | None = None
    """Hub id of the unCLIP prior (Kandinsky)."""
    packaged: bool = False
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    scheduler: str | None = None
    """A name from `schedulers.SCHEDULERS`; None keeps the model's own."""
    strength: float = 0.6
    """Default img2img strength."""
    extra: dict[str, float] = field(default_factory=dict)
    """Other per-model defaults (e.g. prior steps, upscaler noise level, tile size)."""

    @property
    def local_path(self) -> Path | None:
        """The folder of a packaged model; None for hub models."""
        return PACKAGED_WEIGHTS / self.repo if self.packaged else None


MODELS: dict[str, ModelSpec] = {
    spec.alias: spec
    for spec in (
        ModelSpec(
            "tiny", "tiny", "text2img", "Tiny shapes model shipped with difftool (64 px, works offline)",
            "sd", packaged=True, steps=25, guidance=4.0, width=64, height=64,
        ),
        ModelSpec(
            "sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", "text2img", "Stable Diffusion 1.5",
            "sd", steps=30, guidance=7.5, width=512, height=512,
        ),
        ModelSpec(
            "sd21", "stabilityai/stable-diffusion-2-1", "text2img", "Stable Diffusion 2.1 (768 px, v-prediction)",
            "sd", steps=30, guidance=7.5, width=768, height=768,
        ),
        ModelSpec(
            "sdxl", "stabilityai/stable-diffusion-xl-base-1.0", "text2img", "Stable Diffusion XL base 1.0",
            "sdxl", steps=30, guidance=6.0, width=1024, height=1024,
        ),
        ModelSpec(
            "sd-turbo", "stabilityai/sd-turbo", "text2img", "SD-Turbo: 1-4 steps, no guidance (512 px)",
            "sd", steps=1, guidance=0.0, width=512, height=512, strength=0.5,
        ),
        ModelSpec(
            "sdxl-turbo", "stabilityai/sdxl-turbo", "text2img", "SDXL-Turbo: 1-4 steps, no guidance (512 px)",
            "sdxl", steps=1, guidance=0.0, width=512, height=512, strength=0.5,
        ),
        ModelSpec(
            "kandinsky21", "kandinsky-community/kandinsky-2-1", "text2img", "Kandinsky 2.1 (unCLIP prior + decoder)",
            "kandinsky", prior="kandinsky-community/kandinsky-2-1-prior", steps=50, guidance=4.0,
            width=768, height=768, extra={"prior_steps": 25, "prior_guidance": 4.0},
        ),
        ModelSpec(
            "kandinsky22", "kandinsky-community/kandinsky-2-2-decoder", "text2img",
            "Kandinsky 2.2 (unCLIP prior + decoder)", "kandinsky",
            prior="kandinsky-community/kandinsky-2-2-prior", steps=50, guidance=4.0, width=768, height=768,
            extra={"prior_steps": 25, "prior_guidance": 4.0},
        ),
        ModelSpec(
            "x4", "stabilityai/stable-diffusion-x4-upscaler", "upscale", "Stable Diffusion x4 upscaler",
            "upscaler", steps=50, guidance=7.5, extra={"noise_level": 20, "tile": 128, "scale": 4},
        ),
        ModelSpec(
            "x2-latent", "stabilityai/sd-x2-latent-upscaler", "upscale", "Stable Diffusion x2 latent upscaler",
            "upscaler", steps=20, guidance=0.0, extra={"tile": 256, "scale": 2},
        ),
        ModelSpec(
            "ldm-x4", "CompVis/ldm-super-resolution-4x-openimages", "upscale", "LDM x4 super-resolution",
            "upscaler", steps=100, extra={"tile": 128, "scale": 4},
        ),
    )
}


def get(alias: str) -> ModelSpec | None:
    """The spec for an alias, or None."""
    return MODELS.get(alias)


def by_repo(repo_id: str) -> ModelSpec | None:
    """The spec whose hub id is `repo_id`, so `-m org/name` still gets the alias' defaults."""
    for spec in MODELS.values():
        if not spec.packaged and spec.repo.lower() == repo_id.lower():
            return spec
    return None


# ---- image guides: ControlNets (`--control`) and IP-Adapters (`--ip-adapter`) -------------------------------

#: Base-model families a guide is made for, as difftool names them, with the words used in messages.
GUIDE_FAMILIES = {"sd": "Stable Diffusion 1.x/2.x", "sdxl": "Stable Diffusion XL", "sd3": "Stable Diffusion 3",
                  "flux": "Flux"}


@dataclass(frozen=True)
class GuideSpec:
    """An alias for a ControlNet or an IP-Adapter: where it lives and what it is for (not a pipeline: these
    are not `-m` models, so they live apart from MODELS)."""

    alias: str
    repo: str
    """Hub id."""
    family: str
    """The base family it fits (a key of GUIDE_FAMILIES)."""
    description: str
    preprocess: str | None = None
    """ControlNets: the --control-preprocess that makes its control image from a photo (a hint in messages)."""
    union: bool = False
    """A ControlNet Union (several control types in one model: needs --control-mode)."""
    subfolder: str = ""
    """IP-Adapters: the weights' folder in the repo."""
    weight_name: str | None = None
    """IP-Adapters: the safetensors file in `subfolder`."""
    image_encoder: str | None = None
    """IP-Adapters: the image encoder's folder in the repo (diffusers' default: `<subfolder>/image_encoder`)."""


CONTROLNETS: dict[str, GuideSpec] = {
    spec.alias: spec
    for spec in (
        GuideSpec("canny-sd15", "lllyasviel/control_v11p_sd15_canny", "sd", "ControlNet 1.1 canny edges (SD 1.5)",
                  preprocess="canny"),
        GuideSpec("depth-sd15", "lllyasviel/control_v11f1p_sd15_depth", "sd", "ControlNet 1.1 depth (SD 1.5)",
                  preprocess="depth"),
        GuideSpec("pose-sd15", "lllyasviel/control_v11p_sd15_openpose", "sd", "ControlNet 1.1 OpenPose (SD 1.5)",
                  preprocess="pose"),
        GuideSpec("lineart-sd15", "lllyasviel/control_v11p_sd15_lineart", "sd", "ControlNet 1.1 line art (SD 1.5)",
                  preprocess="lineart"),
        GuideSpec("canny-sdxl", "diffusers/controlnet-canny-sdxl-1.0", "sdxl", "SDXL ControlNet canny edges",
                  preprocess="canny"),
        GuideSpec("depth-sdxl", "diffusers/controlnet-depth-sdxl-1.0", "sdxl", "SDXL ControlNet depth",
                  preprocess="depth"),
        GuideSpec("union-sdxl", "xinsir/controlnet-union-sdxl-1.0", "sdxl",
                  "SDXL ControlNet Union (xinsir): pose, depth, canny, lineart, softedge, ... in one model", union=True),
        GuideSpec("canny-sd3", "InstantX/SD3-Controlnet-Canny", "sd3", "SD3 (medium) ControlNet canny edges",
                  preprocess="canny"),
        GuideSpec("canny-flux", "InstantX/FLUX.1-dev-Controlnet-Canny", "flux", "FLUX.1-dev ControlNet canny edges",
                  preprocess="canny"),
        GuideSpec("union-flux", "Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro", "flux",
                  "FLUX.1-dev ControlNet Union Pro: canny, tile, depth, blur, pose, gray, lq", union=True),
    )
}

IP_ADAPTERS: dict[str, GuideSpec] = {
    spec.alias: spec
    for spec in (
        GuideSpec("ip-adapter-sd15", "h94/IP-Adapter", "sd", "IP-Adapter for SD 1.5 (ViT-H image encoder)",
                  subfolder="models", weight_name="ip-adapter_sd15.safetensors"),
        GuideSpec("ip-adapter-plus-sd15", "h94/IP-Adapter", "sd", "IP-Adapter Plus for SD 1.5 (finer detail)",
                  subfolder="models", weight_name="ip-adapter-plus_sd15.safetensors"),
        GuideSpec("ip-adapter-sdxl", "h94/IP-Adapter", "sdxl", "IP-Adapter for SDXL (ViT-bigG image encoder)",
                  subfolder="sdxl_models", weight_name="ip-adapter_sdxl.safetensors"),
        GuideSpec("ip-adapter-sdxl-vit-h", "h94/IP-Adapter", "sdxl", "IP-Adapter for SDXL with the ViT-H encoder",
                  subfolder="sdxl_models", weight_name="ip-adapter_sdxl_vit-h.safetensors",
                  image_encoder="models/image_encoder"),
        GuideSpec("ip-adapter-plus-sdxl", "h94/IP-Adapter", "sdxl", "IP-Adapter Plus for SDXL (ViT-H encoder)",
                  subfolder="sdxl_models", weight_name="ip-adapter-plus_sdxl_vit-h.safetensors",
                  image_encoder="models/image_encoder"),
    )
}

#: The IP-Adapter `--image-prompt` uses without `--ip-adapter`, per base family.
DEFAULT_IP_ADAPTERS = {"sd": "ip-adapter-sd15", "sdxl": "ip-adapter-sdxl"}
