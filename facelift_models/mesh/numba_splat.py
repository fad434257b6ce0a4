"""Fast CPU splatting of Gaussians into the optical-depth grid, compiled with numba (optional, imported lazily).

The same sums as ``density._splat_level`` (torch), in one fused loop: per Gaussian, the voxels of the ball of its
radius, ``a = min(0.99, o exp(-m/2))``, ``depth += -log(1 - a)`` where ``a > cutoff``. Serial (writes of
neighbouring Gaussians overlap), about 20x faster than the batched torch code on CPU.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..render.numba_cpu import _kernel


@_kernel(fastmath=True)
def _splat(depth, X, Y, Z, ox, oy, oz, h, means, inv, opac, radius, cutoff, alpha_clamp):
    for i in range(means.shape[0]):
        mx, my, mz = means[i, 0], means[i, 1], means[i, 2]
        cx = int(math.floor((mx - ox) / h + 0.5))
        cy = int(math.floor((my - oy) / h + 0.5))
        cz = int(math.floor((mz - oz) / h + 0.5))
        r = radius[i]
        r2 = (r + 0.5) * (r + 0.5)
        a00, a01, a02, a11, a12, a22 = inv[i, 0], inv[i, 1], inv[i, 2], inv[i, 3], inv[i, 4], inv[i, 5]
        o = opac[i]
        for ix in range(max(cx - r, 0), min(cx + r + 1, X)):
            dxi = ix - cx
            dx = ox + ix * h - mx
            for iy in range(max(cy - r, 0), min(cy + r + 1, Y)):
                dyi = iy - cy
                dy = oy + iy * h - my
                for iz in range(max(cz - r, 0), min(cz + r + 1, Z)):
                    dzi = iz - cz
                    if dxi * dxi + dyi * dyi + dzi * dzi > r2:
                        continue
                    dz = oz + iz * h - mz
                    m = (a00 * dx * dx + a11 * dy * dy + a22 * dz * dz
                         + 2.0 * (a01 * dx * dy + a02 * dx * dz + a12 * dy * dz))
                    a = o * math.exp(-0.5 * m)
                    if a > alpha_clamp:
                        a = alpha_clamp
                    if a > cutoff:
                        depth[(ix * Y + iy) * Z + iz] += -math.log1p(-a)


def splat_level(depth: torch.Tensor, shape, origin: torch.Tensor, h: float, means, inv_cov, opacities, radius,
                cutoff: float, alpha_clamp: float, tick, batch: int = 200_000) -> None:
    """Add the optical depth of the Gaussians to the flat CPU float32 grid ``depth`` (in place)."""
    X, Y, Z = (int(n) for n in shape)
    o = [float(v) for v in origin.tolist()]
    d = depth.numpy()
    inv6 = inv_cov.reshape(-1, 9)[:, [0, 1, 2, 4, 5, 8]]
    arrays = [np.ascontiguousarray(t.detach().cpu().numpy().astype(dt))
              for t, dt in ((means, np.float32), (inv6, np.float32), (opacities, np.float32), (radius, np.int64))]
    for s in range(0, arrays[0].shape[0], batch):  # batches only so that progress and Cancel are honoured
        _splat(d, X, Y, Z, o[0], o[1], o[2], float(h), *(a[s:s + batch] for a in arrays), float(cutoff),
               float(alpha_clamp))
        tick(min(batch, arrays[0].shape[0] - s))
