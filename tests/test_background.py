"""U²-Net background removal: oracle against rembg itself, the MASK / alpha / U²-Net choice, weights handling.

The oracle runs rembg's own ``remove()`` (its ``u2net_custom`` session, which does exactly what its ``u2net``
session does, given a model path) and our onnxruntime path with the same tiny random ONNX model that has U²-Net's
signature.  Tolerance: none, the mattes, cutouts and crops must be bit-identical.  Both sides run the same ONNX
file in the same onnxruntime with the same float32 input, so any difference would come from the pre- or
post-processing, which is what is under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facelift_models.face import crop as FC
from facelift_models.errors import NoFaceError, WeightsError
from facelift_models.face import background as BG
from facelift_models.face.mtcnn import load_mtcnn
from facelift_models.weights.store import BACKGROUND, U2NET_SHA256, U2NET_SIZE, ModelStore
from tests.mtcnn_weights import mtcnn_weights_dir
from harness.tiny_models import write_tiny_u2net

skimage_data = pytest.importorskip("skimage.data")
rembg = pytest.importorskip("rembg")


@pytest.fixture(scope="module")
def u2net_file(tmp_path_factory):
    return write_tiny_u2net(tmp_path_factory.mktemp("u2net") / "u2net" / "u2net.onnx")


@pytest.fixture(scope="module")
def ours(u2net_file):
    return BG.U2Net(u2net_file, device="cpu")


@pytest.fixture(scope="module")
def session(u2net_file):
    return rembg.new_session("u2net_custom", model_path=str(u2net_file), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def detector():
    return load_mtcnn(mtcnn_weights_dir(), "cpu")


def _ellipse_alpha(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    r = ((xx - 0.45 * w) / 0.4 / w) ** 2 + ((yy - 0.45 * h) / 0.55 / h) ** 2
    return np.clip((1.2 - r) * 255 * 3, 0, 255).astype(np.uint8)


def _inputs():
    astro = skimage_data.astronaut()
    grey = (np.asarray(Image.fromarray(astro).convert("L")).astype(np.float64) * 200 / 255).astype(np.uint8)
    assert grey.max() < 255  # rembg scales by the image's own maximum, not by 255: this case shows the difference
    rgba = np.dstack([astro, _ellipse_alpha(*astro.shape[:2])])
    return {"astronaut": astro, "grey": grey, "rgba": rgba}


def _official(image: np.ndarray, session):
    """The official preprocessing's first steps: rembg.remove(image), then PIL alpha-composite on white."""
    cut = np.asarray(rembg.remove(image, session=session))
    white = Image.new("RGBA", (cut.shape[1], cut.shape[0]), (255, 255, 255, 255))
    return cut, np.asarray(Image.alpha_composite(white, Image.fromarray(cut, "RGBA")).convert("RGB"))


@pytest.mark.parametrize("case", ["astronaut", "grey", "rgba"])
def test_matte_and_crop_equal_rembg_remove(case, ours, session, detector):
    image = _inputs()[case]
    cut, on_white = _official(image, session)
    assert 0.05 < (cut[..., 3] > 127).mean() < 0.95  # a real matte: neither all foreground nor all background
    # The cutout (colours and alpha) is rembg's, bit for bit.
    src = np.dstack([image] * 3) if image.ndim == 2 else image
    rgb, alpha = ours.remove(src)
    assert np.array_equal(alpha, cut[..., 3]) and np.array_equal(rgb, cut[..., :3])
    # The final crop: ours from the raw photo vs the official crop of rembg's output on white.
    res = FC.crop_face(image, detector=detector, remover=ours, background="u2net")
    ref = FC.crop_face(on_white, detector=detector, background="keep")
    assert res.info["background_from"] == "u2net"
    assert np.array_equal(res.image, ref.image) and res.box == ref.box
    # The mask output is the matte used, framed like the crop.
    framed = FC.crop_with_box(on_white, ref.box, mask=cut[..., 3].astype(np.float32) / 255.0).mask
    assert np.array_equal(res.mask, framed)


def test_preprocessing_steps_each_matter(ours, session):
    """Guards of the oracle: a plain /255 scaling or a flipped channel order would change the matte."""
    grey = _inputs()["grey"]
    pil = Image.fromarray(np.dstack([grey] * 3))
    x = BG.model_input(pil)
    small = np.asarray(pil.resize((320, 320), Image.Resampling.LANCZOS)) / 255.0
    wrong = ((small - BG.MEAN) / BG.STD).transpose(2, 0, 1)[None].astype(np.float32)
    assert np.abs(x - wrong).max() > 0.1
    run = lambda inp: BG.matte_from_output(ours.session.run(None, {"input.1": inp})[0], pil.size)  # noqa: E731
    assert not np.array_equal(run(wrong), run(x))
    assert not np.array_equal(run(x[:, ::-1].copy()), run(x))


def test_skip_detection_and_official_fallback_match_the_official_paths(ours, session, detector):
    astro = skimage_data.astronaut()
    cut, _ = _official(astro, session)
    white = Image.new("RGBA", (512, 512), (255, 255, 255, 255))
    # Spec §4 step 6: rembg, RGBA resized to 512² (bicubic), composited on white.
    res = FC.crop_face(astro, remover=ours, skip_detection=True)
    exp = Image.alpha_composite(white, Image.fromarray(cut, "RGBA").resize((512, 512), Image.BICUBIC))
    assert np.array_equal(res.image, np.asarray(exp.convert("RGB")))
    # Step 7, no face (a cat): rembg, LANCZOS to 512² (we composite the RGBA result on white).
    cat = skimage_data.chelsea()
    ccut, _ = _official(cat, session)
    res = FC.crop_face(cat, detector=detector, remover=ours, on_no_face="official")
    exp = Image.alpha_composite(white, Image.fromarray(ccut, "RGBA").resize((512, 512), Image.LANCZOS))
    assert res.info["mode"] == "official_fallback" and res.info["background_from"] == "u2net"
    assert np.array_equal(res.image, np.asarray(exp.convert("RGB")))
    with pytest.raises(NoFaceError):
        FC.crop_face(cat, detector=detector, remover=ours)


# ------------------------------------------------------------------------------------------------ the choice
class CountingRemover:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def remove(self, image):
        self.calls += 1
        return self.inner.remove(image)


@pytest.mark.parametrize("mode,given,expect", [
    ("auto", "none", "u2net"), ("auto", "alpha", "alpha"), ("auto", "mask", "mask"), ("auto", "both", "mask"),
    ("u2net", "none", "u2net"), ("u2net", "alpha", "u2net"), ("u2net", "mask", "mask"), ("u2net", "both", "mask"),
    ("keep", "none", None), ("keep", "alpha", "alpha"), ("keep", "mask", "mask"), ("keep", "both", "mask"),
])
def test_matte_source_choice(mode, given, expect, ours, detector):
    astro = skimage_data.astronaut()
    alpha = _ellipse_alpha(512, 512)
    image = np.dstack([astro, alpha]) if given in ("alpha", "both") else astro
    mask = np.ones((512, 512), np.float32) if given in ("mask", "both") else None
    counter = CountingRemover(ours)
    res = FC.crop_face(image, mask, detector=detector, remover=counter, background=mode)
    assert res.info["background_from"] == expect
    assert counter.calls == (1 if expect == "u2net" else 0)
    if expect == "mask":  # a user's MASK always wins: here all ones, so the photo is cropped as it is
        plain = FC.crop_face(astro, detector=detector, background="keep")
        assert np.array_equal(res.image, plain.image) and res.mask.max() == 1.0


def test_opaque_alpha_counts_as_no_alpha(ours, detector):
    astro = skimage_data.astronaut()
    counter = CountingRemover(ours)
    res = FC.crop_face(np.dstack([astro, np.full((512, 512), 255, np.uint8)]), detector=detector, remover=counter)
    assert res.info["background_from"] == "u2net" and counter.calls == 1


# ------------------------------------------------------------------------------------------------ weights
def test_missing_u2net_names_file_folder_and_command(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELIFT_MODELS_DIR", str(tmp_path / "facelift"))
    with pytest.raises(WeightsError) as ei:
        FC.crop_face(skimage_data.astronaut(), detector=object())  # U²-Net is needed before detection
    msg = str(ei.value)
    assert "u2net/u2net.onnx is missing" in msg and str(tmp_path / "facelift" / "u2net") in msg
    assert "python -m facelift_models.download" in msg and "--components background" in msg
    assert "--accept-license" in msg and "Apache-2.0" in msg and "keep" in msg


def test_store_entry_pins_size_and_sha256(tmp_path):
    f = ModelStore(tmp_path).entry("u2net")
    assert (f.size, f.sha256, f.purpose) == (U2NET_SIZE, U2NET_SHA256, BACKGROUND)
    assert f.url.endswith("/u2net.onnx") and f.local_path == "u2net/u2net.onnx"


def test_damaged_model_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "u2net.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(WeightsError, match="damaged or not rembg's u2net.onnx"):
        BG.U2Net(bad)


def test_default_remover_loads_from_models_dir(tmp_path, monkeypatch, u2net_file):
    import shutil

    dest = ModelStore(tmp_path).path("u2net")
    dest.parent.mkdir(parents=True)
    shutil.copyfile(u2net_file, dest)
    monkeypatch.setenv("FACELIFT_MODELS_DIR", str(tmp_path))
    assert BG.default_remover("cpu").path == dest
    assert BG.providers("cpu") == ["CPUExecutionProvider"]


def test_make_run_and_doctor_name_u2net(tmp_path, u2net_file):
    import shutil

    from facelift_models.doctor import models_report
    from facelift_models.weights.store import INFERENCE

    store = ModelStore(tmp_path, use_installed_facenet=False)
    with pytest.raises(WeightsError) as ei:  # what `make run` prints when weights are missing
        store.require(INFERENCE)
    msg = str(ei.value)
    assert "u2net/u2net.onnx is missing" in msg and str(tmp_path / "u2net") in msg
    assert "rembg/releases/download/v0.0.0/u2net.onnx" in msg and U2NET_SHA256 in msg
    report = models_report(tmp_path)
    assert report["components"][BACKGROUND]["ready"] is False
    assert any(f["path"] == "u2net/u2net.onnx" and f["state"] == "missing" for f in report["files"])
    store.path("u2net").parent.mkdir(parents=True)
    shutil.copyfile(u2net_file, store.path("u2net"))
    assert [f["state"] for f in models_report(tmp_path)["files"] if f["id"] == "u2net"] == ["size_mismatch"]
