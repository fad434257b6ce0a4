"""The pack's own socket types and the small value classes that travel along them (no model maths here).

Values are immutable: nodes build new ones, never change an input (ComfyUI caches outputs by input).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comfy_api.latest import io

MVModel = io.Custom("FACELIFT_MV_MODEL")
GSLRMModel = io.Custom("FACELIFT_GSLRM")
CamerasType = io.Custom("FACELIFT_CAMERAS")
GaussiansType = io.Custom("FACELIFT_GAUSSIANS")


def core_splat_type():
    """The core ``SPLAT`` socket type of newer ComfyUI versions, or None (ComfyUI 0.3.75 has none)."""
    t = getattr(io, "Splat", None)
    return t if t is not None and getattr(t, "io_type", None) else None


def core_splat_class():
    """Core ComfyUI's SPLAT value class where it exists (newer hosts), else None."""
    try:
        from comfy_api.latest import Types

        return Types.SPLAT
    except (ImportError, AttributeError):
        pass
    try:
        from comfy_api.latest._util.geometry_types import SPLAT
    except ImportError:
        return None
    return SPLAT


@dataclass(frozen=True)
class GaussianHeads:
    """One or more reconstructed heads (``facelift_models.gaussians.Gaussians``) on the FACELIFT_GAUSSIANS socket.

    ``source`` says where they came from (shown in errors and info strings).
    """

    items: tuple[Any, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("GaussianHeads needs at least one Gaussians object")

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(g):,}" for g in self.items)
        return f"FaceLift Gaussians ({len(self.items)} head(s): {counts} splats{'; ' + self.source if self.source else ''})"

    __str__ = __repr__
