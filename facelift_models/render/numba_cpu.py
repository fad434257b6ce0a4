"""Fast CPU backend: the same EWA splatting compiled with numba (optional dependency, imported lazily).

Per camera: a parallel projection kernel, a counting-sort binning of the depth-sorted visible Gaussians into
16x16 tiles, then a rasteriser that is parallel over tiles and, inside a tile, walks the Gaussians front to
back and touches only the pixels of each Gaussian's opacity-aware box (gsplat CUDA's radius convention,
min(3.33, sqrt(2 ln(255 o))) sigmas: outside it alpha < 1/255 anyway, so the image is the untiled one). Locals are float64; inputs and outputs float32.
Compilation happens on first use (cached on disk by numba, a few seconds once), in a cache folder of this
module's own import name (see ``_kernel``).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import tempfile
from pathlib import Path

import numba as nb
import numpy as np
import torch

from .common import ALPHA_MAX, ALPHA_MIN, T_STOP, PreparedScene, RasterSettings
from ..gaussians import SH_C0
from .projection import RADIUS_SIGMAS, SCREEN_LIMIT_MARGIN
from .reference import row_bands

TILE = 16


@functools.lru_cache(maxsize=None)
def kernel_cache_dir() -> str | None:
    """A writable folder for numba's on-disk cache of these kernels, keyed by this module's import name.

    numba names its cache files after the source file alone but rebuilds a cached kernel by importing the
    module name stored inside; the same file imported as ``facelift_models.render.numba_cpu`` (tests, scripts)
    and as ``<pack>.facelift_models.render.numba_cpu`` (inside ComfyUI) would share entries and fail to load
    each other's ("No module named ..."). Under ``$NUMBA_CACHE_DIR`` when set, else next to this file, else in
    the user's cache or temp folder; None (no disk cache) when none of them is writable.
    """
    key = "facelift-numba-" + hashlib.sha1(__name__.encode()).hexdigest()[:12]
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    bases = [Path(nb.config.CACHE_DIR)] if nb.config.CACHE_DIR else []
    bases += [Path(__file__).parent / "__pycache__", user_cache, Path(tempfile.gettempdir())]
    for base in bases:
        folder = base / key
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()  # numba's own writability test
        except OSError:
            continue
        return str(folder)
    return None


def _kernel(**options):
    """``nb.njit`` with the on-disk cache in ``kernel_cache_dir()`` (numba reads its CACHE_DIR setting when a
    function is decorated; it is set only for that moment, so other numba users keep theirs)."""
    def decorate(fn):
        folder = kernel_cache_dir()
        if folder is None:
            return nb.njit(cache=False, **options)(fn)
        saved = nb.config.CACHE_DIR
        nb.config.CACHE_DIR = folder
        try:
            return nb.njit(cache=True, **options)(fn)
        finally:
            nb.config.CACHE_DIR = saved
    return decorate


@_kernel(parallel=True)
def _activate(xyz, f_dc, log_scales, quats_raw, opacity_logits, quats, scales, opac, colors):
    """Raw Gaussians -> unit quaternions, exp scales, sigmoid opacities, clamp_min(0.5 + C0 f_dc, 0)."""
    for i in nb.prange(xyz.shape[0]):
        nrm = 0.0
        for k in range(4):
            nrm += np.float64(quats_raw[i, k]) ** 2
        nrm = max(math.sqrt(nrm), 1e-12)
        for k in range(4):
            quats[i, k] = quats_raw[i, k] / nrm
        for k in range(3):
            scales[i, k] = math.exp(log_scales[i, k])
            colors[i, k] = max(0.5 + SH_C0 * f_dc[i, k], 0.0)
        opac[i] = 1.0 / (1.0 + math.exp(-np.float64(opacity_logits[i])))


@_kernel(parallel=True)
def _project(means, quats, scales, opac, R, t, fx, fy, cx, cy, W, H, near, far, eps2d, m2d, conic, depth, radii):
    n = means.shape[0]
    tan_fovx, tan_fovy = 0.5 * W / fx, 0.5 * H / fy
    lim_xp = (W - cx) / fx + SCREEN_LIMIT_MARGIN * tan_fovx
    lim_xn = cx / fx + SCREEN_LIMIT_MARGIN * tan_fovx
    lim_yp = (H - cy) / fy + SCREEN_LIMIT_MARGIN * tan_fovy
    lim_yn = cy / fy + SCREEN_LIMIT_MARGIN * tan_fovy
    for i in nb.prange(n):
        px, py, pz = np.float64(means[i, 0]), np.float64(means[i, 1]), np.float64(means[i, 2])
        tx = R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz + t[0]
        ty = R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz + t[1]
        tz = R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz + t[2]
        depth[i] = tz
        radii[i, 0] = 0
        radii[i, 1] = 0
        if not (tz > near and tz < far):
            continue
        w, x, y, z = (np.float64(quats[i, 0]), np.float64(quats[i, 1]),
                      np.float64(quats[i, 2]), np.float64(quats[i, 3]))
        rot = np.empty((3, 3))
        rot[0, 0] = 1 - 2 * (y * y + z * z)
        rot[0, 1] = 2 * (x * y - w * z)
        rot[0, 2] = 2 * (x * z + w * y)
        rot[1, 0] = 2 * (x * y + w * z)
        rot[1, 1] = 1 - 2 * (x * x + z * z)
        rot[1, 2] = 2 * (y * z - w * x)
        rot[2, 0] = 2 * (x * z - w * y)
        rot[2, 1] = 2 * (y * z + w * x)
        rot[2, 2] = 1 - 2 * (x * x + y * y)
        # M = R_view @ rot @ diag(s): camera-frame covariance = M M^T
        M = np.empty((3, 3))
        for r in range(3):
            for c in range(3):
                M[r, c] = (R[r, 0] * rot[0, c] + R[r, 1] * rot[1, c] + R[r, 2] * rot[2, c]) * scales[i, c]
        ux = min(max(tx / tz, -lim_xn), lim_xp) * tz
        uy = min(max(ty / tz, -lim_yn), lim_yp) * tz
        j00, j02 = fx / tz, -fx * ux / (tz * tz)
        j11, j12 = fy / tz, -fy * uy / (tz * tz)
        # T = J M (2x3); cov2d = T T^T
        a0 = j00 * M[0, 0] + j02 * M[2, 0]
        a1 = j00 * M[0, 1] + j02 * M[2, 1]
        a2 = j00 * M[0, 2] + j02 * M[2, 2]
        b0 = j11 * M[1, 0] + j12 * M[2, 0]
        b1 = j11 * M[1, 1] + j12 * M[2, 1]
        b2 = j11 * M[1, 2] + j12 * M[2, 2]
        ca = a0 * a0 + a1 * a1 + a2 * a2 + eps2d
        cb = a0 * b0 + a1 * b1 + a2 * b2
        cc = b0 * b0 + b1 * b1 + b2 * b2 + eps2d
        det = ca * cc - cb * cb
        if not (det > 0):
            continue
        # opacity-aware footprint (gsplat CUDA convention): beyond sqrt(2 ln(255 o)) sigmas alpha < 1/255
        o = np.float64(opac[i])
        if o * 255.0 < 1.0:
            continue
        extend = min(RADIUS_SIGMAS, math.sqrt(2.0 * math.log(255.0 * o)))
        mx = fx * tx / tz + cx
        my = fy * ty / tz + cy
        rx = math.ceil(extend * math.sqrt(ca))
        ry = math.ceil(extend * math.sqrt(cc))
        if rx <= 0 or ry <= 0:
            continue
        if mx + rx <= 0 or mx - rx >= W or my + ry <= 0 or my - ry >= H:
            continue
        m2d[i, 0] = mx
        m2d[i, 1] = my
        conic[i, 0] = cc / det
        conic[i, 1] = -cb / det
        conic[i, 2] = ca / det
        radii[i, 0] = int(rx)
        radii[i, 1] = int(ry)


@_kernel()
def _tile_range(mx, my, rx, ry, tw, th):
    x0 = min(max(int(math.floor((mx - rx) / TILE)), 0), tw)
    x1 = min(max(int(math.ceil((mx + rx) / TILE)), 0), tw)
    y0 = min(max(int(math.floor((my - ry) / TILE)), 0), th)
    y1 = min(max(int(math.ceil((my + ry) / TILE)), 0), th)
    return x0, x1, y0, y1


@_kernel(parallel=True)
def _bin(m2d, radii, tw, th, nchunks, r0, r1):
    """Parallel stable counting sort of (tile, Gaussian) pairs for the tile rows [r0, r1). The Gaussians
    are already front to back; they are cut into ``nchunks`` consecutive pieces, each counted and then
    scattered into its own slots of every tile's list, so each tile list stays front to back."""
    n = m2d.shape[0]
    ntiles = tw * th
    csize = (n + nchunks - 1) // nchunks
    counts = np.zeros((nchunks, ntiles), np.int64)
    for c in nb.prange(nchunks):
        for i in range(c * csize, min(n, (c + 1) * csize)):
            g = i
            x0, x1, y0, y1 = _tile_range(m2d[g, 0], m2d[g, 1], radii[g, 0], radii[g, 1], tw, th)
            for ty in range(max(y0, r0), min(y1, r1)):
                for tx in range(x0, x1):
                    counts[c, ty * tw + tx] += 1
    offsets = np.zeros(ntiles + 1, np.int64)
    pos = np.empty((nchunks, ntiles), np.int64)
    for t in range(ntiles):
        p = offsets[t]
        for c in range(nchunks):
            pos[c, t] = p
            p += counts[c, t]
        offsets[t + 1] = p
    lst = np.empty(offsets[-1], np.int32)
    for c in nb.prange(nchunks):
        for i in range(c * csize, min(n, (c + 1) * csize)):
            g = i
            x0, x1, y0, y1 = _tile_range(m2d[g, 0], m2d[g, 1], radii[g, 0], radii[g, 1], tw, th)
            for ty in range(max(y0, r0), min(y1, r1)):
                for tx in range(x0, x1):
                    k = ty * tw + tx
                    lst[pos[c, k]] = g
                    pos[c, k] += 1
    return offsets, lst


@_kernel()
def _row_pairs(m2d, radii, tw, th):
    """Number of (tile, Gaussian) pairs in each tile row."""
    rows = np.zeros(th, np.int64)
    for g in range(m2d.shape[0]):
        x0, x1, y0, y1 = _tile_range(m2d[g, 0], m2d[g, 1], radii[g, 0], radii[g, 1], tw, th)
        for ty in range(y0, y1):
            rows[ty] += x1 - x0
    return rows


@_kernel(parallel=True)
def _raster(tiles, offsets, lst, m2d, conic, radii, opac, colors, depth, W, H, tw,
            out_color, out_T, out_depth, want_depth):
    D = colors.shape[1]
    for ti in nb.prange(tiles.shape[0]):
        tile = tiles[ti]
        x0, y0 = (tile % tw) * TILE, (tile // tw) * TILE
        x1, y1 = min(x0 + TILE, W), min(y0 + TILE, H)
        npix = (x1 - x0) * (y1 - y0)
        T = np.ones(TILE * TILE)
        acc = np.zeros((TILE * TILE, D))
        dacc = np.zeros(TILE * TILE)
        done = np.zeros(TILE * TILE, np.bool_)
        ndone = 0
        for k in range(offsets[tile], offsets[tile + 1]):
            g = lst[k]
            mx, my = np.float64(m2d[g, 0]), np.float64(m2d[g, 1])
            rx, ry = radii[g, 0], radii[g, 1]
            px0 = max(x0, int(math.ceil(mx - rx - 0.5)))
            px1 = min(x1 - 1, int(math.floor(mx + rx - 0.5)))
            py0 = max(y0, int(math.ceil(my - ry - 0.5)))
            py1 = min(y1 - 1, int(math.floor(my + ry - 0.5)))
            if px0 > px1 or py0 > py1:
                continue
            A, B, C = np.float64(conic[g, 0]), np.float64(conic[g, 1]), np.float64(conic[g, 2])
            o = np.float64(opac[g])
            sigma_max = math.log(255.0 * o)  # alpha >= 1/255  <=>  sigma <= ln(255 o): skip exp() beyond it
            for py in range(py0, py1 + 1):
                dy = my - (py + 0.5)
                row = (py - y0) * TILE - x0
                for px in range(px0, px1 + 1):
                    li = row + px
                    if done[li]:
                        continue
                    dx = mx - (px + 0.5)
                    sigma = 0.5 * (A * dx * dx + C * dy * dy) + B * dx * dy
                    if sigma < 0.0 or sigma > sigma_max:
                        continue
                    alpha = min(ALPHA_MAX, o * math.exp(-sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    t = T[li]
                    nt = t * (1.0 - alpha)
                    if nt <= T_STOP:
                        done[li] = True
                        ndone += 1
                        continue
                    w = alpha * t
                    for d in range(D):
                        acc[li, d] += w * colors[g, d]
                    if want_depth:
                        dacc[li] += w * depth[g]
                    T[li] = nt
            if ndone == npix:
                break
        for py in range(y0, y1):
            for px in range(x0, x1):
                li = (py - y0) * TILE + (px - x0)
                out_T[py, px] = T[li]
                for d in range(D):
                    out_color[py, px, d] = acc[li, d]
                if want_depth:
                    out_depth[py, px] = dacc[li]


def render_camera(means, quats, scales, opac, colors, viewmat: np.ndarray, K: np.ndarray, s: RasterSettings,
                  max_pairs: int = 1 << 26):
    n, W, H = means.shape[0], s.width, s.height
    m2d = np.zeros((n, 2), np.float32)
    conic = np.zeros((n, 3), np.float32)
    depth = np.zeros(n, np.float32)
    radii = np.zeros((n, 2), np.int32)
    R = viewmat[:3, :3].astype(np.float64)
    t = viewmat[:3, 3].astype(np.float64)
    _project(means, quats, scales, opac, R, t, float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]),
             float(W), float(H), s.near_plane, s.far_plane, s.eps2d, m2d, conic, depth, radii)
    vis = np.nonzero(radii[:, 0] > 0)[0]
    order = vis[np.argsort(depth[vis], kind="stable")]
    # gather the visible Gaussians front to back: binning and rasterising then read memory in order
    m2d, conic, radii, depth = m2d[order], conic[order], radii[order], depth[order]
    opac_s, colors_s = opac[order], colors[order]
    tw, th = -(-W // TILE), -(-H // TILE)
    out_color = np.zeros((H, W, colors.shape[1]), np.float32)
    out_T = np.ones((H, W), np.float32)
    out_depth = np.zeros((H, W), np.float32)
    # one band of tile rows at a time, so the pair list stays within max_pairs for close-up cameras
    for r0, r1 in row_bands(_row_pairs(m2d, radii, tw, th).tolist(), max_pairs):
        offsets, lst = _bin(m2d, radii, tw, th, 4 * nb.get_num_threads(), r0, r1)
        counts = np.diff(offsets)
        tiles = np.nonzero(counts)[0]
        tiles = tiles[np.argsort(-counts[tiles], kind="stable")].astype(np.int64)  # heavy tiles first
        with nb.parallel_chunksize(1):
            _raster(tiles, offsets, lst, m2d, conic, radii, opac_s, colors_s, depth, W, H, tw,
                    out_color, out_T, out_depth, s.return_depth)
    return out_color, out_T, out_depth


def render(scene: PreparedScene, viewmats: torch.Tensor, Ks: torch.Tensor, s: RasterSettings):
    """All cameras: (color_sum [C,H,W,D], T_final [C,H,W], depth_sum [C,H,W] or None), CPU tensors."""
    arr = lambda t: np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))  # noqa: E731
    raw = scene.raw
    means = arr(raw.xyz)
    n = means.shape[0]
    quats, scales = np.empty((n, 4), np.float32), np.empty((n, 3), np.float32)
    opac, colors = np.empty(n, np.float32), np.empty((n, 3), np.float32)
    _activate(means, arr(raw.f_dc), arr(raw.log_scales), arr(raw.quats), arr(raw.opacity_logits),
              quats, scales, opac, colors)
    vm, ks = viewmats.detach().cpu().double().numpy(), Ks.detach().cpu().double().numpy()
    outs = [render_camera(means, quats, scales, opac, colors, vm[c], ks[c], s) for c in range(vm.shape[0])]
    rgb = torch.from_numpy(np.stack([o[0] for o in outs]))
    T = torch.from_numpy(np.stack([o[1] for o in outs]))
    dep = torch.from_numpy(np.stack([o[2] for o in outs])) if s.return_depth else None
    return rgb, T, dep
