#!/usr/bin/env python
"""GPU end-to-end benchmark (issue 16): the shipped photo -> 3D head workflow through a real ComfyUI, full size.

Writes FULL-SIZE random weights in the official on-disk layout (``harness/tiny_models.py``, size "full": the real
architectures, ~9.5 GB; the real weights cannot be fetched here), starts the local ComfyUI with the GPU visible,
runs ``workflows/api/facelift_photo_to_head_api.json`` on ``samples/astronaut.png`` at the official settings (50
DDIM steps, 150-frame 512² turntable) twice, cold (weights load) then warm (a copy of the photo under another name,
so every node but Load Models runs again with the models cached), and writes one JSON file with the device, the
torch/CUDA versions, per-node cold and warm seconds, ``photo_to_ply_s`` (warm; the six nodes Load Image -> Load
Models -> Face Crop -> Multi-View Sampler -> Reconstruct -> Save Gaussians, summed: the PLY is on disk when the last
one ends), the turntable seconds, the peak VRAM, gsplat's first-use time (build + first call, measured in a fresh
process before the server starts) and the compile/build messages the server printed.

    python benchmarks/bench_workflow_gpu.py --device gpu           # on a CUDA machine -> benchmarks/results/...
    python benchmarks/bench_workflow_gpu.py --tiny --device cpu    # plumbing check at tiny size (what CI tests)
    options: --steps N --frames N --size N  --models-dir DIR (use existing weights)  --work-dir DIR  --out FILE

Random weights make the images noise; the timings and memory are those of the real architectures (the number of
Gaussians the filters keep, which the render time depends on, is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_workflow as bw  # noqa: E402
import run_facelift as rf  # noqa: E402

RESULTS_FILE = REPO / "benchmarks" / "results" / "gpu_workflow_e2e.json"
OFFICIAL = {"steps": 50, "frames": 150, "size": 512}
TINY_DEFAULTS = {"steps": 2, "frames": 4, "size": 64}
# Load Image -> Load Models -> Face Crop -> Multi-View Sampler -> Reconstruct -> Save Gaussians (PLY written).
CHAIN = ("1", "2", "3", "4", "5", "6")
N_SAVE_PLY, N_RENDER = "6", "7"
LOG_KEYWORDS = ("gsplat", "compil", "build", "numba", "render:", "triton", "Setting up CUDA")
WEIGHTS_MARKER = ".bench-weights-complete"


# ---------------------------------------------------------------------------------------------- environment
def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def nvidia_smi(query: str) -> list[str] | None:
    """One ``nvidia-smi --query-gpu`` column per GPU, or None without nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, f"--query-gpu={query}", "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else None


def environment(device: str) -> dict:
    import torch

    cuda = device == "gpu" and torch.cuda.is_available()
    cpu_name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "device_name": torch.cuda.get_device_name(0) if cuda else cpu_name,
        "gpu_memory_gb": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
        "driver": (nvidia_smi("driver_version") or [None])[0] if cuda else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "libraries": {m: _version(m) for m in ("diffusers", "transformers", "gsplat", "numba", "numpy", "av")},
    }


# -------------------------------------------------------------------------------------------------- weights
def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def write_weights(root: Path, size: str, init_device: str) -> dict:
    """models/facelift under ``root`` filled with random weights of ``size`` (reused when already complete)."""
    from harness.tiny_models import write_models

    facelift = root / "facelift"
    marker = facelift / WEIGHTS_MARKER
    if marker.is_file() and marker.read_text().strip() == size:
        return {"size": size, "reused": True, "seconds": None, "bytes": folder_bytes(facelift)}
    if facelift.exists():
        shutil.rmtree(facelift)
    print(f"writing {size} random weights (official layout) into {facelift} (init on {init_device})", flush=True)
    t0 = time.perf_counter()
    write_models(facelift, size, device=init_device)
    seconds = time.perf_counter() - t0
    marker.write_text(size)
    return {"size": size, "reused": False, "seconds": round(seconds, 1), "bytes": folder_bytes(facelift),
            "init_device": init_device}


# --------------------------------------------------------------------------------------------------- gsplat
GSPLAT_PROBE = r"""
import json, time
t0 = time.perf_counter()
import torch
import gsplat
from gsplat import rasterization
t_import = time.perf_counter() - t0
n = 1000
g = torch.Generator(device="cuda").manual_seed(0)
means = torch.randn(n, 3, device="cuda", generator=g) * 0.3
quats = torch.nn.functional.normalize(torch.randn(n, 4, device="cuda", generator=g), dim=-1)
scales = torch.full((n, 3), 0.02, device="cuda")
opac = torch.full((n,), 0.5, device="cuda")
colors = torch.rand(n, 3, device="cuda", generator=g)
view = torch.eye(4, device="cuda")[None]
view[0, 2, 3] = 3.0
K = torch.tensor([[[300.0, 0, 128], [0, 300.0, 128], [0, 0, 1]]], device="cuda")
t1 = time.perf_counter()
img, alpha, _ = rasterization(means, quats, scales, opac, colors, view, K, 256, 256)
torch.cuda.synchronize()
t_first = time.perf_counter() - t1
t2 = time.perf_counter()
rasterization(means, quats, scales, opac, colors, view, K, 256, 256)
torch.cuda.synchronize()
print("@@GSPLAT@@" + json.dumps({"version": gsplat.__version__, "import_s": t_import, "first_call_s": t_first,
                                  "second_call_s": time.perf_counter() - t2,
                                  "alpha_mean": float(alpha.mean())}), flush=True)
"""


def gsplat_first_use(timeout: float) -> dict:
    """gsplat's first use in a fresh interpreter: import + first rasterization (its CUDA build, if any, happens here
    and is cached on disk for the server). Never raises: the reason is recorded instead."""
    import torch

    if not torch.cuda.is_available():
        return {"available": False, "reason": "no CUDA device"}
    if _version("gsplat") is None:
        return {"available": False, "reason": "gsplat is not installed"}
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", GSPLAT_PROBE], capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, PYTHONUNBUFFERED="1"))
    except subprocess.TimeoutExpired as e:
        return {"available": False, "reason": f"no result within {timeout:.0f} s", "seconds": round(timeout, 1),
                "messages": ((e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes)
                             else (e.stdout or "")).splitlines()[-20:]}
    wall = time.perf_counter() - t0
    lines = (p.stdout + "\n" + p.stderr).splitlines()
    found = [json.loads(line[len("@@GSPLAT@@"):]) for line in lines if line.startswith("@@GSPLAT@@")]
    messages = [line for line in lines if line.strip() and not line.startswith("@@GSPLAT@@")][-20:]
    if p.returncode != 0 or not found:
        return {"available": False, "reason": f"probe exited {p.returncode}", "seconds": round(wall, 1),
                "messages": messages}
    return {"available": True, "seconds": round(wall, 1), **{k: (round(v, 4) if isinstance(v, float) else v)
                                                              for k, v in found[0].items()}, "messages": messages}


# ---------------------------------------------------------------------------------------------- VRAM sampler
class VramSampler:
    """Polls nvidia-smi's memory.used of GPU 0 (what the whole device holds: CUDA context + allocator cache)."""

    def __init__(self, period: float = 0.2):
        self.period = period
        self.baseline_mb: float | None = None
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def used_mb() -> float | None:
        vals = nvidia_smi("memory.used")
        try:
            return float(vals[0]) if vals else None
        except ValueError:
            return None

    def start(self) -> "VramSampler":
        self.baseline_mb = self.used_mb()
        if self.baseline_mb is None:
            return self
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            v = self.used_mb()
            if v is not None:
                self.peak_mb = v if self.peak_mb is None else max(self.peak_mb, v)
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def peak_gb(self) -> float | None:
        if self.baseline_mb is None or self.peak_mb is None:
            return None
        return round((self.peak_mb - self.baseline_mb) / 1024, 2)


# ----------------------------------------------------------------------------------------------- the runs
def ply_of(server, client, prompt_id: str) -> dict:
    """The PLY the Save Gaussians node wrote in that run: path, bytes, vertex count from its header."""
    outputs = client.wait_history(prompt_id, timeout=60).get("outputs", {})  # written just after the last message
    files = outputs.get(N_SAVE_PLY, {}).get("facelift_files", [])
    if not files:
        return {"path": None}
    f = files[0]
    path = server.output_dir / f.get("subfolder", "") / f["filename"]
    count = None
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.decode("ascii", errors="replace").strip()
            if line.startswith("element vertex"):
                count = int(line.split()[-1])
            if line == "end_header":
                break
    return {"path": str(path), "bytes": path.stat().st_size, "gaussians": count}


def chain_seconds(nodes_s: dict[str, float]) -> float | None:
    """Seconds of the photo -> PLY nodes in one run; None unless each of them ran (Load Models, whose inputs do not
    change, is cached by ComfyUI in a warm run and then counts 0)."""
    names = [bw.NODE_NAMES[n] for n in CHAIN]
    if any(n not in nodes_s for n in names if n != "LoadModels"):
        return None
    return round(sum(nodes_s.get(n, 0.0) for n in names), 3)


def log_messages(text: str, limit: int = 40) -> list[str]:
    return [line for line in text.splitlines() if any(k.lower() in line.lower() for k in LOG_KEYWORDS)][-limit:]


def run_benchmark(a, save=lambda result: None) -> dict:
    """The whole benchmark; ``save(result)`` is called after each stage with what is known so far (``complete``
    False), so a run cut by a deadline still leaves its first figures."""
    import torch

    device = ("gpu" if rf.cuda_available() else "cpu") if a.device == "auto" else a.device
    if device == "gpu" and not torch.cuda.is_available():
        raise SystemExit("error: --device gpu but torch sees no CUDA device here; run on a GPU machine or use "
                         "--device cpu.")
    size = "tiny" if a.tiny else "full"
    defaults = TINY_DEFAULTS if a.tiny else OFFICIAL
    steps, frames, res = (a.steps or defaults["steps"]), (a.frames or defaults["frames"]), (a.size or defaults["size"])
    work = a.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)

    result: dict = {"issue": 16, "benchmark": "bench_workflow_gpu.py", "complete": False, "random_weights": True,
                    "weights_size": size, "device": device, **environment(device),
                    "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if a.models_dir:
        models_root = a.models_dir.expanduser().resolve()
        result["random_weights"] = None  # whatever the given folder holds
        result["weights"] = {"models_dir": str(models_root), "reused": True}
    else:
        models_root = work / "models"
        init = "cuda" if device == "gpu" else "cpu"
        result["weights"] = write_weights(models_root, size, init)
    save(result)
    result["gsplat_first_use"] = gsplat_first_use(a.gsplat_timeout) if device == "gpu" else {
        "available": False, "reason": "CPU run"}
    save(result)

    extra = rf.comfy_host.write_extra_model_paths(work / "extra_model_paths.yaml", models_root,
                                                      {"facelift": "facelift"})
    run_dir = work / "comfy_run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    vram = VramSampler().start() if device == "gpu" else None
    t0 = time.perf_counter()
    server = rf.start_host(run_dir, extra, device)
    result["server_start_s"] = round(time.perf_counter() - t0, 1)
    try:
        client = server.client()
        runs = {}
        for tag in ("cold", "warm"):
            # Another file name (same photo) each run, so Load Image and everything after it run again.
            name = f"facelift_bench_{tag}.png"
            server.input_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rf.DEFAULT_IMAGE, server.input_dir / name)
            prompt = rf.build_prompt(name, f"bench_{tag}", steps, frames)
            prompt[rf.N_RENDER]["inputs"]["size"] = res
            run = bw.timed_run(client, prompt, a.timeout)
            run["ply"] = ply_of(server, client, run.pop("prompt_id"))
            stats = client.get_json("/facelift/cache")
            run["model_loads_after"] = stats.get("loads")
            run["torch_peak_allocated_gb_so_far"] = (round(stats["cuda_max_allocated_mb"] / 1024, 2)
                                                     if stats.get("cuda_max_allocated_mb") is not None else None)
            run["peak_vram_gb_so_far"] = vram.peak_gb() if vram else None
            runs[tag] = run
            result[f"partial_{tag}"] = run
            save(result)
        log = server.log_text()
    finally:
        server.stop()
        if vram:
            vram.stop()
        try:
            shutil.copyfile(server.log_path, work / "comfyui-server.log")
        except OSError:
            pass

    settings = dict(prompt[rf.N_SAMPLER]["inputs"])
    settings.pop("mv_model", None)
    settings.pop("image", None)
    render = prompt[rf.N_RENDER]["inputs"]
    cold, warm = runs["cold"], runs["warm"]
    warm_render = warm["nodes_s"].get(bw.NODE_NAMES[N_RENDER])
    torch_peak = warm["torch_peak_allocated_gb_so_far"]
    device_peak = vram.peak_gb() if vram else None
    result.update({
        "settings": {**settings, "frames": render["frames"], "size": render["size"],
                     "precision": prompt["2"]["inputs"]["precision"], "filters": prompt["5"]["inputs"]["filters"],
                     "official": size == "full" and (steps, frames, res) == tuple(OFFICIAL.values())},
        "nodes_cold_s": cold["nodes_s"], "nodes_warm_s": warm["nodes_s"],
        "cold_total_s": cold["total_s"], "warm_total_s": warm["total_s"],
        "photo_to_ply_s": chain_seconds(warm["nodes_s"]),
        "photo_to_ply_cold_s": chain_seconds(cold["nodes_s"]),
        "turntable_s": warm_render,
        "turntable_frames": render["frames"], "turntable_size": render["size"],
        "turntable_ms_per_frame": round(1000 * warm_render / render["frames"], 2) if warm_render else None,
        # Device-level peak (nvidia-smi memory.used above the idle baseline: CUDA context + torch's cache), else
        # what torch allocated at most in the server.
        "peak_vram_gb": device_peak if device_peak is not None else torch_peak,
        "peak_vram_source": ("nvidia-smi memory.used - baseline" if device_peak is not None
                             else ("torch.cuda.max_memory_allocated" if torch_peak is not None else None)),
        "torch_peak_allocated_gb": torch_peak,
        "gaussians_in_ply": warm["ply"].get("gaussians"),
        "ply_bytes": warm["ply"].get("bytes"),
        "model_loads": {"after_cold": cold["model_loads_after"], "after_warm": warm["model_loads_after"],
                        "reloaded_on_warm_run": cold["model_loads_after"] != warm["model_loads_after"]},
        "compile_messages": log_messages(log),
    })
    for tag in runs:
        result.pop(f"partial_{tag}", None)
    result["complete"] = True
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    ap.add_argument("--tiny", action="store_true", help="tiny random weights and few steps/frames (plumbing check)")
    ap.add_argument("--steps", type=int, default=None, help="diffusion steps (default: 50; tiny: 2)")
    ap.add_argument("--frames", type=int, default=None, help="turntable frames (default: 150; tiny: 4)")
    ap.add_argument("--size", type=int, default=None, help="turntable side in pixels (default: 512; tiny: 64)")
    ap.add_argument("--models-dir", type=Path, default=None,
                    help="a ComfyUI models folder whose facelift/ already holds weights (nothing is written)")
    ap.add_argument("--work-dir", type=Path, default=REPO / "out" / "bench_workflow_gpu",
                    help="weights, the server's folders and its log (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"the JSON file (default: {RESULTS_FILE.relative_to(REPO)} for a full-size GPU run, else "
                         "<work-dir>/result.json)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per workflow run")
    ap.add_argument("--gsplat-timeout", type=float, default=600, help="seconds for gsplat's first use")
    a = ap.parse_args(argv)
    full_gpu = not a.tiny and a.device in ("gpu", "auto") and rf.cuda_available()
    out = a.out or (RESULTS_FILE if full_gpu else a.work_dir / "result.json")
    if out.resolve() == RESULTS_FILE.resolve() and not full_gpu:
        print(f"error: {RESULTS_FILE.relative_to(REPO)} holds the full-size GPU figures only; give --out for a "
              "tiny or CPU run.", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(result: dict) -> None:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(tmp, out)

    result = run_benchmark(a, save)
    save(result)
    print(json.dumps({k: result.get(k) for k in ("device_name", "torch", "cuda", "photo_to_ply_s", "turntable_s",
                                                  "peak_vram_gb", "gaussians_in_ply")}, indent=2))
    print(f"wrote {out}")
    ok = (result["photo_to_ply_s"] is not None and not result["model_loads"]["reloaded_on_warm_run"]
          and bool(result["gaussians_in_ply"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
