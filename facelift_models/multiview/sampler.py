"""Sampling the six views: the unCLIP image-variation sampler of FaceLift with multi-view CFG (spec §5.5-5.9).

Per call: CLIP image embedding of the input, noised at ``noise_level`` through the normalizer and the DDPM
noiser, plus the noise-level sinusoid = class label; VAE latent (``mode()`` × scaling factor) of the input
concatenated to the noisy latents; CFG batch [uncond views; cond views] with zero class labels and zero image
latents in the unconditional half and the same view prompts in both halves; DDIM v-prediction. One generator
draws, in order: the image-embedding noise, the initial latents, then the scheduler's noise at every step.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..errors import InputError
from .attention import assert_mv_attention
from .loading import MVDiffusionModel

StepCallback = Callable[[int, int, torch.Tensor], None]

# name -> (diffusers class name, extra config). "ddim" is the official sampler; the others are non-default
# options for fewer steps (all keep the checkpoint's v-prediction and beta schedule).
SCHEDULERS: dict[str, tuple[str, dict]] = {
    "ddim": ("DDIMScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler",
                        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
}
DEFAULT_SCHEDULER = "ddim"


@dataclass
class MVDiffusionConfig:
    """Sampling settings; the defaults are the official CLI/gradio call (spec §5.7)."""

    num_inference_steps: int = 50
    guidance_scale: float = 3.0
    eta: float = 1.0                    # DDIM eta (1.0 = stochastic DDIM, as upstream); used by ddim only
    seed: int = 4
    noise_level: int = 0                # CLIP image-embedding noise level
    scheduler: str = DEFAULT_SCHEDULER  # see SCHEDULERS; anything but "ddim" is a non-official option
    generator_device: str | None = None  # None = the UNet's device (the official run: a CUDA generator)

    def validate(self) -> None:
        if self.num_inference_steps < 1:
            raise InputError(f"steps must be at least 1 (got {self.num_inference_steps}).")
        if self.scheduler not in SCHEDULERS:
            raise InputError(f"Unknown scheduler {self.scheduler!r}; choose one of {', '.join(SCHEDULERS)}.")
        if self.eta < 0:
            raise InputError(f"eta must be >= 0 (got {self.eta}).")


@dataclass
class MVDiffusionResult:
    images: torch.Tensor            # [V,3,H,W] float32 in [0,1], CPU, view order
    latents: torch.Tensor           # [V,C,h,w] final latents (before decoding), CPU
    timesteps: list[int] = field(default_factory=list)

    def images_uint8(self) -> torch.Tensor:
        """[V,H,W,3] uint8 = round(x·255), what the official pipeline saves as PNG."""
        return (self.images.permute(0, 2, 3, 1).float() * 255).round().to(torch.uint8)

    def images_hwc(self) -> torch.Tensor:
        """[V,H,W,3] float in [0,1] (a ComfyUI IMAGE batch)."""
        return self.images.permute(0, 2, 3, 1).contiguous()


def make_scheduler(name: str, ddim_config: dict):
    """A diffusers scheduler of the given name, configured from the checkpoint's DDIM config."""
    import diffusers

    if name not in SCHEDULERS:
        raise InputError(f"Unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}.")
    cls_name, extra = SCHEDULERS[name]
    cls = getattr(diffusers, cls_name)
    return cls.from_config({**ddim_config, **extra})


# ---------------------------------------------------------------------------------------------------- input
def prepare_input_image(image, size: int, resize: bool = False):
    """The sampler's input as a ``size``×``size`` RGB PIL image on white.

    Accepts a PIL image, an HWC numpy array (uint8 or float in [0,1]) or a torch tensor HWC / 1HWC (a ComfyUI
    IMAGE; float in [0,1] or uint8). Floats are quantised to uint8 (round) as a saved PNG would be. RGBA/LA are
    alpha-composited over white, grayscale is expanded to RGB. A square image of another size is resized with
    PIL bicubic only when ``resize`` is true (what the official gradio app does); otherwise, and for any
    non-square image, an InputError is raised: the model expects the FaceLift face crop.
    """
    from PIL import Image

    if torch.is_tensor(image):
        t = image.detach().cpu()
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise InputError(f"Expected one image, got a batch of {t.shape[0]}; run the views one image at "
                                 "a time.")
            t = t[0]
        image = t.numpy()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = np.moveaxis(arr, 0, -1)  # CHW -> HWC
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
            raise InputError(f"Expected an RGB image (H×W×3), got an array of shape {tuple(image.shape)}.")
        if arr.dtype != np.uint8:
            arr = np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
        image = Image.fromarray(arr)
    if not isinstance(image, Image.Image):
        raise InputError(f"Expected an image (PIL, numpy or tensor), got {type(image).__name__}.")

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")

    w, h = image.size
    if (w, h) != (size, size):
        if w != h:
            raise InputError(
                f"The multi-view model needs a square {size}×{size} face crop on white, got {w}×{h}. Use the "
                "FaceLift face-crop node (or crop the face to a square yourself) before generating views.")
        if not resize:
            raise InputError(
                f"The multi-view model needs a {size}×{size} image, got {w}×{h}. Use the FaceLift face-crop node, "
                "or enable resizing to let it be resized (bicubic) to the model's size.")
        image = image.resize((size, size), Image.BICUBIC)
    return image


# ----------------------------------------------------------------------------------------------- conditioning
def _randn(shape, generator: torch.Generator, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    from diffusers.utils.torch_utils import randn_tensor

    return randn_tensor(tuple(shape), generator=generator, device=device, dtype=dtype)


@torch.no_grad()
def image_class_labels(model: MVDiffusionModel, pil_image, generator: torch.Generator,
                       noise_level: int = 0) -> torch.Tensor:
    """[V, 2E] class labels of the conditional half: noised CLIP image embedding ‖ noise-level sinusoid.

    Draws the embedding noise (draw #1 of the generator) in the embedding's dtype, as upstream.
    """
    from diffusers.models.embeddings import get_timestep_embedding

    device = model.device
    enc = model.image_encoder
    enc_dtype = next(enc.parameters()).dtype
    pixels = model.feature_extractor(images=[pil_image] * model.num_views, return_tensors="pt").pixel_values
    embeds = enc(pixels.to(device=device, dtype=enc_dtype)).image_embeds
    noise = _randn(embeds.shape, generator, device, embeds.dtype)
    levels = torch.full((embeds.shape[0],), int(noise_level), device=device, dtype=torch.long)
    scaled = model.image_normalizer.scale(embeds)
    noised = model.image_noising_scheduler.add_noise(scaled, timesteps=levels, noise=noise)
    embeds = model.image_normalizer.unscale(noised)
    level_emb = get_timestep_embedding(levels, embedding_dim=embeds.shape[-1], flip_sin_to_cos=True,
                                       downscale_freq_shift=0).to(embeds.dtype)
    return torch.cat([embeds, level_emb], dim=1)


@torch.no_grad()
def image_latents(model: MVDiffusionModel, pil_image) -> torch.Tensor:
    """[V, C, h, w] VAE latent mode of the input × scaling factor (conditional half), in the VAE's dtype."""
    vae = model.vae
    vae_dtype = next(vae.parameters()).dtype
    x = torch.from_numpy(np.asarray(pil_image, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
    x = (x * 2.0 - 1.0)[None].repeat(model.num_views, 1, 1, 1)
    lat = vae.encode(x.to(device=model.device, dtype=vae_dtype)).latent_dist.mode()
    return lat * vae.config.scaling_factor


def _step_kwargs(scheduler, eta: float, generator: torch.Generator) -> dict:
    params = set(inspect.signature(scheduler.step).parameters)
    kwargs = {}
    if "eta" in params:
        kwargs["eta"] = eta
    if "generator" in params:
        kwargs["generator"] = generator
    return kwargs


# -------------------------------------------------------------------------------------------------- sampling
@torch.no_grad()
def sample_views(model: MVDiffusionModel, image, config: MVDiffusionConfig | None = None,
                 callback: StepCallback | None = None, prompt_embeds: torch.Tensor | None = None,
                 resize: bool = False) -> MVDiffusionResult:
    """Generate the ``num_views`` views (front, front-right, right, back, left, front-left) of one face crop.

    ``image``: see :func:`prepare_input_image` (must be ``model.image_size`` square unless ``resize``).
    ``callback(step_index, num_steps, latents)`` runs after every step with the conditional latents
    [V,C,h,w]; it may raise :class:`facelift_models.errors.Interrupted` to stop. ``prompt_embeds`` overrides
    the model's view embeddings (parity fixtures). Returns decoded images [V,3,H,W] in [0,1] on CPU.
    """
    config = config or MVDiffusionConfig()
    config.validate()
    unet = model.unet
    assert_mv_attention(unet, model.num_views)
    device, dtype = model.device, model.dtype
    views = model.num_views
    pil = prepare_input_image(image, model.image_size, resize=resize)

    gen_device = torch.device(config.generator_device) if config.generator_device else device
    generator = torch.Generator(device=gen_device).manual_seed(int(config.seed))
    cfg_on = config.guidance_scale != 1.0

    prompts = model.view_embeddings if prompt_embeds is None else prompt_embeds
    prompts = prompts.to(device=device, dtype=dtype)
    if prompts.shape[0] != views:
        raise InputError(f"Expected {views} view embeddings, got {prompts.shape[0]}.")

    # draw #1: image-embedding noise
    cond_labels = image_class_labels(model, pil, generator, config.noise_level).to(dtype)
    cond_latents = image_latents(model, pil).to(dtype)
    if cfg_on:
        class_labels = torch.cat([torch.zeros_like(cond_labels), cond_labels])
        img_lat = torch.cat([torch.zeros_like(cond_latents), cond_latents])
        ehs = torch.cat([prompts, prompts])
    else:
        class_labels, img_lat, ehs = cond_labels, cond_latents, prompts

    scheduler = make_scheduler(config.scheduler, model.scheduler_config)
    scheduler.set_timesteps(config.num_inference_steps, device=device)
    timesteps = scheduler.timesteps

    # draw #2: initial latents
    latent_hw = int(unet.config.sample_size)
    shape = (views, int(unet.config.out_channels), latent_hw, latent_hw)
    latents = _randn(shape, generator, device, dtype) * scheduler.init_noise_sigma
    step_kwargs = _step_kwargs(scheduler, config.eta, generator)

    n = len(timesteps)
    for i, t in enumerate(timesteps):
        model_in = torch.cat([latents, latents]) if cfg_on else latents
        model_in = scheduler.scale_model_input(model_in, t)
        model_in = torch.cat([model_in, img_lat], dim=1)
        pred = unet(model_in, t, encoder_hidden_states=ehs, class_labels=class_labels).sample
        if cfg_on:
            uncond, cond = pred.chunk(2)
            pred = uncond + config.guidance_scale * (cond - uncond)
        # draws #3..: the scheduler's noise (DDIM with eta > 0 draws at every step, the last included)
        latents = scheduler.step(pred, t, latents, **step_kwargs).prev_sample
        if callback is not None:
            callback(i, n, latents)

    images = decode_latents(model, latents)
    return MVDiffusionResult(images=images, latents=latents.float().cpu(),
                             timesteps=[int(t) for t in timesteps])


@torch.no_grad()
def decode_latents(model: MVDiffusionModel, latents: torch.Tensor) -> torch.Tensor:
    """Full VAE decode: (vae.decode(latents / scaling) / 2 + 0.5).clamp(0, 1) -> [V,3,H,W] float32 on CPU."""
    vae = model.vae
    vae_dtype = next(vae.parameters()).dtype
    x = vae.decode(latents.to(device=model.device, dtype=vae_dtype) / vae.config.scaling_factor).sample
    return (x.float() / 2 + 0.5).clamp(0, 1).cpu()


# ------------------------------------------------------------------------------------------------- preview
def tile_views(images_hwc: torch.Tensor) -> torch.Tensor:
    """[V,H,W,3] -> [H, V·W, 3]: the views side by side (the official multiview.png layout)."""
    v, h, w, c = images_hwc.shape
    return images_hwc.permute(1, 0, 2, 3).reshape(h, v * w, c)


def tile_latents(latents: torch.Tensor) -> torch.Tensor:
    """[V,C,h,w] -> [1, C, h, V·w]: the views' latents side by side (one preview image of all views)."""
    v, c, h, w = latents.shape
    return latents.permute(1, 2, 0, 3).reshape(1, c, h, v * w)
