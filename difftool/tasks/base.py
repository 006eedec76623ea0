"""What every task shares: the per-image pipeline call, results, and the checks against a pipeline's signature.

A task turns a spec into `Result`s, one per output image. Each image is one pipeline call with a CPU
`torch.Generator` seeded with that image's seed, so image i of a spec is exactly the plain diffusers call with
seed + i. Tasks never import each other; what they share is here and in `inputs`.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from difftool import metadata
from difftool.errors import Cancelled, UsageError


class Reporter(Protocol):
    """Where a running job says what it does (the CLI's stderr console, the server's job table, nothing)."""

    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def progress(self, label: str, total: int) -> AbstractContextManager[Callable[[], None] | None]:
        """A context giving a function to call after each step, or None when nobody watches."""
        ...


class Silent:
    """The Python API's default reporter: says nothing."""

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def progress(self, label: str, total: int) -> AbstractContextManager[Callable[[], None] | None]:
        return nullcontext(None)


@dataclass
class Result:
    """One output image: its pixels (or a writer that streams them), and the record embedded in the PNG (the
    spec of this very image, plus what ran)."""

    record: dict[str, Any]
    name_fields: dict[str, Any] = field(default_factory=dict)
    image: Any = None
    """A PIL image, or None when `stream` writes the PNG (large upscales)."""
    stream: Callable[[BinaryIO, dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        self.record = {k: v for k, v in self.record.items() if v is not None}  # unset: the spec's default

    def write(self, fh: BinaryIO) -> None:
        """Write the PNG with its metadata chunks to `fh`."""
        if self.stream is not None:
            self.stream(fh, self.record)
        else:
            self.image.save(fh, format="PNG", pnginfo=metadata.pnginfo(self.record))

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.write(buffer)
        return buffer.getvalue()

    @property
    def seed(self) -> int:
        return int(self.record["seed"])


@dataclass
class Step:
    """How a job reports progress and honours cancellation, handed to every pipeline call."""

    reporter: Reporter = field(default_factory=Silent)
    cancel: Any = None
    """A threading.Event-like object: set -> the job stops at the next step (Cancelled)."""


def call(pipe: Any, kwargs: dict[str, Any], seed: int | list[int], *, steps: int, label: str, step: Step) -> Any:
    """Call `pipe` once with a fresh CPU generator seeded with `seed` (a list: one generator per image of a batched
    call, as diffusers takes them), reporting each step."""
    import torch

    params = inspect.signature(pipe.__call__).parameters
    kwargs = dict(kwargs)
    if isinstance(seed, list):
        kwargs["generator"] = [torch.Generator("cpu").manual_seed(s) for s in seed]
    else:
        kwargs["generator"] = torch.Generator("cpu").manual_seed(seed)
    from difftool import stepcache

    stepcache.before_call(pipe, kwargs.get("num_inference_steps") or getattr(params.get("num_inference_steps"),
                                                                           "default", None))
    with step.reporter.progress(label, max(steps, 1)) as advance:
        if (advance is not None or step.cancel is not None) and "callback_on_step_end" in params:

            def on_step(_pipe: Any, _i: int, _t: Any, cb_kwargs: dict[str, Any]) -> dict[str, Any]:
                if step.cancel is not None and step.cancel.is_set():
                    raise Cancelled("cancelled.")
                if advance is not None:
                    advance()
                return cb_kwargs

            kwargs["callback_on_step_end"] = on_step
        if step.cancel is not None and step.cancel.is_set():
            raise Cancelled("cancelled.")
        try:
            return pipe(**kwargs)
        except ValueError as exc:
            usage = usage_error(exc)
            if usage:
                raise usage from exc
            raise


def usage_error(exc: BaseException) -> UsageError | None:
    """Pipelines report bad sizes/values as ValueError: pass those on as usage errors."""
    if isinstance(exc, ValueError):
        text = str(exc).splitlines()[0] if str(exc) else ""
        if any(w in text for w in ("divisible by", "must be", "has to be", "should be", "can't be", "cannot be")):
            return UsageError(text.rstrip(".") + ".")
    return None


def check_accepts(pipe: Any, given: dict[str, str], label: str) -> None:
    """Refuse (exit 2) any option the loaded pipeline does not take, rather than dropping it."""
    params = inspect.signature(pipe.__call__).parameters
    for kwarg, flag in given.items():
        if kwarg not in params:
            raise UsageError(f"{flag} is not accepted by {type(pipe).__name__} (model '{label}').")


def call_defaults(pipe: Any) -> dict[str, Any]:
    """The defaults the pipeline's __call__ uses, to record what actually ran."""
    return {
        name: p.default
        for name, p in inspect.signature(pipe.__call__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def base_record(loaded: Any, task: str) -> dict[str, Any]:
    """What every image records about the run: task, model, pipeline class, device, dtype, switches."""
    from difftool import __version__, spec

    return {
        "version": spec.VERSION,
        "difftool": __version__,
        "task": task,
        "model": loaded.ref.label,
        **({"prior": loaded.prior} if loaded.prior else {}),  # a combined folder: itself
        **({"config": loaded.ref.config} if loaded.ref.config else {}),
        "pipeline": type(loaded.pipe).__name__,
        "device": loaded.device,
        "dtype": loaded.dtype_name,
        "safety_checker": getattr(loaded.pipe, "safety_checker", None) is not None,
        **loaded.opts.switches(),
    }


def seeds(first: int, count: int) -> Iterator[int]:
    return iter(range(first, first + count))


@dataclass
class Context:
    """What the engine hands a task: the resolved model, a way to get its pipeline for a task (loaded once,
    cached, derived with from_pipe), the first seed, and how to report progress."""

    ref: Any
    """The resolved `references.ModelRef`."""
    pipeline: Callable[[str], Any]
    """`pipeline("text2img"|"img2img"|"inpaint"|"upscale")` -> `loading.Loaded`."""
    first_seed: int
    step: Step = field(default_factory=Step)
    tags: Any = None
    """`lora_tags.TagPlan` when the prompt has <lora:...> tags (their LoRAs are loaded with the pipeline)."""
    other: Callable[[str, str], Any] | None = None
    """`other(model reference, task)` -> another model's `loading.Loaded` (the hires fix's upscaler)."""
    guides: Any = None
    """`guides.Guides`: ControlNet control images and IP-Adapter image prompts, or None."""

    def defaults(self) -> dict[str, Any]:
        """The registry's defaults for this model (aliases and known hub ids), by spec field."""
        entry = self.ref.spec
        if entry is None:
            return {}
        values = {"steps": entry.steps, "guidance": entry.guidance, "width": entry.width, "height": entry.height,
                  "scheduler": entry.scheduler, "strength": entry.strength, "true_cfg": entry.true_cfg,
                  "max_sequence_length": entry.max_sequence_length,
                  **{k: v for k, v in entry.extra.items() if k in ("prior_steps", "prior_guidance", "noise_level",
                                                                   "tile")}}
        for key in ("steps", "prior_steps", "noise_level", "tile"):
            if values.get(key) is not None:
                values[key] = int(values[key])
        return {k: v for k, v in values.items() if v is not None}

    def value(self, spec: Any, key: str) -> Any:
        """The spec's value, else the registry default (None: the pipeline's own default)."""
        value = getattr(spec, key)
        return value if value is not None else self.defaults().get(key)


#: Spec field -> (pipeline kwarg, the flag named in errors), for the settings most pipelines take.
CALL_ARGS = {
    "negative": ("negative_prompt", "--negative"),
    "steps": ("num_inference_steps", "--steps"),
    "guidance": ("guidance_scale", "--guidance"),
    "width": ("width", "--width"),
    "height": ("height", "--height"),
    "prior_steps": ("prior_num_inference_steps", "--prior-steps"),
    "prior_guidance": ("prior_guidance_scale", "--prior-guidance"),
    "true_cfg": ("true_cfg_scale", "--true-cfg"),
    "max_sequence_length": ("max_sequence_length", "--max-sequence-length"),
}


def call_kwargs(pipe: Any, values: dict[str, Any], label: str) -> dict[str, Any]:
    """Pipeline kwargs for the spec values given (field -> value, None = unset), after refusing (exit 2) those
    the pipeline does not take."""
    from difftool import callrules

    given = {name: CALL_ARGS[name] for name, value in values.items() if value is not None and name in CALL_ARGS}
    check_accepts(pipe, {kwarg: flag for kwarg, flag in given.values()}, label)
    return callrules.true_cfg(pipe, {kwarg: values[name] for name, (kwarg, _) in given.items()})


def ran(pipe: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Steps, guidance and (unCLIP) prior settings that really ran: the kwargs, else the pipeline's defaults."""
    from difftool import schedulers

    defaults = call_defaults(pipe)
    out = {
        "steps": kwargs.get("num_inference_steps", defaults.get("num_inference_steps")),
        "guidance": kwargs.get("guidance_scale", defaults.get("guidance_scale")),
        "scheduler": schedulers.describe(pipe.scheduler) if hasattr(pipe, "scheduler") else None,
    }
    from difftool import callrules

    out.update(callrules.recorded(kwargs, defaults))  # true_cfg, max_sequence_length when given
    if "prior_num_inference_steps" in defaults:
        out["prior_steps"] = kwargs.get("prior_num_inference_steps", defaults.get("prior_num_inference_steps"))
        out["prior_guidance"] = kwargs.get("prior_guidance_scale", defaults.get("prior_guidance_scale"))
    return out


def text_kwargs(ctx: Context, spec: Any, pipe: Any, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The prompt's kwargs for the call (plain text, or weighted embeddings: `difftool.prompts`) with <lora:...>
    tags taken out and their weights set, and what to record about it. Takes `negative_prompt` out of `kwargs`."""
    from difftool import prompts

    negative = kwargs.pop("negative_prompt", None)
    text = spec.prompt
    weighting = prompts.check_weighting(spec.weighting)
    record: dict[str, Any] = {"weighting": weighting, "clip_skip": spec.clip_skip}
    if ctx.tags is not None:
        ctx.tags.activate(pipe, 0)
        text, negative = ctx.tags.texts[0], ctx.tags.negative if negative is not None else None
        record.update(lora_dir=spec.lora_dir, lora_tags=ctx.tags.record(0) or None)
    return prompts.prompt_kwargs(pipe, text, negative, weighting=weighting, clip_skip=spec.clip_skip), record


def image_result(out: Any, record: dict[str, Any], name_fields: dict[str, Any], step: Step) -> Result:
    """The first image of a pipeline output as a Result (its real size recorded), warning when the safety
    checker blacked it out."""
    image = out.images[0]
    nsfw = getattr(out, "nsfw_content_detected", None)
    if nsfw and nsfw[0]:
        step.reporter.warn(f"the safety checker blacked out the image of seed {record.get('seed')}.")
    return Result({"width": image.width, "height": image.height, **record}, name_fields, image=image)  # hires: its own
