"""Benchmark of the multi-view diffusion stage (random weights; nothing is downloaded).

Times:
  * one multi-view UNet call, CFG batch 12 (= 2 × 6 views), sparse attn1 on SDPA:
      - ``reduced``: the parity-fixture config (8×8 latents),
      - ``full``: the real SD2.1-unclip config (870 M parameters) at 64×64 latents (512² images) on CUDA in fp16
        and bf16; on CPU at ``--cpu-full-latent`` (default 16×16: a 64×64 step takes ~5 min on 2 cores);
  * the tiny end-to-end sampler (the mv_pipeline fixture's components, 4 DDIM steps + decode) on CPU;
  * on CUDA also the full-size VAE encode/decode of 6 views.

  .venv/bin/python benchmarks/bench_mv.py --device cpu --out results_cpu.json
  .venv/bin/python benchmarks/bench_mv.py --device cuda --out results_cuda.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from facelift_models.multiview.unet import MVUNetConfig, build_mv_unet  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def reference_dir() -> Path:
    """The project's vendored copy of the parity fixtures."""
    return REPO / "tests" / "fixtures" / "parity"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t)
    return out


def random_unet(config: dict, device: torch.device, dtype: torch.dtype):
    """Build on meta, materialise on the device and fill with small random weights (fast, no CPU init)."""
    unet = build_mv_unet(MVUNetConfig.from_official(config), device="meta")
    unet = unet.to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for p in unet.parameters():
            p.normal_(0.0, 0.02, generator=g)
    return unet.to(dtype).eval().requires_grad_(False)


def bench_unet_step(name: str, config: dict, latent: int, device: torch.device, dtype: torch.dtype,
                    repeats: int, warmup: int) -> dict:
    config = dict(config, sample_size=latent)
    unet = random_unet(config, device, dtype)
    n_params = sum(p.numel() for p in unet.parameters())
    g = torch.Generator(device=device).manual_seed(1)
    x = torch.randn(12, config["in_channels"], latent, latent, device=device, generator=g).to(dtype)
    ehs = torch.randn(12, 77, config["cross_attention_dim"], device=device, generator=g).to(dtype)
    labels = torch.randn(12, config["projection_class_embeddings_input_dim"], device=device, generator=g).to(dtype)
    t = torch.tensor(981, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step():
        with torch.no_grad():
            return unet(x, t, encoder_hidden_states=ehs, class_labels=labels).sample

    secs = timed(step, device, repeats, warmup)
    res = {"name": name, "what": "one UNet call, CFG batch 12, sparse MV attn1 (SDPA)", "device": str(device),
           "dtype": str(dtype).replace("torch.", ""), "latent": latent, "image": latent * 8, "batch": 12,
           "params": n_params, "seconds": secs, "seconds_median": statistics.median(secs)}
    if device.type == "cuda":
        res["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        res["estimated_50_steps_seconds"] = 50 * res["seconds_median"]
    del unet
    return res


def bench_tiny_pipeline(reference: Path, repeats: int) -> dict:
    from facelift_models.multiview.sampler import MVDiffusionConfig, sample_views
    from facelift_models.parity.common import Fixture
    from facelift_models.parity.mv_pipeline import build_components
    from PIL import Image

    fx = Fixture(reference / "pipeline_tiny.json")
    t0 = time.perf_counter()
    model = build_components(fx)
    build_s = time.perf_counter() - t0
    image = Image.fromarray(fx.tensor("in.image_uint8").numpy())
    cfg = MVDiffusionConfig(num_inference_steps=int(fx.meta["steps"]), guidance_scale=fx.meta["guidance_scale"],
                            eta=fx.meta["eta"], seed=fx.meta["generator_seed"], generator_device="cpu")
    first = timed(lambda: sample_views(model, image, cfg), torch.device("cpu"), 1, warmup=0)
    secs = timed(lambda: sample_views(model, image, cfg), torch.device("cpu"), repeats, warmup=0)
    return {"name": "tiny_pipeline_e2e", "what": f"tiny sampler, {cfg.num_inference_steps} DDIM steps + decode",
            "device": "cpu", "dtype": "float32", "build_seconds": build_s, "first_call_seconds": first[0],
            "seconds": secs, "seconds_median": statistics.median(secs)}


def bench_vae(device: torch.device, dtype: torch.dtype, repeats: int) -> dict:
    """Full-size SD2.x VAE (random weights): encode 6×512² and decode 6×64² latents."""
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            latent_channels=4, sample_size=768)
    vae = vae.to_empty(device=device)
    with torch.no_grad():
        for p in vae.parameters():
            p.normal_(0.0, 0.02)
    vae = vae.to(dtype).eval()
    x = torch.rand(6, 3, 512, 512, device=device, dtype=dtype) * 2 - 1
    z = torch.randn(6, 4, 64, 64, device=device, dtype=dtype)
    with torch.no_grad():
        enc = timed(lambda: vae.encode(x).latent_dist.mode(), device, repeats)
        dec = timed(lambda: vae.decode(z).sample, device, repeats)
    return {"name": "vae_full", "device": str(device), "dtype": str(dtype).replace("torch.", ""),
            "encode_6x512_seconds_median": statistics.median(enc), "decode_6x64_seconds_median": statistics.median(dec)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="results_mv.json")
    ap.add_argument("--reference", type=Path, default=None, help="folder of the parity fixtures")
    ap.add_argument("--cpu-full-latent", type=int, default=16,
                    help="latent side of the full-size UNet step on CPU (64 = real size, ~5 min on 2 cores)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-full", action="store_true", help="only the reduced step and the tiny sampler")
    args = ap.parse_args()

    device = torch.device(args.device)
    reference = args.reference or reference_dir()
    reduced_cfg = json.loads((reference / "unet_reduced.json").read_text())["config"]
    full_cfg = json.loads((reference / "mv_unet_full_state_dict.json").read_text())["config_used"]
    results = []

    def record(res: dict) -> None:
        results.append(res)
        print(json.dumps({k: v for k, v in res.items() if k != "seconds"}), flush=True)

    torch.set_grad_enabled(False)
    record(bench_unet_step("unet_reduced_step", reduced_cfg, int(reduced_cfg["sample_size"]), torch.device("cpu"),
                           torch.float32, args.repeats, 1))
    record(bench_tiny_pipeline(reference, args.repeats))
    if not args.skip_full:
        if device.type == "cpu":
            record(bench_unet_step("unet_full_step_cpu", full_cfg, args.cpu_full_latent, device, torch.float32,
                                   repeats=1, warmup=0))
        else:
            for name in ("fp16", "bf16"):
                record(bench_unet_step(f"unet_full_step_{name}", full_cfg, 64, device, DTYPES[name],
                                       repeats=max(args.repeats, 5), warmup=2))
                record(bench_vae(device, DTYPES[name], repeats=3))
                torch.cuda.empty_cache()

    out = {"torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine(),
           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None, "results": results}
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
