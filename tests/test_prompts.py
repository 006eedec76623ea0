"""Prompt weighting, long prompts and clip skip (difftool.prompts): the functions against plain diffusers on tiny
SD and SDXL pipelines, and `gen` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import builders
import numpy as np
import pytest
from conftest import pixels, png_text

from difftool import prompts
from difftool.prompts import BREAK, chunk, parse_a1111, prompt_kwargs

BASE = ["--steps", "2", "--seed", "3"]
#: 120 tokens with the tiny byte-level tokenizer (one token per letter, the last of a word carrying </w>), no comma
LONG = " ".join(["cat dog"] * 20)


@pytest.fixture(scope="session")
def sd_pipe(tiny_sd: Path) -> Any:
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(str(tiny_sd))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def sdxl_pipe(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(str(builders.build_sdxl(tmp_path_factory.mktemp("m") / "sdxl")))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def image(pipe: Any, **kwargs: Any) -> np.ndarray:
    import torch

    out = pipe(num_inference_steps=2, width=64, height=64, generator=torch.Generator("cpu").manual_seed(3), **kwargs)
    return np.asarray(out.images[0].convert("RGB"))


@pytest.mark.parametrize(("text", "parsed"), [
    ("a cat", [("a cat", 1.0)]),
    ("a (cat) sat", [("a ", 1.0), ("cat", 1.1), (" sat", 1.0)]),
    ("[cat]", [("cat", 1 / 1.1)]),
    ("(a (b:2) c:1.5)", [("a ", 1.5), ("b", 3.0), (" c", 1.5)]),
    ("((cat))", [("cat", 1.1 * 1.1)]),
    (r"a \(cat\) \[x\] \\", [(r"a (cat) [x] \ ".rstrip(), 1.0)]),
    ("a) b] (c", [("a) b] ", 1.0), ("c", 1.1)]),
    ("(cat:1.0), time: 1:30", [("cat, time: 1:30", 1.0)]),
    ("a BREAK (b:1.2)", [("a", 1.0), BREAK, ("b", 1.2)]),
])
def test_parse_a1111(text: str, parsed: list) -> None:
    got = parse_a1111(text)
    assert len(got) == len(parsed)
    for item, want in zip(got, parsed):
        if want is BREAK:
            assert item is BREAK
        else:
            assert item[0] == want[0] and item[1] == pytest.approx(want[1])


def test_chunks_of_75_break_and_comma_backtrack() -> None:
    def letters(texts: list[str]) -> list[list[int]]:
        return [[ord(c) for c in t if c != " "] for t in texts]

    comma = ord(",")
    # 80 tokens: 75 then 5; weights follow their tokens
    chunks = chunk([("a" * 70, 1.0), ("b" * 10, 1.5)], letters, comma)
    assert [len(ids) for ids, _ in chunks] == [75, 5]
    assert chunks[0][1][-1] == 1.5 and chunks[0][1][0] == 1.0
    # a comma 10 tokens before the end of a full chunk: the words after it move to the next chunk
    chunks = chunk([("a" * 65 + "," + "b" * 20, 1.0)], letters, comma)
    assert [len(ids) for ids, _ in chunks] == [66, 20] and chunks[0][0][-1] == comma
    # further back than 20 tokens: cut at 75
    assert [len(ids) for ids, _ in chunk([("a" * 40 + "," + "b" * 50, 1.0)], letters, comma)] == [75, 16]
    assert [len(ids) for ids, _ in chunk(parse_a1111("aaa BREAK bb"), letters, comma)] == [3, 2]


def test_weight_moves_the_words_embedding_and_changes_the_image(sd_pipe: Any) -> None:
    plain = prompt_kwargs(sd_pipe, "a red cat", None)
    assert plain == {"prompt": "a red cat"}
    weighted = prompt_kwargs(sd_pipe, "a red (cat:1.5)", None)
    forced = prompts._a1111_kwargs(sd_pipe, "sd", [("a red cat", 1.0)], None, None, prompts._params(sd_pipe))
    z, zw = forced["prompt_embeds"][0], weighted["prompt_embeds"][0]
    cat = slice(5, 8)  # <start> a</w> r e d</w> c a t</w>
    # each token of "cat" moves along its own embedding, further than any other token moves relative to it
    moved = ((zw[cat] - z[cat]) * z[cat]).sum(-1) / (z[cat] * z[cat]).sum(-1)
    others = ((zw[:5] - z[:5]) * z[:5]).sum(-1) / (z[:5] * z[:5]).sum(-1)
    assert (moved > 0.3).all() and (moved > others.max() + 0.3).all()
    assert not np.array_equal(image(sd_pipe, **weighted), image(sd_pipe, prompt="a red cat"))


def test_weight_one_and_escapes_are_the_plain_call(sd_pipe: Any, sdxl_pipe: Any) -> None:
    assert prompt_kwargs(sd_pipe, "a (cat:1.0)", "(ugly:1)") == {"prompt": "a cat", "negative_prompt": "ugly"}
    assert prompt_kwargs(sd_pipe, r"a \(cat\)", None) == {"prompt": "a (cat)"}
    assert prompt_kwargs(sd_pipe, "a (cat)", None, weighting="off") == {"prompt": "a (cat)"}
    for pipe in (sd_pipe, sdxl_pipe):  # difftool's own encoder of an unweighted prompt gives the plain pixels
        forced = prompts._a1111_kwargs(pipe, prompts.family(pipe), [("a cat", 1.0)], [("ugly", 1.0)], None,
                                       prompts._params(pipe))
        assert np.array_equal(image(pipe, **forced), image(pipe, prompt="a cat", negative_prompt="ugly"))


def test_long_prompt_is_chunked_not_truncated(sd_pipe: Any, sdxl_pipe: Any) -> None:
    assert len(sd_pipe.tokenizer(LONG, add_special_tokens=False)["input_ids"]) == 120
    kwargs = prompt_kwargs(sd_pipe, LONG, "ugly")
    assert kwargs["prompt_embeds"].shape == (1, 154, 32) == kwargs["negative_prompt_embeds"].shape
    first = sd_pipe.tokenizer.decode(sd_pipe.tokenizer(LONG, add_special_tokens=False)["input_ids"][:75])
    head = prompts._a1111_kwargs(sd_pipe, "sd", [(first, 1.0)], None, None, prompts._params(sd_pipe))
    assert np.allclose(kwargs["prompt_embeds"][:, :77], head["prompt_embeds"], atol=1e-6)
    truncated = image(sd_pipe, prompt=LONG, negative_prompt="ugly")  # what plain diffusers makes of it
    assert not np.array_equal(image(sd_pipe, **kwargs), truncated)
    xl = prompt_kwargs(sdxl_pipe, LONG + " BREAK cat", None)
    assert xl["prompt_embeds"].shape == (1, 231, 64) and xl["pooled_prompt_embeds"].shape == (1, 32)
    assert not xl["negative_prompt_embeds"].any()  # SDXL without a negative prompt: zeros, as diffusers
    image(sdxl_pipe, **xl)


def test_clip_skip_uses_the_earlier_hidden_state(sd_pipe: Any, sdxl_pipe: Any) -> None:
    import torch

    def states(pipe: Any, encoder: Any, tokenizer: Any, text: str) -> Any:
        ids = tokenizer(text, padding="max_length", max_length=77, return_tensors="pt").input_ids
        with torch.no_grad():
            return encoder(ids, output_hidden_states=True)

    kwargs = prompt_kwargs(sd_pipe, "a cat", "ugly", clip_skip=1)
    for key, text in (("prompt_embeds", "a cat"), ("negative_prompt_embeds", "ugly")):
        out = states(sd_pipe, sd_pipe.text_encoder, sd_pipe.tokenizer, text)
        with torch.no_grad():  # diffusers' formula: the penultimate layer through the final layer norm
            expected = sd_pipe.text_encoder.final_layer_norm(out.hidden_states[-2])
        assert torch.allclose(kwargs[key], expected, atol=1e-6)
        assert not torch.allclose(kwargs[key], out.last_hidden_state, atol=1e-3)
    assert not np.array_equal(image(sd_pipe, **kwargs), image(sd_pipe, prompt="a cat", negative_prompt="ugly"))
    xl = prompt_kwargs(sdxl_pipe, "a cat", "ugly", clip_skip=1)
    one = states(sdxl_pipe, sdxl_pipe.text_encoder, sdxl_pipe.tokenizer, "ugly").hidden_states[-3]
    two = states(sdxl_pipe, sdxl_pipe.text_encoder_2, sdxl_pipe.tokenizer_2, "ugly").hidden_states[-3]
    assert torch.allclose(xl["negative_prompt_embeds"], torch.cat([one, two], dim=-1), atol=1e-6)
    # with no negative prompt (zeros), the prompt side is exactly diffusers' own clip_skip on SDXL
    assert np.array_equal(image(sdxl_pipe, **prompt_kwargs(sdxl_pipe, "a cat", None, clip_skip=1)),
                          image(sdxl_pipe, prompt="a cat", clip_skip=1))
    assert prompts.clip_skip_from_a1111(2) == 1 and prompts.clip_skip_from_a1111(2, "sdxl") is None
    assert prompts.clip_skip_to_a1111(1, "StableDiffusionPipeline") == 2


def test_compel_weighting(sd_pipe: Any, sdxl_pipe: Any) -> None:
    assert prompt_kwargs(sd_pipe, "a cat", None, weighting="compel") == {"prompt": "a cat"}
    kwargs = prompt_kwargs(sd_pipe, "a cat++", "ugly", weighting="compel", clip_skip=1)
    assert kwargs["prompt_embeds"].shape == kwargs["negative_prompt_embeds"].shape == (1, 77, 32)
    assert not np.array_equal(image(sd_pipe, **kwargs), image(sd_pipe, prompt="a cat", negative_prompt="ugly"))
    xl = prompt_kwargs(sdxl_pipe, "a (cat)1.3", None, weighting="compel")
    assert set(xl) == {"prompt_embeds", "pooled_prompt_embeds", "negative_prompt_embeds",
                       "negative_pooled_prompt_embeds"}


def test_unsupported_pipeline_gets_the_text_as_typed(capsys: pytest.CaptureFixture) -> None:
    class Other:  # a pipeline without CLIP prompt embeddings (Flux-like)
        def __call__(self, prompt: str = "", negative_prompt: str | None = None) -> None: ...

    assert prompt_kwargs(Other(), "a (cat:1.2)", "x") == {"prompt": "a (cat:1.2)", "negative_prompt": "x"}
    assert "prompt weighting is not supported for Other" in capsys.readouterr().err
    from difftool.errors import UsageError

    with pytest.raises(UsageError, match="--clip-skip is not accepted by Other"):
        prompt_kwargs(Other(), "a cat", None, clip_skip=1)


def test_gen_weighting_and_clip_skip_through_the_cli(cli, tiny_sd: Path, sd_pipe: Any) -> None:
    r = cli("gen", "a red (cat:1.0)", "-m", tiny_sd, *BASE, "-o", "one.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("one.png")), image(sd_pipe, prompt="a red cat"))
    r = cli("gen", "a red (cat:1.5)", "-m", tiny_sd, *BASE, "-o", "w.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("w.png")), image(sd_pipe, **prompt_kwargs(sd_pipe, "a red (cat:1.5)", None)))
    r = cli("gen", "a red (cat:1.5)", "-m", tiny_sd, *BASE, "--weighting", "off", "--clip-skip", "1", "-o", "s.png")
    assert r.exit_code == 0, r.stderr
    meta = json.loads(png_text(Path("s.png"))["difftool"])
    assert meta["weighting"] == "off" and meta["clip_skip"] == 1
    assert "Clip skip: 2" in png_text(Path("s.png"))["parameters"]
    expected = prompt_kwargs(sd_pipe, "a red (cat:1.5)", None, weighting="off", clip_skip=1)
    assert np.array_equal(pixels(Path("s.png")), image(sd_pipe, **expected))
    assert not np.array_equal(pixels(Path("s.png")), pixels(Path("w.png")))
    r = cli("gen", "a cat", "-m", tiny_sd, *BASE, "--weighting", "loud")
    assert r.exit_code == 2 and "Unknown --weighting 'loud'" in r.stderr


def test_img2img_takes_weighting_and_clip_skip(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", "src.png")
    assert r.exit_code == 0, r.stderr
    runs = {"plain": ["a cat"], "one": ["a (cat:1.0)"], "skip": ["a (cat:1.0)", "--clip-skip", "1"]}
    for name, args in runs.items():
        r = cli("img2img", "src.png", *args, "-m", tiny_sd, *BASE, "-o", f"{name}.png")
        assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("one.png")), pixels(Path("plain.png")))
    assert not np.array_equal(pixels(Path("skip.png")), pixels(Path("plain.png")))
    assert json.loads(png_text(Path("skip.png"))["difftool"])["clip_skip"] == 1
