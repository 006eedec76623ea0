"""Run every bench script, print one Markdown report and write it to bench/results/RESULTS.md (JSON per script
beside it). Bounded: about 10-15 minutes on 2 busy cores; `--quick` is a few minutes.

    python bench/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time

import batch
import common
import per_call
import real_arch
import startup
import switches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, 4-prompt batch, no 576 px runs")
    ap.add_argument("--only", default="", help="comma-separated scripts to rerun (startup,per_call,batch,real_arch,"
                    "switches,upscale); the other sections are kept from the last run's bench/results/sections.json")
    a = ap.parse_args()
    q = a.quick
    only = {x.strip() for x in a.only.split(",") if x.strip()}
    saved = common.RESULTS / "sections.json"
    previous = json.loads(saved.read_text()) if only and saved.exists() else {}
    sections: dict[str, dict] = {}
    started = time.perf_counter()
    for title, fn in (("startup", lambda: startup.main(3 if q else 5)),
                      ("per_call", lambda: per_call.main(2 if q else 4)),
                      ("batch", lambda: batch.main(4 if q else 16)),
                      ("real_arch", lambda: real_arch.main(1 if q else 2)),
                      ("switches", lambda: switches.main(large=not q))):
        if only and title not in only:
            if title in previous:
                sections[title] = previous[title]
            continue
        t = time.perf_counter()
        print(f"\n== {title}", flush=True)
        try:
            sections[title] = fn()
        except Exception as exc:  # one failing script must not lose the others' figures
            sections[title] = {"title": title, "table": "", "verdict": f"FAILED: {exc}"}
            print(f"FAILED: {exc}", flush=True)
        print(f"({title}: {time.perf_counter() - t:.0f} s)", flush=True)
    if not only or "upscale" in only:
        print("\n== upscale memory", flush=True)
        up = subprocess.run([common.PYTHON, str(common.ROOT / "bench" / "upscale_memory.py")], capture_output=True,
                            text=True, env=common.env())
        sections["upscale"] = {"title": "Upscale memory (bench/upscale_memory.py, tiny x4, tiled)",
                               "table": up.stdout.strip(),
                               "verdict": "" if up.returncode == 0 else f"FAILED: {up.stderr[-300:]}"}
    elif "upscale" in previous:
        sections["upscale"] = previous["upscale"]
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(sections, indent=2))
    import torch  # after the runs: the bench process stays small while it measures

    head = (f"# difftool bench results\n\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
            f"`python bench/run_all.py{' --quick' if q else ''}{' --only ' + a.only if only else ''}`, {time.perf_counter() - started:.0f} s. "
            f"{platform.machine()}, Python {sys.version.split()[0]}, torch {torch.__version__}, "
            f"CUDA available: {torch.cuda.is_available()}.\n\n{common.NOTE}\n")
    body = "\n\n".join(f"## {s['title']}\n\n{s['table']}\n\n{s['verdict']}".rstrip() for s in sections.values())
    report = head + "\n" + body + "\n"
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    (common.RESULTS / "RESULTS.md").write_text(report)
    print("\n" + report)


if __name__ == "__main__":
    main()
