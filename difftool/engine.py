"""The engine: one long-lived object that owns loaded pipelines and runs job specs.

    from difftool import Engine
    engine = Engine()
    for result in engine.run({"model": "tiny", "prompt": "a red circle on a white background", "seed": 1}):
        result.image.save(f"circle-{result.seed}.png")  # or result.write(fh): the PNG with its metadata

Pipelines are cached by what makes them differ (the resolved model and revision, device, dtype, switches, LoRA
set): one load serves gen, img2img and inpaint on the same weights (diffusers' `from_pipe`, no second read from
disk), and the least recently used are evicted when a new one would not fit `memory_budget`. The CLI, the server
and `difftool batch` all run specs through here; it is the only code that drives torch/diffusers at run time.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from difftool import registry
from difftool.errors import ModelUnavailable
from difftool.tasks.base import Context, Reporter, Result, Silent, Step

#: Random seeds are drawn below this (what most tools print and accept); any seed up to spec.MAX_SEED is valid.
RANDOM_SEEDS = 2**32
#: The model of each task when a spec names none: unCLIP tasks need a Kandinsky, upscale an upscaler.
TASK_MODELS = {"upscale": "x4", "variation": "kandinsky22", "interpolate": "kandinsky22"}


def draw_seed() -> int:
    """A random seed, reported and recorded so the image can be remade."""
    return secrets.randbelow(RANDOM_SEEDS)


@dataclass
class Entry:
    """One loaded model: its pipeline per task (derived from the first with from_pipe) and its size in memory."""

    base: Any
    tasks: dict[str, Any] = field(default_factory=dict)
    size: int = 0
    scheduler: Any = None
    """The scheduler it was loaded with: every job starts from it, as in a fresh process (tasks swap schedulers)."""


class Engine:
    """Runs job specs; keeps pipelines loaded between runs (see the module docstring)."""

    def __init__(self, *, memory_budget: float | None = None, reporter: Reporter | None = None,
                 allow_pickle: bool = False, refresh: bool = False, threads: int | None = None) -> None:
        """`memory_budget`: GB of weights to keep loaded (None: no limit; the model in use always stays).
        `allow_pickle`/`refresh`: the caller's policies for every load (pickle weights; Hub update checks).
        `threads`: CPU threads for torch (None: the usable cores)."""
        self.budget = int(memory_budget * 2**30) if memory_budget is not None else None
        self.reporter: Reporter = reporter or Silent()
        self.allow_pickle, self.refresh, self.threads = allow_pickle, refresh, threads
        self.loads = 0
        """Pipelines read from disk so far (a task switch through from_pipe is not a load)."""
        self.evictions = 0
        self._entries: OrderedDict[tuple[Any, ...], Entry] = OrderedDict()
        self._lock = threading.RLock()

    # ---- running specs ---------------------------------------------------------------------------------

    def run(self, job: Any, *, cancel: Any = None, reporter: Reporter | None = None) -> Iterator[Result]:
        """The images of one spec (a JobSpec, or a dict of its fields), made one by one as you iterate.

        `cancel`: a threading.Event; once set, the job stops at the next denoising step (errors.Cancelled).
        Invalid specs raise SpecError (exit 2), missing models ModelUnavailable (exit 3), before any image.
        """
        from difftool import spec as specs
        from difftool.tasks import edit, gen, unclip, upscale

        job = job if not isinstance(job, dict) else specs.build(job, flags=False)
        say = reporter or self.reporter
        ctx = self._context(job, cancel, say)
        runner = {"gen": gen.run, "img2img": edit.run, "inpaint": edit.run, "upscale": upscale.run,
                  "variation": unclip.variation, "interpolate": unclip.interpolate}[job.task]
        yield from runner(ctx, job)

    def run_batch(self, jobs: list[Any], batch_size: int, *, cancel: Any = None,
                  reporter: Reporter | None = None) -> Iterator[tuple[int, Result]]:
        """The images of several gen specs that differ only in prompt, seed and count (`tasks.gen.batch_key`),
        `batch_size` images per pipeline call, each image with its own CPU generator (image i of a spec: its seed
        + i, as `run` makes it). Yields (index of the spec in `jobs`, result), in order. `difftool batch` uses it."""
        from difftool import spec as specs
        from difftool.tasks import gen

        jobs = [job if not isinstance(job, dict) else specs.build(job, flags=False) for job in jobs]
        key = gen.batch_key(jobs[0])
        if key is None or any(gen.batch_key(job) != key for job in jobs):
            raise ValueError("run_batch takes gen specs that differ only in prompt, seed and num_images")
        say = reporter or self.reporter
        ctx = self._context(jobs[0], cancel, say)
        images = []
        for index, job in enumerate(jobs):
            first = ctx.first_seed if index == 0 else job.seed if job.seed is not None else self._random_seed(say)
            images += [(index, job.prompt, first + i) for i in range(job.num_images)]
        for start in range(0, len(images), max(1, batch_size)):
            chunk = images[start:start + max(1, batch_size)]
            made = gen.run_batch(ctx, jobs[0], [(prompt, seed) for _, prompt, seed in chunk])
            yield from ((index, result) for (index, _, _), result in zip(chunk, made))

    def _context(self, job: Any, cancel: Any, say: Reporter) -> Context:
        """What a task needs to run `job`: its model (checked, not loaded yet), pipelines, seed, progress."""
        ref = self.resolve(job)
        if ref.repo_id and not self.refresh:
            from difftool import hub

            hub.require_cached_offline(ref.repo_id, ref.revision)
        opts = self.load_options(job)
        tags = _tag_plan(job, opts.lora, self.allow_pickle)
        if tags is not None:
            opts = replace(opts, lora=tags.adapters)  # the tagged LoRAs load with the pipeline (part of its key)
        first = job.seed if job.seed is not None else self._random_seed(say)
        used: set[tuple[Any, ...]] = set()  # the pipelines this job has touched (see `pipeline`)
        return Context(ref, lambda task: self.pipeline(ref, task, opts, say, used), first, Step(say, cancel),
                       tags=tags, other=lambda text, task: self.pipeline(self._other(text), task, self._plain(opts),
                                                                        say, used),
                       guides=self.guides(job, say))

    @staticmethod
    def _other(text: str) -> Any:
        from difftool import references

        return references.resolve(text)

    def _plain(self, opts: Any) -> Any:
        """Load options for a helper model (the hires fix's upscaler): the same device and dtype, no switches."""
        from difftool.loading import LoadOptions

        return LoadOptions(device=opts.device, dtype=opts.dtype, offload=opts.offload, allow_pickle=self.allow_pickle,
                           refresh=self.refresh)

    @staticmethod
    def _random_seed(say: Reporter) -> int:
        seed = draw_seed()
        say.info(f"seed {seed} (random; pass --seed {seed} to remake these images)")
        return seed

    def resolve(self, job: Any) -> Any:
        """The spec's model reference, resolved (no network): its own, else the task's default model."""
        from difftool import references

        ref = references.resolve(job.model or TASK_MODELS.get(job.task, registry.DEFAULT_MODEL), config=job.config)
        if job.task == "upscale" and ref.spec is not None and ref.spec.task != "upscale":
            raise ModelUnavailable(f"'{ref.text}' is a {ref.spec.description} model, not an upscaler; use -m x4, "
                                   "x2-latent or ldm-x4 (or a hub id / folder of an upscaler pipeline).")
        return ref

    def load_options(self, job: Any) -> Any:
        """The spec's load settings (the cache key's half besides the model), LoRAs parsed."""
        from difftool import lora
        from difftool.loading import LoadOptions

        adapters = tuple(replace(lora.parse(item.ref, self.allow_pickle), scale=item.scale) for item in job.lora)
        prior = job.prior if job.prior and job.prior != job.model else None  # a combined folder records itself
        return LoadOptions(
            device=job.device or "auto", dtype=job.dtype or "auto", safety_checker=job.safety_checker,
            variant=job.variant, offload=job.offload, vae_tiling=job.vae_tiling, vae_slicing=job.vae_slicing,
            compile=job.compile, tiny_vae=job.tiny_vae, lora=adapters, prior=prior, allow_pickle=self.allow_pickle,
            refresh=self.refresh, controlnets=tuple(c.model for c in job.control),
            ip_adapter=(job.ip_adapter or "auto") if job.image_prompt else None, ip_adapter_count=len(job.image_prompt),
            quantize=job.quantize, quantize_text=job.quantize_text, transformer=job.transformer, cache=job.cache,
            cache_threshold=job.cache_threshold,
        )

    def guides(self, job: Any, say: Reporter) -> Any:
        """The spec's ControlNets and image prompts, every file and reference checked (None when it has none)."""
        if not job.control and not job.image_prompt:
            return None
        from difftool import guides

        found = guides.from_fields(
            [c.model_dump(exclude_none=True) for c in job.control], job.control_start, job.control_end,
            [p.model_dump(exclude_none=True) for p in job.image_prompt], job.ip_adapter, self.allow_pickle,
            self.refresh)
        if found is not None:
            found.say = say.info
        return found

    # ---- the pipeline cache ----------------------------------------------------------------------------

    def pipeline(self, ref: Any, task: str, opts: Any, say: Reporter | None = None,
                 job: set[tuple[Any, ...]] | None = None) -> Any:
        """The loaded pipeline of `ref` for `task`: cached, else derived from the same weights, else loaded.

        `job`: the keys the running job has used. Tasks swap schedulers on the cached pipelines, so a warm engine
        puts back what a fresh process would see: at a job's first use, the scheduler the model was loaded with;
        on a pipeline derived for another task, the base's current one (what `from_pipe` copies)."""
        from difftool import loading, schedulers

        say = say or self.reporter
        key = (ref.kind, ref.label, str(ref.path), ref.config, task == "upscale", opts)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._make_room(_disk_size(ref))
                loaded = loading.load(ref, task, opts, threads=self.threads, say=say.info)
                self.loads += 1
                entry = Entry(loaded, {task: loaded}, _memory_size(loaded.pipe), getattr(loaded.pipe, "scheduler", None))
                self._entries[key] = entry
                self._make_room(0, keep=key)
            self._entries.move_to_end(key)
            if job is not None and key not in job:
                job.add(key)
                schedulers.share(entry.base.pipe, entry.scheduler)
            if task not in entry.tasks:
                entry.tasks[task] = loading.derive(entry.base, task)
            elif entry.tasks[task] is not entry.base:
                schedulers.share(entry.tasks[task].pipe, getattr(entry.base.pipe, "scheduler", None))
            return entry.tasks[task]

    def _make_room(self, incoming: int, keep: tuple[Any, ...] | None = None) -> None:
        """Evict least recently used pipelines (never `keep`) until the loaded ones plus `incoming` bytes fit."""
        if self.budget is None:
            return
        for key in list(self._entries):
            if sum(e.size for e in self._entries.values()) + incoming <= self.budget:
                return
            if key != keep:
                self._evict(key)

    def _evict(self, key: tuple[Any, ...]) -> None:
        entry = self._entries.pop(key)
        self.reporter.info(f"unloading {entry.base.ref.label} (memory budget)")
        self.evictions += 1
        del entry
        _free_memory()

    def unload(self) -> int:
        """Drop every loaded pipeline (the server's --idle-unload); returns how many there were."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
        if count:
            _free_memory()
        return count

    def loaded(self) -> list[dict[str, Any]]:
        """What is loaded, most recently used last: model label, device, dtype, tasks, size in bytes."""
        with self._lock:
            return [{"model": e.base.ref.label, "device": e.base.device, "dtype": e.base.dtype_name,
                     "tasks": sorted(e.tasks), "bytes": e.size} for e in self._entries.values()]


def _tag_plan(job: Any, loras: tuple[Any, ...], allow_pickle: bool) -> Any:
    """The prompt's <lora:name:scale> tags resolved against `lora_dir` (None when the prompt has no tags)."""
    if job.task not in ("gen", "img2img", "inpaint") or not job.prompt:
        return None
    if "<" not in job.prompt and "<" not in (job.negative or ""):
        return None
    from pathlib import Path

    from difftool import lora_tags

    dirs = [Path(d).expanduser() for d in job.lora_dir or []]
    plan = lora_tags.plan([job.prompt], job.negative, loras, dirs, allow_pickle)
    changed = plan.texts[0] != job.prompt or plan.negative != job.negative
    return plan if changed or any(a.tag for a in plan.adapters) else None


def _memory_size(pipe: Any) -> int:
    """Bytes of the pipeline's weights (parameters and buffers of every torch module it holds)."""
    import torch

    seen: set[int] = set()
    total = 0
    for part in getattr(pipe, "components", {}).values():
        if isinstance(part, torch.nn.Module):
            for tensor in [*part.parameters(), *part.buffers()]:
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    total += tensor.numel() * tensor.element_size()
    return total


def _disk_size(ref: Any) -> int:
    """What a model folder's weights take on disk: the estimate of its size in memory before it loads."""
    path = ref.path
    if path is None:
        return 0
    files = [path] if path.is_file() else path.rglob("*.safetensors")
    return sum(f.stat().st_size for f in files if f.is_file())


def _free_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
