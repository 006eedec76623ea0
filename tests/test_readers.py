"""difftool.readers: the settings shared images carry, from files these tests write the way each tool does.

The samples (tests/shared_samples.py) are real metadata from public sources; the files are made here:
- PNG text chunks through Pillow's PngInfo.add_text, which is what A1111 (modules/images.py save_image),
  ComfyUI (nodes.py SaveImage: `prompt` and `workflow`), Fooocus (`parameters` + `fooocus_scheme`),
  InvokeAI and NovelAI call;
- JPEG/WebP: EXIF UserComment as piexif.helper.UserComment.dump(encoding="unicode") writes it for A1111
  ("UNICODE\\0" + UTF-16 big-endian);
- stealth: the bit layout of ashen-sensored/sd_webui_stealth_pnginfo (scripts/stealth_pnginfo.py, add_data)
  and NovelAI/novelai-image-metadata (nai_meta_writer.py): see `stealth_png`;
- hand-written PNGs (`raw_png`) for what Pillow cannot write: text after IDAT, a 30000x30000 header.
"""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from shared_samples import CHUNKS, INFOTEXTS

from difftool import readers
from difftool.readers import a1111, containers
from difftool.terminal import escape_json, printable


def png_with_text(path: Path, chunks: dict[str, str], mode: str = "RGB", compress: bool = False) -> Path:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value, zip=compress)
    Image.new(mode, (16, 16), "red").save(path, pnginfo=info)
    return path


def raw_png(path: Path, width: int, height: int, chunks: list[tuple[bytes, bytes]]) -> Path:
    """A PNG written chunk by chunk: signature, IHDR (8-bit RGB), `chunks` in order, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"".join(chunk(k, d) for k, d in [(b"IHDR", ihdr), *chunks, (b"IEND", b"")])
    path.write_bytes(containers.PNG_SIGNATURE + body)
    return path


def stealth_png(path: Path, payload: bytes, mode: str = "alpha", compressed: bool = True,
                size: tuple[int, int] = (64, 64)) -> Path:
    """Stealth metadata as the A1111 extension writes it: the bits of signature + 32-bit big-endian length
    (in bits) + payload (gzip for *comp), in the alpha low bits (one per pixel) or the R, G, B low bits
    (three per pixel), pixels taken column by column (x outer, y inner)."""
    from PIL import Image

    signature = f"stealth_{'png' if mode == 'alpha' else 'rgb'}{'comp' if compressed else 'info'}".encode()
    data = gzip.compress(payload) if compressed else payload
    bits = "".join(f"{b:08b}" for b in signature) + f"{len(data) * 8:032b}" + "".join(f"{b:08b}" for b in data)
    im = Image.new("RGBA" if mode == "alpha" else "RGB", size, (120, 130, 140, 255)[: 4 if mode == "alpha" else 3])
    px = im.load()
    index = 0
    for x in range(size[0]):
        for y in range(size[1]):
            if index >= len(bits):
                break
            values = list(px[x, y])
            channels = [3] if mode == "alpha" else [0, 1, 2]
            for c in channels:
                if index < len(bits):
                    values[c] = (values[c] & ~1) | int(bits[index])
                    index += 1
            px[x, y] = tuple(values)
    assert index == len(bits), "image too small for the payload"
    im.save(path)
    return path


def check(settings: dict[str, Any], expect: dict[str, Any]) -> None:
    for key, value in expect.items():
        assert settings.get(key) == value, (key, settings.get(key), value)


# ---- the real samples --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(INFOTEXTS))
def test_infotext_samples(name: str, tmp_path: Path) -> None:
    sample = INFOTEXTS[name]
    settings = a1111.parse_infotext(sample["text"])
    check(settings, sample["expect"])
    assert a1111.source_of(settings) == sample["source"]
    fields, not_honoured = readers.to_spec_fields(sample["source"], settings)
    check(fields, sample["expect"])
    assert "sampler" not in fields and "extra" not in fields
    if sample["not_honoured"] is not None:
        assert not_honoured == sample["not_honoured"]
    # the same text in a PNG, as A1111 saves it, reads back the same
    found = readers.read(png_with_text(tmp_path / "a.png", {"parameters": sample["text"]}))
    assert (found.source, found.settings, found.raw) == (sample["source"], settings, sample["text"])


@pytest.mark.parametrize("name", list(CHUNKS))
def test_other_tools_samples(name: str, tmp_path: Path) -> None:
    sample = CHUNKS[name]
    found = readers.read(png_with_text(tmp_path / "t.png", sample["chunks"]))
    assert found.source == sample["source"]
    check(found.settings, sample["expect"])
    fields, not_honoured = readers.to_spec_fields(found.source, found.settings)
    check(fields, sample["expect"])
    if sample["not_honoured"] is not None:
        assert not_honoured == sample["not_honoured"]


def test_comfyui_hires_graph_takes_the_first_pass() -> None:
    """Two samplers (the second upscales the first): the first pass gives seed, size and steps; the second
    pass is listed as not honoured."""
    graph = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 832, "height": 1216, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["20", 0], "clip": ["10", 0]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["10", 0]}},
        "10": {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -2, "clip": ["4", 1]}},
        "20": {"class_type": "PrimitiveString", "inputs": {"value": "a lighthouse"}},
        "12": {"class_type": "LoraLoader", "inputs": {"lora_name": "x.safetensors", "strength_model": 0.8,
                                                      "model": ["4", 0], "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 42, "steps": 25, "cfg": 6.5, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1.0,
            "model": ["12", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "13": {"class_type": "LatentUpscaleBy", "inputs": {"scale_by": 1.5, "samples": ["3", 0]}},
        "14": {"class_type": "KSampler", "inputs": {
            "seed": 7, "steps": 12, "cfg": 6.5, "sampler_name": "euler", "scheduler": "normal", "denoise": 0.4,
            "model": ["12", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["13", 0]}},
    }
    found = readers.identify({"prompt": json.dumps(graph)})
    assert found.source == "comfyui"
    check(found.settings, {"prompt": "a lighthouse", "negative": "blurry", "seed": 42, "steps": 25, "guidance": 6.5,
                           "scheduler": "dpm++2m-karras", "width": 832, "height": 1216, "clip_skip": 1,
                           "model": "sd_xl_base_1.0.safetensors"})
    _, not_honoured = readers.to_spec_fields(found.source, found.settings)
    assert not_honoured == ["KSampler #14", "LatentUpscaleBy", "LoraLoader"]


def test_comfyui_custom_sampler_flux() -> None:
    """SamplerCustomAdvanced keeps its settings on linked nodes (RandomNoise, KSamplerSelect, BasicScheduler,
    BasicGuider + FluxGuidance), as ComfyUI's Flux examples do."""
    graph = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["9", 0]}},
        "3": {"class_type": "FluxGuidance", "inputs": {"guidance": 3.5, "conditioning": ["2", 0]}},
        "4": {"class_type": "BasicGuider", "inputs": {"model": ["1", 0], "conditioning": ["3", 0]}},
        "5": {"class_type": "RandomNoise", "inputs": {"noise_seed": 1234}},
        "6": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "7": {"class_type": "BasicScheduler", "inputs": {"scheduler": "simple", "steps": 20, "denoise": 1.0,
                                                         "model": ["1", 0]}},
        "8": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
        "9": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "t5xxl.safetensors", "type": "flux"}},
        "10": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["5", 0], "guider": ["4", 0], "sampler": ["6", 0], "sigmas": ["7", 0], "latent_image": ["8", 0]}},
    }
    found = readers.identify({"prompt": json.dumps(graph)})
    check(found.settings, {"prompt": "a fox", "seed": 1234, "steps": 20, "guidance": 3.5, "width": 1024,
                           "height": 768, "scheduler": "euler", "model": "flux1-dev.safetensors"})
    _, not_honoured = readers.to_spec_fields(found.source, found.settings)
    assert not_honoured == ["scheduler"]  # ComfyUI's "simple" schedule: diffusers has no such


# ---- A1111 details ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sampler", "schedule", "ours", "schedule_honoured"), [
    ("DPM++ 2M Karras", None, "dpm++2m-karras", True),  # before v1.9: one name
    ("DPM++ 2M", "Karras", "dpm++2m-karras", True),  # v1.9 on: two keys
    ("DPM++ 2M", None, "dpm++2m", True),
    ("DPM++ 2M", "Automatic", "dpm++2m-karras", True),  # its default schedule in v1.9+
    ("Euler a", "Automatic", "euler-a", True),
    ("Euler", "Karras", "euler-karras", True),
    ("DPM++ SDE", None, "dpm++sde", True),
    ("DPM++ SDE Karras", None, "dpm++sde-karras", True),
    ("DPM++ 2M SDE", "Automatic", "dpm++2m-sde-exponential", True),
    ("DPM++ 2M SDE Karras", None, "dpm++2m-sde-karras", True),
    ("DPM++ 3M SDE", "Exponential", "dpm++3m-sde-exponential", True),
    ("DDIM", None, "ddim", True), ("UniPC", None, "unipc", True), ("LCM", "Automatic", "lcm", True),
    ("PLMS", None, "pndm", True), ("DPM2 a Karras", None, "dpm2-a-karras", True),
    ("Euler", "SGM Uniform", "euler", False),  # the sampler kept, the schedule reported
    ("Restart", None, None, False), ("DPM++ 2S a Karras", None, None, False),
])
def test_sampler_names(sampler: str, schedule: str | None, ours: str | None, schedule_honoured: bool) -> None:
    line = f"Steps: 20, Sampler: {sampler}, " + (f"Schedule type: {schedule}, " if schedule else "") + "Seed: 1"
    settings = a1111.parse_infotext("a cat\n" + line)
    assert settings.get("scheduler") == ours
    _, not_honoured = readers.to_spec_fields("a1111", settings)
    assert ("Schedule type" in not_honoured) == (schedule is not None and not schedule_honoured)
    assert (f"Sampler ({sampler})" in not_honoured) == (ours is None)


def test_seed_values_and_unparsed_numbers() -> None:
    settings = a1111.parse_infotext("x\nSteps: 20, Sampler: Euler, Seed: -1, CFG scale: 7")
    assert "seed" not in settings  # A1111's -1: a random seed, as difftool does without --seed
    assert readers.to_spec_fields("a1111", settings)[1] == []
    huge = a1111.parse_infotext("x\nSteps: 20, Sampler: Euler, Seed: 99999999999999999999999")
    assert huge["seed"] == 99999999999999999999999  # as written: range checks are the spec's
    bad = a1111.parse_infotext("x\nSteps: abc, Sampler: Euler, CFG scale: nan, Seed: 1, Size: 0x")
    assert "steps" not in bad and "guidance" not in bad and "width" not in bad
    assert readers.to_spec_fields("a1111", bad)[1] == ["CFG scale", "Size", "Steps"]


def test_forge_flux_distilled_guidance() -> None:
    """Forge writes Flux's distilled guidance apart from CFG scale (1); diffusers' Flux guidance_scale is the
    distilled one. (The shape of Forge's infotext for Flux, e.g. `Distilled CFG Scale: 3.5`, `Module 1: ae`.)"""
    text = ("a fox\nSteps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, "
            "Seed: 5, Size: 1024x768, Model: flux1-dev-bnb-nf4-v2, Version: f2.0.1v1.10.1-previous-530-g8bd7e056, "
            "Module 1: ae")
    settings = a1111.parse_infotext(text)
    assert (settings["guidance"], settings["scheduler"], a1111.source_of(settings)) == (3.5, "euler", "forge")
    assert readers.to_spec_fields("forge", settings)[1] == ["Module 1", "Schedule type"]


def test_quoted_values_and_a_hostile_line() -> None:
    text = 'p\nSteps: 1, Sampler: Euler, Lora hashes: "a: 1, b: \\"2\\"", Seed: 3, ControlNet 0: "x", Version: v1'
    settings = a1111.parse_infotext(text)
    assert settings["extra"]["Lora hashes"] == 'a: 1, b: "2"' and settings["seed"] == 3
    # unterminated quotes and key-less runs: parsed in one pass (a quadratic scan would take minutes here)
    hostile = "p\nSteps: 1, Seed: 2, CFG scale: 3, " + 'k: "x, ' * 100_000 + "word " * 100_000
    assert a1111.parse_infotext(hostile)["seed"] == 2


def test_stealth_metadata(tmp_path: Path) -> None:
    text = INFOTEXTS["sd-parsers stealth (A1111 1.9, Schedule type, Clip skip)"]["text"]
    for mode in ("alpha", "rgb"):
        for compressed in (True, False):
            found = readers.read(stealth_png(tmp_path / f"{mode}{compressed}.png", text.encode(), mode, compressed))
            assert (found.source, found.raw) == ("a1111", text)
            assert found.where == f"stealth metadata in the {mode} channel"
            assert found.settings["seed"] == 2015833630
    # NovelAI hides a JSON of its chunks (nai_meta_writer.py serialize_metadata: Title dropped)
    nai = {k: v for k, v in CHUNKS["NovelAI (Comment + Description + Source)"]["chunks"].items() if k != "Title"}
    found = readers.read(stealth_png(tmp_path / "nai.png", json.dumps(nai).encode()))
    assert found.source == "novelai" and found.settings["seed"] == 2253955223
    # an RGBA image with nothing hidden
    from PIL import Image

    Image.new("RGBA", (64, 64), (1, 2, 3, 255)).save(tmp_path / "plain.png")
    assert readers.read(tmp_path / "plain.png").source is None


def test_chunk_kinds_and_places(tmp_path: Path) -> None:
    text = INFOTEXTS["sd-parsers duck (A1111, UniPC)"]["text"]
    ztxt = png_with_text(tmp_path / "z.png", {"parameters": text}, compress=True)  # zTXt
    assert readers.read(ztxt).settings["seed"] == 235284042
    itxt = png_with_text(tmp_path / "i.png", {"parameters": "ein Fuchs \u2603\n" + text.split("\n")[-1]})  # iTXt
    assert readers.read(itxt).settings["prompt"] == "ein Fuchs \u2603"
    payload = b"parameters\0" + text.encode()
    after = raw_png(tmp_path / "after.png", 1, 1, [(b"IDAT", zlib.compress(b"\0\0\0\0")), (b"tEXt", payload)])
    found = readers.read(after)
    assert found.settings["seed"] == 235284042 and found.where == "PNG text after the image data"


def test_info_reads_big_files_and_goes_on(cli, tmp_path: Path) -> None:
    """A 30000x30000 PNG (Pillow's decompression-bomb guard refuses it) and a 2 MB zTXt (past Pillow's 1 MB
    text limit) are read; a text that inflates past 32 MiB is reported; the files after each are still read."""
    from PIL import Image

    text = INFOTEXTS["prompt utilities (A1111, no model)"]["text"]
    huge = raw_png(tmp_path / "huge.png", 30000, 30000, [(b"IDAT", b"not really"), (b"tEXt", b"parameters\0" + text.encode())])
    with pytest.raises(Image.DecompressionBombError):
        Image.open(huge)
    workflow = json.dumps({"nodes": [{"id": i, "widgets_values": [f"node {i} " * 4]} for i in range(40_000)]})
    assert len(workflow) > 2_000_000
    big = png_with_text(tmp_path / "big.png", {"parameters": text, "workflow": workflow}, compress=True)
    bomb = raw_png(tmp_path / "bomb.png", 1, 1, [(b"zTXt", b"parameters\0\0" + zlib.compress(b"a" * (40 * 2**20)))])
    small = png_with_text(tmp_path / "small.png", {"parameters": text})
    r = cli("info", "--json", huge, bomb, big, small)
    assert r.exit_code == 2  # the bomb
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["path"] for rec in records] == [str(huge), str(big), str(small)]
    assert all(rec["settings"]["seed"] == 1960802277 for rec in records)
    assert f"'{bomb}' was not read: a compressed text chunk inflates past 32 MiB." in r.stderr


def test_info_escapes_terminal_controls(cli, tmp_path: Path) -> None:
    """ESC[2J (clear screen), an OSC title ending in BEL, a BEL, an RLO and a C1 CSI from a crafted chunk are
    shown escaped; --json keeps the exact text."""
    hostile = "a cat\x1b[2J\x1b]0;owned\x07\x07 \u202etxt.exe\x9b31m\nNegative prompt: dog\r\x7f"
    text = hostile + "\nSteps: 2, Sampler: Euler, Seed: 5, Model: m\x1b[31m"
    path = png_with_text(tmp_path / "evil.png", {"parameters": text})
    r = cli("info", path)
    assert r.exit_code == 0, r.stderr
    for raw in ("\x1b", "\x07", "\u202e", "\x9b", "\r", "\x7f"):
        assert raw not in r.stdout
    assert "a cat\\x1b[2J\\x1b]0;owned\\x07\\x07 \\u202etxt.exe\\x9b31m" in r.stdout
    assert "m\\x1b[31m" in r.stdout
    record = json.loads(cli("info", "--json", path).stdout)
    assert record["settings"]["prompt"] == "a cat\x1b[2J\x1b]0;owned\x07\x07 \u202etxt.exe\x9b31m"
    assert record["parameters"] == text


def test_printable_and_escape_json() -> None:
    controls = "".join(map(chr, [*range(0, 9), *range(11, 32), 127, *range(0x80, 0xA0)]))
    bidi = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    out = printable("ok\ttab\nline" + controls + bidi)
    assert out.startswith("ok\ttab\nline\\x00\\x01") and "\\u202e" in out and "\\x9b" in out
    assert not any(c in out for c in controls + bidi)
    assert printable("plain ünïcode – 漢字 ✓") == "plain ünïcode – 漢字 ✓"
    document = json.dumps({"p": "x\u202e\x9b\x7fy"}, ensure_ascii=False)
    safe = escape_json(document)
    assert json.loads(safe) == {"p": "x\u202e\x9b\x7fy"} and "\u202e" not in safe and "\x9b" not in safe


def test_to_spec_fields_contract() -> None:
    own = {"version": "0.9", "prompt": "p", "seed": 1, "lora": [{"ref": "x", "scale": 1.0}]}
    assert readers.to_spec_fields("difftool", own) == ({"prompt": "p", "seed": 1, "lora": [{"ref": "x", "scale": 1.0}]}, [])
    odd = {"prompt": 3, "steps": "20", "seed": True, "guidance": 7, "width": 512.0, "model": "m", "extra": {"ENSD": "1"}}
    assert readers.to_spec_fields("a1111", odd) == ({"guidance": 7.0, "model": "m"}, ["ENSD"])
    assert readers.to_spec_fields("a1111", "not a dict") == ({}, [])  # type: ignore[arg-type]


def test_not_images_and_unknown_json(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(readers.ReadError, match="is not an image"):
        readers.read(tmp_path / "notes.png")
    with pytest.raises(readers.ReadError, match="does not exist"):
        readers.read(tmp_path / "missing.png")
    odd = png_with_text(tmp_path / "odd.png", {"parameters": '{"something": "else"}'})
    assert readers.read(odd).source is None  # JSON of no known tool: not read as an A1111 prompt


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy 2 notes from diffusers' KDPM2 schedulers
def test_schedulers_describe_names_each_one() -> None:
    """The added A1111 schedulers round-trip: apply(name) then describe() gives the name back."""
    from diffusers import PNDMScheduler

    from difftool import schedulers

    base = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True)

    class Pipe:
        scheduler: Any = base

    for name in schedulers.SCHEDULERS:
        # LMS needs scipy (not installed here); the DPM2 classes take ~0.7 s each to build, and their Karras
        # and plain entries differ as euler's do
        if name.startswith(("lms", "dpm2")):
            continue
        pipe = Pipe()
        schedulers.apply(pipe, name)
        assert schedulers.describe(pipe.scheduler) == name
