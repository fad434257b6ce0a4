"""Render: parity with every `render` fixture, backends agreeing with each other and with an untiled
float64 compositor, and the edge cases (empty, behind the camera, NaN, bad inputs)."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from facelift_models.cameras import orbit, turntable
from facelift_models.errors import InputError
from facelift_models.gaussians import Gaussians
from facelift_models.parity.common import run_fixture
from facelift_models.render import available_backends, render
from facelift_models.render.projection import covariances, project
from tests.conftest import sidecars, fixture_id

CPU_BACKENDS = available_backends("cpu")


@pytest.mark.parametrize("sidecar", sidecars("render"), ids=fixture_id)
def test_parity_every_render_fixture(sidecar):
    report = run_fixture(sidecar)
    failed = [(l.key, l.max_abs_diff, l.detail) for l in report.lines if not l.ok]
    assert report.passed, failed
    # every available CPU backend was compared
    for b in CPU_BACKENDS:
        assert any(f"[{b}@cpu]" in l.key for l in report.lines), b


def _scene(n=400, seed=0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n, 3, generator=g)
    xyz = d / d.norm(dim=1, keepdim=True) * torch.tensor([0.8, 1.0, 0.85]) * (0.6 + 0.4 * torch.rand(n, 1, generator=g))
    return Gaussians(xyz=xyz, f_dc=torch.randn(n, 3, generator=g) * 1.5,
                     log_scales=math.log(0.04) + 0.6 * torch.randn(n, 3, generator=g),
                     quats=torch.randn(n, 4, generator=g) * 2, opacity_logits=torch.randn(n, generator=g) * 2)


def _hard_cameras(W=40, H=28):
    """Non-square, fx != fy, off-centre principal points; one camera close enough that Gaussians straddle
    the near plane and lie behind it."""
    c2w = turntable(3, elevation_deg=15.0, radius=2.7).c2w.clone()
    c2w[2, :3, 3] *= 0.08  # camera inside the head's bounding ellipsoid: near-plane culling and behind-camera
    viewmats = torch.linalg.inv(c2w)
    Ks = torch.tensor([[[45.0, 0, 17.3], [0, 38.0, 15.9], [0, 0, 1]],
                       [[33.0, 0, 25.1], [0, 51.0, 9.4], [0, 0, 1]],
                       [[20.0, 0, 20.0], [0, 22.0, 14.0], [0, 0, 1]]])
    return viewmats, Ks, W, H


def _dense_reference(g: Gaussians, viewmats, Ks, W, H, bg, near, far, eps2d=0.3):
    """Untiled per-pixel compositing in float64 over every visible Gaussian, following the sidecar's
    conventions literally (sequential front-to-back loop per pixel)."""
    g64 = g.to(dtype=torch.float64)
    q = torch.nn.functional.normalize(g64.quats, dim=-1)
    cov = covariances(q, g64.scales())
    op = g64.opacities()
    col = g64.colors()
    out = torch.zeros(len(viewmats), H, W, 3, dtype=torch.float64)
    alpha_out = torch.zeros(len(viewmats), H, W, dtype=torch.float64)
    for c in range(len(viewmats)):
        p = project(g64.xyz, cov, viewmats[c].double(), Ks[c].double(), W, H, near, far, eps2d)
        vis = torch.nonzero(p.visible).squeeze(1)
        vis = vis[torch.argsort(p.depths[vis], stable=True)]
        ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64) + 0.5,
                                torch.arange(W, dtype=torch.float64) + 0.5, indexing="ij")
        dx = p.means2d[vis, 0, None, None] - xs
        dy = p.means2d[vis, 1, None, None] - ys
        A, B, C = (p.conics[vis, k, None, None] for k in range(3))
        sigma = 0.5 * (A * dx * dx + C * dy * dy) + B * dx * dy
        alpha = torch.clamp_max(op[vis, None, None] * torch.exp(-sigma), 0.999)
        for i in range(H):
            for j in range(W):
                T, acc = 1.0, torch.zeros(3, dtype=torch.float64)
                for k in range(len(vis)):
                    a = float(alpha[k, i, j])
                    if float(sigma[k, i, j]) < 0 or a < 1.0 / 255.0:
                        continue
                    if T * (1 - a) <= 1e-4:
                        break
                    acc += a * T * col[vis[k]]
                    T *= 1 - a
                out[c, i, j] = acc + T * torch.as_tensor(bg, dtype=torch.float64)
                alpha_out[c, i, j] = 1 - T
    return out.float(), alpha_out.float()[..., None]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_backends_match_untiled_reference_on_hard_cameras(backend):
    g = _scene(150, seed=3)
    # a few Gaussians below the 1/255 opacity cut-off and one far beyond the far plane
    g = g.replace(opacity_logits=torch.cat([g.opacity_logits[:-5], torch.full((5,), -7.0)]),
                  xyz=torch.cat([g.xyz[:-1], torch.tensor([[0.0, 0.0, 50.0]])]))
    viewmats, Ks, W, H = _hard_cameras(24, 18)
    bg = (0.2, 0.5, 0.9)
    near, far = 0.2, 8.0
    # the scene really exercises the culls: some Gaussians behind the camera / inside the near plane
    z = (g.xyz @ viewmats[2, :3, :3].T + viewmats[2, :3, 3])[:, 2]
    assert (z <= near).sum() > 5 and (z > near).sum() > 5
    ref_rgb, ref_alpha = _dense_reference(g, viewmats, Ks, W, H, bg, near, far)
    out = render(g, (viewmats, Ks), W, H, background=bg, backend=backend, near_plane=near, far_plane=far)
    assert out.backend == backend
    assert out.rgb.shape == (3, H, W, 3) and out.alpha.shape == (3, H, W, 1)
    d_rgb, d_a = (out.rgb - ref_rgb).abs(), (out.alpha - ref_alpha).abs()
    assert d_rgb.max() < 1e-2 and d_rgb.mean() < 5e-5, (d_rgb.max(), d_rgb.mean())
    assert d_a.max() < 1e-2 and d_a.mean() < 5e-5
    assert ref_alpha.max() > 0.5  # the scene is visible, the comparison is not trivial


@pytest.mark.skipif(len(CPU_BACKENDS) < 2, reason="only one CPU backend available")
def test_cpu_backends_agree_non_square_with_depth():
    g = _scene(3000, seed=1)
    cams = orbit(30.0, 10.0, width=96, height=64)
    outs = {b: render(g, cams, backend=b, return_depth=True) for b in CPU_BACKENDS}
    ref = outs["torch"]
    for b, o in outs.items():
        assert o.rgb.shape == (1, 64, 96, 3)
        assert (o.rgb - ref.rgb).abs().mean() < 5e-6, b
        assert (o.alpha - ref.alpha).abs().max() < 1e-2, b
        m = ref.alpha[..., 0] > 0.5
        assert (o.depth - ref.depth)[m[..., None].expand_as(o.depth)].abs().max() < 1e-3, b


def test_depth_of_a_single_opaque_gaussian_is_its_view_depth():
    g = Gaussians(torch.tensor([[0.0, 0.3, 0.0]]), torch.zeros(1, 3), torch.full((1, 3), math.log(0.2)),
                  torch.tensor([[1.0, 0, 0, 0]]), torch.tensor([10.0]))
    cams = orbit(0.0, 0.0, width=32)  # front camera at (0,-2.7,0): view depth = 2.7 + 0.3
    for b in CPU_BACKENDS:
        out = render(g, cams, backend=b, return_depth=True)
        centre = out.depth[0, 16, 16, 0]
        assert abs(float(centre) - 3.0) < 1e-4, b
        assert float(out.depth[0, 0, 0, 0]) == 0.0  # no coverage -> 0


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_empty_and_behind_camera_give_clean_background(backend):
    cams = orbit(0.0, 0.0, width=20, height=12)
    bg = (0.1, 0.2, 0.3)
    empty = render(Gaussians.empty(), cams, background=bg, backend=backend)
    assert torch.equal(empty.rgb, torch.tensor(bg).expand(1, 12, 20, 3))
    assert torch.equal(empty.alpha, torch.zeros(1, 12, 20, 1))
    g = _scene(200)
    behind = g.replace(xyz=g.xyz * 0.1 + torch.tensor([0.0, -5.0, 0.0]))  # behind the front camera at y = -2.7
    out = render(behind, cams, background=bg, backend=backend)
    assert torch.equal(out.alpha, torch.zeros(1, 12, 20, 1))
    assert torch.allclose(out.rgb, torch.tensor(bg).expand(1, 12, 20, 3))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_nan_gaussians_are_dropped_with_a_warning(backend, caplog):
    g = _scene(300)
    xyz = g.xyz.clone()
    xyz[::7, 0] = float("nan")
    xyz[3, 2] = float("inf")
    bad = g.replace(xyz=xyz)
    with caplog.at_level(logging.WARNING, logger="facelift.render"):
        out = render(bad, orbit(0.0, 0.0, width=32), backend=backend)
    assert any("NaN/inf" in r.getMessage() for r in caplog.records)
    clean = render(bad.select(bad.finite_mask()), orbit(0.0, 0.0, width=32), backend=backend)
    assert torch.isfinite(out.rgb).all()
    assert torch.equal(out.rgb, clean.rgb)
    with pytest.raises(InputError, match="NaN or infinite"):
        render(bad, orbit(0.0, 0.0, width=32), backend=backend, on_nonfinite="error")


def test_bad_inputs_raise_input_error():
    g = _scene(10)
    cams = orbit(0.0, 0.0, width=16)
    with pytest.raises(InputError, match="unknown backend"):
        render(g, cams, backend="opengl")
    vm = cams.w2c().clone()
    vm[0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        render(g, (vm, cams.Ks()), 16, 16)
    with pytest.raises(InputError, match="width and height"):
        render(g, (cams.w2c(), cams.Ks()))
    with pytest.raises(InputError, match="Gaussians"):
        render({"xyz": g.xyz}, cams)


def test_no_clamp_and_background_and_resize():
    # a bright opaque Gaussian: colour 0.5 + C0 * 4 > 1 stays > 1 (nodes clamp, render does not)
    g = Gaussians(torch.zeros(1, 3), torch.full((1, 3), 4.0), torch.full((1, 3), math.log(0.3)),
                  torch.tensor([[1.0, 0, 0, 0]]), torch.tensor([10.0]))
    out = render(g, orbit(0.0, 0.0, width=64), width=32, height=24, backend="torch")
    assert out.rgb.shape == (1, 24, 32, 3)
    assert float(out.rgb.max()) > 1.0


def test_gsplat_on_cpu_tensors_uses_torch(caplog):
    g = _scene(50)
    with caplog.at_level(logging.WARNING, logger="facelift.render"):
        out = render(g, orbit(0.0, 0.0, width=16), backend="gsplat")
    assert out.backend == "torch"
    assert any("needs CUDA" in r.getMessage() for r in caplog.records)


def test_failed_gsplat_kernel_build_falls_back_once(monkeypatch, caplog):
    """A gsplat whose JIT build fails (simulated) -> one log line, torch result, gsplat skipped afterwards."""
    import facelift_models.render as R
    from facelift_models.render import gsplat_cuda, prepare_scene
    from facelift_models.render.common import RasterSettings

    calls = []

    def broken(*a, **k):
        calls.append(1)
        raise RuntimeError("Error building extension 'gsplat_cuda': nvcc not found\n<long compiler log>")

    monkeypatch.setattr(gsplat_cuda, "render", broken)
    monkeypatch.setattr(R, "_broken", {})
    scene = prepare_scene(_scene(80))
    # pretend the scene lives on CUDA so the gsplat path is taken

    class _ClaimsCuda:  # this scene's Gaussians, reporting a CUDA device (the Gaussians class stays untouched)
        device = property(lambda self: torch.device("cuda"))

        def __init__(self, g):
            self._g = g

        def __getattr__(self, name):
            return getattr(self._g, name)

        def __len__(self):
            return len(self._g)

    scene.raw = _ClaimsCuda(scene.raw)
    cams = orbit(0.0, 0.0, width=16)
    s = RasterSettings(16, 16)
    with caplog.at_level(logging.WARNING, logger="facelift.render"):
        out1 = R._run_backend("gsplat", True, scene, cams.w2c(), cams.Ks(), s)
        out2 = R._run_backend("gsplat", True, scene, cams.w2c(), cams.Ks(), s)
    assert out1[3] == "torch" and out2[3] == "torch"
    assert len(calls) == 1
    lines = [r.getMessage() for r in caplog.records if "gsplat" in r.getMessage()]
    assert len(lines) == 1 and "nvcc not found" in lines[0] and "<long compiler log>" not in lines[0]
    assert not R.gsplat_available()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_backends_agree_with_cpu_torch():
    g = _scene(2000)
    cams = orbit(20.0, 5.0, width=64, height=48)
    ref = render(g, cams, backend="torch")
    for b in available_backends("cuda"):
        out = render(g.to("cuda"), cams, backend=b)
        assert out.backend == b
        assert (out.rgb.cpu() - ref.rgb).abs().max() < 1e-2 and (out.rgb.cpu() - ref.rgb).abs().mean() < 5e-6


def test_parity_runner_reads_everything_from_the_sidecar(tmp_path):
    """A fixture of the same schema with another size (W != H), fx != fy, off-centre principal points,
    a near camera, a far plane, a coloured background: expected images from the untiled float64 compositor."""
    import json

    from safetensors.torch import save_file

    g = _scene(120, seed=7)
    viewmats, Ks, W, H = _hard_cameras(22, 14)
    bg, near, far = (0.3, 0.6, 0.1), 0.25, 6.0
    rgb, alpha = _dense_reference(g, viewmats, Ks, W, H, bg, near, far)
    save_file({"in.means": g.xyz, "in.quats": g.quats, "in.log_scales": g.log_scales,
               "in.opacity_logits": g.opacity_logits, "in.f_dc": g.f_dc, "in.viewmats": viewmats.contiguous(),
               "in.Ks": Ks, "out.rgb": rgb.contiguous(), "out.alpha": alpha.contiguous()},
              str(tmp_path / "variant.safetensors"))
    meta = {"kind": "render", "schema_version": 1, "tensors": "variant.safetensors", "width": W, "height": H,
            "background": list(bg), "eps2d": 0.3, "near_plane": near, "far_plane": far,
            "rasterize_mode": "classic", "sh_degree": 0, "keys": {},
            "check": {"compare": ["out.rgb", "out.alpha"], "atol": 0.01, "mean_atol": 5e-5}}
    (tmp_path / "variant.json").write_text(json.dumps(meta))
    report = run_fixture(tmp_path / "variant.json")
    assert report.passed, [(l.key, l.max_abs_diff, l.detail) for l in report.lines]
    # and it fails when the sidecar's settings are ignored (white background instead of the given one)
    meta["background"] = [1.0, 1.0, 1.0]
    (tmp_path / "variant.json").write_text(json.dumps(meta))
    assert not run_fixture(tmp_path / "variant.json").passed


def test_progress_callback_and_interrupt():
    from facelift_models.errors import Interrupted

    g = _scene(100)
    cams = turntable(5, width=16)
    seen = []
    out = render(g, cams, backend="torch", progress=lambda d, t: seen.append((d, t)), cameras_per_call=2)
    assert seen == [(2, 5), (4, 5), (5, 5)]
    ref = render(g, cams, backend="torch")
    assert torch.equal(out.rgb, ref.rgb)

    def stop(d, t):
        raise Interrupted("stopped by the user")

    with pytest.raises(Interrupted):
        render(g, cams, backend="torch", progress=stop, cameras_per_call=1)


def test_cameras_per_call_bounds_each_backend_call_without_progress(monkeypatch):
    import facelift_models.render as R

    g = _scene(100)
    cams = turntable(5, width=16)
    calls = []
    real = R._run_backend

    def spy(name, allow_fallback, scene, viewmats, Ks, settings):
        calls.append(viewmats.shape[0])
        return real(name, allow_fallback, scene, viewmats, Ks, settings)

    monkeypatch.setattr(R, "_run_backend", spy)
    out = render(g, cams, backend="torch", cameras_per_call=2)  # memory-bounded, e.g. the batch runner's turntable
    assert calls == [2, 2, 1]
    calls.clear()
    ref = render(g, cams, backend="torch")  # no bound asked for: one call
    assert calls == [5]
    assert torch.equal(out.rgb, ref.rgb)


def test_torch_backend_pair_budget_bands_give_the_same_image():
    from facelift_models.render import prepare_scene
    from facelift_models.render import reference as ref_backend
    from facelift_models.render.common import RasterSettings

    assert ref_backend.row_bands([5, 5, 5, 50, 1], 10) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    scene = ref_backend.prepare_covariances(prepare_scene(_scene(500, seed=4)))
    cams = orbit(10.0, 5.0, width=70, height=50)
    s = RasterSettings(70, 50, return_depth=True)
    whole = ref_backend.render_camera(scene, cams.w2c()[0], cams.Ks()[0], s)
    banded = ref_backend.render_camera(scene, cams.w2c()[0], cams.Ks()[0], s, max_pairs=40)
    for a, b in zip(whole, banded):
        assert torch.equal(a, b)
    assert float(whole[1].min()) < 0.5


@pytest.mark.skipif("numba" not in CPU_BACKENDS, reason="numba not installed")
def test_numba_backend_pair_budget_bands_give_the_same_image():
    import numpy as np

    from facelift_models.render import numba_cpu, prepare_scene
    from facelift_models.render.common import RasterSettings

    sc = prepare_scene(_scene(500, seed=5))
    arr = lambda t: np.ascontiguousarray(t.numpy().astype(np.float32))  # noqa: E731
    args = (arr(sc.means), arr(sc.quats), arr(sc.scales), arr(sc.opacities), arr(sc.colors))
    cams = orbit(-20.0, 0.0, width=70, height=50)
    vm, K = cams.w2c()[0].double().numpy(), cams.Ks()[0].double().numpy()
    s = RasterSettings(70, 50, return_depth=True)
    whole = numba_cpu.render_camera(*args, vm, K, s)
    banded = numba_cpu.render_camera(*args, vm, K, s, max_pairs=40)
    for a, b in zip(whole, banded):
        assert np.array_equal(a, b)
    assert whole[1].min() < 0.5


_KERNEL_UNDER_IMPORT_NAME = """
import importlib, sys, types
repo, alias = sys.argv[1], sys.argv[2]
if alias:  # the pack's folder as a package of another name, as ComfyUI imports custom nodes
    pack = types.ModuleType(alias)
    pack.__path__ = [repo]
    sys.modules[alias] = pack
    name = alias + ".facelift_models.render.numba_cpu"
else:
    sys.path.insert(0, repo)
    name = "facelift_models.render.numba_cpu"
print(importlib.import_module(name)._tile_range(5.0, 5.0, 3.0, 3.0, 4, 4))
"""


@pytest.mark.skipif("numba" not in CPU_BACKENDS, reason="numba not installed")
def test_numba_disk_cache_works_under_two_import_names(tmp_path):
    """One source file, imported as facelift_models.* and as <pack>.facelift_models.* (ComfyUI), sharing one
    NUMBA_CACHE_DIR: neither may pick up the other's cached kernels ("No module named ...")."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    for alias in ("facelift_pack_alias", "", "facelift_pack_alias", ""):  # compile, compile, then cache hits
        proc = subprocess.run([sys.executable, "-c", _KERNEL_UNDER_IMPORT_NAME, repo, alias], cwd=tmp_path,
                              env=env, capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.strip() == "(0, 1, 0, 1)", (alias, proc.stderr[-2000:])
    folders = [p for p in (tmp_path / "numba").iterdir() if any(p.rglob("*.nbi"))]
    assert len(folders) == 2, folders  # one cache per import name
