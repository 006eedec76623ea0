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
Steps = Annotated[Optional[int], typer.Option("--steps", min=1, help="Denoising steps (default: the model's).",
                                              rich_help_panel=GEN, show_default=False)]
Guidance = Annotated[Optional[float], typer.Option("--guidance", min=0.0, help="Classifier-free guidance scale.",
                                                   rich_help_panel=GEN, show_default=False)]
Seed = Annotated[Optional[int], typer.Option("--seed", min=0, max=2**63 - 1,
                                             help="Seed of the first image; image i uses seed+i. Default: random.",
                                             rich_help_panel=GEN, show_default=False)]
Width = Annotated[Optional[int], typer.Option("--width", "-W", min=8, help="Width in pixels (multiple of 8).",
                                              rich_help_panel=GEN, show_default=False)]
Height = Annotated[Optional[int], typer.Option("--height", "-H", min=8, help="Height in pixels (multiple of 8).",
                                               rich_help_panel=GEN, show_default=False)]
NumImages = Annotated[int, typer.Option("--num-images", "-n", min=1, help="Images per prompt.", rich_help_panel=GEN)]
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
    typer.Option("--true-cfg", min=1.0, help="Flux/Qwen-Image: real classifier-free guidance scale (true_cfg_scale; "
                 "> 1 turns it on and makes --negative work, at twice the cost per step).", rich_help_panel=GEN,
                 show_default=False),
]
MaxSequenceLength = Annotated[
    Optional[int],
    typer.Option("--max-sequence-length", min=1, help="Text tokens the T5/LLM text encoder reads (default: the "
                 "model's, e.g. 512; FLUX.1 schnell 256).", rich_help_panel=GEN, show_default=False),
]

Strength = Annotated[
    Optional[float],
    typer.Option("--strength", min=0.0, max=1.0, help="How much to change the input, 0..1 (img2img default: the "
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
PriorSteps = Annotated[Optional[int], typer.Option("--prior-steps", min=1, help="Kandinsky prior denoising steps "
                                                   "(default: the model's, 25).", rich_help_panel=UNCLIP,
                                                   show_default=False)]
PriorGuidance = Annotated[Optional[float], typer.Option("--prior-guidance", min=0.0, help="Kandinsky prior guidance "
                                                        "scale (default: the model's, 4).", rich_help_panel=UNCLIP,
                                                        show_default=False)]
