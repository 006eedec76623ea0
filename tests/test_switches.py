"""Speed and memory switches: each maps to diffusers' own mechanism and is recorded in the image's metadata;
nothing is loaded that the task does not use (the full VAE under --tiny-vae, an IP-Adapter image encoder);
CPU threads; the few-step paths (turbo aliases' defaults, --scheduler lcm with --lora). No timings asserted."""

from __future__ import annotations

import json
from pathlib import Path

import builders
import numpy as np
import pytest
from conftest import pixels, png_text

BASE = ("--steps", "2", "--seed", "1")


@pytest.fixture(scope="session")
def tiny_taesd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return builders.build_tiny_autoencoder(tmp_path_factory.mktemp("taesd") / "tiny-taesd")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFTOOL_THREADS", "1")


def recorded(path: Path) -> dict:
    return json.loads(png_text(path)["difftool"])


def load(folder: Path, **opts):
    from difftool import references
    from difftool.loading import LoadOptions
    from difftool.loading import load as load_pipeline

    return load_pipeline(references.resolve(str(folder)), "text2img", LoadOptions(**opts)).pipe


def test_tiny_vae_replaces_the_vae_at_load_and_is_recorded(cli, tiny_sd: Path, tiny_taesd: Path) -> None:
    pipe = load(tiny_sd, tiny_vae=str(tiny_taesd))
    assert type(pipe.vae).__name__ == "AutoencoderTiny"  # passed to from_pretrained: the full VAE never loads
    assert pipe.components["vae"] is pipe.vae
    r = cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", "tiny.png", "--tiny-vae", tiny_taesd)
    assert r.exit_code == 0, r.stderr
    assert recorded(Path("tiny.png"))["tiny_vae"] == str(tiny_taesd)
    cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", "full.png")
    assert pixels(Path("tiny.png")).shape == pixels(Path("full.png")).shape == (64, 64, 3)
    assert not np.array_equal(pixels(Path("tiny.png")), pixels(Path("full.png")))
    assert "tiny_vae" not in recorded(Path("full.png"))


def test_tiny_vae_that_is_not_an_autoencoder_tiny_is_exit_3(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", "x.png", "--tiny-vae", tiny_sd)
    assert r.exit_code == 3
    assert "AutoencoderTiny" in r.stderr
    assert not Path("x.png").exists()


@pytest.mark.parametrize("flag, attribute, key", [("--vae-tiling", "use_tiling", "vae_tiling"),
                                                   ("--vae-slicing", "use_slicing", "vae_slicing")])
def test_vae_switches_use_the_vae_api_and_are_recorded(cli, tiny_sd: Path, flag: str, attribute: str,
                                                       key: str) -> None:
    assert getattr(load(tiny_sd, **{key: True}).vae, attribute) is True
    assert getattr(load(tiny_sd).vae, attribute) is False
    r = cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", "x.png", flag)
    assert r.exit_code == 0, r.stderr
    assert recorded(Path("x.png"))[key] is True
    cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", "plain.png")
    # 64 px is below the tile size and one image is one slice: the pixels are the plain ones
    assert np.array_equal(pixels(Path("x.png")), pixels(Path("plain.png")))


def test_compile_wraps_the_denoiser_with_torch_compile(tiny_sd: Path) -> None:
    import torch

    pipe = load(tiny_sd, compile=True)
    assert isinstance(pipe.unet, torch._dynamo.eval_frame.OptimizedModule)
    assert not isinstance(load(tiny_sd).unet, torch._dynamo.eval_frame.OptimizedModule)


def test_every_switch_is_in_switches_and_base_settings(tiny_sd: Path) -> None:
    from difftool.loading import LoadOptions

    opts = LoadOptions(offload="model", vae_tiling=True, vae_slicing=True, compile=True, tiny_vae="org/taesd")
    assert opts.switches() == {"offload": "model", "vae_tiling": True, "vae_slicing": True, "compile": True,
                               "tiny_vae": "org/taesd"}
    assert LoadOptions().switches() == {}


@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_offload_needs_a_gpu(cli, tiny_sd: Path, mode: str) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", "x.png", "--offload", mode, "--device", "cpu")
    assert r.exit_code == 2
    assert "--offload" in r.stderr and "cuda" in r.stderr
    assert not Path("x.png").exists()


def test_unknown_offload_mode_fails_before_loading(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, "--offload", "disk")
    assert r.exit_code == 2
    assert "model, group or sequential" in r.stderr
    assert "Loading" not in r.stderr


def test_bf16_on_cpu_is_recorded_and_runs(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", "bf.png", "--dtype", "bf16")
    assert r.exit_code == 0, r.stderr
    assert recorded(Path("bf.png"))["dtype"] == "bf16"
    assert load(tiny_sd, dtype="bf16").unet.dtype.__str__() == "torch.bfloat16"


def test_cpu_threads_follow_difftool_threads_and_usable_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import torch

    from difftool import config
    from difftool.loading.setup import cpu_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("DIFFTOOL_THREADS", "1")  # what the CLI hands the engine
        assert cpu_threads(config.lookup("threads", None, None, int)) == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("DIFFTOOL_THREADS")
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
        torch.set_num_threads(64)
        assert cpu_threads() <= len(os.sched_getaffinity(0))
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert cpu_threads() is None  # the user's own OpenMP setting is left alone
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def sd_with_image_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SD pipeline saved with a tiny IP-Adapter image encoder."""
    import torch
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    folder = tmp_path_factory.mktemp("models") / "sd-image-encoder"
    torch.manual_seed(0)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, image_size=32,
        patch_size=4, projection_dim=32))
    tokenizer = builders.write_clip_tokenizer(folder.parent / "sd-image-encoder-tokenizer")
    StableDiffusionPipeline(**builders.sd_components(), tokenizer=tokenizer, safety_checker=None,
                            feature_extractor=CLIPImageProcessor(crop_size=32, size=32), image_encoder=encoder,
                            requires_safety_checker=False).save_pretrained(str(folder), safe_serialization=True)
    return folder


def test_an_unused_image_encoder_is_not_loaded(cli, sd_with_image_encoder: Path, tiny_sd: Path) -> None:
    assert json.loads((sd_with_image_encoder / "model_index.json").read_text())["image_encoder"][0] is not None
    assert load(sd_with_image_encoder).image_encoder is None
    r = cli("gen", "a cat", "-m", sd_with_image_encoder, *BASE, "-o", "x.png")
    assert r.exit_code == 0, r.stderr
    cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", "plain.png")
    assert np.array_equal(pixels(Path("x.png")), pixels(Path("plain.png")))  # same weights, same image


def test_turbo_aliases_default_to_one_step_without_guidance() -> None:
    from difftool import registry

    for alias, family in (("sd-turbo", "sd"), ("sdxl-turbo", "sdxl")):
        spec = registry.get(alias)
        assert spec is not None and spec.family == family
        assert (spec.steps, spec.guidance, spec.width, spec.height) == (1, 0.0, 512, 512)


def test_lcm_scheduler_with_a_lora_is_the_few_step_path(cli, tiny_sd: Path, tmp_path_factory) -> None:
    lora = builders.build_lora(tiny_sd, tmp_path_factory.mktemp("lcm-lora") / "lora")
    r = cli("gen", "a cat", "-m", tiny_sd, "--steps", "2", "--seed", "1", "--guidance", "1", "--scheduler", "lcm",
            "--lora", lora, "-o", "lcm.png")
    assert r.exit_code == 0, r.stderr
    meta = recorded(Path("lcm.png"))
    assert meta["scheduler"] == "lcm" and meta["steps"] == 2 and meta["guidance"] == 1.0
    assert meta["lora"] == [{"ref": str(lora), "scale": 1.0}]
    cli("gen", "a cat", "-m", tiny_sd, "--steps", "2", "--seed", "1", "--guidance", "1", "-o", "ddim.png")
    assert not np.array_equal(pixels(Path("lcm.png")), pixels(Path("ddim.png")))
