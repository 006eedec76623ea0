"""The built-in model registry: one source of truth for every alias, its hub id(s) and defaults.

Pure data: importing this module costs nothing, so `difftool models` and `--help` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Where models shipped inside the package live (the `tiny` and `tiny-unclip` models).
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
    strength: float | None = 0.6
    """Default img2img strength; None for edit models, whose pipelines take none."""
    extra: dict[str, float] = field(default_factory=dict)
    """Other per-model defaults (e.g. prior steps, upscaler noise level, tile size)."""
    tasks: tuple[str, ...] = ("text2img", "img2img", "inpaint")
    """The difftool tasks (gen = text2img, img2img, inpaint) diffusers' AutoPipelines map this model to."""
    edit: bool = False
    """An instruction-editing model: `img2img IMAGE "instruction"` edits the image (no --strength)."""
    max_sequence_length: int | None = None
    """Default `max_sequence_length` (text tokens) where it differs from the pipeline's own."""
    true_cfg: float | None = None
    """Default `true_cfg_scale` (real classifier-free guidance of Flux/Qwen-Image pipelines); None: the pipeline's."""
    license: str = ""
    """Licence of the weights, for `difftool models` and the README."""
    gated: bool = False
    """The Hub repo is gated: accept its terms on the model page and log in (HF_TOKEN or `hf auth login`)."""

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
            "tiny-unclip", "tiny-unclip", "text2img",
            "Tiny unCLIP shipped with difftool: CLIP + prior + decoder, Kandinsky 2.2 layout (64 px, works offline)",
            "kandinsky", packaged=True, steps=25, guidance=4.0, width=64, height=64,
            extra={"prior_steps": 25, "prior_guidance": 2.0}, tasks=("text2img", "img2img"),
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
        # ---- transformer (DiT) models. Defaults from the diffusers docs/pipeline docstrings and the model cards.
        ModelSpec(
            "flux-schnell", "black-forest-labs/FLUX.1-schnell", "text2img",
            "FLUX.1 [schnell]: 12B, 1-4 steps, no guidance", "flux", steps=4, guidance=0.0, width=1024,
            height=1024, max_sequence_length=256, license="apache-2.0",
        ),
        ModelSpec(
            "flux-dev", "black-forest-labs/FLUX.1-dev", "text2img",
            "FLUX.1 [dev]: 12B, guidance-distilled", "flux", steps=28, guidance=3.5, width=1024, height=1024,
            max_sequence_length=512, license="flux-1-dev-non-commercial", gated=True,
        ),
        ModelSpec(
            "flux-kontext", "black-forest-labs/FLUX.1-Kontext-dev", "text2img",
            "FLUX.1 Kontext [dev]: instruction editing (img2img IMAGE \"instruction\")", "flux", steps=28,
            guidance=2.5, width=1024, height=1024, strength=None, tasks=("text2img", "img2img"), edit=True,
            max_sequence_length=512, license="flux-1-dev-non-commercial", gated=True,
        ),
        ModelSpec(
            "flux2-dev", "black-forest-labs/FLUX.2-dev", "text2img",
            "FLUX.2 [dev]: 32B, Mistral Small 3.1 text encoder; img2img = reference editing", "flux2", steps=50,
            guidance=4.0, width=1024, height=1024, strength=None, tasks=("text2img", "img2img"), edit=True,
            license="flux-dev-non-commercial", gated=True,
        ),
        ModelSpec(
            "flux2-klein", "black-forest-labs/FLUX.2-klein-4B", "text2img",
            "FLUX.2 [klein] 4B: 4 steps, Qwen3 text encoder; img2img = reference editing", "flux2", steps=4,
            guidance=1.0, width=1024, height=1024, strength=None, tasks=("text2img", "img2img"), edit=True,
            license="apache-2.0",
        ),
        ModelSpec(
            "sd35-medium", "stabilityai/stable-diffusion-3.5-medium", "text2img",
            "Stable Diffusion 3.5 Medium: 2.5B MMDiT-X", "sd3", steps=40, guidance=4.5, width=1024, height=1024,
            license="stabilityai-community", gated=True,
        ),
        ModelSpec(
            "sd35-large", "stabilityai/stable-diffusion-3.5-large", "text2img",
            "Stable Diffusion 3.5 Large: 8.1B MMDiT", "sd3", steps=28, guidance=3.5, width=1024, height=1024,
            license="stabilityai-community", gated=True,
        ),
        ModelSpec(
            "sd35-large-turbo", "stabilityai/stable-diffusion-3.5-large-turbo", "text2img",
            "Stable Diffusion 3.5 Large Turbo: 4 steps, no guidance", "sd3", steps=4, guidance=0.0, width=1024,
            height=1024, strength=0.5, license="stabilityai-community", gated=True,
        ),
        ModelSpec(
            "qwen-image", "Qwen/Qwen-Image", "text2img",
            "Qwen-Image: 20B MMDiT, Qwen2.5-VL text encoder, strong text rendering", "qwen-image", steps=50,
            width=1328, height=1328, true_cfg=4.0, license="apache-2.0",
        ),
        ModelSpec(
            "qwen-image-edit", "Qwen/Qwen-Image-Edit-2509", "text2img",
            "Qwen-Image-Edit 2509: instruction editing (img2img IMAGE \"instruction\")", "qwen-image", steps=40,
            strength=None, tasks=("img2img",), edit=True, true_cfg=4.0, license="apache-2.0",
        ),
        ModelSpec(
            "z-image-turbo", "Tongyi-MAI/Z-Image-Turbo", "text2img",
            "Z-Image-Turbo: 6B, 8 steps, no guidance, Qwen3 text encoder", "z-image", steps=9, guidance=0.0,
            width=1024, height=1024, license="apache-2.0",
        ),
        ModelSpec(
            "sana", "Efficient-Large-Model/Sana_1600M_1024px_BF16_diffusers", "text2img",
            "Sana 1.6B (1024 px): linear DiT, Gemma 2 text encoder, 32x autoencoder", "sana", steps=20,
            guidance=4.5, width=1024, height=1024, tasks=("text2img",), license="nvidia-source-code-license (non-commercial)",
        ),
        ModelSpec(
            "chroma", "lodestones/Chroma1-HD", "text2img",
            "Chroma1-HD: 8.9B Flux-based, real CFG with negative prompts, T5 only", "chroma", steps=40,
            guidance=3.0, width=1024, height=1024, tasks=("text2img",), license="apache-2.0",
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
