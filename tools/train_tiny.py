#!/usr/bin/env python
"""Train difftool's tiny shipped text-to-image model (Stable Diffusion pipeline format).

Not imported by the CLI. Builds a procedural dataset (tools/tiny_data.py), then trains

1. a small AutoencoderKL (64x64x3 <-> 16x16x4 latents),
2. a UNet2DConditionModel and a small CLIPTextModel jointly (v-prediction, zero-terminal-SNR
   schedule, min-SNR-style loss weights, 10% caption dropout for classifier-free guidance, EMA),

and saves a ``StableDiffusionPipeline`` (fp16 safetensors) that loads with
``StableDiffusionPipeline.from_pretrained(out)`` / ``AutoPipelineFor*.from_pretrained(out)``.

    python tools/train_tiny.py --out difftool/weights/tiny            # full run (~70 min, 2 cores)
    python tools/train_tiny.py --quick --out /tmp/tiny_quick          # smoke run, a few minutes

Seeded and reproducible for a given thread count (--threads).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tiny_data  # noqa: E402

# ----------------------------------------------------------------------------------------------
# Model definitions
# ----------------------------------------------------------------------------------------------

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    timestep_spacing="trailing",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,  # unused with "trailing" spacing; 1 avoids a diffusers deprecation warning
)


def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        mid_block_add_attention=False,
    )


def make_unet(cross_dim: int):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16,  # 16x16 latents * vae scale factor 4 = 64x64 px default size
        in_channels=4,
        out_channels=4,
        block_out_channels=(64, 96, 128),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_dim,
        attention_head_dim=8,
        norm_num_groups=16,
    )


def make_text_encoder(tok):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=64,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return CLIPTextModel(cfg)


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------

def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_tensor(images_u8: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return torch.from_numpy(images_u8).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------
# Stage 1: VAE
# ----------------------------------------------------------------------------------------------

def train_vae(images: np.ndarray, steps: int, batch: int, lr: float, seed: int):
    seed_all(seed)
    vae = make_vae()
    log(f"VAE: {n_params(vae) / 1e6:.3f}M params, {steps} steps x {batch}")
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    vae.train()
    for step in range(steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, steps, lr, warmup=100)
        idx = torch.randint(0, len(images), (batch,), generator=g)
        x = to_tensor(images[idx.numpy()])
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        y = vae.decode(z).sample
        rec = (y - x).abs().mean() + F.mse_loss(y, x)
        # edge term: match horizontal/vertical differences so corners and edges stay sharp
        edge = (torch.diff(y, dim=-1) - torch.diff(x, dim=-1)).abs().mean() + (
            torch.diff(y, dim=-2) - torch.diff(x, dim=-2)
        ).abs().mean()
        kl = post.kl().mean() / (4 * 16 * 16)
        loss = rec + 0.5 * edge + 1e-5 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            el = time.time() - t0
            log(f"vae step {step}/{steps} loss {loss.item():.4f} l1 {(y - x).abs().mean().item():.4f} kl {kl.item():.2f} ({el:.0f}s)")
    vae.eval()
    return vae


@torch.no_grad()
def vae_report(vae, path: Path, seed: int) -> None:
    """Reconstruction error on fresh scenes (held-out combinations included) and a picture grid."""
    from PIL import Image

    imgs, _, _ = tiny_data.make_dataset(64, seed=seed + 999, scenes=tiny_data.all_scenes())
    x = to_tensor(imgs)
    y = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
    err = (y - x).abs().mul(127.5)
    log(f"VAE recon: mean abs err {err.mean():.2f}/255, pixels off by >32: {(err.amax(1) > 32).float().mean() * 100:.2f}%")
    rec = ((y + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    top = np.concatenate(list(imgs[:16]), axis=1)
    bot = np.concatenate(list(rec[:16]), axis=1)
    Image.fromarray(np.concatenate([top, bot], axis=0)).save(path)


def _box_masks(n: int, g: torch.Generator, size: int = 16) -> torch.Tensor:
    """n random axis-aligned boxes (3..13 latent pixels a side) as a float mask n x 1 x size x size."""
    m = torch.zeros(n, 1, size, size)
    for i in range(n):
        h, w = (int(v) for v in torch.randint(3, 14, (2,), generator=g))
        y, x = int(torch.randint(0, size - h + 1, (1,), generator=g)), int(torch.randint(0, size - w + 1, (1,), generator=g))
        m[i, :, y:y + h, x:x + w] = 1.0
    return m


def finetune_decoder(vae, images: np.ndarray, mu: torch.Tensor, steps: int, batch: int, lr: float, seed: int):
    """Stage 1b: teach the decoder to decode each region from its own latents (encoder frozen).

    The decoder's GroupNorms see the whole latent: latents that an inpainting run changes inside its
    mask shift the statistics and tint/blur the untouched part of the picture. Here half of each batch
    is a composite: latents of image B pasted into those of image A inside a random box, with the
    pixel composite (box upsampled x4) as the target. The encoder, so the latent space the UNet was
    trained on, does not change.
    """
    seed_all(seed + 3)
    g = torch.Generator().manual_seed(seed + 3)
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    log(f"decoder fine-tune (composites): {steps} steps x {batch}")
    t0 = time.time()
    vae.train()
    for step in range(steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, steps, lr, warmup=50)
        ia = torch.randint(0, len(images), (batch,), generator=g)
        ib = torch.randint(0, len(images), (batch,), generator=g)
        xa, xb = to_tensor(images[ia.numpy()]), to_tensor(images[ib.numpy()])
        m = _box_masks(batch, g) * (torch.rand(batch, 1, 1, 1, generator=g) < 0.5)
        z = mu[ia] * (1 - m) + mu[ib] * m
        z = z + 0.05 * torch.randn(z.shape, generator=g)  # about the encoder's posterior std
        mp = F.interpolate(m, scale_factor=4, mode="nearest")
        x = xa * (1 - mp) + xb * mp
        y = vae.decode(z).sample
        edge = (torch.diff(y, dim=-1) - torch.diff(x, dim=-1)).abs().mean() + (
            torch.diff(y, dim=-2) - torch.diff(x, dim=-2)
        ).abs().mean()
        loss = (y - x).abs().mean() + F.mse_loss(y, x) + 0.5 * edge
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"decoder step {step}/{steps} loss {loss.item():.4f} ({time.time() - t0:.0f}s)")
    vae.requires_grad_(True)
    return vae.eval()


@torch.no_grad()
def locality_report(vae, seed: int) -> float:
    """Mean error (/255) outside a pasted box when decoding composite latents: 0 for a local decoder."""
    imgs, _, _ = tiny_data.make_dataset(64, seed=seed + 998, scenes=tiny_data.all_scenes())
    x = to_tensor(imgs)
    mu = vae.encode(x).latent_dist.mean
    g = torch.Generator().manual_seed(seed + 997)
    m = _box_masks(32, g)
    z = mu[:32] * (1 - m) + mu[32:] * m
    mp = F.interpolate(m, scale_factor=4, mode="nearest")
    # compare outside the box, 4 px away from its edge
    far = F.max_pool2d(mp, 9, stride=1, padding=4) == 0
    y = vae.decode(z).sample.clamp(-1, 1)
    err = (y - x[:32]).abs().mul(127.5).mean(1, keepdim=True)
    v = float(err[far].mean())
    log(f"VAE locality: mean error outside a pasted region {v:.2f}/255")
    return v


@torch.no_grad()
def encode_all(vae, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    out = []
    for i in range(0, len(images), batch):
        out.append(vae.encode(to_tensor(images[i : i + batch])).latent_dist.mean)
    return torch.cat(out)


# ----------------------------------------------------------------------------------------------
# Stage 2: UNet + text encoder
# ----------------------------------------------------------------------------------------------

def train_unet(latents: torch.Tensor, token_ids: torch.Tensor, empty_ids: torch.Tensor, tok, steps: int,
               batch: int, lr: float, seed: int, cfg_drop: float, snr_clip: tuple[float, float],
               ema_decay: float, deadline: float | None = None, init=None, warmup: int = 200):
    from diffusers import DDIMScheduler

    seed_all(seed + 1)
    if init is not None:  # continue from an earlier run's (unet, text_encoder)
        unet, te = init
        unet.train().requires_grad_(True)
        te.train().requires_grad_(True)
    else:
        te = make_text_encoder(tok)
        unet = make_unet(te.config.hidden_size)
    log(f"UNet: {n_params(unet) / 1e6:.3f}M params; text encoder: {n_params(te) / 1e6:.3f}M; {steps} steps x {batch}")
    sched = DDIMScheduler(**SCHEDULER_CONFIG)
    ac = sched.alphas_cumprod.float()  # zero terminal SNR: ac[-1] == 0
    alpha = ac.sqrt()
    sigma = (1 - ac).sqrt()
    snr = ac / (1 - ac).clamp(min=1e-8)
    # weight of the v-loss: clip(SNR, lo, hi) in x0-space, i.e. divided by (SNR + 1) for v
    w_v = snr.clamp(snr_clip[0], snr_clip[1]) / (snr + 1)

    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2, betas=(0.9, 0.99))
    ema_unet = copy.deepcopy(unet).requires_grad_(False)
    ema_te = copy.deepcopy(te).requires_grad_(False)
    ema_pairs = list(zip(list(ema_unet.parameters()) + list(ema_te.parameters()), params))

    if steps == 0:
        assert init is not None, "--unet-steps 0 needs --resume"
        return unet.eval(), te.eval(), 0
    g = torch.Generator().manual_seed(seed + 2)
    n = len(latents)
    t0 = time.time()
    avg = None
    unet.train()
    te.train()
    for step in range(steps):
        cur_lr = lr_at(step, steps, lr, warmup=warmup)
        for pg in opt.param_groups:
            pg["lr"] = cur_lr
        idx = torch.randint(0, n, (batch,), generator=g)
        x0 = latents[idx]
        # caption variant: with position (0) or without (1)
        variant = (torch.rand(batch, generator=g) < tiny_data.NO_POSITION_FRACTION).long()
        ids = token_ids[idx, variant]
        drop = torch.rand(batch, generator=g) < cfg_drop
        ids = torch.where(drop[:, None], empty_ids[None, :], ids)
        t = torch.randint(0, sched.config.num_train_timesteps, (batch,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        a = alpha[t].view(-1, 1, 1, 1)
        s = sigma[t].view(-1, 1, 1, 1)
        xt = a * x0 + s * noise
        v = a * noise - s * x0
        emb = te(ids).last_hidden_state
        pred = unet(xt, t, emb).sample
        per = (pred - v).pow(2).mean(dim=(1, 2, 3))
        loss = (per * w_v[t]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        d = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in ema_pairs:
                pe.lerp_(p, 1 - d)
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        stop = deadline is not None and time.time() > deadline
        if stop:
            log(f"unet: wall-time budget reached, stopping after step {step} of {steps}")
        if step % 200 == 0 or step == steps - 1 or stop:
            el = time.time() - t0
            eta = el / (step + 1) * (steps - step - 1)
            log(f"unet step {step}/{steps} loss {avg:.4f} lr {cur_lr:.2e} ({el:.0f}s, eta {eta:.0f}s)")
        if stop:
            break
    return ema_unet.eval(), ema_te.eval(), step + 1


# ----------------------------------------------------------------------------------------------
# Saving and a sanity sample
# ----------------------------------------------------------------------------------------------

def build_pipeline(vae, te, unet, tok):
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=te,
        tokenizer=tok,
        unet=unet,
        scheduler=DDIMScheduler(**SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_pipeline(pipe, out: Path) -> None:
    import shutil

    if out.exists():
        shutil.rmtree(out)
    pipe = copy.deepcopy(pipe)
    # UNet and VAE in fp16 (diffusers casts to the dtype asked for at load, float32 by default). The
    # text encoder is tiny and stays float32: transformers 5 loads in the stored dtype by default.
    pipe.unet.to(torch.float16)
    pipe.vae.to(torch.float16)
    pipe.save_pretrained(str(out), safe_serialization=True)
    portable(out)


def portable(out: Path) -> None:
    """Make a saved folder load with transformers 4.x too (pyproject allows >= 4.45), not only 5.x.

    transformers 5 writes only tokenizer.json and CLIP text-encoder keys without the ``text_model.``
    prefix; 4.x's (slow) CLIPTokenizer needs vocab.json + merges.txt and its CLIPTextModel wants the
    prefix. 5.x still reads both.
    """
    from safetensors.torch import load_file, save_file

    tok_dir = out / "tokenizer"
    tiny_data.write_tokenizer_files(tok_dir)
    te_file = out / "text_encoder" / "model.safetensors"
    sd = load_file(str(te_file))
    sd = {(k if k.startswith("text_model.") else "text_model." + k): v.contiguous() for k, v in sd.items()}
    save_file(sd, str(te_file), metadata={"format": "pt"})
    # no trace of the training machine's paths (a resumed run records where it loaded from)
    for sub in ("unet", "vae", "text_encoder"):
        c = out / sub / "config.json"
        cfg = json.loads(c.read_text())
        if cfg.pop("_name_or_path", None) is not None:
            c.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    # tidy the tokenizer config written by transformers 5 (keeps the 77-token limit)
    cfg_path = tok_dir / "tokenizer_config.json"
    if cfg_path.exists():
        cfg = json.loads(cfg_path.read_text())
        cfg["model_max_length"] = 77
        for k in ("is_local", "local_files_only"):
            cfg.pop(k, None)
        cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")


@torch.no_grad()
def sample_grid(folder: Path, path: Path, steps: int = 25, guidance: float = 4.0) -> None:
    from diffusers import StableDiffusionPipeline
    from PIL import Image

    pipe = StableDiffusionPipeline.from_pretrained(str(folder), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    prompts = [tiny_data.caption(s) for s in tiny_data.held_out_scenes()[:8]] + [
        "a red circle on a white background",
        "a blue square on the left, yellow background",
        "a green triangle at the top, black background",
        "a white cross in the center, purple background",
    ]
    ims = pipe(prompts, num_inference_steps=steps, guidance_scale=guidance,
               generator=torch.Generator().manual_seed(0)).images
    grid = Image.new("RGB", (64 * len(ims), 64))
    for i, im in enumerate(ims):
        grid.paste(im, (64 * i, 0))
    grid.save(path)
    (path.with_suffix(".txt")).write_text("\n".join(prompts) + "\n")


# ----------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("difftool/weights/tiny"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/tiny_work"), help="checkpoints, samples, logs")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny dataset, few steps")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 is the better choice on a shared 2-core machine")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-images", type=int, default=24000)
    ap.add_argument("--vae-steps", type=int, default=1800)
    ap.add_argument("--vae-batch", type=int, default=16)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--decoder-steps", type=int, default=800,
                    help="stage 1b: decoder fine-tune on composite latents (encoder frozen)")
    ap.add_argument("--decoder-lr", type=float, default=3e-4)
    ap.add_argument("--finetune-decoder", action="store_true",
                    help="with --resume: run stage 1b on the resumed VAE")
    ap.add_argument("--unet-steps", type=int, default=4000)
    ap.add_argument("--unet-batch", type=int, default=32)
    ap.add_argument("--unet-lr", type=float, default=5e-4)
    ap.add_argument("--cfg-drop", type=float, default=0.1)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--max-minutes", type=float, default=112.0,
                    help="safety net: stop UNet training early if the whole run would pass this wall time "
                         "(the result is then not step-for-step reproducible; the log says so)")
    ap.add_argument("--resume", type=Path, default=None,
                    help="continue training UNet + text encoder from this pipeline folder (fp32 preferred: "
                         "WORK/pipeline_fp32 of an earlier run); the VAE and tokenizer are kept")
    ap.add_argument("--reuse-vae", action="store_true", help="load the VAE from --work instead of training it")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_images, args.vae_steps, args.decoder_steps, args.unet_steps = 2000, 100, 30, 100

    torch.set_num_threads(args.threads)
    seed_all(args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    log(f"args: {vars(args)}")

    tok = tiny_data.build_tokenizer(args.work / "tokenizer_src")
    log(f"tokenizer: {len(tok)} tokens, words: {' '.join(tiny_data.vocabulary_words())}")

    images, captions, scenes = tiny_data.make_dataset(args.n_images, seed=args.seed, no_position_fraction=0.0)
    held = {s.key() for s in tiny_data.held_out_scenes()}
    assert not any(s.key() in held for s in scenes), "held-out combination in the training set"
    log(f"dataset: {len(images)} images of {len(tiny_data.train_scenes())} combinations ({len(held)} held out)")

    vae_path = args.work / "vae"
    init = None
    if args.resume is not None:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel

        vae = AutoencoderKL.from_pretrained(str(args.resume / "vae"), dtype=torch.float32).eval()
        init = (UNet2DConditionModel.from_pretrained(str(args.resume / "unet"), dtype=torch.float32),
                CLIPTextModel.from_pretrained(str(args.resume / "text_encoder"), dtype=torch.float32))
        log(f"resuming from {args.resume} (VAE, UNet, text encoder); no VAE training")
    elif args.reuse_vae and vae_path.exists():
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(str(vae_path)).eval()
        log("VAE reused from work dir")
    else:
        vae = train_vae(images, args.vae_steps, args.vae_batch, args.vae_lr, args.seed)
        vae.save_pretrained(str(vae_path))
    mu = encode_all(vae, images)
    if args.decoder_steps > 0 and (args.resume is None or args.finetune_decoder):
        locality_report(vae, args.seed)
        vae = finetune_decoder(vae, images, mu, args.decoder_steps, args.vae_batch, args.decoder_lr, args.seed)
    t_vae = time.time() - t_start
    vae_report(vae, args.work / "vae_recon.png", args.seed)
    info_locality = locality_report(vae, args.seed)

    scale = float(vae.config.scaling_factor) if args.resume is not None else float(1.0 / mu.std())
    vae.register_to_config(scaling_factor=scale)
    latents = mu * scale
    log(f"latents {tuple(latents.shape)}, scaling_factor {scale:.4f}, mean {latents.mean():.3f}")

    def ids_of(texts):
        return tok(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids

    with_pos = ids_of([tiny_data.caption(s, True) for s in scenes])
    no_pos = ids_of([tiny_data.caption(s, False) for s in scenes])
    token_ids = torch.stack([with_pos, no_pos], dim=1)
    empty_ids = ids_of([""])[0]

    unet, te, trained_steps = train_unet(latents, token_ids, empty_ids, tok, args.unet_steps, args.unet_batch, args.unet_lr,
                          args.seed, args.cfg_drop, (1.0, 5.0), args.ema,
                          deadline=t_start + args.max_minutes * 60 - 120, init=init,
                          warmup=50 if init is not None else 200)
    t_unet = time.time() - t_start - t_vae

    pipe = build_pipeline(vae, te, unet, tok)
    pipe.save_pretrained(str(args.work / "pipeline_fp32"), safe_serialization=True)
    save_pipeline(pipe, args.out)
    total = time.time() - t_start
    info = {
        "threads": args.threads,
        "seconds_vae": round(t_vae),
        "seconds_unet": round(t_unet),
        "seconds_total": round(total),
        "unet_steps_done": trained_steps,
        "scaling_factor": scale,
        "vae_locality_err": info_locality,
        "params": {"vae": n_params(vae), "unet": n_params(unet), "text_encoder": n_params(te)},
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    (args.work / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
    log(f"saved {args.out}; wall time {total / 60:.1f} min (VAE {t_vae / 60:.1f}, UNet {t_unet / 60:.1f})")
    sample_grid(args.out, args.work / "samples.png")
    log(f"samples: {args.work / 'samples.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
