"""EWA projection of 3D Gaussians into one pinhole camera (classic 3DGS / gsplat 1.5 "classic" semantics).

Shared by the torch backend (which rasterises with it) and by the parity runner (which compares the
per-Gaussian means2d / depths / conics / radii with the oracle's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Footprint radius in standard deviations (of the 2D covariance diagonal), as gsplat's torch reference.
RADIUS_SIGMAS = 3.33
# The Jacobian is evaluated at x/z, y/z clamped to the image extent plus this fraction of tan(fov/2).
SCREEN_LIMIT_MARGIN = 0.3


@dataclass
class Projection:
    """Per-Gaussian projection into one camera; ``radii`` is 0 where the Gaussian is culled."""

    means2d: torch.Tensor  # [N,2] pixels (u,v); pixel (row i, col j) has its centre at (j+0.5, i+0.5)
    depths: torch.Tensor   # [N] view-space z
    conics: torch.Tensor   # [N,3] (A,B,C) of inverse(cov2d + eps2d I)
    radii: torch.Tensor    # [N,2] int32 (rx, ry) = ceil(3.33 sqrt(diag cov2d)), 0 = culled
    cov2d_diag: torch.Tensor | None = None  # [N,2] diagonal of cov2d + eps2d I (for opacity-aware footprints)

    @property
    def visible(self) -> torch.Tensor:
        return (self.radii > 0).all(dim=-1)


def rotation_matrices(quats_unit: torch.Tensor) -> torch.Tensor:
    """[N,3,3] rotation matrices of unit quaternions (w,x,y,z)."""
    w, x, y, z = quats_unit.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(-1, 3, 3)


def covariances(quats_unit: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """[N,3,3] world covariances R diag(s)^2 R^T."""
    m = rotation_matrices(quats_unit) * scales[:, None, :]
    return m @ m.transpose(1, 2)


def project(means: torch.Tensor, covars: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor,
            width: int, height: int, near_plane: float, far_plane: float, eps2d: float) -> Projection:
    """Project N Gaussians (world means [N,3], covariances [N,3,3]) with one w2c [4,4] and K [3,3]."""
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    mc = means @ R.T + t                       # [N,3] camera-frame means
    cc = R @ covars @ R.T                      # [N,3,3] camera-frame covariances
    tx, ty, tz = mc.unbind(-1)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + SCREEN_LIMIT_MARGIN * tan_fovx
    lim_x_neg = cx / fx + SCREEN_LIMIT_MARGIN * tan_fovx
    lim_y_pos = (height - cy) / fy + SCREEN_LIMIT_MARGIN * tan_fovy
    lim_y_neg = cy / fy + SCREEN_LIMIT_MARGIN * tan_fovy
    jx = tz * torch.clamp(tx / tz, min=-lim_x_neg, max=lim_x_pos)
    jy = tz * torch.clamp(ty / tz, min=-lim_y_neg, max=lim_y_pos)
    zero = torch.zeros_like(tz)
    J = torch.stack([fx / tz, zero, -fx * jx / (tz * tz),
                     zero, fy / tz, -fy * jy / (tz * tz)], dim=-1).reshape(-1, 2, 3)
    cov2d = J @ cc @ J.transpose(1, 2)
    cov2d = cov2d + eps2d * torch.eye(2, dtype=cov2d.dtype, device=cov2d.device)
    a, b, c = cov2d[:, 0, 0], 0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0]), cov2d[:, 1, 1]
    det = a * c - b * b
    det_safe = det.clamp(min=1e-10)
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)
    means2d = torch.stack([fx * tx / tz + cx, fy * ty / tz + cy], dim=-1)
    radii = torch.ceil(RADIUS_SIGMAS * torch.sqrt(torch.stack([a, c], dim=-1).clamp_min(0)))
    valid = (det > 0) & (tz > near_plane) & (tz < far_plane)
    inside = ((means2d[:, 0] + radii[:, 0] > 0) & (means2d[:, 0] - radii[:, 0] < width)
              & (means2d[:, 1] + radii[:, 1] > 0) & (means2d[:, 1] - radii[:, 1] < height))
    keep = valid & inside & torch.isfinite(means2d).all(-1) & torch.isfinite(conics).all(-1)
    radii = torch.where(keep[:, None], radii, torch.zeros_like(radii))
    return Projection(means2d, tz, conics, radii.to(torch.int32), torch.stack([a, c], dim=-1))
