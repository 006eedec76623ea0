"""Rank 0's view of a batch run: it reads the manifest as every process appends to it, so one bar, one stream of
result lines and one summary cover all the processes (on every machine that shares the output folder).

Each finished job of this run is printed once: its image paths (or, with `--json`, its manifest record with the
paths joined to DIR) on stdout; a failed job's error, with its line number, on stderr.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from difftool import console
from difftool.batch.manifest import Manifest


@dataclass
class Counts:
    """What this run did, from its records (every process)."""

    made: int = 0
    images: int = 0
    failed: int = 0
    ended: set[int] = field(default_factory=set)
    """Ranks that finished their share."""


class Tracker:
    """Follows this run's records in the manifest; prints them, advances the bar (see the module docstring)."""

    def __init__(self, manifest: Manifest, run: str, out_text: str, *, total: int, already: int, as_json: bool,
                 say: console.Console) -> None:
        self.manifest, self.run, self.out_text = manifest, run, out_text
        self.total, self.already, self.as_json, self.say = total, already, as_json, say
        self.counts = Counts()
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Any = None
        self._task: Any = None

    def begin(self, poll_every: float | None) -> None:
        """Show the bar (a person watching stderr only) and, when other processes write, poll every so often."""
        if self.say.bars_enabled():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(), TextColumn("jobs"),
                                 TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                                 TimeElapsedColumn(), console=self.say.err, redirect_stdout=False)
            self._task = self._bar.add_task("batch", total=self.total, completed=self.already, rate="")
            self._bar.start()
        if poll_every is not None or self._bar is not None:
            self._thread = threading.Thread(target=self._loop, args=(poll_every or 0.5,), daemon=True)
            self._thread.start()

    def _loop(self, every: float) -> None:
        while not self._stop.wait(every):
            self.poll()

    def poll(self) -> None:
        """Read what every process appended since the last poll; print and count this run's records."""
        with self._lock:
            for record in self.manifest.refresh():
                if record.get("run") != self.run:
                    continue
                status = record.get("status")
                if status == "end":
                    self.counts.ended.add(int(record.get("rank", 0)))
                    continue
                if status == "done":
                    self.counts.made += 1
                    self.counts.images += len(record.get("outputs", []))
                    self._print_done(record)
                elif status == "failed":
                    self.counts.failed += 1
                    console.error(str(record.get("error")))
                    if self.as_json:
                        console.result_json(record)
                if self._bar is not None:
                    self._bar.update(self._task, advance=1, rate=f"{self.rate():.2f} images/s")

    def _print_done(self, record: dict[str, Any]) -> None:
        paths = [str(Path(self.out_text) / item["path"]) for item in record.get("outputs", [])]
        if self.as_json:
            outputs = [{**item, "path": path} for item, path in zip(record["outputs"], paths)]
            console.result_json({**record, "outputs": outputs})
        else:
            for path in paths:
                console.result(path)

    def rate(self) -> float:
        return self.counts.images / max(time.monotonic() - self.start, 1e-9)

    def wait_for(self, world: int) -> None:
        """Until every process has recorded the end of its share (a launcher stops them all if one crashes)."""
        while True:
            self.poll()
            if len(self.counts.ended) >= world:
                return
            time.sleep(0.2)

    def end(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()
        if self._bar is not None:
            self._bar.stop()
