"""The batch runner's pieces without Ray: photo discovery, the manifest and resume, options, the photo-folder batch
of the Load Photos node, device chunk sizes, and a whole in-process run (tiny weights)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from facelift_models import chunking
from facelift_models.batch import runner
from facelift_models.batch.photos import list_photos, load_photo_batch
from facelift_models.batch.pipeline import PipelineOptions
from facelift_models.errors import InputError


def _img(path, size=(40, 30), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, (10, 20, 30) if mode == "RGB" else (10, 20, 30, 128)).save(path)
    return path


def test_discover_folder_sorted_recursive_limit_and_stems(tmp_path):
    for name in ("b.png", "a.jpg", "sub/c.png", "a.png", ".hidden.png", "notes.txt"):
        _img(tmp_path / name) if name.endswith((".png", ".jpg")) else (tmp_path / name).write_text("x")
    jobs = runner.discover(tmp_path)
    assert [j.key for j in jobs] == ["a.jpg", "a.png", "b.png", "sub/c.png"]
    assert [j.stem for j in jobs] == ["a_jpg", "a_png", "b", "sub__c"]  # clashing names keep their suffix
    assert [j.key for j in runner.discover(tmp_path, limit=2)] == ["a.jpg", "a.png"]


def test_discover_list_file(tmp_path):
    _img(tmp_path / "x" / "p1.png")
    lst = tmp_path / "list.txt"
    lst.write_text("# photos\nx/p1.png\n\n/abs/missing.jpg\n")
    jobs = runner.discover(lst)
    assert [j.key for j in jobs] == ["x/p1.png", "/abs/missing.jpg"]
    assert jobs[0].source == str((tmp_path / "x" / "p1.png").resolve())
    lst.write_text("x/p1.png\nx/p1.png\n")
    with pytest.raises(InputError, match="more than once"):
        runner.discover(lst)
    with pytest.raises(InputError, match="neither a folder"):
        runner.discover(tmp_path / "nope")


def test_manifest_resume_rules(tmp_path):
    m = runner.Manifest(tmp_path)
    ply = tmp_path / "a.ply"
    ply.write_bytes(b"ply")
    m.append({"photo": "a.png", "status": "ok", "outputs": {"ply": str(ply)}})
    m.append({"photo": "b.png", "status": "failed", "error": "no face"})
    m.append({"photo": "c.png", "status": "ok", "outputs": {"ply": str(tmp_path / "gone.ply")}})
    with open(m.path, "a") as f:
        f.write('{"photo": "d.png", "stat')  # a line cut short by a crash
    jobs = [runner.Job(k, k, k[0]) for k in ("a.png", "b.png", "c.png", "d.png")]
    assert [j.key for j in runner.to_do(jobs, m)] == ["c.png", "d.png"]  # ok-but-file-gone and cut line: redo
    assert [j.key for j in runner.to_do(jobs, m, retry_failed=True)] == ["b.png", "c.png", "d.png"]


def test_options_are_checked():
    with pytest.raises(InputError, match="Unknown output format"):
        PipelineOptions(formats=("obj",)).validate()
    with pytest.raises(InputError, match="skip"):
        PipelineOptions(crop={"on_no_face": "skip"}).validate()
    with pytest.raises(InputError, match="even"):
        PipelineOptions(turntable_frames=4, turntable_size=33).validate()


def test_ray_missing_gives_install_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r'pip install "ray\[data\]"'):
        runner.require_ray()


def test_photo_folder_batch_pads_and_masks(tmp_path):
    _img(tmp_path / "b.png", (40, 30))
    _img(tmp_path / "a.png", (20, 50), mode="RGBA")
    (tmp_path / "skip.txt").write_text("x")
    paths = list_photos(tmp_path)
    assert [p.name for p in paths] == ["a.png", "b.png"]
    images, masks, names = load_photo_batch(paths, max_side=0)
    assert images.shape == (2, 50, 40, 3) and masks.shape == (2, 50, 40) and names == ["a.png", "b.png"]
    assert torch.allclose(masks[0, :, :20], torch.full((50, 20), 1 - 128 / 255))  # RGBA alpha -> background mask
    assert (masks[0, :, 20:] == 1).all() and (images[0, :, 20:] == 1).all()       # white padding = background
    assert (masks[1, :30, :] == 0).all() and (masks[1, 30:, :] == 1).all()
    small, _, _ = load_photo_batch(paths, max_side=25)
    assert small.shape[1:3] == (25, 25)  # 20x50 -> 10x25 and 40x30 -> 25x19, padded to the largest
    assert [p.name for p in list_photos(tmp_path, start=1, limit=5)] == ["b.png"]
    with pytest.raises(InputError, match="skips all"):
        list_photos(tmp_path, start=2)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="bad.jpg"):
        load_photo_batch(list_photos(tmp_path), 0)


def test_chunk_sizes_follow_free_memory(monkeypatch):
    monkeypatch.setattr(chunking, "free_memory", lambda device: 10 << 30)
    assert chunking.items_per_chunk("cpu", 3 << 30) == 1          # 5 GiB usable / 3 GiB per photo
    assert chunking.items_per_chunk("cpu", 1 << 20) == chunking.CPU_MAX_CHUNK
    assert chunking.items_per_chunk("cpu", 1 << 20, total=2) == 2
    monkeypatch.setattr(chunking, "free_memory", lambda device: 1 << 20)
    assert chunking.items_per_chunk("cpu", 3 << 30) == 1          # one photo always runs
    assert [list(r) for r in chunking.chunks(5, 2)] == [[0, 1], [2, 3], [4]]


def test_local_run_records_each_photo_once(tmp_path):
    from harness.tiny_models import write_tiny_models
    from harness.batch_photos import write_photo_folder

    models = write_tiny_models(tmp_path / "models", mv=True, gslrm=True)
    photos = write_photo_folder(tmp_path / "photos", faces=1)
    out = tmp_path / "out"
    opts = PipelineOptions(steps=1, turntable_frames=2, turntable_size=32, formats=("ply", "splat"), mesh=True)
    s = runner.run_local(tmp_path / "photos", out, models, opts, say=lambda m: None)
    assert (s.total, s.ok, s.failed) == (3, 1, 2)
    recs = {r["photo"]: r for r in runner.Manifest(out).records()}
    face = recs[photos["faces"][0]]
    assert set(face["outputs"]) == {"ply", "splat", "mp4", "mesh"}
    assert open(face["outputs"]["mesh"], "rb").read(4) == b"glTF"
    assert open(face["outputs"]["mp4"], "rb").read()[4:8] == b"ftyp"
    assert recs["cat.png"]["error_type"] == "NoFaceError" and recs["corrupt.jpg"]["error_type"] == "InputError"
    again = runner.run_local(tmp_path / "photos", out, models, opts, say=lambda m: None)
    assert (again.skipped, again.ok, again.failed) == (3, 0, 0)
    assert len(runner.Manifest(out).records()) == 3
    assert json.loads(json.dumps(face))["timings"]["total_s"] > 0
