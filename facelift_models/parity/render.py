"""Parity of the ``render`` kind: every available render backend against the oracle renders.

Settings (size, background, near/far planes, eps2d) come from the sidecar; cameras are the stored
world-to-camera matrices and K matrices (non-square images, fx != fy and off-centre principal points work
as they are). ``out.rgb`` / ``out.alpha`` are compared for each backend (torch and numba on CPU, gsplat on
CUDA when present) with ``check.atol`` and ``check.mean_atol``; the per-Gaussian projection of camera 0
(``out.depths``, ``out.means2d``, ``aux.conics``, ``out.radii``) is compared per ``check.optional_compare``.
"""

from __future__ import annotations

import torch

from ..gaussians import Gaussians
from .common import Fixture, ParityError, Report


PROJECTION_KEYS = ("out.depths", "out.means2d", "aux.conics", "out.radii")


def _gaussians(fx: Fixture) -> Gaussians:
    return Gaussians(xyz=fx.tensor("in.means"), f_dc=fx.tensor("in.f_dc"), log_scales=fx.tensor("in.log_scales"),
                     quats=fx.tensor("in.quats"), opacity_logits=fx.tensor("in.opacity_logits"))


def _backends() -> list[tuple[str, str]]:
    from ..render import available_backends

    out = [(b, "cpu") for b in available_backends("cpu")]
    if torch.cuda.is_available():
        out += [(b, "cuda") for b in available_backends("cuda") if b in ("gsplat", "torch")]
    return out


def run(fixture: Fixture, report: Report) -> None:
    from ..render import render
    from ..render.projection import covariances, project

    m = fixture.meta
    if m.get("rasterize_mode", "classic") != "classic" or int(m.get("sh_degree", 0)) != 0:
        raise ParityError(f"{fixture.path}: only rasterize_mode 'classic' with sh_degree 0 is supported "
                          f"(got {m.get('rasterize_mode')!r}, sh_degree {m.get('sh_degree')}).")
    W, H = int(m["width"]), int(m["height"])
    settings = dict(background=tuple(float(v) for v in m.get("background", (1.0, 1.0, 1.0))),
                    near_plane=float(m.get("near_plane", 0.2)), far_plane=float(m.get("far_plane", 1e10)),
                    eps2d=float(m.get("eps2d", 0.3)))
    gs = _gaussians(fixture)
    viewmats, Ks = fixture.tensor("in.viewmats"), fixture.tensor("in.Ks")
    all_compare = fixture.check.get("compare") or ["out.rgb", "out.alpha"]
    compare = [k for k in all_compare if k in ("out.rgb", "out.alpha")]
    unknown = [k for k in all_compare if k not in compare and k not in PROJECTION_KEYS]
    if unknown:
        raise ParityError(f"{fixture.path}: don't know how to produce compare key(s) {unknown}.")
    expected = {k: fixture.tensor(k) for k in compare}

    for backend, device in _backends():
        out = render(gs.to(device), (viewmats, Ks), W, H, backend=backend, **settings)
        if out.backend != backend:  # e.g. gsplat failed to build its kernels and render() fell back
            report.value(f"backend[{backend}@{device}]", out.backend, backend)
            continue
        got = {"out.rgb": out.rgb, "out.alpha": out.alpha}
        for key in compare:
            report.compare(f"{key} [{backend}@{device}]", got[key].cpu(), expected[key], atol=report.atol(key))

    # --- optional: the per-Gaussian projection of camera 0 (torch projection = what the torch backend uses)
    opt = dict(fixture.check.get("optional_compare") or {})
    for k in all_compare:  # projection keys listed as mandatory use the optional rules' defaults
        if k in PROJECTION_KEYS:
            opt.setdefault(k, {})
    if not opt:
        return
    scene = gs
    quats = torch.nn.functional.normalize(scene.quats, dim=-1)
    proj = project(scene.xyz, covariances(quats, scene.scales()), viewmats[0], Ks[0], W, H,
                   settings["near_plane"], settings["far_plane"], settings["eps2d"])
    ref_radii = fixture.tensor("out.radii") if fixture.has("out.radii") else None
    where = (ref_radii > 0).all(-1) if ref_radii is not None else proj.visible
    if "out.depths" in opt and fixture.has("out.depths"):
        report.compare("out.depths", proj.depths, atol=float(opt["out.depths"].get("atol", 1e-4)), mean_atol=float("inf"))
    if "out.means2d" in opt and fixture.has("out.means2d"):
        report.compare("out.means2d (visible)", proj.means2d[where], fixture.tensor("out.means2d")[where],
                       atol=float(opt["out.means2d"].get("atol", 1e-3)), mean_atol=float("inf"))
    if "aux.conics" in opt and fixture.has("aux.conics"):
        ref = fixture.tensor("aux.conics")[where].double()
        rel = (proj.conics[where].double() - ref) / ref.abs().amax(-1, keepdim=True).clamp_min(1e-30)
        report.compare("aux.conics (visible, relative)", rel, torch.zeros_like(rel),
                       atol=float(opt["aux.conics"].get("rtol", 1e-3)), mean_atol=float("inf"))
    if "out.radii" in opt and ref_radii is not None:
        report.exact("out.radii", proj.radii, ref_radii)
