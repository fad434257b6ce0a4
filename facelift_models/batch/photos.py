"""A folder of photos as one image batch (for ComfyUI's FaceLift Load Photos node): sorted, limited, padded.

ComfyUI IMAGE batches have one size, photos do not: each photo is scaled down to ``max_side`` (if larger) and put
at the top-left of a white canvas of the largest size in the batch; the returned mask marks the padding (and any
transparency of the photo) as background, so Face Crop ignores it either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .pipeline import PHOTO_SUFFIXES, is_photo_file, read_photo


def list_photos(folder: str | Path, start: int = 0, limit: int = 0) -> list[Path]:
    """The photos directly in ``folder`` (suffixes :data:`PHOTO_SUFFIXES`, hidden files skipped), sorted by name,
    from the ``start``-th (0-based), at most ``limit`` (0 = all)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"The photo folder {folder} does not exist.")
    files = sorted((p for p in folder.iterdir() if is_photo_file(p)), key=lambda p: p.name)
    if not files:
        raise InputError(f"No photos in {folder} (looked for {', '.join(PHOTO_SUFFIXES)} files). Put the photos "
                         "there, or choose another folder.")
    picked = files[int(start):]
    if limit:
        picked = picked[:int(limit)]
    if not picked:
        raise InputError(f"{folder} has {len(files)} photos, but start = {start} skips all of them.")
    return picked


def _fit(rgb: np.ndarray, alpha: np.ndarray | None, max_side: int):
    from PIL import Image

    h, w = rgb.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return rgb, alpha
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS))
    if alpha is not None:
        alpha = np.asarray(Image.fromarray(alpha).resize(size, Image.LANCZOS))
    return rgb, alpha


def load_photo_batch(paths: list[Path], max_side: int = 1024, progress=None):
    """(images [B,H,W,3] float32 in [0,1], background masks [B,H,W] float32 (1 = padding or transparent, ComfyUI's
    Load Image convention), names) as torch tensors. An unreadable photo is an error naming it.
    ``progress(done, total)`` is called after each photo (it may raise to cancel)."""
    import torch

    from ..face.crop import to_rgb_uint8

    photos = []
    for p in paths:
        rgb, alpha = to_rgb_uint8(read_photo(p))
        photos.append(_fit(rgb, alpha, int(max_side)))
        if progress is not None:
            progress(len(photos), len(paths))
    H = max(rgb.shape[0] for rgb, _ in photos)
    W = max(rgb.shape[1] for rgb, _ in photos)
    images = np.full((len(photos), H, W, 3), 255, np.uint8)
    background = np.ones((len(photos), H, W), np.float32)
    for i, (rgb, alpha) in enumerate(photos):
        h, w = rgb.shape[:2]
        images[i, :h, :w] = rgb
        background[i, :h, :w] = 0.0 if alpha is None else 1.0 - alpha.astype(np.float32) / 255.0
    return (torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(background),
            [p.name for p in paths])
