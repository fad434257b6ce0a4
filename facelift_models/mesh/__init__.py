"""Gaussians -> coloured triangle mesh (pure torch/numpy; runs on the Gaussians' device, CPU or GPU).

The route (why it was chosen: ``docs/mesh.md``):

1. an occupancy grid ``1 - prod_i (1 - a_i(x))`` of the opaque Gaussians (``density``), on a cubic-voxel grid
   over their robust extent, ``resolution`` voxels along the longest side;
2. floaters (components smaller than ``min_component`` of the largest) removed, the solid closed and its
   cavities filled, so only the outer surface remains (``surface.solid_field``);
3. the iso-surface at occupancy ``level`` (scikit-image marching cubes), small pieces dropped, Taubin smoothing,
   quadric decimation to ``target_faces``;
4. per-vertex colours from the Gaussians near each vertex, or from renders of the Gaussians (``colors``).

The mesh is returned in FaceLift's world frame (z up, face toward -y), like the Gaussians; the writers of
``facelift_models.formats.mesh`` turn it into each file format's convention.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from ..errors import InputError
from ..formats.mesh import ColoredMesh
from ..gaussians import Gaussians

__all__ = ["ColoredMesh", "COLOR_SOURCES", "gaussians_to_mesh"]

log = logging.getLogger("facelift.mesh")

COLOR_SOURCES = ("gaussians", "views")
DEFAULT_RESOLUTION = 256
DEFAULT_SMOOTHING = 4
DEFAULT_TARGET_FACES = 200_000
MIN_RESOLUTION, MAX_RESOLUTION = 16, 768

# progress: (stage, fraction of the whole job at which the stage ends)
_STAGES = {"splat": 0.55, "surface": 0.75, "clean": 0.85, "decimate": 0.93, "colour": 1.0}
PROGRESS_TOTAL = 1000


def _stage_progress(progress, start: float, end: float):
    if progress is None:
        return None

    def report(done: int, total: int) -> None:
        frac = start + (end - start) * (done / max(1, total))
        progress(int(round(frac * PROGRESS_TOTAL)), PROGRESS_TOTAL)

    return report


def _reached(progress, stage: str) -> None:
    if progress is not None:
        progress(int(round(_STAGES[stage] * PROGRESS_TOTAL)), PROGRESS_TOTAL)


def _prepare(gaussians: Gaussians, cutoff: float):
    """Float32 activated Gaussians that can contribute (finite, opacity above ``cutoff``)."""
    import torch

    if not isinstance(gaussians, Gaussians):
        raise InputError(f"Gaussians to mesh: expected a Gaussians container; got {type(gaussians).__name__}.")
    if len(gaussians) == 0:
        raise InputError("Gaussians to mesh: the Gaussians are empty (0 splats), so there is nothing to mesh. "
                         "Connect the output of FaceLift Reconstruct or Load PLY, and check that a filter did not "
                         "remove every Gaussian.")
    g = gaussians.to(dtype=torch.float32)
    ok = g.finite_mask()
    if not bool(ok.all()):
        n_bad = int((~ok).sum())
        if n_bad == len(g):
            raise InputError("Gaussians to mesh: every Gaussian has NaN or infinite values; the reconstruction "
                             "diverged. Re-run it (or load a good .ply).")
        log.warning("mesh: dropped %d of %d Gaussians with NaN/inf values.", n_bad, len(g))
        g = g.select(ok)
    op = g.opacities()
    keep = op > cutoff
    if not bool(keep.any()):
        raise InputError(f"Gaussians to mesh: all {len(g):,} Gaussians are transparent (opacity <= {cutoff}); "
                         "there is no surface to extract. Check the reconstruction's input views.")
    g = g.select(keep)
    return g, g.xyz, g.scales(), g.rotations(), g.opacities(), g.colors()


def gaussians_to_mesh(gaussians: Gaussians, resolution: int = DEFAULT_RESOLUTION,
                      smoothing: int = DEFAULT_SMOOTHING, target_faces: int = DEFAULT_TARGET_FACES,
                      color_source: str = "gaussians", level: float = 0.5, min_component: float = 0.02,
                      cutoff: float = 0.01,
                      progress: Callable[[int, int], None] | None = None) -> ColoredMesh:
    """Extract the outer surface of ``gaussians`` as a closed, vertex-coloured triangle mesh.

    ``resolution``: voxels along the longest side of the head's extent (256: ~2 mm on a head).
    ``smoothing``: Taubin smoothing iterations (0 = raw marching cubes).
    ``target_faces``: decimate to about this many faces (0 = keep all).
    ``color_source``: ``"gaussians"`` (nearby Gaussians' colours, fast) or ``"views"`` (what renders from
    24 orbit cameras show at each vertex; slower, closer to the turntable's look).
    ``level``: the occupancy of the surface (0.5 = half opaque).
    ``progress(done, total)``: called along the way; it may raise (e.g. ``Interrupted``) to stop.
    """
    import torch

    from . import colors as colors_mod
    from . import density, surface

    if color_source not in COLOR_SOURCES:
        raise InputError(f"Gaussians to mesh: unknown colour source {color_source!r}; choose one of "
                         f"{', '.join(COLOR_SOURCES)}.")
    if not (MIN_RESOLUTION <= int(resolution) <= MAX_RESOLUTION):
        raise InputError(f"Gaussians to mesh: resolution must be between {MIN_RESOLUTION} and {MAX_RESOLUTION} "
                         f"voxels; got {resolution}.")
    if not (0.0 < level < 1.0):
        raise InputError(f"Gaussians to mesh: the surface level must be an opacity strictly between 0 and 1; "
                         f"got {level}.")
    if int(smoothing) < 0 or int(target_faces) < 0:
        raise InputError("Gaussians to mesh: smoothing and target faces must not be negative.")
    if 0 < int(target_faces) < 100:
        raise InputError(f"Gaussians to mesh: {target_faces} target faces cannot describe a head; use at least "
                         "100, or 0 to keep every face.")
    g, means, scales, quats, opac, cols = _prepare(gaussians, cutoff)
    sigma = scales.amax(-1)
    lo, hi = density.robust_bounds(means, opac, min_component=min_component)
    grid = density.fit_grid(lo, hi, int(resolution), min_extent=6.0 * float(sigma.median()))
    if grid is None:
        raise InputError(f"Gaussians to mesh: the {len(g):,} opaque Gaussians all sit at one point with (almost) "
                         "zero size, so they enclose no volume. This is not a usable reconstruction: re-run it, "
                         "or check the .ply you loaded.")
    with torch.no_grad():
        depth = density.splat_optical_depth(means, scales, quats, opac, grid, cutoff,
                                            progress=_stage_progress(progress, 0.0, _STAGES["splat"]))
    depth = depth.cpu().numpy()
    closing = surface.closing_radius(scales, grid.voxel)
    field = surface.solid_field(depth, level, min_component, closing)
    del depth
    verts, faces = surface.marching_cubes(field, grid, level)
    del field
    _reached(progress, "surface")
    import trimesh

    mesh = trimesh.Trimesh(verts, faces, process=True)
    mesh = surface.largest_components(mesh, min_component)
    surface.orient_outward(mesh)
    surface.smooth(mesh, int(smoothing))
    _reached(progress, "clean")
    mesh = surface.decimate(mesh, int(target_faces))
    mesh = surface.largest_components(mesh, min_component)  # decimation can pinch off specks of a few faces
    surface.orient_outward(mesh)
    if len(mesh.faces) == 0:
        raise InputError("Gaussians to mesh: the surface has no faces left after cleaning; the Gaussians are "
                         "too sparse for this resolution. Lower the resolution.")
    _reached(progress, "decimate")
    v = np.asarray(mesh.vertices, dtype=np.float32)
    vcol = colors_mod.from_gaussians(v, means, scales, quats, opac, cols, grid.voxel)
    if color_source == "views":
        vcol = colors_mod.from_views(v, np.asarray(mesh.vertex_normals, dtype=np.float32), g, vcol,
                                     progress=_stage_progress(progress, _STAGES["decimate"], 1.0))
    if progress:
        progress(PROGRESS_TOTAL, PROGRESS_TOTAL)
    return ColoredMesh(v, np.asarray(mesh.faces, dtype=np.int64), vcol)
