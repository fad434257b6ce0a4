"""facelift_models.mesh: Gaussians -> closed coloured mesh, measured against splats of known geometry/colour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facelift_models import cameras
from facelift_models.errors import InputError, Interrupted
from facelift_models.gaussians import Gaussians
from facelift_models.mesh import ColoredMesh, density, gaussians_to_mesh
from facelift_models.render import render
from harness import mesh_shapes as S

DENSE, SPARSE = 150_000, 20_000
CASES = [(shape, n) for shape in ("ellipsoid", "two_colour_sphere") for n in (DENSE, SPARSE)]


def _shape(name: str) -> S.Shape:
    return S.ellipsoid() if name == "ellipsoid" else S.two_colour_sphere()


@pytest.fixture(scope="module")
def meshed():
    """Each synthetic case meshed once at the default settings: {(shape, n): (shape, gaussians, mesh)}."""
    out = {}
    for name, n in CASES:
        shape = _shape(name)
        g = S.splat(shape, n, seed=1)
        out[(name, n)] = (shape, g, gaussians_to_mesh(g))
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_mesh_matches_the_true_surface(meshed, case):
    import trimesh

    shape, _, m = meshed[case]
    truth, _ = shape.sample(100_000, np.random.default_rng(7))
    tm = trimesh.Trimesh(m.vertices, m.faces, process=False)
    assert tm.is_watertight and tm.is_winding_consistent
    assert len(tm.split(only_watertight=False)) == 1
    assert tm.volume > 0  # faces wound counter-clockwise seen from outside
    assert S.chamfer(m.vertices, m.faces, truth) < 0.01 * shape.size


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_vertex_colours_match_the_truth(meshed, case):
    from scipy.spatial import cKDTree

    shape, _, m = meshed[case]
    truth, _ = shape.sample(200_000, np.random.default_rng(8))
    _, nn = cKDTree(truth).query(m.vertices)
    err = np.abs(m.colors - shape.color(truth[nn])).mean() * 255.0
    assert err < 10.0, err


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_silhouettes_match_the_splat_renders(meshed, case):
    _, g, m = meshed[case]
    cams = cameras.official_views()  # 512 x 512, as FaceLift renders them
    splat_masks = render(g, cams).alpha[..., 0].numpy() > 0.5
    mesh_masks = S.mesh_silhouettes(m.vertices.astype(np.float64), m.faces, cams)
    for v in range(len(cams)):
        assert S.iou(mesh_masks[v], splat_masks[v]) >= 0.95, (cams.names[v], S.iou(mesh_masks[v], splat_masks[v]))


def test_floaters_and_inner_shells_are_removed():
    import trimesh

    outer = S.splat(S.two_colour_sphere(0.4), 60_000, seed=2)
    inner = S.splat(S.two_colour_sphere(0.2, top=(0, 1, 0), bottom=(0, 1, 0)), 20_000, seed=3)
    rng = np.random.default_rng(4)
    n_fl = 300
    fl_xyz = rng.uniform(0.5, 0.7, (n_fl, 3)) * rng.choice([-1, 1], (n_fl, 3))
    floaters = S.from_arrays(fl_xyz, np.full((n_fl, 3), 0.004), np.tile([1.0, 0, 0, 0], (n_fl, 1)),
                             np.full(n_fl, 0.9), np.zeros((n_fl, 3)))
    m = gaussians_to_mesh(Gaussians.concat([outer, inner, floaters]), resolution=128, target_faces=20_000)
    tm = trimesh.Trimesh(m.vertices, m.faces, process=False)
    assert len(tm.split(only_watertight=False)) == 1 and tm.is_watertight
    r = np.linalg.norm(m.vertices, axis=1)
    assert r.min() > 0.37 and r.max() < 0.45  # only the outer sphere: no inner shell, no floater
    assert m.colors[:, 1].max() < 0.5  # the inner (green) shell does not bleed into the outer colours


def test_target_faces_and_smoothing():
    g = S.splat(S.ellipsoid(), 40_000, seed=5)
    rough = gaussians_to_mesh(g, resolution=96, smoothing=0, target_faces=0)
    small = gaussians_to_mesh(g, resolution=96, smoothing=10, target_faces=3000)
    assert len(small.faces) <= 3000 < len(rough.faces)
    assert 2500 < len(small.faces)


def test_views_colour_source():
    shape = S.two_colour_sphere()
    m = gaussians_to_mesh(S.splat(shape, 40_000, seed=6), resolution=96, target_faces=5000, color_source="views")
    from scipy.spatial import cKDTree

    truth, _ = shape.sample(50_000, np.random.default_rng(9))
    _, nn = cKDTree(truth).query(m.vertices)
    assert np.abs(m.colors - shape.color(truth[nn])).mean() * 255.0 < 15.0


def test_torch_and_numba_splatting_agree(monkeypatch):
    pytest.importorskip("numba")
    g = S.splat(S.ellipsoid(), 3000, seed=7)
    lo, hi = density.robust_bounds(g.xyz, g.opacities())
    grid = density.fit_grid(lo, hi, 48)
    args = (g.xyz, g.scales(), g.rotations(), g.opacities(), grid)
    fast = density.splat_optical_depth(*args)
    monkeypatch.setattr(density, "_NUMBA", None)
    slow = density.splat_optical_depth(*args)
    assert torch.allclose(fast, slow, atol=1e-4, rtol=1e-4)
    assert float(slow.max()) > 1.0


def test_progress_and_interruption():
    g = S.splat(S.ellipsoid(), 5000, seed=8)
    seen = []
    gaussians_to_mesh(g, resolution=48, target_faces=0, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] and len(seen) >= 5
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))

    def stop(done, total):
        if done > 0:
            raise Interrupted("stop")

    with pytest.raises(Interrupted):
        gaussians_to_mesh(g, resolution=48, progress=stop)


def test_bad_inputs_give_clear_errors():
    z = lambda *s: torch.zeros(*s)  # noqa: E731
    with pytest.raises(InputError, match="empty"):
        gaussians_to_mesh(Gaussians.empty())
    transparent = S.from_arrays(np.zeros((10, 3)), np.full((10, 3), 0.01), np.tile([1.0, 0, 0, 0], (10, 1)),
                                np.full(10, 1e-4), np.ones((10, 3)))
    with pytest.raises(InputError, match="transparent"):
        gaussians_to_mesh(transparent)
    nan = Gaussians(torch.full((4, 3), float("nan")), z(4, 3), z(4, 3), torch.tensor([[1.0, 0, 0, 0]] * 4),
                    torch.full((4,), 5.0))
    with pytest.raises(InputError, match="NaN"):
        gaussians_to_mesh(nan)
    point = Gaussians(z(5, 3), z(5, 3), torch.full((5, 3), -80.0), torch.tensor([[1.0, 0, 0, 0]] * 5),
                      torch.full((5,), 5.0))
    with pytest.raises(InputError, match="one point"):
        gaussians_to_mesh(point)
    g = S.splat(S.ellipsoid(), 500)
    with pytest.raises(InputError, match="colour source"):
        gaussians_to_mesh(g, color_source="texture")
    with pytest.raises(InputError, match="resolution"):
        gaussians_to_mesh(g, resolution=4)
    with pytest.raises(InputError, match="target faces"):
        gaussians_to_mesh(g, target_faces=10)
    with pytest.raises(InputError):
        gaussians_to_mesh("not gaussians")


def test_head_orientation_is_kept(tmp_path):
    """The mesh stays in FaceLift's world: the nose (toward -y) of the head-like splat stays toward -y."""
    g = S.head_like(60_000, seed=1)
    m = gaussians_to_mesh(g, resolution=96, target_faces=20_000)
    front = m.vertices[np.abs(m.vertices[:, 0]) < 0.03]
    front = front[np.abs(front[:, 2] + 0.02) < 0.05]
    assert front[:, 1].min() < -0.40  # the nose sticks out 8 cm in front of the 36 cm skull half-axis
    assert isinstance(m, ColoredMesh) and m.vertices.dtype == np.float32 and m.faces.dtype == np.int64
    assert not math.isnan(float(m.colors.sum()))
