"""Making a batch: rank 0 reads JOBS and the manifest and plans; every process makes its share through the engine.

Per job: take its lock (busy: another process or run is making it, skip it); make its images; write each
atomically under its id-derived name (replacing what a killed run may have left); append its record to the
manifest (fsync'd); release the lock. So a kill at any point loses at most the jobs in flight, which a rerun
makes again, and no job is recorded twice by two runs at once. Rank 0 follows every process's records
(`progress.Tracker`) and decides the exit status.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from difftool import config, console, spec
from difftool.batch import jobs as jobs_
from difftool.batch.manifest import Locks, Manifest, Writer, output_names, sha256_file
from difftool.batch.processes import STATUS_ENV, Processes, current
from difftool.batch.progress import Tracker
from difftool.errors import DifftoolError, ExitCode, UsageError, explain


@dataclass
class Options:
    """How to run, from the command line (the jobs' own settings are in their specs)."""

    out: Path
    out_text: str
    batch_size: int = 1
    retry_failed: bool = False
    verify: bool = False
    as_json: bool = False
    quiet: bool = False
    allow_pickle: bool = False
    refresh: bool = False
    device: str | None = None
    debug: bool = False


@dataclass
class Plan:
    """What rank 0 decided, shared with every process."""

    run: str = ""
    todo: list[jobs_.Job] = field(default_factory=list)
    error: str | None = None
    code: int = 0


@dataclass
class Tally:
    """Rank 0's counts of the jobs it planned (the rest comes from the records: `progress.Counts`)."""

    total: int = 0
    skipped: int = 0
    failed_before: int = 0
    bad: list[jobs_.Job] = field(default_factory=list)


class Say:
    """The engine's reporter in a batch: log lines (prefixed with the rank when there are several), no per-step bars
    (the overall bar is the one to watch)."""

    def __init__(self, out: console.Console, prefix: str) -> None:
        self.out, self.prefix = out, prefix

    def info(self, message: str) -> None:
        self.out.info(self.prefix + message)

    def warn(self, message: str) -> None:
        self.out.warn(self.prefix + message)

    def progress(self, label: str, total: int) -> Any:
        return contextlib.nullcontext(None)


def run(source: str, fmt: str, vary: list[str] | None, flags: Any, opts: Options) -> int:
    """The whole batch on this process; returns the exit status (rank 0's is the batch's)."""
    procs = current(opts.device)
    say = console.Console(quiet=opts.quiet)
    plan, tally = Plan(), Tally()
    if procs.main:
        try:
            plan, tally = _plan(source, fmt, vary, flags, opts, say)
        except DifftoolError as exc:
            plan = Plan(error=exc.message, code=int(exc.code))
    plan = procs.share(plan)
    if plan.error is not None:
        if procs.main:
            console.error(plan.error)
        return _exit(procs, plan.code)
    writer = Writer(opts.out, plan.run, procs.rank)
    tracker = None
    if procs.main:
        for job in tally.bad:
            writer.append(_failed(job, job.error or "", job.code))
        tracker = Tracker(Manifest(opts.out), plan.run, opts.out_text, total=tally.total,
                          already=tally.skipped + tally.failed_before, as_json=opts.as_json, say=say)
        tracker.begin(0.5 if procs.world > 1 else None)
        tracker.poll()  # the invalid lines first
    try:
        try:
            Maker(procs, plan, opts, writer, say, tracker).make_all()
        finally:
            writer.append({"id": "", "status": "end"})  # this process's share is over (rank 0 waits for all)
            writer.close()
        if tracker is None:
            return _exit(procs, 0)
        tracker.wait_for(procs.world)
    finally:
        if tracker is not None:  # the bar stops (and the terminal's cursor comes back) whatever happened
            tracker.end()
    return _exit(procs, _summary(tracker, tally, plan, opts, say))


def _exit(procs: Processes, code: int) -> int:
    """The status to exit with: under `--processes`, rank 0 writes it for the parent and every child exits 0."""
    status = os.environ.get(STATUS_ENV)
    if status and procs.world > 1:
        if procs.main:
            Path(status).write_text(str(code))
        return 0
    return code if procs.main else 0


def _plan(source: str, fmt: str, vary: list[str] | None, flags: Any, opts: Options,
          say: console.Console) -> tuple[Plan, Tally]:
    """Rank 0: read JOBS and the manifest; which jobs to make, which were done or failed before."""
    varies = jobs_.parse_vary(vary)
    if source == "-" and _stdin_tty():
        say.info("reading jobs from stdin, one per line (Ctrl-D to end)")
    lines = jobs_.read(source)
    if not lines:
        raise UsageError(f"No jobs in {'stdin' if source == '-' else repr(source)}.")
    found = jobs_.build(lines, jobs_.detect_format(source, lines, fmt), varies, jobs_.Specs(flags))
    _check_folder(opts.out)
    manifest = Manifest(opts.out)
    manifest.refresh()
    if manifest.damaged:
        say.warn(f"{manifest.damaged} damaged line(s) in {opts.out / 'manifest'} ignored (a killed run's last write).")
    tally = Tally(total=len(found))
    todo = []
    for job in found:
        if manifest.failed(job.id) and not opts.retry_failed:
            tally.failed_before += 1
        elif job.fields is None:
            tally.bad.append(job)
        elif manifest.done_record(job.id, opts.verify) is not None:
            tally.skipped += 1
        else:
            todo.append(job)
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
    return Plan(run=run_id, todo=todo), tally


def _stdin_tty() -> bool:
    import sys

    return bool(getattr(sys.stdin, "isatty", lambda: False)())


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"Output '{out}' is not a folder; batch writes its images and manifest into a folder.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"Cannot make the output folder '{out}': {exc.strerror or exc}.") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"Output folder '{out}' is not writable.")


def _failed(job: jobs_.Job, message: str, code: int) -> dict[str, Any]:
    where = {"spec": job.fields} if job.fields is not None else {"text": job.text}
    return {"id": job.id, "line": job.line, "status": "failed", "error": message, "code": code, **where}


class Maker:
    """One process's share of the plan: claims each job, makes it (in batched calls where it can), records it."""

    def __init__(self, procs: Processes, plan: Plan, opts: Options, writer: Writer, say: console.Console,
                 tracker: Tracker | None) -> None:
        from difftool.engine import Engine

        self.procs, self.plan, self.opts, self.writer, self.tracker = procs, plan, opts, writer, tracker
        prefix = f"[rank {procs.rank}] " if procs.world > 1 else ""
        self.say = Say(say, prefix)
        self.engine = Engine(reporter=self.say, allow_pickle=opts.allow_pickle, refresh=opts.refresh,
                             threads=config.lookup("threads", None, None, int))
        self.locks = Locks(opts.out)
        self.view = Manifest(opts.out)
        self.held: dict[str, int] = {}
        self.stale = _temporary_files(opts.out)

    def make_all(self) -> None:
        try:
            for group, batched in self._groups(self.procs.split(self.plan.todo)):
                if batched:
                    self._make_batched(group)
                else:
                    self._make_one(*group[0])
                if self.tracker is not None:
                    self.tracker.poll()
        finally:
            for job_id, fd in list(self.held.items()):  # interrupted: let the others (and a rerun) have them
                self.locks.release(job_id, fd)

    # ---- claiming and grouping ------------------------------------------------------------------------

    def _claim(self, job: jobs_.Job) -> bool:
        """Lock the job; False when another process holds it or has made it since the plan was read."""
        fd = self.locks.take(job.id)
        if fd is None:
            return False
        names = output_names(job.id, job.images)
        if all((self.opts.out / name).exists() for name in names):  # made meanwhile? (else: a killed run's files)
            self.view.refresh()
            if self.view.done_record(job.id, self.opts.verify) is not None:
                self.locks.release(job.id, fd)
                return False
        for name in names:  # temporary files of a killed writer of this job (nobody else writes it: we hold it)
            for stale in self.stale.pop(name, []):
                (self.opts.out / stale).unlink(missing_ok=True)
        self.held[job.id] = fd
        return True

    def _groups(self, mine: list[jobs_.Job]) -> Iterator[tuple[list[tuple[jobs_.Job, Any]], bool]]:
        """The claimed jobs in groups, and whether a group is made in batched calls (jobs alone when batching is
        off or they cannot share a call)."""
        from difftool.tasks import gen

        pending: list[tuple[jobs_.Job, Any]] = []
        key, images = None, 0
        for job in mine:
            if not self._claim(job):
                continue
            fields = {**job.fields, **({"device": self.procs.device} if self.procs.device else {})}  # type: ignore[dict-item]
            try:
                made = spec.build(fields, flags=False)
            except DifftoolError as exc:  # not expected: the plan validated it
                self._fail(job, exc)
                continue
            this = gen.batch_key(made) if self.opts.batch_size > 1 else None
            if pending and (this is None or this != key or images + job.images > self.opts.batch_size):
                yield pending, True
                pending, images = [], 0
            if this is None:
                yield [(job, made)], False
                continue
            pending.append((job, made))
            key, images = this, images + job.images
        if pending:
            yield pending, True

    # ---- making ---------------------------------------------------------------------------------------

    def _make_batched(self, group: list[tuple[jobs_.Job, Any]]) -> None:
        start = time.monotonic()
        outputs: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(group))}
        try:
            for index, result in self.engine.run_batch([made for _, made in group], self.opts.batch_size):
                job = group[index][0]
                outputs[index].append(self._write(result, output_names(job.id, job.images)[len(outputs[index])]))
        except Exception as exc:  # one bad job must not fail the others (nor a call too big for memory): each
            known = explain(exc)    # job alone, as without --batch-size
            reason = known.message if known is not None else f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.say.warn(f"a batched call of {len(group)} job(s) failed ({reason}); making them one by one.")
            for job, made in group:
                self._make_one(job, made)
            return
        share = (time.monotonic() - start) / max(1, sum(job.images for job, _ in group))
        for index, (job, _) in enumerate(group):
            self._done(job, outputs[index], share * job.images)

    def _make_one(self, job: jobs_.Job, made: Any) -> None:
        start = time.monotonic()
        names = output_names(job.id, job.images)
        outputs: list[dict[str, Any]] = []
        try:
            for result in self.engine.run(made):
                if len(outputs) >= len(names):
                    raise RuntimeError(f"the job made more than the {len(names)} images it should")
                outputs.append(self._write(result, names[len(outputs)]))
            if len(outputs) != len(names):
                raise RuntimeError(f"the job made {len(outputs)} images instead of {len(names)}")
        except Exception as exc:
            self._fail(job, exc)
            return
        self._done(job, outputs, time.monotonic() - start)

    def _write(self, result: Any, name: str) -> dict[str, Any]:
        """One image, atomically under its id-derived name (what a killed run left there is replaced)."""
        from difftool.outputs import write_with

        path = self.opts.out / name
        write_with(result.write, path, overwrite=True)
        return {"path": name, "sha256": sha256_file(path), "bytes": path.stat().st_size}

    def _done(self, job: jobs_.Job, outputs: list[dict[str, Any]], seconds: float) -> None:
        self.writer.append({"id": job.id, "line": job.line, "status": "done", "outputs": outputs,
                            "seconds": round(seconds, 3), "spec": job.fields})
        self._release(job)

    def _fail(self, job: jobs_.Job, exc: BaseException) -> None:
        known = explain(exc)
        if self.opts.debug:
            traceback.print_exc()
        if known is None:
            first = str(exc).splitlines()[0] if str(exc) else ""
            message, code = f"{type(exc).__name__}: {first}", int(ExitCode.FAILURE)
        else:
            message, code = known.message, int(known.code)
        self.writer.append(_failed(job, f"line {job.line}: {message}", code))
        self._release(job)

    def _release(self, job: jobs_.Job) -> None:
        fd = self.held.pop(job.id, None)
        if fd is not None:
            self.locks.release(job.id, fd)


def _summary(tracker: Tracker, tally: Tally, plan: Plan, opts: Options, say: console.Console) -> int:
    """The closing line (stderr) and the exit status: 2 when any job of JOBS failed, in this run or before."""
    counts = tracker.counts
    wall = time.monotonic() - tracker.start
    left = len(plan.todo) - counts.made - (counts.failed - len(tally.bad))
    parts = [f"{counts.made} made ({counts.images} images, {tracker.rate():.2f} images/s)",
             f"{tally.skipped} skipped (done earlier)", f"{counts.failed} failed"]
    if tally.failed_before:
        parts.append(f"{tally.failed_before} failed earlier and skipped (--retry-failed retries them)")
    if left > 0:
        parts.append(f"{left} left to another run that holds them (rerun to check)")
    say.info(f"batch: {tally.total} jobs: {', '.join(parts)}; {wall:.1f} s; manifest in {opts.out / 'manifest'}")
    failed = counts.failed + tally.failed_before
    if failed:
        console.error(f"{failed} of {tally.total} jobs failed (see above and the manifest); the others are made.")
        return int(ExitCode.USAGE)
    return 0


def _temporary_files(folder: Path) -> dict[str, list[str]]:
    """Image name -> the temporary files `outputs.write_with` left for it in `folder` (a killed run's)."""
    found: dict[str, list[str]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and ".png." in entry.name:
                found.setdefault(entry.name[1:entry.name.index(".png.") + 4], []).append(entry.name)
    return found

