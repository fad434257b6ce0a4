"""Turntable frames: float renders to uint8 frames, and an optional MP4 writer through PyAV.

The official turntable video is uint8(clip(x * 255)) (truncation) at 30 fps, H.264 (spec §7). PyAV ships
with ComfyUI (its video types use it); without it, ``write_mp4`` raises an InputError naming the fix and the
frames remain available as an image batch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..atomic_io import atomic_path
from ..errors import InputError


def to_uint8_frames(rgb: torch.Tensor) -> np.ndarray:
    """[F,H,W,3] float (unclamped renders) -> [F,H,W,3] uint8 = uint8(clip(x * 255)), truncated like the
    official video writer."""
    x = rgb.detach().to("cpu", torch.float32).clamp(0.0, 1.0) * 255.0
    return x.to(torch.uint8).numpy()


def av_available() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def write_mp4(rgb: torch.Tensor, path: str | os.PathLike, fps: int = 30, crf: int = 0,
              codec: str = "libx264") -> Path:
    """Write [F,H,W,3] float frames as an MP4 (H.264, ``crf=0`` = lossless like the official video; yuv444p
    keeps full colour for crf 0, else yuv420p for player compatibility). Atomic (temp file, then rename)."""
    try:
        import av
    except ImportError:
        raise InputError("Writing MP4 needs PyAV (`python -m pip install av`; ComfyUI normally ships it). "
                         "The turntable frames are still available as an IMAGE batch.") from None
    frames = to_uint8_frames(rgb)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise InputError(f"write_mp4: expected [F,H,W,3] frames; got {tuple(rgb.shape)}.")
    f, h, w, _ = frames.shape
    if codec == "libx264" and (h % 2 or w % 2):
        raise InputError(f"H.264 needs even frame sizes; got {w}x{h}. Render at an even width and height.")
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(codec, rate=int(fps))
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv444p" if crf == 0 else "yuv420p"
        stream.options = {"crf": str(int(crf))}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)
