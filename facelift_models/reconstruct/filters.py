"""The official post-filters that clean a GS-LRM result before export (spec §8).

Each filter is a per-Gaussian predicate on the stored (raw) values; each returns a new ``Gaussians`` with
the survivors in their original order. Thresholds follow the two official entry points: ``CLI``
(inference.py) and ``GRADIO`` (gradio_app.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..errors import InputError
from ..gaussians import Gaussians

STAGES = ("opacity", "scaling", "floater", "crop", "nearfar")
DEFAULT_CROP_BOX = (-0.91, 0.91, -0.91, 0.91, -1.0, 1.0)


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds of the filter chain; ``None`` skips a stage.

    opacity_thres:  keep iff sigmoid(opacity_logit) > t.
    scaling_thres:  keep iff max_k exp(log_scale_k) < t, or z > 0 (large splats only removed below z = 0).
    floater_thres:  drop iff |x| > t and |y| > t and z < -t (the four lower corner columns).
    crop_bbx:       keep iff x_min <= x <= x_max, y_min <= y <= y_max, z_min <= z <= z_max.
    cam_origins:    [C,3] camera centres for the (officially unused) near/far percentile stage.
    nearfar_percent:(near, far) quantiles of the distance to each camera kept by that stage.
    """

    opacity_thres: float | None = 0.04
    scaling_thres: float | None = 0.1
    floater_thres: float | None = 0.6
    crop_bbx: tuple[float, float, float, float, float, float] | None = DEFAULT_CROP_BOX
    cam_origins: tuple[tuple[float, float, float], ...] | None = None
    nearfar_percent: tuple[float, float] = field(default=(0.005, 1.0))

    def __post_init__(self) -> None:
        if self.crop_bbx is not None:
            box = tuple(float(x) for x in self.crop_bbx)
            if len(box) != 6:
                raise InputError(f"crop_bbx must be [x_min,x_max,y_min,y_max,z_min,z_max]; got {self.crop_bbx}.")
            object.__setattr__(self, "crop_bbx", box)
        if self.cam_origins is not None:
            object.__setattr__(self, "cam_origins", tuple(tuple(float(c) for c in o) for o in self.cam_origins))
        near, far = (float(x) for x in self.nearfar_percent)
        if not (0.0 <= near < far <= 1.0):
            raise InputError(f"nearfar_percent must satisfy 0 <= near < far <= 1; got {self.nearfar_percent}.")
        object.__setattr__(self, "nearfar_percent", (near, far))

    @classmethod
    def from_dict(cls, d: dict) -> "FilterConfig":
        """From an official ``apply_all_filters`` keyword dict (e.g. a fixture's filter set)."""
        keys = ("opacity_thres", "scaling_thres", "floater_thres", "crop_bbx", "cam_origins", "nearfar_percent")
        values = {k: d[k] for k in keys if k in d}
        if values.get("nearfar_percent") is None:
            values.pop("nearfar_percent", None)
        return cls(**values)


CLI = FilterConfig()
GRADIO = FilterConfig(scaling_thres=0.2, floater_thres=0.75)
NONE = FilterConfig(None, None, None, None)
PRESETS = {"cli": CLI, "gradio": GRADIO, "none": NONE}


# ------------------------------------------------------------------------------ per-stage predicates
def opacity_mask(g: Gaussians, thres: float) -> torch.Tensor:
    return g.opacities() > thres


def scaling_mask(g: Gaussians, thres: float) -> torch.Tensor:
    return (g.scales().max(dim=1).values < thres) | (g.xyz[:, 2] > 0)


def floater_mask(g: Gaussians, thres: float) -> torch.Tensor:
    x, y, z = g.xyz.unbind(1)
    outside_x = (x < -thres) | (x > thres)
    outside_y = (y < -thres) | (y > thres)
    return ~(outside_x & outside_y & (z < -thres))


def crop_mask(g: Gaussians, box: Sequence[float]) -> torch.Tensor:
    x_min, x_max, y_min, y_max, z_min, z_max = box
    x, y, z = g.xyz.unbind(1)
    # Written as NOT(outside) like the official code, so a NaN coordinate is kept exactly as there.
    return ~((x < x_min) | (x > x_max) | (y < y_min) | (y > y_max) | (z < z_min) | (z > z_max))


def nearfar_mask(g: Gaussians, cam_origins, percent: Sequence[float]) -> torch.Tensor:
    """Drop Gaussians closer than the ``near`` or farther than the ``far`` distance quantile of any camera."""
    if len(g) == 0:
        return torch.ones(0, dtype=torch.bool, device=g.device)
    origins = torch.as_tensor(cam_origins, dtype=g.xyz.dtype, device=g.device).reshape(-1, 3)
    dists = torch.cdist(g.xyz[None], origins[None])[0]
    q = torch.quantile(dists, torch.tensor(list(percent), dtype=dists.dtype, device=g.device), dim=0)
    return ~((dists < q[0:1]) | (dists > q[1:2])).any(dim=1)


# --------------------------------------------------------------------------------- pure functions
def filter_by_opacity(g: Gaussians, thres: float = CLI.opacity_thres) -> Gaussians:
    return g.select(opacity_mask(g, thres))


def filter_by_scaling(g: Gaussians, thres: float = CLI.scaling_thres) -> Gaussians:
    return g.select(scaling_mask(g, thres))


def filter_floaters(g: Gaussians, thres: float = CLI.floater_thres) -> Gaussians:
    return g.select(floater_mask(g, thres))


def crop_to_box(g: Gaussians, box: Sequence[float] = DEFAULT_CROP_BOX) -> Gaussians:
    return g.select(crop_mask(g, box))


def filter_by_nearfar(g: Gaussians, cam_origins, percent: Sequence[float] = (0.005, 1.0)) -> Gaussians:
    return g.select(nearfar_mask(g, cam_origins, percent))


@dataclass(frozen=True)
class FilterResult:
    """Per-stage cumulative keep masks (indexed by the ORIGINAL Gaussian) and the survivors' indices."""

    masks: dict[str, torch.Tensor]   # stage name -> [N] bool, survives every stage up to this one
    keep_idx: torch.Tensor           # [Nf] int64 ascending original indices
    stage_counts: dict[str, int]     # "input" and "after_<stage>" counts of the stages that ran


def filter_stages(g: Gaussians, config: FilterConfig = CLI) -> FilterResult:
    """Run the official chain stage by stage (each stage sees the previous survivors) and record masks."""
    n = len(g)
    alive = torch.arange(n, device=g.device)
    cur = g
    masks: dict[str, torch.Tensor] = {}
    counts = {"input": n}
    stages = [
        ("opacity", config.opacity_thres, opacity_mask),
        ("scaling", config.scaling_thres, scaling_mask),
        ("floater", config.floater_thres, floater_mask),
        ("crop", config.crop_bbx, crop_mask),
    ]
    for name, arg, fn in stages + [("nearfar", config.cam_origins, None)]:
        if arg is None:
            continue
        keep = nearfar_mask(cur, arg, config.nearfar_percent) if name == "nearfar" else fn(cur, arg)
        alive, cur = alive[keep], cur.select(keep)
        full = torch.zeros(n, dtype=torch.bool, device=g.device)
        full[alive] = True
        masks[name] = full
        counts[f"after_{name}"] = len(cur)
    return FilterResult(masks, alive, counts)


def apply_filters(g: Gaussians, config: FilterConfig = CLI) -> Gaussians:
    """The filtered Gaussians (survivor order preserved); ``g`` is not modified."""
    return g.select(filter_stages(g, config).keep_idx)
