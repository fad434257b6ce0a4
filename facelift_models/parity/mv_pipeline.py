"""Parity kind ``mv_pipeline``: the full multi-view sampler with tiny components (spec §16.3).

Every component is rebuilt from its config in the sidecar, weights come from the fixture (and the UNet's from
the file the sidecar names), then :func:`facelift_models.multiview.sampler.sample_views` runs with the sidecar's
steps, guidance, eta, seed and generator device; the latents after each step and the images are compared.
"""

from __future__ import annotations

import re

import torch

from ..multiview.loading import assemble_mv_diffusion, clip_image_processor_class
from ..multiview.sampler import MVDiffusionConfig, sample_views
from .common import Fixture, ParityError, Report
from .mv_unet import build_unet_from_fixture


def _load_component(module, state_dict: dict, name: str) -> None:
    missing, unexpected = module.load_state_dict(state_dict, strict=False)
    # transformers keeps position_ids as a non-persistent buffer in recent versions: tolerate only that
    unexpected = [k for k in unexpected if not k.endswith("position_ids")]
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ParityError(f"{name}: weights do not match the config (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]}).")


def _weights(fixture: Fixture, comp: dict, name: str) -> dict:
    prefix = comp.get("weights_prefix")
    if prefix is None:
        return {}
    source = fixture if not comp.get("weights_file") else _TensorFile(fixture.sibling(comp["weights_file"]))
    sd = source.with_prefix(prefix)
    if not sd:
        raise ParityError(f"{fixture.path}: no tensors with prefix '{prefix}' for component {name}.")
    return sd


class _TensorFile:
    """A bare safetensors file named by a sidecar (e.g. the UNet weights of the mv_unet fixture)."""

    def __init__(self, path):
        from safetensors import safe_open

        if not path.exists():
            raise ParityError(f"weights file {path} named by the sidecar is missing.")
        self._f = safe_open(str(path), framework="pt", device="cpu")

    def with_prefix(self, prefix: str) -> dict:
        return {k[len(prefix):]: self._f.get_tensor(k) for k in self._f.keys() if k.startswith(prefix)}


def build_components(fixture: Fixture):
    """The tiny components of the sidecar, fp32 on CPU, assembled as an MVDiffusionModel."""
    from diffusers import AutoencoderKL
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    meta = fixture.meta
    comps = meta.get("components")
    if not comps:
        raise ParityError(f"{fixture.path}: mv_pipeline sidecar lacks 'components'.")
    for name in ("unet", "vae", "image_encoder", "feature_extractor", "image_normalizer",
                 "image_noising_scheduler", "scheduler"):
        if name not in comps:
            raise ParityError(f"{fixture.path}: component '{name}' missing from the sidecar.")

    ucomp = comps["unet"]
    ucfg = dict(ucomp["config"])
    if meta.get("num_views") is not None:
        ucfg.setdefault("num_views", meta["num_views"])
    unet = build_unet_from_fixture(ucfg, _weights(fixture, ucomp, "unet"), source=f"{fixture.path} unet",
                                   attention=_attention(ucomp))

    vae = AutoencoderKL.from_config(comps["vae"]["config"])
    _load_component(vae, _weights(fixture, comps["vae"], "vae"), "vae")

    enc_cfg = CLIPVisionConfig.from_dict(comps["image_encoder"]["config"])
    image_encoder = CLIPVisionModelWithProjection(enc_cfg)
    _load_component(image_encoder, _weights(fixture, comps["image_encoder"], "image_encoder"), "image_encoder")

    feature_extractor = clip_image_processor_class().from_dict(comps["feature_extractor"]["config"])

    normalizer = StableUnCLIPImageNormalizer.from_config(comps["image_normalizer"]["config"])
    _load_component(normalizer, _weights(fixture, comps["image_normalizer"], "image_normalizer"),
                    "image_normalizer")

    for m in (vae, image_encoder, normalizer):
        m.to(torch.float32)
    num_views = int(meta.get("num_views") or ucfg.get("num_views") or 6)
    prompt_key = (meta.get("call") or {}).get("prompt_embeds", "in.prompt_embeds")
    prompts = fixture.tensor(prompt_key).float()
    return assemble_mv_diffusion(unet=unet, vae=vae, image_encoder=image_encoder,
                                 feature_extractor=feature_extractor, image_normalizer=normalizer,
                                 noising_scheduler_config=comps["image_noising_scheduler"]["config"],
                                 scheduler_config=comps["scheduler"]["config"], view_embeddings=prompts,
                                 num_views=num_views, device="cpu", source=str(fixture.path))


def _attention(comp: dict) -> str:
    return "dense" if comp.get("attn1_processor") == "dense" else "sparse"


def run(fixture: Fixture, report: Report) -> None:
    from PIL import Image

    meta = fixture.meta
    call = meta.get("call") or {}
    model = build_components(fixture)

    config = MVDiffusionConfig(
        num_inference_steps=int(meta.get("steps", call.get("num_inference_steps", 50))),
        guidance_scale=float(meta.get("guidance_scale", call.get("guidance_scale", 3.0))),
        eta=float(meta.get("eta", call.get("eta", 0.0))),
        seed=int(meta.get("generator_seed", call.get("generator_seed", 0))),
        noise_level=int(meta.get("noise_level", call.get("noise_level", 0))),
        scheduler="ddim",
        generator_device=str(meta.get("generator_device", call.get("generator_device", "cpu"))),
    )
    image_u8 = fixture.tensor(call.get("image", "in.image_uint8"))
    image = Image.fromarray(image_u8.numpy())

    per_step: list[torch.Tensor] = []
    result = sample_views(model, image, config, callback=lambda i, n, lat: per_step.append(lat.clone()))

    if meta.get("timesteps") is not None:
        report.value("timesteps", result.timesteps, [int(t) for t in meta["timesteps"]])

    step_key = re.compile(r"^out\.latents_after_step(\d+)(?:_t(\d+))?$")
    compare = list(fixture.check.get("compare") or [])
    for key in fixture.keys():
        if step_key.match(key) and key not in compare:
            compare.append(key)
    if fixture.has("out.images_uint8") and "out.images_uint8" not in compare:
        compare.append("out.images_uint8")
    for key in compare:
        m = step_key.match(key)
        if m:
            i = int(m.group(1))
            if i >= len(per_step):
                report.value(key, f"step {i} not run", f"step {i}", ok=False)
                continue
            report.compare(key, per_step[i])
        elif key == "out.images":
            report.compare(key, result.images)
        elif key == "out.images_uint8":
            atol = (fixture.check.get("atol_per_key") or {}).get(key, 1)
            report.compare(key, result.images_uint8(), atol=None if report.atol_override else float(atol))
        else:
            raise ParityError(f"{fixture.path}: don't know how to produce compare key '{key}'.")
