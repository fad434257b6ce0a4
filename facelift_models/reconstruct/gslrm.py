"""GS-LRM: the FaceLift reconstructor that turns posed views into 3D Gaussians (spec §6).

A plain pre-norm transformer over [2 learned Gaussian tokens ; 8x8 patch tokens of every view]. Two heads
decode the Gaussian tokens into the global Gaussians and every patch token into one Gaussian per pixel,
placed on its pixel's ray ("hard pixel alignment"). Module and parameter names mirror the official
checkpoint so that its state dict loads unchanged (``loss_calculator.*`` aside, which is training-only).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, fields
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..cameras import Cameras, check_images, posed_input, ray_bundle
from ..errors import InputError
from ..gaussians import Gaussians

# Channel layout of one raw Gaussian produced by the heads (spec §6.5), for sh_degree 0.
HEAD_CHANNELS = {"xyz": 3, "f_dc": 3, "scale": 3, "rot": 4, "opacity": 1}
SCALE_BIAS, SCALE_MAX = -2.3, -1.2   # scale_raw = min(h + SCALE_BIAS, SCALE_MAX)
OPACITY_BIAS = -2.0                  # opacity_raw = h + OPACITY_BIAS
DEPTH_HALF_RANGE = 1.8               # depth along the ray in (s - 1.8, s + 1.8)


@dataclass(frozen=True)
class GSLRMConfig:
    """Architecture of GS-LRM; the defaults are the released model (``configs/gslrm.yaml``)."""

    d: int = 1024
    n_layer: int = 24
    d_head: int = 64
    patch_size: int = 8
    in_channels: int = 9
    n_gaussians: int = 2
    sh_degree: int = 0
    image_size: int = 512
    layernorm_eps: float = 1e-5
    depth_preact_bias: float = 0.0

    def __post_init__(self) -> None:
        if self.d % self.d_head:
            raise InputError(f"GS-LRM width d={self.d} is not a multiple of d_head={self.d_head}.")
        if self.sh_degree != 0:
            raise InputError(f"Only SH degree 0 is supported (the released model); got {self.sh_degree}.")
        if self.in_channels != 9:
            raise InputError(f"GS-LRM input must have 9 channels (RGB, ray dir, nearest point); "
                             f"got {self.in_channels}.")

    @property
    def n_heads(self) -> int:
        return self.d // self.d_head

    @property
    def gaussian_dim(self) -> int:
        return 3 + 3 * (self.sh_degree + 1) ** 2 + 3 + 4 + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GSLRMConfig":
        """Build from any dict holding (a subset of) the field names; other keys are ignored (sidecars)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: values[k] for k in names if k in values})


# ------------------------------------------------------------------------------------------- layers
def _layer_norm(d: int, eps: float) -> nn.LayerNorm:
    return nn.LayerNorm(d, eps=eps, bias=False)


class Patchify(nn.Module):
    """[N,C,H,W] -> [N, (H/P)(W/P), P*P*C] with feature index (ph*P + pw)*C + c (channel fastest)."""

    def __init__(self, patch_size: int):
        super().__init__()
        self.patch_size = patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        p = self.patch_size
        x = x.reshape(n, c, h // p, p, w // p, p)          # n c hp ph wp pw
        x = x.permute(0, 2, 4, 3, 5, 1)                    # n hp wp ph pw c
        return x.reshape(n, (h // p) * (w // p), p * p * c)


class SelfAttention(nn.Module):
    """Full multi-head self-attention with a fused, bias-free QKV projection, run through SDPA."""

    def __init__(self, d: int, d_head: int):
        super().__init__()
        self.n_heads, self.d_head = d // d_head, d_head
        self.to_qkv = nn.Linear(d, 3 * d, bias=False)
        self.fc = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.to_qkv(x).reshape(b, n, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # [b, heads, n, d_head]
        return self.fc(out.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d, hidden, bias=False), nn.GELU(), nn.Linear(hidden, d, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class TransformerBlock(nn.Module):
    """Pre-norm block: x += attn(LN1 x); x += mlp(LN2 x)."""

    def __init__(self, d: int, d_head: int, eps: float):
        super().__init__()
        self.norm1 = _layer_norm(d, eps)
        self.attn = SelfAttention(d, d_head)
        self.norm2 = _layer_norm(d, eps)
        self.mlp = MLP(d, 4 * d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GlobalGaussianHead(nn.Module):
    """LN -> Linear: the learned Gaussian tokens to the raw parameters of the global Gaussians."""

    def __init__(self, d: int, out_dim: int, eps: float):
        super().__init__()
        self.layernorm = _layer_norm(d, eps)
        self.linear = nn.Linear(d, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.layernorm(x))


# -------------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class RawGaussians:
    """Batched GS-LRM output before it is split per batch item (all [B,N,...])."""

    xyz: torch.Tensor
    f_dc: torch.Tensor
    log_scales: torch.Tensor
    quats: torch.Tensor
    opacity_logits: torch.Tensor

    def item(self, i: int) -> Gaussians:
        return Gaussians(self.xyz[i], self.f_dc[i], self.log_scales[i], self.quats[i], self.opacity_logits[i])


class GSLRM(nn.Module):
    """The GS-LRM network. ``forward(images, cameras)`` returns one ``Gaussians`` per batch item."""

    def __init__(self, config: GSLRMConfig | None = None):
        super().__init__()
        self.config = cfg = config or GSLRMConfig()
        p, eps = cfg.patch_size, cfg.layernorm_eps
        self.patch_embedder = nn.Sequential(Patchify(p), nn.Linear(p * p * cfg.in_channels, cfg.d, bias=False))
        self.gaussian_position_embeddings = nn.Parameter(torch.zeros(cfg.n_gaussians, cfg.d))
        self.input_layer_norm = _layer_norm(cfg.d, eps)
        self.transformer_layers = nn.ModuleList(
            TransformerBlock(cfg.d, cfg.d_head, eps) for _ in range(cfg.n_layer))
        self.gaussian_upsampler = GlobalGaussianHead(cfg.d, cfg.gaussian_dim, eps)
        self.pixel_gaussian_decoder = nn.Sequential(
            _layer_norm(cfg.d, eps), nn.Linear(cfg.d, p * p * cfg.gaussian_dim, bias=False))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A small random init (weights are normally loaded; this only makes random-weight runs sensible)."""
        for m in self.modules():
            if isinstance(m, nn.Linear) and m.weight.device.type != "meta":
                nn.init.normal_(m.weight, std=0.02)
        if self.gaussian_position_embeddings.device.type != "meta":
            nn.init.normal_(self.gaussian_position_embeddings, std=0.02)

    @property
    def dtype(self) -> torch.dtype:
        return self.input_layer_norm.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.input_layer_norm.weight.device

    # -------------------------------------------------------------------- pieces
    def transformer(self, tokens: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        x = self.input_layer_norm(tokens)
        for i, layer in enumerate(self.transformer_layers):
            x = layer(x)
            if progress is not None:
                progress(i + 1, len(self.transformer_layers))
        return x

    def decode(self, tokens: torch.Tensor, ray_o: torch.Tensor, ray_d: torch.Tensor) -> RawGaussians:
        """Heads + raw transforms. ``tokens`` [B, G + T, d]; rays [B,V,3,H,W] (spec §6.5-6.7)."""
        cfg, p = self.config, self.config.patch_size
        b, v, _, h, w = ray_o.shape
        global_tokens, image_tokens = tokens.split([cfg.n_gaussians, tokens.shape[1] - cfg.n_gaussians], dim=1)
        heads = torch.cat([
            self.gaussian_upsampler(global_tokens),
            self.pixel_gaussian_decoder(image_tokens).reshape(b, -1, cfg.gaussian_dim),
        ], dim=1).float()
        xyz, f_dc, scale, rot, opacity = heads.split(list(HEAD_CHANNELS.values()), dim=2)

        # Rays in Gaussian order (view, patch row, patch col, ph, pw).
        def to_gaussian_order(t: torch.Tensor) -> torch.Tensor:
            t = t.reshape(b, v, 3, h // p, p, w // p, p).permute(0, 1, 3, 5, 4, 6, 2)
            return t.reshape(b, v * h * w, 3)

        o, d = to_gaussian_order(ray_o.float()), to_gaussian_order(ray_d.float())
        pix = xyz[:, cfg.n_gaussians:]
        depth = torch.sigmoid(pix.mean(dim=2, keepdim=True) + cfg.depth_preact_bias)
        nearest = torch.sum(-o * d, dim=2, keepdim=True)
        depth = (2.0 * depth - 1.0) * DEPTH_HALF_RANGE + nearest
        xyz = torch.cat([xyz[:, :cfg.n_gaussians], o + depth * d], dim=1)  # never clamped (spec §6.7)
        return RawGaussians(
            xyz=xyz,
            f_dc=f_dc,
            log_scales=(scale + SCALE_BIAS).clamp(max=SCALE_MAX),
            quats=rot,
            opacity_logits=(opacity + OPACITY_BIAS).squeeze(-1),
        )

    # ------------------------------------------------------------------- forward
    @torch.inference_mode()
    def forward(self, images: torch.Tensor, cameras: Cameras | Sequence[Cameras],
                dtype: torch.dtype | None = None,
                progress: Callable[[int, int], None] | None = None) -> list[Gaussians]:
        """images [B,V,3,H,W] RGB in [0,1]; ``cameras`` one ``Cameras`` for all items or one per item.

        ``dtype`` (float16/bfloat16) runs the network under autocast on CUDA (the official setting is
        float16); the Gaussians are always float32. ``progress(done, total)`` is called after every layer.
        """
        raw = self.forward_raw(images, cameras, dtype, progress)
        return [raw.item(i) for i in range(raw.xyz.shape[0])]

    @torch.inference_mode()
    def forward_raw(self, images: torch.Tensor, cameras: Cameras | Sequence[Cameras],
                    dtype: torch.dtype | None = None,
                    progress: Callable[[int, int], None] | None = None) -> RawGaussians:
        """Like ``forward`` but returns the batched tensors."""
        cfg, p = self.config, self.config.patch_size
        cams_list = [cameras] if isinstance(cameras, Cameras) else list(cameras)
        images = check_images(images, cams_list[0])
        b, v, _, h, w = images.shape
        if len(cams_list) not in (1, b):
            raise InputError(f"{len(cams_list)} camera sets for a batch of {b}: give one set, or one per item.")
        if h % p or w % p:
            raise InputError(f"GS-LRM needs image sides divisible by the patch size {p}; got {w}x{h}.")
        images = images.to(self.device, torch.float32)
        posed, ray_o, ray_d = [], [], []
        for i in range(b):
            cams = cams_list[i if len(cams_list) > 1 else 0]
            cams = cams.to(device=self.device, dtype=torch.float32)
            posed.append(posed_input(images[i:i + 1], cams)[0])
            o, d = ray_bundle(cams)
            ray_o.append(o)
            ray_d.append(d)
        posed_t, ray_o_t, ray_d_t = torch.stack(posed), torch.stack(ray_o), torch.stack(ray_d)

        with self._autocast(dtype):
            x = posed_t.to(self.dtype) if dtype is None or self.device.type != "cuda" else posed_t
            tokens = self.patch_embedder(x.reshape(b * v, cfg.in_channels, h, w)).reshape(b, -1, cfg.d)
            gauss = self.gaussian_position_embeddings.expand(b, -1, -1).to(tokens.dtype)
            tokens = self.transformer(torch.cat([gauss, tokens], dim=1), progress)
            return self.decode(tokens, ray_o_t, ray_d_t)

    def _autocast(self, dtype: torch.dtype | None):
        if dtype is None or dtype == torch.float32:
            return contextlib.nullcontext()
        if dtype not in (torch.float16, torch.bfloat16):
            raise InputError(f"GS-LRM autocast dtype must be float16, bfloat16 or float32; got {dtype}.")
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=dtype)
        if dtype == torch.bfloat16:
            return torch.autocast(self.device.type, dtype=dtype)
        return contextlib.nullcontext()  # float16 autocast is a no-op off CUDA, as in the official code


def pixel_aligned_image(xyz: torch.Tensor, num_views: int, height: int, width: int,
                        patch_size: int = 8, n_gaussians: int = 2) -> torch.Tensor:
    """The pixel Gaussians' positions [N,3] (Gaussian order) as an image stack [V,3,H,W]."""
    p = patch_size
    t = xyz[n_gaussians:].reshape(num_views, height // p, width // p, p, p, 3)
    return t.permute(0, 5, 1, 3, 2, 4).reshape(num_views, 3, height, width)


def reconstruct(model: GSLRM, images: torch.Tensor, cameras: Cameras | Sequence[Cameras],
                dtype: torch.dtype | None = None,
                progress: Callable[[int, int], None] | None = None) -> list[Gaussians]:
    """Run ``model`` on views [B,V,3,H,W] (or [V,3,H,W]) with their cameras; one ``Gaussians`` per item.

    Images of another size than the cameras' are an error: resize the cameras with ``cams.resized``.
    """
    if images.dim() == 4:
        images = images[None]
    if not torch.isfinite(images).all():
        raise InputError("The input views contain NaN or infinite values.")
    model.eval()
    return model(images, cameras, dtype=dtype, progress=progress)
