"""facelift_models.formats.mesh: GLB / OBJ / PLY writers (frame, colours, atomic writes) read back with trimesh."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from facelift_models.errors import InputError
from facelift_models.formats import mesh as fm
from facelift_models.mesh import ColoredMesh


def _tetra() -> ColoredMesh:
    """A tetrahedron in FaceLift's world with its apex toward the face (-y) and distinct vertex colours."""
    v = np.array([[0.0, -0.5, 0.0], [0.3, 0.2, -0.2], [-0.3, 0.2, -0.2], [0.0, 0.2, 0.4]], dtype=np.float32)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int64)
    c = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.4, 0.8], [0.5, 0.5, 0.5]], dtype=np.float32)
    return ColoredMesh(v, f, c)


@pytest.mark.parametrize("fmt", fm.FORMATS)
def test_round_trip_with_trimesh(tmp_path, fmt):
    m = _tetra()
    path = fm.write_mesh(m, tmp_path / f"t.{fmt}")
    tm = trimesh.load(str(path), file_type=fmt, force="mesh", process=False)
    # +Y up, face toward +Z: FaceLift's -y (the face) is the file's +z, FaceLift's +z (up) the file's +y
    assert np.allclose(tm.vertices[0], [0.0, 0.0, 0.5], atol=1e-6)
    assert np.allclose(tm.vertices[3], [0.0, 0.4, -0.2], atol=1e-6)
    assert np.array_equal(tm.faces, m.faces)
    assert tm.visual.kind == "vertex"
    rgb = tm.visual.vertex_colors[:, :3]
    expected = fm.srgb_to_linear(m.colors) if fmt == "glb" else m.colors  # glTF COLOR_0 is linear
    assert np.abs(rgb / 255.0 - expected).max() <= 0.5 / 255 + 1e-9
    back = fm.read_mesh(path)
    assert np.allclose(back.vertices, m.vertices, atol=1e-6)
    assert np.abs(back.colors - m.colors).max() < (0.02 if fmt == "glb" else 0.5 / 255 + 1e-6)


def test_glb_is_outward_wound_and_y_up(tmp_path):
    m = _tetra()
    tm = trimesh.load(str(fm.write_mesh(m, tmp_path / "t.glb")), force="mesh", process=False)
    assert tm.is_watertight and tm.volume > 0
    assert tm.vertices[:, 1].argmax() == 3  # FaceLift's top (+z) vertex is the file's highest


def test_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "out.glb"
    target.write_bytes(b"old")

    def boom(self, data):
        raise OSError("disk full")

    monkeypatch.setattr(type(target), "write_bytes", boom)
    with pytest.raises(OSError):
        fm.write_mesh(_tetra(), target)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.glb"]  # no temporary file left behind


def test_bad_requests(tmp_path):
    with pytest.raises(InputError, match="format"):
        fm.write_mesh(_tetra(), tmp_path / "t.stl")
    empty = ColoredMesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64), np.zeros((0, 3), np.float32))
    with pytest.raises(InputError, match="no faces"):
        fm.write_mesh(empty, tmp_path / "t.glb")
    assert not (tmp_path / "t.glb").exists()
    (tmp_path / "broken.glb").write_bytes(b"glTF garbage")
    with pytest.raises(InputError, match="Cannot read"):
        fm.read_mesh(tmp_path / "broken.glb")
