"""`difftool models`, `pull`, `rm` on a temporary HF cache laid out the way huggingface_hub lays it out."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

SHA = "89abcdef0123456789abcdef0123456789abcdef"
SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"


def hub_layout(folder: Path, repo_id: str, hf_home: Path, sha: str = SHA, ref: str = "main") -> int:
    """Put `folder` in the cache as huggingface_hub does: blobs/<hash>, snapshots/<sha>/<file> -> ../../blobs/<hash>,
    refs/<ref>. Returns the bytes of the blobs."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    total = 0
    for src in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = src.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        blob = repo / "blobs" / digest
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(data)
            total += len(data)
        link = repo / "snapshots" / sha / src.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(sha)
    return total


def rows(cli) -> dict:
    r = cli("models", "--json")
    assert r.exit_code == 0, r.stderr
    return {(row["alias"] or row["repo"]): row for row in map(json.loads, r.stdout.splitlines())}


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_models_lists_registry_with_cache_status(cli, tiny_sd: Path, isolated_env: Path) -> None:
    before = rows(cli)
    assert set(before) >= {"sd15", "sdxl", "kandinsky22", "x4"} and not before["sd15"]["cached"]
    size = hub_layout(tiny_sd, SD15, isolated_env)
    hub_layout(tiny_sd, "someone/finetune", isolated_env)
    hub_layout(tiny_sd, "kandinsky-community/kandinsky-2-2-decoder", isolated_env)
    after = rows(cli)
    sd15 = after["sd15"]
    assert sd15["cached"] and sd15["size"] == size and sd15["repo"] == SD15
    assert sd15["task"] == "text2img" and sd15["defaults"]["steps"] == 30
    assert not after["sdxl"]["cached"]
    k22 = after["kandinsky22"]  # decoder without its prior: not usable yet
    assert not k22["cached"] and k22["partial"]
    assert [r["repo"] for r in k22["repos"]] == ["kandinsky-community/kandinsky-2-2-decoder",
                                                 "kandinsky-community/kandinsky-2-2-prior"]
    assert after["someone/finetune"]["alias"] is None and after["someone/finetune"]["cached"]
    human = cli("models")
    line = next(x for x in human.stdout.splitlines() if x.startswith("sd15 "))
    assert SD15 in line and "30 steps, cfg 7.5, 512x512" in line and line.split()[-3] == "yes"
    assert any(x.startswith("-") and "someone/finetune" in x for x in human.stdout.splitlines())


def test_rm_asks_then_removes(cli, tiny_sd: Path, isolated_env: Path) -> None:
    hub_layout(tiny_sd, SD15, isolated_env)
    repo_dir = isolated_env / "hub" / ("models--" + SD15.replace("/", "--"))
    r = cli("rm", "sd15", input="n\n")
    assert r.exit_code == 1 and "nothing removed" in r.stderr
    assert rows(cli)["sd15"]["cached"]
    r = cli("rm", "sd15", input="y\n")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[-1] == SD15  # (CliRunner echoes the typed answer on stdout)
    assert not repo_dir.exists()
    assert not rows(cli)["sd15"]["cached"]


def test_rm_yes_and_not_cached(cli, tiny_sd: Path, isolated_env: Path) -> None:
    hub_layout(tiny_sd, "someone/finetune", isolated_env)
    r = cli("rm", "--yes", "someone/finetune", "sdxl")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "someone/finetune"
    assert "stabilityai/stable-diffusion-xl-base-1.0 is not in the cache" in r.stderr
    assert "someone/finetune" not in rows(cli)
    r = cli("rm", "--yes", str(tiny_sd))
    assert r.exit_code == 2 and "local model" in r.stderr


def test_rm_one_revision(cli, tiny_sd: Path, isolated_env: Path) -> None:
    hub_layout(tiny_sd, "someone/finetune", isolated_env)
    other = "fedcba9876543210fedcba9876543210fedcba98"
    hub_layout(tiny_sd, "someone/finetune", isolated_env, sha=other, ref="v2")
    r = cli("rm", "-y", "someone/finetune@v2")
    assert r.exit_code == 0, r.stderr
    snapshots = isolated_env / "hub" / "models--someone--finetune" / "snapshots"
    assert [p.name for p in snapshots.iterdir()] == [SHA]


def test_pull_cached_model_offline(cli, tiny_sd: Path, isolated_env: Path, offline: None) -> None:
    hub_layout(tiny_sd, SD15, isolated_env)
    r = cli("pull", "sd15", "--json")
    assert r.exit_code == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["repo"] == SD15 and Path(record["path"]).name == SHA
    assert (Path(record["path"]) / "model_index.json").is_file()


def test_pull_errors(cli, tiny_sd: Path, offline: None) -> None:
    r = cli("pull", "sd15")
    assert r.exit_code == 3
    assert "HF_HUB_OFFLINE" in r.stderr and SD15 in r.stderr
    r = cli("pull", "kandinsky22")
    assert r.exit_code == 3 and "kandinsky-2-2-decoder" in r.stderr


def test_pull_kandinsky_takes_the_prior_too(cli, tiny_sd: Path, isolated_env: Path, offline: None) -> None:
    decoder, prior = "kandinsky-community/kandinsky-2-2-decoder", "kandinsky-community/kandinsky-2-2-prior"
    hub_layout(tiny_sd, decoder, isolated_env)  # any pipeline folder stands in: pull only fetches files
    r = cli("pull", "kandinsky22")
    assert r.exit_code == 3 and prior in r.stderr  # the decoder was there, the prior is not
    hub_layout(tiny_sd, prior, isolated_env)
    for ref in ("kandinsky22", decoder):
        r = cli("pull", ref, "--json")
        assert r.exit_code == 0, r.stderr
        assert [json.loads(x)["repo"] for x in r.stdout.splitlines()] == [decoder, prior]
    r = cli("pull", str(tiny_sd))
    assert r.exit_code == 2 and "nothing to pull" in r.stderr
    r = cli("pull", "no-such-alias")
    assert r.exit_code == 3 and "Unknown model" in r.stderr


def test_env_reports_without_tokens(cli, monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_do_not_print_me_123")
    r = cli("env", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["packages"]["diffusers"] and data["device"]["auto"] == "cpu"
    assert data["hf_cache"] == str(isolated_env / "hub") and data["hf_token"] == "set (HF_TOKEN)"
    human = cli("env")
    assert "hf_do_not_print_me_123" not in r.stdout + r.stderr + human.stdout + human.stderr
    assert any(line.startswith("HF cache: ") for line in human.stdout.splitlines())


def test_shell_completion_script() -> None:
    """Typer's completion script (what `--show-completion` prints once it has detected the shell)."""
    from typer.testing import CliRunner

    from difftool.cli import app

    r = CliRunner().invoke(app, [], env={"_DIFFTOOL_COMPLETE": "source_bash"}, prog_name="difftool")
    assert r.exit_code == 0
    assert "_difftool_completion" in r.stdout and "complete -o default" in r.stdout


@pytest.mark.parametrize(("cls", "status"), [("GatedRepoError", 401), ("HfHubHTTPError", 401),
                                             ("HfHubHTTPError", 403), ("RepositoryNotFoundError", 401)])
def test_refused_or_missing_token_is_exit_3_with_login_hint(cls: str, status: int) -> None:
    import httpx2
    from huggingface_hub import errors

    from difftool import hub
    from difftool.errors import ExitCode, explain

    token = "hf_secret_token_value"
    request = httpx2.Request("GET", "https://huggingface.co/api/models/org/gated", headers={"authorization": f"Bearer {token}"})
    exc = getattr(errors, cls)("denied", response=httpx2.Response(status, request=request))
    err = explain(hub.translate(exc, "org/gated"))
    assert err is not None and err.code == ExitCode.MODEL_UNAVAILABLE
    assert "hf auth login" in err.message and "HF_TOKEN" in err.message and "org/gated" in err.message
    assert token not in err.message


def test_pull_non_pipeline_repo_from_cache(cli, tiny_sd: Path, isolated_env: Path, offline: None) -> None:
    hub_layout(tiny_sd / "vae", "someone/tiny-vae", isolated_env)  # a component repo: config.json + weights
    r = cli("pull", "someone/tiny-vae")
    assert r.exit_code == 0, r.stderr
    assert (Path(r.stdout.strip()) / "diffusion_pytorch_model.safetensors").is_file()
