"""Batch scaling: `difftool batch` jobs/s with 1 and 2 processes and with --batch-size 1 and 4, on the tiny model,
in one run (interleaved repeats); and how far batched pixels are from one-image calls.

    python bench/batch_scale.py [--jobs 48] [--steps 20] [--repeats 2] [--device cpu|cuda]

Two rates per run: whole process (start-up, model load and all: what a user waits for) and making (the images
only, from the manifest's per-job seconds: each process's first call, which loads the model, left out; jobs over
the slowest process's summed seconds). On CPU the processes share the
machine's cores (2 here, OMP_NUM_THREADS=1 each), so a second process helps only as far as cores are free.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import common


def main(jobs: int = 48, steps: int = 20, repeats: int = 2, device: str | None = None) -> dict:
    model = str(common.tiny_model())
    work = common.workdir()
    prompts = work / "prompts.txt"
    prompts.write_text("".join(f"a red square number {i}\n" for i in range(jobs)))
    threads = {"OMP_NUM_THREADS": "1"} if device in (None, "cpu") else {}
    count = iter(range(10**6))

    def variant(processes: int, batch_size: int):
        def go() -> dict:
            out = work / f"out-p{processes}-b{batch_size}-{next(count)}"
            args = ["batch", str(prompts), "-o", str(out), "-m", model, "--steps", str(steps), "--seed", "1",
                    "--batch-size", str(batch_size), "-q", *(["--device", device] if device else []),
                    *(["--processes", str(processes)] if processes > 1 else [])]
            r = common.run(common.difftool(*args), extra_env=threads)
            records = [json.loads(line) for f in (out / "manifest").glob("*.jsonl")
                       for line in f.read_text().splitlines() if line.strip()]
            done = [x for x in records if x["status"] == "done"]
            assert len(done) == jobs, f"{len(done)} of {jobs} jobs done: {r['stderr'][-500:]}"
            per_rank: dict[int, list[float]] = {}
            for x in done:  # in the order each process finished them
                per_rank.setdefault(x["rank"], []).append(x["seconds"])
            steady = {rank: times[batch_size:] for rank, times in per_rank.items()}  # the first call loads the model
            r["making_s"] = max(sum(times) for times in steady.values())
            r["making_jobs"] = sum(len(times) for times in steady.values())
            r["ranks"] = sorted(per_rank)
            r["out"] = str(out)
            return r
        return go

    variants = {"1 process, --batch-size 1": variant(1, 1), "1 process, --batch-size 4": variant(1, 4),
                "2 processes, --batch-size 1": variant(2, 1), "2 processes, --batch-size 4": variant(2, 4)}
    print(f"difftool batch, {jobs} jobs (tiny model, 64 px, {steps} steps), {repeats} interleaved runs each")
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for i in range(repeats):
        for name, fn in variants.items():
            r = fn()
            runs[name].append(r)
            print(f"  [{i + 1}/{repeats}] {name}: {r['seconds']:.1f} s whole, {r['making_jobs']} jobs in "
                  f"{r['making_s']:.1f} s making")
    res = {name: {"seconds": statistics.median(r["seconds"] for r in rs),
                  "making_s": statistics.median(r["making_s"] for r in rs),
                  "making_jobs_s": statistics.median(r["making_jobs"] / r["making_s"] for r in rs),
                  "peak_rss_mib": max(r["peak_rss_mib"] or 0 for r in rs), "ranks": rs[0]["ranks"],
                  "runs": [{k: v for k, v in r.items() if k not in ("stdout", "stderr")} for r in rs]}
           for name, rs in runs.items()}
    base = res["1 process, --batch-size 1"]
    rows = [[name, r["seconds"], jobs / r["seconds"], common.ratio(base["seconds"], r["seconds"]),
             r["making_jobs_s"], common.ratio(r["making_jobs_s"], base["making_jobs_s"]), len(r["ranks"]),
             r["peak_rss_mib"]] for name, r in res.items()]
    text = common.table(["run", "whole process s", "jobs/s (whole process)", "speed-up", "jobs/s (making)",
                         "speed-up", "processes that made jobs", "peak RSS MiB (launcher or process)"], rows)
    one = Path(runs["1 process, --batch-size 1"][0]["out"])
    same_names, diff_png = _png_diff(one, [Path(r["out"]) for rs in runs.values() for r in rs])
    diff_float = _float_diff(model, steps)
    verdict = (f"same file names in every run: {same_names}; largest pixel difference of any image from the "
               f"1-process --batch-size 1 run: {diff_png} (of 255, PNG); batched (4) vs one-image calls, float "
               f"output before 8-bit rounding: {diff_float:.2e}. CPU: {os.cpu_count()} cores, shared.")
    print(text + "\n\n" + verdict)
    common.save("batch_scale", {"jobs": jobs, "steps": steps, "results": res, "same_names": same_names,
                                "max_png_diff": diff_png, "max_float_diff": diff_float})
    return {"title": f"Batch scaling: {jobs} jobs, 1-2 processes, --batch-size 1/4", "table": text,
            "verdict": verdict}


def _png_diff(reference: Path, others: list[Path]) -> tuple[bool, int]:
    import numpy as np
    from PIL import Image

    def load(path: Path):
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")).astype(int)

    names = sorted(p.name for p in reference.glob("*.png"))
    same, worst = True, 0
    for folder in others:
        same = same and sorted(p.name for p in folder.glob("*.png")) == names
        for name in names:
            if (folder / name).exists():
                worst = max(worst, int(np.abs(load(reference / name) - load(folder / name)).max()))
    return same, worst


def _float_diff(model: str, steps: int) -> float:
    """Largest difference between 4 one-image calls and one call of 4 (a generator each), float output."""
    import numpy as np
    import torch
    from diffusers import AutoPipelineForText2Image
    from diffusers.utils import logging

    logging.disable_progress_bar()
    pipe = AutoPipelineForText2Image.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    prompts, seeds = [f"a red square number {i}" for i in range(4)], [1, 2, 3, 4]
    one = [pipe(p, num_inference_steps=steps, generator=torch.Generator("cpu").manual_seed(s),
                output_type="np").images[0] for p, s in zip(prompts, seeds)]
    many = pipe(prompts, num_inference_steps=steps, generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
                output_type="np").images
    return float(np.abs(np.stack(one) - many).max())


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=48)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default=None)
    a = ap.parse_args()
    main(a.jobs, a.steps, a.repeats, a.device)
