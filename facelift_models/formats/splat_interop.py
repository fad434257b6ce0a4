"""Conversion between our ``Gaussians`` and newer ComfyUI's core ``SPLAT`` type, without importing it.

What core ComfyUI defines (``comfy_api/latest/_util/geometry_types.py``, class ``SPLAT``, used by
``comfy_extras/nodes_gaussian_splat.py``: Render Splat, Splat to File 3D, Transform/Merge ...): a batch of
render-ready Gaussians, attributes

    positions [B,N,3] world centres      scales [B,N,3] linear std      rotations [B,N,4] unit w,x,y,z
    opacities [B,N,1] in [0,1]           sh [B,N,K,3] SH coefficients (K = (deg+1)^2; DC = sh[..., 0, :])
    counts    [B] real lengths when items are zero-padded to a common N, else None

built as ``SPLAT(positions, scales, rotations, opacities, sh, counts=None)``. Core writes these tensors to
.ply/.splat/.spz without any axis change and ComfyUI's 3D viewer shows files in the 3DGS/OpenCV convention,
so ``to_splat`` converts to ``axes="opencv"`` by default (see ``facelift_models.formats.export``).

Losslessness: ``to_splat`` keeps a reference to the raw Gaussians on the SPLAT object (attribute
``facelift_raw``, ignored by core); ``from_splat`` returns them exactly when the SPLAT's tensors are still
the very tensors it made, unmodified. Otherwise (a SPLAT made or transformed by other nodes) the raw values
are recomputed: log of scales, logit of opacities, quaternions as given, f_dc = sh[..., 0, :]; higher SH
bands are dropped (FaceLift is degree 0) with a warning.
"""

from __future__ import annotations

import logging

import torch

from ..errors import InputError
from ..gaussians import Gaussians
from .axes import convert_axes

log = logging.getLogger("facelift.splat_interop")

RAW_ATTR = "facelift_raw"
_FIELDS = ("positions", "scales", "rotations", "opacities", "sh")


class SplatData:
    """Stand-in with core SPLAT's constructor and attributes, for code that runs without newer ComfyUI.
    Nodes pass core's class as ``splat_cls`` when it exists (this package never imports ComfyUI)."""

    def __init__(self, positions, scales, rotations, opacities, sh, counts=None):
        self.positions, self.scales, self.rotations = positions, scales, rotations
        self.opacities, self.sh, self.counts = opacities, sh, counts


def to_splat(gaussians: Gaussians | list[Gaussians], axes: str = "opencv", splat_cls=None):
    """One Gaussians (B = 1) or a list of them (zero-padded, with ``counts``) as a SPLAT object.

    ``splat_cls``: core's ``SPLAT`` class (the node imports it from ``comfy_api.latest._util.geometry_types``
    when present); default ``SplatData``, which has the same constructor and attributes."""
    items = gaussians if isinstance(gaussians, (list, tuple)) else [gaussians]
    if not items or not all(isinstance(g, Gaussians) for g in items):
        raise InputError("to_splat: expected a Gaussians container or a non-empty list of them.")
    conv = [convert_axes(g.to(dtype=torch.float32), "facelift", axes) for g in items]
    n_max = max(len(g) for g in conv)
    B = len(conv)
    dev = conv[0].device
    pos = torch.zeros(B, n_max, 3, device=dev)
    scl = torch.zeros(B, n_max, 3, device=dev)
    rot = torch.zeros(B, n_max, 4, device=dev)
    rot[..., 0] = 1.0  # padding rows: identity rotation
    opa = torch.zeros(B, n_max, 1, device=dev)
    sh = torch.zeros(B, n_max, 1, 3, device=dev)
    for b, g in enumerate(conv):
        n = len(g)
        pos[b, :n], scl[b, :n], rot[b, :n] = g.xyz, g.scales(), g.rotations()
        opa[b, :n, 0], sh[b, :n, 0] = g.opacities(), g.f_dc
    uniform = all(len(g) == n_max for g in conv)
    counts = None if uniform else torch.tensor([len(g) for g in conv], dtype=torch.int64)
    out = (splat_cls or SplatData)(pos, scl, rot, opa, sh, counts)
    try:
        setattr(out, RAW_ATTR, {"axes": axes, "items": [g for g in items],
                                "tensors": tuple((getattr(out, f), getattr(out, f)._version) for f in _FIELDS)})
    except Exception:  # a SPLAT class with __slots__: no lossless shortcut, still a correct SPLAT
        pass
    return out


def _untouched(splat, raw) -> bool:
    return all(getattr(splat, f, None) is t and t._version == v for f, (t, v) in zip(_FIELDS, raw["tensors"]))


def from_splat(splat, axes: str = "opencv") -> list[Gaussians]:
    """Every item of a core SPLAT as FaceLift-world Gaussians (raw values), one per batch entry."""
    missing = [f for f in _FIELDS if not hasattr(splat, f)]
    if missing:
        raise InputError(f"from_splat: the input is not a SPLAT (it lacks {', '.join(missing)}).")
    raw = getattr(splat, RAW_ATTR, None)
    if isinstance(raw, dict) and raw.get("axes") == axes and _untouched(splat, raw):
        return list(raw["items"])
    pos, scl, rot, opa, sh = (getattr(splat, f) for f in _FIELDS)
    if pos.dim() != 3 or pos.shape[-1] != 3 or sh.dim() != 4:
        raise InputError(f"from_splat: unexpected SPLAT shapes positions {tuple(pos.shape)}, sh {tuple(sh.shape)}.")
    if sh.shape[2] > 1 and bool((sh[:, :, 1:] != 0).any()):
        log.warning("from_splat: dropping %d higher-order SH coefficients per Gaussian (FaceLift uses degree 0).",
                    sh.shape[2] - 1)
    counts = splat.counts
    out = []
    for b in range(pos.shape[0]):
        n = int(counts[b]) if counts is not None else pos.shape[1]
        o = opa[b, :n].reshape(-1).float()
        o = o.clamp(1e-7, 1 - 1e-7)
        g = Gaussians(xyz=pos[b, :n].float(), f_dc=sh[b, :n, 0].float(),
                      log_scales=scl[b, :n].float().clamp_min(1e-30).log(),
                      quats=rot[b, :n].float(), opacity_logits=torch.logit(o))
        out.append(convert_axes(g, axes, "facelift"))
    return out
