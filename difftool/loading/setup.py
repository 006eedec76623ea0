"""Process set-up before the first load: quiet libraries and CPU threads. Idempotent, cheap to call again."""

from __future__ import annotations

import os
import warnings
from pathlib import Path


def quiet_libraries() -> None:
    """Keep library chatter (tqdm bars, deprecation notices, quantization backends' kernel notices) off the user's
    stderr."""
    from difftool import quantize

    quantize.quiet_backends()  # before transformers/peft import torchao
    import transformers

    transformers.utils.logging.set_verbosity(50)  # CRITICAL: failures reach the user as our own one-liners
    transformers.utils.logging.disable_progress_bar()
    import diffusers

    diffusers.utils.logging.set_verbosity(50)
    diffusers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")


def usable_cores() -> int:
    """The cores this process may really use (affinity, then a container's cgroup v2 CPU quota)."""
    cap = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:  # "max 100000" or "200000 100000"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cap = min(cap, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cap


def cpu_threads(chosen: int | None = None) -> int | None:
    """Cap torch's CPU threads at the usable cores, unless the user chose (`chosen`, from DIFFTOOL_THREADS, or
    OMP_NUM_THREADS / MKL_NUM_THREADS). Returns the count set, or None when left to the user's variables."""
    import torch

    if chosen is None and (os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS")):
        return None
    threads = max(1, chosen) if chosen is not None else min(torch.get_num_threads(), usable_cores())
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads
