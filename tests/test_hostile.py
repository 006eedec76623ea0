"""What a hostile-but-fair user tries: sizes and counts refused before a model loads, values from images checked
like flags, strict JSON, file modes, signals that leave nothing behind, output plans checked first, one-line
usage errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import png_text


def no_load(r) -> None:
    assert r.exit_code == 2, r.stderr
    assert "Loading" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("args, needle", [
    (("-W", "100000", "-H", "100000"), "--width"),
    (("-W", "8192", "-H", "8192"), "--max-pixels"),
    (("--steps", "100000"), "--steps"),
    (("-n", "100000"), "-n/--num-images"),
    (("--guidance", "inf"), "finite"),
    (("--guidance", "nan"), "finite"),
    (("--seed", "9223372036854775807", "-n", "2"), "largest seed"),
    (("--seed", "-5"), "--seed"),
    (("--steps", "abc"), "--steps"),
])
def test_bad_values_are_one_line_exit_2_before_loading(cli, tiny_sd: Path, args: tuple[str, ...],
                                                       needle: str) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, *args)
    no_load(r)
    assert needle in r.stderr


def test_max_pixels_raises_the_limit(cli, tiny_sd: Path) -> None:
    no_load(cli("gen", "a cat", "-m", tiny_sd, "-W", "4104", "-H", "4096", "--steps", "1"))
    r = cli("gen", "a cat", "-m", tiny_sd, "-W", "4104", "-H", "4096", "--steps", "1", "--max-pixels", "16810000",
            "--offload", "model", "--device", "cpu")  # past the size check; stops at --offload, before any pixel
    assert r.exit_code == 2 and "--offload" in r.stderr


def test_limits_apply_to_the_environment_and_stored_sizes(cli, tiny_sd: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from test_info import a1111_png

    monkeypatch.setenv("DIFFTOOL_GUIDANCE", "inf")
    r = cli("gen", "a cat", "-m", tiny_sd)
    no_load(r)
    assert "DIFFTOOL_GUIDANCE" in r.stderr and "finite" in r.stderr
    monkeypatch.delenv("DIFFTOOL_GUIDANCE")
    a1111_png(tmp_path / "big.png", "a castle\nSteps: 2, Sampler: Euler a, CFG scale: 4, Seed: 1, Size: 100000x100000")
    r = cli("gen", "--from", tmp_path / "big.png", "-m", tiny_sd)
    no_load(r)
    assert "big.png" in r.stderr and "width" in r.stderr
    a1111_png(tmp_path / "seed.png", "a castle\nSteps: 2, Sampler: Euler a, CFG scale: 4, Seed: 99999999999999999999999")
    no_load(cli("gen", "--from", tmp_path / "seed.png", "-m", tiny_sd))
    a1111_png(tmp_path / "random.png", "a castle\nSteps: 2, Sampler: Euler a, CFG scale: 4, Seed: -1, Size: 64x64")
    r = cli("gen", "--from", tmp_path / "random.png", "-m", tiny_sd, "-o", "r.png")
    assert r.exit_code == 0, r.stderr
    assert "random" in r.stderr  # A1111's -1: a random seed, drawn and reported


def test_strength_times_steps_is_checked_before_loading(cli, tiny_sd: Path, tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 64), "red").save(tmp_path / "a.png")
    no_load(cli("img2img", tmp_path / "a.png", "a cat", "-m", tiny_sd, "--steps", "2", "--strength", "0.1"))


def test_json_lines_are_strict_json(cli, tiny_sd: Path) -> None:
    r = cli("gen", "a cat", "-m", tiny_sd, "--steps", "1", "--seed", "1", "--json")
    assert r.exit_code == 0
    json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


def test_outputs_get_the_umask_mode(cli, tiny_sd: Path) -> None:
    old = os.umask(0o022)
    try:
        Path("kept.png").write_bytes(b"x")
        os.chmod("kept.png", 0o644)
        assert cli("gen", "a cat", "-m", tiny_sd, "--steps", "1", "--seed", "1", "-o", "new.png").exit_code == 0
        assert cli("gen", "a cat", "-m", tiny_sd, "--steps", "1", "--seed", "1", "-o", "kept.png",
                   "--overwrite").exit_code == 0
    finally:
        os.umask(old)
    assert oct(os.stat("new.png").st_mode & 0o777) == "0o644"
    assert oct(os.stat("kept.png").st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("output, needle", [
    ("ro/x.png", "not writable"),
    ("{seed:>300}.png", "longer than the file system"),
    ("{seed:>3000000000}.png", "longer than the file system"),
    ("out/{prompt", "not valid"),
    ("/dev/full", "not a regular file"),
])
def test_output_plans_are_checked_before_loading(cli, tiny_sd: Path, output: str, needle: str) -> None:
    Path("ro").mkdir()
    os.chmod("ro", 0o555)
    try:
        r = cli("gen", "a cat", "-m", tiny_sd, "-o", output)
    finally:
        os.chmod("ro", 0o755)
    if os.geteuid() == 0 and output.startswith("ro/"):
        pytest.skip("root writes into read-only folders")
    no_load(r)
    assert needle in r.stderr


def test_invalid_utf8_on_stdin_is_reported_and_skipped(cli, tiny_sd: Path) -> None:
    from typer.testing import CliRunner

    from difftool.cli import app

    r = CliRunner().invoke(app, ["gen", "-", "-m", str(tiny_sd), "--steps", "1", "--seed", "1", "-o", "{prompt}.png"],
                           input=b"a cat\n\xff\xfe bad\na dog\n")
    assert r.exit_code == 2
    assert r.stdout.split() == ["a-cat.png", "a-dog.png"]
    assert "line 2" in r.stderr


def test_mask_messages_say_what_is_wrong(cli, tiny_sd: Path, tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 64), "red").save(tmp_path / "a.png")
    Image.new("L", (64, 64), 100).save(tmp_path / "grey.png")
    r = cli("inpaint", tmp_path / "a.png", tmp_path / "grey.png", "x", "-m", tiny_sd)
    no_load(r)
    assert "no white pixel" in r.stderr and "all black" not in r.stderr
    (tmp_path / "folder").mkdir()
    r = cli("inpaint", tmp_path / "a.png", tmp_path / "folder", "x", "-m", tiny_sd)
    no_load(r)
    assert "Mask '" in r.stderr and "is a folder" in r.stderr


def test_help_lines_do_not_break_mid_sentence() -> None:
    """`difftool --help` lists each command with its docstring's first paragraph, line breaks kept: one line each."""
    import inspect

    from difftool.cli import app

    for command in app.registered_commands:
        first = inspect.getdoc(command.callback).split("\n\n")[0]
        assert "\n" not in first and first.endswith((".", ")")), (command.callback.__name__, first)


def run(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "difftool", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, **kwargs)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_leave_no_temporary_file(tiny_x4: Path, tmp_path: Path, signum: int, code: int) -> None:
    """Stopped while an upscale streams into its temporary file: the file goes, and the exit code says why."""
    from PIL import Image

    Image.new("RGB", (96, 96), "red").save(tmp_path / "in.png")
    proc = run("upscale", str(tmp_path / "in.png"), "-m", str(tiny_x4), "--steps", "40", "--tile", "32",
               "-o", str(tmp_path / "out.png"), cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.png.*.tmp")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.png.*.tmp")), "the upscale never started writing"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "out.png").exists()


def test_dash_o_writes_the_png_to_stdout(tiny_sd: Path, tmp_path: Path) -> None:
    proc = run("gen", "a cat", "-m", str(tiny_sd), "--steps", "1", "--seed", "2", "-o", "-", cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.startswith(b"\x89PNG") and not list(tmp_path.glob("*.png"))
    (tmp_path / "x.png").write_bytes(out)
    assert json.loads(png_text(tmp_path / "x.png")["difftool"])["seed"] == 2


def test_uncached_model_offline_fails_before_heavy_imports(tmp_path: Path) -> None:
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom difftool.cli import app\n"
            "r = CliRunner().invoke(app, ['gen', 'a cat', '-m', 'org/not-cached'])\n"
            "print(r.exit_code, sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split("\n")[0] == "3 []", out.stdout + out.stderr
