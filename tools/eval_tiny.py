#!/usr/bin/env python
"""Measure what the tiny model draws: held-out captions, several seeds, a deterministic judge.

    python tools/eval_tiny.py                                  # difftool/weights/tiny, 40 captions x 5 seeds
    python tools/eval_tiny.py --model /tmp/tiny_full --guidance 3 5 --steps 25
    python tools/eval_tiny.py --vae-only                       # judge VAE reconstructions (the VAE's ceiling)

The captions are the 40 (colour, shape, position, background) combinations that training never saw
(``tiny_data.held_out_scenes``), each with its position stated ("a red circle on the left, blue
background"). Image i of seed s uses ``torch.Generator().manual_seed(1000 * s + i)``. The judge
(``tools/tiny_judge.py``) reads colour, background, position and shape back from the pixels.
Prints one table row per setting and writes a JSON report and a picture grid under --report-dir.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tiny_data  # noqa: E402
import tiny_judge  # noqa: E402

ATTRS = ("color", "background", "position", "shape", "all")
REPO = Path(__file__).resolve().parent.parent


def load(model: Path, scheduler: str | None = None):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(model), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    if scheduler == "euler":
        from diffusers import EulerDiscreteScheduler

        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    elif scheduler == "dpm":
        from diffusers import DPMSolverMultistepScheduler

        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    return pipe


@torch.no_grad()
def generate(pipe, scenes, seeds, steps: int, guidance: float, batch: int = 40) -> list[tuple[int, int, np.ndarray]]:
    """(seed, scene index, image) for every seed and held-out scene."""
    out = []
    for s in seeds:
        for start in range(0, len(scenes), batch):
            chunk = list(range(start, min(start + batch, len(scenes))))
            gens = [torch.Generator().manual_seed(1000 * s + i) for i in chunk]
            ims = pipe([tiny_data.caption(scenes[i]) for i in chunk], num_inference_steps=steps,
                       guidance_scale=guidance, generator=gens, output_type="np").images
            for i, im in zip(chunk, ims):
                out.append((s, i, (im * 255).round().clip(0, 255).astype(np.uint8)))
    return out


def table(rows: list[dict]) -> str:
    head = "| setting | colour | background | position | shape | all four | n |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['setting']} | " + " | ".join(f"{100 * r[a]:.1f}%" for a in ATTRS) + f" | {r['n']} |")
    return "\n".join(lines)


def summarize(setting: str, scored: list[dict]) -> dict:
    r = {"setting": setting, "n": len(scored)}
    for a in ATTRS:
        r[a] = float(np.mean([s[a] for s in scored]))
    return r


def save_grid(images: list[np.ndarray], path: Path, per_row: int = 20) -> None:
    from PIL import Image

    rows = [images[i:i + per_row] for i in range(0, len(images), per_row)]
    blank = np.zeros_like(images[0])
    rows[-1] = rows[-1] + [blank] * (per_row - len(rows[-1]))
    Image.fromarray(np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)).save(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "difftool" / "weights" / "tiny")
    ap.add_argument("--seeds", type=int, default=5, help="seeds per caption (0..N-1)")
    ap.add_argument("--steps", type=int, nargs="+", default=[25])
    ap.add_argument("--guidance", type=float, nargs="+", default=[4.0])
    ap.add_argument("--scheduler", choices=["model", "euler", "dpm"], default="model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-combos", action="store_true",
                    help="also score 40 combinations seen in training, for comparison")
    ap.add_argument("--vae-only", action="store_true", help="score VAE reconstructions of procedural images instead")
    ap.add_argument("--report-dir", type=Path, default=Path("/tmp/tiny_eval"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.report_dir.mkdir(parents=True, exist_ok=True)

    held = tiny_data.held_out_scenes()
    rows = []
    if args.vae_only:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(str(args.model / "vae") if (args.model / "vae").exists() else str(args.model),
                                            dtype=torch.float32).eval()
        imgs, _, scenes = tiny_data.make_dataset(400, seed=4321, scenes=tiny_data.all_scenes())
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            y = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
        rec = ((y + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        for name, batch in (("procedural images", imgs), ("VAE reconstructions", rec)):
            scored = [tiny_judge.score(r, s) for r, s in zip(tiny_judge.judge(batch), scenes)]
            rows.append(summarize(name, scored))
        save_grid(list(rec[:40]), args.report_dir / "vae_recon.png")
    else:
        pipe = load(args.model, None if args.scheduler == "model" else args.scheduler)
        seeds = list(range(args.seeds))
        suites = [("held-out", held)]
        if args.train_combos:
            train = tiny_data.train_scenes()
            rng = np.random.default_rng(99)
            suites.append(("train", [train[i] for i in rng.choice(len(train), size=40, replace=False)]))
        for steps in args.steps:
            for g in args.guidance:
                for name, scenes in suites:
                    t0 = time.time()
                    gen = generate(pipe, scenes, seeds, steps, g)
                    readings = tiny_judge.judge([im for _, _, im in gen])
                    scored = [tiny_judge.score(r, scenes[i]) for (_, i, _), r in zip(gen, readings)]
                    setting = f"{name}, {args.scheduler}, {steps} steps, guidance {g:g}"
                    row = summarize(setting, scored)
                    row["seconds"] = round(time.time() - t0, 1)
                    rows.append(row)
                    print(table([row]).splitlines()[-1], f"({row['seconds']}s)", flush=True)
                    tag = f"{name}_{args.scheduler}_s{steps}_g{g:g}"
                    save_grid([im for s, _, im in gen if s == 0], args.report_dir / f"{tag}.png")
                    with open(args.report_dir / f"{tag}.jsonl", "w") as f:
                        for (s, i, _), r, sc in zip(gen, readings, scored):
                            f.write(json.dumps({"seed": s, "caption": tiny_data.caption(scenes[i]),
                                                "read": [r.color, r.shape, r.position, r.background],
                                                **sc}) + "\n")
    print()
    print(table(rows))
    (args.report_dir / "report.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
