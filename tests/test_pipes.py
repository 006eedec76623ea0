"""The shell contract of chaining: real processes joined by real pipes (`gen | img2img - | upscale -`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("difftool") or f"{sys.executable} -m difftool"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "DT": exe}
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gen_img2img_upscale_chain(tiny_sd: Path, tiny_x4: Path, tmp_path: Path) -> None:
    r = shell(f'$DT gen "a cat" -m {tiny_sd} -n 2 --steps 2 --seed 1 '
              f'| $DT img2img - "in watercolor" -m {tiny_sd} --steps 2 --seed 2 '
              f'| $DT upscale - -m {tiny_x4} --steps 2 --seed 3', tmp_path)
    assert r.returncode == 0, r.stderr
    outs = r.stdout.split()
    assert outs == ["a-cat-1-in-watercolor-2.x4.png", "a-cat-2-in-watercolor-2.x4.png"]
    for name in outs:
        with Image.open(tmp_path / name) as im:
            assert im.size == (256, 256)
    assert (tmp_path / "a-cat-1.png").exists() and (tmp_path / "a-cat-1-in-watercolor-2.png").exists()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_bad_path_in_the_pipe_fails_with_2_and_the_rest_completes(tiny_x4: Path, tmp_path: Path) -> None:
    Image.new("RGB", (32, 32), "red").save(tmp_path / "red.png")
    r = shell(f"printf 'nope.png\\nred.png\\n' | $DT upscale - -m {tiny_x4} --steps 2 --seed 1", tmp_path)
    assert r.returncode == 2
    assert "nope.png' does not exist" in r.stderr
    assert r.stdout.split() == ["red.x4.png"] and (tmp_path / "red.x4.png").exists()
