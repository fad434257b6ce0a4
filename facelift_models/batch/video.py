"""The batch runner's turntable MP4: float frames -> H.264 with PyAV (what ComfyUI's own Save Video uses).

Inside ComfyUI the turntable goes through Create Video + Save Video; outside it the runner writes the file itself.
Frames are uint8(clip(x * 255)), truncated, at 30 fps like the official turntable video (spec §7).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..atomic_io import atomic_path
from ..errors import InputError


def write_mp4(rgb: torch.Tensor, path: str | os.PathLike, fps: int = 30, crf: int = 18) -> Path:
    """Write [F,H,W,3] float frames as an H.264 MP4 (yuv420p, plays everywhere), atomically."""
    try:
        import av
    except ImportError:
        raise InputError("The turntable MP4 needs PyAV (`python -m pip install av`); or run without --turntable.") \
            from None
    frames = (rgb.detach().to("cpu", torch.float32).clamp(0.0, 1.0) * 255.0).to(torch.uint8).numpy()
    if frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames) or frames.shape[1] % 2 or frames.shape[2] % 2:
        raise InputError(f"write_mp4: expected [F,H,W,3] frames with even H and W; got {tuple(rgb.shape)}.")
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(int(crf))}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return Path(path)
