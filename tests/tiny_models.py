"""Tiny random FaceLift weights in the OFFICIAL on-disk layout, for the real-server tests and ``run_facelift --tiny``.

``write_tiny_models(facelift_dir)`` fills a ``models/facelift`` folder exactly like a download of the Hugging Face
repo ``wlyu/OpenFaceLift`` would, only with tiny random networks (a few MB in all, seconds to run on a CPU):

    LICENSE                                   a note that these are random test weights (not the Adobe licence)
    mvdiffusion/pipeckpts/                    diffusers folder: model_index.json naming the official custom UNet
                                              class, unet/config.json with the official MV-only keys, vae,
                                              image_encoder, feature_extractor, image_normalizer, scheduler,
                                              image_noising_scheduler, text_encoder, tokenizer
    gslrm/ckpt_0000000000021125.pt            a *training* checkpoint: {"model", "optimizer", "lr_scheduler",
                                              "fwdbwd_pass_step", "param_update_step"} (+ loss_calculator.* keys)
    mtcnn/{pnet,rnet,onet}.pt                 the REAL facenet-pytorch MTCNN weights (2 MB, MIT): face detection
                                              must really find the example portrait's face and refuse a cat

The networks are untrained noise: their images and Gaussians only prove the plumbing.
Sizes follow the shared parity fixtures (unet_reduced / pipeline_tiny / GS-LRM at d=64, 1 layer).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MV_DIR = "mvdiffusion/pipeckpts"
GSLRM_FILE = "gslrm/ckpt_0000000000021125.pt"
MTCNN_CACHE = REPO / ".cache" / "mtcnn"

# --------------------------------------------------------------------------------------------- configs
# Same reduced UNet as the shared fixture unet_reduced.json (official MV keys included), 8x8 latents.
UNET_CONFIG = {
    "_class_name": "UNetMV2DConditionModel",
    "_diffusers_version": "0.30.3",
    "act_fn": "silu", "attention_head_dim": [2, 4, 4, 4], "block_out_channels": [32, 64, 64, 64],
    "center_input_sample": False, "class_embed_type": "projection", "class_embeddings_concat": False,
    "conv_in_kernel": 3, "conv_out_kernel": 3, "cross_attention_dim": 32, "cross_attention_norm": None,
    "downsample_padding": 1, "dual_cross_attention": False, "encoder_hid_dim": None, "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True, "freq_shift": 0, "layers_per_block": 1, "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "num_class_embeds": None,
    "only_cross_attention": False, "projection_class_embeddings_input_dim": 64, "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False, "resnet_time_scale_shift": "default", "time_cond_proj_dim": None,
    "time_embedding_act_fn": None, "time_embedding_dim": None, "time_embedding_type": "positional",
    "timestep_post_act": None, "transformer_layers_per_block": 1, "upcast_attention": True,
    "use_linear_projection": True, "in_channels": 8, "out_channels": 4, "sample_size": 8,
    "num_views": 6, "cd_attention_last": False, "cd_attention_mid": False, "multiview_attention": True,
    "sparse_mv_attention": True, "selfattn_block": "custom", "addition_downsample": False,
    "addition_channels": [1280, 1280, 1280], "addition_embed_type_num_heads": 64,
    "down_block_types": ["CrossAttnDownBlockMV2D", "CrossAttnDownBlockMV2D", "CrossAttnDownBlockMV2D",
                         "DownBlock2D"],
    "mid_block_type": "UNetMidBlockMV2DCrossAttn",
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlockMV2D", "CrossAttnUpBlockMV2D", "CrossAttnUpBlockMV2D"],
}
VAE_CONFIG = {
    "in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "block_out_channels": [32, 64],
    "layers_per_block": 1, "act_fn": "silu", "latent_channels": 4, "norm_num_groups": 32, "sample_size": 16,
    "scaling_factor": 0.18215,
}
CLIP_VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                   patch_size=8, projection_dim=32)
CLIP_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                 max_position_embeddings=77, projection_dim=32)
DDIM = {"_class_name": "DDIMScheduler", "_diffusers_version": "0.30.3", "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000,
        "prediction_type": "v_prediction", "set_alpha_to_one": False, "steps_offset": 1,
        "timestep_spacing": "leading", "trained_betas": None, "rescale_betas_zero_snr": False}
DDPM = {"_class_name": "DDPMScheduler", "_diffusers_version": "0.30.3", "beta_schedule": "squaredcos_cap_v2",
        "num_train_timesteps": 1000, "prediction_type": "epsilon", "clip_sample": True, "variance_type": "fixed_small"}
MODEL_INDEX = {
    "_class_name": "StableUnCLIPImg2ImgPipeline", "_diffusers_version": "0.30.3",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "image_normalizer": ["stable_diffusion", "StableUnCLIPImageNormalizer"],
    "image_noising_scheduler": ["diffusers", "DDPMScheduler"],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["mvdiffusion.models.unet_mv2d_condition", "UNetMV2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
GSLRM_TINY = dict(d=64, n_layer=1, d_head=64, patch_size=8)


# ----------------------------------------------------------------------------------------------- writers
def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def _byte_level_vocab() -> dict[str, int]:
    """A minimal CLIP BPE vocabulary: every byte-level character, with and without '</w>', plus specials."""
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}


def write_tiny_mv_pipeline(folder: Path, seed: int = 0) -> Path:
    """The diffusers folder ``mvdiffusion/pipeckpts`` with tiny random components (official file names)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from safetensors.torch import save_file
    from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    _write_json(folder / "model_index.json", MODEL_INDEX)

    # UNet: the official custom class name and MV keys in config.json; weights under stock diffusers key names.
    stock = {k: v for k, v in UNET_CONFIG.items() if not k.startswith("_") and k not in (
        "num_views", "cd_attention_last", "cd_attention_mid", "multiview_attention", "sparse_mv_attention",
        "selfattn_block", "addition_downsample", "addition_channels", "addition_embed_type_num_heads")}
    stock["down_block_types"] = [b.replace("MV2D", "2D") for b in stock["down_block_types"]]
    stock["up_block_types"] = [b.replace("MV2D", "2D") for b in stock["up_block_types"]]
    stock["mid_block_type"] = "UNetMidBlock2DCrossAttn"
    unet = UNet2DConditionModel(**stock)
    with torch.no_grad():  # zero-initialised layers would make the output trivially zero: perturb everything
        for p in unet.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    _write_json(folder / "unet" / "config.json", UNET_CONFIG)
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()},
              str(folder / "unet" / "diffusion_pytorch_model.safetensors"))

    vae = AutoencoderKL(**VAE_CONFIG)
    vae.save_pretrained(str(folder / "vae"), safe_serialization=True)

    enc = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VISION))
    enc.save_pretrained(str(folder / "image_encoder"), safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        str(folder / "feature_extractor"))

    norm = StableUnCLIPImageNormalizer(embedding_dim=32)
    with torch.no_grad():
        norm.mean.copy_(torch.randn(norm.mean.shape, generator=gen) * 0.1)
        norm.std.copy_(1.0 + torch.rand(norm.std.shape, generator=gen))
    norm.save_pretrained(str(folder / "image_normalizer"), safe_serialization=True)

    _write_json(folder / "scheduler" / "scheduler_config.json", DDIM)
    _write_json(folder / "image_noising_scheduler" / "scheduler_config.json", DDPM)

    vocab = _byte_level_vocab()
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), bos_token_id=vocab["<|startoftext|>"],
                                        eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"],
                                        **CLIP_TEXT))
    text.save_pretrained(str(folder / "text_encoder"), safe_serialization=True)
    tok = folder / "tokenizer"
    tok.mkdir(parents=True, exist_ok=True)
    _write_json(tok / "vocab.json", vocab)
    (tok / "merges.txt").write_text("#version: 0.2\n")
    _write_json(tok / "special_tokens_map.json", {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                                                  "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"})
    _write_json(tok / "tokenizer_config.json", {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77,
                                                "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                                                "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                                                "do_lower_case": True})
    return folder


def write_tiny_gslrm_checkpoint(path: Path, seed: int = 0, **config) -> Path:
    """A GS-LRM *training* checkpoint in the official format at a tiny size (default d=64, 1 layer)."""
    from facelift_models.gslrm import GSLRM, GSLRMConfig

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = GSLRM(GSLRMConfig(**{**GSLRM_TINY, **config}))
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # The official file also carries VGG19 perceptual-loss weights that inference must ignore.
    sd["loss_calculator.perceptual_loss_module.net.conv1.weight"] = torch.randn(4, 3, 3, 3)
    sd["loss_calculator.perceptual_loss_module.net.conv1.bias"] = torch.zeros(4)
    params = [k for k in sd if not k.startswith("loss_calculator.")]
    ckpt = {
        "model": sd,
        "optimizer": {"state": {i: {"step": torch.tensor(21125.0), "exp_avg": torch.zeros_like(sd[k]),
                                    "exp_avg_sq": torch.zeros_like(sd[k])} for i, k in enumerate(params)},
                      "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.05,
                                        "params": list(range(len(params)))}]},
        "lr_scheduler": {"last_epoch": 21125, "base_lrs": [1e-4]},
        "fwdbwd_pass_step": 21125,
        "param_update_step": 21125,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def mtcnn_weights_dir() -> Path:
    """A folder with the real MTCNN weights: an existing copy, else fetched once into .cache/mtcnn (pip, 2 MB)."""
    from facelift_models.mtcnn import download_mtcnn_weights, find_mtcnn_weights

    found = find_mtcnn_weights([MTCNN_CACHE])
    return found if found is not None else download_mtcnn_weights(MTCNN_CACHE)


def write_mtcnn(folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    src = mtcnn_weights_dir()
    for name in ("pnet.pt", "rnet.pt", "onet.pt"):
        shutil.copyfile(src / name, folder / name)
    return folder


def write_tiny_models(facelift_dir: Path, mv: bool = True, gslrm: bool = True, mtcnn: bool = True) -> Path:
    """Fill ``facelift_dir`` (a ComfyUI ``models/facelift`` folder) with the tiny weights; returns it."""
    facelift_dir = Path(facelift_dir)
    facelift_dir.mkdir(parents=True, exist_ok=True)
    (facelift_dir / "LICENSE").write_text(
        "TINY RANDOM TEST WEIGHTS written by tests/tiny_models.py - untrained noise, not the FaceLift weights.\n")
    if mv:
        write_tiny_mv_pipeline(facelift_dir / MV_DIR)
    if gslrm:
        write_tiny_gslrm_checkpoint(facelift_dir / GSLRM_FILE)
    if mtcnn:
        write_mtcnn(facelift_dir / "mtcnn")
    return facelift_dir


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("facelift_dir", type=Path, help="the models/facelift folder to fill")
    a = ap.parse_args()
    print(write_tiny_models(a.facelift_dir))
