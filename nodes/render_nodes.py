"""Render Gaussians into IMAGE + MASK batches (turntable, the 6 official views, one orbit still, or any cameras)."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from . import cache
from .common import CATEGORY, check_interrupted, progress_bar
from .facelift_types import CamerasType, GaussianHeads, GaussiansType

PRESETS = ["turntable", "six_views", "orbit"]
BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "gray": (0.5, 0.5, 0.5)}
CHUNK = 8  # cameras per render call: progress and Cancel are honoured between chunks


def preset_cameras(preset: str, size: int, frames: int, azimuth: float, elevation: float, radius: float,
                   fov: float):
    from ..facelift_models import cameras as cams_mod
    from ..facelift_models.errors import InputError

    if preset == "turntable":
        return cams_mod.turntable(num_frames=int(frames), elevation_deg=float(elevation), radius=float(radius),
                                  fov_deg=float(fov), width=int(size))
    if preset == "six_views":
        return cams_mod.official_views(resolution=int(size))
    if preset == "orbit":
        return cams_mod.orbit(azimuth_deg=float(azimuth), elevation_deg=float(elevation), radius=float(radius),
                              fov_deg=float(fov), width=int(size))
    raise InputError(f"FaceLift Render: unknown camera preset {preset!r}; choose one of {PRESETS}.")


class FaceLiftRender(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FaceLiftRender",
            display_name="FaceLift Render",
            category=CATEGORY,
            description=(
                "Renders FaceLift Gaussians into an IMAGE batch and a MASK batch (alpha) that ComfyUI's own image "
                "and video nodes take (Save Image, Save Animated WEBP, video combine ...). Presets: a turntable "
                "around the head (official: 150 frames at 512x512), the 6 official views, or one still from any "
                "azimuth/elevation; or connect your own cameras. Runs on the GPU with gsplat when available, "
                "else on the CPU."),
            inputs=[
                GaussiansType.Input("gaussians", tooltip="Gaussians from FaceLift Reconstruct or Load PLY."),
                io.Combo.Input("preset", options=PRESETS, default="turntable",
                               tooltip="turntable = full circle starting at the front; six_views = the official "
                                       "FaceLift views; orbit = one camera at azimuth/elevation."),
                io.Int.Input("size", default=512, min=16, max=4096, step=8,
                             tooltip="Width and height of the renders in pixels."),
                io.Int.Input("frames", default=150, min=1, max=3600,
                             tooltip="Number of turntable frames (official: 150 CLI, 180 demo)."),
                io.Float.Input("azimuth", default=0.0, min=-360.0, max=360.0, step=1.0,
                               tooltip="Orbit still: degrees around the head, 0 = front, positive = the "
                                       "turntable's direction."),
                io.Float.Input("elevation", default=0.0, min=-89.0, max=89.0, step=1.0,
                               tooltip="Turntable/orbit: camera height in degrees above the eye plane."),
                io.Float.Input("radius", default=2.7, min=0.5, max=20.0, step=0.05,
                               tooltip="Turntable/orbit: camera distance from the head centre (official 2.7)."),
                io.Float.Input("fov", default=50.0, min=5.0, max=120.0, step=1.0,
                               tooltip="Turntable/orbit: horizontal field of view in degrees (official 50)."),
                io.Combo.Input("background", options=list(BACKGROUNDS), default="white",
                               tooltip="Colour behind the head (FaceLift's own renders use white)."),
                CamerasType.Input("cameras", optional=True,
                                  tooltip="Optional cameras (FaceLift Cameras or the sampler's); when connected "
                                          "they replace the preset and keep their own image size."),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="One image per camera (per head, heads in order)."),
                io.Mask.Output(display_name="masks", tooltip="Coverage (alpha) of each image, 1 = head."),
            ],
        )

    @classmethod
    def execute(cls, gaussians: GaussianHeads, preset: str = "turntable", size: int = 512, frames: int = 150,
                azimuth: float = 0.0, elevation: float = 0.0, radius: float = 2.7, fov: float = 50.0,
                background: str = "white", cameras=None) -> io.NodeOutput:
        from ..facelift_models.errors import InputError
        from ..facelift_models.render import render

        if not isinstance(gaussians, GaussianHeads):
            raise InputError("FaceLift Render: 'gaussians' must come from FaceLift Reconstruct or Load PLY.")
        cams = cameras if cameras is not None else preset_cameras(preset, size, frames, azimuth, elevation,
                                                                   radius, fov)
        device = cache.torch_device("auto")
        n = len(cams)
        bar = progress_bar(n * len(gaussians))
        images, masks = [], []
        for k, g in enumerate(gaussians.items):
            check_interrupted()

            def on_progress(done: int, total: int, k=k) -> None:  # Cancel is honoured between chunks
                bar.update_absolute(k * n + done, n * len(gaussians))
                check_interrupted()

            out = render(g.to(device), cams, background=BACKGROUNDS[background], progress=on_progress,
                         cameras_per_call=CHUNK)
            images.append(out.rgb.clamp(0, 1).float().cpu())
            masks.append(out.alpha[..., 0].clamp(0, 1).float().cpu())
        return io.NodeOutput(torch.cat(images), torch.cat(masks))


NODES = [FaceLiftRender]
