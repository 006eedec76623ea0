"""`difftool info`: settings read back from difftool's own chunk and from a hand-written A1111 PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

A1111 = ('a castle on a hill, "golden hour"\nhighly detailed\nNegative prompt: blurry, lowres\n'
         'Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 987654321, Size: 512x768, '
         'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "detail: 1a2b, style: 3c4d", '
         'Version: v1.10.1')


def a1111_png(path: Path, text: str = A1111) -> Path:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", (16, 16), "red").save(path, pnginfo=info)
    return path


@pytest.fixture(scope="module")
def made(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import run_cli

    out = tmp_path_factory.mktemp("info") / "made.png"
    r = run_cli("gen", "a red cat, sitting", "-m", tiny_sd, "--steps", "2", "--seed", "42", "--negative", "dog",
                "-o", out)
    assert r.exit_code == 0, r.stderr
    return out


def test_info_on_difftool_image(cli, made: Path, tiny_sd: Path) -> None:
    r = cli("info", made)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{made}  (difftool ")
    fields = {line.split()[0]: line.split(None, 1)[1] for line in lines[1:]}
    assert fields["prompt"] == "a red cat, sitting"
    assert fields["negative"] == "dog"
    assert fields["seed"] == "42" and fields["steps"] == "2"
    assert fields["model"] == str(tiny_sd)
    r = cli("info", "--json", made)
    record = json.loads(r.stdout)
    assert record["source"] == "difftool"
    assert record["settings"]["seed"] == 42 and record["settings"]["width"] == 64
    assert record["parameters"].startswith("a red cat, sitting\nNegative prompt: dog\nSteps: 2,")


def test_info_on_a1111_png(cli, tmp_path: Path) -> None:
    path = a1111_png(tmp_path / "a1111.png")
    r = cli("info", "--json", path)
    assert r.exit_code == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["source"] == "a1111"
    s = record["settings"]
    assert s["prompt"] == 'a castle on a hill, "golden hour"\nhighly detailed'
    assert s["negative"] == "blurry, lowres"
    assert (s["steps"], s["guidance"], s["seed"], s["width"], s["height"]) == (28, 6.5, 987654321, 512, 768)
    assert s["scheduler"] == "dpm++2m-karras"
    assert s["model"] == "v1-5-pruned-emaonly"
    assert s["extra"]["Lora hashes"] == "detail: 1a2b, style: 3c4d"
    assert s["extra"]["Model hash"] == "6ce0161689"
    human = cli("info", path)
    assert human.stdout.splitlines()[0].endswith("(AUTOMATIC1111)")
    assert any(line.split()[:2] == ["seed", "987654321"] for line in human.stdout.splitlines())


def test_image_without_settings_says_so(cli, tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    r = cli("info", tmp_path / "plain.png")
    assert r.exit_code == 0
    assert r.stdout.strip() == f"{tmp_path / 'plain.png'}: no generation settings stored"
    r = cli("info", "--json", tmp_path / "plain.png")
    assert json.loads(r.stdout) == {"path": str(tmp_path / "plain.png"), "source": None, "settings": {}}


def test_not_an_image_exits_2_after_the_others(cli, made: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not a picture")
    r = cli("info", tmp_path / "notes.png", made, tmp_path / "missing.png")
    assert r.exit_code == 2
    assert "notes.png' is not an image" in r.stderr
    assert "missing.png' does not exist" in r.stderr
    assert r.stdout.startswith(str(made))


def test_info_imports_nothing_heavy(made: Path, tmp_path: Path) -> None:
    from test_readers import stealth_png

    hidden = stealth_png(tmp_path / "stealth.png", A1111.encode())  # the one reader that decodes pixels
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom difftool.cli import app\n"
        f"r = CliRunner().invoke(app, ['info', {str(made)!r}, {str(hidden)!r}])\nassert r.exit_code == 0, r.output\n"
        "assert 'stealth metadata in the alpha channel' in r.output, r.output\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'huggingface_hub', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_info_on_a1111_jpeg_and_webp_exif(cli, tmp_path: Path, fmt: str) -> None:
    from PIL import Image

    exif = Image.Exif()  # how A1111 (piexif) stores it: EXIF UserComment, "UNICODE\0" + UTF-16 big-endian
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + A1111.encode("utf-16-be")
    path = tmp_path / f"a1111.{fmt.lower()}"
    Image.new("RGB", (16, 16), "blue").save(path, format=fmt, exif=exif)
    r = cli("info", "--json", path)
    assert r.exit_code == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["source"] == "a1111"
    assert record["settings"]["seed"] == 987654321 and record["settings"]["negative"] == "blurry, lowres"
