"""Shared fixtures: tiny models built once per session, an isolated HF cache and config per test."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
import builders  # noqa: E402

FAKE_SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight StableDiffusionPipeline folder in the Hub layout (64x64 images)."""
    return builders.build_sd(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own HF cache, no config file, no DIFFTOOL_* from the developer's shell, no running
    `difftool serve` (its own runtime folder), and runs in tmp."""
    for key in list(os.environ):
        if key.startswith("DIFFTOOL_"):
            monkeypatch.delenv(key)
    hf_home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setenv("DIFFTOOL_CONFIG", str(tmp_path / "no-config.toml"))
    runtime = tmp_path / "runtime"  # no per-user socket: a developer's own `difftool serve` is never used
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HOME", str(hf_home))
    monkeypatch.chdir(tmp_path)
    yield hf_home


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str, input: str | None = None) -> Result:
    """Run the real Typer app in-process; stdout and stderr kept apart."""
    from difftool.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli():
    return run_cli


def place_in_cache(folder: Path, repo_id: str, hf_home: Path) -> Path:
    """Lay `folder` out in the HF cache as huggingface_hub does (snapshots/<sha>, refs/main)."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / FAKE_SHA
    shutil.copytree(folder, snap)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(FAKE_SHA)
    return snap


def png_text(path: Path) -> dict[str, str]:
    from PIL import Image

    with Image.open(path) as im:
        return dict(im.text)


def pixels(path: Path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def tiny_x4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight StableDiffusionUpscalePipeline folder (x4)."""
    return builders.build_x4_upscaler(tmp_path_factory.mktemp("models") / "tiny-x4")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread (modules opt in with `pytestmark`): on a shared, loaded CPU, torch's thread pool makes
    these tiny models ~50x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def k22(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny combined Kandinsky 2.2 (KandinskyV22CombinedPipeline) folder."""
    return builders.build_kandinsky22(tmp_path_factory.mktemp("models") / "tiny-k22")


@pytest.fixture(scope="session")
def k22_split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(decoder folder, prior folder) with the same weights as `k22`."""
    root = tmp_path_factory.mktemp("models")
    return builders.build_kandinsky22_split(root / "tiny-k22-decoder", root / "tiny-k22-prior")


@pytest.fixture(scope="session")
def red(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 px red image with a blue square: an input for variations and interpolation."""
    from PIL import Image

    path = tmp_path_factory.mktemp("inputs") / "red.png"
    im = Image.new("RGB", (64, 64), (200, 40, 30))
    im.paste((30, 40, 200), (16, 16, 48, 48))
    im.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_lora(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytorch_lora_weights.safetensors for tiny_sd's UNet (random, non-zero B matrices)."""
    return builders.build_lora(tiny_sd, tmp_path_factory.mktemp("lora") / "tiny-lora")
