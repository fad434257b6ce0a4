"""Benchmark face detection + crop (MTCNN + the official similarity crop) on a photo of a given size.

    .venv/bin/python benchmarks/bench_face_crop.py [--size 1024] [--repeats 7] [--device cpu|cuda]
                                                   [--threads N] [--out results.json]

The input is samples/astronaut.png (512², public domain) upscaled with PIL bicubic to size² (one face of
~195 px at 1024²).  Timed per repeat: detection alone (MTCNN.detect) and the whole ``crop_face`` call
(conversion, detection, selection, PIL resize/crop/paste, mask).  Reports median, min and max seconds, the
number of pyramid scales, and the peak resident memory of the process (ru_maxrss).  Weights: found like the
parity runner does (FACELIFT_MTCNN_DIR, FACELIFT_MODELS_DIR/mtcnn, facenet-pytorch, .cache/mtcnn), else
fetched into .cache/mtcnn with scripts/fetch_mtcnn_weights.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _weights_dir() -> Path:
    from facelift_models.config import mtcnn_search_dirs
    from facelift_models.weights.mtcnn_files import download_mtcnn_weights, find_mtcnn_weights

    cache = REPO / ".cache" / "mtcnn"
    found = find_mtcnn_weights(mtcnn_search_dirs() + [cache])
    return found or download_mtcnn_weights(cache, log_fn=lambda m: print(m, file=sys.stderr))


def _stats(xs: list[float]) -> dict:
    return {"median_s": statistics.median(xs), "min_s": min(xs), "max_s": max(xs), "all_s": xs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024, help="square input side in pixels (default 1024)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from PIL import Image

    from facelift_models.face.crop import crop_face
    from facelift_models.face.mtcnn import load_mtcnn

    if args.threads:
        torch.set_num_threads(args.threads)
    photo = np.asarray(Image.open(REPO / "samples" / "astronaut.png").convert("RGB")
                       .resize((args.size, args.size), Image.BICUBIC))
    detector = load_mtcnn(_weights_dir(), args.device)

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        crop_face(photo, detector=detector, background="keep")
    det_t, crop_t = [], []
    for _ in range(args.repeats):
        sync()
        t0 = time.perf_counter()
        det = detector.detect(photo)
        sync()
        t1 = time.perf_counter()
        res = crop_face(photo, detector=detector, background="keep")
        sync()
        t2 = time.perf_counter()
        det_t.append(t1 - t0)
        crop_t.append(t2 - t1)
    result = {
        "benchmark": "face_crop",
        "input": f"samples/astronaut.png bicubic-upscaled to {args.size}x{args.size}",
        "device": args.device,
        "device_name": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor()
        or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "n_faces": len(det),
        "pyramid_scales": len(det.scales),
        "box": [round(v, 3) for v in res.box],
        "prob": res.prob,
        "detect": _stats(det_t),
        "detect_and_crop": _stats(crop_t),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(f"face crop {args.size}x{args.size} on {args.device} ({result['threads']} threads): "
          f"detect median {result['detect']['median_s']:.3f} s, detect+crop median "
          f"{result['detect_and_crop']['median_s']:.3f} s (min {result['detect_and_crop']['min_s']:.3f}, "
          f"max {result['detect_and_crop']['max_s']:.3f}) over {args.repeats} runs; "
          f"{result['pyramid_scales']} pyramid scales; peak RSS {result['peak_rss_mb']:.0f} MB")
    if args.out:
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
