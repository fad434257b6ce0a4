"""The MTCNN face-detector weight files (``pnet.pt``, ``rnet.pt``, ``onet.pt`` of facenet-pytorch 2.6.0, MIT):
where they are, whether they are the right files, what to tell the user when they are not, and how to fetch them
(``pip download`` of the wheel, no torch).  The detector itself is :mod:`facelift_models.face.mtcnn`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import WeightsError
from .store import MTCNN_SHA256, facenet_pytorch_data_dir, sha256_of

log = logging.getLogger(__name__)

# The three weight files of facenet-pytorch 2.6.0 (``facenet_pytorch/data/*.pt`` in the wheel, MIT licence)
# and their sha256 (store.MTCNN_SHA256): facts about that public release, used to refuse corrupt or different files.
FACENET_PYTORCH_VERSION = "2.6.0"
WEIGHT_FILES = tuple(MTCNN_SHA256)


def _candidates(d: Path) -> Iterable[Path]:
    # The folder itself, or an unzipped wheel / package folder inside it.
    yield d
    yield d / "data"
    yield d / "facenet_pytorch" / "data"


def _has_all(d: Path) -> bool:
    return all((d / name).is_file() for name in WEIGHT_FILES)


def find_mtcnn_weights(search_dirs: Sequence[Path | str] = ()) -> Path | None:
    """The first folder holding ``pnet.pt``, ``rnet.pt`` and ``onet.pt``: each of ``search_dirs`` in order
    (also its ``data/`` or ``facenet_pytorch/data/`` subfolder), then an installed facenet-pytorch's
    ``data/``.  ``None`` when none has all three (see :func:`missing_weights_error`)."""
    for d in list(search_dirs) + ([p] if (p := facenet_pytorch_data_dir()) else []):
        for c in _candidates(Path(d).expanduser()):
            if _has_all(c):
                return c
    return None


HOW_TO_GET_WEIGHTS = (
    "Get the three MIT-licensed files pnet.pt, rnet.pt and onet.pt of facenet-pytorch "
    f"{FACENET_PYTORCH_VERSION} in one of these ways: (1) `python scripts/fetch_mtcnn_weights.py "
    "--models-dir ComfyUI/models/facelift` (pip-downloads the wheel from PyPI, checks the sha256 and writes "
    "ComfyUI/models/facelift/mtcnn/); (2) by hand: `pip download --no-deps "
    f"facenet-pytorch=={FACENET_PYTORCH_VERSION}`, unzip `facenet_pytorch/data/*.pt` from the .whl (a zip file) "
    "into ComfyUI/models/facelift/mtcnn/; (3) `pip install --no-deps "
    f"facenet-pytorch=={FACENET_PYTORCH_VERSION}` into the same Python (its data/ folder is found automatically)."
)


def require_mtcnn_weights(search_dirs: Sequence[Path | str]) -> Path:
    """:func:`find_mtcnn_weights`, raising :func:`missing_weights_error` when nothing is found."""
    found = find_mtcnn_weights(search_dirs)
    if found is None:
        raise missing_weights_error(search_dirs)
    return found


def missing_weights_error(searched: Sequence[Path | str]) -> WeightsError:
    """The user-facing error when :func:`find_mtcnn_weights` found nothing."""
    where = [str(Path(d).expanduser()) for d in searched]
    pkg = facenet_pytorch_data_dir()
    where.append(f"an installed facenet_pytorch package ({pkg if pkg else 'not installed, or without its data files'})")
    return WeightsError("The MTCNN face-detector weights were not found. Looked in: " + "; ".join(where)
                        + ". " + HOW_TO_GET_WEIGHTS)


def verify_mtcnn_weights(weights_dir: Path | str) -> None:
    """Raise :class:`WeightsError` unless the folder holds the three files with the known sha256."""
    d = Path(weights_dir)
    missing = [n for n in WEIGHT_FILES if not (d / n).is_file()]
    if missing:
        raise WeightsError(f"MTCNN weights folder {d} lacks {', '.join(missing)}. " + HOW_TO_GET_WEIGHTS)
    for name in WEIGHT_FILES:
        digest = sha256_of(d / name)
        if digest != MTCNN_SHA256[name]:
            raise WeightsError(
                f"{d / name} is not the facenet-pytorch {FACENET_PYTORCH_VERSION} file (sha256 {digest}, expected "
                f"{MTCNN_SHA256[name]}): it is corrupt, truncated or from another release. Delete it and get "
                "the files again. " + HOW_TO_GET_WEIGHTS)


def download_mtcnn_weights(dest: Path | str, log_fn=None) -> Path:
    """Fetch the three files into ``dest`` with ``pip download --no-deps facenet-pytorch==2.6.0`` (from the
    package index pip is configured for, PyPI by default), unzip them from the wheel, check their sha256 and
    move them in place atomically.  Says what it downloads before it does."""
    say = log_fn or log.warning
    dest = Path(dest).expanduser()
    if _has_all(dest):
        try:
            verify_mtcnn_weights(dest)
            return dest
        except WeightsError:
            pass
    say(f"Downloading facenet-pytorch {FACENET_PYTORCH_VERSION} (1.9 MB wheel, MIT) from the Python package index "
        f"with pip to extract the MTCNN weights into {dest}")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="facelift-mtcnn-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, f"facenet-pytorch=={FACENET_PYTORCH_VERSION}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("facenet_pytorch-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise WeightsError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): "
                               f"{(proc.stderr or proc.stdout).strip()[-800:]} " + HOW_TO_GET_WEIGHTS)
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in WEIGHT_FILES:
                part = dest / f".{name}.part"
                with zf.open(f"facenet_pytorch/data/{name}") as src, open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                digest = sha256_of(part)
                if digest != MTCNN_SHA256[name]:
                    part.unlink(missing_ok=True)
                    raise WeightsError(f"{name} from {wheels[0].name} has sha256 {digest}, expected "
                                       f"{MTCNN_SHA256[name]}; not installing it.")
                os.replace(part, dest / name)
    return dest
