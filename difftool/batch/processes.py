"""Which process this is, through HuggingFace accelerate: rank, world size, device; splitting and sharing.

`accelerate launch [--num_processes N] -m difftool batch ...` (or torchrun) starts the processes and sets
RANK/WORLD_SIZE/LOCAL_RANK; `PartialState` joins them (NCCL on GPUs, each process on cuda:LOCAL_RANK; gloo on
CPU, where accelerate must be told `cpu=True`). A plain `difftool batch` is one process and never imports
accelerate. `difftool batch --processes N` re-runs the same command under accelerate's launcher (`launch`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from difftool.errors import UsageError

T = TypeVar("T")
#: Set by `--processes` for its children: where rank 0 writes the batch's exit status (a launcher reports any
#: non-zero exit of a child as its own crash, with a traceback, so the children exit 0 and the parent says it).
STATUS_ENV = "DIFFTOOL_BATCH_STATUS"


@dataclass
class Processes:
    """This process among the batch's processes (one, unless a launcher started several)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str | None = None
    """The device this process must use (None: each job's own setting, `auto` by default)."""
    state: Any = None
    """accelerate's PartialState, when launched."""

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, value: T) -> T:
        """Rank 0's `value`, on every process (what rank 0 read and planned, so all agree)."""
        if self.world == 1:
            return value
        from accelerate.utils import broadcast_object_list

        box = [value]
        broadcast_object_list(box, from_process=0)
        return box[0]

    def split(self, items: Sequence[T]) -> list[T]:
        """This process's share of `items`: every world-th item from its rank on, so that each process gets the
        same mix of a grid (accelerate's `split_between_processes` over the shares laid end to end)."""
        if self.world == 1:
            return list(items)
        order = [items[i] for r in range(self.world) for i in range(r, len(items), self.world)]
        with self.state.split_between_processes(order) as mine:
            return list(mine)

    def barrier(self) -> None:
        if self.world > 1:
            self.state.wait_for_everyone()


def launched() -> bool:
    """Whether a launcher (accelerate, torchrun, mpirun) started this process as one of several."""
    for key in ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        try:
            if int(os.environ.get(key, "1")) > 1:
                return True
        except ValueError:
            pass
    return False


def current(device: str | None) -> Processes:
    """This process: alone, or joined to the launched group through accelerate (`device`: the user's choice)."""
    if not launched():
        return Processes()
    import torch
    from accelerate import PartialState

    cpu = device == "cpu" or not torch.cuda.is_available()
    state = PartialState(cpu=cpu)
    mine = "cpu" if cpu else f"cuda:{state.local_process_index}"
    return Processes(state.process_index, state.num_processes, state.local_process_index, mine, state)


def launch_command(processes: int, args: list[str]) -> list[str]:
    """accelerate's launcher for one machine, running `difftool ARGS` in `processes` processes (a free port, so
    several batches on one machine do not collide). `--multi_gpu` starts N processes on CPU too (gloo): its
    `--cpu` mode would start one and leave the rest to mpirun."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
            "-m", "difftool", *args]


def without_processes(args: list[str]) -> list[str]:
    """The command line with `--processes N` taken out (what each launched process runs)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--processes":
            skip = True
        elif not arg.startswith("--processes="):
            out.append(arg)
    return out


def launch(processes: int, args: list[str], status: Path) -> int:
    """Run `difftool ARGS` in `processes` processes through accelerate's launcher; the batch's exit status."""
    if launched():
        raise UsageError("--processes starts its own processes; under accelerate launch or torchrun, leave it out.")
    env = {**os.environ, STATUS_ENV: str(status)}
    proc = subprocess.Popen(launch_command(processes, without_processes(args)), env=env)
    try:
        code = proc.wait()
    except BaseException:  # Ctrl-C reaches the children too (same process group); SIGTERM is passed on
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    try:
        return int(status.read_text().strip())
    except (OSError, ValueError):
        return code or 1
