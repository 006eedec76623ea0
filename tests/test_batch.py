"""`difftool batch`: jobs from files, grids, the manifest, resuming, locks, batched calls, several processes.

Most tests run in-process (Typer's CliRunner); two run real subprocesses because that is what they test:
two processes under accelerate's launcher, and `kill -9` in the middle of a run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import pixels, png_text

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STEPS = ["--steps", "2"]


def records(out: Path) -> list[dict]:
    """Every manifest record of DIR, every run and process."""
    found = []
    for path in sorted((out / "manifest").glob("*.jsonl")):
        found += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in found if r["status"] != "end"]


def images(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_file())


def test_text_file_grid_matches_gen_and_resumes(cli, tiny_sd: Path, tmp_path: Path) -> None:
    (tmp_path / "prompts.txt").write_text("a red cat\n\na blue dog\n")
    r = cli("batch", "prompts.txt", "-o", "out", "-m", tiny_sd, *STEPS, "--vary", "seed=5..6", "--vary",
            "guidance=3,7")
    assert r.exit_code == 0, r.stderr
    done = records(tmp_path / "out")
    assert len(done) == 8 and {d["status"] for d in done} == {"done"}
    assert sorted((d["line"], d["spec"]["seed"], d["spec"]["guidance"]) for d in done) == [
        (line, seed, g) for line in (1, 3) for seed in (5, 6) for g in (3.0, 7.0)]
    assert sorted(r.stdout.split()) == sorted(str(Path("out") / d["outputs"][0]["path"]) for d in done)
    assert images(tmp_path / "out") == sorted(d["outputs"][0]["path"] for d in done)  # names from the job ids
    one = next(d for d in done if d["line"] == 3 and d["spec"]["seed"] == 6 and d["spec"]["guidance"] == 7.0)
    made = tmp_path / "out" / one["outputs"][0]["path"]
    assert json.loads(png_text(made)["difftool"])["prompt"] == "a blue dog"
    g = cli("gen", "a blue dog", "-m", tiny_sd, *STEPS, "--seed", "6", "--guidance", "7", "-o", "gen.png")
    assert g.exit_code == 0, g.stderr
    assert np.array_equal(pixels(made), pixels(tmp_path / "gen.png"))

    again = cli("batch", "prompts.txt", "-o", "out", "-m", tiny_sd, *STEPS, "--vary", "seed=5..6", "--vary",
                "guidance=3,7")
    assert again.exit_code == 0 and again.stdout == ""
    assert "0 made" in again.stderr and "8 skipped" in again.stderr
    made.unlink()  # a lost image is made again, and only that one
    third = cli("batch", "prompts.txt", "-o", "out", "-m", tiny_sd, *STEPS, "--vary", "seed=5..6", "--vary",
                "guidance=3,7", "--json")
    assert third.exit_code == 0, third.stderr
    lines = [json.loads(line) for line in third.stdout.splitlines()]
    assert [x["id"] for x in lines] == [one["id"]] and lines[0]["outputs"][0]["sha256"] == one["outputs"][0]["sha256"]


def test_bad_lines_are_reported_recorded_and_the_rest_completes(cli, tiny_sd: Path, red: Path,
                                                                tmp_path: Path) -> None:
    lines = [
        {"prompt": "a cat", "seed": 1},
        "not json",
        {"prompt": "x", "stepz": 3},
        {"task": "img2img", "prompt": "a", "source": "missing.png", "strength": 0.5},
        {"prompt": "y", "model": str(tmp_path / "no-such-model")},
        {"task": "img2img", "prompt": "a fox", "source": str(red), "strength": 0.5, "seed": 2},
    ]
    (tmp_path / "jobs.jsonl").write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines))
    r = cli("batch", "jobs.jsonl", "-o", "out", "-m", tiny_sd, *STEPS)
    assert r.exit_code == 2
    for number, words in ((2, "not valid JSON"), (3, "unknown field 'stepz'"), (4, "missing.png"),
                          (5, "no-such-model")):
        assert any(line.startswith(f"error: line {number}: ") and words in line for line in r.stderr.splitlines()), \
            (number, r.stderr)
    got = {x["line"]: x for x in records(tmp_path / "out")}
    assert {n: x["status"] for n, x in got.items()} == {1: "done", 2: "failed", 3: "failed", 4: "failed",
                                                         5: "failed", 6: "done"}
    assert got[5]["code"] == 3 and got[3]["code"] == 2
    assert "4 failed" in r.stderr and "2 made" in r.stderr

    again = cli("batch", "jobs.jsonl", "-o", "out", "-m", tiny_sd, *STEPS)  # known failures are skipped...
    assert again.exit_code == 2 and "4 failed earlier" in again.stderr and len(records(tmp_path / "out")) == 6
    retry = cli("batch", "jobs.jsonl", "-o", "out", "-m", tiny_sd, *STEPS, "--retry-failed")  # ...or retried
    assert retry.exit_code == 2 and len(records(tmp_path / "out")) == 10 and "2 skipped" in retry.stderr


def test_a_job_locked_by_another_run_is_left_to_it(cli, tiny_sd: Path, tmp_path: Path) -> None:
    from difftool.batch.manifest import Locks

    (tmp_path / "p.txt").write_text("a cat\na dog\n")
    args = ("batch", "p.txt", "-o", "out", "-m", tiny_sd, *STEPS, "--seed", "1")
    assert cli(*args).exit_code == 0
    taken = records(tmp_path / "out")[1]
    (tmp_path / "out" / taken["outputs"][0]["path"]).unlink()
    locks = Locks(tmp_path / "out")
    fd = locks.take(taken["id"])  # another run making this very job right now
    assert fd is not None and locks.take(taken["id"]) is None
    r = cli(*args)
    assert r.exit_code == 0 and r.stdout == ""
    assert "1 left to another run" in r.stderr and len(records(tmp_path / "out")) == 2
    locks.release(taken["id"], fd)
    r = cli(*args)
    assert r.exit_code == 0 and r.stdout.strip() == str(Path("out") / taken["outputs"][0]["path"])


def test_batched_calls_make_the_same_images_as_one_by_one(cli, tiny_sd: Path, tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("a red cat\na blue dog\na green tree\n")
    common = ("p.txt", "-m", tiny_sd, *STEPS, "--seed", "4", "-n", "2")
    assert cli("batch", *common, "-o", "one").exit_code == 0
    r = cli("batch", *common, "-o", "many", "--batch-size", "4")
    assert r.exit_code == 0, r.stderr
    names = images(tmp_path / "one")
    assert names == images(tmp_path / "many") and len(names) == 6  # same ids, same names: <id>-0.png, <id>-1.png
    for name in names:  # the same noise per image; batched maths may differ in the last bits (README)
        diff = np.abs(pixels(tmp_path / "one" / name).astype(int) - pixels(tmp_path / "many" / name).astype(int))
        assert diff.max() <= 1, name
        one, many = (json.loads(png_text(tmp_path / d / name)["difftool"]) for d in ("one", "many"))
        assert one == many


def run_batch(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "difftool", "batch", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_two_processes_split_the_jobs_and_make_gen_s_pixels(cli, tiny_sd: Path, tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("a red cat\na blue dog\n")
    proc = run_batch(["p.txt", "-o", "out", "-m", str(tiny_sd), *STEPS, "--vary", "seed=1..2", "--processes", "2",
                      "-q"], tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    done = records(tmp_path / "out")
    assert sorted(r["rank"] for r in done) == [0, 0, 1, 1]  # two processes, two jobs each
    assert len({r["pid"] for r in done}) == 2
    assert sorted(out.split()) == sorted(str(Path("out") / r["outputs"][0]["path"]) for r in done)  # rank 0 prints all
    for r in done:
        spec = r["spec"]
        g = cli("gen", spec["prompt"], "-m", tiny_sd, *STEPS, "--seed", str(spec["seed"]), "-o", "gen.png",
                "--overwrite")
        assert g.exit_code == 0, g.stderr
        assert np.array_equal(pixels(tmp_path / "out" / r["outputs"][0]["path"]), pixels(tmp_path / "gen.png"))


def test_kill_9_then_resume_makes_every_job_exactly_once(cli, tiny_sd: Path, tmp_path: Path) -> None:
    total = 12
    (tmp_path / "p.txt").write_text("".join(f"prompt number {i}\n" for i in range(total)))
    args = ["p.txt", "-o", "out", "-m", str(tiny_sd), "--steps", "25"]
    proc = run_batch([*args, "-q"], tmp_path)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:  # poll the manifest: kill once a job is recorded
        if (tmp_path / "out" / "manifest").is_dir() and records(tmp_path / "out"):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    before = len(records(tmp_path / "out"))
    assert 1 <= before < total

    r = cli("batch", *args)
    assert r.exit_code == 0, r.stderr
    assert f"{before} skipped" in r.stderr
    done = records(tmp_path / "out")
    assert len(done) == total and len({d["id"] for d in done}) == total and {d["status"] for d in done} == {"done"}
    assert images(tmp_path / "out") == sorted(d["outputs"][0]["path"] for d in done)  # no temporary file left


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys, io, contextlib\nfrom difftool.cli import app\n"
            "for args in (['--help'], ['batch', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try: app(args)\n"
            "        except SystemExit: pass\n"
            "print(sorted(m for m in ('torch', 'accelerate', 'diffusers', 'transformers') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr


def test_vary_values() -> None:
    from difftool.batch.jobs import parse_vary
    from difftool.errors import UsageError

    assert parse_vary(["seed=1..3", "guidance=3,5.5", "steps=10..30:10", 'prompt=["a, b", "c"]', "--hires-steps=4..2",
                       "denoise=0.2..0.4:0.1"][:5] + ["hires-denoise=0.2..0.4:0.1"]) == [
        ("seed", [1, 2, 3]), ("guidance", [3, 5.5]), ("steps", [10, 20, 30]), ("prompt", ["a, b", "c"]),
        ("hires_steps", [4, 3, 2]), ("hires_denoise", [0.2, 0.3, 0.4])]
    for bad in ("seed", "nope=1", "seed=x", "steps=0..2"):
        with pytest.raises(UsageError):
            parse_vary([bad])
