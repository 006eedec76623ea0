"""Hires fix (difftool.hires): `gen --hires` gives the pixels of the plain two-call diffusers recipe, and its
settings go into the A1111 infotext and back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import pixels, png_text

from difftool import hires
from difftool.readers.a1111 import parse_infotext


def recipe(folder: Path, upscale: Any, prompt: str = "a cat", seed: int = 3, steps: int = 2, total: int = 4,
           strength: float = 0.625) -> np.ndarray:
    """Plain diffusers: text to image at 64 px, enlarge, then image to image with a new generator of the same seed.
    A1111's second pass runs `--hires-steps` (2) steps of a schedule of int(2 / denoise 0.5) = 4: diffusers runs
    int(4 x strength) of 4, so strength 2.5 / 4."""
    import torch
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(str(folder))
    latent = upscale is None or isinstance(upscale, str)
    first = pipe(prompt, num_inference_steps=steps, width=64, height=64, output_type="latent" if latent else "pil",
                 generator=torch.Generator("cpu").manual_seed(seed)).images
    if latent:
        start = torch.nn.functional.interpolate(first, size=(16, 16), mode="bilinear", antialias=False)
    else:
        start = upscale(first[0])
    img2img = AutoPipelineForImage2Image.from_pipe(pipe)
    out = img2img(prompt, image=start, strength=strength, num_inference_steps=total,
                  generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return np.asarray(out.convert("RGB"))


def test_hires_matches_the_two_call_recipe_and_is_recorded(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, "--steps", "2", "--seed", "3", "--hires", "2", "--hires-steps", "2",
            "--hires-denoise", "0.5", "-o", "h.png")
    assert r.exit_code == 0, r.stderr
    out = pixels(Path("h.png"))
    assert out.shape == (128, 128, 3)
    assert np.array_equal(out, recipe(tiny_sd, None))
    text = png_text(Path("h.png"))
    meta = json.loads(text["difftool"])
    assert (meta["width"], meta["height"]) == (64, 64)  # the first pass's size, as A1111's Size
    assert {k: meta[k] for k in meta if k.startswith("hires")} == {
        "hires_scale": 2.0, "hires_steps": 2, "hires_denoise": 0.5, "hires_upscaler": "latent"}
    assert "Size: 64x64, Model: " in text["parameters"]
    assert "Denoising strength: 0.5, Hires upscale: 2, Hires steps: 2, Hires upscaler: Latent" in text["parameters"]
    back = parse_infotext(text["parameters"])
    assert (back["hires_scale"], back["hires_steps"], back["hires_denoise"], back["hires_upscaler"]) == \
        (2.0, 2, 0.5, "latent") and "strength" not in back
    r = cli("gen", "--from", "h.png", "-o", "again.png")  # replayed: the same pixels
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("again.png")), out)


def test_hires_lanczos_and_an_upscaler_model(tiny_sd: Path, tiny_x4: Path) -> None:
    from PIL import Image

    def lanczos(image: Any) -> Any:
        return image.resize((128, 128), Image.Resampling.LANCZOS)

    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(str(tiny_sd))
    pipe.set_progress_bar_config(disable=True)
    spec = hires.check(2, 2, 0.5, "Lanczos")  # A1111's name works too
    assert spec == hires.Hires(2.0, 2, 0.5, "lanczos")
    got = hires.hires_fix(pipe, {"prompt": "a cat", "num_inference_steps": 2, "width": 64, "height": 64}, 3, spec)
    assert np.array_equal(np.asarray(got.convert("RGB")), recipe(tiny_sd, lanczos))
    # an upscaler model (2 steps here: as `difftool upscale` runs it, x4 would take its 75): 256 px, resized to 128
    from diffusers import DiffusionPipeline

    x4 = hires.Upscaler(DiffusionPipeline.from_pretrained(str(tiny_x4)), {"prompt": "", "num_inference_steps": 2})
    spec = hires.check(2, 1, 0.5, str(tiny_x4))
    assert spec is not None and spec.is_model and spec.a1111_upscaler() == str(tiny_x4)
    got = hires.hires_fix(pipe, {"prompt": "a cat", "num_inference_steps": 2}, 3, spec, upscaler=x4)
    assert got.size == (128, 128)


@pytest.mark.parametrize(("args", "words"), [
    (["--hires-denoise", "0.5"], "--hires-denoise needs --hires SCALE"),
    (["--hires", "9"], "--hires"),
    (["--hires", "2", "--hires-denoise", "0"], "--hires-denoise 0"),
])
def test_bad_hires_options_are_usage_errors(cli, tiny_sd: Path, args: list[str], words: str) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, *args)
    assert r.exit_code == 2, r.stderr
    assert words in r.stderr and "Loading" not in r.stderr


def test_schedule_follows_a1111() -> None:
    assert hires.second_pass_schedule(10, 0.7) == (14, 10.5 / 14)  # int(14 x 0.75) = 10 steps run
    assert hires.second_pass_schedule(20, 1.0) == (20, 1.0)
    assert hires.target_size(500, 300, 1.5) == (744, 448)
