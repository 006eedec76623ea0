"""The job spec and the engine: PNG -> spec -> same pixels for every task, one load per model across tasks,
eviction under a memory budget, the README's Python example, the schema, invalid specs, old PNG chunks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import builders
import numpy as np
import pytest
from conftest import pixels, png_text

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KFAST = {"steps": 2, "prior_steps": 2, "width": 32, "height": 32}


def chunk(path: Path) -> dict:
    return json.loads(png_text(path)["difftool"])


def replayed(engine, path: Path) -> np.ndarray:
    """The image `path` made again from its own `difftool` chunk, through spec.from_record and the engine."""
    import io

    from PIL import Image

    from difftool import spec

    job = spec.build(spec.from_record(chunk(path)), flags=False)
    [result] = list(engine.run(job))
    return np.asarray(Image.open(io.BytesIO(result.png())).convert("RGB"))


def noise(path: Path, size: int = 64, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.RandomState(seed)
    Image.fromarray((rng.rand(size, size, 3) * 255).astype(np.uint8)).save(path)
    return path


def test_every_task_round_trips_png_spec_pixels(cli, tiny_sd: Path, tiny_x4: Path, k22: Path, red: Path,
                                                tmp_path: Path) -> None:
    """Each task's PNG holds a spec that the engine turns back into exactly the same pixels."""
    from difftool import Engine

    src = noise(tmp_path / "src.png")
    mask = tmp_path / "mask.png"
    from PIL import Image

    im = Image.new("L", (64, 64), 0)
    im.paste(255, (16, 16, 48, 48))
    im.save(mask)
    made = {
        "gen": cli("gen", "a cat", "-m", tiny_sd, "--steps", "2", "--seed", "4", "--negative", "dog", "-o", "g.png"),
        "img2img": cli("img2img", src, "a cat", "-m", tiny_sd, "--steps", "4", "--seed", "5", "-o", "i.png"),
        "inpaint": cli("inpaint", src, mask, "a cat", "-m", tiny_sd, "--steps", "2", "--seed", "6", "-o", "p.png"),
        "upscale": cli("upscale", src, "-m", tiny_x4, "--steps", "2", "--seed", "7", "-o", "u.png"),
        "variation": cli("variation", red, "-m", k22, "--steps", "2", "--prior-steps", "2", "-W", "32", "-H", "32",
                         "--seed", "8", "-o", "v.png"),
        "interpolate": cli("interpolate", "a cat", red, "-m", k22, "--steps", "2", "--prior-steps", "2", "-W", "32",
                           "-H", "32", "--seed", "9", "--weights", "0.4,0.6", "-o", "n.png"),
    }
    engine = Engine()
    for task, r in made.items():
        assert r.exit_code == 0, (task, r.stderr)
        path = Path(r.stdout.strip())
        assert chunk(path)["task"] == task and chunk(path)["version"] == 2
        assert np.array_equal(replayed(engine, path), pixels(path)), task


def test_gen_img2img_inpaint_share_one_load(tiny_sd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One process, one model: gen, then img2img and inpaint on the same weights (from_pipe), read from disk once."""
    import diffusers

    from difftool import Engine

    reads = []
    for name in ("AutoPipelineForText2Image", "AutoPipelineForImage2Image", "AutoPipelineForInpainting"):
        cls = getattr(diffusers, name)
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            reads.append(klass.__name__)
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    from PIL import Image

    src = noise(tmp_path / "a.png")
    Image.new("L", (64, 64), 255).save(tmp_path / "m.png")
    engine = Engine()
    base = {"model": str(tiny_sd), "steps": 2, "seed": 1}
    gen = list(engine.run({**base, "prompt": "a cat"}))
    edit = list(engine.run({**base, "task": "img2img", "prompt": "a cat", "source": str(src)}))
    paint = list(engine.run({**base, "task": "inpaint", "prompt": "a cat", "source": str(src),
                             "mask": str(tmp_path / "m.png")}))
    assert (len(gen), len(edit), len(paint)) == (1, 1, 1)
    assert reads == ["AutoPipelineForText2Image"] and engine.loads == 1
    pipes = [edit[0].record["pipeline"], paint[0].record["pipeline"]]
    assert pipes == ["StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline"]
    [entry] = engine.loaded()
    assert entry["tasks"] == ["img2img", "inpaint", "text2img"] and entry["bytes"] > 0


def test_least_recently_used_is_evicted_under_a_small_budget(tiny_sd: Path, tmp_path: Path) -> None:
    from difftool import Engine

    other = builders.build_sd(tmp_path / "other", seed=1)
    engine = Engine(memory_budget=1e-9)  # smaller than any model: only the one in use stays
    job = {"prompt": "a cat", "steps": 1, "seed": 1}
    list(engine.run({**job, "model": str(tiny_sd)}))
    list(engine.run({**job, "model": str(other)}))
    assert [e["model"] for e in engine.loaded()] == [str(other)] and engine.evictions == 1
    list(engine.run({**job, "model": str(tiny_sd)}))
    assert engine.loads == 3 and [e["model"] for e in engine.loaded()] == [str(tiny_sd)]
    roomy = Engine(memory_budget=1.0)  # 1 GB: both tiny models stay
    list(roomy.run({**job, "model": str(tiny_sd)}))
    list(roomy.run({**job, "model": str(other)}))
    list(roomy.run({**job, "model": str(tiny_sd)}))
    assert roomy.loads == 2 and roomy.evictions == 0


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python example, run as written (on the packaged tiny model)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    code = re.search(r"<!-- python-api -->\s*```python\n(.*?)```", readme, re.S)
    assert code, "README lost its Python example"
    monkeypatch.chdir(tmp_path)
    exec(compile(code.group(1), "README.md", "exec"), {})  # noqa: S102 - our own README
    made = sorted(tmp_path.glob("*.png"))
    assert made and chunk(made[0])["model"] == "tiny"


def test_schema_command_and_invalid_specs(cli, tiny_sd: Path, tmp_path: Path) -> None:
    r = cli("schema")
    assert r.exit_code == 0
    schema = json.loads(r.stdout)
    assert {"prompt", "seed", "steps", "source", "items", "lora"} <= set(schema["properties"])
    from difftool import spec

    with pytest.raises(spec.SpecError, match="steps"):
        spec.build({"prompt": "x", "steps": 0})
    with pytest.raises(spec.SpecError, match="(?i)unknown field 'stepz'"):
        spec.build({"prompt": "x", "stepz": 3})
    with pytest.raises(spec.SpecError, match="(?i)gen does not take strength"):
        spec.build({"prompt": "x", "strength": 0.5}, flags=False)
    with pytest.raises(spec.SpecError, match="finite"):
        spec.build({"prompt": "x", "guidance": float("nan")})


def test_a_bad_stored_value_is_exit_2_naming_the_image_and_key(cli, tiny_sd: Path, tmp_path: Path) -> None:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    for key, value, needle in (("steps", 0, "steps 0"), ("steps", "abc", "steps 'abc'"),
                               ("guidance", "nan", "finite"), ("seed", -5, "seed -5"),
                               ("lora", [{"scale": 1}], "lora[0].ref")):
        info = PngInfo()
        info.add_text("difftool", json.dumps({"version": 2, "task": "gen", "prompt": "a cat", key: value}))
        Image.new("RGB", (8, 8)).save(tmp_path / "bad.png", pnginfo=info)
        r = cli("gen", "--from", tmp_path / "bad.png", "-m", tiny_sd)
        assert r.exit_code == 2, (key, r.stderr)
        assert f"--from {tmp_path / 'bad.png'}" in r.stderr and needle in r.stderr, r.stderr
        assert "Loading" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_first_release_chunks_still_replay(cli, tiny_sd: Path, tmp_path: Path) -> None:
    """A PNG written by difftool 0.1 (flat chunk, `version` = the program's version) replays to the same pixels."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    r = cli("gen", "a red cat", "-m", tiny_sd, "--steps", "2", "--seed", "11", "-o", "new.png")
    assert r.exit_code == 0, r.stderr
    old = {"version": "0.1.0", "task": "gen", "model": str(tiny_sd), "pipeline": "StableDiffusionPipeline",
           "device": "cpu", "dtype": "fp32", "safety_checker": False, "negative": None, "steps": 2, "guidance": 7.5,
           "scheduler": "ddim", "prompt": "a red cat", "seed": 11, "width": 64, "height": 64}
    info = PngInfo()
    info.add_text("difftool", json.dumps(old))
    Image.open("new.png").save(tmp_path / "old.png", pnginfo=info)
    r = cli("gen", "--from", tmp_path / "old.png", "-o", "again.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("again.png")), pixels(Path("new.png")))


def test_json_lines_carry_the_spec(cli, tiny_sd: Path) -> None:
    from difftool import spec

    r = cli("gen", "a cat", "-m", tiny_sd, "--steps", "2", "--seed", "3", "-n", "2", "--json")
    assert r.exit_code == 0, r.stderr
    for line in r.stdout.splitlines():
        record = json.loads(line)
        job = spec.build(spec.from_record({k: v for k, v in record.items() if k != "path"}), flags=False)
        assert (job.prompt, job.steps, job.seed) == ("a cat", 2, record["seed"])
