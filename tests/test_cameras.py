"""Cameras: the official views and turntable (spec §7), user cameras, rays and the 9-channel input (§6.2)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from facelift_models import cameras as C
from facelift_models.errors import InputError
from tests.conftest import sidecars, fixture_id

GSLRM_SIDECARS = sidecars("gslrm")


def _fixture_tensors(path):
    from safetensors.torch import load_file

    meta = json.loads(path.read_text())
    return meta, load_file(str(path.parent / meta["tensors"]))


def test_official_view_names_and_count():
    cams = C.official_views()
    assert cams.names == C.VIEW_NAMES
    assert len(cams) == 6 and cams.width == cams.height == 512
    assert cams.c2w.dtype == torch.float32


def test_official_front_camera_matches_spec_w2c():
    w2c = C.official_views().w2c()[0]
    expected = torch.tensor([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 2.7], [0, 0, 0, 1]], dtype=torch.float32)
    assert torch.allclose(w2c, expected, atol=1e-6)


def test_official_camera_positions_and_intrinsics():
    cams = C.official_views()
    r = 2.7 / math.sqrt(2)
    expected = torch.tensor([[0, -2.7, 0], [-r, -r, 0], [-2.7, 0, 0], [0, 2.7, 0], [2.7, 0, 0], [r, -r, 0]])
    assert torch.allclose(cams.positions(), expected, atol=1e-5)
    f = 512 / (2 * math.tan(math.radians(25)))
    assert torch.allclose(cams.fxfycxcy, torch.tensor([[f, f, 256.0, 256.0]] * 6), rtol=1e-7)
    # the official JSON stores fx = 548.9937744140625 (float32)
    assert float(cams.fxfycxcy[0, 0]) == pytest.approx(548.9937744140625, abs=1e-4)


def test_every_camera_is_rigid_and_looks_at_origin():
    for cams in (C.official_views(), C.turntable(12, elevation_deg=20.0), C.orbit(33.0, -10.0, radius=3.1)):
        rot = cams.c2w[:, :3, :3].double()
        assert torch.allclose(rot.transpose(1, 2) @ rot, torch.eye(3, dtype=torch.float64).expand_as(rot), atol=1e-6)
        assert torch.allclose(torch.linalg.det(rot), torch.ones(len(cams), dtype=torch.float64), atol=1e-6)
        pos = cams.positions().double()
        fwd = rot[:, :, 2]
        assert torch.allclose(fwd, -pos / pos.norm(dim=1, keepdim=True), atol=1e-6)
        # OpenCV: image "down" (column 1) points toward world -z (world up is +z)
        assert (rot[:, 2, 1] <= 1e-6).all()


@pytest.mark.parametrize("path", GSLRM_SIDECARS, ids=fixture_id)
def test_official_views_match_fixture_cameras(path):
    meta, t = _fixture_tensors(path)
    if list(meta.get("camera_indices", [])) != [2, 1, 0, 5, 4, 3]:
        pytest.skip("fixture does not use the official 6 views")
    size = int(meta["image_size"])
    cams = C.official_views().resized(size, size)
    assert (cams.c2w - t["in.c2w"][0]).abs().max() < 1e-6
    assert torch.allclose(cams.fxfycxcy, t["in.fxfycxcy"][0], rtol=1e-6)


def test_turntable_starts_at_front_and_turns_toward_plus_x():
    tt = C.turntable(8)
    front = C.official_views()
    assert torch.allclose(tt.c2w[0], front.c2w[0], atol=1e-6)
    assert tt.positions()[1, 0] > 0.5          # first step goes toward +x (the subject's left)
    assert torch.allclose(tt.c2w[2], front.c2w[4], atol=1e-6)   # quarter turn = "left" view
    assert torch.allclose(tt.c2w[4], front.c2w[3], atol=1e-6)   # half turn = "back" view
    assert len(C.turntable()) == 150


def test_turntable_elevation_raises_camera():
    tt = C.turntable(4, elevation_deg=20.0)
    assert torch.allclose(tt.positions()[:, 2], torch.full((4,), 2.7 * math.sin(math.radians(20))), atol=1e-6)


def test_orbit_matches_official_views():
    views = C.official_views()
    for name, az in [("front", 0), ("front_left", 45), ("left", 90), ("back", 180), ("right", -90),
                     ("front_right", -45)]:
        i = C.VIEW_NAMES.index(name)
        assert torch.allclose(C.orbit(az).c2w[0], views.c2w[i], atol=1e-6), name


def test_resized_scales_intrinsics_per_axis_and_ks():
    cams = C.official_views().resized(128, 64)
    assert (cams.width, cams.height) == (128, 64)
    f = 512 / (2 * math.tan(math.radians(25)))
    assert torch.allclose(cams.fxfycxcy[0], torch.tensor([f / 4, f / 8, 64.0, 32.0]))
    K = cams.Ks()[0]
    assert torch.allclose(K, torch.tensor([[f / 4, 0, 64.0], [0, f / 8, 32.0], [0, 0, 1.0]]))
    assert cams.names == C.VIEW_NAMES


def test_bad_pose_arguments():
    with pytest.raises(InputError):
        C.turntable(0)
    with pytest.raises(InputError):
        C.orbit(elevation_deg=90)
    with pytest.raises(InputError):
        C.orbit(radius=-1)
    with pytest.raises(InputError):
        C.orbit(fov_deg=0)


# ------------------------------------------------------------------------------------------ user cameras
def test_from_user_accepts_3x4_and_K_and_roundtrips():
    ref = C.official_views().resized(64, 64)
    cams = C.from_user(ref.c2w[:, :3, :], ref.Ks(), 64, 64)
    assert torch.allclose(cams.c2w, ref.c2w) and torch.allclose(cams.fxfycxcy, ref.fxfycxcy)
    single = C.from_user(ref.c2w[0].numpy(), ref.fxfycxcy[0].tolist(), 64, 64)
    assert len(single) == 1


@pytest.mark.parametrize("case", ["shape", "nan", "scaled", "mirrored", "last_row", "k_shape", "skew", "focal",
                                  "size", "count"])
def test_from_user_rejects_bad_cameras(case):
    ref = C.official_views().resized(64, 64)
    c2w, k, w, h = ref.c2w.clone(), ref.fxfycxcy.clone(), 64, 64
    if case == "shape":
        c2w = c2w[:, :2]
    elif case == "nan":
        c2w[1, 0, 3] = float("nan")
    elif case == "scaled":
        c2w[2, :3, :3] *= 2.0
    elif case == "mirrored":
        c2w[0, :3, 0] *= -1
    elif case == "last_row":
        c2w[0, 3, 0] = 0.5
    elif case == "k_shape":
        k = k[:, :3]
    elif case == "skew":
        k = ref.Ks()
        k[0, 0, 1] = 3.0
    elif case == "focal":
        k[0, 0] = 0.0
    elif case == "size":
        w = 0
    elif case == "count":
        k = k[:5]
    with pytest.raises(InputError) as err:
        C.from_user(c2w, k, w, h)
    assert len(str(err.value)) > 30


# ------------------------------------------------------------------------------------------------ rays
def test_ray_through_principal_point_is_the_forward_axis():
    ref = C.orbit(30.0, 10.0)
    cams = C.from_user(ref.c2w, [[40.0, 40.0, 16.5, 16.5]], 33, 33)
    o, d = C.ray_bundle(cams)
    assert o.shape == d.shape == (1, 3, 33, 33)
    assert torch.allclose(d[0, :, 16, 16], cams.c2w[0, :3, 2], atol=1e-6)
    assert torch.allclose(d.norm(dim=1), torch.ones(1, 33, 33), atol=1e-6)
    assert torch.allclose(o[0, :, 5, 7], cams.positions()[0])
    # pixel to the right of the centre -> ray tilts toward the camera's +x (right) axis
    assert float((d[0, :, 16, 20] - d[0, :, 16, 16]) @ cams.c2w[0, :3, 0]) > 0
    # pixel below the centre -> ray tilts toward the camera's +y (down) axis
    assert float((d[0, :, 20, 16] - d[0, :, 16, 16]) @ cams.c2w[0, :3, 1]) > 0


def test_posed_input_channels():
    cams = C.official_views().resized(16, 16)
    img = torch.rand(2, 6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    x = C.posed_input(img, cams)
    assert x.shape == (2, 6, 9, 16, 16)
    assert torch.allclose(x[:, :, :3], img * 2 - 1)
    o, d = C.ray_bundle(cams)
    assert torch.allclose(x[0, :, 3:6], d)
    p = x[1, :, 6:9]
    # the point lies on the ray and is the closest one to the origin: p . d = 0
    assert torch.allclose((p * d).sum(1), torch.zeros(6, 16, 16), atol=1e-5)
    assert torch.allclose(torch.linalg.cross(p - o, d, dim=1), torch.zeros_like(p), atol=1e-5)


@pytest.mark.parametrize("path", GSLRM_SIDECARS, ids=fixture_id)
def test_rays_and_posed_input_match_fixture(path):
    meta, t = _fixture_tensors(path)
    img = t["in.image"]
    for b in range(img.shape[0]):
        cams = C.from_user(t["in.c2w"][b], t["in.fxfycxcy"][b], img.shape[-1], img.shape[-2])
        o, d = C.ray_bundle(cams)
        assert (o - t["mid.ray_o"][b]).abs().max() <= 1e-5
        assert (d - t["mid.ray_d"][b]).abs().max() <= 1e-5
        assert (C.posed_input(img[b:b + 1], cams)[0] - t["mid.posed_images"][b]).abs().max() <= 1e-5


def test_posed_input_rejects_mismatched_images():
    cams = C.official_views().resized(16, 16)
    with pytest.raises(InputError):
        C.posed_input(torch.rand(1, 5, 3, 16, 16), cams)
    with pytest.raises(InputError):
        C.posed_input(torch.rand(1, 6, 3, 16, 24), cams)
    with pytest.raises(InputError):
        C.posed_input(torch.rand(1, 6, 4, 16, 16), cams)
    with pytest.raises(InputError):
        C.posed_input(torch.zeros(1, 6, 3, 16, 16, dtype=torch.uint8), cams)
