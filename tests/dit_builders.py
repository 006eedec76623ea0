"""Tiny random-weight transformer (DiT) pipelines built locally, in the Hub layout, for tests and benchmarks.

The pattern of diffusers' own `get_dummy_components` (tests/pipelines/<family>/test_*.py), with every tokenizer
written here from a tiny vocab instead of downloaded (T5: a Unigram vocab; Qwen/Gemma: byte-level BPE built
with the `tokenizers` library), so nothing touches the network. Each pipeline is saved with save_pretrained and
loads through the same code a Hub model takes. Sizes are kept minimal: a 32x32 image in 2 steps takes well
under a second on one core.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builders import bytes_to_unicode, write_clip_tokenizer

#: Words given their own token in the tiny tokenizers (the rest is spelled out by characters/bytes).
WORDS = ("a", "cat", "dog", "red", "blue", "the", "in", "make", "it")


def write_t5_tokenizer(folder: Path) -> Any:
    """A T5 tokenizer (Unigram, no sentencepiece needed) with a ~100-piece vocab, saved to `folder`."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(f"\u2581{w}", -1.0) for w in WORDS]
    pieces += [(chr(c), -3.0) for c in range(ord("a"), ord("z") + 1)]
    pieces += [(chr(c), -3.0) for c in range(ord("0"), ord("9") + 1)]
    pieces += [(c, -3.0) for c in ",.!?'-:;()\""]
    tok = T5Tokenizer(vocab=pieces, extra_ids=0)
    tok.save_pretrained(str(folder))
    return T5Tokenizer.from_pretrained(str(folder))


def _byte_vocab(specials: tuple[str, ...]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    for tok in specials:
        vocab[tok] = len(vocab)
    return vocab


QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>")


QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_qwen_tokenizer(folder: Path) -> Any:
    """A byte-level BPE Qwen2 tokenizer (256 byte tokens + Qwen's special tokens, no merges), saved to `folder`."""
    from transformers import Qwen2Tokenizer

    vocab = _byte_vocab(QWEN_SPECIALS)
    tok = Qwen2Tokenizer(vocab=vocab, merges=[])
    tok.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIALS[1:])})
    tok.chat_template = QWEN_CHAT_TEMPLATE  # Z-Image and Flux.2 klein build their prompts with it
    tok.save_pretrained(str(folder))
    return Qwen2Tokenizer.from_pretrained(str(folder))


def write_gemma_tokenizer(folder: Path) -> Any:
    """A BPE Gemma tokenizer over single characters (no merges), saved to `folder`."""
    from transformers import GemmaTokenizer

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4, "\u2581": 5}
    for c in [chr(c) for c in range(32, 127)] + [f"<0x{b:02X}>" for b in range(256)]:
        vocab.setdefault(c, len(vocab))
    tok = GemmaTokenizer(vocab=vocab, merges=[])
    tok.save_pretrained(str(folder))
    return GemmaTokenizer.from_pretrained(str(folder))


def tiny_t5(vocab_size: int, seed: int = 0) -> Any:
    import torch
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    return T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                   relative_attention_num_buckets=8, dropout_rate=0.0)).eval()


def tiny_clip(seed: int = 0, projection: bool = False) -> Any:
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    config = CLIPTextConfig(bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05,
                            num_attention_heads=4, num_hidden_layers=2, pad_token_id=1, vocab_size=1000,
                            hidden_act="gelu", projection_dim=32)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def tiny_flux_vae(seed: int = 0, latent_channels: int = 1, blocks: int = 1) -> Any:
    """diffusers' Flux test VAE: `blocks` blocks of 4 channels (1 block: x1 scale, 32 px images have 32x32 latents;
    5 blocks: x16, for pipelines that resize their inputs to ~1 megapixel, like Flux Kontext)."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,) * blocks,
                         down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks,
                         layers_per_block=1, latent_channels=latent_channels, norm_num_groups=1, use_quant_conv=False,
                         use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035)


def _save(pipe: Any, folder: Path) -> Path:
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def flux_components(folder: Path, seed: int = 0, num_layers: int = 1, num_single_layers: int = 1) -> dict[str, Any]:
    """FluxPipeline's components (also Flux Kontext's): a 1+1-block transformer, CLIP + T5, a 1-block VAE."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=num_layers,
                                         num_single_layers=num_single_layers, attention_head_dim=16,
                                         num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
                                         axes_dims_rope=[4, 4, 8])
    t5_tok = write_t5_tokenizer(folder.parent / (folder.name + "-t5tok"))
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(), "transformer": transformer, "vae": tiny_flux_vae(seed),
        "text_encoder": tiny_clip(seed), "tokenizer": write_clip_tokenizer(folder.parent / (folder.name + "-cliptok")),
        "text_encoder_2": tiny_t5(len(t5_tok), seed), "tokenizer_2": t5_tok,
        "image_encoder": None, "feature_extractor": None,
    }


def build_flux(folder: Path, seed: int = 0, num_layers: int = 1, num_single_layers: int = 1) -> Path:
    """A tiny FluxPipeline (text2img; img2img and inpaint through AutoPipeline)."""
    from diffusers import FluxPipeline

    return _save(FluxPipeline(**flux_components(folder, seed, num_layers, num_single_layers)), folder)


def build_flux_kontext(folder: Path, seed: int = 0) -> Path:
    """A tiny FluxKontextPipeline (instruction editing: img2img with no strength). Its VAE is x16, since Kontext
    resizes the input image to one of its ~1 megapixel training sizes."""
    from diffusers import FluxKontextPipeline

    parts = flux_components(folder, seed)
    parts["vae"] = tiny_flux_vae(seed, blocks=5)
    return _save(FluxKontextPipeline(**parts), folder)


def build_chroma(folder: Path, seed: int = 0) -> Path:
    """A tiny ChromaPipeline (a Flux-like transformer with a T5 encoder only, real CFG)."""
    import torch
    from diffusers import ChromaPipeline, ChromaTransformer2DModel, FlowMatchEulerDiscreteScheduler

    torch.manual_seed(seed)
    transformer = ChromaTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                           attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                           axes_dims_rope=[4, 4, 8], approximator_hidden_dim=32, approximator_layers=1,
                                           approximator_num_channels=16)
    tok = write_t5_tokenizer(folder.parent / (folder.name + "-t5tok"))
    pipe = ChromaPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), transformer=transformer,
                          vae=tiny_flux_vae(seed), text_encoder=tiny_t5(len(tok), seed), tokenizer=tok,
                          image_encoder=None, feature_extractor=None)
    return _save(pipe, folder)


def build_sd3(folder: Path, seed: int = 0) -> Path:
    """A tiny StableDiffusion3Pipeline (two CLIP encoders with projection + T5, a 1-block MMDiT on 16 latent
    channels like the real one, which SD3's inpainting pipeline checks)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(sample_size=32, patch_size=1, in_channels=16, num_layers=1, attention_head_dim=8,
                                        num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=32,
                                        pooled_projection_dim=64, out_channels=16)  # 16: SD3's inpainting wants it
    clip_tok = write_clip_tokenizer(folder.parent / (folder.name + "-cliptok"))
    t5_tok = write_t5_tokenizer(folder.parent / (folder.name + "-t5tok"))
    pipe = StableDiffusion3Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), transformer=transformer, vae=tiny_flux_vae(seed, 16),
        text_encoder=tiny_clip(seed, projection=True), tokenizer=clip_tok,
        text_encoder_2=tiny_clip(seed, projection=True), tokenizer_2=clip_tok,
        text_encoder_3=tiny_t5(len(t5_tok), seed), tokenizer_3=t5_tok, image_encoder=None, feature_extractor=None,
    )
    return _save(pipe, folder)


def _qwen_vae(seed: int) -> Any:
    import torch
    from diffusers import AutoencoderKLQwenImage

    torch.manual_seed(seed)
    return AutoencoderKLQwenImage(base_dim=4 * 6, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1,
                                  temperal_downsample=[False, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4)


def build_qwen_image(folder: Path, seed: int = 0) -> Path:
    """A tiny QwenImagePipeline (Qwen2.5-VL text encoder of width 16, a 2-block transformer, the Qwen VAE)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, QwenImagePipeline, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tok = write_qwen_tokenizer(folder.parent / (folder.name + "-tok"))
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=2,
                                              attention_head_dim=16, num_attention_heads=3, joint_attention_dim=16,
                                              guidance_embeds=False, axes_dims_rope=(8, 4, 4))
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "vocab_size": len(tok),
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
                     "rope_theta": 1000000.0},
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16, vocab_size=len(tok), vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    pipe = QwenImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=_qwen_vae(seed),
                             text_encoder=text_encoder, tokenizer=tok, transformer=transformer)
    return _save(pipe, folder)


def build_z_image(folder: Path, seed: int = 0) -> Path:
    """A tiny ZImagePipeline (Qwen3 text encoder of width 16, a 2-layer S3-DiT, a 2-block VAE)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    tok = write_qwen_tokenizer(folder.parent / (folder.name + "-tok"))
    torch.manual_seed(seed)
    transformer = ZImageTransformer2DModel(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32,
                                           n_layers=2, n_refiner_layers=1, n_heads=2, n_kv_heads=2, norm_eps=1e-5,
                                           qk_norm=True, cap_feat_dim=16, rope_theta=256.0, t_scale=1000.0,
                                           axes_dims=[8, 4, 4], axes_lens=[256, 32, 32])
    with torch.no_grad():  # created with torch.empty (diffusers' test does the same)
        transformer.x_pad_token.copy_(torch.ones_like(transformer.x_pad_token.data))
        transformer.cap_pad_token.copy_(torch.ones_like(transformer.cap_pad_token.data))
    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=[32, 32], layers_per_block=1,
                        latent_channels=16, norm_num_groups=32, sample_size=32, scaling_factor=0.3611,
                        shift_factor=0.1159)
    torch.manual_seed(seed)
    text_encoder = Qwen3Model(Qwen3Config(hidden_size=16, intermediate_size=16, num_hidden_layers=2,
                                          num_attention_heads=2, num_key_value_heads=2, vocab_size=len(tok),
                                          max_position_embeddings=512)).eval()
    pipe = ZImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                          tokenizer=tok, transformer=transformer)
    return _save(pipe, folder)


def build_sana(folder: Path, seed: int = 0) -> Path:
    """A tiny SanaPipeline (Gemma2 text encoder of width 8, a 1-layer linear DiT, a 2-block DC-AE)."""
    import torch
    from diffusers import AutoencoderDC, FlowMatchEulerDiscreteScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    tok = write_gemma_tokenizer(folder.parent / (folder.name + "-tok"))
    torch.manual_seed(seed)
    transformer = SanaTransformer2DModel(patch_size=1, in_channels=4, out_channels=4, num_layers=1,
                                         num_attention_heads=2, attention_head_dim=4, num_cross_attention_heads=2,
                                         cross_attention_head_dim=4, cross_attention_dim=8, caption_channels=8,
                                         sample_size=16)  # 16: the 512 px resolution bins (the pipeline bins sizes)
    torch.manual_seed(seed)
    vae = AutoencoderDC(in_channels=3, latent_channels=4, attention_head_dim=2,  # 4 blocks: x8, 64x64 latents
                        encoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",),
                        decoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",),
                        encoder_block_out_channels=(4, 4, 8, 8), decoder_block_out_channels=(4, 4, 8, 8),
                        encoder_qkv_multiscales=((), (), (), (5,)), decoder_qkv_multiscales=((), (), (), (5,)),
                        encoder_layers_per_block=(1, 1, 1, 1), decoder_layers_per_block=[1, 1, 1, 1],
                        downsample_block_type="conv",
                        upsample_block_type="interpolate", decoder_norm_types="rms_norm", decoder_act_fns="silu",
                        scaling_factor=0.41407)
    torch.manual_seed(seed)
    text_encoder = Gemma2Model(Gemma2Config(head_dim=16, hidden_size=8, initializer_range=0.02, intermediate_size=64,
                                            max_position_embeddings=8192, num_attention_heads=2, num_hidden_layers=1,
                                            num_key_value_heads=2, vocab_size=len(tok),
                                            attn_implementation="eager")).eval()
    pipe = SanaPipeline(tokenizer=tok, text_encoder=text_encoder, vae=vae, transformer=transformer,
                        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))
    return _save(pipe, folder)


def build_flux2_klein(folder: Path, seed: int = 0) -> Path:
    """A tiny Flux2KleinPipeline (Qwen3 causal LM text encoder of width 16 with 28 layers, since the pipeline reads
    hidden layers 9/18/27; a 1+1-block Flux.2 transformer; a 1-block Flux.2 VAE)."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = write_qwen_tokenizer(folder.parent / (folder.name + "-tok"))
    torch.manual_seed(seed)
    transformer = Flux2Transformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                          attention_head_dim=16, num_attention_heads=2, joint_attention_dim=48,
                                          timestep_guidance_channels=256, axes_dims_rope=[4, 4, 4, 4],
                                          guidance_embeds=False)
    torch.manual_seed(seed)
    text_encoder = Qwen3ForCausalLM(Qwen3Config(intermediate_size=16, hidden_size=16, num_hidden_layers=28,
                                                num_attention_heads=2, num_key_value_heads=2, vocab_size=len(tok),
                                                max_position_embeddings=1024,
                                                attn_implementation="eager")).eval()  # eager: 4x faster here
    torch.manual_seed(seed)
    vae = AutoencoderKLFlux2(sample_size=32, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
                             up_block_types=("UpDecoderBlock2D",), block_out_channels=(4,), layers_per_block=1,
                             latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False)
    pipe = Flux2KleinPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
                              tokenizer=tok, transformer=transformer)
    return _save(pipe, folder)


#: family -> builder, for fixtures and the bench.
BUILDERS = {
    "flux": build_flux, "flux-kontext": build_flux_kontext, "chroma": build_chroma, "sd3": build_sd3,
    "qwen-image": build_qwen_image, "z-image": build_z_image, "sana": build_sana, "flux2-klein": build_flux2_klein,
}


def write_gguf(pipeline_folder: Path, out: Path) -> Path:
    """The pipeline's transformer as a GGUF file in diffusers' key layout: 2-D weights whose rows split into 32-value
    blocks as Q8_0, everything else F32 (what community GGUF files hold, at tiny scale)."""
    import gguf
    import numpy as np
    from safetensors.torch import load_file

    state = load_file(str(pipeline_folder / "transformer" / "diffusion_pytorch_model.safetensors"))
    writer = gguf.GGUFWriter(str(out), arch="flux")
    for key, tensor in state.items():
        array = tensor.float().numpy()
        if array.ndim == 2 and array.shape[-1] % 32 == 0:
            packed = gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(key, packed, raw_shape=packed.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(key, array.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
