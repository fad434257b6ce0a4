"""Test helper: a folder with the real MTCNN weights (facenet-pytorch 2.6.0), fetched once into .cache/mtcnn.

Uses an existing copy ($FACELIFT_MTCNN_DIR, $FACELIFT_MODELS_DIR/mtcnn, an installed facenet-pytorch or the
cache) and otherwise runs ``scripts/fetch_mtcnn_weights.py`` (pip download from PyPI + unzip + sha256 check).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "mtcnn"


def mtcnn_weights_dir() -> Path:
    from facelift_models.config import mtcnn_search_dirs
    from facelift_models.weights.mtcnn_files import find_mtcnn_weights

    found = find_mtcnn_weights(mtcnn_search_dirs() + [CACHE])
    if found is not None:
        return found
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "fetch_mtcnn_weights.py"), "--dest", str(CACHE)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"fetch_mtcnn_weights.py failed:\n{proc.stdout}\n{proc.stderr}"
    return CACHE
