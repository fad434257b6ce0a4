"""Cameras for GS-LRM: the six official FaceLift views, turntables, user cameras, rays and the posed input.

Conventions (spec §7): OpenCV cameras (x right, y down, z forward), ``c2w`` camera-to-world matrices whose
columns are [right, down, forward | position]; world +z up, the head centred at the origin and facing -y.
Intrinsics are pixel units ``(fx, fy, cx, cy)`` with pixel centres at +0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .config import VIEW_NAMES
from .errors import InputError

# The official view order of the multi-view generator and of GS-LRM's input (spec §7 table).
# Offset of each official view from the front, measured in the turntable's direction of travel (degrees).
# front_right is 45 deg toward the subject's right, i.e. -45 deg in turntable direction (= +315).
OFFICIAL_VIEW_AZIMUTHS = (0.0, -45.0, -90.0, 180.0, 90.0, 45.0)

OFFICIAL_RADIUS = 2.7
OFFICIAL_FOV_DEG = 50.0
OFFICIAL_RESOLUTION = 512
# The turntable formula's azimuth of the front camera (camera at -y looking toward +y).
_FRONT_AZIMUTH_DEG = 270.0


@dataclass(frozen=True)
class Cameras:
    """V pinhole cameras sharing one image size.

    c2w:      [V,4,4] float32 OpenCV camera-to-world.
    fxfycxcy: [V,4] float32 pixel intrinsics at ``width`` x ``height``.
    names:    optional view names (e.g. the official ones), kept through ``resized``.
    """

    c2w: torch.Tensor
    fxfycxcy: torch.Tensor
    width: int
    height: int
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        v = self.c2w.shape[0] if self.c2w.dim() == 3 else -1
        if tuple(self.c2w.shape[1:]) != (4, 4) or self.c2w.dim() != 3:
            raise InputError(f"Cameras.c2w must have shape [V,4,4]; got {tuple(self.c2w.shape)}.")
        if tuple(self.fxfycxcy.shape) != (v, 4):
            raise InputError(f"Cameras.fxfycxcy must have shape [{v},4] (one (fx,fy,cx,cy) per camera); "
                             f"got {tuple(self.fxfycxcy.shape)}.")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise InputError(f"Camera image size must be positive; got {self.width}x{self.height}.")
        if self.names is not None and len(self.names) != v:
            raise InputError(f"Cameras has {v} cameras but {len(self.names)} names.")

    def __len__(self) -> int:
        return int(self.c2w.shape[0])

    @property
    def device(self) -> torch.device:
        return self.c2w.device

    def w2c(self) -> torch.Tensor:
        """[V,4,4] world-to-camera (inverse computed in float64 for accuracy, returned in c2w's dtype)."""
        return torch.linalg.inv(self.c2w.double()).to(self.c2w.dtype)

    def Ks(self) -> torch.Tensor:  # noqa: N802 (the usual name of the intrinsics matrix)
        """[V,3,3] pixel intrinsics matrices."""
        fx, fy, cx, cy = self.fxfycxcy.unbind(-1)
        K = torch.zeros(len(self), 3, 3, dtype=self.fxfycxcy.dtype, device=self.fxfycxcy.device)
        K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = fx, fy, cx, cy, 1.0
        return K

    def positions(self) -> torch.Tensor:
        """[V,3] camera centres in world coordinates."""
        return self.c2w[:, :3, 3]

    def resized(self, width: int, height: int) -> "Cameras":
        """The same cameras for images resized to ``width`` x ``height`` (intrinsics scaled per axis)."""
        sx, sy = width / self.width, height / self.height
        scale = torch.tensor([sx, sy, sx, sy], dtype=torch.float64, device=self.fxfycxcy.device)
        k = (self.fxfycxcy.double() * scale).to(self.fxfycxcy.dtype)
        return Cameras(self.c2w, k, int(width), int(height), self.names)

    def to(self, device=None, dtype=None) -> "Cameras":
        return Cameras(self.c2w.to(device=device, dtype=dtype), self.fxfycxcy.to(device=device, dtype=dtype),
                       self.width, self.height, self.names)

    def subset(self, index: Sequence[int]) -> "Cameras":
        idx = list(index)
        names = tuple(self.names[i] for i in idx) if self.names is not None else None
        return Cameras(self.c2w[idx], self.fxfycxcy[idx], self.width, self.height, names)


# --------------------------------------------------------------------------------------------- builders
def _focal(width: int, fov_deg: float) -> float:
    return width / (2.0 * math.tan(math.radians(fov_deg) / 2.0))


def _look_at_origin(azimuths_deg: Sequence[float], elevation_deg: float, radius: float) -> torch.Tensor:
    """[V,4,4] float64 OpenCV c2w of cameras on a sphere looking at the origin, world up +z (spec §7)."""
    az = torch.tensor([math.radians(a) for a in azimuths_deg], dtype=torch.float64)
    el = torch.full_like(az, math.radians(elevation_deg))
    pos = radius * torch.stack([el.cos() * az.cos(), el.cos() * az.sin(), el.sin()], dim=-1)
    forward = -pos / pos.norm(dim=-1, keepdim=True)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand_as(forward)
    right = torch.linalg.cross(forward, up, dim=-1)
    right = right / right.norm(dim=-1, keepdim=True)
    cam_up = torch.linalg.cross(right, forward, dim=-1)
    cam_up = cam_up / cam_up.norm(dim=-1, keepdim=True)
    c2w = torch.zeros(len(az), 4, 4, dtype=torch.float64)
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2], c2w[:, :3, 3] = right, -cam_up, forward, pos
    c2w[:, 3, 3] = 1.0
    return c2w


def _intrinsics(n: int, width: int, height: int, fov_deg: float) -> torch.Tensor:
    """Square pixels, horizontal field of view ``fov_deg``, principal point at the image centre."""
    f = _focal(width, fov_deg)
    return torch.tensor([[f, f, width / 2.0, height / 2.0]] * n, dtype=torch.float64).float()


def _check_pose_args(elevation_deg: float, radius: float, fov_deg: float, width: int, height: int) -> None:
    if not (math.isfinite(radius) and radius > 0):
        raise InputError(f"Camera radius must be a positive number; got {radius}.")
    if not (0.0 < fov_deg < 180.0):
        raise InputError(f"Camera field of view must be between 0 and 180 degrees; got {fov_deg}.")
    if abs(elevation_deg) >= 90.0:
        raise InputError(f"Camera elevation must lie strictly between -90 and 90 degrees; got {elevation_deg} "
                         "(the camera's up vector is undefined at the poles).")
    if int(width) <= 0 or int(height) <= 0:
        raise InputError(f"Image size must be positive; got {width}x{height}.")


def official_views(resolution: int = OFFICIAL_RESOLUTION) -> Cameras:
    """The 6 official FaceLift cameras (elevation 0, radius 2.7, 50 deg FoV) at ``resolution`` x ``resolution``.

    Synthesised with the turntable construction in float64 and cast to float32; these equal the official
    ``opencv_cameras.json`` frames [2,1,0,5,4,3] to float32 rounding.
    """
    az = [_FRONT_AZIMUTH_DEG + a for a in OFFICIAL_VIEW_AZIMUTHS]
    c2w = _look_at_origin(az, 0.0, OFFICIAL_RADIUS).float()
    return Cameras(c2w, _intrinsics(6, resolution, resolution, OFFICIAL_FOV_DEG), int(resolution),
                   int(resolution), VIEW_NAMES)


def for_images(cameras: Cameras | None, width: int, height: int) -> Cameras:
    """Cameras for views of ``width`` x ``height``: the official 6 when ``cameras`` is None (square views only),
    else ``cameras`` rescaled to that size (same aspect ratio only)."""
    if cameras is None:
        if width != height:
            raise InputError(f"The official cameras need square views; got {width}x{height}. Crop the views square "
                             "or connect your own cameras.")
        return official_views(resolution=width)
    if (cameras.width, cameras.height) == (width, height):
        return cameras
    if abs(cameras.width / cameras.height - width / height) > 1e-3:
        raise InputError(f"The cameras are for {cameras.width}x{cameras.height} images but the views are "
                         f"{width}x{height} (another aspect ratio).")
    return cameras.resized(width, height)


def turntable(num_frames: int = 150, elevation_deg: float = 0.0, radius: float = OFFICIAL_RADIUS,
              fov_deg: float = OFFICIAL_FOV_DEG, width: int = OFFICIAL_RESOLUTION,
              height: int | None = None) -> Cameras:
    """The official turntable: ``num_frames`` cameras, equally spaced over 360 deg, starting at the front.

    It first turns toward +x (the subject's left), like the official render (150 frames CLI, 180 gradio).
    """
    height = width if height is None else height
    if int(num_frames) < 1:
        raise InputError(f"A turntable needs at least one frame; got {num_frames}.")
    _check_pose_args(elevation_deg, radius, fov_deg, width, height)
    az = [_FRONT_AZIMUTH_DEG + 360.0 * i / num_frames for i in range(int(num_frames))]
    c2w = _look_at_origin(az, elevation_deg, radius).float()
    return Cameras(c2w, _intrinsics(len(az), width, height, fov_deg), int(width), int(height))


def orbit(azimuth_deg: float = 0.0, elevation_deg: float = 0.0, radius: float = OFFICIAL_RADIUS,
          fov_deg: float = OFFICIAL_FOV_DEG, width: int = OFFICIAL_RESOLUTION, height: int | None = None) -> Cameras:
    """One camera looking at the origin. Azimuth 0 = front; positive turns the way the turntable does."""
    height = width if height is None else height
    _check_pose_args(elevation_deg, radius, fov_deg, width, height)
    c2w = _look_at_origin([_FRONT_AZIMUTH_DEG + float(azimuth_deg)], elevation_deg, radius).float()
    return Cameras(c2w, _intrinsics(1, width, height, fov_deg), int(width), int(height))


def from_user(c2w, intrinsics, width: int, height: int, names: Sequence[str] | None = None,
              rigid_atol: float = 1e-3) -> Cameras:
    """Validated user cameras: ``c2w`` [V,4,4] or [V,3,4] OpenCV camera-to-world, ``intrinsics`` either
    [V,4] (fx, fy, cx, cy) or [V,3,3] K matrices, in pixels of a ``width`` x ``height`` image.

    Single cameras ([4,4], [4], [3,3]) are accepted too. Raises InputError naming what is wrong.
    """
    try:
        c2w = torch.as_tensor(c2w, dtype=torch.float64).detach().cpu()
        k = torch.as_tensor(intrinsics, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as e:
        raise InputError(f"Camera matrices must be numeric arrays or tensors ({e}).") from None
    if c2w.dim() == 2:
        c2w = c2w[None]
    if c2w.dim() != 3 or tuple(c2w.shape[1:]) not in ((4, 4), (3, 4)):
        raise InputError(f"Camera-to-world matrices must have shape [V,4,4] or [V,3,4]; got {tuple(c2w.shape)}.")
    v = c2w.shape[0]
    if v < 1:
        raise InputError("At least one camera is needed; got an empty camera list.")
    if tuple(k.shape) in ((4,), (3, 3)):
        k = k[None]
    if tuple(k.shape) == (v, 3, 3):
        if not torch.allclose(k[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=k.dtype).expand(v, 3), atol=1e-6) \
                or (k[:, 1, 0].abs() > 1e-6).any() or (k[:, 0, 1].abs() > 1e-6).any():
            raise InputError("Intrinsics matrices must be pinhole K = [[fx,0,cx],[0,fy,cy],[0,0,1]] "
                             "(no skew, last row 0 0 1).")
        k = torch.stack([k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2]], dim=-1)
    elif tuple(k.shape) != (v, 4):
        raise InputError(f"Intrinsics must have shape [{v},4] (fx,fy,cx,cy) or [{v},3,3] (K) for {v} cameras; "
                         f"got {tuple(k.shape)}.")
    if not (torch.isfinite(c2w).all() and torch.isfinite(k).all()):
        raise InputError("Camera matrices or intrinsics contain NaN or infinite values.")
    if int(width) <= 0 or int(height) <= 0:
        raise InputError(f"Image size must be positive; got {width}x{height}.")
    if (k[:, :2] <= 0).any():
        raise InputError(f"Focal lengths fx, fy must be positive pixels; got {k[:, :2].tolist()}.")
    if c2w.shape[1] == 3:
        c2w = torch.cat([c2w, torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=c2w.dtype).expand(v, 1, 4)], dim=1)
    if not torch.allclose(c2w[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=c2w.dtype).expand(v, 4), atol=1e-6):
        raise InputError("The last row of every camera-to-world matrix must be [0, 0, 0, 1].")
    rot = c2w[:, :3, :3]
    eye = torch.eye(3, dtype=rot.dtype).expand(v, 3, 3)
    ortho_err = (rot.transpose(1, 2) @ rot - eye).abs().amax(dim=(1, 2))
    det = torch.linalg.det(rot)
    bad = [i for i in range(v) if ortho_err[i] > rigid_atol or abs(det[i] - 1.0) > rigid_atol]
    if bad:
        raise InputError(
            f"Camera(s) {bad} are not rigid camera-to-world transforms: the rotation part must be orthonormal "
            f"with determinant +1 (max |R^T R - I| = {float(ortho_err.max()):.3g}, det = {det.tolist()}). "
            "Pass camera-to-world (not world-to-camera or projection) matrices without scale or mirroring, "
            "in the OpenCV convention (x right, y down, z forward).")
    if names is not None and len(names) != v:
        raise InputError(f"{v} cameras but {len(names)} names.")
    return Cameras(c2w.float(), k.float(), int(width), int(height), tuple(names) if names is not None else None)


# ------------------------------------------------------------------------------------------------ rays
def ray_bundle(cams: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel rays: (ray_o, ray_d), each [V,3,H,W]; ray_d is the unit world direction through the pixel
    centre, ray_o the camera centre (spec §6.2). Computed in the cameras' dtype on their device."""
    v, h, w = len(cams), cams.height, cams.width
    dev, dt = cams.c2w.device, cams.fxfycxcy.dtype
    rows, cols = torch.meshgrid(torch.arange(h, device=dev), torch.arange(w, device=dev), indexing="ij")
    k = cams.fxfycxcy
    x = (cols.reshape(1, -1) + 0.5 - k[:, 2:3]) / k[:, 0:1]  # [V,HW]
    y = (rows.reshape(1, -1) + 0.5 - k[:, 3:4]) / k[:, 1:2]
    d_cam = torch.stack([x, y, torch.ones_like(x)], dim=2)  # [V,HW,3]
    d_cam = d_cam / torch.norm(d_cam, dim=2, keepdim=True)
    d = torch.bmm(d_cam, cams.c2w[:, :3, :3].transpose(1, 2).to(dt))
    d = d / torch.norm(d, dim=2, keepdim=True)
    o = cams.c2w[:, None, :3, 3].to(dt).expand_as(d)
    to_image = lambda t: t.reshape(v, h, w, 3).permute(0, 3, 1, 2)  # noqa: E731
    return to_image(o), to_image(d)


def nearest_points_to_origin(ray_o: torch.Tensor, ray_d: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """The point of each ray closest to the world origin: o + s*d with s = -(o.d) (unit d)."""
    s = torch.sum(-ray_o * ray_d, dim=dim, keepdim=True)
    return ray_o + s * ray_d


def posed_input(images: torch.Tensor, cams: Cameras) -> torch.Tensor:
    """The 9-channel GS-LRM input [B,V,9,H,W] = [2*rgb-1, ray_d, nearest point to origin] (spec §6.2).

    ``images`` is [B,V,3,H,W] (or [V,3,H,W]) RGB in [0,1]; one camera set is shared by the whole batch.
    """
    images = check_images(images, cams)
    ray_o, ray_d = ray_bundle(cams.to(device=images.device))
    ray_o = ray_o.to(images.dtype)[None].expand(images.shape[0], -1, -1, -1, -1)
    ray_d = ray_d.to(images.dtype)[None].expand_as(ray_o)
    return torch.cat([images * 2.0 - 1.0, ray_d, nearest_points_to_origin(ray_o, ray_d, dim=2)], dim=2)


def check_images(images: torch.Tensor, cams: Cameras) -> torch.Tensor:
    """Validate a [B,V,3,H,W] (or [V,3,H,W]) RGB batch against the cameras; returns it as [B,V,3,H,W]."""
    if not isinstance(images, torch.Tensor):
        raise InputError(f"Images must be a torch tensor [B,V,3,H,W]; got {type(images).__name__}.")
    if images.dim() == 4:
        images = images[None]
    if images.dim() != 5 or images.shape[2] != 3:
        raise InputError(f"Images must have shape [B,V,3,H,W] (RGB, channels first); got {tuple(images.shape)}.")
    b, v, _, h, w = images.shape
    if v != len(cams):
        raise InputError(f"{v} input views but {len(cams)} cameras: give one camera per view.")
    if (h, w) != (cams.height, cams.width):
        raise InputError(f"Images are {w}x{h} but the cameras are for {cams.width}x{cams.height}; "
                         "use cams.resized(width, height) or resize the images.")
    if not images.is_floating_point():
        raise InputError(f"Images must be floating point RGB in [0,1]; got dtype {images.dtype}.")
    return images
