"""Multi-view self-attention for the FaceLift UNet's ``attn1`` layers (spec §5.4).

The released multi-view UNet has no weights of its own for cross-view exchange: the views talk to each other
only through *how* the self-attention (``attn1``) of every transformer block is evaluated. The batch is laid
out in groups of ``num_views`` consecutive rows (one group per CFG half). With the official **sparse**
semantics, the keys/values of row ``b = num_views*g + i`` are ``[front-view tokens of group g ; own tokens]``;
for the front view itself this is ordinary self-attention with duplicated keys.

``dense`` (every view attends to all views of its group) is what the official code silently falls back to
without xformers. It is *not* what the weights were run with; it exists here only as an explicit option for
the parity negative control.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

MVAttentionMode = Literal["sparse", "dense"]


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, N, heads*d] -> [B, heads, N, d]."""
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


class MultiViewAttnProcessor:
    """``attn1`` processor: views of one group attend to [front view ; own view] (sparse) or to all views (dense).

    Uses ``torch.nn.functional.scaled_dot_product_attention`` (no mask, scale 1/sqrt(head_dim), inputs in the
    module's dtype, as the official xformers kernel). Raises if the batch is not a multiple of ``num_views``.
    """

    def __init__(self, num_views: int = 6, mode: MVAttentionMode = "sparse"):
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        if mode not in ("sparse", "dense"):
            raise ValueError(f"unknown multi-view attention mode {mode!r} (use 'sparse' or 'dense')")
        self.num_views = int(num_views)
        self.mode = mode

    def __repr__(self) -> str:
        return f"MultiViewAttnProcessor(num_views={self.num_views}, mode={self.mode!r})"

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states=None, attention_mask=None,
                 temb=None, *args, **kwargs) -> torch.Tensor:
        if encoder_hidden_states is not None:
            raise ValueError("MultiViewAttnProcessor is a self-attention processor: install it on attn1 only.")
        if attention_mask is not None:
            raise ValueError("MultiViewAttnProcessor does not support attention masks.")

        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b4, ch, hh, ww = hidden_states.shape
            hidden_states = hidden_states.view(b4, ch, hh * ww).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        batch, tokens, _ = hidden_states.shape
        v = self.num_views
        if batch % v != 0:
            raise ValueError(f"multi-view attention: batch {batch} is not a multiple of num_views {v} "
                             "(the batch must be whole groups of consecutive views)")
        groups = batch // v

        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)
        channels = key.shape[-1]

        if self.mode == "sparse":
            # [G, V, N, C]: the front view (index 0) of each group is prepended to every view's keys/values.
            def with_front(t: torch.Tensor) -> torch.Tensor:
                t = t.view(groups, v, tokens, channels)
                front = t[:, :1].expand(groups, v, tokens, channels)
                return torch.cat([front, t], dim=2).reshape(batch, 2 * tokens, channels)

            q = _split_heads(query, attn.heads)
            k = _split_heads(with_front(key), attn.heads)
            val = _split_heads(with_front(value), attn.heads)
            out = F.scaled_dot_product_attention(q, k, val, dropout_p=0.0, is_causal=False, scale=attn.scale)
            out = out.transpose(1, 2).reshape(batch, tokens, channels)
        else:
            # dense: one attention per group over all V*N tokens (queries and keys alike).
            q = _split_heads(query.reshape(groups, v * tokens, channels), attn.heads)
            k = _split_heads(key.reshape(groups, v * tokens, channels), attn.heads)
            val = _split_heads(value.reshape(groups, v * tokens, channels), attn.heads)
            out = F.scaled_dot_product_attention(q, k, val, dropout_p=0.0, is_causal=False, scale=attn.scale)
            out = out.transpose(1, 2).reshape(batch, tokens, channels)

        out = out.to(query.dtype)
        out = attn.to_out[0](out)
        out = attn.to_out[1](out)
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(b4, ch, hh, ww)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def attn1_processor_names(unet: torch.nn.Module) -> list[str]:
    """Names (as in ``unet.attn_processors``) of every self-attention processor slot."""
    return [name for name in unet.attn_processors if name.endswith("attn1.processor")]


def install_mv_attention(unet: torch.nn.Module, num_views: int = 6, mode: MVAttentionMode = "sparse") -> int:
    """Put a :class:`MultiViewAttnProcessor` on every ``attn1`` of a diffusers UNet; ``attn2`` stays as it is.

    Returns the number of ``attn1`` modules changed. Call it again after anything that sets processors globally
    (``set_attn_processor``, ``enable_xformers_memory_efficient_attention``), which would silently undo it.
    """
    current = unet.attn_processors
    processor = MultiViewAttnProcessor(num_views=num_views, mode=mode)
    names = attn1_processor_names(unet)
    if not names:
        raise ValueError("this UNet has no attn1 modules: it is not a cross-attention UNet")
    new = {name: (processor if name in names else proc) for name, proc in current.items()}
    unet.set_attn_processor(new)
    return len(names)


def assert_mv_attention(unet: torch.nn.Module, num_views: int, mode: MVAttentionMode = "sparse") -> None:
    """Raise if any ``attn1`` lost the multi-view processor (e.g. after a global attention override)."""
    procs = unet.attn_processors
    bad = [n for n in attn1_processor_names(unet)
           if not (isinstance(procs[n], MultiViewAttnProcessor) and procs[n].mode == mode
                   and procs[n].num_views == num_views)]
    if bad:
        raise RuntimeError(
            f"{len(bad)} attn1 module(s) of the multi-view UNet do not use the {mode} multi-view attention "
            f"(first: {bad[0]}, now {type(procs[bad[0]]).__name__}). Something replaced the attention processors "
            "globally; call facelift_models.multiview.attention.install_mv_attention(unet) again.")
