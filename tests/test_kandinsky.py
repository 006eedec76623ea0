"""Kandinsky (unCLIP prior + decoder) through the CLI: gen, img2img, variation, interpolate, prior resolution.

Tiny random-weight Kandinsky 2.2 models built locally (tests/builders.py): one combined folder saved with
save_pretrained, and the same weights as a decoder folder + a separate prior folder. Kandinsky 2.1 goes
through the same code (class names differ only) but is not tested here: there is no tiny 2.1 builder
(its decoder needs a multilingual CLIP text encoder). Images are 32 px, 2 steps, prior 2 steps.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import builders
import pytest
from conftest import pixels, place_in_cache, png_text

DECODER_ID = "kandinsky-community/kandinsky-2-2-decoder"
PRIOR_ID = "kandinsky-community/kandinsky-2-2-prior"
FAST = ("--steps", "2", "--prior-steps", "2", "-W", "32", "-H", "32")




@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def meta(path: Path) -> dict:
    return json.loads(png_text(path)["difftool"])


def plain_combined(folder: Path, prompt: str, seed: int):
    import numpy as np
    import torch
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(str(folder))
    image = pipe(prompt, num_inference_steps=2, prior_num_inference_steps=2, height=32, width=32,
                 generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    return np.asarray(image.convert("RGB"))


def plain_unclip(folder: Path, items: list, weights: list[float], seed: int):
    """prior.interpolate then the decoder with one generator: the plain diffusers calls variation/interpolate wrap."""
    import numpy as np
    import torch
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(str(folder))
    g = torch.Generator("cpu").manual_seed(seed)
    emb = pipe.prior_pipe.interpolate(items, weights, num_inference_steps=2, generator=g)
    image = pipe.decoder_pipe(image_embeds=emb.image_embeds, negative_image_embeds=emb.negative_image_embeds,
                              height=32, width=32, num_inference_steps=2, generator=g).images[0]
    return np.asarray(image.convert("RGB"))


# ---- gen -------------------------------------------------------------------------------------------------------

def test_gen_combined_folder_matches_diffusers_and_records_prior(cli, k22: Path) -> None:
    r = cli("gen", "a red fox", "-m", str(k22), *FAST, "--seed", "5", "-o", "fox.png")
    assert r.exit_code == 0, r.stderr
    assert (pixels(Path("fox.png")) == plain_combined(k22, "a red fox", 5)).all()
    m = meta(Path("fox.png"))
    assert m["pipeline"] == "KandinskyV22CombinedPipeline"
    assert (m["model"], m["prior"]) == (str(k22), str(k22))
    assert (m["steps"], m["prior_steps"], m["guidance"], m["prior_guidance"], m["seed"]) == (2, 2, 4.0, 4.0, 5)
    assert (m["width"], m["height"]) == (32, 32)


def test_gen_decoder_plus_prior_folder_equals_combined(cli, k22: Path, k22_split: tuple[Path, Path]) -> None:
    decoder, prior = k22_split
    r = cli("gen", "a red fox", "-m", str(decoder), "--prior", str(prior), *FAST, "--seed", "5", "-o", "split.png")
    assert r.exit_code == 0, r.stderr
    assert (pixels(Path("split.png")) == plain_combined(k22, "a red fox", 5)).all()
    m = meta(Path("split.png"))
    assert (m["model"], m["prior"], m["pipeline"]) == (str(decoder), str(prior), "KandinskyV22CombinedPipeline")
    r = cli("gen", "--from", "split.png", "-o", "again.png")  # the prior and its settings are replayed too
    assert r.exit_code == 0, r.stderr
    assert (pixels(Path("again.png")) == pixels(Path("split.png"))).all()
    assert meta(Path("again.png"))["prior"] == str(prior)


def test_decoder_without_prior_exits_3_naming_prior_option(cli, k22_split: tuple[Path, Path]) -> None:
    r = cli("gen", "a fox", "-m", str(k22_split[0]), *FAST)
    assert r.exit_code == 3
    assert "--prior" in r.stderr and "Traceback" not in r.stderr
    assert not list(Path.cwd().glob("*.png"))


def test_readme_link_relative_to_decoder_folder(cli, k22_split: tuple[Path, Path], tmp_path: Path) -> None:
    decoder, prior = k22_split
    linked = tmp_path / "models" / "decoder"
    shutil.copytree(decoder, linked)
    shutil.copytree(prior, tmp_path / "models" / "the-prior")
    (linked / "README.md").write_text("---\nprior:\n- ../the-prior\n---\n# a decoder\n")
    r = cli("gen", "a fox", "-m", str(linked), *FAST, "--seed", "1", "-o", "x.png")
    assert r.exit_code == 0, r.stderr
    assert meta(Path("x.png"))["prior"] == str((linked / "../the-prior").resolve())


def test_readme_link_to_missing_prior_says_pass_prior(cli, k22_split: tuple[Path, Path], tmp_path: Path) -> None:
    linked = tmp_path / "decoder"
    shutil.copytree(k22_split[0], linked)
    (linked / "README.md").write_text("---\nprior:\n- ./nowhere/prior\n---\n")
    r = cli("gen", "a fox", "-m", str(linked), *FAST)
    assert r.exit_code == 3 and "--prior" in r.stderr and "nowhere" in r.stderr


def test_alias_from_cache_offline_fetches_prior_too(cli, k22_split: tuple[Path, Path], isolated_env: Path,
                                                    offline: None) -> None:
    decoder, prior = k22_split
    place_in_cache(decoder, DECODER_ID, isolated_env)
    r = cli("gen", "a fox", "-m", "kandinsky22", *FAST)
    assert r.exit_code == 3 and PRIOR_ID in r.stderr  # decoder cached, prior not: named, no network
    assert "the prior of 'kandinsky22'" in r.stderr and "--prior" in r.stderr
    place_in_cache(prior, PRIOR_ID, isolated_env)
    r = cli("gen", "a fox", "-m", "kandinsky22", *FAST, "--seed", "2", "-o", "k.png")
    assert r.exit_code == 0, r.stderr
    m = meta(Path("k.png"))
    assert (m["model"], m["prior"], m["steps"], m["prior_steps"]) == ("kandinsky22", PRIOR_ID, 2, 2)


def test_hub_decoder_readme_names_prior_by_hub_id(cli, k22_split: tuple[Path, Path], isolated_env: Path,
                                                  tmp_path: Path, offline: None) -> None:
    decoder, prior = k22_split
    card = tmp_path / "card"
    shutil.copytree(decoder, card)
    (card / "README.md").write_text(f"---\nprior:\n- {PRIOR_ID}\n---\n")
    place_in_cache(card, "someone/k22-finetune", isolated_env)
    place_in_cache(prior, PRIOR_ID, isolated_env)
    r = cli("gen", "a fox", "-m", "someone/k22-finetune", *FAST, "--seed", "2", "-o", "f.png")
    assert r.exit_code == 0, r.stderr
    assert meta(Path("f.png"))["prior"] == PRIOR_ID


def test_hub_decoder_without_readme_offline_asks_for_prior(cli, k22_split: tuple[Path, Path], isolated_env: Path,
                                                          offline: None) -> None:
    place_in_cache(k22_split[0], "someone/k22-bare", isolated_env)  # README not cached: looked up, not found
    r = cli("gen", "a fox", "-m", "someone/k22-bare", *FAST)
    assert r.exit_code == 3 and "--prior" in r.stderr and "someone/k22-bare" in r.stderr
    r = cli("gen", "a fox", "-m", "someone/k22-bare", "--prior", str(k22_split[1]), *FAST, "-o", "b.png")
    assert r.exit_code == 0, r.stderr


def test_prior_options_refused_on_non_unclip_models(cli, tiny_sd: Path, k22_split: tuple[Path, Path]) -> None:
    r = cli("gen", "a fox", "-m", str(tiny_sd), "--prior", str(k22_split[1]), "--steps", "1")
    assert r.exit_code == 2 and "--prior" in r.stderr
    r = cli("gen", "a fox", "-m", str(tiny_sd), "--prior-steps", "3", "--steps", "1")
    assert r.exit_code == 2 and "--prior-steps" in r.stderr
    r = cli("gen", "a fox", "-m", str(k22_split[1]), *FAST)  # a prior given as the model
    assert r.exit_code == 3 and "--prior" in r.stderr


def test_scheduler_reaches_the_decoder(cli, k22: Path) -> None:
    r = cli("gen", "a red fox", "-m", str(k22), *FAST, "--seed", "5", "--scheduler", "ddim", "-o", "ddim.png")
    assert r.exit_code == 0, r.stderr
    assert meta(Path("ddim.png"))["scheduler"] == "ddim"
    assert not (pixels(Path("ddim.png")) == plain_combined(k22, "a red fox", 5)).all()


# ---- memory switches -------------------------------------------------------------------------------------------

def test_vae_tiling_tiles_movq(cli, k22: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from difftool.loading import movq

    monkeypatch.setattr(movq, "TILE_LATENT", 8)  # 32 px -> 16x16 latents: 3x3 overlapping tiles
    r = cli("gen", "a red fox", "-m", str(k22), *FAST, "--seed", "5", "--vae-tiling", "-o", "tiled.png")
    assert r.exit_code == 0, r.stderr
    m = meta(Path("tiled.png"))
    assert m["vae_tiling"] is True and (m["width"], m["height"]) == (32, 32)
    plain = plain_combined(k22, "a red fox", 5)
    tiled = pixels(Path("tiled.png"))
    assert not (tiled == plain).all()  # tiles decoded apart...
    assert abs(tiled.astype(int) - plain.astype(int)).mean() < 40  # ...but the same picture


def test_memory_switches_refused_clearly(cli, k22: Path, red: Path) -> None:
    r = cli("gen", "a fox", "-m", str(k22), *FAST, "--offload", "model", "--device", "cpu")
    assert r.exit_code == 2 and "--offload" in r.stderr
    r = cli("gen", "a fox", "-m", str(k22), *FAST, "--tiny-vae", "madebyollin/taesd")
    assert r.exit_code == 2 and "MoVQ" in r.stderr
    r = cli("gen", "a fox", "-m", str(k22), *FAST, "--vae-slicing")
    assert r.exit_code == 2 and "--vae-slicing" in r.stderr and "VQModel" in r.stderr
    r = cli("variation", str(red), "-m", str(k22), "--offload", "sequential", "--device", "cpu")
    assert r.exit_code == 2 and "--offload" in r.stderr


# ---- img2img -------------------------------------------------------------------------------------------------

def test_img2img_on_kandinsky(cli, k22: Path, red: Path) -> None:
    r = cli("img2img", str(red), "a blue fox", "-m", str(k22), "--steps", "2", "--strength", "0.5", "--seed", "4",
            "-o", "i2i.png")
    assert r.exit_code == 0, r.stderr
    m = meta(Path("i2i.png"))
    assert m["pipeline"] == "KandinskyV22Img2ImgCombinedPipeline" and m["prior"] == str(k22)
    assert m["source"] == str(red) and m["prior_steps"] == 25
    assert (m["width"], m["height"]) == (64, 64)


def test_img2img_decoder_with_prior_matches_diffusers(cli, k22: Path, k22_split: tuple[Path, Path], red: Path) -> None:
    import numpy as np
    import torch
    from diffusers import AutoPipelineForImage2Image
    from PIL import Image

    decoder, prior = k22_split
    r = cli("img2img", str(red), "a blue fox", "-m", str(decoder), "--prior", str(prior), "--steps", "2",
            "--prior-steps", "2", "--strength", "0.5", "--seed", "4", "-o", "i2i.png")
    assert r.exit_code == 0, r.stderr
    m = meta(Path("i2i.png"))
    assert (m["prior"], m["prior_steps"], m["steps"]) == (str(prior), 2, 2)
    pipe = AutoPipelineForImage2Image.from_pretrained(str(k22))
    plain = pipe("a blue fox", image=Image.open(red).convert("RGB"), strength=0.5, num_inference_steps=2,
                 prior_num_inference_steps=2, height=64, width=64,
                 generator=torch.Generator("cpu").manual_seed(4)).images[0]
    assert (pixels(Path("i2i.png")) == np.asarray(plain.convert("RGB"))).all()


def test_inpaint_on_kandinsky(cli, k22: Path, k22_split: tuple[Path, Path], red: Path, tmp_path: Path) -> None:
    from PIL import Image

    mask = tmp_path / "mask.png"
    im = Image.new("L", (64, 64), 0)
    im.paste(255, (0, 0, 32, 64))
    im.save(mask)
    r = cli("inpaint", str(red), str(mask), "a fox", "-m", str(k22), "--steps", "2", "--prior-steps", "2")
    assert r.exit_code == 3 and "inpainting decoder" in r.stderr  # a text-to-image decoder cannot inpaint
    decoder = builders.build_kandinsky22_inpaint_decoder(tmp_path / "inpaint-decoder")
    r = cli("inpaint", str(red), str(mask), "a fox", "-m", str(decoder), "--prior", str(k22_split[1]), "--steps", "2",
            "--prior-steps", "2", "--seed", "1", "-o", "inp.png")
    assert r.exit_code == 0, r.stderr
    m = meta(Path("inp.png"))
    assert m["pipeline"] == "KandinskyV22InpaintCombinedPipeline" and m["prior"] == str(k22_split[1])
    assert m["mask"] == str(mask)


# ---- variation -------------------------------------------------------------------------------------------------

def test_variation_matches_plain_interpolate_and_decoder(cli, k22: Path, red: Path) -> None:
    r = cli("variation", str(red), "-m", str(k22), *FAST, "--seed", "7", "--prompt", "a cat", "--prompt-weight",
            "0.25", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    path = Path(out["path"])
    assert path.name == "red-a-cat-7.png"
    from PIL import Image

    image = Image.open(red).convert("RGB")
    assert (pixels(path) == plain_unclip(k22, [image, "a cat"], [0.75, 0.25], 7)).all()
    m = meta(path)
    assert m["task"] == "variation" and m["items"] == [{"image": str(red), "sha256": m["source_sha256"]},
                                                       {"text": "a cat"}]
    assert (m["weights"], m["prompt_weight"], m["seed"], m["prior"], m["prior_steps"]) == (
        [0.75, 0.25], 0.25, 7, str(k22), 2)


def test_variation_image_only_seeds_and_bad_input(cli, k22: Path, red: Path) -> None:
    r = cli("variation", str(red), "missing.png", "-m", str(k22), *FAST, "--seed", "3", "-n", "2")
    assert r.exit_code == 2 and "missing.png" in r.stderr
    written = r.stdout.split()
    assert written == ["red-variation-3.png", "red-variation-4.png"]
    from PIL import Image

    image = Image.open(red).convert("RGB")
    assert (pixels(Path(written[1])) == plain_unclip(k22, [image], [1.0], 4)).all()


def test_variation_refuses_non_unclip_models_and_bad_options(cli, tiny_sd: Path, red: Path) -> None:
    r = cli("variation", str(red), "-m", str(tiny_sd), "--steps", "1")
    assert r.exit_code == 2 and "unCLIP" in r.stderr
    r = cli("variation", str(red), "--prompt-weight", "0.5")
    assert r.exit_code == 2 and "--prompt" in r.stderr


# ---- interpolate -----------------------------------------------------------------------------------------------

def test_interpolate_frames_and_gif(cli, k22_split: tuple[Path, Path], k22: Path, red: Path) -> None:
    decoder, prior = k22_split
    r = cli("interpolate", "a cat", str(red), "-m", str(decoder), "--prior", str(prior), *FAST, "--seed", "9",
            "--frames", "3", "--gif")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.split()
    assert lines == ["a-cat-red-9-000.png", "a-cat-red-9-001.png", "a-cat-red-9-002.png", "a-cat-red-9.gif"]
    weights = [meta(Path(p))["weights"] for p in lines[:3]]
    assert weights == [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    m = meta(Path(lines[1]))
    assert (m["seed"], m["frame"], m["frames"], m["prior"]) == (9, 1, 3, str(prior))
    assert m["items"][0] == {"text": "a cat"} and m["items"][1]["image"] == str(red)
    from PIL import Image

    image = Image.open(red).convert("RGB")  # the middle frame is the plain call with weights 0.5/0.5
    assert (pixels(Path(lines[1])) == plain_unclip(k22, ["a cat", image], [0.5, 0.5], 9)).all()
    with Image.open(lines[3]) as gif:
        assert gif.n_frames == 3
    assert len({pixels(Path(p)).tobytes() for p in lines[:3]}) == 3


def test_interpolate_texts_with_weights(cli, k22: Path) -> None:
    r = cli("interpolate", "a cat", "a dog", "-m", str(k22), *FAST, "--seed", "2", "--weights", "0.3,0.7")
    assert r.exit_code == 0, r.stderr
    path = Path(r.stdout.strip())
    assert path.name == "a-cat-a-dog-2.png"
    m = meta(path)
    assert m["task"] == "interpolate" and m["weights"] == [0.3, 0.7]
    assert m["items"] == [{"text": "a cat"}, {"text": "a dog"}]
    assert (pixels(path) == plain_unclip(k22, ["a cat", "a dog"], [0.3, 0.7], 2)).all()


@pytest.mark.parametrize("args, needle", [
    (("a cat",), "two"),
    (("a cat", "a dog", "--weights", "1"), "2 items"),
    (("a cat", "a dog", "--weights", "a,b"), "numbers"),
    (("a cat", "nope.png"), "nope.png"),
    (("a cat", "a dog", "--gif"), "--frames"),
    (("a cat", "a dog", "--frames", "3", "--weights", "0.5,0.5"), "--weights"),
    (("a cat", "a dog", "--frames", "3", "-n", "2"), "-n"),
])
def test_interpolate_usage_errors_before_loading(cli, args: tuple[str, ...], needle: str) -> None:
    r = cli("interpolate", *args, "-m", "/nonexistent-but-never-loaded")
    assert r.exit_code == 2, r.stderr
    assert needle in r.stderr


@pytest.mark.parametrize("cls", ["KandinskyPriorPipeline", "KandinskyV22PriorPipeline"])
def test_embedder_is_interpolate_for_both_kandinsky_priors(cls: str, tmp_path: Path, red: Path) -> None:
    """The per-item embeddings difftool keeps, re-weighted, equal the prior's own `interpolate` (2.1 and 2.2
    priors share their components; only the embedding shapes differ)."""
    import diffusers
    import torch
    from PIL import Image

    from difftool.tasks.unclip import Embedder

    prior = getattr(diffusers, cls)(**builders.kandinsky22_prior_components(tmp_path / "p"))
    items = ["a cat", Image.open(red).convert("RGB"), "a dog"]
    weights = [0.2, 0.5, 0.3]
    plain = prior.interpolate(items, weights, num_inference_steps=2, generator=torch.Generator().manual_seed(3))
    embedder = Embedder(prior, 2, 4.0, None)
    g = torch.Generator().manual_seed(3)
    embeds, zero = embedder.embeddings(0, items, g)
    assert torch.equal(embedder.mix(embeds, weights), plain.image_embeds)
    assert torch.equal(zero, plain.negative_image_embeds)
    after = g.get_state()
    g2 = torch.Generator().manual_seed(3)  # cached: no prior run, and the generator ends where interpolate leaves it
    assert embedder.embeddings(0, items, g2)[0] is embeds and torch.equal(g2.get_state(), after)


def test_frame_weights_walk_through_every_item() -> None:
    from difftool.tasks.unclip import frame_weights

    assert frame_weights(2, 2) == [[1.0, 0.0], [0.0, 1.0]]
    assert frame_weights(3, 5) == [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5],
                                   [0.0, 0.0, 1.0]]
    assert all(abs(sum(w) - 1) < 1e-9 for w in frame_weights(4, 7))
