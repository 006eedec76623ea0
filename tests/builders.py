"""Tiny random-weight pipelines built locally, in the Hub layout, for tests and benchmarks.

The pattern of diffusers' own `get_dummy_components`, with a CLIP tokenizer written from a small
vocab instead of downloaded, so nothing touches the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_clip_tokenizer(folder: Path, words: tuple[str, ...] = ()) -> Any:
    """A byte-level CLIP tokenizer with a tiny vocab (+ whole `words`), saved to `folder`."""
    from transformers import CLIPTokenizer

    src = folder.parent / (folder.name + "-src")
    src.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for tok in chars + [c + "</w>" for c in chars]:
        vocab.setdefault(tok, len(vocab))
    merges = []
    for word in words:
        # merge a word left to right into one token: (w,o) -> wo, (wo,r) -> wor, (wor, d</w>) -> word</w>
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        acc = pieces[0]
        for piece in pieces[1:]:
            merges.append(f"{acc} {piece}")
            acc = acc + piece
            vocab.setdefault(acc, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (src / "vocab.json").write_text(json.dumps(vocab))
    (src / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + ("\n" if merges else ""))
    tok = CLIPTokenizer.from_pretrained(str(src), model_max_length=77)
    tok.save_pretrained(str(folder))
    return tok


def sd_components(seed: int = 0, **unet_kwargs: Any) -> dict[str, Any]:
    """Tiny Stable Diffusion 1.x components (UNet 16/32 channels, 4-block VAE, 2-layer CLIP)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=8, attention_head_dim=4, **unet_kwargs,
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), in_channels=3, out_channels=3, norm_num_groups=8, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, sample_size=64,
    )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05,
        num_attention_heads=4, num_hidden_layers=2, pad_token_id=1, vocab_size=1000,
    ))
    return {"unet": unet, "scheduler": scheduler, "vae": vae, "text_encoder": text_encoder}


def build_sd(folder: Path, seed: int = 0) -> Path:
    """A tiny StableDiffusionPipeline saved in the Hub layout (~1.3 MB); makes 64x64 images."""
    from diffusers import StableDiffusionPipeline

    tokenizer = write_clip_tokenizer(folder.parent / (folder.name + "-tokenizer"))
    pipe = StableDiffusionPipeline(
        **sd_components(seed), tokenizer=tokenizer, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_lcm(folder: Path, seed: int = 0) -> Path:
    """A tiny LatentConsistencyModelPipeline (a non-SD class AutoPipeline serves; no negative prompt)."""
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler

    parts = sd_components(seed, time_cond_proj_dim=32)
    parts["scheduler"] = LCMScheduler.from_config(parts["scheduler"].config)
    tokenizer = write_clip_tokenizer(folder.parent / (folder.name + "-tokenizer"))
    pipe = LatentConsistencyModelPipeline(**parts, tokenizer=tokenizer, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_sd_with_safety_checker(folder: Path, seed: int = 0) -> Path:
    """The tiny SD pipeline with a tiny random safety checker and its feature extractor."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    small = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2}
    torch.manual_seed(seed)
    checker = StableDiffusionSafetyChecker(CLIPConfig(
        text_config={**small, "vocab_size": 1000}, vision_config={**small, "image_size": 32, "patch_size": 4},
        projection_dim=32,
    ))
    tokenizer = write_clip_tokenizer(folder.parent / (folder.name + "-tokenizer"))
    pipe = StableDiffusionPipeline(
        **sd_components(seed), tokenizer=tokenizer, safety_checker=checker,
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32), requires_safety_checker=True,
    )
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_ddpm(folder: Path, seed: int = 0) -> Path:
    """A tiny unconditional DDPMPipeline: a pipeline that is not text-to-image."""
    import torch
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=3, out_channels=3,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=8)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_lora(pipeline_folder: Path, folder: Path, seed: int = 0, rank: int = 4) -> Path:
    """A tiny random LoRA for the UNet of the SD pipeline in `pipeline_folder`, made with peft and saved with
    `StableDiffusionPipeline.save_lora_weights` (pytorch_lora_weights.safetensors in `folder`)."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(str(pipeline_folder))
    torch.manual_seed(seed)
    pipe.unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                     target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=layers, safe_serialization=True)
    return folder / "pytorch_lora_weights.safetensors"


def _tiny_clip_text_encoder(seed: int = 0, **extra: Any) -> Any:
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    return CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05,
        num_attention_heads=4, num_hidden_layers=2, pad_token_id=1, vocab_size=1000, **extra,
    ))


def build_x4_upscaler(folder: Path, seed: int = 0) -> Path:
    """A tiny StableDiffusionUpscalePipeline (x4: a 3-block VAE, a UNet on 7 channels with noise-level classes).
    Only cross-attention at every level, like the real model, so large tiles stay cheap."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=32, in_channels=7, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=8, attention_head_dim=4, use_linear_projection=True,
        only_cross_attention=True, num_class_embeds=351,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16), in_channels=3, out_channels=3, norm_num_groups=8, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        scaling_factor=0.08333,  # the real x4 upscaler's value
    )
    tokenizer = write_clip_tokenizer(folder.parent / (folder.name + "-tokenizer"))
    pipe = StableDiffusionUpscalePipeline(
        vae=vae, text_encoder=_tiny_clip_text_encoder(seed), tokenizer=tokenizer, unet=unet,
        low_res_scheduler=DDPMScheduler(), scheduler=DDIMScheduler(prediction_type="v_prediction"), max_noise_level=350,
    )
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_latent_upscaler(folder: Path, seed: int = 0) -> Path:
    """A tiny StableDiffusionLatentUpscalePipeline (x2; its K-blocks need channels >= 32)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionLatentUpscalePipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        act_fn="gelu", attention_head_dim=8, norm_num_groups=None, block_out_channels=(32, 32, 64, 64),
        time_cond_proj_dim=160, conv_in_kernel=1, conv_out_kernel=1, cross_attention_dim=32,
        down_block_types=("KDownBlock2D", "KCrossAttnDownBlock2D", "KCrossAttnDownBlock2D", "KCrossAttnDownBlock2D"),
        in_channels=8, mid_block_type=None, only_cross_attention=False, out_channels=5,
        resnet_time_scale_shift="scale_shift", time_embedding_type="fourier", timestep_post_act="gelu",
        up_block_types=("KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KUpBlock2D"),
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(  # 3 blocks (latents at 1/4): small inputs still leave the 4-level UNet room
        block_out_channels=(8, 8, 16), in_channels=3, out_channels=3, norm_num_groups=8, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
    )
    tokenizer = write_clip_tokenizer(folder.parent / (folder.name + "-tokenizer"))
    pipe = StableDiffusionLatentUpscalePipeline(
        vae=vae, text_encoder=_tiny_clip_text_encoder(seed, hidden_act="quick_gelu"), tokenizer=tokenizer,
        unet=unet, scheduler=EulerDiscreteScheduler(prediction_type="sample"),
    )
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_ldm_upscaler(folder: Path, seed: int = 0) -> Path:
    """A tiny LDMSuperResolutionPipeline (x4: a 3-block VQ-VAE; a UNet on latents + the low-res image)."""
    import torch
    from diffusers import DDIMScheduler, LDMSuperResolutionPipeline, UNet2DModel, VQModel

    torch.manual_seed(seed)
    unet = UNet2DModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=32, in_channels=6, out_channels=3,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8,
    )
    torch.manual_seed(seed)
    vqvae = VQModel(
        block_out_channels=(8, 8, 16), in_channels=3, out_channels=3, norm_num_groups=8, latent_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
    )
    LDMSuperResolutionPipeline(vqvae=vqvae, unet=unet, scheduler=DDIMScheduler()).save_pretrained(
        str(folder), safe_serialization=True)
    return folder


def kandinsky22_prior_components(folder: Path, seed: int = 0) -> dict[str, Any]:
    """Tiny Kandinsky 2.2 prior components (KandinskyV22PriorPipeline's): a 1-layer PriorTransformer of width 32
    (clip_std set to ones: a fresh one has zeros, which makes every embedding 0; num_embeddings = 77 = the text
    length), a tiny CLIP text and vision encoder with projections, and a CLIPImageProcessor built locally."""
    import torch
    from diffusers import PriorTransformer, UnCLIPScheduler
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    torch.manual_seed(seed)
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=16, embedding_dim=32, num_layers=1,
                             num_embeddings=77)
    prior.clip_std = torch.nn.Parameter(torch.ones(prior.clip_std.shape))
    torch.manual_seed(seed)
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, hidden_size=32, projection_dim=32, intermediate_size=37, layer_norm_eps=1e-05,
        num_attention_heads=4, num_hidden_layers=2, pad_token_id=1, vocab_size=1000,
    ))
    torch.manual_seed(seed)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, image_size=32, projection_dim=32, intermediate_size=37, num_attention_heads=4,
        num_channels=3, num_hidden_layers=2, patch_size=8,
    ))
    image_processor = CLIPImageProcessor(
        crop_size=32, size=32, do_center_crop=True, do_normalize=True, do_resize=True, resample=3,
        image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
    )
    scheduler = UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample", num_train_timesteps=1000,
                                clip_sample=True, clip_sample_range=10.0)
    tokenizer = write_clip_tokenizer(folder.parent / (folder.name + "-tokenizer"))
    return {"prior": prior, "image_encoder": image_encoder, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "scheduler": scheduler, "image_processor": image_processor}


def kandinsky22_decoder_components(seed: int = 0) -> dict[str, Any]:
    """Tiny Kandinsky 2.2 decoder components: an image-conditioned UNet (32/64 channels) and a 2-block MoVQ
    (`norm_type="spatial"`: channels must be multiples of 32; latents at 1/2, so 64 px images are quick)."""
    import torch
    from diffusers import DDPMScheduler, UNet2DConditionModel, VQModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        in_channels=4, out_channels=8, addition_embed_type="image", encoder_hid_dim=32,
        encoder_hid_dim_type="image_proj", cross_attention_dim=32, attention_head_dim=4,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", block_out_channels=(32, 64), layers_per_block=1,
        resnet_time_scale_shift="scale_shift", class_embed_type=None, norm_num_groups=8,
    )
    torch.manual_seed(seed)
    movq = VQModel(
        block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D", "AttnDownEncoderBlock2D"),
        in_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8, norm_type="spatial",
        num_vq_embeddings=12, out_channels=3, up_block_types=("AttnUpDecoderBlock2D", "UpDecoderBlock2D"),
        vq_embed_dim=4,
    )
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.00085, beta_end=0.012,
                              clip_sample=False, prediction_type="epsilon", thresholding=False)
    return {"unet": unet, "scheduler": scheduler, "movq": movq}


def build_kandinsky22(folder: Path, seed: int = 0) -> Path:
    """A tiny KandinskyV22CombinedPipeline (prior + decoder) saved as one self-contained folder."""
    from diffusers import KandinskyV22CombinedPipeline

    prior = kandinsky22_prior_components(folder, seed)
    pipe = KandinskyV22CombinedPipeline(**kandinsky22_decoder_components(seed),
                                        **{f"prior_{k}": v for k, v in prior.items()})
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_kandinsky22_split(decoder: Path, prior: Path, seed: int = 0) -> tuple[Path, Path]:
    """The same tiny Kandinsky 2.2 as two folders, as on the Hub: a KandinskyV22Pipeline decoder (no README link
    to its prior) and a KandinskyV22PriorPipeline."""
    from diffusers import KandinskyV22Pipeline, KandinskyV22PriorPipeline

    KandinskyV22PriorPipeline(**kandinsky22_prior_components(prior, seed)).save_pretrained(
        str(prior), safe_serialization=True)
    KandinskyV22Pipeline(**kandinsky22_decoder_components(seed)).save_pretrained(str(decoder), safe_serialization=True)
    return decoder, prior


def build_kandinsky22_inpaint_decoder(folder: Path, seed: int = 0) -> Path:
    """A tiny KandinskyV22InpaintPipeline decoder (its UNet reads latents + mask + masked-image latents: 9
    channels), without a link to its prior: load it with the prior of `build_kandinsky22_split`."""
    from diffusers import KandinskyV22InpaintPipeline, UNet2DConditionModel

    parts = kandinsky22_decoder_components(seed)
    config = dict(parts["unet"].config)
    config["in_channels"] = 9
    import torch

    torch.manual_seed(seed)
    parts["unet"] = UNet2DConditionModel.from_config(config)
    KandinskyV22InpaintPipeline(**parts).save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_tiny_autoencoder(folder: Path, seed: int = 0) -> Path:
    """A tiny AutoencoderTiny (TAESD-shaped: 4 decoder blocks, x8 scale, 4 latent channels, 8 channels wide), for
    `--tiny-vae` with the tiny SD pipelines."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    vae = AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1), latent_channels=4,
    )
    vae.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_sdxl(folder: Path, seed: int = 0) -> Path:
    """A tiny StableDiffusionXLPipeline (two 3-layer CLIP text encoders of width 32, the second with a projection;
    a text_time UNet of 16/32 channels) saved in the Hub layout; makes 64x64 images."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    parts = sd_components(seed)
    torch.manual_seed(seed)
    parts["unet"] = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, norm_num_groups=8, attention_head_dim=4, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=80,
    )  # 80 = 6 size/crop values x 8 + the 32-wide pooled text embedding
    config = CLIPTextConfig(bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05,
                            num_attention_heads=4, num_hidden_layers=3, pad_token_id=1, vocab_size=1000,
                            hidden_act="gelu", projection_dim=32)
    torch.manual_seed(seed)
    parts["text_encoder"] = CLIPTextModel(config)
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(config)
    tokenizer = write_clip_tokenizer(folder.parent / (folder.name + "-tokenizer"))
    pipe = StableDiffusionXLPipeline(**parts, text_encoder_2=text_encoder_2, tokenizer=tokenizer, tokenizer_2=tokenizer)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder

def build_controlnet(folder: Path, seed: int = 0) -> Path:
    """A tiny ControlNet made from the tiny SD UNet with `ControlNetModel.from_unet`, its zero convolutions
    filled with small random weights (a fresh ControlNet adds exactly zero: it would not steer anything)."""
    import torch
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_unet(sd_components(0)["unet"], conditioning_embedding_out_channels=(8, 8, 16, 16))
    torch.manual_seed(seed)
    zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                  controlnet.controlnet_cond_embedding.conv_out]
    with torch.no_grad():
        for conv in zero_convs:
            conv.weight.normal_(0.0, 0.3)
            conv.bias.normal_(0.0, 0.3)
    controlnet.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_sdxl_controlnet(folder: Path, seed: int = 0) -> Path:
    """A tiny SDXL-shaped ControlNet (text_time embeddings, cross_attention_dim 64): the wrong family for tiny SD."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    ControlNetModel(
        block_out_channels=(16, 32), layers_per_block=1, in_channels=4, norm_num_groups=8, attention_head_dim=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), conditioning_embedding_out_channels=(8, 8, 16, 16),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=80, cross_attention_dim=64,
    ).save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_ip_adapter(folder: Path, seed: int = 0, cross_attention_dim: int = 32,
                     weight_name: str = "ip-adapter_sd15.safetensors") -> Path:
    """A tiny IP-Adapter for the tiny SD UNet in h94/IP-Adapter's layout: `models/<weight_name>` (keys
    `image_proj.*` and `ip_adapter.<n>.to_k_ip/to_v_ip.weight`, n = 1, 3, 5, ... over the UNet's
    cross-attention layers) and `models/image_encoder/` (a tiny CLIPVisionModelWithProjection, 32 px).
    Returns the weights file."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    unet = sd_components(0)["unet"]
    torch.manual_seed(seed)
    tensors: dict[str, Any] = {}
    key_id = 1
    widths = list(unet.config.block_out_channels)
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = widths[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(widths))[int(name[len("up_blocks.")])]
        else:
            hidden = widths[int(name[len("down_blocks.")])]
        for kind in ("to_k_ip", "to_v_ip"):
            tensors[f"ip_adapter.{key_id}.{kind}.weight"] = torch.randn(hidden, cross_attention_dim) * 0.3
        key_id += 2
    tokens = 4
    tensors["image_proj.proj.weight"] = torch.randn(cross_attention_dim * tokens, 32) * 0.3
    tensors["image_proj.proj.bias"] = torch.randn(cross_attention_dim * tokens) * 0.1
    tensors["image_proj.norm.weight"] = torch.ones(cross_attention_dim)
    tensors["image_proj.norm.bias"] = torch.zeros(cross_attention_dim)
    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(models / weight_name))
    torch.manual_seed(seed)
    CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, image_size=32, projection_dim=32, intermediate_size=37, num_attention_heads=4,
        num_channels=3, num_hidden_layers=2, patch_size=8,
    )).save_pretrained(str(models / "image_encoder"))
    return models / weight_name
