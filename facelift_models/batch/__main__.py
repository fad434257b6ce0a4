"""``python -m facelift_models.batch PHOTOS --out DIR``: FaceLift for a folder (or list) of photos, on Ray.

Runs without ComfyUI. See docs/batch.md for the options, the manifest and running on a Ray cluster.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import FaceLiftError
from .pipeline import GAUSSIAN_FORMATS, PipelineOptions


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m facelift_models.batch",
        description="FaceLift for many photos: face crop, 6 views, GS-LRM, files per photo and a JSON-lines "
                    "manifest (OUT/manifest.jsonl). Re-running skips finished photos; a bad photo is recorded "
                    "and never stops the run. Weights: Adobe Research License (non-commercial research only).")
    ap.add_argument("photos", type=Path, help="a folder of photos (sorted, sub-folders included) or a text file "
                                              "with one photo path per line")
    ap.add_argument("--out", type=Path, required=True, help="output folder (files per photo + manifest.jsonl)")
    ap.add_argument("--models-dir", type=Path, default=None,
                    help="the models/facelift folder (default: $FACELIFT_MODELS_DIR or the pack's search order)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N photos (after sorting)")
    ap.add_argument("--retry-failed", action="store_true", help="process photos recorded as failed again")
    g = ap.add_argument_group("where it runs")
    g.add_argument("--address", default=None,
                   help="an existing Ray cluster (e.g. ray://head:10001 or auto); default: start a local Ray "
                        "instance on this machine's CPUs/GPUs")
    g.add_argument("--workers", type=int, default=None,
                   help="number of model replicas (default: one per GPU, else one per --cpus-per-worker CPUs)")
    g.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs each worker reserves (default 1)")
    g.add_argument("--gpus-per-worker", type=float, default=1.0,
                   help="GPUs each worker reserves (default 1; 0.5 puts two replicas on a GPU)")
    g.add_argument("--local-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    g.add_argument("--device", default="auto", help="auto (GPU when the cluster has one), cpu or cuda")
    g.add_argument("--precision", default="auto", choices=["auto", "fp16", "bf16", "fp32"])
    g.add_argument("--max-attempts", type=int, default=3,
                   help="tries per photo when its worker process dies (default 3); then it is recorded as failed")
    g.add_argument("--no-ship-code", action="store_true",
                   help="with --address: do not upload this package with the job (it is installed on every node)")
    g.add_argument("--local", action="store_true", help="no Ray: run in this process (one model replica)")
    p = ap.add_argument_group("pipeline (defaults: the official settings, as the ComfyUI nodes)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=4)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--eta", type=float, default=1.0)
    p.add_argument("--scheduler", default="ddim")
    p.add_argument("--filters", default="cli", choices=["cli", "gradio", "none"])
    p.add_argument("--threshold", type=float, default=0.8, help="face probability threshold (official 0.8)")
    p.add_argument("--on-no-face", default="error", choices=["error", "official"],
                   help="error: record the photo as failed (default); official: the official CLI's fallback "
                        "(whole photo resized, face not aligned)")
    p.add_argument("--background", default="auto", choices=["auto", "u2net", "keep"],
                   help="auto (default, the official preprocessing): U²-Net removes the background unless the photo "
                        "has transparency; u2net: always; keep: no background removal (needs u2net/u2net.onnx "
                        "unless keep)")
    p.add_argument("--formats", default="ply", help=f"comma-separated, of {', '.join(GAUSSIAN_FORMATS)}")
    p.add_argument("--turntable", type=int, default=0, metavar="FRAMES",
                   help="also write an MP4 turntable with this many frames (official 150; default 0 = none)")
    p.add_argument("--turntable-size", type=int, default=512)
    p.add_argument("--mesh", action="store_true", help="also write a vertex-coloured GLB mesh of the head")
    return ap


def options_from(a: argparse.Namespace) -> PipelineOptions:
    return PipelineOptions(steps=a.steps, seed=a.seed, guidance=a.guidance, eta=a.eta, scheduler=a.scheduler,
                           filters=a.filters, crop={"prob_threshold": a.threshold, "on_no_face": a.on_no_face,
                                 "background": a.background},
                           formats=tuple(f.strip() for f in a.formats.split(",") if f.strip()),
                           turntable_frames=a.turntable, turntable_size=a.turntable_size, mesh=a.mesh)


def main(argv: list[str] | None = None) -> int:
    from ..weights.store import resolve_models_dir
    from . import runner

    a = build_parser().parse_args(argv)
    try:
        options = options_from(a)
        models_dir = Path(a.models_dir) if a.models_dir else Path(resolve_models_dir(None))
        common = dict(device=a.device, precision=a.precision, limit=a.limit, retry_failed=a.retry_failed)
        if a.local:
            summary = runner.run_local(a.photos, a.out, models_dir, options, **common)
        else:
            summary = runner.run_ray(a.photos, a.out, models_dir, options, workers=a.workers, address=a.address,
                                     cpus_per_worker=a.cpus_per_worker, gpus_per_worker=a.gpus_per_worker,
                                     local_cpus=a.local_cpus, max_attempts=a.max_attempts,
                                     ship_code=False if a.no_ship_code else None, **common)
    except FaceLiftError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"summary": summary.to_dict(), "manifest": str(Path(a.out).resolve() / runner.MANIFEST_NAME)}))
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
