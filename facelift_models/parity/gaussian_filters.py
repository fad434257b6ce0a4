"""Parity kind ``gaussian_filters``: the official post-filter chain and the exact PLY bytes, for every filter
set and PLY subset the sidecar lists (all comparisons bit-exact)."""

from __future__ import annotations

import hashlib

import torch

from ..reconstruct.filters import FilterConfig, filter_stages
from ..gaussians import Gaussians
from ..formats.ply import header_text, ply_bytes
from .common import Fixture, ParityError, Report

# Fixture field name -> Gaussians field, and how the fixture shapes it.
_FIELDS = {
    "xyz": ("xyz", lambda t: t),
    "features_dc": ("f_dc", lambda t: t.unsqueeze(1)),        # [N,1,3]
    "scaling_raw": ("log_scales", lambda t: t),
    "rotation_raw": ("quats", lambda t: t),
    "opacity_raw": ("opacity_logits", lambda t: t.unsqueeze(1)),  # [N,1]
}


def _load_inputs(fixture: Fixture) -> Gaussians:
    names = fixture.meta.get("inputs") or {k: f"in.{k}" for k in _FIELDS}
    t = {k: fixture.tensor(names[k]).float() for k in _FIELDS}
    return Gaussians(
        xyz=t["xyz"].reshape(-1, 3),
        f_dc=t["features_dc"].reshape(t["features_dc"].shape[0], -1)[:, :3],
        log_scales=t["scaling_raw"].reshape(-1, 3),
        quats=t["rotation_raw"].reshape(-1, 4),
        opacity_logits=t["opacity_raw"].reshape(-1),
    )


def _shaped(g: Gaussians, field: str, expected: torch.Tensor) -> torch.Tensor:
    """A Gaussians field in the fixture's layout (e.g. features_dc [N,1,3], opacity_raw [N,1])."""
    attr, to_fixture_layout = _FIELDS[field]
    value = getattr(g, attr)
    if value.numel() == expected.numel():
        return value.reshape(tuple(expected.shape))
    return to_fixture_layout(value)  # a count mismatch: the exact comparison reports the shape


def run(fixture: Fixture, report: Report) -> None:
    meta = fixture.meta
    sets = meta.get("filter_sets") or {}
    if not sets:
        raise ParityError(f"{fixture.path}: sidecar has no filter_sets.")
    g = _load_inputs(fixture)
    if "num_gaussians" in meta:
        report.value("num_gaussians", len(g), int(meta["num_gaussians"]))
    order = meta.get("filter_stage_order") or ["opacity", "scaling", "floater", "crop"]
    exact_keys = set(fixture.check.get("exact") or [])
    produced: dict[str, torch.Tensor] = {}
    filtered: dict[str, Gaussians] = {}

    for name, spec in sets.items():
        result = filter_stages(g, FilterConfig.from_dict(spec))
        kept = g.select(result.keep_idx)
        filtered[name] = kept
        for stage in order:
            if stage in result.masks:
                produced[f"out.{name}.mask_after_{stage}"] = result.masks[stage].to(torch.uint8)
        produced[f"out.{name}.keep_idx"] = result.keep_idx.to(torch.int64)
        for field in _FIELDS:
            key = f"out.{name}.{field}"
            if fixture.has(key):
                produced[key] = _shaped(kept, field, fixture.tensor(key))
        if "num_kept" in spec:
            report.value(f"{name}.num_kept", len(kept), int(spec["num_kept"]))
        for stage, count in (spec.get("stage_counts") or {}).items():
            if stage in result.stage_counts:
                report.value(f"{name}.stage_counts.{stage}", result.stage_counts[stage], int(count))

    writer = (meta.get("ply") or {}).get("writer") or {}
    if writer.get("use_fp16") or writer.get("color_code") or writer.get("enable_gs_viewer") is False:
        raise ParityError(f"{fixture.path}: PLY writer options {writer} are not the official defaults "
                          "(use_fp16 false, enable_gs_viewer true, color_code false) that this port writes.")
    for sub in (meta.get("ply") or {}).get("subsets") or []:
        kept = filtered[sub["filter_set"]]
        idx = fixture.tensor(sub["idx_key"])
        if idx.dtype == torch.bool or (idx.dtype == torch.uint8 and idx.numel() == len(kept)):
            idx = idx.bool().nonzero()[:, 0]  # a boolean mask over the filtered Gaussians
        idx = idx.to(torch.int64)
        data = ply_bytes(kept.select(idx))
        produced[sub["bytes_key"]] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        label = f"{sub['filter_set']}.ply_{sub['name']}"
        if "header" in sub:
            head = data[:data.index(b"end_header\n") + len(b"end_header\n")].decode("ascii")
            report.value(f"{label}.header", head, sub["header"])
            report.value(f"{label}.header_text", header_text(len(idx)), sub["header"])
        if "num_bytes" in sub:
            report.value(f"{label}.num_bytes", len(data), int(sub["num_bytes"]))

    for key in sorted(exact_keys):
        if key not in produced:
            raise ParityError(f"{fixture.path}: exact key '{key}' is not produced by the gaussian_filters runner.")
        report.exact(key, produced[key])

    if fixture.check.get("ply_full_sha256"):
        for name, full in ((meta.get("ply") or {}).get("full") or {}).items():
            data = ply_bytes(filtered[name])
            report.value(f"{name}.ply_full.num_bytes", len(data), int(full["num_bytes"]))
            report.value(f"{name}.ply_full.sha256", hashlib.sha256(data).hexdigest(), full["sha256"])
