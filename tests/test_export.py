"""Export: round trips of every format, binary PLY headers with scale_*/rot_*, invertible axis conversion,
viewer orientation, atomic writes, the optional MP4 writer."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from facelift_models.formats import axes as axes_mod
from facelift_models.formats import export as ex
from facelift_models.cameras import orbit
from facelift_models.errors import InputError
from facelift_models.gaussians import SH_C0, Gaussians
from facelift_models.render import render


def _g(n=257, seed=0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(xyz=torch.randn(n, 3, generator=gen) * 0.5,
                     f_dc=torch.rand(n, 3, generator=gen) * 3 - 1.5,   # colours within [0.08, 0.92]
                     log_scales=-4 + torch.randn(n, 3, generator=gen) * 0.5,
                     quats=torch.randn(n, 4, generator=gen) * 2,       # raw, not unit
                     opacity_logits=torch.randn(n, generator=gen) * 2)


def _same_rotation(q1, q2, atol):
    a = torch.nn.functional.normalize(q1, dim=-1)
    b = torch.nn.functional.normalize(q2, dim=-1)
    return ((a * b).sum(-1).abs() - 1).abs().max() < atol


def _header(path) -> bytes:
    data = open(path, "rb").read()
    return data[: data.index(b"end_header\n") + len(b"end_header\n")]


# ------------------------------------------------------------------------------------------------ axes
def test_axis_conversion_is_invertible_and_a_rotation():
    g = _g()
    c = axes_mod.convert_axes(g, "facelift", "opencv")
    back = axes_mod.convert_axes(c, "opencv", "facelift")
    assert torch.equal(back.xyz, g.xyz)  # signed permutation: exact
    assert torch.allclose(back.quats, g.quats, atol=1e-5)
    assert torch.allclose(c.quats.norm(dim=-1), g.quats.norm(dim=-1), rtol=1e-5)  # raw norms kept
    # FaceLift up (+z) -> viewer up (-y, 3DGS/OpenCV y down); face direction (-y) -> -z
    pts = torch.tensor([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
    p = Gaussians(pts, torch.zeros(3, 3), torch.zeros(3, 3), torch.tensor([[1.0, 0, 0, 0]] * 3), torch.zeros(3))
    assert torch.equal(axes_mod.convert_axes(p, "facelift", "opencv").xyz,
                       torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]))
    # ComfyUI's viewer turns the file 180 deg about X (three.js y-up scene, default camera on the +z side):
    # FaceLift up must end up +y and the face direction +z there
    viewer = axes_mod.convert_axes(p, "facelift", "opencv").xyz * torch.tensor([1.0, -1.0, -1.0])
    assert torch.equal(viewer, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(InputError, match="axes"):
        axes_mod.convert_axes(g, "facelift", "blender")


def test_axis_conversion_rotates_covariances_consistently():
    """Rendering the converted Gaussians with the equally converted camera gives the same image."""
    g = _g(300)
    cams = orbit(25.0, 10.0, width=48, height=40)
    ref = render(g, cams, backend="torch")
    c2w = cams.c2w.clone().double()
    R = torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=torch.float64)
    c2w[:, :3, :3] = R @ c2w[:, :3, :3]
    c2w[:, :3, 3] = c2w[:, :3, 3] @ R.T
    vm = torch.linalg.inv(c2w).float()
    out = render(axes_mod.convert_axes(g, "facelift", "opencv"), (vm, cams.Ks()), 48, 40, backend="torch")
    assert (out.rgb - ref.rgb).abs().max() < 1e-3
    assert ref.alpha.max() > 0.3


# ------------------------------------------------------------------------------------------- standard PLY
@pytest.mark.parametrize("pad_sh", [False, True])
def test_standard_ply_round_trip_and_header(tmp_path, pad_sh):
    g = _g()
    path = ex.write_standard_ply(g, tmp_path / "head.ply", pad_sh=pad_sh)
    head = _header(path).decode("ascii")
    assert "format binary_little_endian 1.0" in head
    for name in ["x", "nx", "f_dc_0", "opacity", "scale_0", "scale_2", "rot_0", "rot_3"]:
        assert f"property float {name}\n" in head
    assert ("f_rest_44" in head) == pad_sh
    n_props = head.count("property float")
    assert os.path.getsize(path) == len(head) + len(g) * 4 * n_props
    back = ex.read_standard_ply(path)  # default axes on both sides
    assert torch.allclose(back.xyz, g.xyz, atol=1e-6)
    assert torch.equal(back.f_dc, g.f_dc) and torch.equal(back.log_scales, g.log_scales)
    assert torch.equal(back.opacity_logits, g.opacity_logits)
    assert torch.allclose(back.quats, g.quats, atol=1e-5)
    # stored in the viewer convention: y of the file = -z of FaceLift
    from facelift_models.formats.ply import read_ply

    assert torch.allclose(read_ply(path).xyz[:, 1], -g.xyz[:, 2])


def test_official_ply_export_default_axes_is_official_bytes(tmp_path):
    from facelift_models.formats.ply import ply_bytes

    g = _g(50)
    path = ex.export(g, tmp_path / "official.ply")
    assert path.read_bytes() == ply_bytes(g)
    head = _header(path).decode("ascii")
    assert "binary_little_endian" in head and "property float scale_0" in head and "property float rot_3" in head
    viewer = ex.export(g, tmp_path / "viewer.ply", format="official_ply", axes="opencv")
    assert viewer.read_bytes() != path.read_bytes()


# --------------------------------------------------------------------------------------------- .splat
def test_splat_round_trip(tmp_path):
    g = _g()
    path = ex.write_splat(g, tmp_path / "head.splat")
    data = path.read_bytes()
    assert len(data) == 32 * len(g)
    rec = np.frombuffer(data, dtype=ex.SPLAT_RECORD)
    # linear scales, positions in viewer axes, quaternion bytes w,x,y,z around 128
    assert np.allclose(rec["scale"], g.scales().numpy(), rtol=1e-6)
    assert np.allclose(rec["xyz"][:, 1], -g.xyz[:, 2].numpy())
    back = ex.read_splat(path)
    assert torch.allclose(back.xyz, g.xyz, atol=1e-6)
    assert torch.allclose(back.log_scales, g.log_scales, atol=1e-5)
    colour = lambda t: 0.5 + SH_C0 * t  # noqa: E731
    assert (colour(back.f_dc) - colour(g.f_dc)).abs().max() <= 0.5 / 255 + 1e-6
    assert (back.opacities() - g.opacities()).abs().max() <= 0.5 / 255 + 1e-6
    assert _same_rotation(back.quats, g.quats, atol=1e-3)
    # the rendered image survives the quantisation
    cams = orbit(0.0, 0.0, width=32)
    assert (render(back, cams, backend="torch").rgb - render(g, cams, backend="torch").rgb).abs().mean() < 5e-3


def test_splat_reader_rejects_garbage(tmp_path):
    p = tmp_path / "bad.splat"
    p.write_bytes(b"x" * 33)
    with pytest.raises(InputError, match="32-byte"):
        ex.read_splat(p)
    with pytest.raises(InputError, match="not found"):
        ex.read_splat(tmp_path / "missing.splat")


# ------------------------------------------------------------------------------------------------ .spz
@pytest.mark.skipif(not ex.spz_available(), reason="gsply not installed")
def test_spz_round_trip(tmp_path):
    g = _g()
    path = ex.write_spz(g, tmp_path / "head.spz")
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # gzip container
    back = ex.read_spz(path)
    assert len(back) == len(g)
    assert (back.xyz - g.xyz).abs().max() < 2.0 / 4096  # 12 fractional bits
    assert (back.log_scales - g.log_scales).abs().max() < 1.0 / 16 + 1e-3
    assert (back.opacities() - g.opacities()).abs().max() < 1.0 / 255 + 1e-3
    colour = lambda t: 0.5 + SH_C0 * t  # noqa: E731
    assert (colour(back.f_dc) - colour(g.f_dc)).abs().max() < 0.01
    assert _same_rotation(back.quats, g.quats, atol=1e-2)


# -------------------------------------------------------------------------------------------- dispatch
def test_export_dispatch_atomic_and_errors(tmp_path, monkeypatch):
    g = _g(20)
    for name in ["a.ply", "a.splat"] + (["a.spz"] if ex.spz_available() else []):
        assert (ex.export(g, tmp_path / name)).exists()
    with pytest.raises(InputError, match="format"):
        ex.export(g, tmp_path / "a.obj")
    with pytest.raises(InputError, match="no Gaussians"):
        ex.export(Gaussians.empty(), tmp_path / "e.splat")
    # a failing write leaves neither a partial file nor a temp file behind
    target = tmp_path / "keep.splat"
    target.write_bytes(b"old")

    # data that cannot be written: the write fails inside the atomic block, after the temporary file exists
    monkeypatch.setattr(ex, "splat_bytes", lambda *a, **k: object())
    with pytest.raises(TypeError):
        ex.write_splat(g, target)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
