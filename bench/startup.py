"""Start-up: `difftool --help` and `difftool info x.png` beside `python -c "import typer"` and `diffusers-cli --help`.

Issue 2's goal: `difftool --help` within 0.15 s of `python -c "import typer"`.

    python bench/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse

import common


def main(repeats: int = 5) -> dict:
    work = common.workdir()
    png = work / "x.png"
    common.run(common.difftool("gen", "a red square", "-m", str(common.tiny_model()), "--steps", "2", "--seed", "1",
                               "-o", str(png), "-q"))
    variants = {
        'python -c "import typer"': lambda: common.run([common.PYTHON, "-c", "import typer"]),
        "minimal Typer app --help": lambda: common.run([common.PYTHON, str(common.ROOT / "bench" / "minimal_typer.py"),
                                                        "--help"]),
        "difftool --help": lambda: common.run(common.difftool("--help")),
        "difftool info x.png": lambda: common.run(common.difftool("info", str(png))),
        "diffusers-cli --help": lambda: common.run(common.diffusers_cli("--help")),
    }
    print(f"start-up, {repeats} interleaved runs each")
    res = common.interleaved(variants, repeats)
    typer_s = res['python -c "import typer"']["seconds"]
    rows = [[name, r["seconds"], r["seconds_min"], r["seconds"] - typer_s, r["peak_rss_mib"]] for name, r in res.items()]
    text = common.table(["command", "median s", "min s", "over import typer (s)", "peak RSS MiB"], rows)
    help_gap = res["difftool --help"]["seconds"] - typer_s
    verdict = (f"`difftool --help` - `import typer` = {help_gap:.3f} s (goal <= 0.15 s: "
               f"{'met' if help_gap <= 0.15 else 'NOT met'}); `diffusers-cli --help` / `difftool --help` = "
               f"{common.ratio(res['diffusers-cli --help']['seconds'], res['difftool --help']['seconds'])}x")
    print(text + "\n\n" + verdict)
    common.save("startup", {"repeats": repeats, "results": res, "help_minus_typer_s": help_gap})
    return {"title": "Start-up (whole process)", "table": text, "verdict": verdict}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    main(ap.parse_args().repeats)
