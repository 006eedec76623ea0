"""A subset of the AUTOMATIC1111 web UI API (`/sdapi/v1/...`), for the many tools that drive A1111.

`txt2img` and `img2img` become job specs: `sampler_name` (+ v1.9's `scheduler`) maps to difftool's schedulers
(`readers.samplers`, as `--from` reads A1111 images), `cfg_scale` -> guidance, `batch_size` x `n_iter` ->
num_images (seed + i, as A1111), `seed` -1 -> random, `enable_hr` -> the hires fix, `denoising_strength` ->
strength (img2img) or the hires denoise, `override_settings` `sd_model_checkpoint` -> the model and
`CLIP_stop_at_last_layers` -> clip skip. With the same settings the image is the CLI's. Settings that would
change the image and that difftool does not have (restore_faces, tiling, subseeds, styles, scripts) are refused
(400) rather than ignored; A1111's mask blur, inpaint-area and resize modes are not honoured (difftool's inpaint
and img2img sizing apply). Also `/progress`, `/interrupt`, `/png-info`, `/sd-models`, `/samplers`,
`/schedulers`, `/options` (sd_model_checkpoint) and `/scripts` (none).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from fastapi import Request  # route signatures are read at run time (these modules load only to serve)

from difftool.server.policy import RequestError, json_object

#: Request fields that change the image in A1111 and that difftool cannot honour: refused unless at these values.
UNSUPPORTED = {"restore_faces": (False, None), "tiling": (False, None), "subseed_strength": (0, 0.0, None),
               "script_name": (None, ""), "styles": (None, []), "hr_resize_x": (0, None), "hr_resize_y": (0, None),
               "seed_resize_from_h": (0, -1, None), "seed_resize_from_w": (0, -1, None),
               "hr_checkpoint_name": (None, "", "Use same checkpoint"), "hr_sampler_name": (None, "", "Use same sampler"),
               "hr_prompt": (None, ""), "hr_negative_prompt": (None, ""), "initial_noise_multiplier": (1, 1.0, None)}
#: A1111 schedule types (v1.9+) difftool has (`readers.samplers.SCHEDULES`), as `/schedulers` lists them.
SCHEDULE_TYPES = (("automatic", "Automatic"), ("uniform", "Uniform"), ("karras", "Karras"),
                  ("exponential", "Exponential"))


def add_routes(app: Any, service: Any) -> None:
    @app.post("/sdapi/v1/txt2img")
    async def txt2img(request: Request) -> Any:
        body = await _body(request)
        return await _run(request, service, body, _fields(body, "gen", service))

    @app.post("/sdapi/v1/img2img")
    async def img2img(request: Request) -> Any:
        body = await _body(request)
        images = body.get("init_images") or []
        if not isinstance(images, list) or len(images) != 1:
            raise RequestError(400, "init_images must hold exactly one image.", "init_images")
        mask = body.get("mask")
        fields = _fields(body, "inpaint" if mask else "img2img", service)
        fields["source_data"] = _b64(images[0], "init_images")
        if body.get("denoising_strength") is not None:
            fields["strength"] = body["denoising_strength"]
        if mask:
            fields["mask_data"] = _mask(_b64(mask, "mask"), invert=bool(body.get("inpainting_mask_invert")))
        return await _run(request, service, body, fields)

    @app.get("/sdapi/v1/progress")
    async def progress() -> Any:
        jobs = service.jobs
        job = jobs.running
        queued = len(jobs.pending)
        state = {"skipped": False, "interrupted": bool(job and job.cancel.is_set()), "job": job.id if job else "",
                 "job_count": queued + (1 if job else 0),
                 "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(job.started or job.created))
                 if job else "0", "job_no": len(job.images) if job else 0,
                 "sampling_step": job.step if job else 0, "sampling_steps": job.total if job else 0}
        return {"progress": round(job.progress(), 4) if job else 0.0,
                "eta_relative": round(job.eta() or 0.0, 2) if job else 0.0, "state": state, "current_image": None,
                "textinfo": job.label if job else None}

    @app.post("/sdapi/v1/interrupt")
    async def interrupt() -> Any:
        job = service.jobs.running
        if job is not None:
            service.jobs.cancel(job, "interrupted.")
        return {}

    @app.post("/sdapi/v1/png-info")
    async def png_info(request: Request) -> Any:
        body = await _body(request)
        return _png_info(base64.b64decode(_b64(body.get("image") or "", "image")))

    @app.get("/sdapi/v1/sd-models")
    async def sd_models() -> Any:
        out = []
        for name in service.models.listing():
            out.append({"title": name, "model_name": name, "hash": None, "sha256": None, "filename": name,
                        "config": None})
        return out

    @app.get("/sdapi/v1/samplers")
    async def samplers() -> Any:
        return _samplers()

    @app.get("/sdapi/v1/schedulers")
    async def schedulers() -> Any:
        return [{"name": name, "label": label, "aliases": None, "default_rho": -1, "need_inner_model": False}
                for name, label in SCHEDULE_TYPES]

    @app.get("/sdapi/v1/options")
    async def options() -> Any:
        return {"sd_model_checkpoint": service.checkpoint or _listed_default(service)}

    @app.post("/sdapi/v1/options")
    async def set_options(request: Request) -> Any:
        body = await _body(request)
        wanted = body.get("sd_model_checkpoint")
        if wanted is not None:
            service.models.match(str(wanted))  # 404 when it is not served
            service.checkpoint = str(wanted)
        return None

    @app.get("/sdapi/v1/scripts")
    async def scripts() -> Any:
        return {"txt2img": [], "img2img": []}


async def _body(request: Any) -> dict[str, Any]:
    return json_object(await request.body(), empty=True)


def _listed_default(service: Any) -> str:
    listed = service.models.listing()
    return listed[0] if listed else service.models.default()


def _b64(value: Any, field: str) -> str:
    """Base64 image data, without a `data:image/...;base64,` prefix; 400 naming the field when it is not."""
    if not isinstance(value, str) or not value:
        raise RequestError(400, f"{field} must be a base64 image.", field)
    data = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"{field} is not valid base64 image data.", field) from None
    return data


def _mask(data: str, invert: bool) -> str:
    if not invert:
        return data
    import io

    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(base64.b64decode(data))) as im:
        inverted = ImageOps.invert(im.convert("L"))
    out = io.BytesIO()
    inverted.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def _fields(body: dict[str, Any], task: str, service: Any) -> dict[str, Any]:
    """Spec fields of an A1111 txt2img/img2img request; 400 naming the field that cannot be honoured."""
    from difftool.readers import samplers

    for key, allowed in UNSUPPORTED.items():
        if key in body and allowed is not None and body[key] not in allowed:
            raise RequestError(400, f"{key} {body[key]!r} is not supported by difftool.", key)
    for name, script in (body.get("alwayson_scripts") or {}).items():
        args = script.get("args") if isinstance(script, dict) else None
        if args and any(a not in (False, None, [], {}) for a in args):
            raise RequestError(400, f"alwayson_scripts '{name}' is not supported by difftool.", "alwayson_scripts")
    overrides = body.get("override_settings") or {}
    model = overrides.get("sd_model_checkpoint") or service.checkpoint
    fields: dict[str, Any] = {"task": task, "model": service.models.match(model)}
    fields["prompt"] = body.get("prompt", "")
    if body.get("negative_prompt"):
        fields["negative"] = body["negative_prompt"]
    seed = body.get("seed", -1)
    if seed not in (None, -1, "-1"):
        fields["seed"] = seed
    for key, field in (("steps", "steps"), ("cfg_scale", "guidance"), ("width", "width"), ("height", "height")):
        if body.get(key) is not None:
            fields[field] = body[key]
    try:
        count = int(body.get("batch_size") or 1) * int(body.get("n_iter") or 1)
    except (TypeError, ValueError):
        raise RequestError(400, "batch_size and n_iter must be whole numbers.", "batch_size") from None
    if count != 1:
        fields["num_images"] = count
    sampler = body.get("sampler_name") or body.get("sampler_index")
    if sampler:
        schedule = body.get("scheduler")
        ours, honoured = samplers.a1111(str(sampler), str(schedule) if schedule else None)
        if ours is None:
            raise RequestError(400, f"sampler_name '{sampler}' has no diffusers equivalent in difftool "
                                    "(GET /sdapi/v1/samplers lists those that do).", "sampler_name")
        if not honoured:
            raise RequestError(400, f"scheduler '{schedule}' has no diffusers equivalent in difftool "
                                    "(GET /sdapi/v1/schedulers).", "scheduler")
        fields["scheduler"] = ours
    clip = overrides.get("CLIP_stop_at_last_layers")
    if clip is not None:
        from difftool import prompts

        skip = prompts.clip_skip_from_a1111(int(clip), _family(fields["model"]))
        if skip:
            fields["clip_skip"] = skip
    if task == "gen" and body.get("enable_hr"):
        fields["hires_scale"] = body.get("hr_scale") or 2
        if body.get("hr_second_pass_steps"):
            fields["hires_steps"] = body["hr_second_pass_steps"]
        if body.get("denoising_strength") is not None:
            fields["hires_denoise"] = body["denoising_strength"]
        if body.get("hr_upscaler"):
            fields["hires_upscaler"] = body["hr_upscaler"]
    return fields


def _family(model: str) -> str:
    from difftool import registry

    spec = registry.get(model)
    if spec is None:
        return "sd"
    return "sdxl" if spec.family == "sdxl" else "sd2" if spec.alias.startswith("sd2") else "sd"


async def _run(request: Any, service: Any, body: dict[str, Any], fields: dict[str, Any]) -> Any:
    """Queue, wait, answer as A1111 does: images (base64 PNGs), the request, and `info` (a JSON string)."""
    from fastapi.responses import Response

    from difftool import metadata
    from difftool.server.app import job_failure, wait

    job = service.submit(fields)
    if not await wait(request, service, job):
        return Response(status_code=499)
    if job.status == "failed":
        raise job_failure(job)
    images = job.images  # interrupted: what was made, as A1111 answers
    records = [im.record for im in images]
    first = records[0] if records else {}
    seeds = [r.get("seed") for r in records]
    info = {
        "prompt": first.get("prompt", fields.get("prompt")), "all_prompts": [r.get("prompt") for r in records],
        "negative_prompt": first.get("negative") or "", "all_negative_prompts": [r.get("negative") or "" for r in records],
        "seed": seeds[0] if seeds else None, "all_seeds": seeds, "subseed": -1, "all_subseeds": [-1] * len(seeds),
        "subseed_strength": 0, "width": first.get("width"), "height": first.get("height"),
        "sampler_name": _sampler_name(first.get("scheduler")), "cfg_scale": first.get("guidance"),
        "steps": first.get("steps"), "batch_size": len(records), "restore_faces": False,
        "sd_model_name": first.get("model"), "sd_model_hash": None, "denoising_strength": first.get("strength"),
        "clip_skip": first.get("clip_skip"), "infotexts": [metadata.infotext(r) for r in records], "styles": [],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(job.created)), "index_of_first_image": 0,
        "is_using_inpainting_conditioning": False, "version": f"difftool {first.get('difftool', '')}".strip(),
        "interrupted": job.status == "cancelled",
    }
    send = body.get("send_images", True) is not False
    out = {"images": [base64.b64encode(im.png).decode() for im in images] if send else [],
           "parameters": {k: v for k, v in body.items() if k not in ("init_images", "mask")},
           "info": json.dumps(info, default=str)}
    service.jobs.release(job)
    from fastapi.responses import JSONResponse

    return JSONResponse(out)


def _sampler_name(scheduler: Any) -> Any:
    from difftool.schedulers import A1111_NAMES

    return A1111_NAMES.get(scheduler, scheduler) if scheduler else None


def _samplers() -> list[dict[str, Any]]:
    """A1111 sampler names (v1.9 style: the schedule is separate) difftool has, with A1111's aliases."""
    from difftool.readers.samplers import A1111_BASES
    from difftool.schedulers import A1111_NAMES, SCHEDULERS

    out = []
    for a1111_name, base in A1111_BASES.items():
        if base not in SCHEDULERS:
            continue
        label = A1111_NAMES.get(base, a1111_name)
        schedules = [s for s in ("karras", "exponential") if f"{base}-{s}" in SCHEDULERS]
        out.append({"name": label, "aliases": [base], "options": {"scheduler": ", ".join(["uniform", *schedules])}})
    return out


def _png_info(raw: bytes) -> dict[str, Any]:
    """A1111's png-info: the infotext (`info`), the other text chunks (`items`) and the infotext parsed."""
    import os
    import tempfile

    from difftool.readers import a1111
    from difftool.readers.containers import ReadError, read_container

    with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as fh:
        fh.write(raw)
        name = fh.name
    try:
        box = read_container(name)
    except ReadError as exc:
        raise RequestError(400, f"image: {exc}", "image") from None
    finally:
        os.unlink(name)
    info = box.text.get("parameters", "")
    items = {k: v for k, v in box.text.items() if k != "parameters"}
    parameters: dict[str, Any] = {}
    if info:
        prompt, negative, pairs = a1111.split(info)
        parameters = {"Prompt": prompt, "Negative prompt": negative or "", **dict(pairs)}
        size = str(parameters.get("Size", ""))
        if "x" in size:
            parameters["Size-1"], parameters["Size-2"] = size.split("x", 1)
    return {"info": info, "items": items, "parameters": parameters}
