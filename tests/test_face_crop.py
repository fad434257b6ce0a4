"""Face crop: parity with the official preprocessing, input kinds, batch errors, options, no input mutation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from facelift_models.face import crop as FC
from facelift_models.parity.face_crop import crop_config_from_sidecar
from facelift_models.errors import InputError, NoFaceError
from facelift_models.face.mtcnn import load_mtcnn
from facelift_models.parity.common import Fixture, run_fixture
from tests.conftest import sidecars, fixture_id
from tests.mtcnn_weights import mtcnn_weights_dir

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def detector():
    return load_mtcnn(mtcnn_weights_dir(), "cpu")


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def astronaut_crop(detector, astronaut):
    return FC.crop_face(astronaut, detector=detector, background="keep")


@pytest.fixture(scope="module")
def public():
    paths = [p for p in sidecars("face_crop") if p.stem == "facecrop_public"]
    assert paths, "facecrop_public.json is missing from tests/fixtures/parity/"
    return Fixture(paths[0])


def _crop(img, detector, **kw):
    """The crop step alone: the photo's background as it is (U²-Net background removal: test_background.py)."""
    return FC.crop_face(img, detector=detector, **{"background": "keep", **kw})


def _portrait_alpha(h, w):
    """A soft elliptical foreground around the astronaut's head and shoulders."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = ((xx - 0.45 * w) / (0.35 * w)) ** 2 + ((yy - 0.45 * h) / (0.5 * h)) ** 2
    return np.clip((1.2 - r) * 255 * 3, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("sidecar", sidecars("face_crop"), ids=fixture_id)
def test_parity_every_face_crop_sidecar(sidecar, detector, monkeypatch):
    monkeypatch.setenv("FACELIFT_MTCNN_DIR", str(mtcnn_weights_dir()))
    report = run_fixture(sidecar)
    bad = [f"{l.key}: {l.max_abs_diff} {l.detail}" for l in report.lines if not l.ok]
    assert report.passed, bad


def test_example_file_is_the_fixture_image(public):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "samples" / "astronaut.png"
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), public.tensor("in.astronaut.image").numpy())


def test_crop_arithmetic_matches_sidecar_debug(public):
    cfg = crop_config_from_sidecar(public.meta["crop_constants"], public.meta["resampling"])
    for case, info in public.meta["cases"].items():
        if info.get("expect") != "crop":
            continue
        dbg = info["debug"]
        res = FC.crop_with_box(public.tensor(f"in.{case}.image").numpy(),
                               public.tensor(f"out.{case}.selected_box").tolist(), cfg)
        assert list(res.info["scaled_size_wh"]) == dbg["scaled_size_wh"]
        assert list(res.info["scaled_face_center"]) == dbg["scaled_face_center"]
        assert list(res.info["crop_box_ltrb"]) == dbg["crop_box_ltrb_in_scaled_image"]
        assert list(res.info["paste_xy"]) == dbg["paste_xy"]
        assert res.info["face_size"] == dbg["detected_face_size"]
        white = (res.image == 255).all(axis=2)
        assert int(white.sum()) == dbg["white_pixels"]
        # The mask is 1 over the pasted image content and 0 on the white padding rows.
        top = dbg["white_rows_top"]
        assert res.mask[:top].max() == 0 and res.mask[top + 5:-5].min() > 0.99


# ----------------------------------------------------------------------------------------------- errors
def test_cat_gives_clear_no_face_error(detector):
    cat = skimage_data.chelsea()
    with pytest.raises(NoFaceError) as ei:
        _crop(cat, detector)
    msg = str(ei.value)
    h, w = cat.shape[:2]
    assert f"{w}×{h}" in msg and "0.8" in msg
    assert "threshold" in msg and "skip detection" in msg and "frontal" in msg


def test_threshold_is_a_strict_lower_bound(detector, astronaut, astronaut_crop):
    prob = astronaut_crop.prob
    with pytest.raises(NoFaceError, match="1 candidate face"):
        _crop(astronaut, detector, prob_threshold=prob)  # prob > threshold is required
    assert _crop(astronaut, detector, prob_threshold=np.nextafter(prob, 0)).prob == prob


def test_bad_inputs_are_input_errors(detector, astronaut):
    with pytest.raises(InputError, match="float"):
        _crop(astronaut.astype(np.float32), detector)  # 0-255 floats
    with pytest.raises(InputError, match="mask"):
        _crop(astronaut, detector, mask=np.ones((10, 10), np.float32))
    with pytest.raises(InputError, match="crop_faces"):
        _crop(np.stack([astronaut, astronaut]), detector)
    with pytest.raises(InputError, match="NaN"):
        _crop(np.full((64, 64, 3), np.nan, np.float32), detector)


# ----------------------------------------------------------------------------------------------- input kinds
def test_grayscale_2d_input_equals_official_gray_case(detector, public):
    gray = np.asarray(Image.fromarray(public.tensor("in.astronaut.image").numpy()).convert("L"))
    assert gray.ndim == 2
    res = _crop(gray, detector)
    exp = public.tensor("out.astronaut_gray.crop").numpy().astype(int)
    diff = np.abs(res.image.astype(int) - exp)
    assert diff.max() <= 2 and diff.mean() <= 1.0


def test_16bit_and_float_inputs_give_the_8bit_crop(detector, astronaut, astronaut_crop):
    ref = astronaut_crop.image
    as16 = astronaut.astype(np.uint16) * 257
    assert np.array_equal(_crop(as16, detector).image, ref)
    comfy = torch.from_numpy(astronaut.astype(np.float32) / 255.0)[None]  # a ComfyUI IMAGE batch of one
    assert np.array_equal(_crop(comfy, detector).image, ref)


def test_rgba_alpha_is_the_mask_and_background_turns_white(detector, astronaut):
    alpha = _portrait_alpha(*astronaut.shape[:2])
    rgba = np.dstack([astronaut, alpha])
    res = _crop(rgba, detector)
    assert res.info["background_from"] == "alpha"
    # Same as compositing on white with PIL first (the official flow after rembg) and cropping that.
    bg = Image.new("RGB", (512, 512), (255, 255, 255)).convert("RGBA")
    on_white = np.asarray(Image.alpha_composite(bg, Image.fromarray(rgba, "RGBA")).convert("RGB"))
    plain = _crop(on_white, detector)
    assert np.array_equal(res.image, plain.image) and res.box == plain.box
    # Where the cropped mask is 0 the crop is white; where it is 1 it is not all white.
    assert (res.image[res.mask == 0] == 255).all()
    assert res.mask.max() == pytest.approx(1.0, abs=1e-3) and (res.image[res.mask > 0.99] < 250).any()


def test_mask_input_equals_alpha_and_overrides_it(detector, astronaut, astronaut_crop):
    alpha = _portrait_alpha(*astronaut.shape[:2])
    from_alpha = _crop(np.dstack([astronaut, alpha]), detector)
    from_mask = _crop(astronaut, detector, mask=torch.from_numpy(alpha.astype(np.float32) / 255)[None])
    assert from_mask.info["background_from"] == "mask"
    assert np.array_equal(from_alpha.image, from_mask.image)
    assert np.abs(from_alpha.mask - from_mask.mask).max() < 1e-6
    # An explicit all-ones mask wins over the alpha channel: no compositing at all.
    full = _crop(np.dstack([astronaut, alpha]), detector, mask=np.ones(astronaut.shape[:2], np.float32))
    assert np.array_equal(full.image, astronaut_crop.image)


def test_any_size_and_aspect(detector, astronaut):
    wide = np.full((400, 900, 3), 255, np.uint8)
    wide[:, 250:650] = np.asarray(Image.fromarray(astronaut).resize((400, 400), Image.BICUBIC))
    res = _crop(wide, detector)
    assert res.image.shape == (512, 512, 3) and res.mask.shape == (512, 512)
    assert res.image.dtype == np.uint8 and res.mask.dtype == np.float32
    # The face lands at the training position: its box centre maps near (251.8, 280.0).
    x1, y1, x2, y2 = res.box
    cx = 0.5 * (x1 + x2) * res.scale + res.info["offsets"][0]
    cy = 0.5 * (y1 + y2) * res.scale + res.info["offsets"][1]
    assert abs(cx - 251.8) < 1.5 and abs(cy - 280.0) < 1.5


# ----------------------------------------------------------------------------------------------- options
def test_skip_detection_is_the_official_resize_on_white(monkeypatch, astronaut):
    monkeypatch.setattr(FC, "default_detector", lambda *a, **k: pytest.fail("detector used"))
    img = astronaut[:, :400]
    alpha = _portrait_alpha(*img.shape[:2])
    res = FC.crop_face(np.dstack([img, alpha]), skip_detection=True)
    resized = Image.fromarray(np.dstack([img, alpha]), "RGBA").resize((512, 512), Image.BICUBIC)
    exp = np.asarray(Image.alpha_composite(Image.new("RGBA", (512, 512), (255, 255, 255)), resized).convert("RGB"))
    assert np.array_equal(res.image, exp)
    assert res.box is None and res.prob is None and res.info["mode"] == "resize"
    cat = FC.crop_face(skimage_data.chelsea(), skip_detection=True, background="keep")  # no face needed
    assert cat.image.shape == (512, 512, 3) and cat.mask.min() > 0.99


def test_choose_second_face(detector, astronaut):
    small = np.asarray(Image.fromarray(astronaut).resize((300, 300), Image.BICUBIC))
    pair = np.full((512, 812, 3), 255, np.uint8)
    pair[:, :512] = astronaut
    pair[100:400, 512:] = small
    first = _crop(pair, detector)
    second = _crop(pair, detector, face_index=1)
    assert first.box[0] < 512 <= second.box[0]
    assert second.scale > first.scale  # the smaller face is enlarged more
    with pytest.raises(InputError, match="face #2"):
        _crop(pair, detector, face_index=2)


# ----------------------------------------------------------------------------------------------- batches
def test_batch_reports_the_failing_image(detector, astronaut):
    cat = np.asarray(Image.fromarray(skimage_data.chelsea()).resize((512, 512), Image.BICUBIC))
    batch = torch.from_numpy(np.stack([astronaut, cat, astronaut]).astype(np.float32) / 255.0)
    with pytest.raises(NoFaceError) as ei:
        FC.crop_faces(batch, detector=detector, background="keep")
    msg = str(ei.value)
    assert "1 of 3" in msg and "image 1 " in msg and "image 0 " not in msg and "image 2 " not in msg


def test_batch_crops_each_image(detector, astronaut, astronaut_crop):
    gray = np.repeat(np.asarray(Image.fromarray(astronaut).convert("L"))[:, :, None], 3, axis=2)
    batch = torch.from_numpy(np.stack([astronaut, gray]).astype(np.float32) / 255.0)
    masks = torch.ones(2, 512, 512)
    before_b, before_m = batch.clone(), masks.clone()
    out = FC.crop_faces(batch, masks, detector=detector, background="keep")
    assert out.images.shape == (2, 512, 512, 3) and out.masks.shape == (2, 512, 512)
    assert np.array_equal(out.images[0], astronaut_crop.image)
    assert np.array_equal(out.images[1], _crop(gray, detector).image)
    img_t, mask_t = out.as_comfy()
    assert img_t.dtype == torch.float32 and img_t.shape == (2, 512, 512, 3) and float(img_t.max()) <= 1.0
    assert torch.equal(batch, before_b) and torch.equal(masks, before_m)
    with pytest.raises(InputError, match="3 masks for 2 images"):
        FC.crop_faces(batch, torch.ones(3, 512, 512), detector=detector)


def test_inputs_are_not_mutated(detector, astronaut):
    rgba = np.dstack([astronaut, _portrait_alpha(512, 512)])
    mask = np.linspace(0, 1, 512 * 512, dtype=np.float32).reshape(512, 512)
    copies = (rgba.copy(), mask.copy())
    _crop(rgba, detector)
    _crop(rgba[:, :, :3], detector, mask=mask)
    FC.crop_face(rgba, skip_detection=True)
    assert np.array_equal(rgba, copies[0]) and np.array_equal(mask, copies[1])


def test_config_reads_sidecar_constants(public):
    c = public.meta["crop_constants"]
    cfg = crop_config_from_sidecar(dict(c, output_image_size=256, face_prob_threshold_value=0.5))
    assert cfg.output_size == 256 and cfg.prob_threshold == 0.5
    assert cfg.face_size == c["TRAINING_SET_FACE_SIZE"] and list(cfg.face_center) == c["TRAINING_SET_FACE_CENTER"]
    assert json.loads(json.dumps(c))["background_color"] == list(cfg.background_color)


def test_lower_threshold_also_lowers_mtcnn_stage_thresholds(detector):
    from facelift_models.face.mtcnn import MTCNNConfig

    official = MTCNNConfig()
    assert FC._detector_config_for(official, 0.8) is official  # official settings untouched
    assert FC._detector_config_for(official, 0.5).thresholds == (0.5, 0.5, 0.5)
    assert FC._detector_config_for(official, 0.65).thresholds == (0.6, 0.65, 0.65)


# ----------------------------------------------------------------------------------------------- on_no_face
def _cat512():
    return np.asarray(Image.fromarray(skimage_data.chelsea()).resize((512, 512), Image.BICUBIC))


def test_on_no_face_skip_drops_the_photo_and_reports_it(detector, astronaut, astronaut_crop):
    batch = torch.from_numpy(np.stack([astronaut, _cat512(), astronaut]).astype(np.float32) / 255.0)
    seen = []
    out = FC.crop_faces(batch, detector=detector, on_no_face="skip", background="keep",
                        progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert out.images.shape == (2, 512, 512, 3) and out.indices == [0, 2]
    assert [i for i, _ in out.skipped] == [1] and "No face detected" in out.skipped[0][1]
    assert out.notes == ["photo 2: no face found, skipped"]
    assert np.array_equal(out.images[0], astronaut_crop.image) and np.array_equal(out.images[1], astronaut_crop.image)
    # The default still fails the whole batch, and a single crop_face cannot skip.
    with pytest.raises(NoFaceError, match="1 of 3"):
        FC.crop_faces(batch, detector=detector, background="keep")
    with pytest.raises(NoFaceError):
        _crop(_cat512(), detector, on_no_face="skip")


def test_on_no_face_skip_of_every_photo_is_an_error(detector):
    with pytest.raises(NoFaceError, match="any of the 2 photos"):
        FC.crop_faces(np.stack([_cat512(), _cat512()]), detector=detector, on_no_face="skip", background="keep")


def test_on_no_face_official_is_the_cli_lanczos_resize(detector):
    cat = skimage_data.chelsea()
    res = _crop(cat, detector, on_no_face="official")
    assert res.info["mode"] == "official_fallback" and "No face detected" in res.info["no_face"]
    assert res.box is None and res.image.shape == (512, 512, 3)
    exp = np.asarray(Image.fromarray(cat).resize((512, 512), Image.LANCZOS))
    assert np.array_equal(res.image, exp)
    # With a matte the background-free image is resized (LANCZOS) and goes on white; the mask follows it.
    alpha = _portrait_alpha(*cat.shape[:2])
    res = FC.crop_face(np.dstack([cat, alpha]), detector=detector, on_no_face="official")
    rgba = Image.fromarray(np.dstack([cat, alpha]), "RGBA").resize((512, 512), Image.LANCZOS)
    on_white = Image.alpha_composite(Image.new("RGBA", (512, 512), (255, 255, 255)), rgba).convert("RGB")
    assert np.array_equal(res.image, np.asarray(on_white))
    assert res.info["background_from"] == "alpha" and res.mask.min() < 0.01 and res.mask.max() > 0.99
    with pytest.raises(InputError, match="on_no_face"):
        FC.FaceCropConfig(on_no_face="ignore")
