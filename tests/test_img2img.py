"""`difftool img2img` through the CLI on the tiny Stable Diffusion model, and the input-image reader it uses."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import pixels, place_in_cache, png_text
from PIL import Image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def noise_image(path: Path, width: int = 64, height: int = 48, seed: int = 0, mode: str = "RGB", **save) -> Path:
    rng = np.random.RandomState(seed)
    im = Image.fromarray((rng.rand(height, width, 3) * 255).astype(np.uint8))
    if mode != "RGB":
        im = im.convert(mode)
    im.save(path, **save)
    return path


def settings_of(path: Path) -> dict:
    return json.loads(png_text(path)["difftool"])


def bomb_png(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny file whose header claims width x height pixels (never decoded by difftool)."""
    def chunk(cid: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", zlib.crc32(cid + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_img2img_matches_plain_diffusers_and_records_source(cli, tiny_sd: Path, tmp_path: Path) -> None:
    import hashlib

    import torch
    from diffusers import AutoPipelineForImage2Image

    src = noise_image(tmp_path / "photo.png")
    r = cli("img2img", src, "a cat", "-m", tiny_sd, "--steps", "4", "--seed", "7", "--strength", "0.5")
    assert r.exit_code == 0, r.stderr
    out = Path(r.stdout.strip())
    assert out == Path("photo-a-cat-7.png")  # in the current folder
    pipe = AutoPipelineForImage2Image.from_pretrained(tiny_sd)
    pipe.set_progress_bar_config(disable=True)
    plain = pipe(prompt="a cat", image=Image.open(src).convert("RGB"), strength=0.5, num_inference_steps=4,
                 generator=torch.Generator("cpu").manual_seed(7)).images[0]
    assert np.array_equal(pixels(out), np.asarray(plain))
    s = settings_of(out)
    assert s["task"] == "img2img" and s["strength"] == 0.5 and s["seed"] == 7 and s["steps"] == 4
    assert s["source"] == str(src.resolve())
    assert s["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert "Denoising strength: 0.5" in png_text(out)["parameters"]


def test_default_strength_for_unknown_model_is_0_6(cli, tiny_sd: Path, tmp_path: Path) -> None:
    r = cli("img2img", noise_image(tmp_path / "a.png"), "x", "-m", tiny_sd, "--steps", "2", "--seed", "1", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["strength"] == 0.6


def test_registry_strength_and_enough_steps_for_a_one_step_model(cli, tiny_sd: Path, tmp_path: Path,
                                                                 isolated_env: Path) -> None:
    place_in_cache(tiny_sd, "stabilityai/sd-turbo", isolated_env)
    r = cli("img2img", noise_image(tmp_path / "a.png"), "x", "-m", "sd-turbo", "--seed", "1", "--json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["strength"] == 0.5  # the registry's value for sd-turbo
    assert rec["steps"] == 2 and rec["guidance"] == 0.0  # 1 step x 0.5 would leave no denoising step


def test_strength_that_leaves_no_step_is_refused(cli, tiny_sd: Path, tmp_path: Path) -> None:
    r = cli("img2img", noise_image(tmp_path / "a.png"), "x", "-m", tiny_sd, "--steps", "2", "--strength", "0.2")
    assert r.exit_code == 2
    assert "--strength 0.2 with 2 steps" in r.stderr
    r = cli("img2img", noise_image(tmp_path / "a.png"), "x", "-m", tiny_sd, "--strength", "1.5")
    assert r.exit_code == 2


@pytest.mark.parametrize("size,flags,expected", [
    ((64, 48), [], (64, 48)),  # fits the model's 64x64 native area: kept
    ((80, 60), [], (72, 56)),  # larger than 64x64: scaled down, aspect kept, multiples of 8
    ((60, 45), [], (64, 48)),  # rounded to multiples of 8
    ((64, 48), ["--width", "32"], (32, 24)),  # one side given: the other follows the aspect ratio
    ((64, 48), ["-W", "32", "-H", "32"], (32, 32)),  # both: exactly that (center crop)
])
def test_input_is_sized_for_the_model(cli, tiny_sd: Path, tmp_path: Path, size, flags, expected) -> None:
    src = noise_image(tmp_path / "in.png", *size)
    r = cli("img2img", src, "x", "-m", tiny_sd, "--steps", "2", "--seed", "1", *flags)
    assert r.exit_code == 0, r.stderr
    with Image.open(r.stdout.strip()) as im:
        assert im.size == expected


def test_width_not_multiple_of_8_is_refused(cli, tiny_sd: Path, tmp_path: Path) -> None:
    r = cli("img2img", noise_image(tmp_path / "in.png"), "x", "-m", tiny_sd, "--width", "30")
    assert r.exit_code == 2 and "multiple of 8" in r.stderr


def test_stdin_paths_and_num_images(cli, tiny_sd: Path, tmp_path: Path) -> None:
    a, b = noise_image(tmp_path / "a.png", seed=1), noise_image(tmp_path / "b.png", seed=2)
    r = cli("img2img", "-", "x", "-m", tiny_sd, "--steps", "2", "--seed", "5", "-n", "2", "--json",
            input=f"{a}\n\n{b}\n")
    assert r.exit_code == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(Path(x["source"]).name, x["seed"]) for x in recs] == [("a.png", 5), ("a.png", 6), ("b.png", 5),
                                                                   ("b.png", 6)]
    assert len({x["path"] for x in recs}) == 4 and all(Path(x["path"]).exists() for x in recs)


def test_missing_and_non_image_inputs_fail_but_the_others_complete(cli, tiny_sd: Path, tmp_path: Path) -> None:
    good = noise_image(tmp_path / "good.png")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    r = cli("img2img", "-", "x", "-m", tiny_sd, "--steps", "2", "--seed", "1",
            input=f"{tmp_path / 'missing.png'}\n{good}\n{text}\n")
    assert r.exit_code == 2
    assert "missing.png' does not exist" in r.stderr and "notes.png' is not an image" in r.stderr
    assert "2 of 3 inputs failed" in r.stderr
    written = r.stdout.split()
    assert len(written) == 1 and Path(written[0]).name.startswith("good-")


def test_only_bad_inputs_stop_before_loading_the_model(cli, tiny_sd: Path, tmp_path: Path) -> None:
    r = cli("img2img", tmp_path / "nope.jpg", "x", "-m", tiny_sd)
    assert r.exit_code == 2 and "nope.jpg' does not exist" in r.stderr
    assert "Loading" not in r.stderr and r.stdout == ""


def test_decompression_bomb_is_refused(cli, tiny_sd: Path, tmp_path: Path) -> None:
    r = cli("img2img", bomb_png(tmp_path / "bomb.png"), "x", "-m", tiny_sd)
    assert r.exit_code == 2
    assert "bomb.png' is refused: 100000x100000 pixels exceed the limit" in r.stderr and "decompression bomb" in r.stderr


def test_pixel_limit_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from difftool import images
    from difftool.errors import UsageError

    src = noise_image(tmp_path / "a.png", 64, 48)
    monkeypatch.setenv("DIFFTOOL_MAX_PIXELS", "1000")
    with pytest.raises(UsageError, match="64x48 pixels exceed the limit of 1000 "):
        images.probe(src)
    monkeypatch.setenv("DIFFTOOL_MAX_PIXELS", "5000")
    assert images.probe(src).width == 64


# ---- odd inputs: alpha, palette, 16-bit, JPEG/WebP, EXIF rotation ------------------------------------------

def odd_inputs(folder: Path) -> dict[str, Path]:
    rng = np.random.RandomState(3)
    rgb = (rng.rand(48, 64, 3) * 255).astype(np.uint8)
    out = {}
    rgba = np.dstack([rgb, np.full((48, 64), 255, np.uint8)])
    rgba[:, :32, 3] = 0  # left half transparent
    Image.fromarray(rgba, "RGBA").save(out.setdefault("rgba", folder / "rgba.png"))
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(out.setdefault("palette", folder / "palette.png"), transparency=0)
    gray16 = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (48, 1))
    Image.fromarray(gray16).save(out.setdefault("gray16", folder / "gray16.png"))
    Image.fromarray(rgb).save(out.setdefault("jpeg", folder / "photo.jpg"), quality=90)
    Image.fromarray(rgb).save(out.setdefault("webp", folder / "photo.webp"))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    Image.fromarray(rgb).save(out.setdefault("rotated", folder / "rotated.jpg"), exif=exif)
    return out


def test_reader_normalises_odd_inputs(tmp_path: Path) -> None:
    from difftool import images

    files = odd_inputs(tmp_path)
    loaded = {k: images.load(p) for k, p in files.items()}
    assert all(im.mode == "RGB" for im in loaded.values())
    assert (np.asarray(loaded["rgba"])[:, :32] == 255).all()  # transparent -> white background
    g = np.asarray(loaded["gray16"])[0, :, 0]
    assert g[0] == 0 and g[-1] == 255 and 120 <= g[32] <= 135  # scaled down from 16 bits, not clipped
    assert loaded["rotated"].size == (48, 64) and images.probe(files["rotated"]).width == 48
    assert loaded["jpeg"].size == loaded["webp"].size == (64, 48)
    mask = images.load(files["rgba"], mode="L", background=(0, 0, 0))
    assert mask.mode == "L" and (np.asarray(mask)[:, :32] == 0).all()  # transparent mask pixels = keep


def test_img2img_accepts_odd_inputs(cli, tiny_sd: Path, tmp_path: Path) -> None:
    files = odd_inputs(tmp_path)
    r = cli("img2img", "-", "x", "-m", tiny_sd, "--steps", "2", "--seed", "1", "--json",
            input="\n".join(str(p) for p in files.values()))
    assert r.exit_code == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(recs) == len(files)
    sizes = {Path(x["source"]).name: (x["width"], x["height"]) for x in recs}
    assert sizes["rotated.jpg"] == (48, 64) and sizes["gray16.png"] == (64, 48)


def test_scheduler_and_negative_are_passed(cli, tiny_sd: Path, tmp_path: Path) -> None:
    r = cli("img2img", noise_image(tmp_path / "a.png"), "x", "-m", tiny_sd, "--steps", "2", "--seed", "1",
            "--scheduler", "euler", "--negative", "blurry", "--guidance", "3", "--json", "-o", "out/{name}-{index}.png")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["scheduler"] == "euler" and rec["negative"] == "blurry" and rec["guidance"] == 3.0
    assert rec["path"] == str(Path("out") / "a-0.png")


def test_kandinsky_img2img_keeps_the_orientation(cli, k22: Path, tmp_path: Path) -> None:
    """diffusers 0.42's Kandinsky img2img hands (width, height) to preprocess(image, height, width); difftool
    undoes the swap, so a landscape input stays landscape."""
    r = cli("img2img", noise_image(tmp_path / "wide.png", 64, 48), "a cat", "-m", k22, "--steps", "2",
            "--seed", "1", "--prior-steps", "2", "--prior-guidance", "2", "--json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["pipeline"] == "KandinskyV22Img2ImgCombinedPipeline" and (rec["width"], rec["height"]) == (64, 48)
    assert (rec["prior_steps"], rec["prior_guidance"]) == (2, 2.0)


def test_prior_options_are_refused_on_stable_diffusion(cli, tiny_sd: Path, tmp_path: Path) -> None:
    r = cli("img2img", noise_image(tmp_path / "a.png"), "x", "-m", tiny_sd, "--prior-steps", "2")
    assert r.exit_code == 2 and "--prior-steps is not accepted" in r.stderr


def test_kandinsky_without_an_inpainting_decoder_is_exit_3(cli, k22: Path, tmp_path: Path) -> None:
    from test_inpaint import mask_image

    r = cli("inpaint", noise_image(tmp_path / "a.png"), mask_image(tmp_path / "m.png"), "x", "-m", k22,
            "--steps", "2")
    assert r.exit_code == 3 and "inpainting decoder" in r.stderr  # (loading.py's check, before any pipeline call)


def test_device_and_dtype(cli, tiny_sd: Path, tmp_path: Path) -> None:
    r = cli("img2img", noise_image(tmp_path / "a.png"), "x", "-m", tiny_sd, "--steps", "2", "--seed", "1",
            "--device", "cpu", "--dtype", "bf16", "--json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    assert (rec["device"], rec["dtype"]) == ("cpu", "bf16")
    r = cli("img2img", noise_image(tmp_path / "a.png"), "x", "-m", tiny_sd, "--device", "tpu")
    assert r.exit_code == 2
