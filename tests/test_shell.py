"""The shell contract and the Hub paths, in real subprocesses: imports, streams, exit codes, offline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import place_in_cache


def run(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
        input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if env and "HF_HOME" in env:
        full_env["HF_HUB_CACHE"] = str(Path(env["HF_HOME"]) / "hub")
    return subprocess.run([sys.executable, "-m", "difftool", *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, input=input, timeout=timeout)


@pytest.mark.parametrize("args", [["--help"], ["gen", "--help"], ["serve", "--help"]])
def test_help_imports_no_heavy_module(args: list[str]) -> None:
    code = (
        "import sys, io, contextlib\n"
        "from difftool.cli import app\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try: app({args!r})\n"
        "    except SystemExit: pass\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'fastapi', 'uvicorn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_typo_fails_fast_without_heavy_imports(tiny_sd: Path) -> None:
    start = time.monotonic()
    r = run(["gen", "a cat", "-m", str(tiny_sd), "--scheduler", "nope"])
    assert r.returncode == 2
    assert time.monotonic() - start < 20  # generous bound: process start only, no torch import
    assert r.stdout == ""
    assert r.stderr.startswith("error: Unknown scheduler")


def test_stdout_has_only_paths_and_stderr_the_logs(tiny_sd: Path, tmp_path: Path) -> None:
    r = run(["gen", "a cat", "-m", str(tiny_sd), "--steps", "2", "-n", "2", "-o", "x/{index}.png"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["x/0.png", "x/1.png"]
    assert "seed" in r.stderr and "Loading" in r.stderr
    assert "\x1b[" not in r.stderr  # no progress bar when stderr is not a terminal
    for line in r.stderr.splitlines():  # library chatter kept off stderr
        assert "Warning" not in line and "it/s" not in line, line


def test_errors_are_one_sentence_without_traceback(tmp_path: Path) -> None:
    r = run(["gen", "a cat", "-m", str(tmp_path / "nothing-here")], cwd=tmp_path)
    assert r.returncode == 3
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_offline_uncached_model_exits_3_at_once(tmp_path: Path) -> None:
    start = time.monotonic()
    r = run(["gen", "a cat", "-m", "someorg/uncached-model"], env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)})
    assert r.returncode == 3
    assert "someorg/uncached-model" in r.stderr and "--model PATH" in r.stderr and "HF_HUB_OFFLINE" in r.stderr
    assert time.monotonic() - start < 30


def test_unreachable_hub_exits_3_quickly(tmp_path: Path) -> None:
    start = time.monotonic()
    r = run(["gen", "a cat", "-m", "someorg/uncached-model"],
            env={"HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path), "HF_ENDPOINT": "http://127.0.0.1:9"})
    elapsed = time.monotonic() - start
    assert r.returncode == 3, r.stderr
    assert "Could not reach the Hub" in r.stderr and "someorg/uncached-model" in r.stderr
    assert elapsed < 30  # process start ~6-10 s here; the network part fails at once


@pytest.fixture
def silent_hub() -> Iterator[str]:
    """An endpoint that accepts TCP connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_silent_hub_does_not_hang(tmp_path: Path, silent_hub: str) -> None:
    start = time.monotonic()
    r = run(["gen", "a cat", "-m", "someorg/uncached-model"],
            env={"HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path), "HF_ENDPOINT": silent_hub,
                 "HF_HUB_DOWNLOAD_TIMEOUT": "2"})
    assert r.returncode == 3, r.stderr
    assert "did not answer within 2 s" in r.stderr
    assert time.monotonic() - start < 45


def test_cached_hub_model_loads_without_network(tiny_sd: Path, tmp_path: Path, silent_hub: str) -> None:
    """With the model in the HF cache, a Hub that never answers is never asked."""
    hf_home = tmp_path / "hf"
    place_in_cache(tiny_sd, "someorg/tiny", hf_home)
    r = run(["gen", "a cat", "-m", "someorg/tiny", "--steps", "2", "--seed", "1", "-o", "c.png"], cwd=tmp_path,
            env={"HF_HUB_OFFLINE": "0", "HF_HOME": str(hf_home), "HF_ENDPOINT": silent_hub,
                 "HF_HUB_DOWNLOAD_TIMEOUT": "30"}, timeout=100)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c.png").is_file()
