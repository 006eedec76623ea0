"""`difftool gen` through the real CLI on a tiny random-weight Stable Diffusion pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import pixels, png_text

STEPS = ["--steps", "2"]


def plain_diffusers(folder: Path, prompt: str, seed: int, negative: str | None = None, steps: int = 2,
                    guidance: float = 7.5, width: int = 64, height: int = 64) -> np.ndarray:
    """The plain diffusers call difftool wraps (issue 2, point 6)."""
    import torch
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(str(folder))
    image = pipe(prompt, negative_prompt=negative, num_inference_steps=steps, guidance_scale=guidance, width=width,
                 height=height, generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return np.asarray(image.convert("RGB"))


def test_gen_writes_png_and_prints_only_its_path(cli, tiny_sd: Path, tmp_path: Path) -> None:
    r = cli("gen", "a red cat", "-m", tiny_sd, *STEPS, "--seed", "7", "-o", "cat.png")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == [str(Path("cat.png"))]
    assert (tmp_path / "cat.png").is_file()
    assert pixels(tmp_path / "cat.png").shape == (64, 64, 3)


def test_pixels_identical_to_plain_diffusers_call(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a blue dog", "-m", tiny_sd, *STEPS, "--seed", "123", "--negative", "blurry",
            "--guidance", "5", "-W", "64", "-H", "64", "-o", "dog.png")
    assert r.exit_code == 0, r.stderr
    expected = plain_diffusers(tiny_sd, "a blue dog", 123, negative="blurry", guidance=5.0)
    assert np.array_equal(pixels(Path("dog.png")), expected)


def test_batch_image_i_uses_seed_plus_i(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, *STEPS, "--seed", "10", "-n", "2", "-o", "{seed}.png")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == ["10.png", "11.png"]
    assert np.array_equal(pixels(Path("11.png")), plain_diffusers(tiny_sd, "a cat", 11))
    assert not np.array_equal(pixels(Path("10.png")), pixels(Path("11.png")))


def test_metadata_infotext_and_json(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat, sitting", "-m", tiny_sd, *STEPS, "--seed", "3", "--negative", "dog", "-o", "m.png")
    assert r.exit_code == 0, r.stderr
    text = png_text(Path("m.png"))
    lines = text["parameters"].splitlines()
    assert lines[0] == "a cat, sitting"
    assert lines[1] == "Negative prompt: dog"
    assert lines[2].startswith("Steps: 2, Sampler: DDIM, CFG scale: 7.5, Seed: 3, Size: 64x64, Model: ")
    full = json.loads(text["difftool"])
    assert full["seed"] == 3 and full["prompt"] == "a cat, sitting" and full["steps"] == 2
    assert full["scheduler"] == "ddim" and full["pipeline"] == "StableDiffusionPipeline"


def test_random_seed_is_reported_everywhere(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, *STEPS, "--json", "-o", "r.png")
    assert r.exit_code == 0, r.stderr
    record = json.loads(r.stdout)
    seed = record["seed"]
    assert isinstance(seed, int)
    assert f"seed {seed}" in r.stderr
    assert json.loads(png_text(Path("r.png"))["difftool"])["seed"] == seed


def test_json_lines_have_the_documented_fields(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a", "b", "-m", tiny_sd, *STEPS, "--seed", "1", "--json", "-o", "out/")
    assert r.exit_code == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(records) == 2
    for rec in records:
        assert {"path", "seed", "prompt", "model", "steps", "guidance", "width", "height", "scheduler"} <= set(rec)
        assert Path(rec["path"]).is_file()
    assert [rec["prompt"] for rec in records] == ["a", "b"]


def test_prompts_from_stdin_load_the_model_once(cli, tiny_sd: Path) -> None:
    r = cli("gen", "-", "-m", tiny_sd, *STEPS, "--seed", "1", "-o", "s/{index}.png", input="one\n\ntwo\nthree\n")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == ["s/0.png", "s/1.png", "s/2.png"]
    assert r.stderr.count("Loading ") == 1
    assert json.loads(png_text(Path("s/2.png"))["difftool"])["prompt"] == "three"


def test_empty_stdin_is_a_usage_error(cli, tiny_sd: Path) -> None:
    r = cli("gen", "-", "-m", tiny_sd, input="\n")
    assert r.exit_code == 2
    assert "No prompts" in r.stderr


def test_scheduler_is_applied_and_recorded(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, *STEPS, "--seed", "1", "--scheduler", "euler-a", "-o", "e.png")
    assert r.exit_code == 0, r.stderr
    assert "Sampler: Euler a" in png_text(Path("e.png"))["parameters"]
    cli("gen", "a cat", "-m", tiny_sd, *STEPS, "--seed", "1", "-o", "d.png")
    assert not np.array_equal(pixels(Path("e.png")), pixels(Path("d.png")))


def test_unknown_scheduler_lists_valid_names(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, "--scheduler", "eulr")
    assert r.exit_code == 2
    assert "euler-a" in r.stderr and "dpm++2m-karras" in r.stderr and "lcm" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-W", "60"], "multiple of 8"),
        (["--steps", "0"], "--steps"),
        (["-n", "0"], "--num-images"),
        (["--device", "tpu"], "Unknown device"),
        (["--dtype", "fp8"], "Unknown dtype"),
        (["-o", "x.jpg"], ".png"),
        (["-o", "missing-dir/x.png"], "does not exist"),
        (["-o", "{sed}.png"], "Unknown field"),
    ],
)
def test_bad_inputs_exit_2_before_loading(cli, tiny_sd: Path, args: list[str], message: str) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, *args)
    assert r.exit_code == 2
    assert message in r.stderr
    assert "Loading" not in r.stderr


def test_existing_file_is_never_overwritten_without_flag(cli, tiny_sd: Path) -> None:
    Path("keep.png").write_bytes(b"precious")
    r = cli("gen", "a cat", "-m", tiny_sd, *STEPS, "--seed", "1", "-o", "keep.png")
    assert r.exit_code == 2 and "--overwrite" in r.stderr
    assert Path("keep.png").read_bytes() == b"precious"
    r = cli("gen", "a cat", "-m", tiny_sd, *STEPS, "--seed", "1", "-o", "keep.png", "--overwrite")
    assert r.exit_code == 0
    assert Path("keep.png").read_bytes()[:4] == b"\x89PNG"


def test_default_names_pick_a_fresh_name(cli, tiny_sd: Path) -> None:
    first = cli("gen", "a cat", "-m", tiny_sd, *STEPS, "--seed", "5")
    second = cli("gen", "a cat", "-m", tiny_sd, *STEPS, "--seed", "5")
    assert first.stdout.strip() == "a-cat-5.png"
    assert second.stdout.strip() == "a-cat-5-1.png"
    assert sorted(p.name for p in Path(".").glob("*.png")) == ["a-cat-5-1.png", "a-cat-5.png"]
    assert not list(Path(".").glob(".*.tmp"))


def test_template_fields_and_folders(cli, tiny_sd: Path) -> None:
    r = cli("gen", "A Big Cat!", "-m", tiny_sd, *STEPS, "--seed", "9", "-o", "o/{model}/{date}-{prompt}-{seed}-{index}.png")
    assert r.exit_code == 0, r.stderr
    path = Path(r.stdout.strip())
    assert path.parts[:2] == ("o", "tiny-sd")
    assert path.name.endswith("-a-big-cat-9-0.png")


def test_explicit_file_with_several_images_gets_an_index(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, *STEPS, "--seed", "1", "-n", "2", "-o", "cat.png")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == ["cat-0.png", "cat-1.png"]


def test_interrupt_leaves_no_partial_file(cli, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    def interrupted_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted_save)
    r = cli("gen", "a cat", "-m", tiny_sd, *STEPS, "--seed", "1", "-o", "int.png")
    assert r.exit_code == 130
    assert "interrupted" in r.stderr
    assert list(Path(".").iterdir()) == [Path("hf-home")] or not list(Path(".").glob("*int.png*"))
    assert not list(Path(".").glob(".int.png*")) and not Path("int.png").exists()


def test_option_the_pipeline_does_not_take_is_refused(cli, tmp_path: Path) -> None:
    """LCM's pipeline (served by AutoPipeline, not SD-shaped code) has no negative prompt: exit 2 naming it."""
    import builders

    folder = builders.build_lcm(tmp_path / "lcm")
    ok = cli("gen", "a cat", "-m", folder, "--steps", "2", "--seed", "1", "-o", "lcm.png")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(png_text(Path("lcm.png"))["difftool"])["pipeline"] == "LatentConsistencyModelPipeline"
    r = cli("gen", "a cat", "-m", folder, "--steps", "2", "--negative", "dog")
    assert r.exit_code == 2
    assert "--negative" in r.stderr and "LatentConsistencyModelPipeline" in r.stderr


def test_debug_shows_the_traceback(cli, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import difftool.tasks.gen as gen

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(gen, "call", boom)
    r = cli("gen", "a cat", "-m", tiny_sd, "-o", "b.png")
    assert r.exit_code == 1
    assert "kaboom" in r.stderr and "Traceback" not in r.stderr
    r = cli("--debug", "gen", "a cat", "-m", tiny_sd, "-o", "b.png")
    assert r.exit_code == 1 and "Traceback" in r.stderr


def test_progress_bar_on_a_terminal_only(cli, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Rich bar driven by the step callback when stderr is a terminal; none with -q."""
    import io

    from rich.console import Console

    from difftool import console

    buffer = io.StringIO()
    monkeypatch.setattr(console, "_stderr", lambda: Console(file=buffer, force_terminal=True, width=100))
    r = cli("gen", "a cat", "-m", tiny_sd, "--steps", "3", "--seed", "1", "-o", "bar.png")
    assert r.exit_code == 0
    assert "3/3" in buffer.getvalue() and "image 1/1 seed 1" in buffer.getvalue()
    assert r.stdout.strip() == "bar.png"
    buffer.truncate(0)
    buffer.seek(0)
    r = cli("gen", "a cat", "-m", tiny_sd, "--steps", "3", "--seed", "1", "-o", "bar2.png", "-q")
    assert r.exit_code == 0 and buffer.getvalue() == ""
