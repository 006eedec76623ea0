"""Config file (TOML): precedence flags > environment > config file > registry, per-model tables, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import png_text

STEPS = ["--seed", "1"]


def write_config(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "difftool.toml"
    path.write_text(text)
    monkeypatch.setenv("DIFFTOOL_CONFIG", str(path))
    return path


def settings_of(cli, *args: str) -> dict:
    r = cli("config", "--json", *args)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)["settings"]


def test_default_path_is_in_the_user_config_folder(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from platformdirs import user_config_dir

    monkeypatch.delenv("DIFFTOOL_CONFIG")
    r = cli("config", "--path")
    assert r.exit_code == 0
    assert r.stdout.strip() == str(Path(user_config_dir("difftool", appauthor=False)) / "config.toml")


def test_precedence_flag_env_file_registry(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config('model = "sd15"\nsteps = 12\nguidance = 3\ndevice = "cpu"\n[models.sd15]\nwidth = 256\n',
                        tmp_path, monkeypatch)
    monkeypatch.setenv("DIFFTOOL_GUIDANCE", "4.5")
    s = settings_of(cli)
    assert s["model"] == {"value": "sd15", "source": str(path)}
    assert s["steps"] == {"value": 12, "source": str(path)}                       # file beats registry (30)
    assert s["guidance"] == {"value": 4.5, "source": "env DIFFTOOL_GUIDANCE"}      # env beats file
    assert s["width"] == {"value": 256, "source": f"{path} [models.sd15]"}         # per-model table
    assert s["height"] == {"value": 512, "source": "registry (sd15)"}              # registry default
    assert s["dtype"] == {"value": "auto", "source": "built-in default"}
    s = settings_of(cli, "-m", "sdxl")
    assert s["model"] == {"value": "sdxl", "source": "flag"}                        # flag beats file
    assert s["width"] == {"value": 1024, "source": "registry (sdxl)"}              # sd15's table no longer applies


def test_human_output_names_sources(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config('scheduler = "euler"\n', tmp_path, monkeypatch)
    r = cli("config")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"config file: {path}"
    line = next(x for x in r.stdout.splitlines() if x.startswith("scheduler"))
    assert line.split() == ["scheduler", "euler", str(path)]


def test_gen_uses_file_values_and_flags_win(cli, tiny_sd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(f'model = "{tiny_sd}"\nsteps = 3\nguidance = 2.5\nscheduler = "euler"\n'
                 f'output = "out/{{seed}}.png"\n[models."{tiny_sd}"]\nsteps = 2\nwidth = 32\nheight = 32\n',
                 tmp_path, monkeypatch)
    r = cli("gen", "a cat", *STEPS)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == str(Path("out/1.png"))
    meta = json.loads(png_text(Path("out/1.png"))["difftool"])
    assert (meta["model"], meta["steps"], meta["guidance"], meta["scheduler"]) == (str(tiny_sd), 2, 2.5, "euler")
    assert (meta["width"], meta["height"]) == (32, 32)
    monkeypatch.setenv("DIFFTOOL_STEPS", "1")
    r = cli("gen", "a cat", *STEPS, "--guidance", "6", "-o", "flag.png")
    assert r.exit_code == 0, r.stderr
    meta = json.loads(png_text(Path("flag.png"))["difftool"])
    assert (meta["steps"], meta["guidance"]) == (1, 6.0)


@pytest.mark.parametrize(("text", "words"), [
    ("stpes = 20\n", ["key 'stpes'", "unknown"]),
    ('steps = "many"\n', ["key 'steps'", "integer"]),
    ('device = "gpu"\n', ["key 'device'", "gpu"]),
    ('[models.sd15]\nmodel = "sdxl"\n', ["key 'models.sd15.model'"]),
    ('scheduler = "eulr"\n', ["key 'scheduler'", "eulr"]),
    ("width = 100\n", ["key 'width'", "multiple of 8"]),
    ("steps = \n", ["not valid TOML", "line 1"]),
])
def test_invalid_file_names_file_and_key(cli, tiny_sd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         text: str, words: list[str]) -> None:
    path = write_config(text, tmp_path, monkeypatch)
    for args in (("config",), ("gen", "a cat", "-m", str(tiny_sd))):
        r = cli(*args)
        assert r.exit_code == 2, (args, r.stdout, r.stderr)
        assert str(path) in r.stderr
        for word in words:
            assert word in r.stderr
        assert not list(Path().glob("*.png"))


def test_missing_file_is_no_config(cli) -> None:
    r = cli("config", "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["exists"] is False and data["config_file"] == os.environ["DIFFTOOL_CONFIG"]
