"""The shipped batch workflow (workflows/api/facelift_batch_folder_api.json) in a real ComfyUI server with tiny
weights: a folder of 3 photos (two faces, one cat) -> two PLYs in order, the cat reported as skipped, the server
still serving; and the batch runner's library function gives the same heads as the nodes."""

from __future__ import annotations

import json
import shutil
import uuid

import numpy as np
import pytest

from tests import facelift_server_helpers as H
from harness.batch_photos import cat, face_variants

pytestmark = pytest.mark.server
WORKFLOW = "facelift_batch_folder_api.json"
FAST = {"4": {"steps": 2}, "7": {"size": 32}}


@pytest.fixture(scope="module")
def photo_folder(comfy_server, comfy_models_dir):
    H.ensure_tiny_models(comfy_models_dir)
    name = f"facelift_batch_{uuid.uuid4().hex[:6]}"
    folder = comfy_server.input_dir / name
    folder.mkdir(parents=True)
    faces = face_variants(2)
    faces[0].save(folder / "a_face.png")
    cat().save(folder / "b_cat.jpg")
    faces[1].save(folder / "c_face.jpg")
    yield name, folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def batch_run(comfy_server, photo_folder):
    wf = H.load_api_workflow(WORKFLOW, {**FAST, "1": {"folder": photo_folder[0]}})
    return comfy_server.client().run(H.unique_prefixes(wf), timeout=600)


def test_batch_of_three_photos_two_plys_one_skip(comfy, batch_run, photo_folder):
    res = batch_run
    assert res.status == "success", H.error_text(res)
    out = res.outputs
    assert json.loads(out["1"]["text"][0]) == ["a_face.png", "b_cat.jpg", "c_face.jpg"]

    info = json.loads(out["3"]["text"][0])
    assert [e["photo"] for e in info] == [1, 2, 3]
    assert info[1]["skipped"] == "photo 2: no face found, skipped" and "No face" in info[1]["reason"]
    assert "skipped" not in info[0] and "skipped" not in info[2]

    files = out["6"]["facelift_files"]
    assert len(files) == 2, files
    names = [f["filename"] for f in files]
    counters = [int(n.rsplit("_", 2)[-2]) for n in names]
    assert counters == [counters[0], counters[0] + 1], names  # one PLY per face, counters in photo order
    heads = []
    for f in files:
        props, count = H.read_ply_header(comfy.view(f["filename"], f["subfolder"]))
        assert count == f["gaussians"] > 0
        heads.append(comfy.view(f["filename"], f["subfolder"]))
    assert heads[0] != heads[1], "the two faces gave the same head"
    assert len(out["8"]["images"]) == 2 and len(out["9"]["images"]) == 2

    # Still serving: a bad folder is a clear error, then a prompt on the same photos runs.
    def load_preview(folder: str, limit: int) -> dict:
        return {"1": {"class_type": "FaceLiftLoadPhotos",
                      "inputs": {"folder": folder, "start": 2, "limit": limit, "max_side": 256}},
                "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}

    bad = comfy.run(load_preview("no_such_folder_here", 0))
    assert bad.status == "error" and "no folder 'no_such_folder_here'" in H.error_text(bad)
    ok = comfy.run(load_preview(photo_folder[0], 1))
    assert ok.status == "success", H.error_text(ok)
    assert json.loads(ok.outputs["1"]["text"][0]) == ["c_face.jpg"]
    assert comfy.get_json("/system_stats")["system"]


def test_batch_runner_function_gives_the_nodes_heads(comfy, batch_run, photo_folder, comfy_models_dir):
    """facelift_models.batch.pipeline (the Ray runner's per-photo function) == the workflow's nodes."""
    from facelift_models.batch.pipeline import PipelineOptions, load_models, photo_to_gaussians
    from facelift_models.batch.photos import list_photos, load_photo_batch
    from facelift_models.formats.ply import read_ply

    assert batch_run.status == "success", H.error_text(batch_run)
    f = batch_run.outputs["6"]["facelift_files"][0]
    tmp = comfy_models_dir / f"cmp_{uuid.uuid4().hex[:6]}.ply"
    tmp.write_bytes(comfy.view(f["filename"], f["subfolder"]))
    node_head = read_ply(tmp)

    models = load_models(comfy_models_dir / "facelift", device="cpu")
    images, _, names = load_photo_batch(list_photos(photo_folder[1]), 1024)
    assert names[0] == "a_face.png"
    g, _ = photo_to_gaussians(models, images[0].numpy(), PipelineOptions(steps=2, crop={"on_no_face": "error"}))
    assert len(g) == len(node_head)
    np.testing.assert_allclose(g.xyz.numpy(), node_head.xyz.numpy(), atol=1e-4)
