"""The whole photo-independent chain on a CUDA device with tiny official-format weights: fp16 sampling, GS-LRM under
fp16 autocast, the auto render backend (gsplat when it works), filters and the official PLY.

Skipped without CUDA (CI has none); run it on a GPU machine to check the device paths the nodes use.
"""

from __future__ import annotations

import pytest
import torch

from harness.tiny_models import tiny_face, write_tiny_models

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_tiny_chain_on_cuda(tmp_path):
    from facelift_models import cameras, render
    from facelift_models.reconstruct import filters
    from facelift_models.formats import ply
    from facelift_models.reconstruct.gslrm import reconstruct
    from facelift_models.reconstruct.checkpoint import load_gslrm
    from facelift_models.multiview.loading import load_mv_diffusion
    from facelift_models.multiview.sampler import MVDiffusionConfig, sample_views

    root = write_tiny_models(tmp_path / "facelift", mtcnn=False, u2net=False)
    mv = load_mv_diffusion(root, device="cuda", dtype="fp16")
    assert mv.dtype == torch.float16 and mv.device.type == "cuda"
    steps = []
    res = sample_views(mv, tiny_face(), MVDiffusionConfig(num_inference_steps=3),
                       callback=lambda i, n, lat: steps.append((i, n, lat.device.type)))
    assert steps == [(0, 3, "cuda"), (1, 3, "cuda"), (2, 3, "cuda")]
    views = res.images  # [6,3,H,W] in [0,1] on the CPU
    assert views.shape[0] == 6 and torch.isfinite(views).all() and 0 <= views.min() and views.max() <= 1
    again = sample_views(mv, tiny_face(), MVDiffusionConfig(num_inference_steps=3)).images
    assert torch.equal(views, again)  # the seed reproduces on the GPU too

    size = views.shape[-1]
    model = load_gslrm(root / "gslrm" / "ckpt_0000000000021125.pt", device="cuda")
    cams = cameras.official_views(resolution=size)
    (g,) = reconstruct(model, views[None].cuda(), cams, dtype=torch.float16)
    assert g.xyz.dtype == torch.float32 and len(g) == 2 + 6 * size * size
    assert torch.isfinite(g.xyz).all()
    g32 = reconstruct(model, views[None].cuda(), cams)[0]
    assert (g.xyz - g32.xyz).abs().max() < 5e-2  # fp16 autocast stays close to fp32

    out = render.render(g, cameras.turntable(num_frames=4, width=64), backend="auto")
    ref = render.render(g, cameras.turntable(num_frames=4, width=64), backend="torch")
    assert out.rgb.shape == (4, 64, 64, 3) and out.rgb.device.type == "cuda"
    assert (out.rgb - ref.rgb).abs().mean() < 5e-4
    kept = filters.apply_filters(g.to("cpu"), filters.GRADIO)
    path = ply.write_ply(kept, tmp_path / "head.ply")
    back = ply.read_ply(path)
    assert len(back) == len(kept) and torch.equal(back.xyz, kept.xyz)
