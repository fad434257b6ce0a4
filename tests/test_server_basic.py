"""The pack inside a real ComfyUI server: node metadata in /object_info, an API prompt end to end, errors."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from PIL import Image

from harness.comfy_host import PromptRejected

NODE = "FaceLiftCompositeOnWhite"
W, H = 40, 24
RED = (200, 30, 10)
# Types that carry the released FaceLift weights (Adobe Research License).
WEIGHT_TYPES = {"FACELIFT_MV_MODEL", "FACELIFT_GSLRM"}


def _rgba_portrait(path) -> np.ndarray:
    """A small RGBA test picture: left third transparent, middle third half transparent, right third opaque."""
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = RED
    rgba[:, : W // 3, 3] = 0
    rgba[:, W // 3: 2 * W // 3, 3] = 128
    rgba[:, 2 * W // 3:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(path)
    return rgba


def _composite_prompt(image_name: str, prefix: str, mask_is_foreground: bool = False) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "2": {"class_type": NODE, "inputs": {"image": ["1", 0], "mask": ["1", 1],
                                             "mask_is_foreground": mask_is_foreground}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


@pytest.fixture(scope="module")
def uploaded(comfy_server, tmp_path_factory):
    src = tmp_path_factory.mktemp("img") / f"rgba_{uuid.uuid4().hex[:8]}.png"
    rgba = _rgba_portrait(src)
    return comfy_server.client().upload_image(src), rgba


def test_every_pack_node_is_documented(comfy):
    info = comfy.object_info()
    ours = {k: v for k, v in info.items() if v.get("python_module", "").endswith("comfyui-facelift")}
    assert NODE in ours
    for node_id, spec in ours.items():
        assert node_id.startswith("FaceLift"), node_id
        assert spec["category"].split("/")[0] == "FaceLift", (node_id, spec["category"])
        assert len(spec["description"]) > 40, f"{node_id} needs a description"
        for section in ("required", "optional"):
            for name, (_type, *opts) in spec["input"].get(section, {}).items():
                assert opts and opts[0].get("tooltip"), f"{node_id}.{name} has no tooltip"
        types = {t[0] for sec in ("required", "optional") for t in spec["input"].get(sec, {}).values()
                 if isinstance(t[0], str)} | set(spec["output"])
        if types & WEIGHT_TYPES:  # nodes that load or run the Adobe-licensed FaceLift weights
            desc = spec["description"]
            assert "Adobe Research License" in desc and "non-commercial" in desc, f"{node_id}: licence note"


def test_composite_node_schema(comfy):
    spec = comfy.object_info(NODE)
    assert spec["input"]["required"]["image"][0] == "IMAGE"
    assert spec["input"]["optional"]["mask"][0] == "MASK"
    assert spec["output"] == ["IMAGE"]


@pytest.mark.parametrize("mask_is_foreground", [False, True])
def test_load_composite_save_runs(comfy, comfy_server, uploaded, mask_is_foreground):
    image_name, rgba = uploaded
    prefix = f"composite_{uuid.uuid4().hex[:8]}"
    res = comfy.run(_composite_prompt(image_name, prefix, mask_is_foreground), timeout=120)
    assert res.status == "success", res.error

    progress = [m for m in res.of_type("progress") if str(m.get("node")) == "2"]
    assert progress and progress[-1]["value"] == progress[-1]["max"] == 1, res.messages
    assert any(m.get("node") == "3" for m in res.of_type("executed"))

    images = res.images("3")
    assert len(images) == 1 and images[0]["filename"].startswith(prefix)
    on_disk = comfy_server.output_dir / images[0]["subfolder"] / images[0]["filename"]
    assert on_disk.is_file()
    out = np.asarray(Image.open(on_disk).convert("RGB")).astype(np.float32)
    assert out.shape == (H, W, 3)
    assert comfy.view(images[0]["filename"], images[0]["subfolder"]) == on_disk.read_bytes()

    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    if mask_is_foreground:  # LoadImage's MASK is 1 - alpha; read as foreground, the opacity flips.
        alpha = 1.0 - alpha
    expected = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    assert np.abs(out - expected).max() <= 1.5
    assert (out[:, : W // 3] == (255 if not mask_is_foreground else np.array(RED))).all()


def test_bad_input_is_an_execution_error_and_server_recovers(comfy, uploaded):
    image_name, _ = uploaded
    bad = {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "2": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 3}},
        "3": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 2}},
        "4": {"class_type": "ImageToMask", "inputs": {"image": ["3", 0], "channel": "red"}},
        "5": {"class_type": NODE, "inputs": {"image": ["2", 0], "mask": ["4", 0], "mask_is_foreground": True}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "bad"}},
    }
    res = comfy.run(bad, timeout=120)
    assert res.status == "error"
    err = res.error
    assert err["node_type"] == NODE and err["exception_type"].endswith("InputError")
    assert "mask batch has 2 masks but the image batch has 3" in err["exception_message"]
    # The same error is kept in /history for API users who did not watch the websocket.
    hist = comfy.history(res.prompt_id)
    kinds = [k for k, _ in hist["status"]["messages"]]
    assert hist["status"]["status_str"] == "error" and "execution_error" in kinds

    prefix = f"after_error_{uuid.uuid4().hex[:8]}"
    ok = comfy.run(_composite_prompt(image_name, prefix), timeout=120)
    assert ok.status == "success", ok.error
    assert ok.images("3")[0]["filename"].startswith(prefix)


def test_invalid_prompt_is_rejected_before_running(comfy):
    with pytest.raises(PromptRejected) as e:
        comfy.queue_prompt({"1": {"class_type": NODE, "inputs": {}},
                            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}})
    assert "node_errors" in e.value.body


def test_interrupt_stops_the_node_between_images(comfy):
    # 2048 small images: one progress step each, a few seconds in all; interrupt at the first step.
    batch = 2048
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": batch,
                                                     "color": int(uuid.uuid4().int % 0xFFFFFF)}},
        "2": {"class_type": NODE, "inputs": {"image": ["1", 0], "mask_is_foreground": False}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    steps = []
    with comfy.connect() as watcher:
        prompt_id = comfy.queue_prompt(prompt)
        for msg in watcher.messages(prompt_id, timeout=120):
            if msg["type"] == "progress" and str(msg["data"].get("node")) == "2":
                if not steps:
                    comfy.interrupt(prompt_id)
                steps.append(msg["data"]["value"])
            last = msg
    assert last["type"] == "execution_interrupted" and last["data"]["node_type"] == NODE
    assert 0 < len(steps) < batch, f"{len(steps)} of {batch} images ran after the interrupt"
    prompt["1"]["inputs"]["batch_size"] = 2
    assert comfy.run(prompt, timeout=60).status == "success"
