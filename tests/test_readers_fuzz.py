"""Property tests (hypothesis): whatever an image carries, reading it gives settings or a clean "no
settings", never an exception. Example counts are kept modest (CI has 2 cores); DIFFTOOL_FUZZ_EXAMPLES=5000
runs a longer hunt."""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from difftool import readers
from difftool.readers import a1111, comfyui, containers, json_formats
from difftool.readers.fields import SPEC_FIELDS
from difftool.terminal import printable

EXAMPLES = int(os.environ.get("DIFFTOOL_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Pieces of real infotexts, so that generated text hits the parser's branches, not only its prompt path.
_FRAGMENTS = [
    "Steps: ", "Sampler: ", "DPM++ 2M", " Karras", "Schedule type: ", "Automatic", "CFG scale: ", "Seed: ",
    "-1", "Size: ", "512x768", "x", "Model: ", "Model hash: ", "Clip skip: ", "Hires upscale: ", "Hires steps: ",
    "Hires upscaler: ", "Latent", "Denoising strength: ", "Version: ", "f2.0.1", "ComfyUI", "Fooocus", "Lora hashes: ",
    "Negative prompt:", '"', '\\"', "\\", ", ", ",", ":", ": ", "\n", " ", "7", "0.5", "1e309", "nan", "99999999999999999999",
]
infotexts = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=4)), max_size=60).map("".join),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_CLASSES = ["KSampler", "KSamplerAdvanced", "SamplerCustomAdvanced", "CLIPTextEncode", "EmptyLatentImage",
            "CheckpointLoaderSimple", "LoraLoader", "CLIPSetLastLayer", "VAEEncode", "FluxGuidance", "BasicGuider",
            "RandomNoise", "KSamplerSelect", "BasicScheduler", "ConditioningCombine", "Other"]
_INPUTS = ["seed", "noise_seed", "steps", "cfg", "sampler_name", "scheduler", "denoise", "model", "positive",
           "negative", "latent_image", "text", "text_g", "clip", "width", "height", "ckpt_name", "conditioning",
           "conditioning_1", "guider", "noise", "sampler", "sigmas", "pixels", "samples", "stop_at_clip_layer",
           "guidance", "value"]
_IDS = [str(i) for i in range(8)]
comfy_graphs = st.dictionaries(
    st.sampled_from(_IDS),
    st.fixed_dictionaries({
        "class_type": st.sampled_from(_CLASSES),
        "inputs": st.dictionaries(st.sampled_from(_INPUTS), st.one_of(
            json_values, st.tuples(st.sampled_from(_IDS), st.integers(0, 2)).map(list)), max_size=8),
    }),
    max_size=8,
).map(json.dumps)
chunk_texts = st.one_of(infotexts, json_values.map(json.dumps), comfy_graphs)
chunk_dicts = st.dictionaries(
    st.sampled_from(["parameters", "difftool", "prompt", "workflow", "invokeai_metadata", "sd-metadata", "Dream",
                     "Comment", "Description", "Software", "Source", "fooocus_scheme", "other"]),
    chunk_texts, max_size=4)


def _check_settings(source: str | None, found: dict[str, Any]) -> None:
    assert source is None or source in readers.LABELS
    assert isinstance(found, dict)
    fields, not_honoured = readers.to_spec_fields(source, found)
    if source != "difftool":
        for key, value in fields.items():
            assert isinstance(value, SPEC_FIELDS[key]) and not isinstance(value, bool), (key, value)
    assert all(isinstance(k, str) for k in not_honoured)


@FUZZ
@given(infotexts)
def test_infotext_parser_never_raises(text: str) -> None:
    found = a1111.parse_infotext(text)
    assert isinstance(found["prompt"], str)
    _check_settings(a1111.source_of(found), found)


@FUZZ
@given(chunk_dicts)
def test_identify_never_raises(chunks: dict[str, str]) -> None:
    """Every reader, unguarded (readers._identify, not the guarded readers.identify), on generated chunks."""
    found = readers._identify(chunks)
    _check_settings(found.source, found.settings)


@FUZZ
@given(st.one_of(comfy_graphs, json_values.map(json.dumps), st.text(max_size=50)))
def test_json_readers_never_raise(text: str) -> None:
    for parse in (comfyui.parse_prompt_graph, json_formats.fooocus, json_formats.swarmui,
                  json_formats.invokeai_metadata, json_formats.invokeai_sd_metadata, json_formats.invokeai_dream):
        found = parse(text)
        if found is not None:
            _check_settings("comfyui", found)
    found = json_formats.novelai(text, text, text)
    if found is not None:
        _check_settings("novelai", found)


@FUZZ
@given(st.text(max_size=200))
def test_difftool_chunk_reader_never_raises(text: str) -> None:
    found = readers._identify({"difftool": text})
    assert found.source in ("difftool", None)
    if found.source == "difftool":
        assert isinstance(found.settings, dict)


def _png_chunk(kind: bytes, data: bytes, length: int | None) -> bytes:
    size = len(data) if length is None else length
    return struct.pack(">I", size) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


png_files = st.lists(st.tuples(
    st.sampled_from([b"IHDR", b"tEXt", b"zTXt", b"iTXt", b"IDAT", b"IEND", b"eXIf", b"zzzz"]),
    st.one_of(st.binary(max_size=40), st.sampled_from([
        b"parameters\0a cat\nSteps: 2, Sampler: Euler, Seed: 1",
        b"parameters\0\0" + zlib.compress(b"a dog\nSteps: 2, Seed: 3, CFG scale: 4"),
        b"parameters\0\0\0en\0\0caf\xc3\xa9",
        struct.pack(">IIBBBBB", 4, 4, 8, 6, 0, 0, 0),
        struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0),
    ])),
    st.one_of(st.none(), st.integers(0, 2**32 - 1))), max_size=6,
).map(lambda chunks: containers.PNG_SIGNATURE + b"".join(_png_chunk(*c) for c in chunks))
files = st.one_of(
    png_files,
    st.binary(max_size=64).map(lambda b: containers.PNG_SIGNATURE + b),
    st.binary(max_size=64).map(lambda b: b"\xff\xd8\xff" + b),
    st.binary(max_size=64).map(lambda b: b"\xff\xd8\xff\xe1" + struct.pack(">H", len(b) + 8) + b"Exif\0\0" + b),
    st.binary(max_size=64).map(lambda b: b"RIFF\0\0\0\0WEBP" + b),
    st.binary(max_size=64).map(lambda b: b"RIFF\0\0\0\0WEBPEXIF" + struct.pack("<I", len(b)) + b),
    st.binary(max_size=64),
)


@FUZZ
@given(files)
def test_reading_any_file_gives_settings_or_a_read_error(data: bytes) -> None:
    fd, name = tempfile.mkstemp(suffix=".img")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            found = readers.read(name)
        except readers.ReadError as exc:
            assert str(exc).startswith(f"'{name}'")
            return
        _check_settings(found.source, found.settings)
    finally:
        os.unlink(name)


@FUZZ
@given(st.text())
def test_printable_leaves_no_control_or_bidi_character(text: str) -> None:
    out = printable(text)
    for ch in out:
        code = ord(ch)
        assert ch in "\n\t" or not (code < 0x20 or 0x7F <= code < 0xA0)
        assert code not in (0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069,
                            0x200E, 0x200F, 0x061C)
