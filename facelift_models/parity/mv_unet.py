"""Parity kind ``mv_unet``: one multi-view UNet call with the sparse ``attn1`` processor (spec §16.2)."""

from __future__ import annotations

import torch

from ..multiview.unet import MVUNetConfig, build_mv_unet, load_mv_unet_state_dict
from .common import Fixture, ParityError, Report


def build_unet_from_fixture(config: dict, state_dict: dict, source: str, attention: str = "sparse"):
    """The §5.3 route: official config -> stock UNet on meta -> strict load -> fp32 CPU eval model."""
    cfg = MVUNetConfig.from_official(config, attention=attention)
    cfg.validate(source=source)
    unet = build_mv_unet(cfg, device="meta")
    load_mv_unet_state_dict(unet, state_dict, source=source)
    return unet.to(device="cpu", dtype=torch.float32).eval().requires_grad_(False)


def run(fixture: Fixture, report: Report) -> None:
    meta = fixture.meta
    if "config" not in meta:
        raise ParityError(f"{fixture.path}: mv_unet sidecar lacks 'config'.")
    config = dict(meta["config"])
    if meta.get("num_views") is not None:
        config.setdefault("num_views", meta["num_views"])
    state_dict = fixture.with_prefix(meta.get("weights_prefix", "weights."))
    call = meta.get("call") or {}
    sample = fixture.tensor(call.get("sample", "in.sample")).float()
    timestep_t = fixture.tensor(call.get("timestep", "in.timestep"))
    if call.get("timestep_dtype", "int64") == "int64":
        timestep = torch.tensor(int(round(float(timestep_t.reshape(-1)[0]))), dtype=torch.int64)
    else:
        timestep = timestep_t.reshape(-1)[0]
    ehs = fixture.tensor(call.get("encoder_hidden_states", "in.encoder_hidden_states")).float()
    class_labels = fixture.tensor(call.get("class_labels", "in.class_labels")).float()

    unet = build_unet_from_fixture(config, state_dict, source=str(fixture.tensor_path))
    with torch.no_grad():
        out = unet(sample, timestep, encoder_hidden_states=ehs, class_labels=class_labels).sample

    compare = fixture.check.get("compare") or [meta.get("reference_output_for_official_semantics",
                                                         "out.sparse_xformers_path")]
    for key in compare:
        report.compare(key, out)
    report.negative_controls(out)
