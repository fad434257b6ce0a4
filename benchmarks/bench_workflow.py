#!/usr/bin/env python
"""End-to-end benchmark of the shipped photo -> 3D head workflow in a real local ComfyUI, node by node.

Runs ``workflows/api/facelift_photo_to_head_api.json`` on the example portrait twice: a cold run (weights load) and a
warm run with another seed (weights must come from the shared cache: the load counters of ``GET /facelift/cache``
must not change). Per node it reports the wall time between ComfyUI's ``executing`` messages, plus the server's
peak RSS and, on a GPU, the peak VRAM torch allocated (from ``GET /facelift/cache``). Prints one JSON object.

    .venv/bin/python benchmarks/bench_workflow.py --models-dir /path/to/models/facelift        # real weights
    .venv/bin/python benchmarks/bench_workflow.py --tiny                                         # plumbing only
    options: --device auto|cpu|gpu  --steps N  --frames N  --size N  --output-dir DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import run_facelift as rf  # noqa: E402

NODE_NAMES = {"1": "LoadImage", "2": "LoadModels", "3": "FaceCrop", "4": "MultiViewSampler", "5": "Reconstruct",
              "6": "SaveGaussians", "7": "RenderTurntable", "8": "SaveAnimatedWEBP", "9": "SaveViews",
              "10": "SaveCrop", "11": "CreateVideo", "12": "SaveVideo"}


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory of the server process (VmHWM) in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def timed_run(client, prompt: dict, timeout: float) -> dict:
    times: dict[str, float] = {}
    current, t_prev = None, time.perf_counter()
    t0 = t_prev
    with client.connect() as w:
        pid = client.queue_prompt(prompt)
        for msg in w.messages(pid, timeout=timeout):
            now = time.perf_counter()
            if msg["type"] in ("executing", "execution_success"):
                if current is not None:
                    times[NODE_NAMES.get(current, current)] = round(now - t_prev, 3)
                current, t_prev = (msg["data"].get("node") if msg["type"] == "executing" else None), now
            if msg["type"] in ("execution_error", "execution_interrupted"):
                raise SystemExit(f"workflow failed: {json.dumps(msg['data'])[:3000]}")
    return {"total_s": round(time.perf_counter() - t0, 3), "nodes_s": times, "prompt_id": pid}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--tiny", action="store_true", help="tiny random weights (measures the plumbing only)")
    ap.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--size", type=int, default=None, help="turntable size (default: the workflow's 512)")
    ap.add_argument("--output-dir", type=Path, default=REPO / "out" / "bench_workflow")
    ap.add_argument("--timeout", type=float, default=7200)
    a = ap.parse_args(argv)
    device = ("gpu" if rf.cuda_available() else "cpu") if a.device == "auto" else a.device
    run_dir = a.output_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    extra = None
    if a.tiny:
        root = rf.prepare_tiny_models(run_dir)
        extra = rf.comfy_host.write_extra_model_paths(run_dir / "extra_model_paths.yaml", root, {"facelift": "facelift"})
    else:
        models_dir = (a.models_dir or rf.default_models_dir()).expanduser().resolve()
        if rf.check_weights(models_dir, False, False):
            return 1
        extra = run_dir / "extra_model_paths.yaml"
        extra.write_text(f"facelift_bench:\n  facelift: {json.dumps(str(models_dir))}\n")
    server = rf.start_host(run_dir, extra, device)
    try:
        client = server.client()
        name = rf.stage_input(server, rf.DEFAULT_IMAGE)
        prompt = rf.build_prompt(name, "bench", a.steps, a.frames)
        if a.size:
            prompt[rf.N_RENDER]["inputs"]["size"] = a.size
        cold = timed_run(client, prompt, a.timeout)
        loads_cold = client.get_json("/facelift/cache")["loads"]
        prompt[rf.N_SAMPLER]["inputs"]["seed"] = int(prompt[rf.N_SAMPLER]["inputs"]["seed"]) + 1
        warm = timed_run(client, prompt, a.timeout)
        cache_stats = client.get_json("/facelift/cache")
        loads_warm = cache_stats["loads"]
        stats = client.get_json("/system_stats")
        vram = [{"name": d.get("name"), "vram_total_mb": round(d.get("vram_total", 0) / 2**20),
                 "torch_vram_total_mb": round(d.get("torch_vram_total", 0) / 2**20)}
                for d in stats.get("devices", [])]
        result = {
            "device": device, "tiny": a.tiny,
            "settings": {"steps": prompt[rf.N_SAMPLER]["inputs"]["steps"],
                         "frames": prompt[rf.N_RENDER]["inputs"]["frames"],
                         "size": prompt[rf.N_RENDER]["inputs"]["size"]},
            "cold": cold, "warm_other_seed": warm,
            "loads_after_cold": loads_cold, "loads_after_warm": loads_warm,
            "reloaded_on_warm_run": loads_cold != loads_warm,
            "server_peak_rss_mb": peak_rss_mb(server.proc.pid) if server.proc else None,
            "devices": vram,
            "cuda_peak_allocated_mb": cache_stats.get("cuda_max_allocated_mb"),
        }
        print(json.dumps(result, indent=2))
        return 0 if loads_cold == loads_warm else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
