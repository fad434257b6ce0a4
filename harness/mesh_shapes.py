"""Synthetic Gaussian splats of known geometry and colour for the mesh tests and benchmark, and the measures
that compare a mesh with them (Chamfer distance, colour error, silhouette IoU)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from facelift_models.gaussians import SH_C0, Gaussians
from harness.preview3d_browser import iou  # noqa: F401 (re-exported: silhouette IoU)


@dataclass
class Shape:
    """A splat of a known closed surface: ``sample(n, rng)`` gives points on the true surface with their outward
    normals, ``color(points)`` the true colour there, ``size`` the largest dimension."""

    name: str
    sample: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]
    color: Callable[[np.ndarray], np.ndarray]
    size: float


def ellipsoid(axes=(0.30, 0.36, 0.42), rgb=(0.85, 0.55, 0.40)) -> Shape:
    a = np.asarray(axes, dtype=np.float64)

    def sample(n, rng):
        # area-uniform by rejection: the map u -> a*u stretches the unit sphere's area by abc*|u/a|
        pts = []
        got = 0
        while got < n:
            u = rng.normal(size=(2 * n, 3))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            stretch = np.linalg.norm(u / a, axis=1) * a.min()
            p = u[rng.random(2 * n) < stretch] * a
            pts.append(p)
            got += len(p)
        p = np.concatenate(pts)[:n]
        q = p / a ** 2
        return p, q / np.linalg.norm(q, axis=1, keepdims=True)

    return Shape("ellipsoid", sample, lambda p: np.tile(np.asarray(rgb), (len(p), 1)), float(2 * a.max()))


def two_colour_sphere(radius=0.4, top=(0.9, 0.2, 0.15), bottom=(0.15, 0.35, 0.9)) -> Shape:
    def sample(n, rng):
        u = rng.normal(size=(n, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        return u * radius, u

    def color(p):
        return np.where(p[:, 2:3] >= 0, np.asarray(top), np.asarray(bottom))

    return Shape("two_colour_sphere", sample, color, 2 * radius)


def _quat_z_to(n: np.ndarray) -> np.ndarray:
    """Unit quaternions (w,x,y,z) turning +z onto the unit vectors ``n`` (n and -n give the same flat disc)."""
    n = np.where(n[:, 2:3] < 0, -n, n)
    q = np.stack([1.0 + n[:, 2], -n[:, 1], n[:, 0], np.zeros(len(n))], axis=1)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def splat(shape: Shape, n: int, seed: int = 0, opacity: float = 0.95, flatness: float = 0.15,
          coverage: float = 1.0) -> Gaussians:
    """``n`` flat Gaussian discs on the shape's surface, tangential std ``coverage`` x the mean spacing."""
    rng = np.random.default_rng(seed)
    p, nrm = shape.sample(n, rng)
    area = _area_estimate(shape, rng)
    s_t = coverage * math.sqrt(area / n)
    scales = np.tile([s_t, s_t, flatness * s_t], (n, 1))
    rgb = shape.color(p)
    return from_arrays(p, scales, _quat_z_to(nrm), np.full(n, opacity), rgb)


def from_arrays(xyz, scales, quats, opacity, rgb) -> Gaussians:
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    op = np.clip(np.asarray(opacity, dtype=np.float64), 1e-6, 1 - 1e-6)
    return Gaussians(xyz=t(xyz), f_dc=t((np.asarray(rgb) - 0.5) / SH_C0), log_scales=t(np.log(scales)),
                     quats=t(quats), opacity_logits=t(np.log(op / (1 - op))))


def _area_estimate(shape: Shape, rng) -> float:
    if shape.name == "two_colour_sphere":
        return math.pi * shape.size ** 2
    # Knud Thomsen's approximation of an ellipsoid's area (within 1.1 %)
    p, _ = shape.sample(20000, rng)
    a, b, c = np.abs(p).max(0)
    k = 1.6075
    return 4 * math.pi * (((a * b) ** k + (a * c) ** k + (b * c) ** k) / 3) ** (1 / k)


def head_like(n: int = 1_572_864, seed: int = 0) -> Gaussians:
    """A head-sized stand-in for GS-LRM's raw output (6 x 512 x 512 Gaussians): an ellipsoid skull with a nose
    and two ears of opaque surface discs (55 %), semi-transparent interior blobs (25 %), near-transparent
    background Gaussians on the camera rays (18 %) and scattered floaters (2 %)."""
    rng = np.random.default_rng(seed)
    n_surf, n_in, n_bg = int(0.55 * n), int(0.25 * n), int(0.18 * n)
    n_fl = n - n_surf - n_in - n_bg
    head = ellipsoid((0.32, 0.36, 0.45))
    p, nrm = head.sample(n_surf, rng)
    # nose: push points near the front (-y) centre outward; ears: bumps at +-x
    nose = np.exp(-((p[:, 0] / 0.06) ** 2 + ((p[:, 2] + 0.02) / 0.09) ** 2)) * (p[:, 1] < 0)
    ears = np.exp(-(((np.abs(p[:, 0]) - 0.32) / 0.03) ** 2 + (p[:, 1] / 0.07) ** 2 + (p[:, 2] / 0.1) ** 2))
    p = p + nrm * (0.08 * nose + 0.04 * ears)[:, None]
    s_t = math.sqrt(4 * math.pi * 0.38 ** 2 / n_surf) * 1.2
    rgb = np.clip(np.array([0.80, 0.60, 0.50]) + 0.1 * rng.normal(size=(n_surf, 3)), 0, 1)
    rgb[p[:, 2] > 0.25] = [0.25, 0.18, 0.12]  # hair
    surf = (p, np.tile([s_t, s_t, 0.2 * s_t], (n_surf, 1)), _quat_z_to(nrm), rng.uniform(0.7, 1.0, n_surf), rgb)
    q = rng.normal(size=(n_in, 3))
    pin = q / np.linalg.norm(q, axis=1, keepdims=True) * rng.random((n_in, 1)) ** (1 / 3) * [0.28, 0.32, 0.4]
    inner = (pin, np.full((n_in, 3), 0.01), np.tile([1.0, 0, 0, 0], (n_in, 1)), rng.uniform(0.1, 0.9, n_in),
             rng.random((n_in, 3)))
    pbg = rng.uniform(-1.2, 1.2, (n_bg, 3))
    bg = (pbg, np.full((n_bg, 3), 0.004), np.tile([1.0, 0, 0, 0], (n_bg, 1)), np.full(n_bg, 1e-4),
          np.ones((n_bg, 3)))
    pfl = rng.uniform(-0.9, 0.9, (n_fl, 3))
    fl = (pfl, np.full((n_fl, 3), 0.003), np.tile([1.0, 0, 0, 0], (n_fl, 1)), rng.uniform(0.3, 1.0, n_fl),
          rng.random((n_fl, 3)))
    parts = [surf, inner, bg, fl]
    return from_arrays(*(np.concatenate([part[i] for part in parts]) for i in range(5)))


# ------------------------------------------------------------------------------------------------ measures
def chamfer(mesh_vertices: np.ndarray, mesh_faces: np.ndarray, truth_points: np.ndarray,
            n: int = 100_000, seed: int = 0) -> float:
    """Symmetric Chamfer distance: the mean of (mean distance mesh -> truth) and (truth -> mesh), with the mesh
    sampled area-uniformly."""
    import trimesh
    from scipy.spatial import cKDTree

    tm = trimesh.Trimesh(mesh_vertices, mesh_faces, process=False)
    pts, _ = trimesh.sample.sample_surface(tm, n, seed=seed)
    d1, _ = cKDTree(truth_points).query(pts)
    d2, _ = cKDTree(pts).query(truth_points)
    return 0.5 * (float(d1.mean()) + float(d2.mean()))


def mesh_silhouettes(vertices: np.ndarray, faces: np.ndarray, cams) -> np.ndarray:
    """[C,H,W] bool silhouettes of a closed, outward-wound triangle mesh seen by ``cams`` (facelift Cameras),
    its camera-facing triangles filled with PIL."""
    from PIL import Image, ImageDraw

    w2c = cams.w2c().double().numpy()
    K = cams.Ks().double().numpy()
    cam_pos = cams.positions().double().numpy()
    out = []
    for c in range(len(cams)):
        pc = vertices @ w2c[c, :3, :3].T + w2c[c, :3, 3]
        uv = pc[:, :2] / pc[:, 2:3] * K[c, [0, 1], [0, 1]] + K[c, :2, 2]
        img = Image.new("1", (cams.width, cams.height), 0)
        draw = ImageDraw.Draw(img)
        tri_uv = uv[faces]
        # a closed, outward-wound mesh's silhouette is covered by its camera-facing triangles: skip the others
        tri = vertices[faces]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        front = (normal * (cam_pos[c] - tri.mean(1))).sum(1) >= 0
        for tri in tri_uv[front]:
            draw.polygon([tuple(p - 0.5) for p in tri], fill=1)  # pixel centres at +0.5
        out.append(np.array(img, dtype=bool))
    return np.stack(out)
