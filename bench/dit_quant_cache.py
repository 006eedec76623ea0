"""Quantization and step caches on a Flux-shaped model: peak memory and seconds per step, bf16 vs int8 (torchao)
vs first-block cache on/off, all through `difftool gen`, in one run.

The model is FLUX.1's transformer at its real widths (24 heads x 128 = 3072 hidden, 4096-wide text features,
64 latent channels in) with random weights and a reduced depth (default 1 double + 2 single blocks instead of
19 + 38, ~0.7B parameters), with 1-layer random text encoders of the real output widths and a small VAE with
16 latent channels, built once under bench/results/models/. Seconds per step = total transformer time / steps,
measured inside the process; peak RSS from wait4; "full passes" = steps on which the tail blocks ran (the first
block cache skips the others). Random weights change little from step to step, so the cache's hit rate here is
not the one of a trained model: read the cache rows as the cost of a skipped vs a computed step.

    python bench/dit_quant_cache.py [--repeats 1] [--steps 6] [--size 256] [--double 1] [--single 2]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
import time
from pathlib import Path

import common


def build(folder: Path, double: int, single: int) -> None:
    """The Flux-shaped random pipeline (child process)."""
    sys.path.insert(0, str(common.ROOT / "tests"))
    import dit_builders
    import torch
    from builders import write_clip_tokenizer
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(num_layers=double, num_single_layers=single, guidance_embeds=True)
    t5_tok = dit_builders.write_t5_tokenizer(folder.parent / "flux-shaped-t5tok")
    t5 = T5EncoderModel(T5Config(vocab_size=len(t5_tok), d_model=4096, d_kv=64, d_ff=256, num_layers=1,
                                 num_heads=4, dropout_rate=0.0))
    clip = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=256, num_hidden_layers=1,
                                        num_attention_heads=4, vocab_size=1000, bos_token_id=0, eos_token_id=2,
                                        pad_token_id=1))
    vae = AutoencoderKL(block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=16, norm_num_groups=8,
                        use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611)
    pipe = FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
                        transformer=transformer, vae=vae, text_encoder=clip,
                        tokenizer=write_clip_tokenizer(folder.parent / "flux-shaped-cliptok"), text_encoder_2=t5,
                        tokenizer_2=t5_tok, image_encoder=None, feature_extractor=None)
    pipe.to(torch.bfloat16).save_pretrained(str(folder), safe_serialization=True)
    params = sum(p.numel() for p in transformer.parameters())
    (folder / "bench-info.json").write_text(json.dumps({"transformer_params": params, "double": double,
                                                        "single": single}))


def child() -> None:
    """`difftool gen` with the transformer and its single blocks timed/counted (writes $BENCH_TIMES at exit)."""
    import diffusers

    times: dict[str, list[float]] = {"transformer": [], "single_block_calls": [], "weights_mib": []}
    transformer_forward = diffusers.FluxTransformer2DModel.forward
    block_forward = diffusers.models.transformers.transformer_flux.FluxSingleTransformerBlock.forward
    counted = [0]

    def timed(self, *args, **kwargs):
        if not times["weights_mib"]:  # the transformer's weights as held in memory (torchao: int8 data + scales)
            held = sum(sum(getattr(p, name).nbytes for name in ("qdata", "scale") if hasattr(p, name))
                       if hasattr(p, "qdata") else p.nbytes for p in self.parameters())
            times["weights_mib"].append(held / 2**20)
        start = time.perf_counter()
        try:
            return transformer_forward(self, *args, **kwargs)
        finally:
            times["transformer"].append(time.perf_counter() - start)

    def block(self, *args, **kwargs):
        counted[0] += 1
        return block_forward(self, *args, **kwargs)

    diffusers.FluxTransformer2DModel.forward = timed
    diffusers.models.transformers.transformer_flux.FluxSingleTransformerBlock.forward = block

    @atexit.register
    def write() -> None:
        times["single_block_calls"] = [counted[0]]
        Path(os.environ["BENCH_TIMES"]).write_text(json.dumps(times))

    from difftool.cli import main

    sys.argv = ["difftool", *sys.argv[2:]]
    main()


def main(repeats: int = 1, steps: int = 6, size: int = 256, double: int = 1, single: int = 2) -> dict:
    folder = common.RESULTS / "models" / f"flux-shaped-{double}-{single}"
    if not (folder / "bench-info.json").exists():
        start = time.perf_counter()
        common.build(f"sys.argv=['x']; import dit_quant_cache; dit_quant_cache.build(Path({str(folder)!r}), "
                     f"{double}, {single})")
        print(f"built the Flux-shaped random pipeline in {time.perf_counter() - start:.0f} s")
    info = json.loads((folder / "bench-info.json").read_text())
    work = common.workdir()

    def variant(name: str, *flags: str):
        def run() -> dict:
            probe = work / f"times-{time.monotonic_ns()}.json"
            cmd = [common.PYTHON, str(Path(__file__).resolve()), "--child", "gen", "a lighthouse on a cliff", "-m",
                   str(folder), "--steps", str(steps), "--seed", "1", "-W", str(size), "-H", str(size), "--dtype",
                   "bf16", "--max-sequence-length", "128", "-o", str(work / f"{name}.png"), "--overwrite", "-q",
                   *flags]
            r = common.run(cmd, extra_env={"BENCH_TIMES": str(probe), "PYTHONPATH": str(common.ROOT)})
            times = json.loads(probe.read_text())
            r["step_s"] = sum(times["transformer"]) / max(len(times["transformer"]), 1)
            r["full_passes"] = times["single_block_calls"][0] / single
            r["weights_mib"] = times["weights_mib"][0] if times["weights_mib"] else None
            return r
        return run

    variants = {
        "bf16": variant("bf16"),
        "bf16 + first-block cache": variant("fbc", "--cache", "first-block"),
        "bf16 + first-block 0.5": variant("fbc05", "--cache", "first-block", "--cache-threshold", "0.5"),
        "bf16 + taylorseer": variant("taylor", "--cache", "taylorseer"),
        "int8 (torchao)": variant("int8", "--quantize", "int8"),
        "int8 + first-block cache": variant("int8-fbc", "--quantize", "int8", "--cache", "first-block"),
    }
    print(f"Flux-shaped transformer, {info['transformer_params'] / 1e9:.2f}B parameters ({double} double + {single} "
          f"single blocks at full width), {size} px, {steps} steps, CPU bf16, {repeats} interleaved run(s) each")
    res = common.interleaved(variants, repeats)
    base = res["bf16"]
    rows = []
    for name, r in res.items():
        first = r["runs"][0]
        rows.append([name, r.get("step_s"), common.ratio(r.get("step_s"), base.get("step_s")), first.get("full_passes"),
                     first.get("weights_mib"), common.ratio(first.get("weights_mib"), base["runs"][0].get("weights_mib")),
                     r["peak_rss_mib"], common.ratio(r["peak_rss_mib"], base["peak_rss_mib"]), r["seconds"]])
    text = common.table(["variant", "s / step", "step / bf16", "full passes", "transformer weights MiB",
                         "weights / bf16", "peak RSS MiB", "RSS / bf16", "whole process s"], rows)
    print(text)
    common.save("dit_quant_cache", {"table": text, "results": res, "model": info, "steps": steps, "size": size})
    return res


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child()
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--repeats", type=int, default=1)
        parser.add_argument("--steps", type=int, default=6)
        parser.add_argument("--size", type=int, default=256)
        parser.add_argument("--double", type=int, default=1)
        parser.add_argument("--single", type=int, default=2)
        args = parser.parse_args()
        main(args.repeats, args.steps, args.size, args.double, args.single)
