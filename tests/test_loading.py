"""Model references and loading: formats refused or accepted, safety checker, wrong pipeline kinds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import builders
import pytest
from conftest import png_text

STEPS = ["--steps", "2", "--seed", "1"]


def test_unknown_alias_names_the_choices(cli) -> None:
    r = cli("gen", "a cat", "-m", "sd16")
    assert r.exit_code == 3
    assert "Unknown model 'sd16'" in r.stderr and "sdxl" in r.stderr


def test_folder_without_model_index_is_refused(cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = cli("gen", "a cat", "-m", tmp_path / "empty")
    assert r.exit_code == 3 and "model_index.json" in r.stderr


def test_model_from_environment(cli, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFTOOL_MODEL", str(tiny_sd))
    r = cli("gen", "a cat", *STEPS, "-o", "env.png")
    assert r.exit_code == 0, r.stderr
    assert json.loads(png_text(Path("env.png"))["difftool"])["model"] == str(tiny_sd)


def test_pickle_checkpoint_refused_unless_allowed(cli, tmp_path: Path) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not really a pickle")
    r = cli("gen", "a cat", "-m", ckpt)
    assert r.exit_code == 3
    assert "pickle" in r.stderr and "--allow-pickle" in r.stderr


def test_pickle_weights_in_a_folder_refused_unless_allowed(cli, tiny_sd: Path, tmp_path: Path) -> None:
    """A folder whose UNet has only .bin weights: refused by default, loaded with --allow-pickle."""
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_sd, folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(weights), folder / "unet" / "diffusion_pytorch_model.bin")
    weights.unlink()
    r = cli("gen", "a cat", "-m", folder, *STEPS)
    assert r.exit_code == 3
    assert "--allow-pickle" in r.stderr
    r = cli("gen", "a cat", "-m", folder, *STEPS, "--allow-pickle", "-o", "p.png")
    assert r.exit_code == 0, r.stderr


def test_single_file_needs_configs_offline(cli, tiny_sd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    ckpt = tmp_path / "model.safetensors"
    shutil.copy(tiny_sd / "unet" / "diffusion_pytorch_model.safetensors", ckpt)
    r = cli("gen", "a cat", "-m", ckpt, *STEPS)
    assert r.exit_code == 3
    assert "--config" in r.stderr


def test_missing_single_file(cli, tmp_path: Path) -> None:
    r = cli("gen", "a cat", "-m", tmp_path / "gone.safetensors")
    assert r.exit_code == 3 and "does not exist" in r.stderr


def test_safety_checker_kept_unless_disabled(cli, tmp_path: Path) -> None:
    folder = builders.build_sd_with_safety_checker(tmp_path / "checked")
    r = cli("gen", "a cat", "-m", folder, *STEPS, "--json", "-o", "a.png")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["safety_checker"] is True
    r = cli("gen", "a cat", "-m", folder, *STEPS, "--json", "--no-safety-checker", "-o", "b.png")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["safety_checker"] is False


def test_not_a_text_to_image_pipeline(cli, tmp_path: Path) -> None:
    folder = builders.build_ddpm(tmp_path / "ddpm")
    r = cli("gen", "a cat", "-m", folder)
    assert r.exit_code == 3
    assert "DDPMPipeline" in r.stderr and "not a text-to-image pipeline" in r.stderr


def test_references_resolve_without_heavy_imports(tiny_sd: Path) -> None:
    from difftool import references

    assert references.resolve("sd15").repo_id == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    hub = references.resolve("org/name@v2")
    assert (hub.kind, hub.repo_id, hub.revision, hub.label) == ("hub", "org/name", "v2", "org/name@v2")
    assert references.resolve(str(tiny_sd)).kind == "folder"
    assert references.resolve("stabilityai/sdxl-turbo").spec.alias == "sdxl-turbo"
