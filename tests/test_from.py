"""`--from IMAGE`: re-running stored settings gives the same pixels; typed options win."""

from __future__ import annotations

import json
from pathlib import Path

import builders
import numpy as np
import pytest
from conftest import pixels, png_text


def meta(path: str) -> dict:
    return json.loads(png_text(Path(path))["difftool"])


def test_rerun_gives_same_pixels(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a red cat", "-m", tiny_sd, "--steps", "2", "--seed", "77", "--negative", "dog",
            "--guidance", "5", "--scheduler", "euler", "-W", "48", "-H", "32", "-o", "first.png")
    assert r.exit_code == 0, r.stderr
    r = cli("gen", "--from", "first.png", "-o", "again.png")
    assert r.exit_code == 0, r.stderr
    assert "re-running the settings of first.png" in r.stderr
    assert np.array_equal(pixels(Path("again.png")), pixels(Path("first.png")))
    a, b = meta("first.png"), meta("again.png")
    for key in ("prompt", "negative", "seed", "steps", "guidance", "scheduler", "width", "height", "model"):
        assert a[key] == b[key], key


def test_typed_options_win(cli, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = cli("gen", "a red cat", "-m", tiny_sd, "--steps", "2", "--seed", "5", "-o", "first.png")
    assert r.exit_code == 0, r.stderr
    monkeypatch.setenv("DIFFTOOL_STEPS", "4")  # the stored value beats the environment ...
    r = cli("gen", "--from", "first.png", "-o", "same.png")
    assert r.exit_code == 0, r.stderr
    assert meta("same.png")["steps"] == 2
    r = cli("gen", "--from", "first.png", "--steps", "3", "-o", "more.png")  # ... a typed flag beats it
    assert r.exit_code == 0, r.stderr
    m = meta("more.png")
    assert (m["steps"], m["seed"], m["prompt"]) == (3, 5, "a red cat")
    assert not np.array_equal(pixels(Path("more.png")), pixels(Path("first.png")))
    r = cli("gen", "a blue dog", "--from", "first.png", "--seed", "6", "-o", "dog.png")
    assert r.exit_code == 0, r.stderr
    m = meta("dog.png")
    assert (m["prompt"], m["seed"], m["steps"]) == ("a blue dog", 6, 2)


def test_rerun_replays_lora(cli, tiny_sd: Path, tmp_path: Path) -> None:
    lora = builders.build_lora(tiny_sd, tmp_path / "lora-src")
    r = cli("gen", "a cat", "-m", tiny_sd, "--steps", "2", "--seed", "9", "--lora", f"{lora}:0.6", "-o", "l.png")
    assert r.exit_code == 0, r.stderr
    r = cli("gen", "--from", "l.png", "-o", "l2.png")
    assert r.exit_code == 0, r.stderr
    assert meta("l2.png")["lora"] == [{"ref": str(lora), "scale": 0.6}]
    assert np.array_equal(pixels(Path("l2.png")), pixels(Path("l.png")))


def test_from_a1111_png(cli, tiny_sd: Path, tmp_path: Path) -> None:
    from test_info import a1111_png

    a1111_png(tmp_path / "a.png", "a castle\nNegative prompt: fog\nSteps: 2, Sampler: Euler a, CFG scale: 4, "
                                  "Seed: 1234, Size: 32x32, Model: some-checkpoint-v3")
    r = cli("gen", "--from", "a.png", "-m", tiny_sd, "-o", "castle.png")
    assert r.exit_code == 0, r.stderr
    assert "some-checkpoint-v3" in r.stderr  # not a model difftool can load: said, and -m used
    m = meta("castle.png")
    assert (m["prompt"], m["negative"], m["steps"], m["guidance"], m["seed"]) == ("a castle", "fog", 2, 4.0, 1234)
    assert (m["scheduler"], m["width"], m["height"], m["model"]) == ("euler-a", 32, 32, str(tiny_sd))


def test_from_image_without_settings_is_exit_2(cli, tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    r = cli("gen", "--from", "plain.png")
    assert r.exit_code == 2
    assert "holds no generation settings" in r.stderr
    r = cli("gen", "--from", "nothere.png")
    assert r.exit_code == 2


def test_gen_without_prompt_or_from_is_exit_2(cli, tiny_sd: Path) -> None:
    r = cli("gen", "-m", tiny_sd)
    assert r.exit_code == 2
    assert "No prompts given" in r.stderr


def test_grid_contact_sheet(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, "--steps", "2", "--seed", "1", "-n", "3", "-o", "{seed}.png", "--grid")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == ["1.png", "2.png", "3.png", "1-grid.png"]
    sheet = pixels(Path("1-grid.png"))
    assert sheet.shape == (128, 128, 3)  # 2 columns x 2 rows of 64 px cells
    assert np.array_equal(sheet[:64, :64], pixels(Path("1.png")))
    assert np.array_equal(sheet[64:, :64], pixels(Path("3.png")))
    assert json.loads(png_text(Path("1-grid.png"))["difftool"])["images"] == lines[:3]
    r = cli("gen", "a cat", "-m", tiny_sd, "--steps", "2", "--seed", "1", "-o", "single.png", "--grid", "--json")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 1  # one image: no sheet


def noise_png(path: Path, width: int = 64, height: int = 64, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.RandomState(seed)
    Image.fromarray((rng.rand(height, width, 3) * 255).astype(np.uint8)).save(path)
    return path


def test_img2img_rerun_same_pixels_and_source(cli, tiny_sd: Path, tmp_path: Path) -> None:
    src = noise_png(tmp_path / "photo.png")
    r = cli("img2img", src, "a cat", "-m", tiny_sd, "--steps", "4", "--seed", "7", "--strength", "0.5", "-o", "e.png")
    assert r.exit_code == 0, r.stderr
    r = cli("img2img", "--from", "e.png", "-o", "e2.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("e2.png")), pixels(Path("e.png")))
    m = meta("e2.png")
    assert (m["source"], m["strength"], m["prompt"], m["seed"]) == (str(src.resolve()), 0.5, "a cat", 7)
    other = noise_png(tmp_path / "other.png", seed=1)  # a typed IMAGE replaces the stored one
    r = cli("img2img", other, "--from", "e.png", "--strength", "0.75", "-o", "e3.png")
    assert r.exit_code == 0, r.stderr
    m = meta("e3.png")
    assert (m["source"], m["strength"], m["prompt"]) == (str(other.resolve()), 0.75, "a cat")
    src.write_bytes(other.read_bytes())  # the source changed since: said
    r = cli("img2img", "--from", "e.png", "-o", "e4.png")
    assert r.exit_code == 0 and "changed since" in r.stderr
    src.unlink()
    r = cli("img2img", "--from", "e.png", "-o", "e5.png")
    assert r.exit_code == 2 and "no longer exists" in r.stderr


def test_img2img_needs_image_and_prompt_without_from(cli, tiny_sd: Path, tmp_path: Path) -> None:
    r = cli("img2img", noise_png(tmp_path / "p.png"), "-m", tiny_sd)
    assert r.exit_code == 2 and "needs IMAGE and PROMPT" in r.stderr


def test_inpaint_rerun_same_pixels(cli, tiny_sd: Path, tmp_path: Path) -> None:
    from PIL import Image

    src = noise_png(tmp_path / "photo.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask.save(tmp_path / "mask.png")
    r = cli("inpaint", src, tmp_path / "mask.png", "a hat", "-m", tiny_sd, "--steps", "2", "--seed", "3", "-o", "i.png")
    assert r.exit_code == 0, r.stderr
    r = cli("inpaint", "--from", "i.png", "-o", "i2.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("i2.png")), pixels(Path("i.png")))
    assert meta("i2.png")["mask"] == str((tmp_path / "mask.png").resolve())


def test_upscale_rerun_same_pixels(cli, tmp_path: Path) -> None:
    ldm = builders.build_ldm_upscaler(tmp_path / "tiny-ldm")
    src = noise_png(tmp_path / "small.png", 16, 16)
    r = cli("upscale", src, "-m", ldm, "--steps", "2", "--seed", "4", "-o", "up.png")
    assert r.exit_code == 0, r.stderr
    r = cli("upscale", "--from", "up.png", "-o", "up2.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("up2.png")), pixels(Path("up.png")))
    assert meta("up2.png")["model"] == str(ldm)
    big = noise_png(tmp_path / "wide.png", 24, 16, seed=2)
    r = cli("upscale", src, big, "-m", ldm, "--steps", "2", "--seed", "4", "-o", "g/", "--grid")
    assert r.exit_code == 0, r.stderr
    assert len(r.stdout.splitlines()) == 3 and r.stdout.splitlines()[-1].endswith("-grid.png")
    assert pixels(Path(r.stdout.splitlines()[-1])).shape == (64, 192, 3)  # 2 cells of the largest (96x64) image


def test_img2img_lora_and_grid(cli, tiny_sd: Path, tmp_path: Path) -> None:
    lora = builders.build_lora(tiny_sd, tmp_path / "lora-src")
    src = noise_png(tmp_path / "photo.png")
    base = ["img2img", src, "a cat", "-m", tiny_sd, "--steps", "2", "--seed", "5", "--strength", "0.5"]
    r = cli(*base, "-n", "2", "-o", "{seed}.png", "--grid")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == ["5.png", "6.png", "5-grid.png"]
    assert pixels(Path("5-grid.png")).shape == (64, 128, 3)
    r = cli(*base, "--lora", str(lora), "-o", "l.png")
    assert r.exit_code == 0, r.stderr
    assert meta("l.png")["lora"] == [{"ref": str(lora), "scale": 1.0}]
    assert not np.array_equal(pixels(Path("l.png")), pixels(Path("5.png")))


KFAST = ("--steps", "2", "--prior-steps", "2", "-W", "32", "-H", "32")


def test_variation_rerun_same_pixels(cli, k22: Path, tmp_path: Path) -> None:
    src = noise_png(tmp_path / "photo.png")
    r = cli("variation", src, "-m", k22, *KFAST, "--seed", "2", "--prompt", "red", "--prompt-weight", "0.4",
            "-o", "v.png")
    assert r.exit_code == 0, r.stderr
    r = cli("variation", "--from", "v.png", "-o", "v2.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("v2.png")), pixels(Path("v.png")))
    m = meta("v2.png")
    assert (m["source"], m["prompt"], m["prompt_weight"], m["model"]) == (str(src.resolve()), "red", 0.4, str(k22))


def test_interpolate_rerun_same_pixels(cli, k22: Path, tmp_path: Path) -> None:
    src = noise_png(tmp_path / "photo.png")
    r = cli("interpolate", "a cat", src, "-m", k22, *KFAST, "--seed", "3", "--weights", "0.3,0.7", "-o", "mix.png")
    assert r.exit_code == 0, r.stderr
    r = cli("interpolate", "--from", "mix.png", "-o", "mix2.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("mix2.png")), pixels(Path("mix.png")))
    m = meta("mix2.png")
    assert m["weights"] == [0.3, 0.7] and m["items"][0] == {"text": "a cat"}
    r = cli("interpolate", "a dog", "a bird", "a fish", "--from", "mix.png", "-o", "other.png")  # typed items win
    assert r.exit_code == 0, r.stderr
    m = meta("other.png")
    assert [i.get("text") for i in m["items"]] == ["a dog", "a bird", "a fish"] and m["seed"] == 3
    src.unlink()  # a recorded image item that is gone is an error, not a text
    r = cli("interpolate", "--from", "mix.png", "-o", "gone.png")
    assert r.exit_code == 2 and "no longer exists" in r.stderr


def test_other_tools_clip_skip_follows_the_model_family(cli, tiny_sd: Path, tmp_path: Path) -> None:
    """`Clip skip: 2` from A1111/Forge is one skipped layer on SD 1.x, and the default (none) on SDXL, whose
    default already is the penultimate layer."""
    from test_info import a1111_png

    xl = builders.build_sdxl(tmp_path / "xl")
    a1111_png(tmp_path / "a.png", "a castle\nSteps: 1, Sampler: Euler, CFG scale: 4, Seed: 3, Size: 64x64, Clip skip: 2")
    r = cli("gen", "--from", tmp_path / "a.png", "-m", tiny_sd, "-o", "sd.png")
    assert r.exit_code == 0, r.stderr
    assert meta("sd.png")["clip_skip"] == 1
    r = cli("gen", "--from", tmp_path / "a.png", "-m", xl, "-o", "xl.png")
    assert r.exit_code == 0, r.stderr
    assert "clip_skip" not in meta("xl.png")
