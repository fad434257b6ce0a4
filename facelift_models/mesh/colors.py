"""Per-vertex colours of a mesh made from Gaussians: from the Gaussians near each vertex, or from renders."""

from __future__ import annotations

import numpy as np
import torch

from .density import covariance_inverses

NEIGHBOURS = 16


def from_gaussians(vertices: np.ndarray, means: torch.Tensor, scales: torch.Tensor, quats: torch.Tensor,
                   opacities: torch.Tensor, colors: torch.Tensor, voxel: float) -> np.ndarray:
    """[V,3] colours: the average of the ``NEIGHBOURS`` nearest Gaussians' colours, each weighted by its opacity
    at the vertex (``o exp(-m/2)``, covariance widened by half a voxel as in the density grid)."""
    from scipy.spatial import cKDTree

    mu = means.detach().float().cpu()
    k = min(NEIGHBOURS, mu.shape[0])
    _, nn = cKDTree(mu.numpy()).query(vertices, k=k, workers=-1)
    nn = torch.from_numpy(np.asarray(nn, dtype=np.int64).reshape(len(vertices), k))
    v = torch.from_numpy(np.asarray(vertices, dtype=np.float32))
    d = v[:, None, :] - mu[nn]                                           # [V,k,3]
    A = covariance_inverses(scales.detach().float().cpu(), quats.detach().float().cpu(), (0.5 * voxel) ** 2)
    m = torch.einsum("vki,vkij,vkj->vk", d, A[nn], d)
    w = opacities.detach().float().cpu()[nn] * torch.exp(-0.5 * m)      # [V,k]
    c = colors.detach().float().cpu()[nn]                                # [V,k,3]
    wsum = w.sum(1, keepdim=True)
    out = (w[..., None] * c).sum(1) / wsum.clamp_min(1e-12)
    out = torch.where(wsum > 1e-8, out, c[:, 0])  # nobody reaches the vertex: the nearest Gaussian's colour
    return out.clamp(0.0, 1.0).numpy().astype(np.float32)


def from_views(vertices: np.ndarray, normals: np.ndarray, gaussians, fallback: np.ndarray, views: int = 24,
               size: int = 384, progress=None) -> np.ndarray:
    """[V,3] colours seen in renders of the Gaussians from ``views`` cameras around the head (3 rings of
    elevations -30, 0, +35 deg plus top and bottom), each vertex averaging the views in which it is visible
    (its depth matches the rendered expected depth) weighted by the view's alpha and how squarely it faces the
    camera. Vertices seen by no view keep ``fallback``."""
    from ..cameras import Cameras, orbit
    from ..render import render

    per_ring = max(1, (views - 2) // 3)
    poses = [(360.0 * i / per_ring + 15.0 * r, el) for r, el in enumerate((-30.0, 0.0, 35.0))
             for i in range(per_ring)] + [(0.0, 85.0), (0.0, -85.0)]
    cams = [orbit(azimuth_deg=a, elevation_deg=e, width=size) for a, e in poses]
    cams = Cameras(torch.cat([c.c2w for c in cams]), torch.cat([c.fxfycxcy for c in cams]), size, size)
    dev = gaussians.device
    out = render(gaussians, cams.to(dev), background=(0.0, 0.0, 0.0), return_depth=True,
                 progress=progress, cameras_per_call=4)
    rgb, alpha, depth = (t.float().cpu() for t in (out.rgb, out.alpha, out.depth))
    v = torch.from_numpy(np.asarray(vertices, dtype=np.float32))
    nrm = torch.from_numpy(np.asarray(normals, dtype=np.float32))
    w2c = cams.w2c().float()
    K = cams.Ks().float()
    acc = torch.zeros(len(v), 3)
    wsum = torch.zeros(len(v))
    diag = float(v.amax(0).sub(v.amin(0)).norm())
    tol = 0.01 * diag
    for c in range(len(cams)):
        pc = v @ w2c[c, :3, :3].T + w2c[c, :3, 3]
        z = pc[:, 2]
        uv = (pc[:, :2] / z.clamp_min(1e-6)[:, None]) * K[c, [0, 1], [0, 1]] + K[c, :2, 2]
        px = uv.floor().long()
        inside = (z > 0) & (px[:, 0] >= 0) & (px[:, 0] < size) & (px[:, 1] >= 0) & (px[:, 1] < size)
        pxc = px.clamp(0, size - 1)
        a = alpha[c, pxc[:, 1], pxc[:, 0], 0]
        dz = depth[c, pxc[:, 1], pxc[:, 0], 0]
        to_cam = cams.c2w[c, :3, 3].float() - v
        facing = (nrm * to_cam).sum(1) / to_cam.norm(dim=1).clamp_min(1e-9)
        visible = inside & (a > 0.5) & ((z - dz).abs() < tol) & (facing > 0.1)
        w = torch.where(visible, a * facing * facing, torch.zeros_like(a))
        col = rgb[c, pxc[:, 1], pxc[:, 0]] / a.clamp_min(1e-6)[:, None]  # un-premultiply (black background)
        acc += w[:, None] * col
        wsum += w
    res = torch.from_numpy(np.asarray(fallback, dtype=np.float32)).clone()
    seen = wsum > 1e-6
    res[seen] = acc[seen] / wsum[seen, None]
    return res.clamp(0.0, 1.0).numpy().astype(np.float32)
