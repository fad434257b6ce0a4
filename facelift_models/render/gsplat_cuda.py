"""CUDA backend through gsplat (optional; written against gsplat 1.5.x ``gsplat.rasterization``).

gsplat compiles its CUDA kernels just in time on first use; when that fails (no compiler, no CUDA toolkit)
the exception propagates to ``render``, which logs one line and falls back to the torch backend.
Colours are passed already activated (``sh_degree=None``: gsplat uses them as they are), the background is
applied by ``render`` from the returned alpha, and "RGB+D" gives the accumulated depth for ``return_depth``.
"""

from __future__ import annotations

import torch

from .common import PreparedScene, RasterSettings


def render(scene: PreparedScene, viewmats: torch.Tensor, Ks: torch.Tensor, s: RasterSettings):
    """All cameras: (color_sum [C,H,W,3], T_final [C,H,W], depth_sum [C,H,W] or None) on the scene's device."""
    from gsplat import rasterization  # ImportError -> fallback in render()

    dev = scene.means.device
    colors, alphas, _meta = rasterization(
        means=scene.means, quats=scene.quats, scales=scene.scales, opacities=scene.opacities,
        colors=scene.colors, viewmats=viewmats.to(dev), Ks=Ks.to(dev), width=s.width, height=s.height,
        near_plane=s.near_plane, far_plane=s.far_plane, eps2d=s.eps2d, sh_degree=None, packed=False,
        tile_size=16, backgrounds=None, render_mode="RGB+D" if s.return_depth else "RGB",
        rasterize_mode="classic", camera_model="pinhole",
    )
    T = 1.0 - alphas[..., 0]
    if s.return_depth:
        return colors[..., :3], T, colors[..., 3]
    return colors, T, None
