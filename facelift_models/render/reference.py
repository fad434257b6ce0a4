"""Pure-torch tiled EWA splatting: runs on any torch device (CPU, CUDA, MPS), needs no compilation.

This is the oracle-semantics backend (see ``RasterSettings``): every other backend is tested against it.
Work is done per camera, with (tile, Gaussian) pairs sorted by tile then depth (binned with the
opacity-aware footprint, which leaves the image unchanged); tiles are processed in groups of similar list
length, walking the depth-sorted lists in chunks while carrying each pixel's transmittance and dropping
tiles whose pixels are all finished, so memory stays bounded (``max_elements``) even for millions of
Gaussians.
"""

from __future__ import annotations

import math

import torch

from .common import ALPHA_MAX, ALPHA_MIN, T_STOP, PreparedScene, RasterSettings
from .projection import RADIUS_SIGMAS, covariances, project

TILE = 16


def render_camera(scene: PreparedScene, viewmat: torch.Tensor, K: torch.Tensor, s: RasterSettings,
                  max_elements: int = 1 << 21, depth_chunk_max: int = 32, max_pairs: int = 1 << 24):
    """Render one camera: returns (rgb_sum [H,W,D], T_final [H,W], depth_sum [H,W] or None)."""
    dev, W, H = scene.means.device, s.width, s.height
    D = scene.colors.shape[1]
    color_sum = torch.zeros(H * W, D, dtype=torch.float32, device=dev)
    trans = torch.ones(H * W, dtype=torch.float32, device=dev)
    depth_sum = torch.zeros(H * W, dtype=torch.float32, device=dev) if s.return_depth else None
    if len(scene) == 0:
        return _finish(color_sum, trans, depth_sum, H, W)

    proj = project(scene.means, scene.covars, viewmat, K, W, H, s.near_plane, s.far_plane, s.eps2d)
    # footprint for binning: opacity-aware (outside min(3.33, sqrt(2 ln(255 o))) sigmas alpha < 1/255, so
    # pixels there are skipped anyway and the image is unchanged); opacity < 1/255 never contributes
    opac_all = scene.opacities
    vis_mask = proj.visible & (opac_all * 255.0 >= 1.0)
    vis = torch.nonzero(vis_mask).squeeze(1)
    if vis.numel() == 0:
        return _finish(color_sum, trans, depth_sum, H, W)
    depths = proj.depths[vis]
    order = torch.argsort(depths, stable=True)
    gid = vis[order]                                   # visible Gaussians, front to back
    m2d, conic, depth = proj.means2d[gid], proj.conics[gid], proj.depths[gid]
    opac, colors = opac_all[gid], scene.colors[gid]
    extend = torch.sqrt(2.0 * torch.log(255.0 * opac).clamp_min(0)).clamp_max(RADIUS_SIGMAS)
    rad = torch.ceil(extend[:, None] * torch.sqrt(proj.cov2d_diag[gid]))

    # --- bin into tiles, one band of tile rows at a time so the (tile, Gaussian) pair list stays within
    # ``max_pairs`` even when close-up Gaussians cover most of the image
    tw, th = math.ceil(W / TILE), math.ceil(H / TILE)
    tx0 = torch.floor((m2d[:, 0] - rad[:, 0]) / TILE).clamp(0, tw).long()
    tx1 = torch.ceil((m2d[:, 0] + rad[:, 0]) / TILE).clamp(0, tw).long()
    ty0 = torch.floor((m2d[:, 1] - rad[:, 1]) / TILE).clamp(0, th).long()
    ty1 = torch.ceil((m2d[:, 1] + rad[:, 1]) / TILE).clamp(0, th).long()
    nx = tx1 - tx0
    row_pairs = torch.zeros(th + 1, dtype=torch.long, device=dev)   # pairs per tile row (difference array)
    row_pairs.index_add_(0, ty0, nx)
    row_pairs.index_add_(0, ty1, -nx)
    for r0, r1 in row_bands(torch.cumsum(row_pairs, 0)[:th].tolist(), max_pairs):
        _raster_band(r0, r1, tx0, nx, ty0.clamp(r0, r1), ty1.clamp(r0, r1), m2d, conic, opac, colors, depth,
                     tw, th, s, max_elements, depth_chunk_max, color_sum, trans, depth_sum)
    return _finish(color_sum, trans, depth_sum, H, W)


def row_bands(pairs_per_row: list[int], max_pairs: int) -> list[tuple[int, int]]:
    """Consecutive tile-row ranges [r0, r1) whose pair counts sum to at most ``max_pairs`` (one row at least)."""
    bands, r0, acc = [], 0, 0
    for r, n in enumerate(pairs_per_row):
        if r > r0 and acc + n > max_pairs:
            bands.append((r0, r))
            r0, acc = r, 0
        acc += n
    if r0 < len(pairs_per_row):
        bands.append((r0, len(pairs_per_row)))
    return bands


def _raster_band(r0, r1, tx0, nx, ty0, ty1, m2d, conic, opac, colors, depth, tw, th, s, max_elements,
                 depth_chunk_max, color_sum, trans, depth_sum):
    """Bin the Gaussians (front to back) into the tiles of rows [r0, r1) and composite those tiles."""
    dev, W, H, D = m2d.device, s.width, s.height, colors.shape[1]
    ny = ty1 - ty0
    counts = nx * ny
    n_pairs = int(counts.sum())
    if n_pairs == 0:
        return
    g_of_pair = torch.repeat_interleave(torch.arange(len(m2d), device=dev), counts)
    start = torch.cumsum(counts, 0) - counts
    local = torch.arange(n_pairs, device=dev) - start[g_of_pair]
    tile_of_pair = (ty0[g_of_pair] + local // nx[g_of_pair]) * tw + tx0[g_of_pair] + local % nx[g_of_pair]
    del local, start
    tile_of_pair, perm = torch.sort(tile_of_pair, stable=True)   # stable: keeps depth order inside a tile
    g_of_pair = g_of_pair[perm]
    del perm
    per_tile = torch.bincount(tile_of_pair, minlength=tw * th)
    del tile_of_pair
    tile_start = torch.cumsum(per_tile, 0) - per_tile

    # --- pixel coordinates inside a tile (pixel centres at +0.5)
    py, px = torch.meshgrid(torch.arange(TILE, device=dev), torch.arange(TILE, device=dev), indexing="ij")
    px, py = px.reshape(-1), py.reshape(-1)
    P = TILE * TILE

    tiles_sorted = torch.argsort(per_tile, descending=True)
    tiles_sorted = tiles_sorted[per_tile[tiles_sorted] > 0]
    per_tile_l = per_tile[tiles_sorted].tolist()
    i = 0
    while i < len(per_tile_l):
        depth_chunk = min(per_tile_l[i], depth_chunk_max)
        tiles = tiles_sorted[i:i + max(1, max_elements // (depth_chunk * P))]
        i += len(tiles)
        n_in, first = per_tile[tiles], tile_start[tiles]                # [G]
        pix_x = (tiles % tw)[:, None] * TILE + px[None]                 # [G,P]
        pix_y = (tiles // tw)[:, None] * TILE + py[None]
        in_img = (pix_x < W) & (pix_y < H)
        fx, fy = pix_x.float() + 0.5, pix_y.float() + 0.5
        G = len(tiles)
        T = torch.ones(G, P, dtype=torch.float32, device=dev)
        done = ~in_img                                                  # pixels outside the image: nothing to do
        acc = torch.zeros(G, P, D, dtype=torch.float32, device=dev)
        dacc = torch.zeros(G, P, dtype=torch.float32, device=dev) if s.return_depth else None
        active = torch.arange(G, device=dev)                            # tiles with work left
        k0 = 0
        while active.numel():
            ks = k0 + torch.arange(depth_chunk, device=dev)
            a_n, a_T, a_done = n_in[active], T[active], done[active]
            valid = ks[None, :] < a_n[:, None]                          # [A,K]
            pair = (first[active][:, None] + ks[None, :]).clamp(max=n_pairs - 1)
            g = torch.where(valid, g_of_pair[pair], torch.zeros_like(pair))
            dx = m2d[g, 0][:, :, None] - fx[active][:, None, :]         # [A,K,P]
            dy = m2d[g, 1][:, :, None] - fy[active][:, None, :]
            cg = conic[g]
            sigma = 0.5 * (cg[:, :, 0, None] * dx * dx + cg[:, :, 2, None] * dy * dy) \
                + cg[:, :, 1, None] * dx * dy
            alpha = torch.clamp_max(opac[g][:, :, None] * torch.exp(-sigma), ALPHA_MAX)
            keep = (sigma >= 0) & (alpha >= ALPHA_MIN) & valid[:, :, None] & ~a_done[:, None, :]
            alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
            t_incl = a_T[:, None, :] * torch.cumprod(1.0 - alpha, dim=1)  # [A,K,P]
            stop = t_incl <= T_STOP
            t_excl = torch.cat([a_T[:, None, :], t_incl[:, :-1]], dim=1)
            w = torch.where(keep & ~stop, alpha * t_excl, torch.zeros_like(alpha))
            acc[active] += torch.einsum("akp,akd->apd", w, colors[g])
            if dacc is not None:
                dacc[active] += (w * depth[g][:, :, None]).sum(1)
            # T before the stopping Gaussian: "not stopped" is a prefix (t_incl is monotone) and skipped
            # Gaussians have alpha 0, so this is the T after the last composited one
            n_ok = (~stop).sum(1)                                         # [A,P]
            T[active] = torch.gather(torch.cat([a_T[:, None, :], t_incl], 1), 1, n_ok[:, None, :]).squeeze(1)
            a_done = a_done | stop.any(1)
            done[active] = a_done
            k0 += depth_chunk
            active = active[~a_done.all(1) & (a_n > k0)]
        keep_pix = in_img.reshape(-1)
        flat = (pix_y * W + pix_x).reshape(-1)[keep_pix]
        color_sum[flat] = acc.reshape(-1, D)[keep_pix]
        trans[flat] = T.reshape(-1)[keep_pix]
        if dacc is not None:
            depth_sum[flat] = dacc.reshape(-1)[keep_pix]


def _finish(color_sum, trans, depth_sum, H, W):
    D = color_sum.shape[1]
    return (color_sum.reshape(H, W, D), trans.reshape(H, W),
            depth_sum.reshape(H, W) if depth_sum is not None else None)


def render(scene: PreparedScene, viewmats: torch.Tensor, Ks: torch.Tensor, s: RasterSettings):
    """All cameras: (color_sum [C,H,W,D], T_final [C,H,W], depth_sum [C,H,W] or None)."""
    outs = [render_camera(scene, viewmats[c], Ks[c], s) for c in range(viewmats.shape[0])]
    rgb = torch.stack([o[0] for o in outs])
    T = torch.stack([o[1] for o in outs])
    dep = torch.stack([o[2] for o in outs]) if s.return_depth else None
    return rgb, T, dep


def prepare_covariances(scene: PreparedScene) -> PreparedScene:
    if scene.covars is None:
        scene.covars = covariances(scene.quats, scene.scales)
    return scene
