"""Write (and read back) coloured triangle meshes: GLB (binary glTF 2.0), OBJ and PLY, through trimesh.

Frame. Every file is written in glTF's convention, +Y up with the face toward +Z (a viewer's default camera
looks at the face, as in the turntable's first frame): ``(x, y, z)_file = (x, z, -y)_facelift``. OBJ and PLY
have no axis convention of their own; Blender's and most tools' defaults read them the same way.

Colours. ``ColoredMesh.colors`` are the Gaussians' display (sRGB-like) colours. glTF defines ``COLOR_0`` as
*linear*, and three.js (ComfyUI's Preview 3D) and Blender convert it to sRGB for display, so the GLB stores
``srgb_to_linear(colors)``; OBJ (``v x y z r g b``) and PLY (uchar red/green/blue) store the display colours
as is, which is what those formats' readers show. ``read_mesh`` undoes both, returning display colours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic_io import atomic_path
from ..errors import InputError

FORMATS = ("glb", "obj", "ply")


@dataclass(frozen=True)
class ColoredMesh:
    """A triangle mesh with one colour per vertex.

    vertices: [V,3] float32 positions (FaceLift world: z up, face toward -y).
    faces:    [F,3] int64 vertex indices, counter-clockwise seen from outside.
    colors:   [V,3] float32 RGB in [0,1], in the Gaussians' own (display, sRGB-like) space.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray

    def __post_init__(self) -> None:
        v, f, c = self.vertices, self.faces, self.colors
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or c.shape != v.shape:
            raise ValueError(f"ColoredMesh: vertices {v.shape}, faces {f.shape} and colors {c.shape} must be "
                             "[V,3], [F,3] and [V,3].")

    def __repr__(self) -> str:
        return f"ColoredMesh({len(self.vertices):,} vertices, {len(self.faces):,} faces)"


        rgba = np.concatenate([np.round(self.colors * 255.0), np.full((len(self.colors), 1), 255.0)], 1)
        return trimesh.Trimesh(self.vertices, self.faces, vertex_colors=rgba.astype(np.uint8), process=False)


# facelift world (z up, face toward -y) -> file frame (y up, face toward +z): a rotation of -90 deg about x
FACELIFT_TO_FILE = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def to_file_frame(vertices: np.ndarray) -> np.ndarray:
    return np.asarray(vertices, dtype=np.float64) @ FACELIFT_TO_FILE.T


def from_file_frame(vertices: np.ndarray) -> np.ndarray:
    return np.asarray(vertices, dtype=np.float64) @ FACELIFT_TO_FILE


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1.0 / 2.4) - 0.055)


def _rgba8(colors: np.ndarray) -> np.ndarray:
    rgb = np.round(np.clip(colors, 0.0, 1.0) * 255.0)
    return np.concatenate([rgb, np.full((len(rgb), 1), 255.0)], axis=1).astype(np.uint8)


def _trimesh_for(mesh, fmt: str):
    import trimesh

    colors = srgb_to_linear(mesh.colors) if fmt == "glb" else mesh.colors
    return trimesh.Trimesh(to_file_frame(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64),
                           vertex_colors=_rgba8(colors), process=False)


def mesh_bytes(mesh, fmt: str) -> bytes:
    """The file contents of ``mesh`` (a ``ColoredMesh``) in format ``fmt``."""
    if fmt not in FORMATS:
        raise InputError(f"Unknown mesh format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if len(mesh.faces) == 0:
        raise InputError("The mesh has no faces; there is nothing to write.")
    tm = _trimesh_for(mesh, fmt)
    if fmt == "glb":
        data = tm.export(file_type="glb", include_normals=True)
    elif fmt == "obj":
        data = tm.export(file_type="obj", include_normals=False, include_color=True)
    else:
        data = tm.export(file_type="ply", encoding="binary")
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def write_mesh(mesh, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Write ``mesh`` to ``path`` (format from ``fmt`` or the suffix), atomically: a failure leaves no file."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    data = mesh_bytes(mesh, fmt)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def read_mesh(path: str | os.PathLike):
    """A ``ColoredMesh`` (FaceLift world, display colours) from a GLB/OBJ/PLY file written by ``write_mesh``."""
    import trimesh

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InputError(f"{path.name}: not a .glb, .obj or .ply mesh.")
    try:
        tm = trimesh.load(str(path), file_type=fmt, force="mesh", process=False)
    except Exception as e:  # trimesh raises many types for a damaged file
        raise InputError(f"Cannot read the mesh {path} ({type(e).__name__}: {e}).") from None
    rgb = np.asarray(tm.visual.vertex_colors, dtype=np.float64)[:, :3] / 255.0
    if fmt == "glb":
        rgb = linear_to_srgb(rgb)
    return ColoredMesh(from_file_frame(tm.vertices).astype(np.float32), np.asarray(tm.faces, dtype=np.int64),
                       rgb.astype(np.float32))
