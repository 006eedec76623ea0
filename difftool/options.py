"""Options shared by several commands, declared once as `Annotated` aliases.

Defaults are None wherever a value can also come from the environment, the config file or the
model registry: `config.lookup` decides, so the help text names the fallback instead of a value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

GEN = "Generation"
MODEL = "Model and device"
OUT = "Output"

Model = Annotated[
    Optional[str],
    typer.Option(
        "--model", "-m", help="Alias (see `difftool models`), hub id org/name or org/name@rev, pipeline folder, or .safetensors "
        "file. Default: $DIFFTOOL_MODEL, else sdxl.", rich_help_panel=MODEL, show_default=False,
    ),
]
Config = Annotated[
    Optional[str],
    typer.Option("--config", help="For a single-file checkpoint: a folder or hub id holding its pipeline configs.",
                 rich_help_panel=MODEL),
]
Device = Annotated[
    Optional[str],
    typer.Option("--device", help="auto|cpu|cuda|mps (auto: cuda, then mps, then cpu).", rich_help_panel=MODEL,
                 show_default=False),
]
Dtype = Annotated[
    Optional[str],
    typer.Option("--dtype", help="auto|fp16|bf16|fp32 (auto: fp16 on GPU, fp32 on CPU).", rich_help_panel=MODEL,
                 show_default=False),
]
AllowPickle = Annotated[
    bool, typer.Option("--allow-pickle", help="Allow pickle (.ckpt/.bin) weights, which can run code: only if you trust them.",
                       rich_help_panel=MODEL),
]
NoSafetyChecker = Annotated[
    bool, typer.Option("--no-safety-checker", help="Do not load the model's safety checker.", rich_help_panel=MODEL),
]
Refresh = Annotated[
    bool, typer.Option("--refresh", help="Check the Hub for a newer revision even when the model is cached.",
                       rich_help_panel=MODEL),
]
Negative = Annotated[Optional[str], typer.Option("--negative", help="Negative prompt.", rich_help_panel=GEN)]
Steps = Annotated[Optional[int], typer.Option("--steps", help="Denoising steps (default: the model's).",
                                              rich_help_panel=GEN, show_default=False)]
Guidance = Annotated[Optional[float], typer.Option("--guidance", help="Classifier-free guidance scale.",
                                                   rich_help_panel=GEN, show_default=False)]
Seed = Annotated[Optional[int], typer.Option("--seed",
                                             help="Seed of the first image; image i uses seed+i. Default: random.",
                                             rich_help_panel=GEN, show_default=False)]
Width = Annotated[Optional[int], typer.Option("--width", "-W", help="Width in pixels (multiple of 8).",
                                              rich_help_panel=GEN, show_default=False)]
Height = Annotated[Optional[int], typer.Option("--height", "-H", help="Height in pixels (multiple of 8).",
                                               rich_help_panel=GEN, show_default=False)]
MaxPixels = Annotated[Optional[int], typer.Option(
    "--max-pixels", help="Allow images up to this many pixels (width x height; default 16777216 = 4096x4096): the "
    "limit keeps a typo from filling memory.", rich_help_panel=GEN, show_default=False)]
NumImages = Annotated[int, typer.Option("--num-images", "-n", help="Images per prompt.", rich_help_panel=GEN)]
Scheduler = Annotated[
    Optional[str],
    typer.Option("--scheduler", help="euler, euler-a, ddim, dpm++2m, dpm++2m-karras, unipc, lcm, ... "
                 "(default: the model's).", rich_help_panel=GEN, show_default=False),
]
Output = Annotated[
    Optional[str],
    typer.Option("--output", "-o", help="File, folder, or template with {seed} {index} {prompt} {model} {date}. "
                 "Default: ./{prompt}-{seed}.png.", rich_help_panel=OUT, show_default=False),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing files.", rich_help_panel=OUT)]
Json = Annotated[bool, typer.Option("--json", help="One JSON object per image on stdout.", rich_help_panel=OUT)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or log lines on stderr.", rich_help_panel=OUT)]

ImagePath = Annotated[Path, typer.Argument(help="Input image.")]

PERF = "Speed and memory"
Offload = Annotated[
    Optional[str],
    typer.Option("--offload", help="model|group|sequential: keep weights in CPU memory and move them to the GPU as "
                 "needed (diffusers' enable_model_cpu_offload / enable_group_offload / enable_sequential_cpu_offload; "
                 "least memory last).", rich_help_panel=PERF, show_default=False),
]
Quantize = Annotated[
    Optional[str],
    typer.Option("--quantize", help="int8|fp8|int4|nf4: quantize the transformer/UNet while loading (int8: torchao, "
                 "CPU and GPU; fp8/int4: torchao, CUDA; nf4: bitsandbytes, CUDA). Needs difftool[quant].",
                 rich_help_panel=PERF, show_default=False),
]
QuantizeText = Annotated[
    Optional[str],
    typer.Option("--quantize-text", help="int8|fp8|int4|nf4: quantize the text encoders (T5-XXL, Qwen, Mistral, ...) "
                 "the same way.", rich_help_panel=PERF, show_default=False),
]
Transformer = Annotated[
    Optional[str],
    typer.Option("--transformer", help="A .safetensors or .gguf file of the transformer (fine-tune, GGUF "
                 "quantization), loaded with the configs of the -m model.", rich_help_panel=MODEL, show_default=False),
]
Cache = Annotated[
    Optional[str],
    typer.Option("--cache", help="first-block|taylorseer|faster|mag: diffusers' step cache on the transformer "
                 "(faster, slightly different images). Default: off.", rich_help_panel=PERF, show_default=False),
]
CacheThreshold = Annotated[
    Optional[float],
    typer.Option("--cache-threshold", help="--cache first-block (default 0.05) or mag (0.06): higher = faster, less "
                 "faithful.", rich_help_panel=PERF, show_default=False),
]
VaeTiling = Annotated[bool, typer.Option("--vae-tiling", help="Decode the image in tiles (large sizes, less memory).",
                                         rich_help_panel=PERF)]
VaeSlicing = Annotated[bool, typer.Option("--vae-slicing", help="Decode batch images one at a time (less memory).",
                                          rich_help_panel=PERF)]
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile the denoiser (slow first image, faster after).",
                                       rich_help_panel=PERF)]
TinyVae = Annotated[
    Optional[str],
    typer.Option("--tiny-vae", help="Decode with a tiny autoencoder (AutoencoderTiny), e.g. madebyollin/taesd or "
                 "madebyollin/taesdxl: much faster decode, slightly softer images.", rich_help_panel=PERF,
                 show_default=False),
]

From = Annotated[
    Optional[Path],
    typer.Option("--from", help="Re-run the settings stored in this image (difftool's or A1111's); options you "
                 "type win.", rich_help_panel=GEN, show_default=False, dir_okay=False),
]
Lora = Annotated[
    Optional[list[str]],
    typer.Option("--lora", help="LoRA REF[:SCALE], repeatable: a .safetensors file, a hub id, or "
                 "hubid/weight_name.safetensors (scale default 1).", rich_help_panel=MODEL, show_default=False),
]
Grid = Annotated[bool, typer.Option("--grid", help="Also write one contact sheet of all the images.",
                                    rich_help_panel=OUT)]

TrueCfg = Annotated[
    Optional[float],
    typer.Option("--true-cfg", help="Flux/Qwen-Image: real classifier-free guidance scale (true_cfg_scale; "
                 "> 1 turns it on and makes --negative work, at twice the cost per step).", rich_help_panel=GEN,
                 show_default=False),
]
MaxSequenceLength = Annotated[
    Optional[int],
    typer.Option("--max-sequence-length", help="Text tokens the T5/LLM text encoder reads (default: the "
                 "model's, e.g. 512; FLUX.1 schnell 256).", rich_help_panel=GEN, show_default=False),
]

Strength = Annotated[
    Optional[float],
    typer.Option("--strength", help="How much to change the input, 0..1 (img2img default: the "
                 "model's, e.g. 0.6; inpaint: the pipeline's, 1.0 = repaint the masked area fully).",
                 rich_help_panel=GEN, show_default=False),
]

UNCLIP = "unCLIP prior (Kandinsky)"
Prior = Annotated[
    Optional[str],
    typer.Option("--prior", help="Kandinsky 2.1/2.2: the prior (folder, hub id, or alias whose prior to use); needed "
                 "for a decoder folder that does not name its prior. Default: the model's own.", rich_help_panel=UNCLIP,
                 show_default=False),
]
PriorSteps = Annotated[Optional[int], typer.Option("--prior-steps", help="Kandinsky prior denoising steps "
                                                   "(default: the model's, 25).", rich_help_panel=UNCLIP,
                                                   show_default=False)]
PriorGuidance = Annotated[Optional[float], typer.Option("--prior-guidance", help="Kandinsky prior guidance "
                                                        "scale (default: the model's, 4).", rich_help_panel=UNCLIP,
                                                        show_default=False)]

Weighting = Annotated[
    Optional[str],
    typer.Option("--weighting", help="Prompt syntax: a1111 ((word:1.3), (word), [word], \\( escapes, BREAK; prompts "
                 "past 75 tokens in chunks), compel (word++, (words)1.3, .blend()), off (the text as typed). "
                 "Default: a1111.", rich_help_panel=GEN, show_default=False),
]
ClipSkip = Annotated[
    Optional[int],
    typer.Option("--clip-skip", help="Skip the last N layers of the CLIP text encoder (diffusers' clip_skip; "
                 "A1111's \"Clip skip: 2\" is 1 on SD 1.x).", rich_help_panel=GEN, show_default=False),
]
LoraDir = Annotated[
    Optional[list[str]],
    typer.Option("--lora-dir", help="Folder where <lora:name:0.8> tags in prompts are looked up (subfolders "
                 "included; repeatable). Default: lora-dir in the config file.", rich_help_panel=MODEL,
                 show_default=False),
]

HIRES = "Hires fix"
Hires = Annotated[
    Optional[float],
    typer.Option("--hires", metavar="SCALE", help="Hires fix: make the image at -W/-H, enlarge it "
                 "SCALE times, then refine it by image to image with the same seed (A1111's two passes).",
                 rich_help_panel=HIRES, show_default=False),
]
HiresSteps = Annotated[Optional[int], typer.Option("--hires-steps", help="Steps of the second pass (default: "
                                                   "the first pass's).", rich_help_panel=HIRES, show_default=False)]
HiresDenoise = Annotated[Optional[float], typer.Option("--hires-denoise", help="How much the second "
                                                       "pass may change the enlarged image, 0..1 (default 0.7).",
                                                       rich_help_panel=HIRES, show_default=False)]
HiresUpscaler = Annotated[
    Optional[str],
    typer.Option("--hires-upscaler", help="latent (default: latents enlarged, as A1111's Latent), latent-bicubic, "
                 "latent-nearest, ..., lanczos (the decoded image resized), or an upscaler model (x4, x2-latent, ...).",
                 rich_help_panel=HIRES, show_default=False),
]

GUIDES = "Image guides (ControlNet, IP-Adapter)"
Control = Annotated[
    Optional[list[str]],
    typer.Option("--control", help="ControlNet MODEL:IMAGE[:SCALE], repeatable (several = multi-ControlNet): MODEL an "
                 "alias (canny-sd15, depth-sdxl, union-sdxl, canny-flux, ...), hub id or folder; IMAGE the control "
                 "image, fitted to the output size; SCALE default 1.", rich_help_panel=GUIDES, show_default=False),
]
ControlPreprocess = Annotated[
    Optional[list[str]],
    typer.Option("--control-preprocess", help="Make the control image from IMAGE: none (default: IMAGE is one "
                 "already), canny[:LOW:HIGH], depth[:MODEL], pose, lineart, softedge, scribble, mlsd, normal. Once "
                 "for every --control, or once per --control in order.", rich_help_panel=GUIDES, show_default=False),
]
ControlMode = Annotated[
    Optional[list[str]],
    typer.Option("--control-mode", help="ControlNet Union: what the control image is (canny, depth, pose, lineart, "
                 "softedge, tile, ...); default: from --control-preprocess. Once, or once per --control.",
                 rich_help_panel=GUIDES, show_default=False),
]
ControlStart = Annotated[Optional[float], typer.Option(
    "--control-start", help="Fraction of the steps at which the ControlNets start (default 0).",
    rich_help_panel=GUIDES, show_default=False)]
ControlEnd = Annotated[Optional[float], typer.Option(
    "--control-end", help="Fraction of the steps at which the ControlNets stop (default 1).",
    rich_help_panel=GUIDES, show_default=False)]
ImagePrompt = Annotated[
    Optional[list[str]],
    typer.Option("--image-prompt", help="IP-Adapter image prompt IMAGE[:SCALE], repeatable (each its own scale, "
                 "default 1): the result takes the look of the image.", rich_help_panel=GUIDES, show_default=False),
]
IpAdapter = Annotated[
    Optional[str],
    typer.Option("--ip-adapter", help="IP-Adapter for --image-prompt: an alias (ip-adapter-sd15, ip-adapter-sdxl, "
                 "ip-adapter-plus-sd15, ...), org/name/SUBFOLDER/WEIGHT.safetensors, or a local weights file. "
                 "Default: the model family's standard adapter.", rich_help_panel=GUIDES, show_default=False),
]
NoServer = Annotated[bool, typer.Option(
    "--no-server", help="Run here even when a `difftool serve` is running (it is used by itself otherwise: the "
    "per-user socket, or $DIFFTOOL_SERVER).", rich_help_panel=OUT)]
