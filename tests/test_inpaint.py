"""`difftool inpaint` through the CLI on the tiny Stable Diffusion model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import pixels, png_text
from PIL import Image
from test_img2img import noise_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mask_image(path: Path, width: int = 64, height: int = 48, box=(16, 8, 48, 40), alpha: bool = False) -> Path:
    m = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 255
    if alpha:  # white everywhere, transparent outside the box
        Image.fromarray(np.dstack([np.full((height, width, 3), 255, np.uint8), m]), "RGBA").save(path)
    else:
        Image.fromarray(m).save(path)
    return path


def test_inpaint_matches_plain_diffusers_and_records_the_mask(cli, tiny_sd: Path, tmp_path: Path) -> None:
    import torch
    from diffusers import AutoPipelineForInpainting

    src, mask = noise_image(tmp_path / "room.png"), mask_image(tmp_path / "mask.png")
    r = cli("inpaint", src, mask, "a red sofa", "-m", tiny_sd, "--steps", "3", "--seed", "4", "--json")
    assert r.exit_code == 0, r.stderr
    rec = json.loads(r.stdout)
    pipe = AutoPipelineForInpainting.from_pretrained(tiny_sd)
    pipe.set_progress_bar_config(disable=True)
    plain = pipe(prompt="a red sofa", image=Image.open(src).convert("RGB"), mask_image=Image.open(mask).convert("L"),
                 height=48, width=64, num_inference_steps=3, generator=torch.Generator("cpu").manual_seed(4)).images[0]
    assert np.array_equal(pixels(Path(rec["path"])), np.asarray(plain))
    stored = json.loads(png_text(Path(rec["path"]))["difftool"])
    assert stored["task"] == "inpaint" and stored["pipeline"] == "StableDiffusionInpaintPipeline"
    assert stored["mask"] == str(mask.resolve())
    assert stored["mask_sha256"] == hashlib.sha256(mask.read_bytes()).hexdigest()
    assert stored["strength"] == 1.0  # the pipeline's default: repaint the masked area fully
    assert Path(rec["path"]).name == "room-a-red-sofa-4.png"


def test_mask_of_another_size_is_resized_with_a_warning(cli, tiny_sd: Path, tmp_path: Path) -> None:
    src, mask = noise_image(tmp_path / "a.png"), mask_image(tmp_path / "m.png", 32, 24, box=(8, 4, 24, 20))
    r = cli("inpaint", src, mask, "x", "-m", tiny_sd, "--steps", "2", "--seed", "1", "--strength", "0.5", "--json")
    assert r.exit_code == 0, r.stderr
    assert "is 32x24 but image" in r.stderr and "resized" in r.stderr
    rec = json.loads(r.stdout)
    assert (rec["width"], rec["height"], rec["strength"]) == (64, 48, 0.5)


def test_all_black_mask_is_refused_before_loading(cli, tiny_sd: Path, tmp_path: Path) -> None:
    src = noise_image(tmp_path / "a.png")
    black = mask_image(tmp_path / "black.png", box=(0, 0, 0, 0))
    r = cli("inpaint", src, black, "x", "-m", tiny_sd)
    assert r.exit_code == 2 and "black.png' has no white pixel" in r.stderr and "Loading" not in r.stderr
    # a mask that is white but fully transparent counts as black (transparent = keep)
    clear = mask_image(tmp_path / "clear.png", box=(0, 0, 0, 0), alpha=True)
    r = cli("inpaint", src, clear, "x", "-m", tiny_sd)
    assert r.exit_code == 2 and "clear.png' has no white pixel" in r.stderr


def test_transparent_mask_keeps_its_opaque_part(cli, tiny_sd: Path, tmp_path: Path) -> None:
    src, mask = noise_image(tmp_path / "a.png"), mask_image(tmp_path / "m.png", alpha=True)
    r = cli("inpaint", src, mask, "x", "-m", tiny_sd, "--steps", "2", "--seed", "1")
    assert r.exit_code == 0, r.stderr


def test_several_masks_from_stdin_for_one_image(cli, tiny_sd: Path, tmp_path: Path) -> None:
    src = noise_image(tmp_path / "a.png")
    m1, m2 = mask_image(tmp_path / "m1.png"), mask_image(tmp_path / "m2.png", box=(0, 0, 20, 20))
    r = cli("inpaint", src, "-", "x", "-m", tiny_sd, "--steps", "2", "--seed", "1", "--json", input=f"{m1}\n{m2}\n")
    assert r.exit_code == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [Path(x["mask"]).name for x in recs] == ["m1.png", "m2.png"] and recs[0]["path"] != recs[1]["path"]


def test_images_from_stdin_with_one_bad_input(cli, tiny_sd: Path, tmp_path: Path) -> None:
    good, mask = noise_image(tmp_path / "a.png"), mask_image(tmp_path / "m.png")
    r = cli("inpaint", "-", mask, "x", "-m", tiny_sd, "--steps", "2", "--seed", "1",
            input=f"{tmp_path / 'gone.png'}\n{good}\n")
    assert r.exit_code == 2
    assert "gone.png' does not exist" in r.stderr and "1 of 2 inputs failed" in r.stderr
    assert len(r.stdout.split()) == 1


def test_image_and_mask_cannot_both_be_stdin(cli, tiny_sd: Path) -> None:
    r = cli("inpaint", "-", "-", "x", "-m", tiny_sd)
    assert r.exit_code == 2 and "Only one of IMAGE and MASK" in r.stderr
