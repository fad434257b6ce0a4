"""The FaceLift multi-view UNet: a stock ``diffusers.UNet2DConditionModel`` plus multi-view ``attn1`` (§5.2-5.4).

The official ``UNetMV2DConditionModel`` has exactly the state dict of a stock UNet2DConditionModel; its
multi-view behaviour is only an attention processor. So: read the official ``unet/config.json``, drop the
MV-only keys, rename the MV block types to their stock names, build the stock UNet, load the safetensors
strictly and install :class:`~facelift_models.multiview.attention.MultiViewAttnProcessor` on every ``attn1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsError
from .files import read_json, read_safetensors
from .attention import MVAttentionMode, install_mv_attention

# Keys of the official config that a stock UNet2DConditionModel does not know.
MV_ONLY_KEYS = ("num_views", "cd_attention_last", "cd_attention_mid", "multiview_attention",
                "sparse_mv_attention", "selfattn_block", "addition_downsample", "addition_channels")
# Official block type -> stock diffusers block type (identical parameters).
BLOCK_RENAMES = {
    "CrossAttnDownBlockMV2D": "CrossAttnDownBlock2D",
    "UNetMidBlockMV2DCrossAttn": "UNetMidBlock2DCrossAttn",
    "CrossAttnUpBlockMV2D": "CrossAttnUpBlock2D",
}
UNET_WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
DEFAULT_NUM_VIEWS = 6


@dataclass
class MVUNetConfig:
    """A stock UNet2DConditionModel config plus the multi-view settings taken out of the official config."""

    unet: dict[str, Any]
    num_views: int = DEFAULT_NUM_VIEWS
    attention: MVAttentionMode = "sparse"
    dropped_keys: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_official(cls, config: dict[str, Any], attention: MVAttentionMode = "sparse") -> "MVUNetConfig":
        """Split an official ``unet/config.json`` dict (MV keys and block names allowed) into stock + MV parts."""
        stock = {k: v for k, v in config.items() if k not in MV_ONLY_KEYS and not k.startswith("_")}
        dropped = {k: config[k] for k in MV_ONLY_KEYS if k in config}
        for key in ("down_block_types", "up_block_types"):
            if key in stock:
                stock[key] = [BLOCK_RENAMES.get(b, b) for b in stock[key]]
        if "mid_block_type" in stock and stock["mid_block_type"] is not None:
            stock["mid_block_type"] = BLOCK_RENAMES.get(stock["mid_block_type"], stock["mid_block_type"])
        num_views = int(config.get("num_views") or DEFAULT_NUM_VIEWS)
        return cls(unet=stock, num_views=num_views, attention=attention, dropped_keys=dropped)

    @classmethod
    def from_file(cls, path: str | Path, attention: MVAttentionMode = "sparse") -> "MVUNetConfig":
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"The multi-view UNet config {path} is missing. Point the loader at the "
                               "'mvdiffusion/pipeckpts' folder of wlyu/OpenFaceLift (it holds unet/config.json).")
        config = read_json(path, "multi-view UNet config")
        cfg = cls.from_official(config, attention=attention)
        cfg.validate(source=str(path))
        return cfg

    def validate(self, source: str = "the UNet config") -> None:
        """The UNet must take [noisy latent ; image latent] (in_channels = 2 * out_channels)."""
        in_ch, out_ch = self.unet.get("in_channels", 4), self.unet.get("out_channels", 4)
        if in_ch != 2 * out_ch:
            raise WeightsError(
                f"{source}: in_channels is {in_ch}, but the FaceLift multi-view UNet takes {2 * out_ch} channels "
                f"({out_ch} noisy latent + {out_ch} image latent). This is not the FaceLift UNet (a stock "
                "Stable Diffusion UNet has 4); use the 'mvdiffusion/pipeckpts' folder of wlyu/OpenFaceLift.")
        if self.unet.get("class_embed_type") != "projection":
            raise WeightsError(f"{source}: class_embed_type is {self.unet.get('class_embed_type')!r}; the FaceLift "
                               "UNet uses a 'projection' class embedding (CLIP image embedding + noise level).")


def build_mv_unet(config: MVUNetConfig, device: str | torch.device | None = None):
    """A stock UNet2DConditionModel from ``config`` (random init; ``device='meta'`` for a shape-only model)."""
    from diffusers import UNet2DConditionModel
    from diffusers.utils import logging as dlogging

    verbosity = dlogging.get_verbosity()
    dlogging.set_verbosity_error()  # silence "config attributes ... will be ignored" for stray keys
    try:
        if device is not None:
            with torch.device(device):
                unet = UNet2DConditionModel.from_config(config.unet)
        else:
            unet = UNet2DConditionModel.from_config(config.unet)
    finally:
        dlogging.set_verbosity(verbosity)
    install_mv_attention(unet, num_views=config.num_views, mode=config.attention)
    return unet


def load_mv_unet_state_dict(unet, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Strictly load ``state_dict`` into ``unet`` (which may live on ``meta``); clear errors on any mismatch."""
    expected = unet.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shape_bad = [k for k in expected if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)]
    if "conv_in.weight" in shape_bad:
        got = state_dict["conv_in.weight"].shape[1]
        want = expected["conv_in.weight"].shape[1]
        raise WeightsError(f"{source}: conv_in takes {got} input channels but the config says {want}. The weights "
                           "and unet/config.json do not belong together (the FaceLift UNet has 8 = 4 noisy + 4 "
                           "image-latent channels); re-download the 'unet' folder of wlyu/OpenFaceLift.")
    if missing or unexpected or shape_bad:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shape_bad:
            k = shape_bad[0]
            parts.append(f"{len(shape_bad)} of another shape (e.g. {k}: {tuple(state_dict[k].shape)} vs "
                         f"{tuple(expected[k].shape)})")
        raise WeightsError(f"{source}: the weights do not match the UNet config: {'; '.join(parts)}. Use the "
                           "config.json and safetensors of the same 'unet' folder of wlyu/OpenFaceLift.")
    unet.load_state_dict(state_dict, strict=True, assign=True)


def load_mv_unet(unet_dir: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 attention: MVAttentionMode = "sparse"):
    """Load the official ``unet/`` folder (config.json + diffusion_pytorch_model.safetensors) as a ready UNet.

    The model is built on ``meta`` (no random init), the weights are assigned, then moved to ``device``/``dtype``.
    Returns an eval-mode ``UNet2DConditionModel`` with the multi-view processor on every ``attn1``.
    """
    unet_dir = Path(unet_dir)
    config = MVUNetConfig.from_file(unet_dir / "config.json", attention=attention)
    weights = unet_dir / UNET_WEIGHTS_NAME
    state_dict = read_safetensors(weights, what="multi-view UNet weights")
    unet = build_mv_unet(config, device="meta")
    load_mv_unet_state_dict(unet, state_dict, source=str(weights))
    del state_dict
    unet = unet.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return unet
