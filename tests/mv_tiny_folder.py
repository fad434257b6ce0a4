"""Writes a tiny multi-view diffusion folder in the official on-disk layout of ``mvdiffusion/pipeckpts``.

Random weights, every component a few kB to a few MB, all subfolders present (including ``text_encoder`` and a
``tokenizer`` built offline from a byte-level vocab), ``unet/config.json`` carrying the official MV-only keys and
block names. Used by the multi-view tests; sizes: 16×16 images, 8×8 latents, 32-wide UNet.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TEXT_HIDDEN = 32          # = UNet cross_attention_dim
IMAGE_EMBED = 16          # CLIP projection dim; class labels = 2 * 16
UNET_SAMPLE = 8           # latent side; image side = 8 * 2 (two VAE blocks)
IMAGE_SIZE = 16

TINY_UNET_OFFICIAL_CONFIG = {
    "_class_name": "UNetMV2DConditionModel",
    "_diffusers_version": "0.30.3",
    "act_fn": "silu",
    "addition_channels": [32, 32, 32],
    "addition_downsample": False,
    "addition_embed_type_num_heads": 64,
    "attention_head_dim": [2, 2],
    "block_out_channels": [32, 32],
    "cd_attention_last": False,
    "cd_attention_mid": False,
    "center_input_sample": False,
    "class_embed_type": "projection",
    "cross_attention_dim": TEXT_HIDDEN,
    "down_block_types": ["CrossAttnDownBlockMV2D", "DownBlock2D"],
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 8,
    "layers_per_block": 1,
    "mid_block_type": "UNetMidBlockMV2DCrossAttn",
    "multiview_attention": True,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_views": 6,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2 * IMAGE_EMBED,
    "sample_size": UNET_SAMPLE,
    "selfattn_block": "custom",
    "sparse_mv_attention": True,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlockMV2D"],
    "upcast_attention": True,
    "use_linear_projection": True,
}

MODEL_INDEX = {
    "_class_name": "StableUnCLIPImg2ImgPipeline",
    "_diffusers_version": "0.30.3",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "image_noising_scheduler": ["diffusers", "DDPMScheduler"],
    "image_normalizer": ["stable_diffusion", "StableUnCLIPImageNormalizer"],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["mvdiffusion.models.unet_mv2d_condition", "UNetMV2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}

DDIM_CONFIG = {
    "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": False,
    "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None,
}


def write_tiny_tokenizer(folder: Path) -> None:
    """A CLIP BPE tokenizer with a byte-level vocab (514 entries) and a few merges; needs no network."""
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    folder.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    vocab = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    merges = [("v", "i"), ("vi", "e"), ("e", "w</w>")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "model_max_length": 77, "tokenizer_class": "CLIPTokenizer", "do_lower_case": True,
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>"}))
    (folder / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>"}))


def tiny_text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(vocab_size=1000, hidden_size=TEXT_HIDDEN, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=77, projection_dim=TEXT_HIDDEN,
                         bos_token_id=515, eos_token_id=516, pad_token_id=516)
    return CLIPTextModel(cfg).eval()


def write_tiny_unet(folder: Path, config: dict | None = None, seed: int = 0) -> None:
    from safetensors.torch import save_file

    from facelift_models.mv_unet import MVUNetConfig, build_mv_unet

    config = dict(TINY_UNET_OFFICIAL_CONFIG if config is None else config)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    torch.manual_seed(seed)
    unet = build_mv_unet(MVUNetConfig.from_official(config))
    with torch.no_grad():
        for p in unet.parameters():  # zero-initialised layers become non-trivial
            p.add_(0.02 * torch.randn_like(p))
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()},
              str(folder / "diffusion_pytorch_model.safetensors"))


def write_tiny_pipeline(root: Path, seed: int = 0) -> Path:
    """Write every component of the official layout under ``root`` and return ``root``."""
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
    write_tiny_unet(root / "unet", seed=seed)

    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(32, 32),
                        layers_per_block=1, latent_channels=4, norm_num_groups=32, sample_size=IMAGE_SIZE,
                        scaling_factor=0.18215)
    vae.save_pretrained(str(root / "vae"), safe_serialization=True)

    enc = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
        patch_size=8, projection_dim=IMAGE_EMBED))
    enc.save_pretrained(str(root / "image_encoder"), safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        str(root / "feature_extractor"))

    norm = StableUnCLIPImageNormalizer(embedding_dim=IMAGE_EMBED)
    with torch.no_grad():
        norm.mean.copy_(0.1 * torch.randn(1, IMAGE_EMBED))
        norm.std.copy_(1 + torch.rand(1, IMAGE_EMBED))
    norm.save_pretrained(str(root / "image_normalizer"), safe_serialization=True)

    DDIMScheduler(**DDIM_CONFIG).save_pretrained(str(root / "scheduler"))
    DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").save_pretrained(
        str(root / "image_noising_scheduler"))

    tiny_text_encoder().save_pretrained(str(root / "text_encoder"), safe_serialization=True)
    write_tiny_tokenizer(root / "tokenizer")
    return root


def tiny_face(size: int = IMAGE_SIZE, seed: int = 7):
    """A deterministic random RGB PIL image of the model's size."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
