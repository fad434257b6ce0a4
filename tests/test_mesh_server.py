"""The mesh nodes in a real ComfyUI 0.3.75 server: the shipped photo -> mesh workflow (tiny weights) writes
GLB / OBJ / PLY files that trimesh reads back with their vertex colours, and Preview 3D receives the path."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests import facelift_server_helpers as H

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def mesh_run(comfy_server, comfy_models_dir):
    H.ensure_tiny_models(comfy_models_dir)
    comfy = comfy_server.client()
    H.upload_portrait(comfy)
    wf = H.load_api_workflow("facelift_photo_to_mesh_api.json", H.FAST_MESH)
    # the same mesh saved in the two other formats too
    for i, fmt in enumerate(("obj", "ply")):
        wf[f"s{i}"] = {"class_type": "FaceLiftSaveMesh",
                       "inputs": {"facelift_mesh": ["6", 0], "format": fmt, "filename_prefix": "FaceLift/head_mesh"}}
    return comfy, comfy.run(H.unique_prefixes(wf), timeout=600)


def _load(comfy, record: dict):
    import trimesh

    data = comfy.view(record["filename"], record["subfolder"], "output")
    fmt = record["filename"].rsplit(".", 1)[1]
    return trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh", process=False)


def test_schema(comfy, comfy_models_dir):
    info = comfy.object_info()
    to_mesh, save = info["FaceLiftGaussiansToMesh"], info["FaceLiftSaveMesh"]
    assert to_mesh["output"] == ["FACELIFT_MESH", "MESH"]  # the pack's coloured mesh + core MESH
    assert save["output"] == ["STRING"] and save["output_node"] is True
    assert to_mesh["category"] == save["category"] == "FaceLift"
    for spec in (to_mesh, save):
        for name, s in spec["input"]["required"].items():
            assert s[1].get("tooltip"), f"{name} has no tooltip"


def test_photo_to_mesh_workflow_writes_glb_obj_ply_with_vertex_colours(mesh_run):
    from facelift_models.formats.mesh import linear_to_srgb

    comfy, res = mesh_run
    assert res.status == "success", res.error
    out = res.outputs
    glb_rec = out["7"]["facelift_files"][0]
    rel = out["7"]["text"][0]
    assert rel == f"{glb_rec['subfolder']}/{glb_rec['filename']}" and rel.endswith(".glb")
    # Preview 3D got the path relative to the output folder (what its viewer loads from /view?type=output)
    assert out["8"]["result"][0] == rel
    meshes = {fmt: _load(comfy, out[nid]["facelift_files"][0])
              for nid, fmt in (("7", "glb"), ("s0", "obj"), ("s1", "ply"))}
    glb = meshes["glb"]
    assert len(glb.faces) > 50 and glb.visual.kind == "vertex"
    for fmt in ("obj", "ply"):
        m = meshes[fmt]
        assert m.visual.kind == "vertex", fmt
        assert np.allclose(m.vertices, glb.vertices, atol=1e-5), fmt
        assert np.array_equal(m.faces, glb.faces), fmt
    # one set of colours: the GLB holds them linear (glTF COLOR_0), OBJ/PLY as display values
    srgb = meshes["ply"].visual.vertex_colors[:, :3].astype(float)
    from_glb = linear_to_srgb(glb.visual.vertex_colors[:, :3] / 255.0) * 255.0
    assert np.abs(from_glb - srgb).mean() < 3.0
    assert np.array_equal(meshes["obj"].visual.vertex_colors, meshes["ply"].visual.vertex_colors)
    assert srgb.std() > 0  # coloured from the Gaussians, not one flat colour


def test_empty_gaussians_give_a_clear_error(comfy, comfy_models_dir, tmp_path):
    """A head whose Gaussians are all transparent: the mesh node says so instead of writing a file."""
    from facelift_models.formats import ply
    from harness.mesh_shapes import from_arrays

    g = from_arrays([[0.0, 0, 0], [0.1, 0, 0]], [[0.01] * 3] * 2, [[1.0, 0, 0, 0]] * 2, [1e-4, 1e-4], [[1, 0, 0]] * 2)
    path = tmp_path / "transparent.ply"
    ply.write_ply(g, path)
    wf = {"1": {"class_type": "FaceLiftLoadPLY", "inputs": {"path": str(path), "axes": "facelift"}},
          "2": {"class_type": "FaceLiftGaussiansToMesh",
                "inputs": {"gaussians": ["1", 0], "resolution": 64, "smoothing": 0, "target_faces": 0,
                           "color_source": "gaussians"}},
          "3": {"class_type": "FaceLiftSaveMesh",
                "inputs": {"facelift_mesh": ["2", 0], "format": "glb", "filename_prefix": "FaceLift/bad_mesh"}}}
    res = comfy.run(H.unique_prefixes(wf), timeout=120)
    assert res.status == "error"
    msg = res.error["exception_message"]
    assert "Gaussians to mesh" in msg and "transparent" in msg, msg
