"""Shared bench helpers: whole-process runs with peak RSS, interleaved repeats, medians, tables, JSON results.

Every measurement is a real process: wall time from the parent, peak RSS from `os.wait4`'s rusage (the
child's own high-water mark), so nothing of one run leaks into the next. Variants are run interleaved
(A B C A B C ...) so a noisy neighbour slows all of them alike, and ratios are taken between medians.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
NOTE = ("2 shared CPU cores, no GPU (CUDA not available in this session); other engineers' tests and a model "
        "training job ran at the same time: absolute seconds are noisy, ratios of interleaved medians less so.")


def env() -> dict[str, str]:
    """Offline, no colour, no DIFFTOOL_* settings from the caller's shell."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIFFTOOL_")}
    return {**base, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "DIFFTOOL_CONFIG": str(RESULTS / "no-config.toml"),
            "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}


def difftool(*args: str) -> list[str]:
    exe = shutil.which("difftool", path=str(Path(PYTHON).parent)) or shutil.which("difftool")
    return [exe, *args] if exe else [PYTHON, "-m", "difftool", *args]


def diffusers_cli(*args: str) -> list[str]:
    exe = shutil.which("diffusers-cli", path=str(Path(PYTHON).parent)) or shutil.which("diffusers-cli")
    assert exe, "diffusers-cli is not installed"
    return [exe, *args]


def run(cmd: Sequence[str], stdin: str | None = None, cwd: Path | None = None, check: bool = True,
        extra_env: dict[str, str] | None = None) -> dict:
    """One process: wall seconds and peak RSS (MiB)."""
    start = time.perf_counter()
    proc = _Popen(list(cmd), env={**env(), **(extra_env or {})}, cwd=cwd, stdin=subprocess.PIPE if stdin is not None else None,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(stdin.encode() if stdin is not None else None)
    wall = time.perf_counter() - start
    code = proc.returncode
    rss = getattr(proc, "_bench_rss", None)
    if check and code != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({code}): {err.decode()[-800:]}")
    return {"seconds": wall, "peak_rss_mib": rss, "code": code, "stdout": out.decode(), "stderr": err.decode()}


class _Popen(subprocess.Popen):
    """Popen that reaps with os.wait4 to keep the child's peak RSS."""

    def _try_wait(self, wait_flags):  # type: ignore[override]
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return (self.pid, 0)
        if pid == self.pid:
            kib = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss // 1024
            self._bench_rss = round(kib / 1024, 1)
        return (pid, status)



def interleaved(variants: dict[str, Callable[[], dict]], repeats: int, log: Callable[[str], None] = print) -> dict:
    """Run each variant `repeats` times, round-robin; per variant: all runs and the medians."""
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for i in range(repeats):
        for name, fn in variants.items():
            r = fn()
            runs[name].append({k: v for k, v in r.items() if k not in ("stdout", "stderr")})
            log(f"  [{i + 1}/{repeats}] {name}: {r['seconds']:.2f} s, {r.get('peak_rss_mib')} MiB")
    return {name: summary(rs) for name, rs in runs.items()}


def summary(rs: list[dict]) -> dict:
    out: dict = {"runs": rs, "n": len(rs)}
    for key in ("seconds", "peak_rss_mib", "step_s", "decode_s"):
        vals = [r[key] for r in rs if r.get(key) is not None]
        if vals:
            out[key] = statistics.median(vals)
            out[key + "_min"] = min(vals)
            out[key + "_max"] = max(vals)
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"note": NOTE, "python": sys.version.split()[0], **data}, indent=2, default=str))
    return path


def tiny_model() -> Path:
    """The tiny SD pipeline of the test suite (64 px), built once under bench/results/."""
    folder = RESULTS / "models" / "tiny-sd"
    if not (folder / "model_index.json").exists():
        build(f"builders.build_sd(Path({str(folder)!r}))")
    return folder


def build(code: str) -> None:
    """Run builder code in a child process: the bench process itself stays small, so the peak RSS that
    wait4 reports for later children (which starts from the parent's size at fork) is theirs."""
    folder_code = f"import sys; from pathlib import Path; sys.path.insert(0, {str(ROOT / 'tests')!r}); " \
                  f"sys.path.insert(0, {str(ROOT / 'bench')!r}); import builders; {code}"
    subprocess.run([PYTHON, "-c", folder_code], check=True, env=env(), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def timed(cmd: Sequence[str], work: Path, **kw: object) -> dict:
    """`run` through bench/_timed.py: adds the median UNet forward (`step_s`, one CFG step) and the VAE decode
    time (`decode_s`) measured inside the process."""
    probe = work / f"times-{time.monotonic_ns()}.json"
    r = run([PYTHON, str(ROOT / "bench" / "_timed.py"), *cmd], extra_env={"BENCH_TIMES": str(probe)}, **kw)  # type: ignore[arg-type]
    times = json.loads(probe.read_text()) if probe.exists() else {"unet": [], "decode": []}
    r["step_s"] = statistics.median(times["unet"]) if times["unet"] else None
    r["decode_s"] = sum(times["decode"]) if times["decode"] else None
    r["unet_calls"] = len(times["unet"])
    return r


def sd15_model() -> Path:
    """The SD 1.5-shaped random-weight pipeline folder (built once, ~4.3 GB, under bench/results/models/)."""
    folder = RESULTS / "models" / "sd15-random"
    if not (folder / "model_index.json").exists():
        start = time.perf_counter()
        build(f"import sd15_random; sd15_random.build(Path({str(folder)!r}))")
        print(f"built the SD 1.5-shaped random pipeline in {time.perf_counter() - start:.0f} s")
    return folder


def taesd_model() -> Path:
    folder = RESULTS / "models" / "taesd-random"
    if not (folder / "config.json").exists():
        build(f"import sd15_random; sd15_random.build_taesd(Path({str(folder)!r}))")
    return folder


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="difftool-bench-"))
