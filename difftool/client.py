"""The CLI's side of `difftool serve`: find a running server, send it a spec, and get its images back.

A generation command looks for a server before it loads anything: `$DIFFTOOL_SERVER` (`http://HOST:PORT`,
`https://...`, `unix:/PATH`), else the per-user Unix socket (`socket_path()`), unless `--no-server`. It then sends
each spec to `POST /v1/jobs?stream=1&images=1` and reads the job's server-sent events: log lines and progress go
to stderr as a local run's would, each image arrives with its record (the PNG's metadata) and its output-name
fields, and the command writes it exactly as a local run writes its own. Input images are sent as bytes, with
their path as a label, so the PNG records the same path. A server that is dead, unreachable, of another
version, or that refuses a spec (a model it does not serve, a local file it may not read, a full queue) is
passed over with one line on stderr, and the command runs here.

Only the standard library is used (http.client over TCP or the Unix socket): no torch, numpy or PIL, so a warm
`difftool gen` costs the CLI's own start-up and the model's compute.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from difftool import __version__
from difftool.errors import Cancelled, DifftoolError, InputError, ModelUnavailable, UsageError

ENV_SERVER = "DIFFTOOL_SERVER"
ENV_TOKEN = "DIFFTOOL_TOKEN"
API_VERSION = 1
"""The native API's version (`/v1/health`): the client passes over a server whose API or difftool version differs."""
SOCKET_NAME = "server.sock"
#: Seconds: to connect and say hello; then between two events of a running job (the server pings every 5 s).
HELLO_TIMEOUT = 5.0
STREAM_TIMEOUT = 120.0


def socket_path() -> Path:
    """The per-user Unix socket: `server.sock` in platformdirs' user runtime folder ($XDG_RUNTIME_DIR/difftool)."""
    import warnings

    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine
        warnings.simplefilter("ignore")
        from platformdirs import user_runtime_dir

        return Path(user_runtime_dir("difftool")) / SOCKET_NAME


class Unavailable(Exception):
    """The server cannot take this spec (or any): the command runs here. `quiet`: without saying so."""

    def __init__(self, reason: str, quiet: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.quiet = reason, quiet


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass
class Endpoint:
    """Where a server listens: a Unix socket path, or an http(s) host and port."""

    label: str
    unix: str | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    tls: bool = False

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        if text.startswith("unix:"):
            path = text[len("unix:"):]
            path = path[2:] if path.startswith("//") else path
            return cls(f"unix:{path}", unix=path)
        parts = urlsplit(text if "://" in text else f"http://{text}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"{ENV_SERVER}={text!r} is not http://HOST:PORT, https://HOST:PORT or unix:/PATH.")
        tls = parts.scheme == "https"
        return cls(f"{parts.scheme}://{parts.netloc}", host=parts.hostname, port=parts.port or (443 if tls else 80),
                   tls=tls)

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        if self.unix is not None:
            return _UnixConnection(self.unix, timeout)
        cls = http.client.HTTPSConnection if self.tls else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout)


@dataclass
class RemoteResult:
    """An image made by the server: what `engine.run` yields locally (record, name fields, the PNG)."""

    record: dict[str, Any]
    name_fields: dict[str, Any]
    data: bytes
    image: Any = None

    def write(self, fh: Any) -> None:
        fh.write(self.data)

    def png(self) -> bytes:
        return self.data

    @property
    def seed(self) -> int:
        return int(self.record["seed"])


def find(say: Any, flags: dict[str, Any]) -> Server | None:
    """The server this command should use, or None: `--no-server`, no server, or one passed over (one line)."""
    if flags.get("no_server"):
        return None
    given = os.environ.get(ENV_SERVER, "").strip()
    if given:
        endpoint = Endpoint.parse(given)
    else:
        path = socket_path()
        if not path.exists():
            return None
        endpoint = Endpoint(f"unix:{path}", unix=str(path))
    server = Server(endpoint, os.environ.get(ENV_TOKEN) or None)
    try:
        if flags.get("allow_pickle") or flags.get("refresh"):
            raise Unavailable("does not take --allow-pickle or --refresh (the server's policy decides)")
        server.hello()
    except Unavailable as exc:
        server.pass_over(say, exc)
        return None
    return server


@dataclass
class Server:
    """A running `difftool serve` this command sends its specs to."""

    endpoint: Endpoint
    token: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def headers(self, json_body: bool = False) -> dict[str, str]:
        out = {"x-difftool-client": __version__, "accept": "application/json, text/event-stream"}
        if self.token and self.endpoint.unix is None:
            out["authorization"] = f"Bearer {self.token}"
        if json_body:
            out["content-type"] = "application/json"
        return out

    def pass_over(self, say: Any, exc: Unavailable) -> None:
        if not exc.quiet:
            say.warn(f"not using the difftool server at {self.endpoint.label}: it {exc.reason}; running here.")

    def hello(self) -> None:
        """Check that a difftool server of this very version answers (Unavailable otherwise)."""
        conn = self.endpoint.connect(HELLO_TIMEOUT)
        try:
            conn.request("GET", "/v1/health", headers=self.headers())
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unavailable(f"does not answer ({_reason(exc)})") from None
        finally:
            conn.close()
        if response.status == 401:
            raise Unavailable("needs a token (set DIFFTOOL_TOKEN)" if not self.token else "refused the token")
        try:
            info = json.loads(body)
        except ValueError:
            info = None
        if response.status != 200 or not isinstance(info, dict) or "difftool" not in info:
            raise Unavailable(f"is not a difftool server (HTTP {response.status})")
        if info.get("difftool") != __version__ or info.get("api") != API_VERSION:
            raise Unavailable(f"is difftool {info.get('difftool')}, not {__version__}")
        if info.get("status") == "draining":
            raise Unavailable("is shutting down")
        self.info = info

    def run(self, job: Any, say: Any) -> Iterator[RemoteResult] | None:
        """Submit one spec; the iterator of its images, or None when the server passes it (said on stderr)."""
        try:
            body = json.dumps(payload(job)).encode()
            conn = self.endpoint.connect(HELLO_TIMEOUT)
            try:
                conn.request("POST", "/v1/jobs?stream=1&images=1", body=body, headers=self.headers(True))
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise Unavailable(f"does not answer ({_reason(exc)})") from None
            if response.status != 200:
                message = _error_message(response.read())
                conn.close()
                raise Unavailable(f"refused the job ({response.status}: {message.rstrip('.')})")
        except Unavailable as exc:
            self.pass_over(say, exc)
            return None
        if conn.sock is not None:
            conn.sock.settimeout(STREAM_TIMEOUT)
        return _results(conn, response, job, say)


def payload(job: Any) -> dict[str, Any]:
    """The spec as the server takes it: input images as bytes labelled with their path, the model's folder as an
    absolute path. Unavailable for a spec that names other local files (LoRA files, a tiny VAE folder...)."""
    from difftool import references, spec
    from difftool.server.policy import local_files

    fields = spec.dump(job)
    if job.model:
        ref = references.resolve(job.model, config=job.config)
        if ref.kind in ("folder", "file"):
            fields["model"] = str(ref.path)
    if fields.get("lora_dir") and "<" not in (job.prompt or "") + (job.negative or ""):
        fields.pop("lora_dir")  # no <lora:...> tag to look up: the folders change nothing (and are not recorded)
    for key in ("source", "mask"):
        if fields.get(key) is not None and fields.get(f"{key}_data") is None:
            fields[key], fields[f"{key}_data"] = _inline(fields[key])
    for item in fields.get("items") or []:
        if item.get("image") is not None and item.get("data") is None:
            item["image"], item["data"] = _inline(item["image"])
    for key in ("control", "image_prompt"):
        for entry in fields.get(key) or []:
            image = entry.get("image")
            image = {"path": image} if isinstance(image, str) else image
            if isinstance(image, dict) and image.get("path") is not None and image.get("data") is None:
                image["path"], image["data"] = _inline(image["path"])
            entry["image"] = image
    bad = local_files(fields)
    if bad:
        raise Unavailable(f"does not read local files such as {bad[0]}")
    return fields


def _inline(path: str) -> tuple[str, str]:
    """(the path the record names, the file's bytes as base64); a file that cannot be read is left to the local
    run, which reports it as it always does."""
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError:
        raise Unavailable(f"cannot be sent {path}", quiet=True) from None
    return str(p.resolve()), base64.b64encode(data).decode()


def _results(conn: http.client.HTTPConnection, response: Any, job: Any, say: Any) -> Iterator[RemoteResult]:
    """The images of a streamed job, relaying its log lines and progress; the job's failure as the error a local
    run raises. Leaving early (Ctrl-C, an error) closes the stream, which cancels the job on the server."""
    bars = _Bars(say)
    ended = False
    try:
        for kind, data in _events(response):
            if kind == "log":
                (say.warn if data.get("level") == "warning" else say.info)(str(data.get("message", "")))
            elif kind == "progress":
                bars.update(str(data.get("label", "")), int(data.get("step", 0)), int(data.get("total", 0)))
            elif kind == "image":
                bars.close()
                fields = dict(data.get("name_fields") or {})
                if "dir" in fields and job.source:  # upscale's {dir}: the input's folder as typed, as locally
                    fields["dir"] = str(Path(job.source).expanduser().parent)
                yield RemoteResult(data["record"], fields, base64.b64decode(data["png"]))
            elif kind == "end":
                ended = True
                bars.close()
                if data.get("status") != "done":
                    raise _error(data.get("error") or {}, data.get("status"))
                return
        if not ended:
            raise DifftoolError("The difftool server closed the connection before the job ended (see its log).")
    except (OSError, http.client.HTTPException) as exc:
        raise DifftoolError(f"Lost the difftool server while the job ran ({_reason(exc)}).") from None
    finally:
        bars.close()
        conn.close()


def _events(response: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Server-sent events: (event name, JSON data)."""
    kind, data = "message", []
    while True:
        line = response.readline()
        if not line:
            return
        text = line.decode("utf-8").rstrip("\r\n")
        if not text:
            if data:
                yield kind, json.loads("\n".join(data))
            kind, data = "message", []
        elif text.startswith(":"):
            continue
        elif text.startswith("event:"):
            kind = text[6:].strip()
        elif text.startswith("data:"):
            data.append(text[5:].lstrip())


def _error(error: dict[str, Any], status: Any) -> DifftoolError:
    """A job's failure as the exception (and so the exit code) a local run would have raised."""
    from difftool.spec import SpecError

    message = str(error.get("message") or f"the job ended: {status}.")
    classes = {"InputError": InputError, "SpecError": SpecError, "UsageError": UsageError,
               "ModelUnavailable": ModelUnavailable, "Cancelled": Cancelled}
    cls = classes.get(str(error.get("type")))
    if cls is None:
        cls = {2: UsageError, 3: ModelUnavailable, 130: Cancelled}.get(int(error.get("code") or 1), DifftoolError)
    return cls(message)


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        return str(data["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace").strip() or "no reason given"


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class _Bars:
    """The server's progress events as the console's progress bars (only where a local run shows them)."""

    def __init__(self, say: Any) -> None:
        self.say = say
        self.enabled = bool(getattr(say, "bars_enabled", lambda: False)())
        self.label: str | None = None
        self.context: Any = None
        self.advance: Any = None
        self.step = 0

    def update(self, label: str, step: int, total: int) -> None:
        if not self.enabled:
            return
        if label != self.label:
            self.close()
            self.label, self.step = label, 0
            self.context = self.say.progress(label, max(total, 1))
            self.advance = self.context.__enter__()
        while self.advance is not None and self.step < step:
            self.step += 1
            self.advance()

    def close(self) -> None:
        if self.context is not None:
            self.context.__exit__(None, None, None)
        self.context = self.advance = self.label = None
