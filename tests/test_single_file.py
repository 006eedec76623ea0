"""Single-file (original LDM format) checkpoints with `--config`: the happy path, offline, pixel for pixel."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import pixels, place_in_cache, png_text
from ldm_checkpoint import write_original_sd_checkpoint

STEPS = ("--steps", "2", "--seed", "1")


@pytest.fixture(scope="session")
def tiny_ckpt(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SD pipeline as ONE original-format `.safetensors` checkpoint."""
    return write_original_sd_checkpoint(tiny_sd, tmp_path_factory.mktemp("ckpt") / "tiny-sd.safetensors")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session")
def folder_image(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory):
    """The reference: the same prompt and seed from the diffusers folder (isolated like every test)."""
    import os

    from conftest import run_cli

    out = tmp_path_factory.mktemp("reference") / "folder.png"
    with pytest.MonkeyPatch.context() as mp:  # session-scoped: set up before the autouse isolated_env
        for key in [k for k in os.environ if k.startswith("DIFFTOOL_")]:
            mp.delenv(key)
        mp.setenv("DIFFTOOL_CONFIG", str(out.parent / "no-config.toml"))
        r = run_cli("gen", "a cat", "-m", tiny_sd, *STEPS, "-o", out)
    assert r.exit_code == 0, r.stderr
    return pixels(out)


def test_checkpoint_is_original_format(tiny_ckpt: Path) -> None:
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    from safetensors.torch import load_file

    state = load_file(str(tiny_ckpt))
    prefixes = {k.split(".")[0] for k in state}
    assert prefixes == {"model", "first_stage_model", "cond_stage_model"}
    assert infer_diffusers_model_type(state) == "v1"
    assert state["first_stage_model.decoder.mid.attn_1.q.weight"].ndim == 4  # LDM's 1x1 conv attention


def test_checkpoint_loads_back_to_the_same_weights(tiny_sd: Path, tiny_ckpt: Path) -> None:
    import torch
    from diffusers import StableDiffusionPipeline

    original = StableDiffusionPipeline.from_pretrained(str(tiny_sd), local_files_only=True)
    loaded = StableDiffusionPipeline.from_single_file(str(tiny_ckpt), config=str(tiny_sd), local_files_only=True)
    for name in ("unet", "vae", "text_encoder"):
        want, got = getattr(original, name).state_dict(), getattr(loaded, name).state_dict()
        assert want.keys() == got.keys(), name
        assert all(torch.equal(want[k], got[k]) for k in want), name


def test_gen_from_checkpoint_with_config_folder(cli, tiny_sd: Path, tiny_ckpt: Path, folder_image, offline) -> None:
    r = cli("gen", "a cat", "-m", tiny_ckpt, "--config", tiny_sd, *STEPS, "-o", "ckpt.png")
    assert r.exit_code == 0, r.stderr
    assert (pixels(Path("ckpt.png")) == folder_image).all()
    import json

    meta = json.loads(png_text(Path("ckpt.png"))["difftool"])
    assert meta["model"] == str(tiny_ckpt)
    assert meta["pipeline"] == "StableDiffusionPipeline"


def test_config_as_cached_hub_id_offline(cli, tiny_sd: Path, tiny_ckpt: Path, folder_image, offline,
                                         isolated_env: Path) -> None:
    place_in_cache(tiny_sd, "someorg/tiny", isolated_env)
    r = cli("gen", "a cat", "-m", tiny_ckpt, "--config", "someorg/tiny", *STEPS, "-o", "hub.png")
    assert r.exit_code == 0, r.stderr
    assert (pixels(Path("hub.png")) == folder_image).all()


def test_config_as_cached_hub_id_needs_no_network(cli, tiny_sd: Path, tiny_ckpt: Path, folder_image,
                                                  isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not offline, but the Hub unreachable: a cached config repo is used from the cache, with no request."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    from huggingface_hub.utils import get_session

    requests: list[str] = []

    def record(request) -> None:
        requests.append(str(request.url))

    session = get_session()
    hooks = session.event_hooks
    session.event_hooks = {**hooks, "request": [*hooks["request"], record]}
    place_in_cache(tiny_sd, "someorg/tiny", isolated_env)
    try:
        r = cli("gen", "a cat", "-m", tiny_ckpt, "--config", "someorg/tiny", *STEPS, "-o", "hub.png")
    finally:
        hooks = session.event_hooks
        session.event_hooks = {**hooks, "request": [h for h in hooks["request"] if h is not record]}
    assert r.exit_code == 0, r.stderr
    assert requests == []
    assert (pixels(Path("hub.png")) == folder_image).all()


def test_config_hub_id_not_cached_offline(cli, tiny_ckpt: Path, offline) -> None:
    r = cli("gen", "a cat", "-m", tiny_ckpt, "--config", "someorg/missing", *STEPS)
    assert r.exit_code == 3
    assert "someorg/missing" in r.stderr and "not in the local cache" in r.stderr


def test_config_that_is_no_folder_nor_hub_id(cli, tiny_ckpt: Path, tmp_path: Path, offline) -> None:
    r = cli("gen", "a cat", "-m", tiny_ckpt, "--config", tmp_path / "no-such-folder", *STEPS)
    assert r.exit_code == 3
    assert "neither a folder" in r.stderr and "no-such-folder" in r.stderr
