"""The FastAPI application: the guard every request passes (token, body size), errors as JSON, and the native
jobs API the CLI and scripts use.

    POST   /v1/jobs                 a job spec (JSON) -> 202 {id, status, ...}; ?stream=1: the response is the job's
                                    server-sent events instead, and closing it cancels the job (&images=1: with PNGs)
    GET    /v1/jobs/{id}            queued | running (step/total) | done | failed | cancelled
    GET    /v1/jobs/{id}/events     server-sent events: state, progress, log, image, end
    GET    /v1/jobs/{id}/images/N.png
    DELETE /v1/jobs/{id}            cancel: a queued job at once, a running one at its next step
    GET    /v1/health, /v1/schema, /v1/models

Errors are `{"error": {"message", "type", "param", "code"}}` (OpenAI's shape; `code` is the CLI's exit code for a
job that failed) with a 4xx/5xx status, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request  # route signatures are read at run time (these modules load only to serve)

from difftool import __version__
from difftool.client import API_VERSION
from difftool.errors import UsageError
from difftool.server.jobs import Job, Jobs
from difftool.server.policy import Limits, Models, RequestError

VERSION_HEADER = "x-difftool-version"


@dataclass
class Service:
    """What every route needs: the jobs, the models, the limits, and A1111's current checkpoint."""

    jobs: Jobs
    models: Models
    limits: Limits = field(default_factory=Limits)
    token: str | None = None
    started: float = field(default_factory=time.time)
    checkpoint: str | None = None
    """A1111's `sd_model_checkpoint` (POST /sdapi/v1/options): the model of A1111 requests naming none."""

    def submit(self, fields: dict[str, Any]) -> Job:
        """Check a request's spec fields (paths, model, spec rules, limits) and queue it."""
        from difftool.server.policy import local_files

        if not isinstance(fields, dict):
            raise RequestError(400, "The body must be a JSON object of job spec fields (GET /v1/schema).")
        bad = local_files(fields)
        if bad:
            raise RequestError(400, f"{bad[0]} names a file on the server, which requests may not do: send images as "
                                    "base64 bytes (source_data, mask_data, an item's or image's data) and other "
                                    "references as aliases or hub ids.", bad[0].split("[")[0])
        fields = dict(fields)
        fields["model"] = self.models.match(fields.get("model"))
        job = build(fields)
        self.limits.check(job)
        if job.task == "upscale" and job.source_data:
            self._check_upscale(job)
        return self.jobs.submit(job)

    def _check_upscale(self, job: Any) -> None:
        from difftool import registry
        from difftool.tasks.inputs import decode_data

        width, height = _image_size(decode_data(job.source_data, "input image"))
        spec = registry.get(job.model or "")
        scale = 2 if spec is not None and spec.alias == "x2-latent" else 4  # the scale is known once loaded: the most
        self.limits.check_upscale(width, height, scale)

    def health(self) -> dict[str, Any]:
        jobs = self.jobs
        running = jobs.running
        return {
            "status": "draining" if jobs.draining else "loading" if jobs.loading else "ok",
            "difftool": __version__, "api": API_VERSION, "queued": len(jobs.pending), "queue_limit": jobs.limit,
            "running": running.id if running is not None else None, "jobs": dict(jobs.counts),
            "models": self.models.listing(), "loaded": jobs.loaded,
            "uptime": round(time.time() - self.started, 1),
            "limits": {"max_pixels": self.limits.max_pixels, "max_steps": self.limits.max_steps,
                       "max_images": self.limits.max_images, "max_body": self.limits.max_body},
        }


def build(fields: dict[str, Any]) -> Any:
    """A JobSpec from request fields; 400 naming the field (its spec name) when invalid."""
    from pydantic import ValidationError

    from difftool import spec

    try:
        return spec.__getattr__("JobSpec").model_validate(fields, context={"partial": False, "flags": False})
    except ValidationError as exc:
        errors = exc.errors()
        param = str(errors[0]["loc"][0]) if errors and errors[0].get("loc") else None
        raise RequestError(400, spec.describe_error(exc, flags=False), param) from None
    except UsageError as exc:
        raise RequestError(400, exc.message) from None


def _image_size(raw: bytes) -> tuple[int, int]:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw)) as im:
            return im.size
    except Exception:  # noqa: BLE001 - the engine reports bad images properly; here only the size matters
        return 0, 0


# ---- the guard: authentication, body size, version header -----------------------------------------------

class Guard:
    """ASGI middleware in front of everything: a bearer token on TCP (the Unix socket's 0600 mode is its
    authentication), the body-size limit (the body is read here, at most `max_body` bytes, then replayed), and
    the server's version on every response."""

    def __init__(self, app: Any, token: str | None, max_body: int) -> None:
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_versioned(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (VERSION_HEADER.encode(), __version__.encode())]}
            await send(message)

        if self.token and not _over_unix_socket(scope) and not self._authorized(scope):
            return await _json(send_versioned, 401, "A valid token is needed: send 'Authorization: Bearer TOKEN'.",
                               "authentication_error", extra=[(b"www-authenticate", b'Bearer realm="difftool"')])
        if scope["method"] in ("POST", "PUT", "PATCH"):
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                return await _json(send_versioned, 413, f"The request body is over this server's limit of "
                                   f"{self.max_body} bytes.", "invalid_request_error")
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    return await _json(send_versioned, 413, f"The request body is over this server's limit of "
                                       f"{self.max_body} bytes.", "invalid_request_error")
                chunks.append(chunk)
                if not message.get("more_body"):
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()  # then: the client's disconnect, when it happens

            return await self.app(scope, replay, send_versioned)
        return await self.app(scope, receive, send_versioned)

    def _authorized(self, scope: dict[str, Any]) -> bool:
        given = _header(scope, b"authorization") or ""
        scheme, _, value = given.partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":  # A1111 clients only know HTTP basic auth: any user, the token as password
            try:
                value = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return False
        elif scheme.lower() != "bearer":
            return False
        assert self.token is not None
        return hmac.compare_digest(value.encode("utf-8", "replace"), self.token.encode("utf-8"))


def _over_unix_socket(scope: dict[str, Any]) -> bool:
    server = scope.get("server")
    return bool(server) and server[1] is None


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _json(send: Any, status: int, message: str, kind: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(error_body(message, kind)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


def error_body(message: str, kind: str, param: str | None = None, code: Any = None) -> dict[str, Any]:
    """The JSON of every error response (OpenAI's shape, plus `detail` for FastAPI/A1111 clients)."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}, "detail": message}


# ---- waiting for jobs, streaming their events ------------------------------------------------------------

#: A failed job's exit code -> the HTTP status of a synchronous route (OpenAI, A1111).
STATUS_OF_CODE = {2: 400, 3: 404, 130: 409}


def job_failure(job: Job) -> RequestError:
    """The error a synchronous route answers for a job that failed or was cancelled."""
    error = job.error or {"message": "the job did not finish.", "type": "DifftoolError", "code": 1}
    code = int(error.get("code") or 1)
    kind = {3: "model_not_found", 130: "cancelled"}.get(code, "invalid_request_error" if code == 2 else "server_error")
    return RequestError(STATUS_OF_CODE.get(code, 500), str(error.get("message")), kind=kind)


async def wait(request: Any, service: Service, job: Job) -> bool:
    """Wait until `job` is over; False when the client went away first (the job is then cancelled)."""
    event = job.watch()
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        while not job.over:
            waiter = asyncio.ensure_future(event.wait())
            done, _ = await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
            if gone in done:
                waiter.cancel()
                service.jobs.cancel(job, "the client went away.")
                return False
            event.clear()
        return True
    finally:
        gone.cancel()
        job.unwatch(event)


async def _disconnected(request: Any) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def sse(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)}\n\n"


async def events(service: Service, job: Job, *, images: bool, owner: bool, base: str) -> AsyncIterator[str]:
    """The job's events as server-sent events, from the first; ends after the `end` event. `owner`: the stream
    of the request that submitted the job, whose closing cancels it (queued: dropped; running: next step)."""
    event = job.watch()
    cursor = 0
    try:
        while True:
            for kind, data in job.since(cursor):
                cursor += 1
                if kind == "image":
                    image = job.images[data["index"]]
                    data = {"index": image.index, "seed": image.seed, "record": image.record,
                            "name_fields": image.name_fields,
                            "url": f"{base}/v1/jobs/{job.id}/images/{image.index}.png",
                            **({"png": base64.b64encode(image.png).decode()} if images else {})}
                elif kind == "state" and data["status"] in ("done", "failed", "cancelled"):
                    yield sse("state", data)
                    yield sse("end", {**job.summary(base), "status": data["status"]})
                    return
                yield sse(kind, data)
            try:
                await asyncio.wait_for(event.wait(), timeout=5)
            except asyncio.TimeoutError:
                yield ": ping\n\n"  # keeps proxies open; a dead client shows here at the latest
            event.clear()
    finally:
        job.unwatch(event)
        if owner and not job.over:
            service.jobs.cancel(job, "the client went away.")
        elif owner and images:  # its PNGs went out in the stream
            service.jobs.release(job)


# ---- the application --------------------------------------------------------------------------------------

def create_app(service: Service) -> Any:
    """The ASGI application (FastAPI inside the Guard)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response, StreamingResponse
    from starlette.exceptions import HTTPException

    from difftool.server import a1111, openai_api

    app = FastAPI(title="difftool", version=__version__, docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.service = service

    @app.exception_handler(RequestError)
    async def _refused(_request: Request, exc: RequestError) -> Any:
        return JSONResponse(error_body(exc.message, exc.kind, exc.param), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> Any:
        return JSONResponse(error_body(str(exc.detail), "invalid_request_error"), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Any:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path"))
        message = f"{where}: {first.get('msg', 'is invalid')}." if where else str(first.get("msg", "invalid request"))
        return JSONResponse(error_body(message, "invalid_request_error", where or None), status_code=400)

    @app.exception_handler(UsageError)
    async def _usage(_request: Request, exc: UsageError) -> Any:
        return JSONResponse(error_body(exc.message, "invalid_request_error"), status_code=400)

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def body_object(request: Request) -> dict[str, Any]:
        from difftool.server.policy import json_object

        return json_object(await request.body())

    @app.get("/v1/health")
    async def health() -> Any:
        return service.health()

    @app.get("/v1/schema")
    async def schema() -> Any:
        from difftool import spec

        return spec.schema()

    @app.post("/v1/jobs", status_code=202)
    async def submit(request: Request, stream: bool = False, images: bool = False) -> Any:
        job = service.submit(await body_object(request))
        base = base_url(request)
        if stream:
            return StreamingResponse(events(service, job, images=images, owner=True, base=base),
                                     media_type="text/event-stream", headers={"cache-control": "no-store"})
        summary = {**job.summary(base), "position": service.jobs.position(job)}
        return JSONResponse(summary, status_code=202, headers={"location": f"/v1/jobs/{job.id}"})

    @app.get("/v1/jobs")
    async def listing(request: Request) -> Any:
        base = base_url(request)
        return {"jobs": [job.summary(base) for job in service.jobs.recent()]}

    def find(job_id: str) -> Job:
        job = service.jobs.get(job_id)
        if job is None:
            raise RequestError(404, f"No job '{job_id}' here (finished jobs are kept for a while only).", "id",
                               kind="not_found_error")
        return job

    @app.get("/v1/jobs/{job_id}")
    async def status(job_id: str, request: Request) -> Any:
        job = find(job_id)
        return {**job.summary(base_url(request)), "position": service.jobs.position(job)}

    @app.get("/v1/jobs/{job_id}/events")
    async def watch(job_id: str, request: Request, images: bool = False) -> Any:
        job = find(job_id)
        return StreamingResponse(events(service, job, images=images, owner=False, base=base_url(request)),
                                 media_type="text/event-stream", headers={"cache-control": "no-store"})

    @app.get("/v1/jobs/{job_id}/images/{index}.png")
    async def image(job_id: str, index: int) -> Any:
        job = find(job_id)
        if not 0 <= index < len(job.images):
            raise RequestError(404, f"Job '{job_id}' has no image {index} (yet).", "index", kind="not_found_error")
        return Response(job.images[index].png, media_type="image/png")

    @app.delete("/v1/jobs/{job_id}")
    async def cancel(job_id: str, request: Request) -> Any:
        job = find(job_id)
        service.jobs.cancel(job)
        return job.summary(base_url(request))

    openai_api.add_routes(app, service)
    a1111.add_routes(app, service)
    return Guard(app, service.token, service.limits.max_body)
