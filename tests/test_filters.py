"""Official post-filters (spec §8): every threshold on both sides, chain semantics, and fixture parity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facelift_models.reconstruct import filters as F
from facelift_models.gaussians import Gaussians
from facelift_models.parity.common import run_fixture
from tests.conftest import sidecars, fixture_id

FILTER_SIDECARS = sidecars("gaussian_filters")


def f32(x: float) -> float:
    return float(np.float32(x))


def up(x: float) -> float:
    return float(np.nextafter(np.float32(x), np.float32(np.inf)))


def down(x: float) -> float:
    return float(np.nextafter(np.float32(x), np.float32(-np.inf)))


def make(xyz=None, log_scale=None, opacity=None, n=None) -> Gaussians:
    """Gaussians that pass every CLI stage except what the arguments change."""
    n = n or max(len(a) for a in (xyz, log_scale, opacity) if a is not None)
    xyz = torch.tensor(xyz, dtype=torch.float32) if xyz is not None else torch.zeros(n, 3)
    ls = torch.tensor(log_scale, dtype=torch.float32) if log_scale is not None else torch.full((n, 3), -5.0)
    if ls.dim() == 1:
        ls = ls[:, None].repeat(1, 3)
    op = torch.tensor(opacity, dtype=torch.float32) if opacity is not None else torch.full((n,), 3.0)
    return Gaussians(xyz, torch.zeros(n, 3), ls, torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), op)


def test_presets():
    assert (F.CLI.opacity_thres, F.CLI.scaling_thres, F.CLI.floater_thres) == (0.04, 0.1, 0.6)
    assert F.CLI.crop_bbx == (-0.91, 0.91, -0.91, 0.91, -1.0, 1.0)
    assert (F.GRADIO.opacity_thres, F.GRADIO.scaling_thres, F.GRADIO.floater_thres) == (0.04, 0.2, 0.75)
    assert F.GRADIO.crop_bbx == F.CLI.crop_bbx
    assert F.CLI.cam_origins is None


# ------------------------------------------------------------------------------------ opacity (>)
@pytest.mark.parametrize("thres", [0.04, 0.2])
def test_opacity_threshold_both_sides(thres):
    logit = math.log(thres / (1 - thres))
    g = make(opacity=[logit - 1e-3, logit + 1e-3, -10.0, 10.0])
    keep = F.opacity_mask(g, thres)
    assert keep.tolist() == [False, True, False, True]
    assert torch.equal(F.filter_by_opacity(g, thres).opacity_logits, g.opacity_logits[keep])


def test_opacity_is_strict():
    # find a float32 logit whose float32 sigmoid equals float32(0.04) exactly (if any), else nearest pair
    x = np.float32(math.log(0.04 / 0.96))
    cand = [x]
    for _ in range(20):
        cand.append(np.nextafter(cand[-1], np.float32(1)))
        cand.insert(0, np.nextafter(cand[0], np.float32(-1)))
    t = torch.tensor(np.array(cand, dtype=np.float32))
    s = torch.sigmoid(t)
    keep = F.opacity_mask(make(opacity=t.tolist()), 0.04)
    assert torch.equal(keep, s > f32(0.04))
    assert (~keep).any() and keep.any()


# ---------------------------------------------------------------------------- scaling (< or z > 0)
@pytest.mark.parametrize("thres", [0.1, 0.2])
def test_scaling_threshold_both_sides_and_z_rule(thres):
    big, small = math.log(thres) + 1e-3, math.log(thres) - 1e-3
    xyz = [[0, 0, -0.5], [0, 0, -0.5], [0, 0, 0.5], [0, 0, 0.5], [0, 0, 0.0], [0, 0, f32(1e-7)]]
    ls = [small, big, small, big, big, big]
    keep = F.scaling_mask(make(xyz=xyz, log_scale=ls), thres).tolist()
    # below z=0: only small kept; above z=0 both kept; z == 0 is not "above"
    assert keep == [True, False, True, True, False, True]


def test_scaling_uses_the_largest_axis():
    thres = 0.1
    ls = [[-5.0, -5.0, math.log(thres) + 1e-3], [math.log(thres) - 1e-3] * 3]
    keep = F.scaling_mask(make(xyz=[[0, 0, -0.5]] * 2, log_scale=ls), thres).tolist()
    assert keep == [False, True]


def test_scaling_is_strict():
    thres = f32(0.1)
    # log-scales around log(0.1): the mask must equal exp(ls) < thres computed in float32
    x = np.float32(math.log(0.1))
    cand = [x]
    for _ in range(10):
        cand.append(np.nextafter(cand[-1], np.float32(1)))
        cand.insert(0, np.nextafter(cand[0], np.float32(-1)))
    ls = torch.tensor(np.array(cand, dtype=np.float32))
    g = make(xyz=[[0, 0, -0.5]] * len(cand), log_scale=ls.tolist())
    keep = F.scaling_mask(g, 0.1)
    assert torch.equal(keep, ls.exp() < thres)
    assert keep.any() and (~keep).any()


# ------------------------------------------------------------------------------------------ floater
@pytest.mark.parametrize("t", [0.6, 0.75])
def test_floater_both_sides(t):
    o, i = t + 1e-3, t - 1e-3   # just outside / inside
    xyz = [
        [o, o, -o], [-o, o, -o], [o, -o, -o], [-o, -o, -o],      # the 4 lower corners: dropped
        [i, o, -o], [o, i, -o], [o, o, -i],                      # one coordinate inside: kept
        [o, o, o],                                               # upper corner: kept
        [f32(t), o, -o], [o, o, -f32(t)],                        # exactly at t: kept (strict >, <)
    ]
    keep = F.floater_mask(make(xyz=xyz), t).tolist()
    assert keep == [False] * 4 + [True] * 6


# --------------------------------------------------------------------------------------------- crop
def test_crop_box_inclusive_both_sides():
    box = F.CLI.crop_bbx
    pts, want = [], []
    for axis, (lo, hi) in enumerate([(box[0], box[1]), (box[2], box[3]), (box[4], box[5])]):
        for v, k in [(f32(lo), True), (down(lo), False), (f32(hi), True), (up(hi), False)]:
            p = [0.0, 0.0, 0.0]
            p[axis] = v
            pts.append(p)
            want.append(k)
    assert F.crop_mask(make(xyz=pts), box).tolist() == want
    assert len(F.crop_to_box(make(xyz=pts), box)) == sum(want)


def test_crop_box_keeps_nan_like_the_official_code():
    g = make(xyz=[[float("nan"), 0.0, 0.0]])
    assert F.crop_mask(g, F.CLI.crop_bbx).tolist() == [True]


# ------------------------------------------------------------------------------------------- chain
def _random_gaussians(n=4000, seed=0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    return Gaussians(r(n, 3) * 0.7, r(n, 3), r(n, 3) - 2.3, r(n, 4), r(n) * 3)


def test_chain_is_the_conjunction_in_order_and_pure():
    g = _random_gaussians()
    before = {k: v.clone() for k, v in g.tensors().items()}
    res = F.filter_stages(g, F.CLI)
    assert list(res.masks) == ["opacity", "scaling", "floater", "crop"]
    conj = (F.opacity_mask(g, 0.04) & F.scaling_mask(g, 0.1) & F.floater_mask(g, 0.6)
            & F.crop_mask(g, F.CLI.crop_bbx))
    assert torch.equal(res.masks["crop"], conj)
    assert torch.equal(res.keep_idx, conj.nonzero()[:, 0])
    # masks are cumulative and shrink
    prev = torch.ones(len(g), dtype=torch.bool)
    for name, m in res.masks.items():
        assert not (m & ~prev).any()
        assert res.stage_counts[f"after_{name}"] == int(m.sum())
        prev = m
    out = F.apply_filters(g, F.CLI)
    assert torch.equal(out.xyz, g.xyz[conj])
    for k, v in g.tensors().items():
        assert torch.equal(v, before[k])            # input untouched
    # the gradio thresholds are looser, so they keep a superset
    gr = F.filter_stages(g, F.GRADIO).masks["crop"]
    assert not (res.masks["crop"] & ~gr).any() and gr.sum() > conj.sum()


def test_stages_can_be_skipped():
    g = _random_gaussians()
    assert len(F.apply_filters(g, F.NONE)) == len(g)
    only_opacity = F.FilterConfig(0.5, None, None, None)
    res = F.filter_stages(g, only_opacity)
    assert list(res.masks) == ["opacity"]
    assert torch.equal(res.masks["opacity"], g.opacities() > 0.5)


def test_nearfar_stage():
    g = _random_gaussians(500)
    cfg = F.FilterConfig(None, None, None, None, cam_origins=[[0, -2.7, 0], [2.7, 0, 0]],
                         nearfar_percent=(0.1, 0.9))
    res = F.filter_stages(g, cfg)
    d = torch.cdist(g.xyz, torch.tensor([[0, -2.7, 0], [2.7, 0, 0]]))
    q = torch.quantile(d, torch.tensor([0.1, 0.9]), dim=0)
    expected = ~((d < q[0]) | (d > q[1])).any(1)
    assert torch.equal(res.masks["nearfar"], expected)


def test_empty_input():
    g = Gaussians.empty()
    assert len(F.apply_filters(g, F.CLI)) == 0


def test_from_dict_and_validation():
    cfg = F.FilterConfig.from_dict({"opacity_thres": 0.04, "scaling_thres": 0.2, "floater_thres": 0.75,
                                    "crop_bbx": [-1, 1, -1, 1, -1, 1], "cam_origins": None,
                                    "nearfar_percent": [0.0001, 1.0], "entry_point": "x"})
    assert cfg.crop_bbx == (-1.0, 1.0, -1.0, 1.0, -1.0, 1.0) and cfg.scaling_thres == 0.2
    with pytest.raises(Exception):
        F.FilterConfig(crop_bbx=(0, 1))
    with pytest.raises(Exception):
        F.FilterConfig(nearfar_percent=(0.9, 0.1))


# ------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("path", FILTER_SIDECARS, ids=fixture_id)
def test_parity_fixture(path):
    report = run_fixture(path)
    assert report.passed, [f"{l.key} {l.detail}" for l in report.lines if not l.ok]
    assert report.max_abs_diff == 0.0
    keys = {l.key for l in report.lines}
    assert any(k.endswith("sha256") for k in keys) and any("ply_" in k and k.endswith("_bytes") for k in keys)
