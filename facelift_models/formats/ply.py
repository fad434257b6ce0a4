"""Gaussian-splat PLY files: the official FaceLift layout (writer) and standard 3DGS PLYs (reader).

Official layout (spec §9): one binary little-endian ``vertex`` element, 239 bytes per Gaussian:
x y z (f4) | red green blue (u1, truncated 0.5 + C0*f_dc) | f_dc_0..2 | f_rest_0..44 = 0 | opacity (logit) |
scale_0..2 (log) | rot_0..3 (raw w,x,y,z), all f4. This is what 3DGS viewers (SuperSplat, gsplat, ...) read.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from ..atomic_io import atomic_path
from ..errors import InputError
from ..gaussians import SH_C0, Gaussians

N_REST = 45  # SH degree 0 padded to degree 3: 3 * ((3 + 1)^2 - 1) zero coefficients
PROPERTY_NAMES = (
    ["x", "y", "z", "red", "green", "blue", "f_dc_0", "f_dc_1", "f_dc_2"]
    + [f"f_rest_{i}" for i in range(N_REST)]
    + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
)
VERTEX_DTYPE = np.dtype([(n, "u1" if n in ("red", "green", "blue") else "<f4") for n in PROPERTY_NAMES])
BYTES_PER_GAUSSIAN = VERTEX_DTYPE.itemsize  # 239


def rgb_uint8(f_dc: np.ndarray) -> np.ndarray:
    """The preview colour stored next to the SH coefficients: uint8(clip((0.5 + C0*f_dc)*255)), truncated,
    computed in float32 like the official writer."""
    f = np.asarray(f_dc, dtype=np.float32)
    return np.clip((f * np.float32(SH_C0) + np.float32(0.5)) * np.float32(255.0), 0.0, 255.0).astype(np.uint8)


def vertex_records(g: Gaussians) -> np.ndarray:
    """The structured vertex array of ``g`` in the official layout (one 239-byte record per Gaussian)."""
    def arr(t: torch.Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float32).numpy()

    xyz, f_dc = arr(g.xyz), arr(g.f_dc)
    rec = np.zeros(len(g), dtype=VERTEX_DTYPE)  # f_rest_* stay 0
    for i, n in enumerate("xyz"):
        rec[n] = xyz[:, i]
    rgb = rgb_uint8(f_dc)
    for i, n in enumerate(("red", "green", "blue")):
        rec[n] = rgb[:, i]
        rec[f"f_dc_{i}"] = f_dc[:, i]
    rec["opacity"] = arr(g.opacity_logits)
    scales, quats = arr(g.log_scales), arr(g.quats)
    for i in range(3):
        rec[f"scale_{i}"] = scales[:, i]
    for i in range(4):
        rec[f"rot_{i}"] = quats[:, i]
    return rec


def _plydata(g: Gaussians):
    from plyfile import PlyData, PlyElement

    return PlyData([PlyElement.describe(vertex_records(g), "vertex")], text=False, byte_order="<")


def ply_bytes(g: Gaussians) -> bytes:
    """The complete official PLY file of ``g`` as bytes."""
    buf = io.BytesIO()
    _plydata(g).write(buf)
    return buf.getvalue()


def write_ply(g: Gaussians, path: str | os.PathLike) -> Path:
    """Write ``g`` as an official-layout PLY, atomically (temp file in the same folder, then rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            _plydata(g).write(f)
    return Path(path)


def header_text(num_gaussians: int) -> str:
    """The exact official header for ``num_gaussians`` vertices (up to and including ``end_header\\n``)."""
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {num_gaussians}"]
    lines += [f"property {'uchar' if n in ('red', 'green', 'blue') else 'float'} {n}" for n in PROPERTY_NAMES]
    return "\n".join(lines + ["end_header"]) + "\n"


def read_ply(path: str | os.PathLike) -> Gaussians:
    """Read a 3DGS PLY: the official layout or a standard one from other tools.

    Needs x, y, z, opacity, scale_0..2, rot_0..3 and either f_dc_0..2 or red/green/blue (0-255 colour,
    converted to SH-DC). Higher-order SH (f_rest_*), normals and other properties are ignored.
    """
    from plyfile import PlyData

    path = Path(path)
    if not path.exists():
        raise InputError(f"PLY file not found: {path}.")
    try:
        data = PlyData.read(str(path))
    except Exception as e:  # plyfile raises PlyParseError / ValueError / struct errors on damaged files
        raise InputError(f"{path} is not a readable PLY file ({e}). It may be truncated or not a PLY.") from None
    if "vertex" not in data:
        raise InputError(f"{path} has no 'vertex' element, so it holds no Gaussians.")
    v = data["vertex"]
    names = {p.name for p in v.properties}

    def take(cols: list[str]) -> torch.Tensor:
        missing = [c for c in cols if c not in names]
        if missing:
            raise InputError(
                f"{path} is not a Gaussian-splat PLY: the vertex element lacks {', '.join(missing)} "
                f"(it has {', '.join(sorted(names)[:12])}{'...' if len(names) > 12 else ''}). A plain point cloud "
                "or mesh cannot be used; export Gaussians (3DGS layout) from the other tool.")
        return torch.from_numpy(np.stack([np.asarray(v[c], dtype=np.float32) for c in cols], axis=1).copy())

    xyz = take(["x", "y", "z"])
    if {"f_dc_0", "f_dc_1", "f_dc_2"} <= names:
        f_dc = take(["f_dc_0", "f_dc_1", "f_dc_2"])
    elif {"red", "green", "blue"} <= names:
        rgb = take(["red", "green", "blue"])
        scale = 255.0 if np.issubdtype(np.asarray(v["red"]).dtype, np.integer) else 1.0
        f_dc = (rgb / scale - 0.5) / SH_C0
    else:
        take(["f_dc_0", "f_dc_1", "f_dc_2"])  # raises the "not a Gaussian PLY" error
    scales = take(["scale_0", "scale_1", "scale_2"])
    quats = take(["rot_0", "rot_1", "rot_2", "rot_3"])
    opacity = take(["opacity"])[:, 0]
    return Gaussians(xyz, f_dc, scales, quats, opacity)
