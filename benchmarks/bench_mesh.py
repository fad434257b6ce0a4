"""Benchmark: Gaussians -> mesh, time per stage and quality, on synthetic splats of known geometry.

    .venv/bin/python benchmarks/bench_mesh.py --device cpu --out benchmarks/results/mesh_cpu_2cores.json
    .venv/bin/python benchmarks/bench_mesh.py --device cuda --out benchmarks/results/mesh_gpu.json

Cases:
- ``head_1.57M``: a head-sized stand-in for GS-LRM's raw output (6 x 512 x 512 = 1,572,864 Gaussians: an ellipsoid
  skull with nose and ears of surface discs, semi-transparent interior blobs, near-transparent background
  Gaussians and floaters; ``harness/mesh_shapes.head_like``), meshed at the default settings (resolution 256,
  4 Taubin iterations, 200 k faces, colours from the Gaussians). Times: first call (numba compiles its kernel
  once per machine, cached on disk) and the best of --repeats; per-stage times of the last call.
- quality cases (the mesh tests' shapes): ellipsoid shell and two-colour sphere, dense (150 k) and sparse
  (20 k): Chamfer distance / object size, watertight single component, mean colour error (0-255), silhouette
  IoU vs the splat's own renders from the 6 FaceLift cameras at 512 x 512.
The machine's 1-minute load average is recorded with each case (a shared machine makes times noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facelift_models import cameras  # noqa: E402
from facelift_models.mesh import gaussians_to_mesh  # noqa: E402
from facelift_models.render import render  # noqa: E402
from harness import mesh_shapes as S  # noqa: E402


def _timed_stages(g, **kw):
    """Run gaussians_to_mesh, recording when each progress milestone was reached."""
    marks = []
    t0 = time.perf_counter()
    m = gaussians_to_mesh(g, progress=lambda d, t: marks.append((d / t, time.perf_counter() - t0)), **kw)
    total = time.perf_counter() - t0
    from facelift_models.mesh import _STAGES

    stages, prev, t_prev = {}, 0.0, 0.0
    for name, end in _STAGES.items():
        t_end = next((t for f, t in marks if f >= end - 1e-9), total)
        stages[name] = round(t_end - t_prev, 3)
        t_prev = t_end
    return m, total, stages


def bench_head(device: str, repeats: int) -> dict:
    g = S.head_like().to(device)
    times, stages = [], {}
    first = None
    for i in range(repeats + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        m, total, stages = _timed_stages(g)
        if i == 0:
            first = total
        else:
            times.append(total)
    res = {"case": "head_1.57M", "gaussians": len(g), "first_call_s": round(first, 2),
           "best_s": round(min(times), 2), "all_s": [round(t, 2) for t in times], "stages_s_last": stages,
           "faces": int(len(m.faces)), "vertices": int(len(m.vertices)), "load_avg_1min": os.getloadavg()[0],
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)}
    if device.startswith("cuda"):
        res["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return res


def bench_quality(device: str) -> list[dict]:
    import trimesh
    from scipy.spatial import cKDTree

    out = []
    cams = cameras.official_views()
    for shape in (S.ellipsoid(), S.two_colour_sphere()):
        for n in (150_000, 20_000):
            g = S.splat(shape, n, seed=1)
            t0 = time.perf_counter()
            m = gaussians_to_mesh(g.to(device))
            dt = time.perf_counter() - t0
            truth, _ = shape.sample(200_000, np.random.default_rng(7))
            tm = trimesh.Trimesh(m.vertices, m.faces, process=False)
            _, nn = cKDTree(truth).query(m.vertices)
            masks = render(g, cams).alpha[..., 0].numpy() > 0.5
            sil = S.mesh_silhouettes(m.vertices.astype(np.float64), m.faces, cams)
            out.append({"case": f"{shape.name}_{n}", "seconds": round(dt, 2), "faces": int(len(m.faces)),
                        "chamfer_pct_of_size": round(100 * S.chamfer(m.vertices, m.faces, truth) / shape.size, 3),
                        "watertight": bool(tm.is_watertight),
                        "components": len(tm.split(only_watertight=False)),
                        "colour_err_255": round(float(np.abs(m.colors - shape.color(truth[nn])).mean() * 255), 2),
                        "silhouette_iou_min": round(min(S.iou(sil[v], masks[v]) for v in range(len(cams))), 4),
                        "load_avg_1min": os.getloadavg()[0]})
            print(out[-1], flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (the CI machine has 2 cores)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = {"device": args.device, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "python": platform.python_version(), "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None}
    res["head"] = bench_head(args.device, args.repeats)
    print(res["head"], flush=True)
    if not args.skip_quality:
        res["quality"] = bench_quality(args.device)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
