"""`<lora:name:0.8>` tags in prompts (difftool.lora_tags), resolved against --lora-dir and the config file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import pixels, png_text

from difftool.errors import ModelUnavailable, UsageError
from difftool.lora_tags import extract_lora_tags

BASE = ["--steps", "2", "--seed", "3"]


@pytest.fixture
def lora_dir(tiny_lora: Path, tmp_path: Path) -> Path:
    """A LoRA folder as A1111 users keep one: files named for the tag, in subfolders."""
    folder = tmp_path / "loras"
    (folder / "styles").mkdir(parents=True)
    shutil.copy(tiny_lora, folder / "styles" / "Grain.safetensors")
    return folder


def test_extract_lora_tags(lora_dir: Path, capsys: pytest.CaptureFixture) -> None:
    text, loras = extract_lora_tags("a cat, <lora:Grain:0.8> <lyco:grain:te=0.5:unet=0.25><hypernet:x:1>", [lora_dir])
    assert text == "a cat,  "
    assert [(lora.tag, lora.scale) for lora in loras] == [("Grain", 0.8), ("grain", 0.25)]
    assert loras[0].path == loras[1].path == (lora_dir / "styles" / "Grain.safetensors").resolve()
    err = capsys.readouterr().err
    assert "using the UNet's (0.25)" in err and "hypernet networks are not supported" in err
    assert extract_lora_tags("<lora:styles/Grain>", [lora_dir])[1][0].scale == 1.0
    with pytest.raises(UsageError, match=f"'nope' .* not found in {lora_dir}"):
        extract_lora_tags("<lora:nope:1>", [lora_dir])
    with pytest.raises(UsageError, match="--lora-dir"):
        extract_lora_tags("<lora:Grain:1>", [])
    with pytest.raises(UsageError, match="must be a number"):
        extract_lora_tags("<lora:Grain:strong>", [lora_dir])
    (lora_dir / "old.pt").write_bytes(b"")
    with pytest.raises(ModelUnavailable, match="pickle"):
        extract_lora_tags("<lora:old:1>", [lora_dir])


def test_tag_equals_lora_option(cli, tiny_sd: Path, tiny_lora: Path, lora_dir: Path) -> None:
    r = cli("gen", "a cat <lora:Grain:0.7>", "a dog", "-m", tiny_sd, *BASE, "--lora-dir", lora_dir, "-o", "t.png")
    assert r.exit_code == 0, r.stderr
    r = cli("gen", "a cat", "-m", tiny_sd, *BASE, "--lora", f"{tiny_lora}:0.7", "-o", "l.png")
    assert r.exit_code == 0, r.stderr
    r = cli("gen", "a dog", "a cat", "-m", tiny_sd, *BASE, "-o", "p.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("t-0.png")), pixels(Path("l.png")))
    assert not np.array_equal(pixels(Path("t-0.png")), pixels(Path("p-1.png")))
    assert np.array_equal(pixels(Path("t-1.png")), pixels(Path("p-0.png")))  # the untagged prompt: no LoRA
    meta = json.loads(png_text(Path("t-0.png"))["difftool"])
    assert meta["prompt"] == "a cat <lora:Grain:0.7>" and "lora" not in meta  # replayed from the prompt itself
    assert meta["lora_dir"] == [str(lora_dir)] and meta["lora_tags"][0]["scale"] == 0.7
    assert "lora_tags" not in json.loads(png_text(Path("t-1.png"))["difftool"])


def test_lora_dir_from_config_file_and_unknown_name(cli, tiny_sd: Path, lora_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    r = cli("gen", "a cat <lora:Grain:0.7>", "-m", tiny_sd, *BASE, "--lora-dir", lora_dir, "-o", "flag.png")
    assert r.exit_code == 0, r.stderr
    config = tmp_path / "config.toml"
    config.write_text(f'lora-dir = "{lora_dir}"\n')
    monkeypatch.setenv("DIFFTOOL_CONFIG", str(config))
    r = cli("gen", "a cat <lora:grain:0.7>", "-m", tiny_sd, *BASE, "-o", "conf.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("conf.png")), pixels(Path("flag.png")))
    r = cli("gen", "a cat <lora:missing:1>", "-m", tiny_sd, *BASE)
    assert r.exit_code == 2, r.stderr
    assert "'missing'" in r.stderr and str(lora_dir) in r.stderr and "Loading" not in r.stderr
