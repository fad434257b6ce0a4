"""Loading the official multi-view diffusion folder ``mvdiffusion/pipeckpts/``, component by component.

(Spec §5.1, §11.)

``model_index.json`` there names a module of the official repo as the UNet class, so
``DiffusionPipeline.from_pretrained`` cannot load it without that code. Every component is a stock
diffusers/transformers class (the UNet via :mod:`facelift_models.multiview.unet`), so each subfolder is loaded here
directly. The text encoder is never loaded for sampling: it is only used once to compute the six view
embeddings (:mod:`facelift_models.multiview.view_embeddings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import resolve_dtype
from ..errors import WeightsError
from ..weights.store import pipeline_files
from .attention import MVAttentionMode
from .files import HF_REPO, check_safetensors, read_json, transformers_dtype
from .unet import UNET_WEIGHTS_NAME, load_mv_unet

@dataclass
class MVDiffusionModel:
    """Everything the sampler needs, already on its device and in its dtype (no text encoder)."""

    unet: Any                      # UNet2DConditionModel with multi-view attn1
    vae: Any                       # AutoencoderKL
    image_encoder: Any             # CLIPVisionModelWithProjection
    feature_extractor: Any         # CLIPImageProcessor
    image_normalizer: Any          # StableUnCLIPImageNormalizer
    image_noising_scheduler: Any   # DDPMScheduler (noise level of the CLIP embedding)
    scheduler_config: dict         # DDIM config (the default sampler); other schedulers are built from it
    view_embeddings: torch.Tensor  # [num_views, 77, cross_attention_dim], fp32 CPU
    num_views: int = 6
    source: str = ""

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        """Side of the square input and output images (512 for the released model)."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    def to(self, device: str | torch.device) -> "MVDiffusionModel":
        """Move every module (e.g. offload to CPU between runs); dtypes are kept."""
        for m in (self.unet, self.vae, self.image_encoder, self.image_normalizer):
            m.to(device)
        return self


def find_pipeline_folder(path: str | Path) -> Path:
    """Accept the ``pipeckpts`` folder itself or a checkout/download root that contains it."""
    path = Path(path).expanduser()
    for cand in (path, path / "mvdiffusion" / "pipeckpts", path / "pipeckpts"):
        if (cand / "unet").is_dir() or (cand / "model_index.json").is_file():
            return cand
    return path


def check_pipeline_folder(folder: Path) -> None:
    """Raise one WeightsError that lists every missing component file."""
    if not folder.is_dir():
        raise WeightsError(f"The multi-view diffusion folder {folder} does not exist. Download {HF_REPO} from "
                           "Hugging Face and point the loader at its 'mvdiffusion/pipeckpts' folder.")
    missing = [rel for rel in pipeline_files() if not (folder / rel).is_file()]
    if missing:
        raise WeightsError(
            f"The multi-view diffusion folder {folder} is incomplete: missing {', '.join(missing)}. It must be the "
            f"'mvdiffusion/pipeckpts' folder of {HF_REPO} with all its subfolders; download the missing files "
            "again (only .safetensors weights are supported).")


def _load(what: str, path: Path, fn):
    try:
        return fn()
    except WeightsError:
        raise
    except Exception as e:
        raise WeightsError(f"The {what} in {path} cannot be loaded ({type(e).__name__}: {e}). Re-download that "
                           f"folder of {HF_REPO}.") from None


def clip_image_processor_class():
    """The PIL-based CLIP image processor the official pipeline ran with.

    transformers 5 made ``CLIPImageProcessor`` a torchvision-based processor whose resize differs slightly and
    moved the PIL one to ``CLIPImageProcessorPil``; the conditioning must stay on the official (PIL) numerics.
    """
    try:
        from transformers import CLIPImageProcessorPil  # transformers >= 5
        return CLIPImageProcessorPil
    except ImportError:
        from transformers import CLIPImageProcessor  # transformers 4: the PIL-based one
        return CLIPImageProcessor


def load_mv_diffusion(folder: str | Path, device: str | torch.device | None = None,
                      dtype: str | torch.dtype | None = "auto", clr_embeds_path: str | Path | None = None,
                      attention: MVAttentionMode = "sparse") -> MVDiffusionModel:
    """Load the official ``mvdiffusion/pipeckpts`` folder (or a root that contains it) for sampling.

    ``device`` defaults to CUDA when available. ``dtype`` 'auto' = fp16 on CUDA (as the official run), fp32 on
    CPU; 'bf16' is also accepted. The CLIP image normalizer is kept in the image encoder's dtype, as upstream.
    View embeddings come from ``clr_embeds_path``, else ``clr_embeds.pt`` or the cached
    ``facelift_view_embeds.safetensors`` in the folder, else they are computed once from the folder's text
    encoder (then released).
    """
    from diffusers import AutoencoderKL
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import CLIPVisionModelWithProjection

    from .view_embeddings import get_view_embeddings

    folder = find_pipeline_folder(folder)
    check_pipeline_folder(folder)
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = resolve_dtype(dtype, device)

    check_safetensors(folder / "unet" / UNET_WEIGHTS_NAME, "multi-view UNet")
    check_safetensors(folder / "vae" / "diffusion_pytorch_model.safetensors", "VAE")
    check_safetensors(folder / "image_encoder" / "model.safetensors", "CLIP image encoder")
    check_safetensors(folder / "image_normalizer" / "diffusion_pytorch_model.safetensors", "image normalizer")

    scheduler_config = read_json(folder / "scheduler" / "scheduler_config.json")
    noising_config = read_json(folder / "image_noising_scheduler" / "scheduler_config.json")

    unet = load_mv_unet(folder / "unet", device=device, dtype=dtype, attention=attention)
    vae = _load("VAE", folder / "vae", lambda: AutoencoderKL.from_pretrained(str(folder / "vae"), torch_dtype=dtype,
                                                     low_cpu_mem_usage=False))
    image_encoder = _load("CLIP image encoder", folder / "image_encoder",
                          lambda: CLIPVisionModelWithProjection.from_pretrained(str(folder / "image_encoder"),
                                                                                **transformers_dtype(dtype)))
    feature_extractor = _load("CLIP image processor", folder / "feature_extractor",
                              lambda: clip_image_processor_class().from_pretrained(str(folder / "feature_extractor")))
    normalizer = _load("image normalizer", folder / "image_normalizer",
                       lambda: StableUnCLIPImageNormalizer.from_pretrained(str(folder / "image_normalizer"),
                                                                             low_cpu_mem_usage=False))
    num_views = int(read_json(folder / "unet" / "config.json").get("num_views") or 6)

    view_embeddings = get_view_embeddings(folder, clr_embeds_path=clr_embeds_path, device=device)
    model = assemble_mv_diffusion(unet=unet, vae=vae, image_encoder=image_encoder,
                                  feature_extractor=feature_extractor, image_normalizer=normalizer,
                                  noising_scheduler_config=noising_config, scheduler_config=scheduler_config,
                                  view_embeddings=view_embeddings, num_views=num_views, device=device,
                                  source=str(folder))
    return model


def assemble_mv_diffusion(unet, vae, image_encoder, feature_extractor, image_normalizer,
                          noising_scheduler_config: dict, scheduler_config: dict, view_embeddings: torch.Tensor,
                          num_views: int, device: torch.device | str = "cpu", source: str = "") -> MVDiffusionModel:
    """Put already-built components on ``device`` (each keeps its dtype; the normalizer takes the image encoder's)
    and check that they fit together (latent channels, embedding sizes, view-embedding shape)."""
    from diffusers import DDPMScheduler

    device = torch.device(device)
    enc_dtype = next(image_encoder.parameters()).dtype
    unet.to(device).eval().requires_grad_(False)
    vae.to(device).eval().requires_grad_(False)
    image_encoder.to(device).eval().requires_grad_(False)
    image_normalizer.to(device, enc_dtype).eval().requires_grad_(False)
    noising = DDPMScheduler.from_config(noising_scheduler_config)

    cfg = unet.config
    where = source or "the multi-view diffusion components"
    if vae.config.latent_channels != cfg.out_channels:
        raise WeightsError(f"{where}: the VAE has {vae.config.latent_channels} latent channels but the UNet "
                           f"predicts {cfg.out_channels}; the vae and unet folders do not belong together.")
    embed_dim = image_encoder.config.projection_dim
    if cfg.projection_class_embeddings_input_dim != 2 * embed_dim:
        raise WeightsError(f"{where}: the UNet expects class labels of {cfg.projection_class_embeddings_input_dim} "
                           f"values but the CLIP image encoder gives {embed_dim} (+{embed_dim} noise level); the "
                           "image_encoder and unet folders do not belong together.")
    ve = view_embeddings
    if ve.dim() != 3 or ve.shape[0] != num_views or ve.shape[-1] != cfg.cross_attention_dim:
        raise WeightsError(f"{where}: the view embeddings have shape {tuple(ve.shape)}, expected "
                           f"[{num_views}, 77, {cfg.cross_attention_dim}]. Delete a stale "
                           "facelift_view_embeds.safetensors or use the clr_embeds.pt of this model.")
    return MVDiffusionModel(unet=unet, vae=vae, image_encoder=image_encoder, feature_extractor=feature_extractor,
                            image_normalizer=image_normalizer, image_noising_scheduler=noising,
                            scheduler_config=dict(scheduler_config), view_embeddings=ve.float().cpu(),
                            num_views=num_views, source=source)
