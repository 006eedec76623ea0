"""`--lora REF[:SCALE]`: a tiny LoRA made locally with peft changes the output, scales work, metadata records it."""

from __future__ import annotations

import json
from pathlib import Path

import builders
import numpy as np
import pytest
from conftest import pixels, place_in_cache, png_text

BASE = ["--steps", "2", "--seed", "3"]


def gen(cli, tiny_sd: Path, out: str, *extra: str) -> np.ndarray:
    r = cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", out, *extra)
    assert r.exit_code == 0, r.stderr
    return pixels(Path(out))


def test_lora_changes_output_and_is_recorded(cli, tiny_sd: Path, tiny_lora: Path) -> None:
    base = gen(cli, tiny_sd, "base.png")
    with_lora = gen(cli, tiny_sd, "lora.png", "--lora", str(tiny_lora))
    assert not np.array_equal(base, with_lora)
    meta = json.loads(png_text(Path("lora.png"))["difftool"])
    assert meta["lora"] == [{"ref": str(tiny_lora), "scale": 1.0}]
    assert "lora" not in json.loads(png_text(Path("base.png"))["difftool"])
    # scale 0 switches the adapter off; another scale gives another image
    assert np.array_equal(gen(cli, tiny_sd, "zero.png", "--lora", f"{tiny_lora}:0"), base)
    half = gen(cli, tiny_sd, "half.png", "--lora", f"{tiny_lora}:0.5")
    assert not np.array_equal(half, base) and not np.array_equal(half, with_lora)


def test_lora_matches_plain_diffusers(cli, tiny_sd: Path, tiny_lora: Path) -> None:
    import torch
    from diffusers import AutoPipelineForText2Image

    ours = gen(cli, tiny_sd, "ours.png", "--lora", f"{tiny_lora}:0.7")
    pipe = AutoPipelineForText2Image.from_pretrained(str(tiny_sd))
    pipe.load_lora_weights(str(tiny_lora.parent), weight_name=tiny_lora.name, adapter_name="x")
    pipe.set_adapters(["x"], adapter_weights=[0.7])
    image = pipe("a cat", num_inference_steps=2, generator=torch.Generator("cpu").manual_seed(3)).images[0]
    assert np.array_equal(ours, np.asarray(image.convert("RGB")))


def test_lora_from_folder_and_hub_cache(cli, tiny_sd: Path, tiny_lora: Path, isolated_env: Path) -> None:
    direct = gen(cli, tiny_sd, "direct.png", "--lora", str(tiny_lora))
    assert np.array_equal(gen(cli, tiny_sd, "folder.png", "--lora", str(tiny_lora.parent)), direct)
    place_in_cache(tiny_lora.parent, "someone/tiny-lora", isolated_env)
    assert np.array_equal(gen(cli, tiny_sd, "hub.png", "--lora", "someone/tiny-lora"), direct)
    named = gen(cli, tiny_sd, "named.png", "--lora", "someone/tiny-lora/pytorch_lora_weights.safetensors:1")
    assert np.array_equal(named, direct)
    meta = json.loads(png_text(Path("named.png"))["difftool"])
    assert meta["lora"] == [{"ref": "someone/tiny-lora/pytorch_lora_weights.safetensors", "scale": 1.0}]


def test_two_loras_stack(cli, tiny_sd: Path, tiny_lora: Path, tmp_path: Path) -> None:
    other = builders.build_lora(tiny_sd, tmp_path / "other-lora", seed=1)
    one = gen(cli, tiny_sd, "one.png", "--lora", str(tiny_lora))
    two = gen(cli, tiny_sd, "two.png", "--lora", str(tiny_lora), "--lora", f"{other}:0.8")
    assert not np.array_equal(one, two)
    meta = json.loads(png_text(Path("two.png"))["difftool"])
    assert [x["scale"] for x in meta["lora"]] == [1.0, 0.8]


@pytest.mark.parametrize(("value", "code", "words"), [
    ("missing.safetensors", 2, "does not exist"),
    ("weights.bin", 3, "pickle"),
    ("not a ref", 2, "not a .safetensors file"),
])
def test_bad_lora_refs_fail_before_loading(cli, tiny_sd: Path, value: str, code: int, words: str) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, "--lora", value)
    assert r.exit_code == code, r.stderr
    assert words in r.stderr
    assert "Loading" not in r.stderr


def test_uncached_hub_lora_offline_is_exit_3(cli, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    r = cli("gen", "a cat", "-m", tiny_sd, *BASE, "--lora", "someone/absent-lora")
    assert r.exit_code == 3, r.stderr
    assert "someone/absent-lora" in r.stderr and "pull" in r.stderr


def test_lora_refused_by_pipelines_without_lora_support(cli, tiny_lora: Path, tmp_path: Path) -> None:
    k22 = builders.build_kandinsky22(tmp_path / "tiny-k22")
    r = cli("gen", "a cat", "-m", k22, "--steps", "2", "--prior-steps", "2", "-W", "32", "-H", "32",
            "--lora", str(tiny_lora))
    assert r.exit_code == 2, r.stderr
    assert "--lora is not supported by KandinskyV22CombinedPipeline" in r.stderr
    assert not list(Path().glob("*.png"))
