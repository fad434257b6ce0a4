"""Parity kind ``gslrm``: rebuild GS-LRM from the sidecar, run the stored views, compare rays and Gaussians."""

from __future__ import annotations

import torch

from ..cameras import from_user, posed_input, ray_bundle
from ..reconstruct.gslrm import GSLRMConfig, pixel_aligned_image
from ..reconstruct.checkpoint import build_model
from .common import Fixture, ParityError, Report


def _fit(actual: torch.Tensor, expected_shape) -> torch.Tensor:
    """Drop a leading batch axis of size 1 when the fixture stores the tensor without it."""
    if tuple(actual.shape) != tuple(expected_shape) and actual.shape[0] == 1 \
            and tuple(actual.shape[1:]) == tuple(expected_shape):
        return actual[0]
    return actual


def run(fixture: Fixture, report: Report) -> None:
    meta = fixture.meta
    call = meta.get("call", {})
    try:
        config = GSLRMConfig.from_dict(meta)
    except Exception as e:
        raise ParityError(f"{fixture.path}: sidecar does not describe a GS-LRM config ({e}).") from None
    prefix = meta.get("weights_prefix", "weights.")
    omitted = tuple(meta.get("weights_omitted_prefixes", []))
    sd = {k: v for k, v in fixture.with_prefix(prefix).items() if not k.startswith(omitted)}
    model = build_model(sd, config, f"{fixture.tensor_path} ({prefix}*)")
    if "num_weight_tensors" in meta:
        report.value("num_weight_tensors", len(sd), int(meta["num_weight_tensors"]))
    if "num_params" in meta:
        report.value("num_params", sum(v.numel() for v in sd.values()), int(meta["num_params"]))

    images = fixture.tensor(call.get("image", "in.image")).float()
    c2w = fixture.tensor(call.get("c2w", "in.c2w")).float()
    k = fixture.tensor(call.get("fxfycxcy", "in.fxfycxcy")).float()
    if images.dim() == 4:
        images, c2w, k = images[None], c2w[None], k[None]
    b, v, _, h, w = images.shape
    cams = [from_user(c2w[i], k[i], w, h) for i in range(b)]

    ray_o, ray_d, posed = [], [], []
    for i in range(b):
        o, d = ray_bundle(cams[i])
        ray_o.append(o)
        ray_d.append(d)
        posed.append(posed_input(images[i:i + 1], cams[i])[0])
    raw = model.forward_raw(images, cams)
    pix = torch.stack([pixel_aligned_image(raw.xyz[i], v, h, w, config.patch_size, config.n_gaussians)
                       for i in range(b)])
    produced = {
        "mid.ray_o": torch.stack(ray_o),
        "mid.ray_d": torch.stack(ray_d),
        "mid.posed_images": torch.stack(posed),
        "out.xyz": raw.xyz,
        "out.features_dc": raw.f_dc.unsqueeze(2),        # [B,N,1,3]: SH coefficient axis
        "out.scaling_raw": raw.log_scales,
        "out.scaling_act": raw.log_scales.exp(),
        "out.rotation_raw": raw.quats,
        "out.rotation_act": torch.nn.functional.normalize(raw.quats, dim=-1),
        "out.opacity_raw": raw.opacity_logits.unsqueeze(-1),
        "out.opacity_act": raw.opacity_logits.sigmoid().unsqueeze(-1),
        "out.pixelalign_xyz": pix,
    }
    keys = list(fixture.check.get("compare") or [])
    keys += [k for k in fixture.check.get("intermediates") or [] if k not in keys]
    first = None
    for key in keys:
        if key not in produced:
            raise ParityError(f"{fixture.path}: compare key '{key}' is not produced by the gslrm runner.")
        expected = fixture.tensor(key)
        actual = _fit(produced[key], expected.shape)
        report.compare(key, actual, expected)
        first = actual if first is None else first
    for key in fixture.check.get("exact") or []:
        if key in produced:
            report.exact(key, _fit(produced[key], fixture.tensor(key).shape))
    if first is not None:
        report.negative_controls(first)
