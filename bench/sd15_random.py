"""A Stable Diffusion 1.5-shaped pipeline with random weights, built locally (never downloaded).

True SD 1.5 configs: UNet 320/640/1280/1280 with cross-attention 768 (860M parameters), the 4-block
128/256/512/512 VAE (83M), the CLIP ViT-L/14 text encoder (12 layers, width 768, 123M). The tokenizer is
the small test tokenizer (tokenizing costs nothing either way). Random init takes ~13 s and ~4 GB; the
folder (fp32 safetensors, ~4.3 GB) is cached under bench/results/models/.
"""

from __future__ import annotations

from pathlib import Path


def build(folder: Path) -> Path:
    import builders
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
    ))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    tokenizer = builders.write_clip_tokenizer(folder.parent / (folder.name + "-tokenizer"))
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def build_taesd(folder: Path) -> Path:
    """A TAESD-shaped AutoencoderTiny (diffusers' default config is madebyollin/taesd's), random weights."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny().save_pretrained(str(folder), safe_serialization=True)
    return folder
