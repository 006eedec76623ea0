"""Components loaded apart from the pipeline folder: `--transformer FILE` and the quantization configs.

`--transformer FILE` takes a single-file `.safetensors` (original or diffusers key layout) or `.gguf` checkpoint of
a DiT's transformer (a fine-tune, a community quantization) and loads it with the base model's own configs:
`<TransformerClass>.from_single_file(FILE, config=<base folder>, subfolder="transformer")`, then hands it to the
pipeline's `from_pretrained` as `transformer=`, so the base model's transformer weights are never loaded (nor
downloaded). A `.gguf` file stays quantized in memory (diffusers' GGUF support, the `gguf` package).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from difftool import quantize
from difftool.errors import ModelUnavailable, UsageError

TRANSFORMER_SUFFIXES = (".safetensors", ".gguf")


def check_transformer_file(text: str | None) -> str | None:
    """Validate `--transformer` before torch is imported: an existing .safetensors or .gguf file."""
    if text is None:
        return None
    path = Path(text).expanduser()
    if path.suffix.lower() not in TRANSFORMER_SUFFIXES:
        raise UsageError(f"--transformer takes a .safetensors or .gguf file, not '{text}' (pickle checkpoints can run "
                         "code when loaded).")
    if not path.is_file():
        raise UsageError(f"--transformer file '{text}' does not exist.")
    return str(path.resolve())


def skipped(opts: Any) -> tuple[str, ...]:
    """Pipeline components whose weights come from elsewhere (not downloaded with the pipeline)."""
    return ("transformer",) if getattr(opts, "transformer", None) else ()


def refuse_for_single_file(ref: Any, opts: Any) -> None:
    """`-m file.safetensors` is a whole pipeline in one file: the component switches apply to folders and hub ids."""
    for flag, value in (("--transformer", opts.transformer), ("--quantize", opts.quantize),
                        ("--quantize-text", opts.quantize_text)):
        if value:
            raise UsageError(f"{flag} applies to a pipeline folder or hub id, not to the single-file checkpoint "
                             f"'{ref.path}' (use the base model with -m and the file with --transformer).")


def _transformer_class(folder: Path, label: str) -> Any:
    import diffusers

    from difftool.loading.index import PipelineIndex

    name = PipelineIndex.read(folder).component_class("transformer")
    if name is None:
        raise UsageError(f"--transformer: '{label}' has no transformer (a UNet model?); use it with a DiT model such "
                         "as flux-dev, sd35-large or qwen-image.")
    cls = getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_single_file"):
        raise ModelUnavailable(f"--transformer: {name} cannot be loaded from a single file by this diffusers.")
    return cls


def load_transformer(path: str, folder: Path, dtype: Any, scheme: str | None, label: str) -> Any:
    """The transformer from `path`, configured by the base pipeline `folder` (quantized by `scheme`, or GGUF)."""
    cls = _transformer_class(folder, label)
    kwargs: dict[str, Any] = {"config": str(folder), "subfolder": "transformer", "dtype": dtype,
                              "local_files_only": True}
    if path.lower().endswith(".gguf"):
        if scheme:
            raise UsageError("--quantize: a .gguf --transformer is already quantized; drop --quantize (or use "
                             "--quantize-text for the text encoders).")
        kwargs["quantization_config"] = quantize.gguf_config(dtype)
    elif scheme:
        kwargs["quantization_config"] = quantize.component_config(scheme, "diffusers", dtype)
    try:
        return cls.from_single_file(path, **kwargs)
    except UsageError:
        raise
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelUnavailable(f"Could not load --transformer '{path}' as {cls.__name__} with the configs of "
                               f"'{label}': {first}") from exc


def load_kwargs(folder: Path, opts: Any, device: str, dtype: Any, label: str, say: Any = None) -> dict[str, Any]:
    """Extra `from_pretrained` kwargs for `--transformer`, `--quantize` and `--quantize-text` (empty when unused);
    `say` reports what loads."""
    say = say or (lambda _message: None)
    for scheme, flag in ((opts.quantize, "--quantize"), (opts.quantize_text, "--quantize-text")):
        if scheme:
            quantize.check_device(scheme, device, flag)
    out: dict[str, Any] = {}
    if opts.transformer:
        say(f"Loading transformer {Path(opts.transformer).name}")
        out["transformer"] = load_transformer(opts.transformer, folder, dtype, opts.quantize, label)
    config = quantize.pipeline_config(folder, opts.quantize, opts.quantize_text, dtype, label, skipped(opts))
    if config is not None:
        what = [f"{flag} {scheme}" for flag, scheme in (("transformer", opts.quantize), ("text", opts.quantize_text))
                if scheme]
        say(f"Quantizing while loading ({', '.join(what)})")
        out["quantization_config"] = config
    return out
