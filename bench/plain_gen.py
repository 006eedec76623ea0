"""The plain diffusers script that does what `difftool gen PROMPT -m FOLDER --steps N --seed S -W W -H H -o OUT`
does: load the folder with AutoPipelineForText2Image, one call with a seeded CPU generator, save the PNG.

    python bench/plain_gen.py FOLDER PROMPT STEPS SEED OUT [--dtype fp32|bf16] [--size PX]
"""

import argparse

import torch
from diffusers import AutoPipelineForText2Image

ap = argparse.ArgumentParser()
ap.add_argument("folder")
ap.add_argument("prompt")
ap.add_argument("steps", type=int)
ap.add_argument("seed", type=int)
ap.add_argument("out")
ap.add_argument("--dtype", default="fp32")
ap.add_argument("--size", type=int, default=None)
ap.add_argument("--stdin", action="store_true", help="prompts from stdin, one image each, all with SEED (as difftool)")
args = ap.parse_args()

dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
pipe = AutoPipelineForText2Image.from_pretrained(args.folder, dtype=dtype, use_safetensors=True)
pipe.set_progress_bar_config(disable=True)
size = {"height": args.size, "width": args.size} if args.size else {}
prompts = [line.strip() for line in __import__("sys").stdin if line.strip()] if args.stdin else [args.prompt]
for i, prompt in enumerate(prompts):
    image = pipe(prompt, num_inference_steps=args.steps, generator=torch.Generator("cpu").manual_seed(args.seed),
                 **size).images[0]
    image.save(args.out.replace(".png", f"-{i}.png") if len(prompts) > 1 else args.out)
