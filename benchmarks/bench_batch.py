#!/usr/bin/env python
"""Throughput of the batch runner (``facelift_models.batch``): photos per minute for 1 and 2 Ray workers.

Each configuration processes the same folder of face photos into a fresh output folder on a local Ray instance
and reports the wall time of the whole run (Ray start, one model load per worker, every photo) and the steady
throughput (photos finished per minute between the first and the last finished photo, so start-up is excluded).
A no-Ray in-process run (``--local``) is the baseline. With ``--tiny`` (default when no --models-dir is given) the
weights are tiny random networks: the figures then measure the runner's plumbing plus MTCNN and the tiny models,
not FaceLift's real cost; with the real weights on a GPU machine pass ``--models-dir`` and ``--device auto``.

    .venv/bin/python benchmarks/bench_batch.py                                   # tiny weights, CPU
    .venv/bin/python benchmarks/bench_batch.py --models-dir ComfyUI/models/facelift --steps 50 --workers 1,2,4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from facelift_models.batch import runner  # noqa: E402
from facelift_models.batch.pipeline import PipelineOptions  # noqa: E402


def make_photos(folder: Path, n: int) -> None:
    from harness.batch_photos import face_variants

    faces = face_variants(6)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        faces[i % len(faces)].save(folder / f"photo_{i:04d}.png")


def one_run(photos: Path, models: Path, options: PipelineOptions, workers: int | None, device: str,
            cpus: int | None) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-batch-out-"))
    stamps: list[float] = []
    t0 = time.perf_counter()
    quiet = lambda msg: None  # noqa: E731
    if workers is None:
        summary = runner.run_local(photos, out, models, options, device=device, say=quiet)
        stamps = []
    else:
        summary = runner.run_ray(photos, out, models, options, workers=workers, device=device, local_cpus=cpus,
                                 say=quiet, on_record=lambda rec: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - t0
    recs = runner.Manifest(out).records()
    per_photo = sorted(r["timings"]["total_s"] for r in recs if r["status"] == "ok")
    result = {"workers": workers or "local (no Ray)", "photos": summary.total, "ok": summary.ok,
              "failed": summary.failed, "wall_s": round(wall, 2),
              "photos_per_min_overall": round(60 * summary.ok / wall, 2),
              "median_photo_s": per_photo[len(per_photo) // 2] if per_photo else None,
              "model_load_s": sorted({r["worker"]["load_s"] for r in recs if "worker" in r})}
    if len(stamps) > 1:
        result["photos_per_min_steady"] = round(60 * (len(stamps) - 1) / (stamps[-1] - stamps[0]), 2)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", type=Path, default=None, help="real weights (default: tiny random ones)")
    ap.add_argument("--photos", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8, help="sampling steps (official 50)")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--local-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--no-local-baseline", action="store_true")
    ap.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "batch_cpu.json")
    a = ap.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    models = a.models_dir
    if models is None:
        from harness.tiny_models import write_tiny_models

        models = write_tiny_models(tmp / "models")
    photos = tmp / "photos"
    make_photos(photos, a.photos)
    options = PipelineOptions(steps=a.steps)
    runs = []
    if not a.no_local_baseline:
        runs.append(one_run(photos, models, options, None, a.device, None))
        print(json.dumps(runs[-1]), file=sys.stderr)
    for w in (int(x) for x in a.workers.split(",")):
        runs.append(one_run(photos, models, options, w, a.device, a.local_cpus))
        print(json.dumps(runs[-1]), file=sys.stderr)
    import ray
    import torch

    report = {
        "benchmark": "batch runner throughput (python -m facelift_models.batch)",
        "weights": "tiny random (plumbing + MTCNN + tiny networks)" if a.models_dir is None else str(a.models_dir),
        "steps": a.steps, "device": a.device, "local_ray_cpus": a.local_cpus,
        "machine": {"cpus": os.cpu_count(), "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "runs": runs,
    }
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
