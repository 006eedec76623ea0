"""Run `difftool ...` or a script with the same timing probes: every UNet forward and every VAE decode is timed
(class-level wrappers, identical for both), and the lists are written as JSON to $BENCH_TIMES at exit.

    python bench/_timed.py difftool gen ...      |      python bench/_timed.py bench/plain_gen.py ...
"""

import atexit
import json
import os
import runpy
import sys
import time

times: dict[str, list[float]] = {"unet": [], "decode": []}


def _probe() -> None:
    import diffusers

    def wrap(cls: type, name: str, key: str) -> None:
        original = getattr(cls, name)

        def timed(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                times[key].append(time.perf_counter() - start)

        setattr(cls, name, timed)

    wrap(diffusers.UNet2DConditionModel, "forward", "unet")
    wrap(diffusers.AutoencoderKL, "decode", "decode")
    wrap(diffusers.AutoencoderTiny, "decode", "decode")


@atexit.register
def _write() -> None:
    path = os.environ.get("BENCH_TIMES")
    if path:
        with open(path, "w") as fh:
            json.dump(times, fh)


_probe()
target, sys.argv = sys.argv[1], sys.argv[1:]
if target == "difftool":
    from difftool.cli import main

    main()
else:
    runpy.run_path(target, run_name="__main__")
