#!/usr/bin/env python
"""Train difftool's tiny unCLIP model (`tiny-unclip`, Kandinsky 2.2 layout). Not imported by the CLI.

The whole DALL-E 2 chain, on the procedural scenes of the `tiny` model (tools/tiny_data.py):

0. data: 24,000 pictures of the training combinations (the 40 held-out ones never appear);
1. movq: a `VQModel` made from the `tiny` model's trained autoencoder (same encoder/decoder weights, the latent
   scale folded into its 1x1 convolutions so latents have unit variance, a k-means codebook that the Kandinsky
   pipelines never use: they decode with `force_not_quantize=True`);
2. clip: a small CLIP, trained contrastively: `CLIPTextModelWithProjection` (warm-started from the `tiny`
   model's text encoder) and `CLIPVisionModelWithProjection` (from scratch), with linear attribute heads on both
   embeddings as an auxiliary loss (colour, shape, position, background), thrown away after training;
3. embed: image embeddings of every training picture, text embeddings of every caption (CLIP frozen);
4. prior: a `PriorTransformer`, a diffusion prior (x0 prediction, `UnCLIPScheduler`) from text embeddings to
   image embeddings, 10% empty captions for classifier-free guidance;
5. decoder: a `UNet2DConditionModel` conditioned on image embeddings (Kandinsky 2.2's `image_proj` + `image`
   embeddings), warm-started from the `tiny` model's UNet, v-prediction like it, 10% zero-image embeddings
   (the prior pipeline's negative) for classifier-free guidance, EMA;
6. assemble: a `KandinskyV22CombinedPipeline` folder (fp16 UNet/prior/MoVQ), checked to load with plain diffusers.

    python tools/train_tiny_unclip.py                      # every stage not done yet (work files in --work)
    python tools/train_tiny_unclip.py --stages prior       # one stage (needs the ones before it)
    python tools/train_tiny_unclip.py --quick --work /tmp/tu_quick --out /tmp/tu_quick_out   # smoke run

Each stage writes its result to --work and is skipped when it is there (`--redo` reruns it): an interrupted run
resumes at the stage it was in. Prior and decoder are independent: two processes can train them at once
(`--stages prior` and `--stages decoder`, one thread each). Seeded; repeatable for a given thread count.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tiny_data  # noqa: E402
from train_tiny import SCHEDULER_CONFIG, log, lr_at, n_params, seed_all, to_tensor  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "difftool" / "weights" / "tiny"
STAGES = ("data", "movq", "clip", "embed", "prior", "decoder", "assemble")
#: Token budget of the tokenizer and the prior (captions are at most 11 tokens; the prior attends over these).
MAX_TOKENS = 20
EMBED_DIM = 64
PRIOR_SCHEDULER = dict(num_train_timesteps=1000, variance_type="fixed_small_log", prediction_type="sample",
                       clip_sample=True, clip_sample_range=10.0, beta_schedule="squaredcos_cap_v2")
ATTRS = (("color", tiny_data.COLOR_NAMES), ("shape", tiny_data.SHAPES), ("position", tiny_data.POSITIONS),
         ("background", tiny_data.COLOR_NAMES))


# ---------------------------------------------------------------------------------------------------------------
# Model definitions
# ---------------------------------------------------------------------------------------------------------------

def load_tokenizer():
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(TINY / "tokenizer"))
    tok.model_max_length = MAX_TOKENS
    return tok


def make_text_encoder():
    """CLIPTextModelWithProjection with the `tiny` text encoder's weights (the projection is new)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    base = CLIPTextModel.from_pretrained(str(TINY / "text_encoder"), dtype=torch.float32)
    cfg = CLIPTextConfig(**{k: v for k, v in base.config.to_dict().items()
                            if k in CLIPTextConfig().to_dict() and k not in ("architectures", "dtype")})
    cfg.projection_dim = EMBED_DIM
    model = CLIPTextModelWithProjection(cfg)
    state = {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in base.state_dict().items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("text_projection") for k in missing), (missing, unexpected)
    return model


def make_vision_encoder():
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    cfg = CLIPVisionConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                           image_size=64, patch_size=8, projection_dim=EMBED_DIM, hidden_act="quick_gelu")
    return CLIPVisionModelWithProjection(cfg)


def image_processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64},
                              image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], resample=3)


def make_prior():
    from diffusers import PriorTransformer

    return PriorTransformer(num_attention_heads=4, attention_head_dim=32, num_layers=4, embedding_dim=EMBED_DIM,
                            num_embeddings=MAX_TOKENS, additional_embeddings=4)


def make_decoder_unet():
    """The `tiny` UNet's architecture, conditioned on an image embedding instead of text, 8 output channels
    (Kandinsky 2.2's decoder pipeline splits noise and variance; the variance half is unused)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=8, block_out_channels=(64, 96, 128), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, attention_head_dim=8, norm_num_groups=16,
        encoder_hid_dim=EMBED_DIM, encoder_hid_dim_type="image_proj", addition_embed_type="image",
    )


# ---------------------------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------------------------

def scene_index() -> dict[tuple[str, str, str, str], int]:
    return {s.key(): i for i, s in enumerate(tiny_data.all_scenes())}


def attribute_ids(scenes: list[tiny_data.Scene]) -> torch.Tensor:
    """(n, 4) indices of colour, shape, position, background."""
    return torch.tensor([[values.index(getattr(s, name)) for name, values in ATTRS] for s in scenes])


def stage_data(work: Path, args) -> None:
    images, _, scenes = tiny_data.make_dataset(args.images, seed=args.seed)
    idx = scene_index()
    np.savez(work / "data.npz", images=images, scene=np.array([idx[s.key()] for s in scenes]))
    log(f"data: {len(images)} images of {len(set(s.key() for s in scenes))} combinations")


def load_data(work: Path) -> tuple[np.ndarray, np.ndarray]:
    d = np.load(work / "data.npz")
    return d["images"], d["scene"]


@torch.no_grad()
def stage_movq(work: Path, args) -> None:
    from diffusers import AutoencoderKL, VQModel

    kl = AutoencoderKL.from_pretrained(str(TINY / "vae"), torch_dtype=torch.float32).eval()
    s = float(kl.config.scaling_factor)
    vq = VQModel(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                 up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(16, 32, 64), layers_per_block=1,
                 latent_channels=4, sample_size=64, num_vq_embeddings=64, norm_num_groups=8, vq_embed_dim=4,
                 scaling_factor=1.0, norm_type="group", mid_block_add_attention=False).eval()
    sd = {k: v for k, v in kl.state_dict().items() if k.startswith(("encoder.", "decoder."))}
    # the KL encoder's conv_out (8 channels) then quant_conv (1x1, 8 -> 8, of which the first 4 are the posterior
    # mean) compose into one 3x3 conv with 4 outputs; the latent scale goes into the VQ quant_conv
    q = kl.quant_conv.weight[:4, :, 0, 0]
    sd["encoder.conv_out.weight"] = torch.einsum("oj,jikl->oikl", q, sd["encoder.conv_out.weight"])
    sd["encoder.conv_out.bias"] = q @ sd["encoder.conv_out.bias"] + kl.quant_conv.bias[:4]
    sd["quant_conv.weight"] = torch.eye(4)[:, :, None, None] * s  # unit-variance latents
    sd["quant_conv.bias"] = torch.zeros(4)
    sd["post_quant_conv.weight"] = kl.post_quant_conv.weight / s
    sd["post_quant_conv.bias"] = kl.post_quant_conv.bias.clone()
    codebook = "quantize.embedding.weight"
    vq.load_state_dict(sd, strict=False)  # all but the codebook, before encoding
    images, _ = load_data(work)
    lat = torch.cat([vq.encode(to_tensor(images[i:i + 512])).latents for i in range(0, len(images), 512)])
    # a k-means codebook over latent vectors (kept for a well-formed VQModel; Kandinsky never quantizes)
    vecs = lat.permute(0, 2, 3, 1).reshape(-1, 4)
    g = torch.Generator().manual_seed(args.seed)
    sample = vecs[torch.randperm(len(vecs), generator=g)[:65536]]
    code = sample[:64].clone()
    for _ in range(15):
        assign = torch.cdist(sample, code).argmin(1)
        for k in range(64):
            members = sample[assign == k]
            if len(members):
                code[k] = members.mean(0)
    sd[codebook] = code
    vq.load_state_dict(sd, strict=True)
    x = to_tensor(images[:64])
    ref = kl.decode(kl.encode(x).latent_dist.mean).sample
    assert torch.allclose(vq.encode(x).latents, lat[:64], atol=1e-4)
    out = vq.decode(lat[:64], force_not_quantize=True).sample
    log(f"movq: latent std {lat.std():.3f}, mean {lat.mean():.3f}; max |VQ - KL| decode {(out - ref).abs().max():.2e}"
        f"; reconstruction error {(out.clamp(-1, 1) - x).abs().mean() * 127.5:.2f}/255")
    vq.save_pretrained(str(work / "movq"))
    torch.save(lat, work / "latents.pt")


def caption_table(tok) -> tuple[list[str], torch.Tensor, torch.Tensor, dict]:
    """Every caption the data can have (each scene with and without position, plus ""), their ids and masks;
    returns (captions, ids, masks, {(scene index, with_position): caption index})."""
    scenes = tiny_data.all_scenes()
    caps, where = [""], {}
    for i, s in enumerate(scenes):
        for with_pos in (True, False):
            where[(i, with_pos)] = len(caps)
            caps.append(tiny_data.caption(s, with_position=with_pos))
    enc = tok(caps, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt")
    return caps, enc.input_ids, enc.attention_mask, where


def stage_clip(work: Path, args) -> None:
    seed_all(args.seed + 10)
    tok = load_tokenizer()
    images, scene = load_data(work)
    scenes = tiny_data.all_scenes()
    attrs = attribute_ids(scenes)  # per scene
    _, ids, _, where = caption_table(tok)
    text, vision = make_text_encoder(), make_vision_encoder()
    log(f"clip: text {n_params(text) / 1e6:.3f}M, vision {n_params(vision) / 1e6:.3f}M params; "
        f"{args.clip_steps} steps x {args.clip_batch}")
    heads = torch.nn.ModuleDict({f"{side}_{name}": torch.nn.Linear(EMBED_DIM, len(values))
                                 for side in ("img", "txt") for name, values in ATTRS})
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(10.0)))
    params = list(text.parameters()) + list(vision.parameters()) + list(heads.parameters()) + [logit_scale]
    opt = torch.optim.AdamW(params, lr=args.clip_lr, weight_decay=1e-2)
    pix = to_tensor(images)
    g = torch.Generator().manual_seed(args.seed + 11)
    scene_t = torch.from_numpy(scene)
    t0, avg = time.time(), None
    text.train()
    vision.train()
    for step in range(args.clip_steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, args.clip_steps, args.clip_lr, warmup=100)
        idx = torch.randint(0, len(pix), (args.clip_batch,), generator=g)
        sc = scene_t[idx]
        with_pos = torch.rand(args.clip_batch, generator=g) >= tiny_data.NO_POSITION_FRACTION
        cap = torch.tensor([where[(int(s), bool(p))] for s, p in zip(sc, with_pos)])
        a = attrs[sc]  # (B, 4)
        # text i matches image j when colour, shape and background agree, and position too if the text says it
        same = (a[:, None, [0, 1, 3]] == a[None, :, [0, 1, 3]]).all(-1)
        pos_ok = (a[:, None, 2] == a[None, :, 2]) | ~with_pos[:, None]
        match = (same & pos_ok).float()
        t_out = text(ids[cap])
        i_out = vision(pix[idx])
        te, ie = t_out.text_embeds, i_out.image_embeds
        logits = logit_scale.exp().clamp(max=100) * F.normalize(te, dim=-1) @ F.normalize(ie, dim=-1).T
        loss_t2i = -(F.log_softmax(logits, 1) * match / match.sum(1, keepdim=True)).sum(1).mean()
        loss_i2t = -(F.log_softmax(logits.T, 1) * match.T / match.T.sum(1, keepdim=True)).sum(1).mean()
        aux = 0.0
        for k, (name, _) in enumerate(ATTRS):
            aux = aux + F.cross_entropy(heads[f"img_{name}"](ie), a[:, k])
            per = F.cross_entropy(heads[f"txt_{name}"](te), a[:, k], reduction="none")
            aux = aux + (per[with_pos].mean() if name == "position" else per.mean())
        loss = (loss_t2i + loss_i2t) / 2 + args.clip_aux * aux / 8
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        avg = loss.item() if avg is None else 0.95 * avg + 0.05 * loss.item()
        if step % 100 == 0 or step == args.clip_steps - 1:
            el = time.time() - t0
            log(f"clip step {step}/{args.clip_steps} loss {avg:.4f} (contrastive {(loss_t2i + loss_i2t).item() / 2:.3f},"
                f" aux {aux.item() / 8:.3f}) scale {logit_scale.exp().item():.1f} ({el:.0f}s, "
                f"eta {el / (step + 1) * (args.clip_steps - step - 1):.0f}s)")
    text.eval().save_pretrained(str(work / "text_encoder"))
    vision.eval().save_pretrained(str(work / "image_encoder"))
    tok.save_pretrained(str(work / "tokenizer"))
    log(f"clip: held-out retrieval top-1 {clip_retrieval(text, vision, tok):.1%}")


@torch.no_grad()
def clip_retrieval(text, vision, tok, geometry_seeds: int = 5) -> float:
    """Text -> image top-1 among the 40 held-out scenes (one picture each, `geometry_seeds` draws)."""
    import random

    held = tiny_data.held_out_scenes()
    caps = [tiny_data.caption(s) for s in held]
    enc = tok(caps, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt")
    te = F.normalize(text(enc.input_ids).text_embeds, dim=-1)
    hits = 0
    for k in range(geometry_seeds):
        rng = random.Random(1000 + k)
        imgs = np.stack([np.asarray(tiny_data.render(s, *tiny_data.sample_geometry(s, rng))) for s in held])
        ie = F.normalize(vision(to_tensor(imgs)).image_embeds, dim=-1)
        hits += int(((te @ ie.T).argmax(1) == torch.arange(len(held))).sum())
    return hits / (geometry_seeds * len(held))


@torch.no_grad()
def stage_embed(work: Path, args) -> None:
    from transformers import CLIPTextModelWithProjection, CLIPVisionModelWithProjection

    text = CLIPTextModelWithProjection.from_pretrained(str(work / "text_encoder")).eval()
    vision = CLIPVisionModelWithProjection.from_pretrained(str(work / "image_encoder")).eval()
    tok = load_tokenizer()
    images, _ = load_data(work)
    pix = to_tensor(images)
    img = torch.cat([vision(pix[i:i + 512]).image_embeds for i in range(0, len(pix), 512)])
    zero = vision(torch.zeros(1, 3, 64, 64)).image_embeds
    caps, ids, mask, where = caption_table(tok)
    out = text(ids)
    torch.save({"image_embeds": img, "zero": zero, "text_embeds": out.text_embeds,
                "text_hidden": out.last_hidden_state, "text_mask": mask.bool(), "where": where},
               work / "embeds.pt")
    log(f"embed: {len(img)} image embeddings (norm {img.norm(dim=-1).mean():.2f}), {len(caps)} captions")


def update(model, ema, opt, loss: torch.Tensor, step: int, decay: float) -> float:
    """One optimiser step (gradients clipped to norm 1), then the EMA copy moves towards the model."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), model.parameters()):
            pe.lerp_(p, 1 - d)
    return loss.item()


def report(name: str, step: int, total: int, avg: float, t0: float, every: int, deadline: float) -> bool:
    """Log progress every `every` steps; True (and a log line) once the wall-time budget is spent."""
    stop = time.time() > deadline
    if step % every == 0 or step == total - 1 or stop:
        el = time.time() - t0
        log(f"{name} step {step}/{total} loss {avg:.4f} ({el:.0f}s, eta {el / (step + 1) * (total - step - 1):.0f}s)")
    if stop:
        log(f"{name}: wall-time budget reached after step {step}")
    return stop


def stage_prior(work: Path, args) -> None:
    from diffusers import UnCLIPScheduler

    seed_all(args.seed + 20)
    e = torch.load(work / "embeds.pt")
    _, scene = load_data(work)
    img = e["image_embeds"]
    prior = make_prior()
    if args.prior_init:  # continue from an earlier run's prior (a second round)
        from diffusers import PriorTransformer

        prior.load_state_dict(PriorTransformer.from_pretrained(args.prior_init).state_dict())
    with torch.no_grad():
        prior.clip_mean.copy_(img.mean(0, keepdim=True))
        prior.clip_std.copy_(img.std(0, keepdim=True))
        x0_all = (img - prior.clip_mean) / prior.clip_std
    sched = UnCLIPScheduler(**PRIOR_SCHEDULER)
    ac = sched.alphas_cumprod.float()
    where = e["where"]
    log(f"prior: {n_params(prior) / 1e6:.3f}M params; {args.prior_steps} steps x {args.prior_batch}")
    opt = torch.optim.AdamW(prior.parameters(), lr=args.prior_lr, weight_decay=1e-2)
    ema = copy.deepcopy(prior).requires_grad_(False)
    g = torch.Generator().manual_seed(args.seed + 21)
    scene_t = torch.from_numpy(scene)
    t0, avg = time.time(), None
    prior.train()
    deadline = time.time() + args.max_minutes * 60
    for step in range(args.prior_steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, args.prior_steps, args.prior_lr, warmup=200)
        b = args.prior_batch
        idx = torch.randint(0, len(img), (b,), generator=g)
        with_pos = torch.rand(b, generator=g) >= tiny_data.NO_POSITION_FRACTION
        cap = torch.tensor([where[(int(s), bool(p))] for s, p in zip(scene_t[idx], with_pos)])
        cap = torch.where(torch.rand(b, generator=g) < args.cfg_drop, torch.zeros_like(cap), cap)
        x0 = x0_all[idx]
        t = torch.randint(0, 1000, (b,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        xt = ac[t].sqrt()[:, None] * x0 + (1 - ac[t]).sqrt()[:, None] * noise
        pred = prior(xt, timestep=t, proj_embedding=e["text_embeds"][cap],
                     encoder_hidden_states=e["text_hidden"][cap], attention_mask=e["text_mask"][cap]
                     ).predicted_image_embedding
        value = update(prior, ema, opt, F.mse_loss(pred, x0), step, args.ema)
        avg = value if avg is None else 0.98 * avg + 0.02 * value
        if report("prior", step, args.prior_steps, avg, t0, 200, deadline):
            break
    ema.eval().save_pretrained(str(work / "prior"))


def stage_decoder(work: Path, args) -> None:
    from diffusers import DDIMScheduler, UNet2DConditionModel

    seed_all(args.seed + 30)
    e = torch.load(work / "embeds.pt")
    lat = torch.load(work / "latents.pt")
    img, zero = e["image_embeds"], e["zero"]
    _, scene = load_data(work)
    # pictures grouped by scene: with probability --other-picture the decoder is conditioned on another picture of
    # the same scene (other size and jitter), so an embedding means the scene, not one exact drawing
    scene_t = torch.from_numpy(scene)
    order = torch.argsort(scene_t, stable=True)
    counts = torch.bincount(scene_t, minlength=int(scene_t.max()) + 1)
    starts = torch.cumsum(counts, 0) - counts
    unet = make_decoder_unet()
    if args.decoder_init:  # continue from an earlier run's decoder (a second round)
        unet.load_state_dict(UNet2DConditionModel.from_pretrained(args.decoder_init).state_dict())
        missing = []
    else:
        base = UNet2DConditionModel.from_pretrained(str(TINY / "unet"), torch_dtype=torch.float32).state_dict()
        w, b = base.pop("conv_out.weight"), base.pop("conv_out.bias")
        missing, unexpected = unet.load_state_dict(base, strict=False)
        assert not unexpected, unexpected
        with torch.no_grad():
            unet.conv_out.weight.zero_()
            unet.conv_out.bias.zero_()
            unet.conv_out.weight[:4] = w
            unet.conv_out.bias[:4] = b
            unet.add_embedding.image_proj.weight.mul_(0.1)  # start close to the tiny UNet's time embedding
    log(f"decoder: {n_params(unet) / 1e6:.3f}M params, new: {sorted(set(k.split('.')[0] for k in missing))}; "
        f"{args.decoder_steps} steps x {args.decoder_batch}")
    sched = DDIMScheduler(**SCHEDULER_CONFIG)
    ac = sched.alphas_cumprod.float()
    alpha, sigma = ac.sqrt(), (1 - ac).sqrt()
    snr = ac / (1 - ac).clamp(min=1e-8)
    w_v = snr.clamp(1.0, 5.0) / (snr + 1)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.decoder_lr, weight_decay=1e-2, betas=(0.9, 0.99))
    ema = copy.deepcopy(unet).requires_grad_(False)
    g = torch.Generator().manual_seed(args.seed + 31)
    t0, avg = time.time(), None
    unet.train()
    deadline = time.time() + args.max_minutes * 60
    for step in range(args.decoder_steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, args.decoder_steps, args.decoder_lr, warmup=100)
        bsz = args.decoder_batch
        idx = torch.randint(0, len(lat), (bsz,), generator=g)
        x0 = lat[idx]
        sc = scene_t[idx]
        other = order[starts[sc] + (torch.rand(bsz, generator=g) * counts[sc]).long()]
        pick = torch.where(torch.rand(bsz, generator=g) < args.other_picture, other, idx)
        cond = torch.where((torch.rand(bsz, generator=g) < args.cfg_drop)[:, None], zero, img[pick])
        t = torch.randint(0, 1000, (bsz,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        a, s = alpha[t].view(-1, 1, 1, 1), sigma[t].view(-1, 1, 1, 1)
        pred = unet(a * x0 + s * noise, t, None, added_cond_kwargs={"image_embeds": cond}).sample[:, :4]
        loss = ((pred - (a * noise - s * x0)).pow(2).mean(dim=(1, 2, 3)) * w_v[t]).mean()
        value = update(unet, ema, opt, loss, step, args.ema)
        avg = value if avg is None else 0.98 * avg + 0.02 * value
        if step and step % 500 == 0:
            ema.save_pretrained(str(work / "unet_partial"))
        if report("decoder", step, args.decoder_steps, avg, t0, 100, deadline):
            break
    ema.eval().save_pretrained(str(work / args.decoder_out))


def stage_assemble(work: Path, args) -> None:
    from diffusers import (
        DDIMScheduler,
        KandinskyV22CombinedPipeline,
        PriorTransformer,
        UnCLIPScheduler,
        UNet2DConditionModel,
        VQModel,
    )
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer, CLIPVisionModelWithProjection


    pipe = KandinskyV22CombinedPipeline(
        unet=UNet2DConditionModel.from_pretrained(str(work / "unet")),
        scheduler=DDIMScheduler(**SCHEDULER_CONFIG),
        movq=VQModel.from_pretrained(str(work / "movq")),
        prior_prior=PriorTransformer.from_pretrained(str(work / "prior")),
        prior_image_encoder=CLIPVisionModelWithProjection.from_pretrained(str(work / "image_encoder")),
        prior_text_encoder=CLIPTextModelWithProjection.from_pretrained(str(work / "text_encoder")),
        prior_tokenizer=CLIPTokenizer.from_pretrained(str(work / "tokenizer")),
        prior_scheduler=UnCLIPScheduler(**PRIOR_SCHEDULER),
        prior_image_processor=image_processor(),
    )
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for part in (pipe.unet, pipe.movq, pipe.prior_prior):
        part.to(torch.float16)  # diffusers loads these in the dtype asked for (float32 by default)
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    tidy(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log(f"assemble: {out} ({size / 2**20:.2f} MiB)")
    from diffusers import AutoPipelineForText2Image

    check = AutoPipelineForText2Image.from_pretrained(str(out), torch_dtype=torch.float32)
    log(f"assemble: loads as {type(check).__name__}")


def tidy(out: Path) -> None:
    """Tokenizer files for transformers 4.x too, no training paths in configs, the 20-token limit kept."""
    tiny_data.write_tokenizer_files(out / "prior_tokenizer")
    for c in out.rglob("config.json"):
        cfg = json.loads(c.read_text())
        if cfg.pop("_name_or_path", None) is not None:
            c.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    cfg_path = out / "prior_tokenizer" / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model_max_length"] = MAX_TOKENS
    for k in ("is_local", "local_files_only"):
        cfg.pop(k, None)
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")


DONE = {"data": "data.npz", "movq": "latents.pt", "clip": "image_encoder", "embed": "embeds.pt", "prior": "prior",
        "decoder": "unet", "assemble": None}
RUN = {"data": stage_data, "movq": stage_movq, "clip": stage_clip, "embed": stage_embed, "prior": stage_prior,
       "decoder": stage_decoder, "assemble": stage_assemble}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "difftool" / "weights" / "tiny-unclip"))
    ap.add_argument("--work", default="/tmp/tiny_unclip_work")
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    ap.add_argument("--redo", action="store_true", help="rerun the chosen stages even when their result exists")
    ap.add_argument("--quick", action="store_true", help="smoke run: few images and steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--images", type=int, default=24000)
    ap.add_argument("--clip-steps", type=int, default=2500)
    ap.add_argument("--clip-batch", type=int, default=256)
    ap.add_argument("--clip-lr", type=float, default=1e-3)
    ap.add_argument("--clip-aux", type=float, default=1.0)
    ap.add_argument("--prior-steps", type=int, default=6000)
    ap.add_argument("--prior-batch", type=int, default=128)
    ap.add_argument("--prior-lr", type=float, default=5e-4)
    ap.add_argument("--decoder-steps", type=int, default=4000)
    ap.add_argument("--decoder-batch", type=int, default=32)
    ap.add_argument("--decoder-lr", type=float, default=3e-4)
    ap.add_argument("--decoder-out", default="unet", help="work subfolder the decoder is saved to")
    ap.add_argument("--decoder-init", help="start the decoder from this saved UNet folder (a second round)")
    ap.add_argument("--prior-init", help="start the prior from this saved PriorTransformer folder")
    ap.add_argument("--other-picture", type=float, default=0.0,
                    help="decoder: how often the embedding comes from another picture of the same scene")
    ap.add_argument("--cfg-drop", type=float, default=0.1)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--max-minutes", type=float, default=60.0, help="wall-time cap of the prior and decoder stages")
    args = ap.parse_args(argv)
    if args.quick:
        args.images, args.clip_steps, args.prior_steps, args.decoder_steps = 2000, 30, 30, 30
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        if stage not in args.stages:
            continue
        done = DONE[stage]
        if done and (work / done).exists() and not args.redo:
            log(f"{stage}: done already ({work / done})")
            continue
        t0 = time.time()
        RUN[stage](work, args)
        log(f"{stage}: {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
