"""Benchmark the GS-LRM forward pass (random weights; no checkpoint needed).

    .venv/bin/python benchmarks/bench_gslrm.py [--device cpu|cuda] [--out results.json] [--cases a,b]

Cases:
  reduced_d128_L2_64px     the public parity fixture's size (d 128, 2 layers, 6 x 64^2)
  full_64px / full_128px   full width (d 1024, 24 layers) on smaller views (CPU-friendly)
  full_512px_{fp32,fp16,bf16}  the official size, 6 x 512^2 (24,578 tokens); fp16/bf16 = autocast (CUDA)
Defaults: on CPU reduced + full_64px + full_128px; on CUDA reduced + the three full_512px cases.
Peak memory: CPU = peak resident set size of a fresh child process per case (ru_maxrss; includes the Python
and torch runtime, reported also as the increase over the process's RSS before building the model);
CUDA = torch.cuda.max_memory_allocated during the timed forward passes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = {
    "reduced_d128_L2_64px": dict(d=128, n_layer=2, size=64, dtype="fp32"),
    "full_64px": dict(d=1024, n_layer=24, size=64, dtype="fp32"),
    "full_128px": dict(d=1024, n_layer=24, size=128, dtype="fp32"),
    "full_256px": dict(d=1024, n_layer=24, size=256, dtype="fp32"),
    "full_512px_fp32": dict(d=1024, n_layer=24, size=512, dtype="fp32"),
    "full_512px_fp16": dict(d=1024, n_layer=24, size=512, dtype="fp16"),
    "full_512px_bf16": dict(d=1024, n_layer=24, size=512, dtype="bf16"),
}
DEFAULTS = {"cpu": ["reduced_d128_L2_64px", "full_64px", "full_128px"],
            "cuda": ["reduced_d128_L2_64px", "full_512px_fp32", "full_512px_fp16", "full_512px_bf16"]}
VIEWS = 6


def _rss_mb() -> float:
    """Current resident set size (Linux /proc), MB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def run_case(name: str, device: str, repeats: int, warmup: int) -> dict:
    import torch

    from facelift_models.cameras import official_views
    from facelift_models.reconstruct.gslrm import GSLRM, GSLRMConfig

    spec = CASES[name]
    dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[spec["dtype"]]
    torch.manual_seed(0)
    rss0 = _rss_mb()
    cfg = GSLRMConfig(d=spec["d"], n_layer=spec["n_layer"], image_size=spec["size"])
    model = GSLRM(cfg).to(device).eval()
    size = spec["size"]
    images = torch.rand(1, VIEWS, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    cams = official_views().resized(size, size)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    for _ in range(warmup):
        model(images, cams, dtype=dtype)
    sync()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = model(images, cams, dtype=dtype)
        sync()
        times.append(time.perf_counter() - t0)
    result = {
        "case": name, "device": device, "d": cfg.d, "n_layer": cfg.n_layer, "views": VIEWS, "size": size,
        "autocast": spec["dtype"], "tokens": 2 + VIEWS * (size // cfg.patch_size) ** 2,
        "gaussians": len(out[0]), "repeats": repeats, "warmup": warmup,
        "seconds_min": min(times), "seconds_median": statistics.median(times), "seconds_all": times,
    }
    if device.startswith("cuda"):
        result["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["gpu"] = torch.cuda.get_device_name()
    else:
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["rss_before_model_mb"] = rss0
        result["peak_rss_increase_mb"] = result["peak_rss_mb"] - rss0
        result["threads"] = torch.get_num_threads()
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--cases", default=None, help=f"comma-separated subset of {', '.join(CASES)}")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per case (default 3; 1 for full CPU)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 1; 0 for full CPU)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available; use --device cpu", file=sys.stderr)
        return 2
    names = args.cases.split(",") if args.cases else DEFAULTS["cuda" if device.startswith("cuda") else "cpu"]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s) {unknown}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2

    def knobs(name):
        heavy = device == "cpu" and CASES[name]["d"] >= 1024
        return (args.repeats if args.repeats is not None else (1 if heavy else 3),
                args.warmup if args.warmup is not None else (0 if heavy else 1))

    if args.child:
        (name,) = names
        print(json.dumps(run_case(name, device, *knobs(name))))
        return 0

    results = []
    for name in names:
        if device == "cpu":  # a fresh process per case so that the peak RSS belongs to that case alone
            cmd = [sys.executable, __file__, "--child", "--device", "cpu", "--cases", name]
            repeats, warmup = knobs(name)
            cmd += ["--repeats", str(repeats), "--warmup", str(warmup)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            r = json.loads(proc.stdout.strip().splitlines()[-1])
        else:
            r = run_case(name, device, *knobs(name))
            torch.cuda.empty_cache()
        mem = f"peak GPU mem {r['peak_mem_mb']:.0f} MB" if "peak_mem_mb" in r else \
            f"peak RSS {r['peak_rss_mb']:.0f} MB (+{r['peak_rss_increase_mb']:.0f} MB for the run)"
        print(f"{name:24s} {r['device']:5s} {r['autocast']:4s} {r['views']}x{r['size']}^2 tokens {r['tokens']:6d}  "
              f"{r['seconds_median']:8.3f} s (min {r['seconds_min']:.3f}, n={r['repeats']})  {mem}", flush=True)
        results.append(r)

    if args.out:
        info = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
                "cpu_count": os.cpu_count(), "results": results}
        Path(args.out).write_text(json.dumps(info, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
