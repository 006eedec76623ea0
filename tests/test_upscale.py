"""`difftool upscale` through the CLI on tiny x4, x2-latent and LDM x4 upscalers, and the tiling it rests on."""

from __future__ import annotations

import io
import json
from pathlib import Path

import builders
import numpy as np
import pytest
from conftest import pixels, place_in_cache, png_text
from PIL import Image
from test_img2img import noise_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def tiny_latent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return builders.build_latent_upscaler(tmp_path_factory.mktemp("models") / "tiny-x2-latent")


@pytest.fixture(scope="session")
def tiny_ldm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return builders.build_ldm_upscaler(tmp_path_factory.mktemp("models") / "tiny-ldm")


def plain_x4(folder: Path, image: Image.Image, seed: int, steps: int = 2) -> np.ndarray:
    """The plain diffusers call difftool makes for one tile (prompt "", noise level 20)."""
    import torch
    from diffusers import StableDiffusionUpscalePipeline

    pipe = StableDiffusionUpscalePipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt="", image=image, num_inference_steps=steps, noise_level=20,
               generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return np.asarray(out)


def test_x4_matches_plain_diffusers_named_beside_the_input(cli, tiny_x4: Path, tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    src = noise_image(tmp_path / "pics" / "cat.png", 32, 24)
    r = cli("upscale", src, "-m", tiny_x4, "--steps", "2", "--seed", "3")
    assert r.exit_code == 0, r.stderr
    out = Path(r.stdout.strip())
    assert out == tmp_path / "pics" / "cat.x4.png"
    assert np.array_equal(pixels(out), plain_x4(tiny_x4, Image.open(src).convert("RGB"), 3))
    s = json.loads(png_text(out)["difftool"])
    assert s["task"] == "upscale" and s["scale"] == 4 and s["noise_level"] == 20 and s["seed"] == 3
    assert (s["width"], s["height"]) == (128, 96) and s["source"] == str(src.resolve())
    r = cli("upscale", src, "-m", tiny_x4, "--steps", "2", "--seed", "3")  # never overwrites: a fresh name
    assert r.exit_code == 0 and Path(r.stdout.strip()).name == "cat.x4-1.png"
    assert np.array_equal(pixels(out), pixels(Path(r.stdout.strip())))


def test_tiles_are_blended_in_their_overlap(cli, tiny_x4: Path, tmp_path: Path) -> None:
    """56x32 with --tile 32: two tiles, x in [0,32) and [24,56), sharing 8 input px = 32 output px."""
    src = noise_image(tmp_path / "wide.png", 56, 32, seed=5)
    r = cli("upscale", src, "-m", tiny_x4, "--steps", "2", "--seed", "10", "--tile", "32", "--json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert (rec["width"], rec["height"], rec["tile"], rec["tile_overlap"]) == (224, 128, 32, 8)
    out = pixels(Path(rec["path"])).astype(float)
    assert out.shape == (128, 224, 3)
    image = Image.open(src).convert("RGB")
    t0 = plain_x4(tiny_x4, image.crop((0, 0, 32, 32)), 10).astype(float)  # tile k uses seed + k
    t1 = plain_x4(tiny_x4, image.crop((24, 0, 56, 32)), 11).astype(float)
    assert np.array_equal(out[:, :96], t0[:, :96]) and np.array_equal(out[:, 128:], t1[:, 32:])
    w1 = ((np.arange(32) + 0.5) / 32)[None, :, None]  # linear cross-fade from tile 0 to tile 1
    expected = t0[:, 96:] * (1 - w1) + t1[:, :32] * w1
    assert np.abs(out[:, 96:128] - expected).max() <= 1.0
    middle = out[:, 110:114]  # the middle of the overlap is neither tile alone: a real blend
    assert np.abs(middle - t0[:, 110:114]).mean() > 1 and np.abs(middle - t1[:, 14:18]).mean() > 1


def test_tiled_output_size_is_exact_for_odd_sizes(cli, tiny_x4: Path, tmp_path: Path) -> None:
    src = noise_image(tmp_path / "odd.png", 70, 50)  # not multiples of 8: padded for the model, cropped after
    r = cli("upscale", src, "-m", tiny_x4, "--steps", "2", "--seed", "1", "--tile", "32")
    assert r.exit_code == 0, r.stderr
    assert "tiles of 32x32" in r.stderr
    with Image.open(r.stdout.strip()) as im:
        assert im.size == (280, 200)
        im.load()  # the streamed PNG decodes completely


def test_latent_x2_and_ldm_x4(cli, tiny_latent: Path, tiny_ldm: Path, tmp_path: Path) -> None:
    src = noise_image(tmp_path / "p.png", 40, 24)
    r = cli("upscale", src, "-m", tiny_latent, "--steps", "2", "--seed", "1", "--json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["pipeline"] == "StableDiffusionLatentUpscalePipeline" and rec["scale"] == 2
    assert Path(rec["path"]).name == "p.x2.png" and Image.open(rec["path"]).size == (80, 48)
    r = cli("upscale", src, "-m", tiny_ldm, "--steps", "2", "--seed", "1", "--json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["pipeline"] == "LDMSuperResolutionPipeline" and rec["scale"] == 4
    assert Image.open(rec["path"]).size == (160, 96)  # LDM crops to multiples of 32: difftool pads, then crops


def test_latent_tiled(cli, tiny_latent: Path, tmp_path: Path) -> None:
    src = noise_image(tmp_path / "p.png", 72, 40)
    r = cli("upscale", src, "-m", tiny_latent, "--steps", "2", "--seed", "1", "--tile", "32", "--prompt", "a cat")
    assert r.exit_code == 0, r.stderr
    assert Image.open(r.stdout.strip()).size == (144, 80)
    assert json.loads(png_text(Path(r.stdout.strip()))["difftool"])["prompt"] == "a cat"


def test_options_a_model_does_not_take_are_refused(cli, tiny_x4: Path, tiny_ldm: Path, tmp_path: Path) -> None:
    src = noise_image(tmp_path / "p.png", 32, 32)
    r = cli("upscale", src, "-m", tiny_ldm, "--prompt", "a cat")
    assert r.exit_code == 2 and "--prompt is not accepted by LDMSuperResolutionPipeline" in r.stderr
    r = cli("upscale", src, "-m", tiny_ldm, "--noise-level", "30")
    assert r.exit_code == 2 and "--noise-level" in r.stderr
    r = cli("upscale", src, "-m", tiny_x4, "--noise-level", "400")
    assert r.exit_code == 2 and "0 to 350" in r.stderr
    r = cli("upscale", src, "-m", tiny_x4, "--tile", "4")
    assert r.exit_code == 2 and "at least 8" in r.stderr


def test_noise_level_guidance_and_negative(cli, tiny_x4: Path, tmp_path: Path) -> None:
    src = noise_image(tmp_path / "p.png", 32, 32)
    r = cli("upscale", src, "-m", tiny_x4, "--steps", "2", "--seed", "1", "--noise-level", "50", "--guidance", "2",
            "--negative", "blurry", "--json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert (rec["noise_level"], rec["guidance"], rec["negative"], rec["steps"]) == (50, 2.0, "blurry", 2)


def test_not_an_upscaler_is_exit_3(cli, tiny_sd: Path, tmp_path: Path) -> None:
    src = noise_image(tmp_path / "p.png", 32, 32)
    r = cli("upscale", src, "-m", tiny_sd)
    assert r.exit_code == 3 and "is a StableDiffusionPipeline, not an upscaler" in r.stderr
    r = cli("upscale", src, "-m", "sd15")
    assert r.exit_code == 3 and "not an upscaler" in r.stderr
    (tmp_path / "w.safetensors").write_bytes(b"")
    r = cli("upscale", src, "-m", tmp_path / "w.safetensors")
    assert r.exit_code == 3 and "single-file" in r.stderr


def test_default_model_is_x4_whatever_the_text_to_image_default(cli, tiny_x4: Path, tmp_path: Path,
                                                                isolated_env: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    place_in_cache(tiny_x4, "stabilityai/stable-diffusion-x4-upscaler", isolated_env)
    monkeypatch.setenv("DIFFTOOL_MODEL", "sd15")
    r = cli("upscale", noise_image(tmp_path / "p.png", 32, 32), "--steps", "2", "--seed", "1", "--json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["model"] == "x4" and rec["guidance"] == 7.5 and rec["tile"] == 128  # the registry's x4 defaults


def test_output_file_folder_and_per_input_failure(cli, tiny_x4: Path, tmp_path: Path) -> None:
    a, b = noise_image(tmp_path / "a.png", 32, 32, seed=1), noise_image(tmp_path / "b.png", 32, 32, seed=2)
    r = cli("upscale", a, b, "-m", tiny_x4, "--steps", "2", "--seed", "1", "-o", "big.png")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == ["big-0.png", "big-1.png"]
    (tmp_path / "out").mkdir()
    r = cli("upscale", "-", "-m", tiny_x4, "--steps", "2", "--seed", "1", "-o", "out/",
            input=f"{a}\n{tmp_path / 'missing.png'}\n{b}\n")
    assert r.exit_code == 2
    assert "missing.png' does not exist" in r.stderr and "1 of 3 inputs failed" in r.stderr
    assert r.stdout.split() == [str(Path("out") / "a.x4.png"), str(Path("out") / "b.x4.png")]
    r = cli("upscale", a, "-m", tiny_x4, "--steps", "2", "-o", "big-0.png")  # an explicit name is never replaced
    assert r.exit_code == 2 and "exists" in r.stderr and "Loading" not in r.stderr


# ---- tiling and the streamed PNG -------------------------------------------------------------------------

@pytest.mark.parametrize("length,size,overlap", [(100, 32, 8), (33, 32, 8), (300, 128, 32), (129, 64, 16)])
def test_weights_are_a_partition_of_unity(length: int, size: int, overlap: int) -> None:
    from difftool import tiles

    starts = tiles.positions(length, size, overlap)
    assert starts[0] == 0 and starts[-1] + size == length
    assert all(b - a <= size - overlap for a, b in zip(starts, starts[1:]))
    total = np.zeros(length)
    for s, w in zip(starts, tiles.weights(starts, size, length)):
        assert (w > 0).all()
        total[s:s + size] += w
    assert np.allclose(total, 1.0)


def test_blend_rows_holds_one_band_and_png_stream_round_trips() -> None:
    from difftool import tiles

    rng = np.random.RandomState(0)
    src = (rng.rand(90, 70, 3) * 255).astype(np.uint8)

    def nearest_x2(t):
        x0, y0, x1, y1 = t.box
        return np.repeat(np.repeat(src[y0:y1, x0:x1], 2, axis=0), 2, axis=1)

    bands = list(tiles.blend_rows(70, 90, 24, 8, scale=2, process=nearest_x2))
    assert len(bands) == len(tiles.layout(70, 90, 24, 8)) > 1
    assert max(b.shape[0] for b in bands) <= 24 * 2  # never more than one row of tiles at a time
    out = np.concatenate(bands)
    assert np.array_equal(out, np.repeat(np.repeat(src, 2, axis=0), 2, axis=1))  # identical tiles blend exactly
    buf = io.BytesIO()
    stream = tiles.PngStream(buf, 140, 180, [(b"tEXt", b"difftool\x00{}")])
    for band in bands:
        stream.write(band)
    stream.close()
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        assert im.size == (140, 180) and im.text == {"difftool": "{}"}
        assert np.array_equal(np.asarray(im), out)


def test_upscale_device_and_dtype(cli, tiny_x4: Path, tmp_path: Path) -> None:
    r = cli("upscale", noise_image(tmp_path / "p.png", 32, 32), "-m", tiny_x4, "--steps", "2", "--seed", "1",
            "--device", "cpu", "--dtype", "bf16", "--json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert (rec["device"], rec["dtype"], rec["width"]) == ("cpu", "bf16", 128)


def test_stdin_accepts_json_result_lines(cli, tiny_x4: Path, tmp_path: Path) -> None:
    """`difftool gen --json ... | difftool upscale -`: a JSON result line stands for its "path"."""
    a = noise_image(tmp_path / "a.png", 32, 32)
    line = json.dumps({"path": str(a), "seed": 1, "prompt": "a cat"})
    r = cli("upscale", "-", "-m", tiny_x4, "--steps", "2", "--seed", "1", input=line + "\n")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == [str(tmp_path / "a.x4.png")]
