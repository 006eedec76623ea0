"""Batch: 16 prompts from stdin in one `difftool gen -` call beside 16 separate `difftool gen` calls (same seed: every
prompt's first image gets --seed), and beside the plain diffusers loop over the same prompts in one process.

    python bench/batch.py [--prompts 16]
"""

from __future__ import annotations

import argparse

import common


def main(n: int = 16) -> dict:
    model = str(common.tiny_model())
    work = common.workdir()
    prompts = [f"a red square number {i}" for i in range(n)]
    for sub in ("batch", "single"):
        (work / sub).mkdir()

    def one_call() -> dict:
        return common.run(common.difftool("gen", "-", "-m", model, "--steps", "2", "--seed", "1", "-o",
                                          str(work / "batch" / "{prompt}.png"), "--overwrite", "-q"),
                          stdin="\n".join(prompts) + "\n")

    def separate() -> dict:
        total, peak = 0.0, 0.0
        for p in prompts:
            r = common.run(common.difftool("gen", p, "-m", model, "--steps", "2", "--seed", "1", "-o",
                                           str(work / "single" / "{prompt}.png"), "--overwrite", "-q"))
            total += r["seconds"]
            peak = max(peak, r["peak_rss_mib"] or 0)
        return {"seconds": total, "peak_rss_mib": peak}

    def plain() -> dict:
        return common.run([common.PYTHON, str(common.ROOT / "bench" / "plain_gen.py"), model, "-", "2", "1",
                           str(work / "plain.png"), "--stdin"], stdin="\n".join(prompts) + "\n")

    print(f"batch of {n} prompts (tiny model, 2 steps), one run each, interleaved")
    res = common.interleaved({f"difftool gen - ({n} prompts on stdin)": one_call,
                              f"plain diffusers loop, one process ({n} prompts)": plain,
                              f"{n} separate difftool gen calls": separate}, 1)
    b, p, s = (res[k]["seconds"] for k in res)
    rows = [[name, r["seconds"], r["seconds"] / n, r["peak_rss_mib"]] for name, r in res.items()]
    text = common.table(["how", "total s", "s per image", "peak RSS MiB (max of one process)"], rows)
    written = sorted(f.name for f in (work / "batch").glob("*.png"))
    same = len(written) == n and written == sorted(f.name for f in (work / "single").glob("*.png")) and all(
        _pixels(work / "batch" / name) == _pixels(work / "single" / name) for name in written)
    verdict = (f"one batch call / {n} calls = {common.ratio(b, s)} (saves {s - b:.1f} s, {100 * (1 - b / s):.0f}%); "
               f"difftool batch / plain loop = {common.ratio(b, p)}; batch images identical to the separate calls': "
               f"{same}")
    print(text + "\n\n" + verdict)
    common.save("batch", {"prompts": n, "results": res, "same_pixels": same})
    return {"title": f"Batch: {n} prompts", "table": text, "verdict": verdict}


def _pixels(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.tobytes()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=16)
    main(ap.parse_args().prompts)
