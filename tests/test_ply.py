"""PLY: the official byte layout field by field (spec §9), atomic writes, round trip, foreign 3DGS PLYs."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
import torch

from facelift_models.formats import ply
from facelift_models.errors import InputError
from facelift_models.gaussians import SH_C0, Gaussians

RECORD = struct.Struct("<3f3B3f45f1f3f4f")


def _gaussians(n=37, seed=0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    return Gaussians(r(n, 3), r(n, 3) * 2, r(n, 3) - 2, r(n, 4), r(n) * 3)


def test_record_size_and_property_order():
    assert ply.BYTES_PER_GAUSSIAN == RECORD.size == 239
    assert ply.PROPERTY_NAMES[:9] == ["x", "y", "z", "red", "green", "blue", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert ply.PROPERTY_NAMES[9:54] == [f"f_rest_{i}" for i in range(45)]
    assert ply.PROPERTY_NAMES[54:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2",
                                       "rot_3"]


def test_byte_layout_field_by_field():
    g = _gaussians()
    data = ply.ply_bytes(g)
    head = ply.header_text(len(g)).encode("ascii")
    assert data.startswith(head)
    assert data[: data.index(b"end_header\n") + 11] == head
    assert head.startswith(b"ply\nformat binary_little_endian 1.0\nelement vertex 37\nproperty float x\n")
    assert b"comment" not in head and b"property uchar red\nproperty uchar green\nproperty uchar blue\n" in head
    body = data[len(head):]
    assert len(body) == 239 * len(g)
    for i in range(len(g)):
        rec = RECORD.unpack_from(body, 239 * i)
        xyz, rgb, f_dc = rec[0:3], rec[3:6], rec[6:9]
        f_rest, opacity, scale, rot = rec[9:54], rec[54], rec[55:58], rec[58:62]
        assert xyz == tuple(g.xyz[i].tolist())
        assert f_dc == tuple(g.f_dc[i].tolist())
        expected_rgb = np.clip((g.f_dc[i].numpy() * np.float32(SH_C0) + np.float32(0.5)) * np.float32(255), 0, 255)
        assert rgb == tuple(int(v) for v in expected_rgb.astype(np.uint8))
        assert all(v == 0.0 for v in f_rest)
        assert opacity == float(g.opacity_logits[i])              # raw logit
        assert scale == tuple(g.log_scales[i].tolist())           # raw log-scale
        assert rot == tuple(g.quats[i].tolist())                  # raw, not normalised, w first


def test_header_size_for_five_digit_count():
    assert len(ply.header_text(11498)) == 1536


def test_colour_is_truncated_and_clipped():
    # 0.5 + C0*f = v/255 exactly in the middle of a level -> truncation gives the lower level
    f = torch.tensor([[(100.7 / 255 - 0.5) / SH_C0, 10.0, -10.0]])
    g = Gaussians(torch.zeros(1, 3), f, torch.zeros(1, 3), torch.tensor([[1.0, 0, 0, 0]]), torch.zeros(1))
    rec = RECORD.unpack_from(ply.ply_bytes(g), len(ply.header_text(1)))
    assert rec[3:6] == (100, 255, 0)


def test_round_trip_and_atomic_write(tmp_path):
    g = _gaussians()
    path = ply.write_ply(g, tmp_path / "sub" / "head.ply")
    assert path.read_bytes() == ply.ply_bytes(g)
    back = ply.read_ply(path)
    for k, v in g.tensors().items():
        assert torch.equal(back.tensors()[k], v), k
    # overwrite in place
    g2 = _gaussians(5, seed=1)
    ply.write_ply(g2, path)
    assert len(ply.read_ply(path)) == 5
    assert os.listdir(path.parent) == ["head.ply"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "head.ply"
    path.write_bytes(b"old")
    from plyfile import PlyData

    def boom(self, stream):
        stream.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(PlyData, "write", boom)
    with pytest.raises(OSError):
        ply.write_ply(_gaussians(), path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["head.ply"]


def test_empty_gaussians(tmp_path):
    p = ply.write_ply(Gaussians.empty(), tmp_path / "e.ply")
    assert p.read_bytes() == ply.header_text(0).encode()
    assert len(ply.read_ply(p)) == 0


def _write_foreign(path, n, props, values):
    from plyfile import PlyData, PlyElement

    arr = np.zeros(n, dtype=[(name, dt) for name, dt in props])
    for name, v in values.items():
        if name in arr.dtype.names:
            arr[name] = v
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(path))


def test_reads_standard_3dgs_ply_with_normals_and_f_rest(tmp_path):
    n = 6
    rng = np.random.default_rng(0)
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(45)] \
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    vals = {k: rng.standard_normal(n).astype(np.float32) for k in names}
    _write_foreign(tmp_path / "a.ply", n, [(k, "f4") for k in names], vals)
    g = ply.read_ply(tmp_path / "a.ply")
    assert torch.equal(g.xyz, torch.from_numpy(np.stack([vals["x"], vals["y"], vals["z"]], 1)))
    assert torch.equal(g.quats[:, 0], torch.from_numpy(vals["rot_0"]))
    assert torch.equal(g.opacity_logits, torch.from_numpy(vals["opacity"]))


def test_reads_ply_without_f_rest_and_with_colour_only(tmp_path):
    n = 4
    base = ["x", "y", "z", "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    vals = {k: np.arange(n, dtype=np.float32) + i for i, k in enumerate(base)}
    vals.update(red=np.array([0, 255, 128, 64], np.uint8), green=np.zeros(n, np.uint8),
                blue=np.full(n, 255, np.uint8))
    props = [(k, "f4") for k in base] + [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    _write_foreign(tmp_path / "c.ply", n, props, vals)
    g = ply.read_ply(tmp_path / "c.ply")
    colours = g.colors()
    assert torch.allclose(colours[:, 0], torch.tensor([0, 255, 128, 64]) / 255.0, atol=1e-6)
    assert torch.allclose(colours[:, 2], torch.ones(n), atol=1e-6)
    # with f_dc but no f_rest
    props2 = [(k, "f4") for k in base + ["f_dc_0", "f_dc_1", "f_dc_2"]]
    vals2 = dict(vals, f_dc_0=np.ones(n, np.float32), f_dc_1=np.zeros(n, np.float32), f_dc_2=-np.ones(n, np.float32))
    _write_foreign(tmp_path / "d.ply", n, props2, vals2)
    g2 = ply.read_ply(tmp_path / "d.ply")
    assert g2.f_dc[:, 0].tolist() == [1.0] * n and g2.f_dc[:, 2].tolist() == [-1.0] * n


def test_bad_plys_are_input_errors(tmp_path):
    _write_foreign(tmp_path / "points.ply", 3, [("x", "f4"), ("y", "f4"), ("z", "f4")], {})
    with pytest.raises(InputError, match="not a Gaussian-splat PLY"):
        ply.read_ply(tmp_path / "points.ply")
    (tmp_path / "junk.ply").write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="junk.ply"):
        ply.read_ply(tmp_path / "junk.ply")
    data = ply.ply_bytes(_gaussians())
    (tmp_path / "cut.ply").write_bytes(data[:-100])
    with pytest.raises(InputError):
        ply.read_ply(tmp_path / "cut.ply")
    with pytest.raises(InputError, match="not found"):
        ply.read_ply(tmp_path / "missing.ply")
