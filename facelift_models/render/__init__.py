"""Render Gaussians into images: one entry point, ``render``, with interchangeable backends.

Semantics (every backend): classic 3DGS EWA splatting as gsplat 1.5 "classic" — unit quaternions (w,x,y,z),
exp scales, sigmoid opacity, colour clamp_min(0.5 + C0 f_dc, 0) (no upper clamp), Jacobian with the
screen-limit clamp, +eps2d on the 2D covariance, cull at view z <= near or >= far, depth-sorted
front-to-back compositing with alpha = min(0.999, o exp(-sigma)), alpha < 1/255 skipped, stop before the
Gaussian that would bring the transmittance to <= 1e-4. The result is NOT clamped to [0,1]; nodes clamp
when they make an IMAGE.

Backends: ``"gsplat"`` (CUDA, optional), ``"numba"`` (fast CPU, optional), ``"torch"`` (any device,
always available). ``"auto"`` picks gsplat on CUDA, else numba on CPU, else torch.

Non-finite Gaussians (NaN/inf in any field) are dropped with one warning by default (``on_nonfinite="drop"``)
because a single bad row from a model should not stop a turntable; pass ``on_nonfinite="error"`` to get an
InputError instead. Non-finite cameras always raise InputError.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import torch

from ..errors import InputError
from ..gaussians import Gaussians
from .common import PreparedScene, RasterSettings

log = logging.getLogger("facelift.render")

BACKENDS = ("torch", "numba", "gsplat")
_broken: dict[str, str] = {}   # backend -> reason it failed at run time (logged once, then skipped by auto)


@dataclass
class RenderOutput:
    """Renders of C cameras. ``rgb`` [C,H,W,3] composited over the background (not clamped), ``alpha``
    [C,H,W,1] = 1 - final transmittance, ``depth`` [C,H,W,1] expected view depth (alpha-normalised,
    0 where alpha is 0) when asked for, ``backend`` the backend that produced it."""

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor | None = None
    backend: str = ""


# ------------------------------------------------------------------------------------------ availability
def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except Exception:
        return False
    return "numba" not in _broken


def gsplat_available() -> bool:
    """gsplat imports and CUDA is present (its kernels may still fail to build: render() then falls back)."""
    if "gsplat" in _broken or not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401
    except Exception:
        return False
    return True


def available_backends(device: Union[str, torch.device] = "cpu") -> list[str]:
    """Backends that can run on ``device`` here (torch always)."""
    dev = torch.device(device)
    out = ["torch"]
    if numba_available():
        out.append("numba")
    if dev.type == "cuda" and gsplat_available():
        out.append("gsplat")
    return out


def pick_backend(device: Union[str, torch.device]) -> str:
    """The backend ``"auto"`` uses on ``device``."""
    return explain_backend(device)[0]


def explain_backend(device: Union[str, torch.device]) -> tuple[str, str]:
    """(the backend ``"auto"`` uses on ``device``, why): the one place the automatic choice is made."""
    dev = torch.device(device)
    if dev.type == "cuda":
        if gsplat_available():
            return "gsplat", "CUDA device and gsplat installed: gsplat's CUDA rasterizer"
        return "torch", "CUDA device without a working gsplat (pip install gsplat): the pure-PyTorch renderer on the GPU"
    if dev.type == "cpu":
        if numba_available():
            return "numba", "CPU device and numba installed: the compiled numba tile renderer (about 5x the torch one)"
        return "torch", ("CPU device without a working numba (pip install numba, a requirement of the pack): the "
                         "pure-PyTorch renderer, about 5x slower per frame")
    return "torch", f"{dev.type} device: the pure-PyTorch renderer"


# ------------------------------------------------------------------------------------------------ inputs
def _camera_tensors(cameras, width, height):
    """(viewmats [C,4,4], Ks [C,3,3], width, height) from a Cameras or a (viewmats, Ks) pair."""
    if hasattr(cameras, "w2c") and hasattr(cameras, "Ks"):
        if width is not None or height is not None:
            w = int(width) if width is not None else int(cameras.width)
            h = int(height) if height is not None else int(cameras.height)
            if (w, h) != (cameras.width, cameras.height):
                cameras = cameras.resized(w, h)
        return cameras.w2c().float(), cameras.Ks().float(), int(cameras.width), int(cameras.height)
    if isinstance(cameras, (tuple, list)) and len(cameras) == 2:
        viewmats, Ks = (torch.as_tensor(t, dtype=torch.float32) for t in cameras)
        if width is None or height is None:
            raise InputError("render(): with (viewmats, Ks) cameras, pass width and height explicitly.")
        if viewmats.dim() == 2:
            viewmats, Ks = viewmats[None], Ks[None]
        if viewmats.dim() != 3 or tuple(viewmats.shape[1:]) != (4, 4) or tuple(Ks.shape) != (len(viewmats), 3, 3):
            raise InputError(f"render(): viewmats must be [C,4,4] and Ks [C,3,3]; got {tuple(viewmats.shape)} "
                             f"and {tuple(Ks.shape)}.")
        return viewmats, Ks, int(width), int(height)
    raise InputError(f"render(): cameras must be a facelift_models.cameras.Cameras or a (viewmats, Ks) pair; "
                     f"got {type(cameras).__name__}.")


def prepare_scene(gaussians: Gaussians, on_nonfinite: str = "drop") -> PreparedScene:
    """Activate the raw Gaussians (float32); drop or reject non-finite rows."""
    if not isinstance(gaussians, Gaussians):
        raise InputError(f"render(): expected a Gaussians container; got {type(gaussians).__name__}.")
    g = gaussians.to(dtype=torch.float32)
    # fast path: a sum is finite iff every term is (barring overflow, which falls through to the exact mask)
    if len(g) and not all(bool(torch.isfinite(t.sum())) for t in g.tensors().values()):
        ok = g.finite_mask()
        n_bad = int((~ok).sum())
        if n_bad:
            if on_nonfinite == "error":
                raise InputError(
                    f"{n_bad} of {len(g)} Gaussians have NaN or infinite values (positions, scales, rotations, "
                    "opacities or colours). The reconstruction probably diverged: re-run it, or render with "
                    "on_nonfinite='drop' to skip those Gaussians.")
            log.warning("render: dropped %d of %d Gaussians with NaN/inf values.", n_bad, len(g))
            g = g.select(ok)
    return PreparedScene(g)


def _background(background, C, D, device) -> torch.Tensor:
    bg = torch.as_tensor(background, dtype=torch.float32, device=device)
    if bg.dim() == 0:
        bg = bg.expand(D)
    if bg.dim() == 1:
        bg = bg[None].expand(C, -1)
    if tuple(bg.shape) != (C, D):
        raise InputError(f"render(): background must have {D} values (or [C,{D}]); got shape {tuple(bg.shape)}.")
    return bg


# ---------------------------------------------------------------------------------------------- render
def render(gaussians: Gaussians, cameras, width: int | None = None, height: int | None = None,
           background: Union[Sequence[float], torch.Tensor] = (1.0, 1.0, 1.0), backend: str = "auto",
           return_depth: bool = False, near_plane: float = 0.2, far_plane: float = 1e10, eps2d: float = 0.3,
           on_nonfinite: str = "drop", progress: Callable[[int, int], None] | None = None,
           cameras_per_call: int | None = None) -> RenderOutput:
    """Render ``gaussians`` from every camera.

    ``cameras``: a ``facelift_models.cameras.Cameras`` (``width``/``height``, if given, resize it) or a
    ``(viewmats [C,4,4] world-to-camera OpenCV, Ks [C,3,3] pixel intrinsics)`` pair with explicit
    ``width``/``height``. Runs on the Gaussians' device; returns tensors on that device.
    ``cameras_per_call`` bounds how many cameras one backend call renders (memory; default: all of them, or 8 when
    ``progress`` is given). ``progress(done, total)``, when given, is called after every such call (a node's
    progress bar; it may raise ``Interrupted`` to stop a long turntable between frames).
    """
    if backend not in ("auto",) + BACKENDS:
        raise InputError(f"render(): unknown backend '{backend}' (choose auto, {', '.join(BACKENDS)}).")
    if on_nonfinite not in ("drop", "error"):
        raise InputError(f"render(): on_nonfinite must be 'drop' or 'error'; got {on_nonfinite!r}.")
    viewmats, Ks, W, H = _camera_tensors(cameras, width, height)
    if W <= 0 or H <= 0:
        raise InputError(f"render(): image size must be positive; got {W}x{H}.")
    if not (torch.isfinite(viewmats).all() and torch.isfinite(Ks).all()):
        raise InputError("render(): camera matrices contain NaN or infinite values.")
    if not (near_plane >= 0 and far_plane > near_plane):
        raise InputError(f"render(): need 0 <= near_plane < far_plane; got {near_plane}, {far_plane}.")
    device = gaussians.device if isinstance(gaussians, Gaussians) else torch.device("cpu")
    scene = prepare_scene(gaussians, on_nonfinite)
    C, D = viewmats.shape[0], 3
    bg = _background(background, C, D, device)
    settings = RasterSettings(W, H, float(near_plane), float(far_plane), float(eps2d), bool(return_depth))
    viewmats, Ks = viewmats.to(device), Ks.to(device)

    name = pick_backend(device) if backend == "auto" else backend
    if len(scene) == 0:
        color_sum = torch.zeros(C, H, W, D, device=device)
        T = torch.ones(C, H, W, device=device)
        depth_sum = torch.zeros(C, H, W, device=device) if return_depth else None
        name = "none"
    else:
        if cameras_per_call is None:
            cameras_per_call = C if progress is None else 8
        step = max(1, int(cameras_per_call))
        parts = []
        for c0 in range(0, C, step):
            part = _run_backend(name, backend == "auto", scene, viewmats[c0:c0 + step], Ks[c0:c0 + step], settings)
            name = part[3]  # a backend that fell back stays fallen back for the remaining cameras
            parts.append(part)
            if progress is not None:
                progress(min(C, c0 + step), C)
        color_sum = torch.cat([p[0].to(device) for p in parts])
        T = torch.cat([p[1].to(device) for p in parts])
        depth_sum = torch.cat([p[2].to(device) for p in parts]) if return_depth else None
    color_sum, T = color_sum.to(device), T.to(device)
    alpha = (1.0 - T)[..., None]
    rgb = color_sum + T[..., None] * bg[:, None, None, :]
    depth = None
    if return_depth:
        depth_sum = depth_sum.to(device)[..., None]
        depth = torch.where(alpha > 0, depth_sum / alpha.clamp_min(1e-10), torch.zeros_like(depth_sum))
    return RenderOutput(rgb, alpha, depth, name)


def _run_backend(name, allow_fallback, scene, viewmats, Ks, settings):
    if name == "gsplat":
        dev = scene.raw.device
        if dev.type != "cuda":
            log.warning("render: the gsplat backend needs CUDA tensors (the Gaussians are on %s); "
                        "using the torch backend.", dev)
            name = "torch"
        elif "gsplat" in _broken:
            name = "torch"  # already reported once
        else:
            try:
                from . import gsplat_cuda

                return (*gsplat_cuda.render(scene, viewmats, Ks, settings), "gsplat")
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as e:  # not installed, a failed JIT build, no CUDA toolkit: fall back, say it once
                _broken["gsplat"] = f"{type(e).__name__}: {e}"
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                log.warning("render: gsplat backend unavailable (%s: %s); falling back to the torch backend.",
                            type(e).__name__, first[:200])
                name = "torch"
    if name == "numba":
        try:
            from . import numba_cpu
        except ImportError as e:
            if not allow_fallback:
                raise InputError("render(): backend 'numba' needs the numba package "
                                 "(pip install numba), or use backend='torch'.") from e
            name = "torch"
        else:
            cpu = scene if scene.raw.device.type == "cpu" else scene.to("cpu")
            return (*numba_cpu.render(cpu, viewmats.cpu(), Ks.cpu(), settings), "numba")
    from . import reference

    reference.prepare_covariances(scene)
    return (*reference.render(scene, viewmats, Ks, settings), "torch")

