"""Interop with core ComfyUI's SPLAT structure (tested against a stand-in with core's exact constructor)."""

from __future__ import annotations

import torch

from facelift_models.gaussians import Gaussians
from facelift_models.formats.splat_interop import RAW_ATTR, SplatData, from_splat, to_splat


class CoreLikeSPLAT:
    """Mirror of comfy_api.latest._util.geometry_types.SPLAT (constructor and attributes)."""

    def __init__(self, positions, scales, rotations, opacities, sh, counts=None):
        self.positions, self.scales, self.rotations = positions, scales, rotations
        self.opacities, self.sh, self.counts = opacities, sh, counts


def _g(n, seed=0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(torch.randn(n, 3, generator=gen), torch.randn(n, 3, generator=gen),
                     -3 + torch.randn(n, 3, generator=gen), torch.randn(n, 4, generator=gen) * 3,
                     torch.randn(n, generator=gen))


def test_structure_matches_core_conventions():
    g = _g(100)
    s = to_splat(g, splat_cls=CoreLikeSPLAT, axes="facelift")
    assert isinstance(s, CoreLikeSPLAT)
    assert s.positions.shape == (1, 100, 3) and s.scales.shape == (1, 100, 3)
    assert s.rotations.shape == (1, 100, 4) and s.opacities.shape == (1, 100, 1) and s.sh.shape == (1, 100, 1, 3)
    assert s.counts is None
    assert torch.allclose(s.scales[0], g.log_scales.exp())                      # linear
    assert torch.allclose(s.rotations[0].norm(dim=-1), torch.ones(100))         # unit wxyz
    assert torch.allclose(s.rotations[0], torch.nn.functional.normalize(g.quats, dim=-1))
    assert ((s.opacities >= 0) & (s.opacities <= 1)).all()
    assert torch.equal(s.sh[0, :, 0], g.f_dc)                                   # SH DC
    # default axes: the viewer (OpenCV) convention, y = -z_facelift
    v = to_splat(g)
    assert torch.equal(v.positions[0, :, 1], -g.xyz[:, 2])


def test_lossless_round_trip_when_untouched():
    g = _g(64)
    s = to_splat(g, splat_cls=CoreLikeSPLAT)
    (back,) = from_splat(s)
    for k, v in g.tensors().items():
        assert torch.equal(getattr(back, k), v), k


def test_recomputed_round_trip_after_modification_and_foreign_splats():
    g = _g(64)
    s = to_splat(g)
    s.positions.add_(0.0)  # in-place op bumps the version: the cached raw values no longer apply
    (back,) = from_splat(s)
    assert back is not g
    assert torch.allclose(back.xyz, g.xyz, atol=1e-6)
    assert torch.allclose(back.log_scales, g.log_scales, atol=1e-5)
    assert torch.allclose(back.opacity_logits, g.opacity_logits, atol=1e-4)
    assert torch.equal(back.f_dc, g.f_dc)
    assert torch.allclose(torch.nn.functional.normalize(back.quats, dim=-1),
                          torch.nn.functional.normalize(g.quats, dim=-1), atol=1e-5)
    # a SPLAT made by other nodes (no cached raw values), with higher SH bands
    foreign = SplatData(s.positions.clone(), s.scales.clone(), s.rotations.clone(), s.opacities.clone(),
                        torch.cat([s.sh, torch.ones(1, 64, 3, 3)], dim=2))
    assert not hasattr(foreign, RAW_ATTR)
    (b2,) = from_splat(foreign)
    assert torch.allclose(b2.xyz, g.xyz, atol=1e-6) and torch.equal(b2.f_dc, g.f_dc)


def test_batches_with_counts():
    a, b = _g(10, 1), _g(7, 2)
    s = to_splat([a, b], splat_cls=CoreLikeSPLAT, axes="facelift")
    assert s.positions.shape == (2, 10, 3)
    assert s.counts.tolist() == [10, 7]
    assert torch.equal(s.positions[1, 7:], torch.zeros(3, 3))
    s.counts = s.counts.clone()  # foreign path: recompute from tensors
    delattr(s, RAW_ATTR)
    out = from_splat(s, axes="facelift")
    assert [len(x) for x in out] == [10, 7]
    assert torch.allclose(out[1].xyz, b.xyz) and torch.allclose(out[1].log_scales, b.log_scales, atol=1e-5)
