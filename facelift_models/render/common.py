"""Values shared by every render backend: the scene, the raster settings and the compositing constants."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from ..gaussians import Gaussians

# Compositing constants of the classic 3DGS / gsplat rasteriser (sidecar ``conventions.compositing``).
ALPHA_MAX = 0.999        # alpha = min(ALPHA_MAX, o * exp(-sigma))
ALPHA_MIN = 1.0 / 255.0  # a Gaussian whose alpha is below this is skipped for that pixel
T_STOP = 1e-4            # stop before the Gaussian that would bring T * (1 - alpha) <= T_STOP


class PreparedScene:
    """Finite float32 Gaussians on one device, with their activated values computed on first use
    (the numba backend activates inside its own kernel and never asks for them)."""

    def __init__(self, raw: Gaussians):
        self.raw = raw
        self.covars: torch.Tensor | None = None  # [N,3,3], filled by backends that need it

    def __len__(self) -> int:
        return len(self.raw)

    @cached_property
    def means(self) -> torch.Tensor:      # [N,3]
        return self.raw.xyz.contiguous()

    @cached_property
    def quats(self) -> torch.Tensor:      # [N,4] unit w,x,y,z
        return torch.nn.functional.normalize(self.raw.quats, dim=-1).contiguous()

    @cached_property
    def scales(self) -> torch.Tensor:     # [N,3] linear
        return self.raw.scales().contiguous()

    @cached_property
    def opacities(self) -> torch.Tensor:  # [N]
        return self.raw.opacities().contiguous()

    @cached_property
    def colors(self) -> torch.Tensor:     # [N,3] clamp_min(0.5 + C0 f_dc, 0), no upper clamp
        return self.raw.colors().contiguous()

    def to(self, device) -> "PreparedScene":
        return PreparedScene(self.raw.to(device))


@dataclass(frozen=True)
class RasterSettings:
    width: int
    height: int
    near_plane: float = 0.2
    far_plane: float = 1e10
    eps2d: float = 0.3
    return_depth: bool = False
