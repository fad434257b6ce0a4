"""Splat Gaussians into a voxel occupancy grid (pure torch; CPU or GPU).

Each Gaussian i contributes an opacity ``a_i(x) = o_i exp(-1/2 (x - mu_i)^T S_i'^-1 (x - mu_i))`` where
``S_i' = S_i + (h/2)^2 I`` is its covariance widened by half a voxel (so Gaussians smaller than a voxel are
still sampled, like the renderer's 2D ``eps2d``). The grid stores the optical depth ``sum_i -log(1 - a_i(x))``;
``occupancy = 1 - exp(-depth)`` is the 3D analogue of the renderer's alpha compositing, and the iso-surface
``occupancy = level`` is the mesh surface.

Every Gaussian is evaluated on a ball of voxels around its centre that covers the distance at which its opacity
falls below ``cutoff``; Gaussians are bucketed by that radius so each bucket is one dense batch, and wide ones go
to coarser grid levels (see ``splat_optical_depth``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

ALPHA_CLAMP = 0.99   # a single Gaussian never makes a voxel fully opaque (keeps -log finite)
MIN_EXTENT = 1e-6    # world units (a head is ~0.5): Gaussians spanning less than this enclose no volume
SAMPLES_PER_SIGMA = 0.75  # a grid level samples a Gaussian whose thinnest std is >= 0.75 of its voxel
MAX_LEVEL = 4        # coarsest level: voxel 16 h
MAX_RADIUS = 12      # voxels of a level: longer Gaussians (thin needles or wide flat discs) are truncated there
BATCH_ELEMENTS = 1 << 22  # Gaussians x stencil voxels evaluated per torch batch (memory bound, ~100 MB)


@dataclass(frozen=True)
class Grid:
    """An axis-aligned voxel grid: voxel (i, j, k) has its centre at ``origin + (i, j, k) * voxel``."""

    origin: tuple[float, float, float]
    voxel: float
    shape: tuple[int, int, int]

    def to_world(self, ijk):
        """World coordinates of (fractional) voxel indices [..., 3] (a numpy array)."""
        import numpy as np

        return np.asarray(ijk, dtype=np.float64) * self.voxel + np.asarray(self.origin, dtype=np.float64)


def _numba_splat():
    """``numba_splat.splat_level``, or None when numba is not installed (or cannot be imported here)."""
    global _NUMBA
    if _NUMBA is False:
        try:
            from .numba_splat import splat_level
        except Exception:  # not installed, or an incompatible numba/llvmlite
            _NUMBA = None
        else:
            _NUMBA = splat_level
    return _NUMBA


_NUMBA = False  # not looked up yet


def covariance_inverses(scales: torch.Tensor, quats: torch.Tensor, extra_var: float) -> torch.Tensor:
    """[N,3,3] inverses of ``R diag(s^2) R^T + extra_var I`` for unit quaternions (w,x,y,z)."""
    w, x, y, z = quats.unbind(-1)
    R = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(-1, 3, 3)
    # adding extra_var*I keeps the eigenvectors: the inverse is R diag(1/(s^2+extra)) R^T
    inv_var = 1.0 / (scales * scales + extra_var)
    return (R * inv_var[:, None, :]) @ R.transpose(1, 2)


def stencil(radius: int, device) -> torch.Tensor:
    """Integer offsets [K,3] of the voxels within ``radius + 0.5`` of the centre voxel (a discrete ball)."""
    r = torch.arange(-radius, radius + 1, device=device)
    off = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), dim=-1).reshape(-1, 3)
    return off[(off * off).sum(-1) <= (radius + 0.5) ** 2]


def _quadratic_form(d: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """d^T A d for d [B,K,3] and symmetric A [B,3,3] (six products instead of a batched matmul)."""
    dx, dy, dz = d.unbind(-1)
    a = A.reshape(-1, 9)[:, None, :]
    return (a[..., 0] * dx * dx + a[..., 4] * dy * dy + a[..., 8] * dz * dz
            + 2.0 * (a[..., 1] * dx * dy + a[..., 2] * dx * dz + a[..., 5] * dy * dz))


def _splat_level(depth: torch.Tensor, shape, origin: torch.Tensor, h: float, means, scales, quats, opacities,
                 radius, extra: float, cutoff: float, tick) -> None:
    """Add the optical depth of the given Gaussians to the flat grid ``depth`` of voxel size ``h``
    (numba's fused loop on CPU when numba is installed, else batched torch)."""
    if depth.device.type == "cpu" and _numba_splat() is not None:
        _numba_splat()(depth, shape, origin, h, means, covariance_inverses(scales, quats, extra), opacities,
                       radius, cutoff, ALPHA_CLAMP, tick)
        return
    dev = means.device
    X, Y, Z = shape
    dims = torch.tensor([X, Y, Z], device=dev)
    strides = torch.tensor([Y * Z, Z, 1], device=dev)
    for r in range(1, int(radius.max()) + 1 if radius.numel() else 1):
        idx = torch.nonzero(radius == r).squeeze(1)
        if idx.numel() == 0:
            continue
        off = stencil(r, dev)
        batch = max(1, BATCH_ELEMENTS // off.shape[0])
        for s in range(0, idx.numel(), batch):
            sel = idx[s:s + batch]
            mu = means[sel]
            vox = torch.round((mu - origin) / h).to(torch.int64)[:, None, :] + off[None]   # [B,K,3]
            d = (vox.to(mu.dtype) * h + origin) - mu[:, None, :]
            m = _quadratic_form(d, covariance_inverses(scales[sel], quats[sel], extra))
            a = (opacities[sel][:, None] * torch.exp(-0.5 * m)).clamp_max(ALPHA_CLAMP)
            ok = (a > cutoff) & ((vox >= 0) & (vox < dims)).all(-1)
            depth.index_add_(0, (vox[ok] * strides).sum(-1), -torch.log1p(-a[ok]))
            tick(sel.numel())


def splat_optical_depth(means: torch.Tensor, scales: torch.Tensor, quats: torch.Tensor, opacities: torch.Tensor,
                        grid: Grid, cutoff: float = 0.01,
                        progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """The optical depth grid [X,Y,Z] (float32, on the Gaussians' device) of activated Gaussians.

    ``means``/``scales`` [N,3] world units, ``quats`` [N,4] unit w,x,y,z, ``opacities`` [N] in [0,1].
    Thick Gaussians are splatted on coarser grids (voxel 2h, 4h, ... as long as the voxel stays under 4/3 of
    their thinnest std) and trilinearly upsampled, so their cost stays bounded; flat ones stay on the fine grid.
    ``progress(done, total)`` is called after each batch with Gaussian counts (it may raise to stop).
    """
    dev = means.device
    X, Y, Z = grid.shape
    h = float(grid.voxel)
    out = torch.zeros(X, Y, Z, dtype=torch.float32, device=dev)
    means, scales, quats, opacities = (t.float() for t in (means, scales, quats, opacities))
    extra = (0.5 * h) ** 2
    keep = opacities > cutoff
    means, scales, quats, opacities = means[keep], scales[keep], quats[keep], opacities[keep]
    if means.shape[0] == 0:
        return out
    sigma_max = torch.sqrt(scales.amax(-1) ** 2 + extra)
    sigma_min = torch.sqrt(scales.amin(-1) ** 2 + extra)
    # distance (in sigmas) at which o * exp(-m/2) == cutoff
    k = torch.sqrt(2.0 * torch.log((opacities / cutoff).clamp_min(1.0)))
    reach = k * sigma_max / h                                   # in fine voxels
    # the coarsest level whose voxel still resolves the Gaussian's thinnest axis (voxel <= sigma_min / 0.75)
    level = torch.floor(torch.log2(sigma_min / (SAMPLES_PER_SIGMA * h))).clamp(0, MAX_LEVEL).to(torch.int64)
    origin = torch.tensor(grid.origin, dtype=torch.float32, device=dev)
    total, done = int(means.shape[0]), [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    for L in range(int(level.max()) + 1):
        sel = level == L
        if not bool(sel.any()):
            continue
        f = 2 ** L
        shape = tuple((n - 1 + f - 1) // f + 1 for n in (X, Y, Z))  # coarse centres cover the fine ones
        coarse = torch.zeros(shape[0] * shape[1] * shape[2], dtype=torch.float32, device=dev)
        radius = torch.ceil(reach[sel] / f - 0.5).clamp(1, MAX_RADIUS).to(torch.int64)
        _splat_level(coarse, shape, origin, h * f, means[sel], scales[sel], quats[sel], opacities[sel], radius,
                     extra, cutoff, tick)
        coarse = coarse.reshape(shape)
        if f > 1:  # coarse centre i sits on fine centre f*i: align_corners=True maps them exactly
            size = tuple((n - 1) * f + 1 for n in shape)
            coarse = torch.nn.functional.interpolate(coarse[None, None], size=size, mode="trilinear",
                                                     align_corners=True)[0, 0, :X, :Y, :Z]
        out += coarse
    return out


def robust_bounds(means: torch.Tensor, opacities: torch.Tensor, quantile: float = 1e-3, cells: int = 64,
                  min_component: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """(lo, hi) [3] of the main body of the Gaussians, without the floaters around it.

    First the ``quantile``..``1-quantile`` range per axis (drops far outliers); then the opacity mass of the
    Gaussians on a coarse ``cells``^3 histogram of that box: cells holding at least one unit of opacity, their
    26-connected components, and the box of the components with at least ``min_component`` of the largest one's
    mass. When those components hold under half of the mass (sparse splats), the quantile box is kept.
    """
    import numpy as np
    from scipy import ndimage

    m = means.float()
    if m.shape[0] > 16_000_000:  # torch.quantile's input limit
        m = m[torch.randperm(m.shape[0], device=m.device)[:16_000_000]]
    q = torch.tensor([quantile, 1.0 - quantile], device=m.device)
    lo, hi = (torch.quantile(m, q, dim=0) if m.shape[0] > 1 else torch.stack([m[0], m[0]])).cpu()
    size = (hi - lo).clamp_min(1e-12)
    cell = ((means.float().cpu() - lo) / size * cells).floor().long()
    inside = ((cell >= 0) & (cell < cells)).all(-1)
    flat = (cell[inside] * torch.tensor([cells * cells, cells, 1])).sum(-1)
    mass = torch.zeros(cells ** 3).index_add_(0, flat, opacities.float().cpu()[inside]).reshape(cells, cells, cells)
    mass = mass.numpy()
    labels, n = ndimage.label(mass >= 1.0, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        return lo, hi
    comp_mass = ndimage.sum_labels(mass, labels, index=np.arange(1, n + 1))
    keep = np.zeros(n + 1, dtype=bool)
    keep[1:] = comp_mass >= min_component * comp_mass.max()
    if comp_mass[keep[1:]].sum() < 0.5 * float(mass.sum()):
        return lo, hi
    idx = np.argwhere(keep[labels])
    c_lo, c_hi = torch.from_numpy(idx.min(0)).float(), torch.from_numpy(idx.max(0) + 1).float()
    return lo + size * c_lo / cells, lo + size * c_hi / cells


def fit_grid(lo: torch.Tensor, hi: torch.Tensor, resolution: int, margin: float = 0.05,
             min_extent: float = 0.0) -> Grid | None:
    """A cubic-voxel grid over the box ``lo``..``hi`` (at least ``min_extent`` wide, widened by ``margin`` of the
    largest side) with ``resolution`` voxels along the largest side and two empty voxels of padding on every face
    (so the iso-surface closes). None when the extent is below ``MIN_EXTENT`` (nothing to grid)."""
    lo, hi = lo.double().cpu(), hi.double().cpu()
    centre = 0.5 * (lo + hi)
    half = torch.maximum(0.5 * (hi - lo), torch.full_like(lo, 0.5 * float(min_extent)))
    lo, hi = centre - half, centre + half
    ext = float((hi - lo).max())
    if not (ext > MIN_EXTENT and math.isfinite(ext)):
        return None
    lo, hi = lo - margin * ext, hi + margin * ext
    side = float((hi - lo).max())
    h = side / resolution
    pad = 2
    shape = tuple(int(math.ceil(float(hi[i] - lo[i]) / h)) + 1 + 2 * pad for i in range(3))
    origin = tuple(float(lo[i]) - pad * h for i in range(3))
    return Grid(origin, h, shape)  # type: ignore[arg-type]
