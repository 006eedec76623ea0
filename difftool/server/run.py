"""Starting and stopping the server: the sockets, the engine's worker, uvicorn, and signals.

Listens on a TCP address (loopback by default; any other address needs a token) and on the per-user Unix socket
(`socket_path()`, mode 0600: only this user can connect, so it needs no token). SIGTERM drains: new jobs get 503,
waiting ones are cancelled, the running one finishes and its client gets its images, then the process exits 0.
Ctrl-C (SIGINT) does the same but stops the running job at its next step (exit 130); a second Ctrl-C forces.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from difftool.client import socket_path
from difftool.errors import UsageError
from difftool.server.policy import Limits

#: Seconds a draining server waits for the images of a job that finished meanwhile to be fetched.
LINGER = 5.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Settings:
    """`difftool serve`'s options."""

    host: str = "127.0.0.1"
    port: int = 7860
    models: tuple[str, ...] = ()
    token: str | None = None
    idle_unload: float | None = None
    memory_budget: float | None = None
    queue: int = 16
    limits: Limits = Limits()
    unix: bool = True


def check(settings: Settings) -> None:
    """Refuse unsafe or impossible settings before anything starts (exit 2)."""
    if not is_loopback(settings.host) and not settings.token:
        raise UsageError(f"Refusing to listen on {settings.host} without --token: anyone who can reach it could use "
                         "this machine. Pass --token (or DIFFTOOL_TOKEN), or keep the default 127.0.0.1.")
    if settings.token is not None and len(settings.token) < 8:
        raise UsageError("--token must be at least 8 characters long.")
    if not 0 <= settings.port <= 65535:
        raise UsageError(f"--port {settings.port} is not a port number (0-65535).")
    if settings.queue < 0:
        raise UsageError("--queue must be 0 or more.")


def serve(settings: Settings) -> int:
    """Run the server until SIGTERM/SIGINT; returns the exit code (0 after a SIGTERM drain, 130 after Ctrl-C)."""
    check(settings)
    from difftool.server.policy import Models

    models = Models(list(settings.models))  # exit 3 for a model that is missing or not cached, before binding
    _offline()
    tcp = _bind_tcp(settings.host, settings.port)
    unix_path, unix = _bind_unix() if settings.unix else (None, None)
    try:
        return _run(settings, models, tcp, unix, unix_path)
    finally:
        tcp.close()
        if unix is not None:
            unix.close()
            try:
                if unix_path is not None and stat.S_ISSOCK(os.lstat(unix_path).st_mode):
                    unix_path.unlink()
            except FileNotFoundError:
                pass


def _offline() -> None:
    """The server never downloads: every model and adapter comes from the local cache or the allowed folders."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True


def _bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _bind_unix() -> tuple[Path | None, socket.socket | None]:
    """The per-user socket (0600); skipped with a warning when another server holds it or it cannot be made."""
    from difftool import console

    path = socket_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                console.warn(f"{path} exists and is not a socket; not listening on the per-user socket.")
                return None, None
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
                console.warn(f"another difftool server listens on {path}; this one is reachable over TCP only.")
                return None, None
            except OSError:
                path.unlink()  # left by a server that died
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(128)
        return path, sock
    except OSError as exc:
        console.warn(f"cannot listen on the per-user socket {path} ({exc.strerror or exc}); TCP only.")
        return None, None


def _run(settings: Settings, models: Any, tcp: socket.socket, unix: socket.socket | None,
         unix_path: Path | None) -> int:
    import uvicorn

    from difftool import config, spec
    from difftool.engine import Engine
    from difftool.server.app import Service, create_app
    from difftool.server.jobs import Jobs, _stderr
    from difftool.server.policy import is_upscaler

    engine = Engine(memory_budget=settings.memory_budget, reporter=_Log(), threads=config.lookup("threads", None, None, int))
    jobs = Jobs(engine, queue=settings.queue, idle_unload=settings.idle_unload)
    service = Service(jobs, models, settings.limits, settings.token)
    preload = [spec.build({"task": "upscale" if is_upscaler(s.ref) else "gen", "model": s.canonical}, flags=False,
                          partial=True) for s in models.served]
    jobs.start(preload)
    app = create_app(service)
    host, port = tcp.getsockname()[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    where = f"http://{shown}:{port}" + (f" and unix:{unix_path}" if unix_path else "")
    listed = ", ".join(models.listing()) if models.restricted else "any cached alias or hub id"
    _stderr(f"listening on {where} (models: {listed}{'; token required over TCP' if settings.token else ''}); "
            "SIGTERM or Ctrl-C stops")
    server = _draining_server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                             timeout_graceful_shutdown=30, server_header=False), jobs)
    try:
        server.run(sockets=[s for s in (tcp, unix) if s is not None])
    finally:
        jobs.stop(timeout=5)
    _stderr("stopped")
    return 130 if server.interrupted else 0


class _Log:
    """The engine's own reporter (loads, evictions): lines on the server's stderr."""

    def info(self, message: str) -> None:
        from difftool.server.jobs import _stderr

        _stderr(message)

    def warn(self, message: str) -> None:
        self.info(f"warning: {message}")

    def progress(self, label: str, total: int) -> Any:
        from contextlib import nullcontext

        return nullcontext(None)


def _draining_server(config: Any, jobs: Any) -> Any:
    """uvicorn's Server with difftool's stop: drain on SIGTERM, exit once no job runs (see the module docstring)."""
    import uvicorn

    from difftool.server.jobs import _stderr

    class DrainingServer(uvicorn.Server):
        def __init__(self) -> None:
            super().__init__(config)
            self.jobs, self.draining, self.interrupted = jobs, False, False
            self.drained = 0.0
            self.idle_since: float | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            # the signal is not recorded: uvicorn would raise it again after the shutdown, killing the process
            if sig == signal.SIGINT and self.interrupted:
                self.force_exit = self.should_exit = True  # a second Ctrl-C
                return
            if not self.draining:
                _stderr("stopping: new jobs are refused; the running one " +
                        ("stops at its next step" if sig == signal.SIGINT else "finishes first"))
            self.interrupted = self.interrupted or sig == signal.SIGINT
            self.drained = self.drained or time.time()
            self.draining = True
            self.jobs.drain(cancel_running=sig == signal.SIGINT)

        async def on_tick(self, counter: int) -> bool:
            if self.draining and self.jobs.idle:
                now = time.monotonic()
                self.idle_since = self.idle_since or now
                # a job that finished while draining and was not handed over in its response (a client polling
                # /v1/jobs) gets a few seconds for its images to be fetched
                if not self.jobs.unclaimed(self.drained) or now - self.idle_since >= LINGER:
                    self.should_exit = True
            return await super().on_tick(counter)

    return DrainingServer()
