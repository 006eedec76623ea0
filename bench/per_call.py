"""Per-call overhead: `difftool gen` beside a plain diffusers script and `diffusers-cli run`, same tiny model,
same prompt, steps and seed, whole process (imports, load, 2 steps, PNG write). Issue 2's goal: ratio <= 1.05.

    python bench/per_call.py [--repeats 4]
"""

from __future__ import annotations

import argparse
import json

import common


def main(repeats: int = 4) -> dict:
    model = str(common.tiny_model())
    work = common.workdir()
    prompt, steps, seed = "a red square", "2", "1"
    variants = {
        "plain diffusers script": lambda: common.run(
            [common.PYTHON, str(common.ROOT / "bench" / "plain_gen.py"), model, prompt, steps, seed,
             str(work / "plain.png")]),
        "difftool gen": lambda: common.run(common.difftool(
            "gen", prompt, "-m", model, "--steps", steps, "--seed", seed, "-o", str(work / "difftool.png"),
            "--overwrite", "-q")),
        "diffusers-cli run": lambda: common.run(common.diffusers_cli(
            "run", "-m", model, "--dtype", "fp32", "--device-map", "cpu", "--seed", seed, "-o",
            str(work / "cli.png"), "--pipeline-kwargs", json.dumps({"prompt": prompt, "num_inference_steps": 2}))),
    }
    print(f"per call (tiny model, 64 px, 2 steps), {repeats} interleaved runs each")
    res = common.interleaved(variants, repeats)
    base = res["plain diffusers script"]
    rows = [[name, r["seconds"], r["seconds_min"], r["seconds_max"], common.ratio(r["seconds"], base["seconds"]),
             r["peak_rss_mib"], common.ratio(r["peak_rss_mib"], base["peak_rss_mib"])] for name, r in res.items()]
    text = common.table(["command", "median s", "min s", "max s", "time / plain", "peak RSS MiB", "RSS / plain"], rows)
    r = common.ratio(res["difftool gen"]["seconds"], base["seconds"])
    same = _same_pixels(work / "plain.png", work / "difftool.png")
    verdict = (f"difftool gen / plain diffusers = {r} per call (goal <= 1.05: {'met' if r and r <= 1.05 else 'NOT met'})"
               f"; difftool gen / diffusers-cli run = {common.ratio(res['difftool gen']['seconds'], res['diffusers-cli run']['seconds'])}"
               f"; difftool's PNG has the plain script's pixels: {same}")
    verdict += (f"; best-of-runs ratio difftool/plain: "
                f"{common.ratio(res['difftool gen']['seconds_min'], base['seconds_min'])}")
    print(text + "\n\n" + verdict)
    common.save("per_call", {"repeats": repeats, "results": res, "ratio_difftool_plain": r, "same_pixels": same})
    return {"title": "Per call: tiny model, 64 px, 2 steps (whole process)", "table": text, "verdict": verdict}


def _same_pixels(a, b) -> bool:
    from PIL import Image

    with Image.open(a) as x, Image.open(b) as y:
        return x.tobytes() == y.tobytes()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=4)
    main(ap.parse_args().repeats)
