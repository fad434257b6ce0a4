"""Issue 16's GPU preparation, checked on the CPU: the full-size random-weight writer builds the released
architectures (on the ``meta`` device: no 10 GB writes), and the end-to-end GPU benchmark runs at tiny size."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, reference_file
from harness.tiny_models import TINY, VGG19_CONVS, full_size, vgg_loss_shapes

# Parameter counts of the released fp16 components (spec §11).
RELEASED_PARAMS = {"vae": 83_653_863, "image_encoder": 632_076_800, "text_encoder": 340_387_840}
SAFETENSORS_HEADER_MAX = 128 * 1024  # a safetensors JSON header of a few hundred tensors stays far below this


def _manifest(name: str) -> dict:
    return json.loads(reference_file(name).read_text())


def _shapes(module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_full_size_unet_matches_the_official_manifest():
    from facelift_models.multiview.unet import MVUNetConfig, build_mv_unet

    manifest = _manifest("mv_unet_full_state_dict.json")
    config = full_size().unet
    # The official MV-only keys and block names are written (the loader has to drop and rename them).
    assert config["_class_name"] == "UNetMV2DConditionModel" and config["num_views"] == 6
    assert config["down_block_types"][0] == "CrossAttnDownBlockMV2D" and config["addition_channels"] == [1280] * 3
    unet = build_mv_unet(MVUNetConfig.from_official(config), device="meta")
    want = {k: v["shape"] for k, v in manifest["state_dict"].items()}
    assert _shapes(unet) == want
    assert sum(p.numel() for p in unet.state_dict().values()) == manifest["num_params"] == 870_184_644


def test_full_size_gslrm_checkpoint_matches_the_official_manifest():
    from facelift_models.reconstruct.gslrm import GSLRM, GSLRMConfig

    manifest = _manifest("gslrm_full_state_dict.json")
    want = {k: v["shape"] for k, v in manifest["state_dict"].items()}
    size = full_size()
    with torch.device("meta"):
        model = GSLRM(GSLRMConfig(**size.gslrm))
    written = {**_shapes(model), **{k: list(s) for k, s in vgg_loss_shapes(size.vgg_convs).items()}}
    assert written == want  # all 183 keys of ckpt["model"], VGG19 loss keys included
    n_vgg = sum(torch.Size(s).numel() for s in vgg_loss_shapes(VGG19_CONVS).values())
    assert n_vgg == manifest["num_params_loss_calculator_vgg19"]
    assert sum(p.numel() for p in model.state_dict().values()) == manifest["num_params_without_vgg"]


def test_full_size_frozen_components_are_the_released_ones():
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    from facelift_models.weights.store import REGISTRY

    size = full_size()
    with torch.device("meta"):
        modules = {"vae": AutoencoderKL(**size.vae),
                   "image_encoder": CLIPVisionModelWithProjection(CLIPVisionConfig(**size.image_encoder)),
                   "text_encoder": CLIPTextModel(CLIPTextConfig(**size.text_encoder))}
    released_bytes = {f.file_id: f.size for f in REGISTRY}
    assert size.frozen_dtype == torch.float16
    for name, module in modules.items():
        n = sum(t.numel() for t in module.state_dict().values())
        assert n == RELEASED_PARAMS[name], name
        # fp16 data + a safetensors header = the released file's byte size (known for these three files).
        header = released_bytes[f"mv.{name}"] - 2 * n
        assert 0 < header < SAFETENSORS_HEADER_MAX, (name, header)
    # The components fit together as in the release: CLIP-H embedding + noise level = class label, text = context.
    unet = size.unet
    assert unet["projection_class_embeddings_input_dim"] == 2 * size.image_encoder["projection_dim"] == 2048
    assert unet["cross_attention_dim"] == size.text_encoder["hidden_size"] == 1024
    assert size.processor_size == 224 and size.vae["sample_size"] == 768


def test_tiny_is_still_the_default_size():
    assert TINY.name == "tiny" and TINY.frozen_dtype == torch.float32 and TINY.vgg_convs != VGG19_CONVS


@pytest.mark.server
def test_gpu_benchmark_runs_at_tiny_size_on_the_cpu(tmp_path):
    """The whole benchmark script (weights, server, cold + warm workflow, JSON) at tiny size, so it cannot rot
    between GPU sessions. Its figures are CPU plumbing numbers and go to tmp_path, never to results/."""
    out = tmp_path / "tiny.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_workflow_gpu.py"), "--tiny", "--device", "cpu",
           "--steps", "2", "--frames", "3", "--size", "32", "--work-dir", str(tmp_path / "work"), "--out", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    r = json.loads(out.read_text())
    assert r["complete"] is True and "partial_warm" not in r
    assert r["weights_size"] == "tiny" and r["device"] == "cpu" and r["random_weights"] is True
    assert r["torch"] == torch.__version__ and r["device_name"]
    assert r["settings"]["steps"] == 2 and r["settings"]["official"] is False
    assert (r["turntable_frames"], r["turntable_size"]) == (3, 32)
    chain = ("LoadImage", "FaceCrop", "MultiViewSampler", "Reconstruct", "SaveGaussians")
    for run in ("nodes_cold_s", "nodes_warm_s"):
        assert all(r[run][n] >= 0 for n in chain), r[run]
    # Warm = every node after Load Models ran again (new input name) with the models from the cache.
    assert r["photo_to_ply_s"] == pytest.approx(sum(r["nodes_warm_s"].get(n, 0) for n in ("LoadModels", *chain)),
                                                abs=2e-3)
    assert r["turntable_s"] == r["nodes_warm_s"]["RenderTurntable"] > 0
    assert r["model_loads"]["reloaded_on_warm_run"] is False and r["model_loads"]["after_warm"]["mv"] == 1
    assert r["gaussians_in_ply"] > 0 and r["ply_bytes"] > 0
    assert r["peak_vram_gb"] is None and r["gsplat_first_use"]["available"] is False  # no GPU figures on a CPU
    assert not (REPO / "benchmarks" / "results" / "gpu_workflow_e2e.json").exists() or \
        json.loads((REPO / "benchmarks" / "results" / "gpu_workflow_e2e.json").read_text())["weights_size"] == "full"


def test_gpu_results_file_refuses_tiny_figures(tmp_path):
    p = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_workflow_gpu.py"), "--tiny", "--device",
                        "cpu", "--work-dir", str(tmp_path), "--out",
                        str(REPO / "benchmarks" / "results" / "gpu_workflow_e2e.json")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "full-size GPU figures only" in p.stderr
    assert not (tmp_path / "models").exists()  # refused before writing anything
