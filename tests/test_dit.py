"""Transformer (DiT) models through the real CLI, on tiny random pipelines of each family built locally
(tests/dit_builders.py): same pixels as the plain AutoPipeline call, every task the family has, options refused
or passed per pipeline, quantization, step caches, --transformer files (safetensors and GGUF), --from replay."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dit_builders
import numpy as np
import pytest
from conftest import pixels, place_in_cache, png_text

BASE = ("--steps", "2", "--seed", "3", "-W", "32", "-H", "32")
#: CLI flags some families need to stay tiny, and the kwargs difftool then passes beyond the common ones.
FLAGS = {"flux2-klein": ["--max-sequence-length", "64"]}
EXTRA_KWARGS = {
    "qwen-image": {"negative_prompt": " ", "true_cfg_scale": 4.0},  # true CFG on by default: " " as its negative
    "flux-kontext": {"max_area": 32 * 32},  # Kontext makes max_area pixels: difftool asks for the size it wants
    "flux2-klein": {"max_sequence_length": 64},
}


@pytest.fixture(scope="session")
def dit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every family's tiny pipeline, built once per session (~2 s in all)."""
    root = tmp_path_factory.mktemp("dit")
    return {name: build(root / name) for name, build in dit_builders.BUILDERS.items()}


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFTOOL_THREADS", "1")


def recorded(path: Path) -> dict:
    return json.loads(png_text(path)["difftool"])


def plain(folder: Path, task: str, seed: int = 3, **kwargs) -> np.ndarray:
    """The plain diffusers call difftool wraps."""
    import diffusers
    import torch

    cls = {"gen": "AutoPipelineForText2Image", "img2img": "AutoPipelineForImage2Image",
           "inpaint": "AutoPipelineForInpainting"}[task]
    pipe = getattr(diffusers, cls).from_pretrained(str(folder))
    image = pipe(generator=torch.Generator("cpu").manual_seed(seed), **kwargs).images[0]
    return np.asarray(image.convert("RGB"))


def write_inputs(folder: Path, size: int = 32) -> tuple[Path, Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    image = folder / "in.png"
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(image)
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    mask.save(folder / "mask.png")
    return image, folder / "mask.png"


def load(folder: Path, **opts):
    from difftool import references
    from difftool.loading import LoadOptions
    from difftool.loading import load as load_pipeline

    return load_pipeline(references.resolve(str(folder)), "text2img", LoadOptions(**opts)).pipe


@pytest.mark.parametrize("family", list(dit_builders.BUILDERS))
def test_gen_gives_the_plain_call_pixels(cli, dit: dict[str, Path], family: str) -> None:
    r = cli("gen", "a red cat", "-m", dit[family], *BASE, *FLAGS.get(family, []), "-o", "out.png")
    assert r.exit_code == 0, r.stderr
    expected = plain(dit[family], "gen", prompt="a red cat", num_inference_steps=2, width=32, height=32,
                     **EXTRA_KWARGS.get(family, {}))
    assert np.array_equal(pixels(Path("out.png")), expected)
    assert recorded(Path("out.png"))["pipeline"].endswith("Pipeline")


@pytest.mark.parametrize("family,task", [("flux", "img2img"), ("flux", "inpaint"), ("sd3", "img2img"),
                                         ("sd3", "inpaint"), ("qwen-image", "img2img"), ("qwen-image", "inpaint"),
                                         ("z-image", "img2img"), ("z-image", "inpaint")])
def test_img2img_and_inpaint_give_the_plain_call_pixels(cli, dit: dict[str, Path], tmp_path: Path, family: str,
                                                        task: str) -> None:
    from PIL import Image

    image, mask = write_inputs(tmp_path)
    args = [image, mask] if task == "inpaint" else [image]
    r = cli(task, *args, "a blue dog", "-m", dit[family], "--steps", "2", "--seed", "3", "-o", "out.png")
    assert r.exit_code == 0, r.stderr
    kwargs = {"prompt": "a blue dog", "image": Image.open(image).convert("RGB"), "num_inference_steps": 2,
              "width": 32, "height": 32, **EXTRA_KWARGS.get(family, {})}
    if task == "inpaint":
        kwargs["mask_image"] = Image.open(mask).convert("L")
    else:
        kwargs["strength"] = 0.6  # difftool's default for models the registry does not know
    assert np.array_equal(pixels(Path("out.png")), plain(dit[family], task, **kwargs))


def test_edit_model_takes_an_instruction_and_no_strength(cli, dit: dict[str, Path], tmp_path: Path) -> None:
    """Flux Kontext: `img2img IMAGE "instruction"` is the pipeline's reference editing (no strength)."""
    from PIL import Image

    image, _ = write_inputs(tmp_path)
    r = cli("img2img", image, "make it blue", "-m", dit["flux-kontext"], "--steps", "2", "--seed", "3", "-o", "e.png")
    assert r.exit_code == 0, r.stderr
    rec = recorded(Path("e.png"))
    assert rec["pipeline"] == "FluxKontextPipeline" and rec.get("strength") is None
    expected = plain(dit["flux-kontext"], "img2img", prompt="make it blue", image=Image.open(image).convert("RGB"),
                     num_inference_steps=2, width=32, height=32, max_area=32 * 32)
    assert np.array_equal(pixels(Path("e.png")), expected)
    r = cli("img2img", image, "make it blue", "-m", dit["flux-kontext"], "--strength", "0.5")
    assert r.exit_code == 2 and "--strength" in r.stderr


@pytest.mark.parametrize("family,args,flag", [
    ("flux", ["--negative", "dog"], "--true-cfg"),  # dropped by diffusers unless true CFG is on
    ("flux2-klein", ["--negative", "dog"], "--negative"),  # no negative prompt at all
    ("sd3", ["--true-cfg", "3"], "--true-cfg"),
    ("chroma", ["--cache", "mag"], "FLUX.1"),  # magnitude ratios exist for Flux only
    ("z-image", ["--cache", "first-block"], "ZImageTransformer2DModel"),  # no CacheMixin in diffusers 0.42
    ("flux", ["--offload", "group"], "--device cuda"),
    ("flux", ["--quantize", "nf4"], "CUDA"),
    ("flux", ["--quantize", "int3"], "int8, fp8, int4, nf4"),
    ("flux", ["--cache-threshold", "0.1"], "--cache first-block"),
    ("flux", ["--cache", "taylorseer", "--cache-threshold", "0.1"], "not to taylorseer"),
    ("flux", ["--transformer", "x.ckpt"], ".gguf"),
])
def test_options_a_pipeline_cannot_use_are_refused(cli, dit: dict[str, Path], family: str, args: list[str],
                                                   flag: str) -> None:
    r = cli("gen", "a cat", "-m", dit[family], *BASE, *FLAGS.get(family, []), *args, "-o", "x.png")
    assert r.exit_code == 2, r.stderr
    assert flag in r.stderr
    assert not Path("x.png").exists()


def test_ineffective_guidance_is_warned_about(cli, dit: dict[str, Path]) -> None:
    r = cli("gen", "a cat", "-m", dit["qwen-image"], *BASE, "--guidance", "3", "-o", "g.png")
    assert r.exit_code == 0, r.stderr
    assert "--guidance has no effect on QwenImagePipeline" in r.stderr


def test_unet_models_refuse_dit_options(cli, tiny_sd: Path) -> None:
    for args, word in ((["--cache", "first-block"], "UNet"), (["--max-sequence-length", "64"], "--max-sequence-length"),
                       (["--true-cfg", "2"], "--true-cfg")):
        r = cli("gen", "a cat", "-m", tiny_sd, "--steps", "2", *args)
        assert r.exit_code == 2 and word in r.stderr, r.stderr


def test_true_cfg_negative_and_dit_switches_are_recorded_and_replayed(cli, dit: dict[str, Path]) -> None:
    r = cli("gen", "a red cat", "-m", dit["flux"], *BASE, "--true-cfg", "2", "--negative", "a dog",
            "--max-sequence-length", "64", "--quantize", "int8", "--quantize-text", "int8", "--cache", "first-block",
            "--cache-threshold", "0.2", "-o", "a.png")
    assert r.exit_code == 0, r.stderr
    rec = recorded(Path("a.png"))
    assert (rec["true_cfg"], rec["negative"], rec["max_sequence_length"]) == (2.0, "a dog", 64)
    assert (rec["quantize"], rec["quantize_text"], rec["cache"], rec["cache_threshold"]) == ("int8", "int8",
                                                                                          "first-block", 0.2)
    r = cli("gen", "--from", "a.png", "-o", "b.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("a.png")), pixels(Path("b.png")))
    assert {k: v for k, v in recorded(Path("b.png")).items() if k != "prompt"} == \
        {k: v for k, v in rec.items() if k != "prompt"}


def test_quantized_loading_uses_torchao_int8(dit: dict[str, Path]) -> None:
    pipe = load(dit["flux"], quantize="int8", quantize_text="int8")
    assert type(pipe.transformer.transformer_blocks[0].attn.to_q.weight).__name__ == "Int8Tensor"
    assert type(pipe.text_encoder_2.encoder.block[0].layer[0].SelfAttention.q.weight).__name__ == "Int8Tensor"
    clip_linears = [m for m in pipe.text_encoder.modules() if type(m).__name__ == "Linear"]
    assert clip_linears and all(type(m.weight).__name__ == "Int8Tensor" for m in clip_linears)
    assert type(pipe.vae.decoder.conv_in.weight).__name__ == "Parameter"  # the VAE is left alone


def _to_q_calls(pipe, module, steps: int, **kwargs) -> int:
    """How many times `module` (a block's query projection) ran in one `steps`-step image."""
    import torch

    calls = [0]
    handle = module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    pipe(prompt="a cat", num_inference_steps=steps, width=32, height=32, generator=torch.Generator().manual_seed(0),
         **kwargs)
    handle.remove()
    return calls[0]


@pytest.mark.parametrize("family,cache,steps,expected", [
    ("flux", None, 4, 4),
    ("flux", "first-block", 4, 1),  # a huge threshold: every step after the first reuses the tail blocks
    ("flux", "taylorseer", 8, 4),  # 3 warm-up steps, then Taylor predictions with a refresh every 5 steps
    ("qwen-image", None, 4, 8),  # true CFG: two transformer passes per step
    ("qwen-image", "first-block", 4, 2),  # one full pass per branch (cache context), then the tail is reused
])
def test_step_cache_skips_transformer_blocks(dit: dict[str, Path], family: str, cache: str | None, steps: int,
                                             expected: int) -> None:
    threshold = 1e6 if cache == "first-block" else None
    pipe = load(dit[family], cache=cache, cache_threshold=threshold)
    last = (pipe.transformer.single_transformer_blocks[-1] if family == "flux"
            else pipe.transformer.transformer_blocks[-1]).attn.to_q
    assert _to_q_calls(pipe, last, steps, **EXTRA_KWARGS.get(family, {})) == expected


def test_transformer_file_safetensors_and_gguf(cli, dit: dict[str, Path], tmp_path: Path) -> None:
    """--transformer loads with the base model's configs: the base's own weights as a file give its pixels; a Q8_0
    GGUF file loads quantized (GGUFParameter) and is recorded."""
    base = dit["flux"]
    single = tmp_path / "flux-transformer.safetensors"
    shutil.copy(base / "transformer" / "diffusion_pytorch_model.safetensors", single)
    cli("gen", "a red cat", "-m", base, *BASE, "-o", "base.png")
    r = cli("gen", "a red cat", "-m", base, *BASE, "--transformer", single, "-o", "file.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("file.png")), pixels(Path("base.png")))
    assert recorded(Path("file.png"))["transformer"] == str(single)
    gguf = dit_builders.write_gguf(base, tmp_path / "flux-Q8_0.gguf")
    pipe = load(base, transformer=str(gguf))
    assert type(pipe.transformer.transformer_blocks[0].attn.to_q.weight).__name__ == "GGUFParameter"
    r = cli("gen", "a red cat", "-m", base, *BASE, "--transformer", gguf, "-o", "gguf.png")
    assert r.exit_code == 0, r.stderr
    assert recorded(Path("gguf.png"))["transformer"] == str(gguf)
    r = cli("gen", "a red cat", "-m", base, *BASE, "--transformer", gguf, "--quantize", "int8")
    assert r.exit_code == 2 and "already quantized" in r.stderr


def test_alias_loads_from_the_cache_with_its_defaults(cli, dit: dict[str, Path], isolated_env: Path) -> None:
    """`-m flux-schnell`: the alias' hub id, found in the HF cache (no network), with its registry defaults."""
    place_in_cache(dit["flux"], "black-forest-labs/FLUX.1-schnell", isolated_env)
    r = cli("gen", "a red cat", "-m", "flux-schnell", "--seed", "3", "-W", "32", "-H", "32", "-o", "s.png")
    assert r.exit_code == 0, r.stderr
    rec = recorded(Path("s.png"))
    assert (rec["model"], rec["steps"], rec["guidance"], rec["max_sequence_length"]) == ("flux-schnell", 4, 0.0, 256)
    expected = plain(dit["flux"], "gen", prompt="a red cat", num_inference_steps=4, guidance_scale=0.0, width=32,
                     height=32, max_sequence_length=256)
    assert np.array_equal(pixels(Path("s.png")), expected)


def test_registry_entries_of_dit_models() -> None:
    from difftool import references, registry

    for alias in ("flux-schnell", "flux-dev", "flux-kontext", "flux2-dev", "flux2-klein", "sd35-medium", "sd35-large",
                  "sd35-large-turbo", "qwen-image", "qwen-image-edit", "z-image-turbo", "sana", "chroma"):
        spec = registry.get(alias)
        assert spec is not None and references.resolve(alias).repo_id == spec.repo
        assert set(spec.tasks) <= {"text2img", "img2img", "inpaint"} and spec.license
        assert (spec.strength is None) == spec.edit  # edit models take no --strength
    assert registry.get("sd15").tasks == ("text2img", "img2img", "inpaint") and not registry.get("sd15").edit
