"""ControlNet (`--control`) and IP-Adapter (`--image-prompt`) on tiny models built locally: the same pixels as the
plain diffusers pipelines, canny equal to OpenCV's, the errors, and the metadata round trip."""

from __future__ import annotations

import json
from pathlib import Path

import builders
import numpy as np
import pytest
from conftest import pixels, place_in_cache, png_text

BASE = ["--steps", "2", "--seed", "3"]


@pytest.fixture(scope="session")
def guide_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny ControlNets from the tiny SD UNet, an SDXL-shaped one, and a tiny IP-Adapter (h94 layout)."""
    root = tmp_path_factory.mktemp("guides")
    return {"cn": builders.build_controlnet(root / "cn", seed=0), "cn2": builders.build_controlnet(root / "cn2", seed=1),
            "cnxl": builders.build_sdxl_controlnet(root / "cnxl"), "ip": builders.build_ip_adapter(root / "ip")}


def scene(path: Path, seed: int = 0, size: tuple[int, int] = (64, 64)) -> Path:
    """A fixed picture: coloured discs on a gradient, with a little noise (edges for canny, content for CLIP)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / w * 255, yy / h * 200, np.full((h, w), 128.0)], axis=-1)
    for _ in range(5):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(4, max(5, h // 3))
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 256, 3)
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def gen(cli, tiny_sd: Path, out: str, *extra: str) -> np.ndarray:
    r = cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", out, *extra)
    assert r.exit_code == 0, r.stderr
    return pixels(Path(out))


def rgb(path: Path):
    from PIL import Image

    return Image.open(path).convert("RGB")


def plain(pipe, **kwargs) -> np.ndarray:
    import torch

    pipe.set_progress_bar_config(disable=True)
    image = pipe("a cat", num_inference_steps=2, generator=torch.Generator("cpu").manual_seed(3), **kwargs).images[0]
    return np.asarray(image.convert("RGB"))


def test_canny_equals_opencv() -> None:
    cv2 = pytest.importorskip("cv2")
    from PIL import Image

    from difftool.preprocess import canny

    for seed, size in ((0, (96, 80)), (1, (131, 97))):
        img = np.asarray(Image.open(scene(Path(f"scene{seed}.png"), seed, size)))
        for src in (img, np.ascontiguousarray(img[..., 1])):  # colour (strongest channel) and grey
            for low, high in ((100, 200), (30, 90), (200, 100)):
                ours = canny(src, low, high)
                assert ours.any()
                assert np.array_equal(ours, cv2.Canny(src, low, high)), (seed, src.ndim, low, high)


def test_controlnets_match_diffusers_and_scale_zero_is_no_control(cli, tiny_sd: Path, guide_models) -> None:
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, StableDiffusionPipeline

    a, b = scene(Path("a.png"), 0), scene(Path("b.png"), 1)
    cn, cn2 = guide_models["cn"], guide_models["cn2"]
    one = gen(cli, tiny_sd, "one.png", "--control", f"{cn}:a.png:0.8")
    two = gen(cli, tiny_sd, "two.png", "--control", f"{cn}:a.png:0.8", "--control", f"{cn2}:b.png:0.5",
              "--control-end", "0.5")
    nets = [ControlNetModel.from_pretrained(str(p)) for p in (cn, cn2)]
    single = StableDiffusionControlNetPipeline.from_pretrained(str(tiny_sd), controlnet=nets[0])
    assert np.array_equal(one, plain(single, image=rgb(a), controlnet_conditioning_scale=0.8))
    multi = StableDiffusionControlNetPipeline.from_pretrained(str(tiny_sd), controlnet=nets)
    assert np.array_equal(two, plain(multi, image=[rgb(a), rgb(b)], controlnet_conditioning_scale=[0.8, 0.5],
                                     control_guidance_end=0.5))
    # scale 0: diffusers still runs the ControlNet but multiplies its residuals by 0, so x + 0: the plain model
    none = gen(cli, tiny_sd, "none.png")
    assert np.array_equal(gen(cli, tiny_sd, "zero.png", "--control", f"{cn}:a.png:0"), none)
    assert np.array_equal(none, plain(StableDiffusionPipeline.from_pretrained(str(tiny_sd))))
    assert not np.array_equal(one, none) and not np.array_equal(two, one)  # the controls do steer


def test_ip_adapter_matches_diffusers(cli, tiny_sd: Path, guide_models, isolated_env: Path) -> None:
    from diffusers import StableDiffusionPipeline

    weights = guide_models["ip"]
    a, b = scene(Path("a.png"), 2), scene(Path("b.png"), 3)
    one = gen(cli, tiny_sd, "one.png", "--image-prompt", "a.png:0.7", "--ip-adapter", str(weights))
    two = gen(cli, tiny_sd, "two.png", "--image-prompt", "a.png:0.6", "--image-prompt", "b.png:0.3",
              "--ip-adapter", str(weights))
    root, sub, name = str(weights.parent.parent), weights.parent.name, weights.name
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_sd))
    pipe.load_ip_adapter(root, subfolder=sub, weight_name=name)
    pipe.set_ip_adapter_scale(0.7)
    assert np.array_equal(one, plain(pipe, ip_adapter_image=rgb(a)))
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_sd))
    pipe.load_ip_adapter([root, root], subfolder=[sub, sub], weight_name=[name, name])
    pipe.set_ip_adapter_scale([0.6, 0.3])
    assert np.array_equal(two, plain(pipe, ip_adapter_image=[rgb(a), rgb(b)]))
    assert not np.array_equal(one, gen(cli, tiny_sd, "none.png"))
    # no --ip-adapter: the family's standard one (h94/IP-Adapter's SD 1.5 adapter), here from the HF cache
    place_in_cache(weights.parent.parent, "h94/IP-Adapter", isolated_env)
    assert np.array_equal(gen(cli, tiny_sd, "auto.png", "--image-prompt", "a.png:0.7"), one)
    assert json.loads(png_text(Path("auto.png"))["difftool"])["ip_adapter"] == "ip-adapter-sd15"


def test_edits_with_control_and_alias_from_cache(cli, tiny_sd: Path, guide_models, isolated_env: Path) -> None:
    from diffusers import ControlNetModel, StableDiffusionControlNetImg2ImgPipeline

    src, ctl = scene(Path("src.png"), 4), scene(Path("ctl.png"), 5)
    place_in_cache(guide_models["cn"], "lllyasviel/control_v11p_sd15_canny", isolated_env)
    r = cli("img2img", "src.png", "a dog", "-m", tiny_sd, *BASE, "-o", "i.png", "--control", "canny-sd15:ctl.png:0.9")
    assert r.exit_code == 0, r.stderr
    pipe = StableDiffusionControlNetImg2ImgPipeline.from_pretrained(
        str(tiny_sd), controlnet=ControlNetModel.from_pretrained(str(guide_models["cn"])))
    import torch

    pipe.set_progress_bar_config(disable=True)
    want = pipe("a dog", image=rgb(src), control_image=rgb(ctl), strength=0.6, controlnet_conditioning_scale=0.9,
                num_inference_steps=2, generator=torch.Generator("cpu").manual_seed(3)).images[0]
    assert np.array_equal(pixels(Path("i.png")), np.asarray(want.convert("RGB")))
    meta = json.loads(png_text(Path("i.png"))["difftool"])
    assert meta["control"][0]["model"] == "canny-sd15" and meta["pipeline"] == "StableDiffusionControlNetImg2ImgPipeline"
    from PIL import Image

    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask.save("mask.png")
    r = cli("inpaint", "src.png", "mask.png", "a dog", "-m", tiny_sd, *BASE, "-o", "p.png",
            "--control", f"{guide_models['cn']}:ctl.png", "--control-preprocess", "canny",
            "--image-prompt", "ctl.png", "--ip-adapter", str(guide_models["ip"]))
    assert r.exit_code == 0, r.stderr
    meta = json.loads(png_text(Path("p.png"))["difftool"])
    assert meta["pipeline"] == "StableDiffusionControlNetInpaintPipeline"
    assert meta["control"][0]["preprocess"] == "canny" and meta["image_prompt"][0]["scale"] == 1.0


def test_from_replays_guides_and_says_when_a_file_is_gone(cli, tiny_sd: Path, guide_models) -> None:
    from difftool import images

    scene(Path("photo.png"), 6, (80, 48))
    scene(Path("look.png"), 7)
    made = gen(cli, tiny_sd, "made.png", "-W", "96", "-H", "64", "--control", f"{guide_models['cn']}:photo.png:0.9",
               "--control-preprocess", "canny:50:150", "--control-start", "0.2", "--image-prompt", "look.png:0.5",
               "--ip-adapter", str(guide_models["ip"]))
    meta = json.loads(png_text(Path("made.png"))["difftool"])
    assert meta["control"] == [{"model": str(guide_models["cn"]), "scale": 0.9, "preprocess": "canny:50:150",
                                "image": {"path": str(Path("photo.png").resolve()), "sha256": images.sha256("photo.png")}}]
    assert (meta["control_start"], meta["control_end"]) == (0.2, 1.0)
    assert meta["image_prompt"] == [{"image": {"path": str(Path("look.png").resolve()),
                                               "sha256": images.sha256("look.png")}, "scale": 0.5}]
    r = cli("gen", "--from", "made.png", "-o", "again.png")
    assert r.exit_code == 0, r.stderr
    assert np.array_equal(pixels(Path("again.png")), made)
    Path("photo.png").rename("moved.png")
    r = cli("gen", "--from", "made.png", "-o", "gone.png")
    assert r.exit_code == 2 and "photo.png" in r.stderr and "no longer exists" in r.stderr


def test_errors(cli, tiny_sd: Path, guide_models) -> None:
    scene(Path("a.png"))
    cn = guide_models["cn"]

    def run(*extra: str):
        return cli("gen", "a cat", "-m", tiny_sd, *BASE, "-o", "x.png", *extra)

    r = run("--control", f"{guide_models['cnxl']}:a.png")
    assert r.exit_code == 3 and "Stable Diffusion XL" in r.stderr and "Traceback" not in r.stderr
    r = run("--control", f"{cn}:missing.png")
    assert r.exit_code == 2 and "missing.png" in r.stderr
    r = run("--image-prompt", "nope.png", "--ip-adapter", str(guide_models["ip"]))
    assert r.exit_code == 2 and "nope.png" in r.stderr
    assert run("--image-prompt", "a.png", "--ip-adapter", "x/models/adapter.bin").exit_code == 3
    assert run("--control", f"{cn}:a.png", "--control-preprocess", "canny", "--control-preprocess", "none",
               "--control-preprocess", "none").exit_code == 2
    assert run("--control", f"{cn}:a.png", "--control-start", "0.6", "--control-end", "0.4").exit_code == 2
    assert run("--ip-adapter", str(guide_models["ip"])).exit_code == 2
    assert run("--control", "a.png").exit_code == 2
    if not _has("controlnet_aux"):
        r = run("--control", f"{cn}:a.png", "--control-preprocess", "pose")
        assert r.exit_code == 3 and "difftool[preprocess]" in r.stderr
    assert not Path("x.png").exists()


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_control_value_parsing(tmp_path: Path) -> None:
    from difftool import guides
    from difftool.control import split

    assert split("canny-sd15:edges.png") == ("canny-sd15", "edges.png", 1.0)
    assert split("org/cn@v1.0:a:b.png:0.5") == ("org/cn@v1.0", "a:b.png", 0.5)  # hub ids never hold ':'
    odd = tmp_path / "cn:v2"
    odd.mkdir()
    assert split(f"{odd}:C:/x/img.png:2") == (str(odd), "C:/x/img.png", 2.0)  # first ':' after an existing folder
    assert split("canny-sd15:shot:1.png") == ("canny-sd15", "shot:1.png", 1.0)  # a non-number tail is the image's
    # the structured spec fields (jobs API) give the same Guides as the flags
    scene(tmp_path / "a.png")
    a = str(tmp_path / "a.png")
    flags = guides.build([f"canny-sd15:{a}:0.5"], ["canny:50:150"], None, 0.1, None, [f"{a}:0.3"], "ip-adapter-sd15")
    fields = guides.from_fields([{"model": "canny-sd15", "image": {"path": a, "sha256": "x"}, "scale": 0.5,
                                  "preprocess": "canny:50:150"}], 0.1, None, [{"image": a, "scale": 0.3}],
                                "ip-adapter-sd15")
    assert flags == fields and flags.controlnets == ("canny-sd15",)


def test_depth_preprocess_is_transformers_depth_estimation(tmp_path: Path) -> None:
    """`depth:FOLDER` runs transformers' depth-estimation pipeline (a tiny Depth Anything built here)."""
    import torch
    from PIL import Image
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor
    from transformers import pipeline as hf_pipeline

    from difftool import preprocess

    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                            image_size=32, patch_size=8, out_features=["stage1", "stage2", "stage3", "stage4"],
                            reshape_hidden_states=False)
    folder = tmp_path / "depth"
    DepthAnythingForDepthEstimation(DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 8, 16, 16], fusion_hidden_size=16,
        head_hidden_size=8, patch_size=8)).save_pretrained(str(folder))
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=True, ensure_multiple_of=8,
                      do_pad=False).save_pretrained(str(folder))
    photo = Image.open(scene(tmp_path / "p.png", 8, (96, 64))).convert("RGB")
    out = preprocess.run(preprocess.parse(f"depth:{folder}"), photo)
    want = hf_pipeline("depth-estimation", model=str(folder), device="cpu")(photo)["depth"].convert("RGB")
    assert out.size == (96, 64) and np.array_equal(np.asarray(out), np.asarray(want))
