"""One run of a generation command: its options -> job specs -> the engine -> PNG files and result lines.

Where a spec field's value comes from, first match wins: typed on the command line; stored in the `--from`
image; the environment (`DIFFTOOL_<KEY>`) or the config file (the model's `[models.X]` table, then the top
level); the model's registry defaults (applied by the engine); the pipeline's own defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from difftool import config, references, registry, replay, spec
from difftool.commands.groups import Flags, to_spec
from difftool.console import Console, error, result, result_json
from difftool.errors import InputError, UsageError

#: Spec field -> config key (named like its flag), for the fields the environment and the config file may set.
CONFIG_KEYS = {
    "negative": "negative", "steps": "steps", "guidance": "guidance", "width": "width", "height": "height",
    "scheduler": "scheduler", "strength": "strength", "device": "device", "dtype": "dtype", "offload": "offload",
    "tiny_vae": "tiny-vae", "variant": "variant", "lora": "lora", "prior_steps": "prior-steps",
    "prior_guidance": "prior-guidance", "noise_level": "noise-level", "tile": "tile", "max_pixels": "max-pixels",
    "weighting": "weighting", "clip_skip": "clip-skip", "lora_dir": "lora-dir", "hires_scale": "hires",
    "hires_steps": "hires-steps", "hires_denoise": "hires-denoise", "hires_upscaler": "hires-upscaler",
    "true_cfg": "true-cfg", "max_sequence_length": "max-sequence-length", "quantize": "quantize",
    "quantize_text": "quantize-text", "cache": "cache", "cache_threshold": "cache-threshold",
}
#: The model of each task when nothing names one: (config key, built-in default). unCLIP tasks ignore the
#: `model` setting, which names a gen model; upscale has its own `upscaler` setting.
MODEL_SETTING = {"upscale": ("upscaler", "x4"), "variation": (None, "kandinsky22"), "interpolate": (None, "kandinsky22")}


class Invocation:
    """A generation command's run: its console, the fields common to its specs, and the engine it drives."""

    def __init__(self, task: str, flags: Flags, own: dict[str, Any] | None = None) -> None:
        """`own`: spec fields the command's own arguments set (None = not given). Only what was typed and what
        `--from` stored is read here; the model and the config file are read by the first `spec()`, so usage
        errors come first."""
        self.task, self.flags = task, flags
        self.console = Console(quiet=bool(flags.values.get("quiet")))
        typed = flags.spec_fields({k: v for k, v in (own or {}).items() if v is not None})
        self.stored_by: str | None = None
        """The tool whose settings `--from` replays (difftool, a1111, forge, comfyui, ...)."""
        notes: dict[str, Any] = {}
        stored = replay.load(flags.from_, task, self.console, set(typed), notes) if flags.values.get("from_") else {}
        self.stored_by = notes.get("source")
        self._typed = set(typed)
        self.fields: dict[str, Any] = {**stored, **typed}
        self._settled: dict[str, Any] | None = None
        self.origins: dict[str, str] = {}
        self._ref: Any = None
        self._engine: Any = None
        self._server: Any = None
        """`client.Server` once found; False: none (or passed over): run here."""
        self.skipped: list[int] = []
        """Numbers of the stdin lines skipped as unreadable (the command exits 2 at the end)."""

    def lines(self, items: list[str] | None, what: str) -> list[str]:
        """`items` with `-` expanded into stdin's lines (see common.read_lines)."""
        from difftool.commands.common import read_lines

        return read_lines(items, what, self.console, self.skipped)

    @property
    def ref(self) -> Any:
        """The model reference (resolved without loading: a typo fails before any import of torch)."""
        if self._ref is None:
            key, default = MODEL_SETTING.get(self.task, ("model", registry.DEFAULT_MODEL))
            model = self.fields.get("model")
            if model is None:
                model = config.lookup(key, None, default) if key else default
                self.fields["model"] = model
            self._ref = references.resolve(str(model), config=self.fields.get("config"))
        return self._ref

    def _config_fields(self) -> dict[str, Any]:
        """Fields the environment or the config file set (for this model), where nothing more direct did."""
        if self._settled is None:
            self._settled = {}
            for field, key in CONFIG_KEYS.items():
                if field in self.fields or field not in spec.TASK_FIELDS[self.task]:
                    continue
                value, source = config.explain(key, None, None, config.cast_for(key), model=self.ref)
                if value is not None:
                    self._settled.update(to_spec(field, value))
                    self.origins[field] = source[4:] if source.startswith("env ") else f"{source} {key}"
        return self._settled

    def spec(self, **fields: Any) -> Any:
        """A validated spec: the command's common fields with `fields` (one prompt, one input) over them.
        What was typed or stored is checked first (exit 2), then the model is resolved (exit 3)."""
        merged = {"task": self.task, **self.fields, **{k: v for k, v in fields.items() if v is not None}}
        if self.task in ("variation", "interpolate") and merged.get("prior") == merged.get("model"):
            merged.pop("prior", None)  # a combined Kandinsky folder records itself as its prior
        spec.build(merged)
        merged = {**self._config_fields(), **merged, "model": self.ref.text}
        if self.stored_by not in (None, "difftool") and merged.get("clip_skip") and "clip_skip" not in self._typed:
            merged["clip_skip"] = self._other_tools_clip_skip(merged["clip_skip"])
        return spec.build(merged, origins=self.origins)

    def _other_tools_clip_skip(self, sd_count: int) -> int | None:
        """Another tool's `Clip skip` was read by SD 1.x's rule (A1111 N -> N - 1); on SDXL, whose default is
        already the penultimate layer, Forge's and ComfyUI's N means N - 2 (prompts.clip_skip_from_a1111)."""
        from difftool import prompts

        return prompts.clip_skip_from_a1111(sd_count + 1, _family(self.ref))

    def inputs(self, given: str | list[str] | None, key: str, what: str) -> list[str]:
        """The paths of an input argument: typed (`-`: stdin lines, where difftool's `--json` result lines stand
        for their path), else the one `--from` stored, else none."""
        from difftool import images

        stored = self.fields.pop(key, None)
        if given:
            return images.result_paths(self.lines([given] if isinstance(given, str) else given, what))
        return [stored] if stored else []

    def per_source(self, paths: list[str]) -> tuple[list[Any], int]:
        """One spec per readable input image (headers checked now, before a model loads; the bad ones reported),
        and how many were bad. None readable: exit 2 now."""
        if not paths:
            raise UsageError("No image paths given.")
        good, errors = probe_inputs(paths)
        report_bad(errors, len(paths))
        return [self.spec(source=str(info.path)) for info in good], len(errors)

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from difftool.engine import Engine

            self._engine = Engine(reporter=self.console, allow_pickle=bool(self.flags.values.get("allow_pickle")),
                                  refresh=bool(self.flags.values.get("refresh")),
                                  threads=config.lookup("threads", None, None, int))
        return self._engine

    def plan(self, total: int, default_template: str, fields: tuple[str, ...], target: str | None = None) -> Any:
        """The output plan (checked now, before any model loads) for `total` images."""
        from difftool.outputs import OutputPlan

        output = self.flags.values.get("output")
        plan = OutputPlan(output if output is not None else config.lookup("output", None, target, model=self.ref),
                          overwrite=bool(self.flags.values.get("overwrite")), default_template=default_template,
                          fields=fields)
        plan.validate(total)
        return plan

    def execute(self, specs: list[Any], plan: Any, inputs: int = 0, failed: int = 0) -> list[Path]:
        """Run every spec, write every image, print every result; an input that fails among several is reported
        and skipped (`inputs`: how many there were, `failed`: how many already failed), then exit 2 at the end."""
        from difftool.outputs import write_with

        as_json = bool(self.flags.values.get("json_"))
        total = sum(count(s) for s in specs)
        written: list[Path] = []
        for job in specs:
            try:
                for result_ in self.results(job):
                    if plan.to_stdout:
                        self._to_stdout(result_)
                        continue
                    path, fresh = plan.path_for(len(written), total, seed=result_.seed, model=self.ref.name,
                                                **result_.name_fields)
                    path = write_with(result_.write, path, overwrite=plan.overwrite, fresh=fresh)
                    written.append(path)
                    if as_json:
                        result_json({"path": str(path), **result_.record})
                    else:
                        result(str(path))
                    self.console.info(f"wrote {path} (seed {result_.seed})")
            except InputError as exc:
                if inputs <= 1:
                    raise
                error(exc.message)
                failed += 1
        self.finish(written, specs)
        if failed:
            raise UsageError(f"{failed} of {inputs} inputs failed (see above); the others were written.")
        if self.skipped:
            raise UsageError(f"{len(self.skipped)} stdin line(s) skipped (see above); the others were written.")
        return written

    def results(self, job: Any) -> Any:
        """The images of one spec: made by a running `difftool serve` when there is one (`difftool.client`: same
        records, names and pixels), else by this process's engine."""
        if self._server is None:
            from difftool import client

            self._server = client.find(self.console, self.flags.values) or False
        if self._server:
            made = self._server.run(job, self.console)
            if made is not None:
                return made
            self._server = False  # passed over (said once): the rest runs here too
        return self.engine.run(job)

    def _to_stdout(self, made: Any) -> None:
        import sys

        data = made.png()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        self.console.info(f"wrote the PNG to stdout ({len(data)} bytes, seed {made.seed})")

    def finish(self, written: list[Path], specs: list[Any]) -> None:
        """`--grid` (a contact sheet) and interpolate's `--gif`, once every image is written."""
        from difftool import composites

        overwrite = bool(self.flags.values.get("overwrite"))
        as_json = bool(self.flags.values.get("json_"))
        if specs and specs[0].gif and written:
            composites.write_gif(written, overwrite, as_json, self.console)
        if self.flags.values.get("grid"):
            composites.write_grid(written, overwrite, as_json, self.console)


def _family(ref: Any) -> str:
    """"sdxl" or "sd" from what is known before loading: the registry, else the folder's pipeline class."""
    if ref.spec is not None:
        return "sdxl" if ref.spec.family == "sdxl" else "sd"
    folder = ref.path if ref.kind == "folder" else None
    if folder is None and ref.repo_id:
        from huggingface_hub import try_to_load_from_cache

        index = try_to_load_from_cache(ref.repo_id, "model_index.json", revision=ref.revision)
        folder = Path(index).parent if isinstance(index, str) else None
    if folder is None:
        return "sd"
    from difftool.loading.index import PipelineIndex

    return "sdxl" if (PipelineIndex.read(folder).class_name or "").startswith("StableDiffusionXL") else "sd"


def count(job: Any) -> int:
    """How many images a spec makes."""
    return job.frames or job.num_images


def probe_inputs(paths: list[str], what: str = "Input image") -> tuple[list[Any], list[str]]:
    """Check every input's header (nothing decoded): the good ones, and one message per bad one."""
    from difftool import images

    good, errors = [], []
    for path in paths:
        try:
            good.append(images.probe(path, what))
        except InputError as exc:
            errors.append(exc.message)
    return good, errors


def report_bad(errors: list[str], total: int, what: str = "input images") -> None:
    """Print the bad inputs' errors; when nothing is left to do, stop now (exit 2) before a model loads."""
    if errors and len(errors) == total:
        if total == 1:
            raise InputError(errors[0])
        for message in errors:
            error(message)
        raise UsageError(f"None of the {total} {what} could be read.")
    for message in errors:
        error(message)
