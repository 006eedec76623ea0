"""The OpenAI Images API: `/v1/images/generations`, `/v1/images/edits`, `/v1/images/variations`, `/v1/models`.

Each request becomes one job spec. OpenAI's fields: `prompt`, `n` -> num_images, `size` ("WxH" or "auto"),
`response_format` (`b64_json`, the default here, or `url`: the job's PNG on this server, kept a while), `model` (an
id of `GET /v1/models`; OpenAI's own model names such as `dall-e-3` or `gpt-image-1` mean the default model).
difftool's settings come as extra fields (`extra_body` in the openai client): any spec field of the task, by its
name (`seed`, `steps`, `guidance`, `negative`, `scheduler`, `strength`, ...), and `negative_prompt`. Masks follow
OpenAI: the transparent part of the mask is repainted (a mask without alpha follows difftool: white = repaint).
Every PNG carries the same metadata chunks as a CLI image.
"""

from __future__ import annotations

import base64
import io
import re
import time
from typing import Any

from fastapi import Request  # route signatures are read at run time (these modules load only to serve)

from difftool.server.policy import RequestError

#: OpenAI request fields that need nothing from us (accepted, ignored) when left at these values (None: any).
IGNORED = {"quality": None, "style": None, "user": None, "moderation": None, "output_compression": None,
           "safety_identifier": None, "input_fidelity": None, "background": ("auto", "opaque"),
           "output_format": ("png",), "stream": (False, "false"), "partial_images": (0, "0")}
#: Other names for spec fields, as other image APIs spell them.
ALIASES = {"negative_prompt": "negative", "guidance_scale": "guidance", "cfg_scale": "guidance",
           "num_inference_steps": "steps"}
#: Spec fields a request's extras may not set: what the endpoint itself fills in, and the machine's business.
NOT_EXTRA = {"version", "task", "model", "prompt", "num_images", "width", "height", "source", "source_sha256",
             "source_data", "mask", "mask_sha256", "mask_data", "items", "device", "dtype", "offload", "compile",
             "safety_checker", "variant"}
SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")


def add_routes(app: Any, service: Any) -> None:
    @app.get("/v1/models")
    async def models() -> Any:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": int(service.started),
                                            "owned_by": "difftool"} for name in service.models.listing()]}

    @app.post("/v1/images/generations")
    async def generations(request: Request) -> Any:
        body = await _json_body(request)
        fields = _common(body, "gen")
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise RequestError(400, "prompt is required (a string).", "prompt")
        fields["prompt"] = prompt
        return await _run(request, service, fields, body.get("response_format"))

    @app.post("/v1/images/edits")
    async def edits(request: Request) -> Any:
        form = await request.form()
        body = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        image = _one_file(form, "image", required=True)
        mask = _one_file(form, "mask", required=False)
        prompt = body.get("prompt")
        if not prompt:
            raise RequestError(400, "prompt is required.", "prompt")
        fields = _common(body, "inpaint" if mask is not None else "img2img")
        fields.update(prompt=prompt, source_data=base64.b64encode(await image.read()).decode())
        if mask is not None:
            fields["mask_data"] = base64.b64encode(_mask(await mask.read())).decode()
        return await _run(request, service, fields, body.get("response_format"))

    @app.post("/v1/images/variations")
    async def variations(request: Request) -> Any:
        form = await request.form()
        body = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        image = _one_file(form, "image", required=True)
        if not body.get("model") or _openai_name(body["model"]):
            unclip = service.models.unclip()
            if unclip is None:
                raise RequestError(404, "No unCLIP (Kandinsky 2.1/2.2) model is served here, which variations need.",
                                   "model", kind="model_not_found")
            body["model"] = unclip
        fields = _common(body, "variation")
        fields["source_data"] = base64.b64encode(await image.read()).decode()
        return await _run(request, service, fields, body.get("response_format"))


async def _json_body(request: Any) -> dict[str, Any]:
    from difftool.server.policy import json_object

    return json_object(await request.body())


def _openai_name(model: Any) -> bool:
    return isinstance(model, str) and model.startswith(("dall-e", "gpt-image"))


def _common(body: dict[str, Any], task: str) -> dict[str, Any]:
    """The spec fields of OpenAI's common parameters and difftool's extras; 400 naming any field we cannot honour."""
    from difftool import spec

    fields: dict[str, Any] = {"task": task}
    model = body.get("model")
    fields["model"] = None if model in (None, "") or _openai_name(model) else model
    n = body.get("n")
    if n not in (None, ""):
        fields["num_images"] = n
    size = body.get("size")
    if size not in (None, "", "auto"):
        match = SIZE.match(str(size))
        if not match:
            raise RequestError(400, f"size '{size}' is not WIDTHxHEIGHT (or auto).", "size")
        fields["width"], fields["height"] = int(match[1]), int(match[2])
    if body.get("response_format") not in (None, "b64_json", "url"):
        raise RequestError(400, "response_format must be b64_json or url.", "response_format")
    for key, value in body.items():
        if key in ("prompt", "model", "n", "size", "response_format", "image", "mask", "image[]"):
            continue
        if key in IGNORED:
            allowed = IGNORED[key]
            if allowed is not None and value not in allowed and value is not None:
                raise RequestError(400, f"{key} {value!r} is not supported by difftool (it takes "
                                        f"{' or '.join(map(str, allowed))}).", key)
            continue
        name = ALIASES.get(key, key)
        if name in NOT_EXTRA or name not in spec.TASK_FIELDS[task]:
            raise RequestError(400, f"Unknown or unsupported field '{key}' for {task}.", key)
        fields[name] = value
    return fields


def _one_file(form: Any, name: str, required: bool) -> Any:
    files = [v for v in [*form.getlist(name), *form.getlist(f"{name}[]")] if not isinstance(v, str)]
    if len(files) > 1:
        raise RequestError(400, f"difftool takes one {name} per request, not {len(files)}.", name)
    if not files:
        if required:
            raise RequestError(400, f"{name} is required (a file).", name)
        return None
    return files[0]


def _mask(raw: bytes) -> bytes:
    """OpenAI's mask convention -> difftool's: the transparent part (alpha < 50%) is repainted. A mask without
    alpha is taken as it is (white = repaint)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as im:
            if "A" not in im.getbands() and "transparency" not in im.info:
                return raw
            alpha = im.convert("RGBA").getchannel("A")
    except (UnidentifiedImageError, OSError, ValueError):
        return raw  # the engine reports an unreadable mask
    out = io.BytesIO()
    alpha.point(lambda a: 255 if a < 128 else 0).save(out, format="PNG")
    return out.getvalue()


async def _run(request: Any, service: Any, fields: dict[str, Any], response_format: Any) -> Any:
    """Queue the job, wait for it, and answer in OpenAI's shape."""
    from fastapi.responses import JSONResponse, Response

    from difftool.server.app import job_failure, wait

    job = service.submit(fields)
    if not await wait(request, service, job):
        return Response(status_code=499)
    if job.status != "done":
        raise job_failure(job)
    base = str(request.base_url).rstrip("/")
    if response_format == "url":
        data = [{"url": f"{base}/v1/jobs/{job.id}/images/{im.index}.png"} for im in job.images]
    else:
        data = [{"b64_json": base64.b64encode(im.png).decode()} for im in job.images]
        service.jobs.release(job)
    first = job.images[0].record if job.images else {}
    size = f"{first.get('width')}x{first.get('height')}" if first.get("width") else None
    return JSONResponse({"created": int(time.time()), "data": data, "output_format": "png",
                         **({"size": size} if size else {})})
