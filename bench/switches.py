"""What each speed/memory switch changes, through `difftool gen` on the SD 1.5-shaped random pipeline (time per
UNet step, VAE decode, whole process, peak RSS), one run each, interleaved; `--compile` on the tiny model (a
torch.compile of the SD 1.5 UNet takes minutes on 2 cores); `--offload` needs a GPU (refused on CPU, exit 2).
`--dtype bf16` is in real_arch.py.

    python bench/switches.py [--no-large]
"""

from __future__ import annotations

import argparse

import common


def main(large: bool = True, repeats: int = 1) -> dict:
    model = str(common.sd15_model())
    taesd = str(common.taesd_model())
    tiny = str(common.tiny_model())
    work = common.workdir()

    def gen(size: int, *flags: str):
        name = "-".join(f.strip("-") for f in flags if f.startswith("--")) or "base"
        return lambda: common.timed(["difftool", "gen", "a lighthouse", "-m", model, "--steps", "1", "--seed", "1",
                                     "-W", str(size), "-H", str(size), "-o", str(work / f"{size}-{name}.png"),
                                     "--overwrite", "-q", *flags], work)

    variants = {"256 px, no switch": gen(256), "256 px --vae-slicing": gen(256, "--vae-slicing"),
                "256 px --vae-tiling": gen(256, "--vae-tiling"), "256 px --tiny-vae": gen(256, "--tiny-vae", taesd)}
    if large:
        variants |= {"576 px, no switch": gen(576), "576 px --vae-tiling": gen(576, "--vae-tiling"),
                     "576 px --tiny-vae": gen(576, "--tiny-vae", taesd)}
    print(f"switches on the SD 1.5-shaped pipeline, fp32, 1 step, {repeats} run(s) each, interleaved")
    res = common.interleaved(variants, repeats)

    def tiny_gen(*flags: str):
        return lambda: common.run(common.difftool("gen", "a red square", "-m", tiny, "--steps", "2", "--seed", "1",
                                                  "-o", str(work / f"tiny{len(flags)}.png"), "--overwrite", "-q",
                                                  *flags))

    print("--compile on the tiny model, 2 steps")
    comp = common.interleaved({"tiny, no switch": tiny_gen(), "tiny --compile": tiny_gen("--compile")}, repeats)
    off = common.run(common.difftool("gen", "x", "-m", tiny, "--steps", "1", "--offload", "model", "-o",
                                     str(work / "off.png")), check=False)
    rows = []
    for name, r in res.items():
        base = res[name.split(" ")[0] + " px, no switch"]
        rows.append([name, r.get("step_s"), r.get("decode_s"), common.ratio(r.get("decode_s"), base.get("decode_s")),
                     r["seconds"], common.ratio(r["seconds"], base["seconds"]), r["peak_rss_mib"],
                     common.ratio(r["peak_rss_mib"], base["peak_rss_mib"])])
    for name, r in comp.items():
        rows.append([name, None, None, None, r["seconds"],
                     common.ratio(r["seconds"], comp["tiny, no switch"]["seconds"]), r["peak_rss_mib"],
                     common.ratio(r["peak_rss_mib"], comp["tiny, no switch"]["peak_rss_mib"])])
    rows.append(["--offload model (CPU only here)", None, None, None, None, None, None,
                 f"exit {off['code']}: {off['stderr'].strip().splitlines()[-1] if off['stderr'].strip() else ''}"])
    text = common.table(["run", "s / UNet step", "VAE decode s", "decode / no switch", "whole process s",
                         "process / no switch", "peak RSS MiB", "RSS / no switch"], rows)
    verdict = ("--vae-slicing only changes batches of several images per pipeline call; difftool calls the pipeline "
               "once per image, so it is a no-op here (expected ~1.0). --vae-tiling only tiles above the VAE's tile "
               "size (512 px for SD 1.5), so 256 px is unchanged and 576 px shows it. One run each: single figures, "
               "not medians.")
    print(text + "\n\n" + verdict)
    common.save("switches", {"results": res, "compile": comp, "offload": {k: off[k] for k in ("code", "stderr")}})
    return {"title": "Switches (difftool gen, SD 1.5-shaped, fp32, 1 step)", "table": text, "verdict": verdict}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-large", action="store_true", help="skip the 576 px runs")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    main(not a.no_large, a.repeats)
