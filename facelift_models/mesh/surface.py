"""From an optical-depth grid to a clean closed triangle mesh: solid fill, iso-surface, cleaning, smoothing,
decimation (numpy + scipy.ndimage + scikit-image's marching cubes + trimesh / fast-simplification)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .density import Grid


def depth_level(level: float) -> float:
    """The optical depth whose occupancy ``1 - exp(-depth)`` equals ``level``."""
    return -math.log1p(-level)


def solid_field(depth: np.ndarray, level: float, min_component: float = 0.02, closing: int = 1) -> np.ndarray:
    """The grid made ready for an outer-surface-only iso-surface at ``depth_level(level)``.

    Occupied voxels (depth above the level) are dilated by ``closing`` voxels (bridging the gaps of sparse
    splats) and labelled into 26-connected components; components with fewer occupied voxels than
    ``min_component`` x the largest are floaters and are emptied. The kept solid's cavities are filled and the
    dilation eroded back: every voxel inside the solid is raised above the level, so inner shells and the inner
    side of thin shells produce no surface.
    """
    from scipy import ndimage

    t = depth_level(level)
    occ = depth > t
    if not occ.any():
        raise InputError(
            f"The Gaussians never reach {level:.2f} opacity anywhere on the {depth.shape} grid: they are too "
            "transparent or too sparse to form a surface. Check that they come from FaceLift Reconstruct (not an "
            "empty or filtered-out set), or raise the mesh resolution.")
    ball = ndimage.generate_binary_structure(3, 1)
    grown = ndimage.binary_dilation(occ, ball, iterations=int(closing)) if closing > 0 else occ
    labels, _ = ndimage.label(grown, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels[occ], minlength=labels.max() + 1)  # occupied voxels of each (grown) component
    sizes[0] = 0
    keep = sizes >= max(1, min_component * sizes.max())
    keep[0] = False
    kept_grown = keep[labels]
    kept = occ & kept_grown
    solid = ndimage.binary_fill_holes(kept_grown)
    if closing > 0:  # erode back what the dilation added outside; gaps up to ~2*closing voxels stay bridged
        solid = ndimage.binary_erosion(solid, ball, iterations=int(closing), border_value=0) | kept
    field = np.where(occ & ~kept, 0.0, depth).astype(np.float32)  # floaters removed
    inside = solid & ~kept
    field[inside] = np.maximum(field[inside], 2.0 * t)
    return field


def closing_radius(scales, voxel: float, max_radius: int = 8) -> int:
    """Voxels of morphological closing that bridge the gaps a splat leaves between its Gaussians: the median
    Gaussian's largest standard deviation, in voxels (at least 1, at most ``max_radius``)."""
    sigma = float(scales.detach().float().amax(-1).median())
    return int(np.clip(math.ceil(sigma / voxel), 1, max_radius))


def marching_cubes(field: np.ndarray, grid: Grid, level: float):
    """Vertices (world) and faces of the iso-surface ``field == depth_level(level)``, outward-facing."""
    from skimage import measure

    verts, faces, _, _ = measure.marching_cubes(field, level=depth_level(level), allow_degenerate=False)
    return grid.to_world(verts), faces.astype(np.int64)


def largest_components(mesh, min_component: float):
    """Drop connected pieces whose face count is below ``min_component`` x the largest piece's."""
    import trimesh

    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    counts = np.bincount(labels)
    keep = counts >= max(1, min_component * counts.max())
    if keep.all():
        return mesh
    mesh = mesh.copy()
    mesh.update_faces(keep[labels])
    mesh.remove_unreferenced_vertices()
    return mesh


def orient_outward(mesh):
    """Flip every face when the enclosed volume is negative (faces wound inward)."""
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()
    return mesh


def smooth(mesh, iterations: int):
    """Taubin (lambda/mu) smoothing: removes the marching-cubes terracing without shrinking the surface."""
    import trimesh

    if iterations > 0:
        trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=0.53, iterations=int(iterations))
    return mesh


def decimate(mesh, target_faces: int):
    """Quadric-error decimation (fast-simplification, through trimesh) to about ``target_faces`` faces."""
    import trimesh

    if target_faces <= 0 or len(mesh.faces) <= target_faces:
        return mesh
    try:
        out = mesh.simplify_quadric_decimation(face_count=int(target_faces))
    except ImportError as e:
        raise InputError("Mesh decimation needs the fast-simplification package: "
                         "pip install fast-simplification (or set target faces to 0 to keep every face).") from e
    out = trimesh.Trimesh(out.vertices, out.faces, process=True)
    return out
