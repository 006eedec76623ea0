"""The manifest (what a batch made, append-only) and the per-job locks (who is making what right now).

Layout of the output folder DIR:

    DIR/<job id>.png, DIR/<job id>-<i>.png    the images (names from the job id: every run and process agrees)
    DIR/manifest/<run>-r<rank>.jsonl          one JSON record per finished job, one file per writing process
    DIR/.locks/<job id>.lock                  held (flock) while a process makes that job

One file per writing process, because appends from several machines to one file on a network file system can
overwrite each other; the manifest is the union of the files. Each record is written with one `write` and
fsync'd before the job's lock is released, so a job is either recorded whole or not at all; a line torn by
`kill -9` is ignored when read. A job counts as done when a `done` record names it and its files still exist
with the recorded size (and SHA-256, with `verify`). Locks are `flock`s: the kernel drops them when a process
dies, so a killed run never leaves a job locked.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from difftool.errors import UsageError

MANIFEST = "manifest"
LOCKS = ".locks"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def output_names(job_id: str, count: int) -> list[str]:
    """The file names of a job's images: `<id>.png`, or `<id>-<i>.png` when it makes several."""
    return [f"{job_id}.png"] if count == 1 else [f"{job_id}-{i}.png" for i in range(count)]


@dataclass
class JobState:
    """What the manifest says about one job: its `done` records (newest last) and whether it failed."""

    done: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, Any] | None = None


class Manifest:
    """Reads every record file of DIR/manifest incrementally (`refresh` returns only what was appended since),
    and tells which jobs are done."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.records = folder / MANIFEST
        self.jobs: dict[str, JobState] = {}
        self.damaged = 0
        """Lines that were not a whole JSON record (torn by a kill): ignored."""
        self._offsets: dict[str, int] = {}

    def refresh(self) -> list[dict[str, Any]]:
        """Read what was appended to every record file since the last call; returns the new records."""
        new: list[dict[str, Any]] = []
        try:
            names = sorted(p.name for p in self.records.iterdir() if p.suffix == ".jsonl")
        except FileNotFoundError:
            return new
        for name in names:
            path = self.records / name
            start = self._offsets.get(name, 0)
            try:
                if path.stat().st_size <= start:
                    continue
                with open(path, "rb") as fh:  # opened each time: other machines' appends become visible (NFS)
                    fh.seek(start)
                    data = fh.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1  # a line still being written (or torn) waits for its newline
            self._offsets[name] = start + end
            for line in data[:end].splitlines():
                try:
                    record = json.loads(line)
                    job_id, status = record["id"], record["status"]
                except (ValueError, KeyError, TypeError):
                    self.damaged += 1
                    continue
                if status == "done":
                    state = self.jobs.setdefault(job_id, JobState())
                    state.done.append(record)
                    state.failed = None
                elif status == "failed":
                    state = self.jobs.setdefault(job_id, JobState())
                    if not state.done:
                        state.failed = record
                new.append(record)
        return new

    def done_record(self, job_id: str, verify: bool = False) -> dict[str, Any] | None:
        """The newest `done` record of the job whose files are all still there (same size; same SHA-256 when
        `verify`), or None: the job must be made (again)."""
        state = self.jobs.get(job_id)
        for record in reversed(state.done if state else []):
            if all(self._intact(item, verify) for item in record.get("outputs", [])):
                return record
        return None

    def failed(self, job_id: str) -> dict[str, Any] | None:
        state = self.jobs.get(job_id)
        return state.failed if state else None

    def _intact(self, item: dict[str, Any], verify: bool) -> bool:
        path = self.folder / item["path"]
        try:
            if path.stat().st_size != item.get("bytes"):
                return False
        except OSError:
            return False
        return not verify or sha256_file(path) == item.get("sha256")


class Writer:
    """One process's record file: each record one `write` + fsync (the job is recorded whole or not at all)."""

    def __init__(self, folder: Path, run: str, rank: int) -> None:
        records = folder / MANIFEST
        records.mkdir(parents=True, exist_ok=True)
        self.path = records / f"{run}-r{rank}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.stamp = {"run": run, "rank": rank, "host": socket.gethostname(), "pid": os.getpid()}

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        full = {**record, **self.stamp, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        data = (json.dumps(full, ensure_ascii=False, default=str, allow_nan=False) + "\n").encode()
        written = os.write(self._fd, data)
        if written != len(data):  # a full disk: the partial line is ignored by readers; say so
            raise OSError(f"could not append to {self.path} (disk full?)")
        os.fsync(self._fd)
        return full

    def close(self) -> None:
        os.close(self._fd)


class Locks:
    """Per-job locks in DIR/.locks: `take` returns a handle, or None when another process holds the job."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / LOCKS
        self.folder.mkdir(parents=True, exist_ok=True)

    def take(self, job_id: str) -> int | None:
        import fcntl

        path = self.folder / f"{job_id}.lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held by another process (another rank, another run)
                os.close(fd)
                return None
            except OSError as exc:  # a file system without locks: running unguarded could make jobs twice
                os.close(fd)
                raise UsageError(f"Cannot lock files in '{self.folder}' ({exc.strerror or exc}); batch needs a "
                                 "file system with locks (on NFS: v4, or v3 with lockd).") from None
            try:  # the file we locked must still be the one at `path` (a holder may have just removed it)
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def release(self, job_id: str, fd: int) -> None:
        """Remove the lock file, then unlock (a process that opened it meanwhile sees it gone and retries)."""
        try:
            os.unlink(self.folder / f"{job_id}.lock")
        except FileNotFoundError:
            pass
        os.close(fd)
