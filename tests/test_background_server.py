"""Background removal and on_no_face in the real ComfyUI server: the shipped photo workflow with U²-Net (a tiny
random ONNX model with U²-Net's signature in models/facelift/u2net/), the missing-weights error in /history and
recovery, the MASK / alpha / U²-Net choice and skipping photos without a face in a batch."""

from __future__ import annotations

import json
import shutil
import uuid

import numpy as np
import pytest
from PIL import Image

from tests import facelift_server_helpers as H

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def tiny(comfy_server, comfy_models_dir):
    facelift = H.ensure_tiny_models(comfy_models_dir)
    H.upload_portrait(comfy_server.client())
    return facelift


def _run(comfy, wf, timeout=600):
    return comfy.run(H.unique_prefixes(wf), timeout=timeout)


def _crop_info(res, node="3"):
    return json.loads(res.outputs[node]["text"][0])


def _crop_only(image_node: dict, **crop_inputs) -> dict:
    inputs = {"image": ["1", 0], "mask_is_foreground": False, "threshold": 0.8, "face": "largest",
              "skip_detection": False, "background": "auto", "on_no_face": "error", **crop_inputs}
    return {"1": image_node,
            "3": {"class_type": "FaceLiftFaceCrop", "inputs": inputs},
            "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "FaceLift/bg"}}}


def test_shipped_photo_workflow_removes_the_background(comfy, tiny):
    wf = H.load_api_workflow("facelift_photo_to_head_api.json", H.FAST_PHOTO)
    assert wf["3"]["inputs"]["background"] == "auto"  # what the shipped workflow does
    res = _run(comfy, wf)
    assert res.status == "success", H.error_text(res)
    info = _crop_info(res)
    assert info["background_from"] == "u2net"  # astronaut.png has no alpha: U²-Net ran
    crop = H.array(H.image_of(comfy, res.outputs["10"]["images"][0])).astype(int)
    # The tiny model's matte keeps the middle (head) and drops the corners: the studio background went white.
    assert (crop[:40, :40] >= 250).all() and (crop[:40, -40:] >= 250).all()
    assert (crop[200:300, 200:300] < 250).any()
    keep = _run(comfy, {**wf, "3": {**wf["3"], "inputs": {**wf["3"]["inputs"], "background": "keep"}}})
    assert keep.status == "success", H.error_text(keep)
    assert _crop_info(keep)["background_from"] is None
    kept = H.array(H.image_of(comfy, keep.outputs["10"]["images"][0])).astype(int)
    white = lambda im: (im >= 250).all(-1).mean()  # noqa: E731
    assert white(crop) > white(kept) + 0.1, (white(crop), white(kept))  # the grey studio stays with "keep"


def test_missing_u2net_is_reported_in_history_and_the_next_prompt_succeeds(comfy, tiny):
    u2net = tiny / "u2net"
    parked = tiny.parent / f"parked_u2net_{uuid.uuid4().hex[:6]}"
    shutil.move(str(u2net), str(parked))
    try:
        res = _run(comfy, H.load_api_workflow("facelift_photo_to_head_api.json", H.FAST_PHOTO))
        assert res.status == "error"
        err = res.error
        assert err["node_type"] == "FaceLiftFaceCrop" and err["exception_type"].endswith("WeightsError")
        hist = [d for k, d in res.history["status"]["messages"] if k == "execution_error"]
        assert hist and hist[0]["exception_message"] == err["exception_message"]
        msg = err["exception_message"]
        assert "u2net/u2net.onnx is missing" in msg and str(tiny / "u2net") in msg  # file and folder
        assert "python -m facelift_models.download" in msg and "--components background" in msg  # command
        assert "Traceback" not in msg
    finally:
        shutil.move(str(parked), str(u2net))
    ok = _run(comfy, H.load_api_workflow("facelift_photo_to_head_api.json", H.FAST_PHOTO))
    assert ok.status == "success", H.error_text(ok)
    assert _crop_info(ok)["background_from"] == "u2net"


def test_mask_alpha_u2net_choice_in_the_node(comfy, tiny, tmp_path):
    astro = np.asarray(Image.open(H.EXAMPLE_PORTRAIT).convert("RGB"))
    yy, xx = np.mgrid[0:512, 0:512]
    alpha = np.clip((1.2 - ((xx - 230) / 180) ** 2 - ((yy - 230) / 280) ** 2) * 765, 0, 255).astype(np.uint8)
    p = tmp_path / f"rgba_{uuid.uuid4().hex[:6]}.png"
    Image.fromarray(np.dstack([astro, alpha]), "RGBA").save(p)
    name = comfy.upload_image(p)
    load = {"class_type": "LoadImage", "inputs": {"image": name}}
    # Load Image hands out RGB + MASK (1 - alpha); Join Image with Alpha makes an RGBA IMAGE of them.
    rgba = {"class_type": "JoinImageWithAlpha", "inputs": {"image": ["0", 0], "alpha": ["0", 1]}}
    cases = {  # (image, background, connect Load Image's MASK) -> matte used
        ("rgb", "auto", False): "u2net", ("rgb", "u2net", False): "u2net", ("rgb", "keep", False): None,
        ("rgb", "auto", True): "mask", ("rgb", "u2net", True): "mask", ("rgb", "keep", True): "mask",
        ("rgba", "auto", False): "alpha", ("rgba", "u2net", False): "u2net", ("rgba", "keep", False): "alpha",
        ("rgba", "auto", True): "mask", ("rgba", "u2net", True): "mask",
    }
    for (kind, mode, with_mask), expect in cases.items():
        wf = {"0": load, **_crop_only(load if kind == "rgb" else rgba, background=mode)}
        if kind == "rgb":
            wf["1"] = {**load}
        if with_mask:
            wf["3"]["inputs"]["mask"] = ["0", 1]
        res = _run(comfy, wf)
        assert res.status == "success", (kind, mode, with_mask, H.error_text(res))
        assert _crop_info(res)["background_from"] == expect, (kind, mode, with_mask)
    # The mask output is the matte used: with the MASK connected, the alpha of the file (framed like the crop).
    wf = {"0": load, **_crop_only(rgba, background="u2net", threshold=0.79)}  # not a cached repeat of a case above
    wf["3"]["inputs"]["mask"] = ["0", 1]
    wf["5"] = {"class_type": "MaskToImage", "inputs": {"mask": ["3", 1]}}
    wf["6"] = {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "FaceLift/bgmask"}}
    res = _run(comfy, wf)
    from facelift_models.face import crop as FC

    info = _crop_info(res)
    framed = FC.crop_with_box(astro, info["box"], mask=alpha.astype(np.float32) / 255.0).mask
    got = H.array(H.image_of(comfy, res.outputs["6"]["images"][0]))[..., 0].astype(int)
    assert np.abs(got - np.rint(framed * 255)).max() <= 1  # 8-bit PNG of the float mask


def test_on_no_face_skip_drops_the_photo_in_a_batch(comfy, tiny, tmp_path):
    from skimage import data

    p = tmp_path / f"cat_{uuid.uuid4().hex[:6]}.png"
    Image.fromarray(data.chelsea()).resize((512, 512)).save(p)
    cat = comfy.upload_image(p)
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": H.PORTRAIT_NAME}},
              "2": {"class_type": "LoadImage", "inputs": {"image": cat}},
              "5": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
              "6": {"class_type": "ImageBatch", "inputs": {"image1": ["5", 0], "image2": ["1", 0]}}}
    wf = {**prompt, **_crop_only({"class_type": "LoadImage", "inputs": {"image": H.PORTRAIT_NAME}},
                                 background="keep", on_no_face="skip")}
    wf["3"]["inputs"]["image"] = ["6", 0]
    res = _run(comfy, wf)
    assert res.status == "success", H.error_text(res)
    assert len(res.outputs["4"]["images"]) == 2  # astronaut, (cat skipped), astronaut
    infos = _crop_info(res)
    assert [i["photo"] for i in infos] == [1, 2, 3]
    assert infos[1]["skipped"] == "photo 2: no face found, skipped" and "box" in infos[0]
    # Every photo without a face: a clear error, not an empty batch.
    only_cat = _crop_only({"class_type": "LoadImage", "inputs": {"image": cat}}, background="keep",
                          on_no_face="skip")
    bad = _run(comfy, only_cat)
    assert bad.status == "error" and bad.error["exception_type"].endswith("NoFaceError")
    assert "any of the 1 photo" in bad.error["exception_message"]
    # official: the CLI's fallback, a 512² resize instead of an error.
    off = _run(comfy, _crop_only({"class_type": "LoadImage", "inputs": {"image": cat}}, on_no_face="official"))
    assert off.status == "success", H.error_text(off)
    assert _crop_info(off)["mode"] == "official_fallback" and _crop_info(off)["background_from"] == "u2net"
