"""Peak memory of `difftool upscale` against the input's size, on the tiny x4 upscaler.

Each measurement is one real `difftool upscale` process (its peak RSS comes from wait4's rusage), so
nothing of one run leaks into the next. The claim under test: with tiling, peak memory does not grow
with the input's size (what is held is one row band of tiles, the 8-bit input and the model). `--contrast`
adds the same inputs with `--tile 0` (one pipeline call for the whole image) to show what tiling saves.

    python bench/upscale_memory.py                 # 256x256 and 512x512 inputs (4x the pixels)
    python bench/upscale_memory.py --side 256 --factor 4 --contrast --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_input(path: Path, side: int) -> None:
    """A smooth, detailed test picture (gradients + rings): deterministic, compresses like a photo-ish image."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:side, 0:side] / side
    r = np.sqrt((x - 0.5) ** 2 + (y - 0.5) ** 2)
    rgb = np.stack([x, y, 0.5 + 0.5 * np.sin(40 * r)], axis=-1)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)


def measure(model: Path, image: Path, out: Path, tile: int | None, steps: int) -> dict:
    """Run one upscale process; its peak RSS (MiB), wall time and output size."""
    exe = shutil.which("difftool")
    cmd = [exe] if exe else [sys.executable, "-m", "difftool"]
    cmd += ["upscale", str(image), "-m", str(model), "--steps", str(steps), "--seed", "1", "-o", str(out), "-q",
            "--overwrite"]
    if tile is not None:
        cmd += ["--tile", str(tile)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"upscale failed ({code}): {err.strip()}")
    from PIL import Image

    with Image.open(out) as im:
        size = im.size
    kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss // 1024
    return {"peak_rss_mib": round(kib / 1024, 1), "seconds": round(wall, 1), "output": f"{size[0]}x{size[1]}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="an upscaler folder (default: build the tiny x4 in a temp folder)")
    ap.add_argument("--side", type=int, default=256, help="side of the small input in px (default 256)")
    ap.add_argument("--factor", type=int, default=4, help="the large input has this many times the pixels (4)")
    ap.add_argument("--tile", type=int, default=None, help="--tile for the tiled runs (default: the model's, 128)")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--contrast", action="store_true", help="also run both inputs untiled (--tile 0)")
    ap.add_argument("--json", action="store_true", help="one JSON object per run instead of a table")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="difftool-bench-") as tmp_name:
        tmp = Path(tmp_name)
        model = args.model
        if model is None:
            sys.path.insert(0, str(ROOT / "tests"))
            import builders

            model = builders.build_x4_upscaler(tmp / "tiny-x4")
        large_side = int(round(args.side * args.factor ** 0.5))
        runs = []
        for tile in [args.tile] + ([0] if args.contrast else []):
            for side in (args.side, large_side):
                src = tmp / f"in-{side}.png"
                if not src.exists():
                    make_input(src, side)
                result = measure(model, src, tmp / f"out-{side}-{tile}.png", tile, args.steps)
                runs.append({"input": f"{side}x{side}", "tile": "model default" if tile is None else tile, **result})
                if args.json:
                    print(json.dumps(runs[-1]), flush=True)
        if not args.json:
            print("| input | output | --tile | peak RSS (MiB) | seconds |")
            print("| --- | --- | --- | --- | --- |")
            for r in runs:
                print(f"| {r['input']} | {r['output']} | {r['tile']} | {r['peak_rss_mib']} | {r['seconds']} |")


if __name__ == "__main__":
    main()
