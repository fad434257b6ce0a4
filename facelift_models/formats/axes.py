"""Axis conventions of Gaussians: FaceLift's world (z up, face toward -y) and the 3DGS/COLMAP (OpenCV) viewer frame
(y down, subject facing -z); the conversion is a rotation of +90 deg about X (see :mod:`.export` for the details).

    (x, y, z)_opencv = (x, -z, y)_facelift      quaternion: q' = (cos 45, sin 45, 0, 0) * q  (w,x,y,z)
"""

from __future__ import annotations

import math

import torch

from ..errors import InputError
from ..gaussians import Gaussians

AXES = ("opencv", "facelift")

# facelift world -> OpenCV/3DGS viewer frame: rotation of +90 deg about x
_R_TO_OPENCV = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
_Q_TO_OPENCV = (math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0)


def _quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a*b of (w,x,y,z) quaternions (broadcasting)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz,
                        aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx,
                        aw * bz + ax * by - ay * bx + az * bw], dim=-1)


def _check_axes(axes: str) -> None:
    if axes not in AXES:
        raise InputError(f"Unknown axes '{axes}': choose 'opencv' (viewer convention, y down, face toward -z; "
                         "what ComfyUI's 3D viewer and most splat viewers expect) or 'facelift' (z up, face toward -y).")


def rotate(g: Gaussians, R: torch.Tensor, q: torch.Tensor) -> Gaussians:
    """Rotate every Gaussian by the rotation matrix ``R`` [3,3] whose unit quaternion is ``q`` (w,x,y,z)."""
    dt = g.xyz.dtype
    R64, q64 = R.to(g.device, torch.float64), q.to(g.device, torch.float64)
    xyz = (g.xyz.double() @ R64.T).to(dt)
    quats = _quat_mul(q64.expand(len(g), 4), g.quats.double()).to(g.quats.dtype)
    return g.replace(xyz=xyz, quats=quats)


def convert_axes(g: Gaussians, src: str = "facelift", dst: str = "opencv") -> Gaussians:
    """The same Gaussians expressed in another axis convention (see the module docstring)."""
    _check_axes(src)
    _check_axes(dst)
    if src == dst:
        return g
    q = torch.tensor(_Q_TO_OPENCV, dtype=torch.float64)
    if src == "facelift":  # facelift -> opencv
        return rotate(g, _R_TO_OPENCV, q)
    return rotate(g, _R_TO_OPENCV.T, q * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64))
