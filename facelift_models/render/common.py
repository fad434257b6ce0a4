"""Values shared by every render backend: the activated scene, the raster settings and the compositing constants."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Compositing constants of the classic 3DGS / gsplat rasteriser (sidecar ``conventions.compositing``).
ALPHA_MAX = 0.999        # alpha = min(ALPHA_MAX, o * exp(-sigma))
ALPHA_MIN = 1.0 / 255.0  # a Gaussian whose alpha is below this is skipped for that pixel
T_STOP = 1e-4            # stop before the Gaussian that would bring T * (1 - alpha) <= T_STOP


@dataclass
class PreparedScene:
    """Activated Gaussians, float32, one device: what the rasterisers consume."""

    means: torch.Tensor      # [N,3]
    quats: torch.Tensor      # [N,4] unit w,x,y,z
    scales: torch.Tensor     # [N,3] linear
    opacities: torch.Tensor  # [N] in (0,1)
    colors: torch.Tensor     # [N,D] (RGB: clamp_min(0.5 + C0 f_dc, 0), no upper clamp)
    covars: torch.Tensor | None = None  # [N,3,3], filled lazily by backends that need it

    def __len__(self) -> int:
        return int(self.means.shape[0])

    def to(self, device) -> "PreparedScene":
        mv = lambda t: None if t is None else t.to(device)  # noqa: E731
        return PreparedScene(mv(self.means), mv(self.quats), mv(self.scales), mv(self.opacities),
                             mv(self.colors), mv(self.covars))


@dataclass(frozen=True)
class RasterSettings:
    width: int
    height: int
    near_plane: float = 0.2
    far_plane: float = 1e10
    eps2d: float = 0.3
    return_depth: bool = False
