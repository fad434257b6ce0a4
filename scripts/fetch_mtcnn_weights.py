#!/usr/bin/env python
"""Put the MTCNN face-detector weights (pnet.pt, rnet.pt, onet.pt of facenet-pytorch 2.6.0, MIT) in place.

They are pip-downloaded as the facenet-pytorch wheel from the package index pip is configured for (PyPI by
default; nothing else of the package is installed), unzipped from ``facenet_pytorch/data/`` and checked
against their known sha256.

    python scripts/fetch_mtcnn_weights.py                                  # -> <repo>/.cache/mtcnn (tests)
    python scripts/fetch_mtcnn_weights.py --models-dir ComfyUI/models/facelift   # -> .../facelift/mtcnn
    python scripts/fetch_mtcnn_weights.py --dest DIR                       # -> DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DEST = REPO / ".cache" / "mtcnn"


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    from facelift_models.errors import WeightsError
    from facelift_models.weights.mtcnn_files import download_mtcnn_weights

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--models-dir", type=Path, help="the FaceLift models folder; files go to its mtcnn/ subfolder")
    g.add_argument("--dest", type=Path, help=f"folder for the three files (default {DEFAULT_DEST})")
    args = ap.parse_args(argv)
    dest = args.models_dir / "mtcnn" if args.models_dir else (args.dest or DEFAULT_DEST)
    try:
        out = download_mtcnn_weights(dest, log_fn=lambda msg: print(msg, file=sys.stderr))
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
