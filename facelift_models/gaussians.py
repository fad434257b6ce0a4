"""The Gaussians container: one value type that every stage (GS-LRM, filters, PLY, render, export) shares.

Values are stored *raw*, exactly as GS-LRM produces them and as the official PLY stores them, so that
filters and writers reproduce the official bytes; activated views are computed on demand.
World frame: FaceLift's (z up, face toward -y), unless a caller converts it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported lazily so the pack imports instantly
    import torch

SH_C0 = 0.28209479177387814


@dataclass(frozen=True)
class Gaussians:
    """N 3D Gaussians of SH degree 0, raw (pre-activation) values, all float tensors on one device.

    xyz:            [N,3] positions.
    f_dc:           [N,3] SH degree-0 coefficients (R,G,B); colour = 0.5 + SH_C0 * f_dc.
    log_scales:     [N,3] log of the per-axis standard deviations (scale = exp).
    quats:          [N,4] raw quaternions w,x,y,z (not normalised).
    opacity_logits: [N]   opacity = sigmoid(logit).
    """

    xyz: "torch.Tensor"
    f_dc: "torch.Tensor"
    log_scales: "torch.Tensor"
    quats: "torch.Tensor"
    opacity_logits: "torch.Tensor"

    _WIDTHS = {"xyz": 3, "f_dc": 3, "log_scales": 3, "quats": 4}

    def __post_init__(self) -> None:
        n = self.xyz.shape[0] if self.xyz.dim() >= 1 else -1
        for f in fields(self):
            t = getattr(self, f.name)
            want = (n,) if f.name == "opacity_logits" else (n, self._WIDTHS[f.name])
            if tuple(t.shape) != want:
                raise ValueError(
                    f"Gaussians.{f.name} has shape {tuple(t.shape)}, expected {want} "
                    f"(all fields must describe the same {n} Gaussians)."
                )

    # ----------------------------------------------------------------- basics
    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    @property
    def device(self) -> "torch.device":
        return self.xyz.device

    def tensors(self) -> dict[str, "torch.Tensor"]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def map(self, fn) -> "Gaussians":
        """A new container with ``fn`` applied to every field tensor."""
        return Gaussians(**{k: fn(v) for k, v in self.tensors().items()})

    def to(self, *args, **kwargs) -> "Gaussians":
        return self.map(lambda t: t.to(*args, **kwargs))

    def select(self, index: "torch.Tensor") -> "Gaussians":
        """Subset by a boolean mask or an index tensor (order follows ``index``)."""
        return self.map(lambda t: t[index])

    def replace(self, **changes) -> "Gaussians":
        return replace(self, **changes)

    @staticmethod
    def concat(parts: "list[Gaussians]") -> "Gaussians":
        import torch

        if not parts:
            raise ValueError("Gaussians.concat needs at least one container.")
        names = [f.name for f in fields(Gaussians)]
        return Gaussians(**{k: torch.cat([getattr(p, k) for p in parts], 0) for k in names})

    @staticmethod
    def empty(device=None, dtype=None) -> "Gaussians":
        import torch

        z = lambda *s: torch.zeros(*s, device=device, dtype=dtype or torch.float32)  # noqa: E731
        return Gaussians(z(0, 3), z(0, 3), z(0, 3), z(0, 4), z(0))

    # ------------------------------------------------------- activated views
    def scales(self) -> "torch.Tensor":
        return self.log_scales.exp()

    def opacities(self) -> "torch.Tensor":
        return self.opacity_logits.sigmoid()

    def rotations(self) -> "torch.Tensor":
        """Unit quaternions w,x,y,z."""
        import torch

        return torch.nn.functional.normalize(self.quats, dim=-1)

    def colors(self) -> "torch.Tensor":
        """Linear RGB of the SH-DC term, clamped at 0 like the rasteriser (no upper clamp)."""
        return (0.5 + SH_C0 * self.f_dc).clamp_min(0.0)

    def finite_mask(self) -> "torch.Tensor":
        """True for Gaussians whose every field is finite."""
        import torch

        ok = torch.ones(len(self), dtype=torch.bool, device=self.device)
        for t in self.tensors().values():
            ok &= torch.isfinite(t.reshape(len(self), -1)).all(dim=1)
        return ok
