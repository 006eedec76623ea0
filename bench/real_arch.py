"""Real architecture: an SD 1.5-shaped pipeline with random weights (bench/sd15_random.py) at 256 px, 2 steps:
seconds per UNet step (with CFG: one forward of batch 2), VAE decode, whole process and peak RSS, for `difftool gen`
and the plain diffusers script, fp32 and bf16, on CPU (CUDA when this machine has it; it has none here).

    python bench/real_arch.py [--repeats 2] [--steps 2] [--size 256]
"""

from __future__ import annotations

import argparse

import common


def main(repeats: int = 2, steps: int = 2, size: int = 256) -> dict:
    model = str(common.sd15_model())
    work = common.workdir()
    prompt = "a lighthouse on a cliff at dusk"

    def difftool(dtype: str):
        return lambda: common.timed(
            ["difftool", "gen", prompt, "-m", model, "--steps", str(steps), "--seed", "1", "-W", str(size), "-H",
             str(size), "--dtype", dtype, "-o", str(work / f"difftool-{dtype}.png"), "--overwrite", "-q"], work)

    def plain(dtype: str):
        return lambda: common.timed([str(common.ROOT / "bench" / "plain_gen.py"), model, prompt, str(steps), "1",
                                     str(work / f"plain-{dtype}.png"), "--dtype", dtype, "--size", str(size)], work)

    variants = {"plain fp32": plain("fp32"), "difftool fp32": difftool("fp32"),
                "plain bf16": plain("bf16"), "difftool bf16": difftool("bf16")}
    print(f"SD 1.5-shaped, {size} px, {steps} steps, CPU, {repeats} interleaved runs each")
    res = common.interleaved(variants, repeats)
    rows = []
    for name, r in res.items():
        base = res["plain " + name.split()[-1]]
        rows.append([name, r.get("step_s"), common.ratio(r.get("step_s"), base.get("step_s")), r.get("decode_s"),
                     r["seconds"], common.ratio(r["seconds"], base["seconds"]), r["peak_rss_mib"],
                     common.ratio(r["peak_rss_mib"], base["peak_rss_mib"])])
    text = common.table(["run", "s / UNet step", "step / plain", "VAE decode s", "whole process s", "process / plain",
                         "peak RSS MiB", "RSS / plain"], rows)
    bf = common.ratio(res["difftool fp32"].get("step_s"), res["difftool bf16"].get("step_s"))
    verdict = (f"per step difftool/plain: fp32 {rows[1][2]}, bf16 {rows[3][2]}; per process: fp32 {rows[1][5]}, "
               f"bf16 {rows[3][5]}; bf16 speed-up per UNet step (difftool fp32/bf16): {bf}x. CUDA: not available "
               "in this session (no GPU), not measured.")
    best = {d: (common.ratio(res[f"difftool {d}"].get("step_s_min"), res[f"plain {d}"].get("step_s_min")),
                common.ratio(res[f"difftool {d}"]["seconds_min"], res[f"plain {d}"]["seconds_min"])) for d in ("fp32", "bf16")}
    verdict += (" Best-of-runs ratios (the run least disturbed by the neighbours), step / process: "
                + ", ".join(f"{d} {b[0]} / {b[1]}" for d, b in best.items()) + ".")
    print(text + "\n\n" + verdict)
    common.save("real_arch", {"repeats": repeats, "steps": steps, "size": size, "results": res})
    return {"title": f"Real architecture: SD 1.5-shaped, random weights, {size} px, {steps} steps, CPU",
            "table": text, "verdict": verdict}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    a = ap.parse_args()
    main(a.repeats, a.steps, a.size)
