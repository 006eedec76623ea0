"""The server's jobs: a bounded queue, and ONE worker thread that owns the engine and runs them in order.

The engine is not thread-safe for concurrent runs and a device runs one job at a time anyway, so every spec goes
through one worker. The web side (asyncio) and the worker share `Job` objects: the worker appends events (state,
progress, log lines, images, the end) under a lock and wakes the asyncio waiters with `call_soon_threadsafe`;
handlers read the event list from their own cursor. Finished jobs are kept for a while (their PNGs can be
fetched), then forgotten: the server's memory stays flat however many requests it serves.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from difftool.errors import Cancelled, explain
from difftool.server.policy import RequestError

FINISHED = ("done", "failed", "cancelled")


@dataclass
class Image:
    """One image a job made: its record (the PNG's `difftool` chunk), output-name fields, and the PNG itself."""

    index: int
    record: dict[str, Any]
    name_fields: dict[str, Any]
    png: bytes

    @property
    def seed(self) -> int:
        return int(self.record.get("seed", 0))


@dataclass
class Job:
    """One spec on its way through the server."""

    spec: Any
    """The validated JobSpec; dropped once the job is over (it may hold megabytes of inline input images)."""
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    status: str = "queued"
    step: int = 0
    total: int = 0
    label: str = ""
    images: list[Image] = field(default_factory=list)
    error: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _watchers: list[tuple[Any, asyncio.Event]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.task: str = self.spec.task
        self.count: int = int(self.spec.frames or self.spec.num_images)
        """How many images the job makes."""

    @property
    def over(self) -> bool:
        return self.status in FINISHED

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Append an event and wake every asyncio waiter (from any thread)."""
        with self._lock:
            self.events.append((kind, data))
            watchers = list(self._watchers)
        for loop, event in watchers:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def watch(self) -> asyncio.Event:
        """An asyncio.Event (of the running loop) set whenever an event is appended."""
        event = asyncio.Event()
        with self._lock:
            self._watchers.append((asyncio.get_running_loop(), event))
        return event

    def unwatch(self, event: asyncio.Event) -> None:
        with self._lock:
            self._watchers = [(loop, e) for loop, e in self._watchers if e is not event]

    def since(self, cursor: int) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return self.events[cursor:]

    def set_state(self, status: str, error: dict[str, Any] | None = None) -> None:
        now = time.time()
        if status == "running":
            self.started = now
        if status in FINISHED:
            self.finished = now
            self.error = error
            self.spec = None
        self.status = status
        self.emit("state", {"status": status, **({"error": error} if error else {})})

    def progress(self) -> float:
        """The share of the job done, 0..1 (images made, and the current image's steps)."""
        if self.status == "done":
            return 1.0
        part = self.step / self.total if self.total else 0.0
        return min(1.0, (len(self.images) + part) / max(1, self.count))

    def eta(self) -> float | None:
        """Seconds left, from the pace so far (None before the first step)."""
        done = self.progress()
        if self.started is None or done <= 0 or self.over:
            return None
        return (time.time() - self.started) * (1 - done) / done

    def summary(self, base: str = "") -> dict[str, Any]:
        """The job as `GET /v1/jobs/{id}` shows it."""
        out: dict[str, Any] = {
            "id": self.id, "status": self.status, "task": self.task, "step": self.step, "total": self.total,
            "label": self.label, "progress": round(self.progress(), 4), "images_done": len(self.images),
            "images_total": self.count, "created": self.created, "started": self.started, "finished": self.finished,
            "images": [{"index": im.index, "seed": im.seed, "url": f"{base}/v1/jobs/{self.id}/images/{im.index}.png"}
                       for im in self.images],
        }
        if self.error:
            out["error"] = self.error
        eta = self.eta()
        if eta is not None:
            out["eta"] = round(eta, 2)
        return out


class JobReporter:
    """The engine's Reporter for one job: log lines and progress become the job's events."""

    def __init__(self, job: Job, log: Callable[[str], None]) -> None:
        self.job, self.log = job, log

    def info(self, message: str) -> None:
        self.job.emit("log", {"level": "info", "message": message})

    def warn(self, message: str) -> None:
        self.job.emit("log", {"level": "warning", "message": message})
        self.log(f"job {self.job.id}: warning: {message}")

    @contextmanager
    def progress(self, label: str, total: int) -> Iterator[Callable[[], None]]:
        job = self.job
        job.label, job.step, job.total = label, 0, total
        job.emit("progress", {"label": label, "step": 0, "total": total})

        def advance() -> None:
            job.step += 1
            job.emit("progress", {"label": label, "step": job.step, "total": total})

        yield advance


class Refused(RequestError):
    """The queue will not take a job now (429 full, 503 shutting down)."""


class Jobs:
    """The queue and its worker thread (see the module docstring)."""

    def __init__(self, engine: Any, *, queue: int = 16, keep: int = 32, keep_seconds: float = 600,
                 idle_unload: float | None = None, log: Callable[[str], None] | None = None) -> None:
        """`queue`: jobs that may wait (besides the running one); `keep`/`keep_seconds`: how many finished jobs are
        kept, and how long; `idle_unload`: seconds without a job after which the engine unloads its models."""
        self.engine = engine
        self.limit, self.keep, self.keep_seconds, self.idle_unload = queue, keep, keep_seconds, idle_unload
        self.log = log or _stderr
        self.pending: deque[Job] = deque()
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.running: Job | None = None
        self.draining = False
        self.loading = False
        self.counts = {"done": 0, "failed": 0, "cancelled": 0}
        self.loaded: list[dict[str, Any]] = []
        """What the engine holds, as of the worker's last job: read by /v1/health without touching the engine,
        whose lock a loading model holds for as long as it loads."""
        self._cond = threading.Condition()
        self._stop = False
        self._last = time.monotonic()
        self._unloaded = False
        self._thread: threading.Thread | None = None

    # ---- the web side -----------------------------------------------------------------------------------

    def submit(self, spec: Any) -> Job:
        """Queue a validated spec; Refused (429/503) when the queue is full or the server is stopping."""
        job = Job(spec)
        with self._cond:
            if self.draining:
                raise Refused(503, "The server is shutting down; it takes no new jobs.", kind="server_error")
            if len(self.pending) >= self.limit:
                raise Refused(429, f"The queue is full ({self.limit} jobs waiting); try again later.",
                              kind="rate_limit_error")
            self.pending.append(job)
            self._remember(job)
            self._cond.notify_all()
        job.emit("state", {"status": "queued"})
        return job

    def get(self, job_id: str) -> Job | None:
        with self._cond:
            return self.jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """0 for the next job to run, ...; None when not waiting."""
        with self._cond:
            try:
                return self.pending.index(job)
            except ValueError:
                return None

    def cancel(self, job: Job, reason: str = "cancelled.") -> None:
        """A queued job is dropped now; a running one stops at its next step."""
        with self._cond:
            queued = job in self.pending
            if queued:
                self.pending.remove(job)
        if queued:
            self._end(job, "cancelled", {"message": reason, "type": "Cancelled", "code": 130})
        elif not job.over:
            job.cancel.set()

    def release(self, job: Job) -> None:
        """Forget a finished job whose images were delivered in the response (the OpenAI and A1111 routes, a
        streamed job): nobody asks for it again."""
        with self._cond:
            if job.over:
                self.jobs.pop(job.id, None)

    def unclaimed(self, since: float) -> bool:
        """Whether a job that finished after `since` (a time.time()) still holds images nobody took in a response."""
        with self._cond:
            return any(j.over and j.images and (j.finished or 0) >= since for j in self.jobs.values())

    def recent(self) -> list[Job]:
        with self._cond:
            return list(self.jobs.values())

    @property
    def idle(self) -> bool:
        with self._cond:
            return self.running is None and not self.pending

    def drain(self, cancel_running: bool = False) -> None:
        """Take no new jobs; drop the waiting ones (the running one finishes, or stops with `cancel_running`)."""
        with self._cond:
            self.draining = True
            waiting = list(self.pending)
            running = self.running
        for job in waiting:
            self.cancel(job, "the server is shutting down.")
        if cancel_running and running is not None:
            running.cancel.set()

    # ---- the worker -------------------------------------------------------------------------------------

    def start(self, preload: list[Any] | None = None) -> None:
        self._thread = threading.Thread(target=self._work, args=(preload or [],), name="difftool-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self, preload: list[Any]) -> None:
        self._preload(preload)
        while True:
            with self._cond:
                while not self.pending and not self._stop:
                    wait = self._idle_wait()
                    if not self._cond.wait(wait) and wait is not None and self._unload_due():
                        break
                if self._stop:
                    return
                job = self.pending.popleft() if self.pending else None
                self.running = job
            if job is None:  # idle long enough: unload, outside the queue's lock
                self._unload()
                continue
            try:
                self._run(job)
            finally:
                self.loaded = self.engine.loaded()
                with self._cond:
                    self.running = None
                    self._last = time.monotonic()
                    self._unloaded = False

    def _idle_wait(self) -> float | None:
        """How long the worker may sleep: until `idle_unload` is due, else until a job comes."""
        if not self.idle_unload or self._unloaded:
            return None
        return max(0.05, self.idle_unload - (time.monotonic() - self._last))

    def _unload_due(self) -> bool:
        return bool(self.idle_unload) and time.monotonic() - self._last >= float(self.idle_unload or 0)

    def _unload(self) -> None:
        if self.engine.loaded():
            count = self.engine.unload()
            self.log(f"idle for {self.idle_unload:g} s: unloaded {count} pipeline(s)")
        self.loaded = self.engine.loaded()
        self._unloaded = True

    def _preload(self, preload: list[Any]) -> None:
        """Load the `--models` before the first job (a failure is logged; that model then fails its jobs)."""
        self.loading = bool(preload)
        for job in preload:
            try:
                task = "upscale" if job.task == "upscale" else "text2img"
                self.engine.pipeline(self.engine.resolve(job), task, self.engine.load_options(job))
                self.log(f"loaded {job.model}")
            except Exception as exc:  # noqa: BLE001 - any failure: say so, keep serving the others
                known = explain(exc)
                self.log(f"could not preload {job.model}: {known.message if known else exc}")
        self.loading = False
        self.loaded = self.engine.loaded()
        self._last = time.monotonic()

    def _run(self, job: Job) -> None:
        if job.cancel.is_set():
            self._end(job, "cancelled", {"message": "cancelled.", "type": "Cancelled", "code": 130})
            return
        job.set_state("running")
        try:
            for result in self.engine.run(job.spec, cancel=job.cancel, reporter=JobReporter(job, self.log)):
                png = result.png()  # upscales are made while their PNG is written: here, in the worker
                image = Image(len(job.images), result.record, result.name_fields, png)
                job.images.append(image)
                job.emit("image", {"index": image.index})
        except Cancelled:
            self._end(job, "cancelled", {"message": "cancelled.", "type": "Cancelled", "code": 130})
            return
        except BaseException as exc:  # noqa: BLE001 - every failure ends the job, never the worker
            self._end(job, "failed", describe(exc, self.log))
            if not isinstance(exc, Exception):
                raise
            return
        self._end(job, "done")

    # ---- bookkeeping ------------------------------------------------------------------------------------

    def _end(self, job: Job, status: str, error: dict[str, Any] | None = None) -> None:
        """Count, then tell the clients (who may ask for the counts as soon as they hear)."""
        with self._cond:
            self.counts[status] += 1
        job.set_state(status, error)

    def _remember(self, job: Job) -> None:
        """Keep `job` findable; forget the oldest finished jobs beyond `keep` or older than `keep_seconds`."""
        self.jobs[job.id] = job
        now = time.time()
        finished = [j for j in self.jobs.values() if j.over]
        extra = len(finished) - self.keep
        for old in finished:
            if extra > 0 or (old.finished is not None and now - old.finished > self.keep_seconds):
                self.jobs.pop(old.id, None)
                extra -= 1


def describe(exc: BaseException, log: Callable[[str], None]) -> dict[str, Any]:
    """A failure as the error a client gets: the one-sentence message, its class and the CLI's exit code."""
    known = explain(exc) if isinstance(exc, Exception) else None
    if known is not None:
        return {"message": known.message, "type": type(known).__name__, "code": int(known.code)}
    first = str(exc).splitlines()[0] if str(exc) else ""
    log("job failed with an unexpected error:\n" + "".join(traceback.format_exception(exc)).rstrip())
    return {"message": f"{type(exc).__name__}: {first} (a bug: see the server's log).", "type": "InternalError",
            "code": 1}


def _stderr(message: str) -> None:
    from difftool.terminal import printable

    sys.stderr.write(f"difftool serve: {printable(message)}\n")
    sys.stderr.flush()
