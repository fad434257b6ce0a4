"""Multi-view UNet: sparse attn1 processor, official-config loading, parity with every mv_unet fixture."""

from __future__ import annotations

import json

import pytest
import torch

from facelift_models.errors import WeightsError
from facelift_models.multiview.attention import (MultiViewAttnProcessor, assert_mv_attention, attn1_processor_names,
                                                 install_mv_attention)
from facelift_models.multiview.unet import MV_ONLY_KEYS, MVUNetConfig, build_mv_unet, load_mv_unet
from tests.conftest import reference_file, sidecars, fixture_id
from tests.parity_cli import run_parity
from harness.tiny_models import TINY_UNET_OFFICIAL_CONFIG, write_tiny_unet


def mv_attention_state(unet) -> tuple[int, int, set]:
    """(number of attn1 modules, how many carry a multi-view processor, the set of their modes)."""
    procs = unet.attn_processors
    names = attn1_processor_names(unet)
    mv = [procs[n] for n in names if isinstance(procs[n], MultiViewAttnProcessor)]
    return len(names), len(mv), {p.mode for p in mv}


@pytest.mark.parametrize("sidecar", sidecars("mv_unet"), ids=fixture_id)
def test_parity_mv_unet(sidecar):
    res = run_parity(sidecar)
    assert res.returncode == 0 and "PASS" in res.stdout.splitlines()[-1], res.stdout + res.stderr[-3000:]
    assert "negative_control" in res.stdout  # the dense control was checked


# ------------------------------------------------------------------------------------------- the processor
class _Attn(torch.nn.Module):
    """The parts of a diffusers Attention the processor uses."""

    def __init__(self, dim=16, heads=2):
        super().__init__()
        from diffusers.models.attention_processor import Attention

        torch.manual_seed(0)
        self.attn = Attention(query_dim=dim, heads=heads, dim_head=dim // heads)


def _reference_sparse(attn, x, views):
    """Row b attends to [front of its group ; itself], written out row by row (no batching tricks)."""
    q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    h, (b, n, c) = attn.heads, x.shape
    out = []
    for row in range(b):
        front = (row // views) * views
        kk = torch.cat([k[front], k[row]], 0)
        vv = torch.cat([v[front], v[row]], 0)
        qh = q[row].view(n, h, c // h).transpose(0, 1)
        kh = kk.view(2 * n, h, c // h).transpose(0, 1)
        vh = vv.view(2 * n, h, c // h).transpose(0, 1)
        w = torch.softmax(qh @ kh.transpose(1, 2) / (c // h) ** 0.5, dim=-1)
        out.append((w @ vh).transpose(0, 1).reshape(n, c))
    return attn.to_out[0](torch.stack(out))


def test_sparse_processor_matches_row_by_row_definition():
    attn = _Attn().attn
    x = torch.randn(12, 5, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = MultiViewAttnProcessor(num_views=6)(attn, x)
        want = _reference_sparse(attn, x, views=6)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


def test_front_view_is_plain_self_attention_and_views_interact():
    from diffusers.models.attention_processor import AttnProcessor2_0

    attn = _Attn().attn
    x = torch.randn(6, 5, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        sparse = MultiViewAttnProcessor(6)(attn, x)
        plain = AttnProcessor2_0()(attn, x)
        dense = MultiViewAttnProcessor(6, mode="dense")(attn, x)
    assert torch.allclose(sparse[0], plain[0], atol=1e-5)        # front: [own ; own] == self-attention
    assert (sparse[1:] - plain[1:]).abs().max() > 1e-3           # other views see the front view
    assert (sparse[1:] - dense[1:]).abs().max() > 1e-3           # and not all the views
    # changing a side view must not change any other view under sparse attention
    x2 = x.clone()
    x2[3] += 1.0
    with torch.no_grad():
        sparse2 = MultiViewAttnProcessor(6)(attn, x2)
    others = [0, 1, 2, 4, 5]
    assert torch.allclose(sparse[others], sparse2[others], atol=1e-6)


def test_processor_rejects_partial_groups():
    attn = _Attn().attn
    with pytest.raises(ValueError, match="multiple of num_views"):
        MultiViewAttnProcessor(6)(attn, torch.randn(8, 4, 16))


def test_install_only_on_attn1_and_guard():
    unet = build_mv_unet(MVUNetConfig.from_official(TINY_UNET_OFFICIAL_CONFIG), device="meta")
    n_attn1, n_mv, modes = mv_attention_state(unet)
    assert n_attn1 == n_mv > 0 and modes == {"sparse"}
    for name, proc in unet.attn_processors.items():
        assert isinstance(proc, MultiViewAttnProcessor) == name.endswith("attn1.processor")
    from diffusers.models.attention_processor import AttnProcessor2_0

    unet.set_attn_processor(AttnProcessor2_0())  # a global override silently breaks the semantics...
    with pytest.raises(RuntimeError, match="install_mv_attention"):
        assert_mv_attention(unet, 6)
    install_mv_attention(unet, 6)                # ...and re-installing restores them
    assert_mv_attention(unet, 6)


# ------------------------------------------------------------------------------------------------- config
def test_official_config_is_split_into_stock_and_mv_parts():
    cfg = MVUNetConfig.from_official(TINY_UNET_OFFICIAL_CONFIG)
    assert not set(MV_ONLY_KEYS) & set(cfg.unet)
    assert not any(k.startswith("_") for k in cfg.unet)
    assert cfg.unet["down_block_types"] == ["CrossAttnDownBlock2D", "DownBlock2D"]
    assert cfg.unet["up_block_types"] == ["UpBlock2D", "CrossAttnUpBlock2D"]
    assert cfg.unet["mid_block_type"] == "UNetMidBlock2DCrossAttn"
    assert cfg.num_views == 6 and cfg.dropped_keys["sparse_mv_attention"] is True


def test_full_size_manifest_on_meta():
    manifest = json.loads((reference_file("mv_unet_full_state_dict.json")).read_text())
    unet = build_mv_unet(MVUNetConfig.from_official(manifest["config_used"]), device="meta")
    sd = unet.state_dict()
    want = {k: tuple(v["shape"]) for k, v in manifest["state_dict"].items()}
    assert len(want) == manifest["num_keys"]
    assert set(sd) == set(want), (sorted(set(sd) - set(want))[:5], sorted(set(want) - set(sd))[:5])
    assert {k: tuple(t.shape) for k, t in sd.items()} == want
    assert sum(t.numel() for t in sd.values()) == manifest["num_params"]
    assert mv_attention_state(unet)[:2] == (16, 16)


# ------------------------------------------------------------------------------------------------ loading
def test_load_tiny_unet_folder(tmp_path):
    write_tiny_unet(tmp_path / "unet")
    unet = load_mv_unet(tmp_path / "unet")
    assert unet.config.in_channels == 8 and not any(p.is_meta for p in unet.parameters())
    assert_mv_attention(unet, 6)
    x = torch.randn(12, 8, 8, 8)
    with torch.no_grad():
        out = unet(x, 981, encoder_hidden_states=torch.randn(12, 77, 32), class_labels=torch.randn(12, 32)).sample
    assert out.shape == (12, 4, 8, 8) and torch.isfinite(out).all()


def test_missing_weights_names_the_file(tmp_path):
    write_tiny_unet(tmp_path / "unet")
    (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(WeightsError, match="diffusion_pytorch_model.safetensors"):
        load_mv_unet(tmp_path / "unet")


def test_corrupt_safetensors_names_the_file(tmp_path):
    write_tiny_unet(tmp_path / "unet")
    f = tmp_path / "unet" / "diffusion_pytorch_model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])  # truncated download
    with pytest.raises(WeightsError, match="diffusion_pytorch_model.safetensors.*not a valid safetensors"):
        load_mv_unet(tmp_path / "unet")


def test_wrong_in_channels_in_config(tmp_path):
    write_tiny_unet(tmp_path / "unet")
    cfg = dict(TINY_UNET_OFFICIAL_CONFIG, in_channels=4)  # e.g. a stock SD UNet config
    (tmp_path / "unet" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match=r"config\.json: in_channels is 4"):
        load_mv_unet(tmp_path / "unet")


def test_weights_of_other_in_channels(tmp_path):
    from safetensors.torch import load_file, save_file

    write_tiny_unet(tmp_path / "unet")
    f = tmp_path / "unet" / "diffusion_pytorch_model.safetensors"
    sd = load_file(str(f))
    sd["conv_in.weight"] = sd["conv_in.weight"][:, :4].contiguous()
    save_file(sd, str(f))
    with pytest.raises(WeightsError, match="conv_in takes 4 input channels"):
        load_mv_unet(tmp_path / "unet")
