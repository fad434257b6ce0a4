"""Multi-view sampler: parity with every mv_pipeline fixture, loading a folder in the official layout, inputs,
callbacks/cancellation, non-default schedulers, previews and the errors users see."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from facelift_models.errors import InputError, Interrupted, WeightsError
from facelift_models.multiview.pipeline import (SCHEDULERS, MVDiffusionConfig, load_mv_diffusion,
                                                prepare_input_image, sample_views, tile_latents, tile_views)
from facelift_models.multiview.view_embeddings import CACHE_FILENAME
from tests.conftest import sidecars, fixture_id
from harness.tiny_models import IMAGE_SIZE, TINY_UNET_OFFICIAL_CONFIG, tiny_face, write_tiny_mv_pipeline
from tests.parity_cli import run_parity

FAST = MVDiffusionConfig(num_inference_steps=2)


@pytest.mark.parametrize("sidecar", sidecars("mv_pipeline"), ids=fixture_id)
def test_parity_mv_pipeline(sidecar):
    res = run_parity(sidecar)
    assert res.returncode == 0 and "PASS" in res.stdout.splitlines()[-1], res.stdout + res.stderr[-3000:]
    assert "latents_after_step0" in res.stdout and "out.images" in res.stdout


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return write_tiny_mv_pipeline(tmp_path_factory.mktemp("mv") / "pipeckpts")


@pytest.fixture(scope="module")
def model(tiny_folder):
    return load_mv_diffusion(tiny_folder, device="cpu")


@pytest.fixture()
def folder_copy(tiny_folder, tmp_path):
    dst = tmp_path / "pipeckpts"
    shutil.copytree(tiny_folder, dst)
    return dst


# ------------------------------------------------------------------------------------------------ loading
def test_loads_official_layout_and_samples(model, tiny_folder):
    assert model.image_size == IMAGE_SIZE and model.num_views == 6 and model.dtype == torch.float32
    assert not hasattr(model, "text_encoder")
    assert (tiny_folder / CACHE_FILENAME).is_file()  # view embeddings computed once and cached
    steps = []
    res = sample_views(model, tiny_face(), FAST, callback=lambda i, n, lat: steps.append((i, n, tuple(lat.shape))))
    assert steps == [(0, 2, (6, 4, 8, 8)), (1, 2, (6, 4, 8, 8))]
    assert res.images.shape == (6, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert res.images.min() >= 0 and res.images.max() <= 1 and torch.isfinite(res.images).all()
    assert res.images_uint8().shape == (6, IMAGE_SIZE, IMAGE_SIZE, 3) and res.images_uint8().dtype == torch.uint8
    assert res.timesteps == [501, 1]  # DDIM leading spacing, steps_offset 1


def test_root_folder_is_accepted(tiny_folder, tmp_path):
    root = tmp_path / "OpenFaceLift"
    shutil.copytree(tiny_folder, root / "mvdiffusion" / "pipeckpts")
    m = load_mv_diffusion(root, device="cpu")
    assert m.source.endswith("pipeckpts")


def test_sampling_does_not_need_the_text_encoder(folder_copy):
    load_mv_diffusion(folder_copy, device="cpu")            # computes and caches the view embeddings
    shutil.rmtree(folder_copy / "text_encoder")
    shutil.rmtree(folder_copy / "tokenizer")
    m = load_mv_diffusion(folder_copy, device="cpu")        # then loads without them
    assert sample_views(m, tiny_face(), FAST).images.shape[0] == 6


def test_seed_reproduces_and_changes(model):
    a = sample_views(model, tiny_face(), FAST).images
    b = sample_views(model, tiny_face(), FAST).images
    c = sample_views(model, tiny_face(), MVDiffusionConfig(num_inference_steps=2, seed=5)).images
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


def test_views_depend_on_the_input(model):
    a = sample_views(model, tiny_face(seed=1), FAST).images
    b = sample_views(model, tiny_face(seed=2), FAST).images
    assert (a - b).abs().max() > 1e-3


def test_without_guidance_runs_a_batch_of_views(model):
    seen = []
    hook = model.unet.conv_in.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    try:
        sample_views(model, tiny_face(), MVDiffusionConfig(num_inference_steps=1, guidance_scale=1.0))
        sample_views(model, tiny_face(), MVDiffusionConfig(num_inference_steps=1))
    finally:
        hook.remove()
    assert seen == [6, 12]


def test_callback_can_interrupt(model):
    calls = []

    def stop_after_first(i, n, latents):
        calls.append(i)
        if i == 0:
            raise Interrupted("stopped by the user")

    with pytest.raises(Interrupted):
        sample_views(model, tiny_face(), MVDiffusionConfig(num_inference_steps=3), callback=stop_after_first)
    assert calls == [0]


@pytest.mark.parametrize("name", ["dpmpp_2m", "unipc", "euler_ancestral"])
def test_other_schedulers(model, name, monkeypatch):
    from facelift_models.multiview import sampler

    used = []
    real = sampler.make_scheduler

    def spy(n, cfg):
        s = real(n, cfg)
        used.append(type(s).__name__)
        return s

    monkeypatch.setattr(sampler, "make_scheduler", spy)
    res = sample_views(model, tiny_face(), MVDiffusionConfig(num_inference_steps=2, scheduler=name))
    ddim = sample_views(model, tiny_face(), MVDiffusionConfig(num_inference_steps=2, scheduler="ddim"))
    assert used == [SCHEDULERS[name][0], "DDIMScheduler"]  # the named scheduler really ran, no DDIM fallback
    assert res.images.shape == (6, 3, IMAGE_SIZE, IMAGE_SIZE) and torch.isfinite(res.images).all()
    assert not torch.equal(res.latents, ddim.latents)  # and it changed the result


def test_unknown_scheduler(model):
    with pytest.raises(InputError, match="Unknown scheduler 'lms'"):
        sample_views(model, tiny_face(), MVDiffusionConfig(scheduler="lms"))


# ------------------------------------------------------------------------------------------------- inputs
def test_wrong_size_is_refused_or_resized(model):
    big = tiny_face(size=2 * IMAGE_SIZE)
    with pytest.raises(InputError, match=f"{IMAGE_SIZE}×{IMAGE_SIZE}"):
        sample_views(model, big, FAST)
    with pytest.raises(InputError, match="square"):
        sample_views(model, big.crop((0, 0, 2 * IMAGE_SIZE, IMAGE_SIZE)), FAST, resize=True)
    assert sample_views(model, big, FAST, resize=True).images.shape[-1] == IMAGE_SIZE


def test_comfy_tensor_and_rgba_inputs():
    face = tiny_face()
    as_tensor = torch.from_numpy(np.array(face)).float()[None] / 255.0   # ComfyUI IMAGE [1,H,W,3]
    assert np.array_equal(np.asarray(prepare_input_image(as_tensor, IMAGE_SIZE)), np.asarray(face))
    rgba = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:4, :, 3] = 255                                                 # top rows opaque red, rest transparent
    out = np.asarray(prepare_input_image(Image.fromarray(rgba, "RGBA"), IMAGE_SIZE))
    assert out.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert (out[:4] == [200, 0, 0]).all() and (out[4:] == 255).all()   # composited over white
    with pytest.raises(InputError, match="batch of 2"):
        prepare_input_image(torch.rand(2, IMAGE_SIZE, IMAGE_SIZE, 3), IMAGE_SIZE)


# ------------------------------------------------------------------------------------------------- errors
def test_missing_component_is_named(folder_copy):
    (folder_copy / "vae" / "config.json").unlink()
    shutil.rmtree(folder_copy / "image_noising_scheduler")
    with pytest.raises(WeightsError, match=r"missing vae/config\.json, image_noising_scheduler/scheduler_config"):
        load_mv_diffusion(folder_copy, device="cpu")


def test_missing_folder(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_mv_diffusion(tmp_path / "nowhere", device="cpu")


def test_corrupted_component_is_named(folder_copy):
    f = folder_copy / "image_encoder" / "model.safetensors"
    f.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match=r"image_encoder/model\.safetensors are not a valid safetensors"):
        load_mv_diffusion(folder_copy, device="cpu")


def test_wrong_in_channels_is_named(folder_copy):
    cfg = dict(TINY_UNET_OFFICIAL_CONFIG, in_channels=4)
    (folder_copy / "unet" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match=r"unet/config\.json: in_channels is 4"):
        load_mv_diffusion(folder_copy, device="cpu")


# ------------------------------------------------------------------------------------------------ preview
def test_views_tile_side_by_side():
    lat = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 4, 8, 8)
    tiled = tile_latents(lat)
    assert tiled.shape == (1, 4, 8, 6 * 8)
    assert [float(tiled[0, 0, 0, 8 * v]) for v in range(6)] == [0, 1, 2, 3, 4, 5]  # view order, left to right
    img = lat[:, :3].permute(0, 2, 3, 1)
    assert torch.equal(tile_views(img).permute(2, 0, 1).unsqueeze(0), tiled[:, :3])


def test_reduced_precision_components(tiny_folder):
    m = load_mv_diffusion(tiny_folder, device="cpu", dtype="bf16")
    dtypes = {next(x.parameters()).dtype for x in (m.unet, m.vae, m.image_encoder)} | {m.image_normalizer.mean.dtype}
    assert dtypes == {torch.bfloat16}
    res = sample_views(m, tiny_face(), FAST)
    assert res.images.dtype == torch.float32 and torch.isfinite(res.images).all()
    with pytest.raises(InputError, match="fp16 precision needs a GPU"):
        load_mv_diffusion(tiny_folder, device="cpu", dtype="fp16")


def test_clip_preprocessing_is_the_pil_processor():
    """The official conditioning used the PIL-based CLIP processor; transformers 5's default one is torchvision-based
    and resizes differently (it moved the PIL one to CLIPImageProcessorPil): we must pick the PIL one on both."""
    from facelift_models.multiview.loading import clip_image_processor_class

    cls = clip_image_processor_class()
    names = [c.__name__ for c in cls.__mro__]
    assert not any("Fast" in n or "Torchvision" in n for n in names), names
