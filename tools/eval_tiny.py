#!/usr/bin/env python
"""Measure what the tiny model draws: held-out captions, several seeds, a deterministic judge.

    python tools/eval_tiny.py                                  # difftool/weights/tiny, 40 captions x 5 seeds
    python tools/eval_tiny.py --model /tmp/tiny_full --guidance 3 5 --steps 25
    python tools/eval_tiny.py --vae-only                       # judge VAE reconstructions (the VAE's ceiling)
    python tools/eval_tiny.py --no-position-captions --train-combos   # two more suites

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
def generate(pipe, scenes, seeds, steps: int, guidance: float, batch: int = 40,
             with_position: bool = True) -> list[tuple[int, int, np.ndarray]]:
    """(seed, scene index, image) for every seed and held-out scene."""
    out = []
    for s in seeds:
        for start in range(0, len(scenes), batch):
            chunk = list(range(start, min(start + batch, len(scenes))))
            gens = [torch.Generator().manual_seed(1000 * s + i) for i in chunk]
            ims = pipe([tiny_data.caption(scenes[i], with_position) for i in chunk], num_inference_steps=steps,
                       guidance_scale=guidance, generator=gens, output_type="np").images
            for i, im in zip(chunk, ims):
                out.append((s, i, (im * 255).round().clip(0, 255).astype(np.uint8)))
    return out


def fill_ratio(img: np.ndarray) -> float | None:
    """Shape-region area over its bounding-box area: circle 0.78, square 1.0, triangle 0.53, cross 0.64
    when drawn sharp. A judge-free look at how crisp the shapes are (rounded squares score < 1)."""
    _, m = tiny_judge.region_of(img)
    if m.sum() < tiny_judge.MIN_REGION:
        return None
    ys, xs = np.nonzero(m)
    return float(m.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1)))


def fill_line(images, scenes) -> str:
    by: dict[str, list[float]] = {s: [] for s in tiny_data.SHAPES}
    for img, sc in zip(images, scenes):
        f = fill_ratio(img)
        if f is not None:
            by[sc.shape].append(f)
    return ", ".join(f"{k} {np.mean(v):.2f}" for k, v in by.items() if v)


def table(rows: list[dict]) -> str:
    head = "| setting | colour | background | position | shape | all four | n |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = ["n/a" if r[a] is None else f"{100 * r[a]:.1f}%" for a in ATTRS]
        lines.append(f"| {r['setting']} | " + " | ".join(cells) + f" | {r['n']} |")
    return "\n".join(lines)


def summarize(setting: str, scored: list[dict]) -> dict:
    r = {"setting": setting, "n": len(scored)}
    for a in ATTRS:
        vals = [s[a] for s in scored if s.get(a) is not None]
        r[a] = float(np.mean(vals)) if vals else None
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
    ap.add_argument("--no-position-captions", action="store_true",
                    help="also score the held-out combinations with captions that leave the position out")
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
            print(f"{name}: mean fill ratio by shape: {fill_line(batch, scenes)}")
        save_grid(list(rec[:40]), args.report_dir / "vae_recon.png")
    else:
        pipe = load(args.model, None if args.scheduler == "model" else args.scheduler)
        seeds = list(range(args.seeds))
        suites = [("held-out", held, True)]
        if args.no_position_captions:
            suites.append(("held-out no-position", held, False))
        if args.train_combos:
            train = tiny_data.train_scenes()
            rng = np.random.default_rng(99)
            suites.append(("train", [train[i] for i in rng.choice(len(train), size=40, replace=False)], True))
        for steps in args.steps:
            for g in args.guidance:
                for name, scenes, with_pos in suites:
                    t0 = time.time()
                    gen = generate(pipe, scenes, seeds, steps, g, with_position=with_pos)
                    readings = tiny_judge.judge([im for _, _, im in gen])
                    scored = [tiny_judge.score(r, scenes[i]) for (_, i, _), r in zip(gen, readings)]
                    if not with_pos:  # position not asked for: not scored
                        for sc in scored:
                            sc["position"] = None
                            sc["all"] = sc["color"] and sc["background"] and sc["shape"]
                    setting = f"{name}, {args.scheduler}, {steps} steps, guidance {g:g}"
                    row = summarize(setting, scored)
                    row["seconds"] = round(time.time() - t0, 1)
                    rows.append(row)
                    row["fill_ratio"] = fill_line([im for _, _, im in gen], [scenes[i] for _, i, _ in gen])
                    print(table([row]).splitlines()[-1], f"({row['seconds']}s)", flush=True)
                    print(f"  mean fill ratio by asked shape: {row['fill_ratio']}", flush=True)
                    tag = f"{name}_{args.scheduler}_s{steps}_g{g:g}"
                    save_grid([im for s, _, im in gen if s == 0], args.report_dir / f"{tag}.png")
                    with open(args.report_dir / f"{tag}.jsonl", "w") as f:
                        for (s, i, _), r, sc in zip(gen, readings, scored):
                            f.write(json.dumps({"seed": s, "caption": tiny_data.caption(scenes[i], with_pos),
                                                "read": [r.color, r.shape, r.position, r.background],
                                                **sc}) + "\n")
    print()
    print(table(rows))
    (args.report_dir / "report.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
