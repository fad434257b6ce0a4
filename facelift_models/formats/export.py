"""Export Gaussians for other viewers: standard 3DGS PLY, antimatter15 ``.splat``, Niantic ``.spz``; axis conversion.

The official FaceLift PLY layout is written by ``facelift_models.formats.ply`` (``write_ply``); ``export`` dispatches
to it for ``format="official_ply"``.

Axes. FaceLift's world is z-up with the face toward -y. Splat viewers expect the 3DGS/COLMAP (OpenCV)
convention: y down, the subject facing -z (toward a camera looking along +z). ComfyUI's frontend (Load3D,
``SplatModelAdapter``: Spark ``SplatMesh`` + ``quaternion.set(1, 0, 0, 0)``, i.e. 180 deg about X) turns such
files upright in its y-up three.js scene, the face toward +z where its default camera is. The conversion
used here, ``axes="opencv"``, is the rotation of +90 deg about X:

    (x, y, z)_opencv = (x, -z, y)_facelift      quaternion: q' = (cos 45, sin 45, 0, 0) * q  (w,x,y,z)

which is exactly the frame of FaceLift's front camera (right, down, forward) centred on the head. Positions
map exactly (a signed permutation); quaternions keep their norm. ``axes="facelift"`` writes the raw world.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..atomic_io import atomic_path
from ..errors import InputError
from ..gaussians import SH_C0, Gaussians
from .axes import _check_axes, convert_axes

FORMATS = ("official_ply", "ply", "splat", "spz")
SPLAT_RECORD = np.dtype([("xyz", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("quat", "u1", 4)])  # 32 B



# ---------------------------------------------------------------------------------------- atomic writes


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


def _check_nonempty(g: Gaussians, what: str) -> None:
    if not isinstance(g, Gaussians):
        raise InputError(f"{what}: expected a Gaussians container; got {type(g).__name__}.")
    if len(g) == 0:
        raise InputError(f"{what}: there are no Gaussians to write (the set is empty; loosen the filters).")


# ------------------------------------------------------------------------------------ standard 3DGS PLY
def standard_ply_records(g: Gaussians, pad_sh: bool = False) -> np.ndarray:
    """Structured array in the Inria 3DGS layout: x y z nx ny nz f_dc_0..2 [f_rest_0..44] opacity
    scale_0..2 rot_0..3, all float32 (raw: log-scales, opacity logits, quaternions w,x,y,z)."""
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(45)] if pad_sh else []
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    rec = np.zeros(len(g), dtype=[(n, "<f4") for n in names])
    cols = {"x": g.xyz[:, 0], "y": g.xyz[:, 1], "z": g.xyz[:, 2], "opacity": g.opacity_logits}
    for i in range(3):
        cols[f"f_dc_{i}"], cols[f"scale_{i}"] = g.f_dc[:, i], g.log_scales[:, i]
    for i in range(4):
        cols[f"rot_{i}"] = g.quats[:, i]
    for k, v in cols.items():
        rec[k] = _np(v)
    return rec


def write_standard_ply(g: Gaussians, path: str | os.PathLike, axes: str = "opencv", pad_sh: bool = False) -> Path:
    """Binary little-endian 3DGS PLY for other viewers (SuperSplat, Spark/ComfyUI, gsplat, SIBR with
    ``pad_sh=True``), in the ``axes`` convention. Atomic."""
    from plyfile import PlyData, PlyElement

    _check_nonempty(g, "write_standard_ply")
    _check_axes(axes)
    rec = standard_ply_records(convert_axes(g, "facelift", axes), pad_sh)
    data = PlyData([PlyElement.describe(rec, "vertex")], text=False, byte_order="<")
    with atomic_path(path) as tmp:
        data.write(str(tmp))
    return Path(path)


def read_standard_ply(path: str | os.PathLike, axes: str = "opencv") -> Gaussians:
    """Read any 3DGS PLY (official or standard layout) written in ``axes``; returns FaceLift-world Gaussians."""
    from .ply import read_ply

    return convert_axes(read_ply(path), axes, "facelift")


# -------------------------------------------------------------------------------------- .splat (antimatter15)
def splat_records(g: Gaussians) -> np.ndarray:
    """32-byte records: position f32x3, linear scale f32x3, RGBA u8 (colour 0.5 + C0 f_dc and opacity, rounded
    and clipped), quaternion u8x4 w,x,y,z as round(q/|q| * 128 + 128) clipped to [0,255]."""
    rec = np.zeros(len(g), dtype=SPLAT_RECORD)
    rec["xyz"] = _np(g.xyz)
    rec["scale"] = _np(g.scales())
    rgba = np.concatenate([_np(0.5 + SH_C0 * g.f_dc), _np(g.opacities())[:, None]], axis=1)
    rec["rgba"] = np.clip(np.round(rgba * 255.0), 0, 255).astype(np.uint8)
    q = _np(torch.nn.functional.normalize(g.quats.float(), dim=-1))
    rec["quat"] = np.clip(np.round(q * 128.0 + 128.0), 0, 255).astype(np.uint8)
    return rec


def splat_bytes(g: Gaussians, axes: str = "opencv") -> bytes:
    _check_axes(axes)
    return splat_records(convert_axes(g, "facelift", axes)).tobytes()


def write_splat(g: Gaussians, path: str | os.PathLike, axes: str = "opencv") -> Path:
    """antimatter15 ``.splat`` (opens in ComfyUI's 3D viewer, SuperSplat, antimatter15/splat, Spark). Atomic."""
    _check_nonempty(g, "write_splat")
    data = splat_bytes(g, axes)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def splat_from_bytes(data: bytes, axes: str = "opencv") -> Gaussians:
    """Parse ``.splat`` bytes (colours and opacities come back quantised to 1/255; quaternions to 1/128)."""
    _check_axes(axes)
    if len(data) % SPLAT_RECORD.itemsize:
        raise InputError(f"Not a .splat file: its size ({len(data)} bytes) is not a multiple of 32-byte records.")
    rec = np.frombuffer(data, dtype=SPLAT_RECORD)
    rgba = rec["rgba"].astype(np.float32) / 255.0
    op = np.clip(rgba[:, 3], 0.5 / 255.0, 254.5 / 255.0)  # 0 and 255 would be +-inf logits
    scale = rec["scale"].astype(np.float32)
    if (scale <= 0).any():
        raise InputError("Not a valid .splat file: it has non-positive scales.")
    g = Gaussians(
        xyz=torch.from_numpy(rec["xyz"].astype(np.float32)),
        f_dc=torch.from_numpy((rgba[:, :3] - 0.5) / np.float32(SH_C0)),
        log_scales=torch.from_numpy(np.log(scale)),
        quats=torch.from_numpy((rec["quat"].astype(np.float32) - 128.0) / 128.0),
        opacity_logits=torch.from_numpy(np.log(op / (1.0 - op)).astype(np.float32)),
    )
    return convert_axes(g, axes, "facelift")


def read_splat(path: str | os.PathLike, axes: str = "opencv") -> Gaussians:
    path = Path(path)
    if not path.is_file():
        raise InputError(f".splat file not found: {path}.")
    return splat_from_bytes(path.read_bytes(), axes)


# ----------------------------------------------------------------------------------------- .spz (Niantic)
def _gsply():
    try:
        import gsply
    except ImportError:
        raise InputError("Writing or reading .spz needs the 'gsply' package (MIT): run "
                         "`python -m pip install gsply` in ComfyUI's Python environment, or export .ply / .splat "
                         "instead.") from None
    return gsply


def write_spz(g: Gaussians, path: str | os.PathLike, axes: str = "opencv") -> Path:
    """Niantic ``.spz`` (gzip container, version 3) through ``gsply``; lossy (24-bit positions, 8-bit
    colour/scale/opacity, quantised rotations). Opens in ComfyUI's 3D viewer, Spark, SuperSplat. Atomic."""
    gsply = _gsply()
    _check_nonempty(g, "write_spz")
    _check_axes(axes)
    c = convert_axes(g, "facelift", axes)
    n = len(c)
    data = gsply.GSData(
        means=_np(c.xyz).copy(), scales=_np(c.log_scales).copy(),
        quats=_np(torch.nn.functional.normalize(c.quats.float(), dim=-1)).copy(),
        opacities=_np(c.opacity_logits).copy(), sh0=_np(c.f_dc).copy(), shN=np.zeros((n, 0, 3), np.float32),
        _format=gsply.create_ply_format(sh_degree=0))
    with atomic_path(path) as tmp:
        gsply.write_spz(str(tmp), data)
    return Path(path)


def read_spz(path: str | os.PathLike, axes: str = "opencv") -> Gaussians:
    gsply = _gsply()
    path = Path(path)
    if not path.is_file():
        raise InputError(f".spz file not found: {path}.")
    try:
        d = gsply.read_spz(str(path))
    except Exception as e:
        raise InputError(f"{path} is not a readable .spz file ({e}).") from None
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    g = Gaussians(xyz=t(d.means), f_dc=t(d.sh0), log_scales=t(d.scales), quats=t(d.quats),
                  opacity_logits=t(np.asarray(d.opacities).reshape(-1)))
    return convert_axes(g, axes, "facelift")


def spz_available() -> bool:
    try:
        import gsply  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------- dispatch
def format_from_path(path: str | os.PathLike) -> str:
    ext = Path(path).suffix.lower()
    return {".ply": "ply", ".splat": "splat", ".spz": "spz"}.get(ext, "")


def export(g: Gaussians, path: str | os.PathLike, format: str = "auto", axes: str | None = None) -> Path:
    """Write ``g`` to ``path``. ``format``: ``official_ply`` (FaceLift's own layout, default axes 'facelift'
    = the official bytes), ``ply`` (standard 3DGS), ``splat``, ``spz``, or ``auto`` (from the extension;
    ``.ply`` means ``official_ply``). ``axes`` defaults to 'opencv' (viewer-ready) for the other formats."""
    if format == "auto":
        format = format_from_path(path)
        format = "official_ply" if format == "ply" else format
        if not format:
            raise InputError(f"Cannot tell the export format from '{Path(path).name}': use a .ply, .splat or .spz "
                             "file name, or pass format=.")
    if format not in FORMATS:
        raise InputError(f"Unknown export format '{format}' (choose {', '.join(FORMATS)}).")
    if format == "official_ply":
        from .ply import write_ply

        _check_nonempty(g, "export")
        axes = axes or "facelift"
        _check_axes(axes)
        return write_ply(convert_axes(g, "facelift", axes), path)
    axes = axes or "opencv"
    return {"ply": write_standard_ply, "splat": write_splat, "spz": write_spz}[format](g, path, axes=axes)


def is_official_ply(path: str | os.PathLike) -> bool:
    """True for the official FaceLift PLY layout (uchar red/green/blue next to f_dc: what FaceLift itself writes)."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    end = head.find(b"end_header")
    return end > 0 and b"property uchar red" in head[:end] and b"property float f_dc_0" in head[:end]


def load(path: str | os.PathLike, axes: str = "auto") -> tuple[Gaussians, str]:
    """Read a .ply, .splat or .spz file into FaceLift-world Gaussians; returns them and the axes the file was read
    in. ``axes="auto"``: ``facelift`` for the official FaceLift PLY, ``opencv`` (the viewers' convention) else."""
    path = Path(path)
    fmt = format_from_path(path)
    if not fmt:
        raise InputError(f"{path.name} is not a .ply, .splat or .spz file.")
    if axes == "auto":
        axes = "facelift" if fmt == "ply" and is_official_ply(path) else "opencv"
    reader = {"ply": read_standard_ply, "splat": read_splat, "spz": read_spz}[fmt]
    return reader(path, axes=axes), axes
