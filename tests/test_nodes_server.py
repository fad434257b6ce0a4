"""The FaceLift nodes inside a real ComfyUI 0.3.75 server, driven through its HTTP/websocket API.

Weights are tiny random networks written in the official on-disk layout (harness/tiny_models.py) into the session's
models folder, which the server reads through --extra-model-paths-config. They prove the plumbing: schemas,
loading through folder_paths, the shared model cache, progress, interruption and error reporting.
"""

from __future__ import annotations

import shutil
import stat
import time
import uuid

import numpy as np
import pytest

from facelift_models.atomic_io import default_file_mode
from tests import facelift_server_helpers as H

pytestmark = pytest.mark.server

OUR_NODES = {"FaceLiftLoadModels", "FaceLiftFaceCrop", "FaceLiftMultiViewSampler", "FaceLiftReconstruct",
             "FaceLiftCameras", "FaceLiftRender", "FaceLiftSaveGaussians", "FaceLiftLoadPLY"}


@pytest.fixture(scope="module")
def tiny(comfy_server, comfy_models_dir):
    facelift = H.ensure_tiny_models(comfy_models_dir)
    H.upload_portrait(comfy_server.client())
    return facelift


def _options(spec) -> list:
    """Choices of a combo input in /object_info (V3 nodes: ["COMBO", {"options": [...]}], V1: [[...], {...}])."""
    return spec[1]["options"] if spec[0] == "COMBO" else spec[0]


def _run(comfy, wf, timeout=600):
    return comfy.run(H.unique_prefixes(wf), timeout=timeout)


# ------------------------------------------------------------------------------------------------ schemas
def test_nodes_registered_with_schema(comfy, tiny):
    info = comfy.object_info()
    assert OUR_NODES <= set(info), OUR_NODES - set(info)
    loader = info["FaceLiftLoadModels"]
    mv_opts = _options(loader["input"]["required"]["mv_model"])
    gs_opts = _options(loader["input"]["required"]["gslrm"])
    assert mv_opts[0] == "mvdiffusion/pipeckpts" and "gslrm/ckpt_0000000000021125.pt" in gs_opts
    assert loader["output"] == ["FACELIFT_MV_MODEL", "FACELIFT_GSLRM"]
    sampler = info["FaceLiftMultiViewSampler"]["input"]["required"]
    assert sampler["seed"][1]["default"] == 4 and sampler["steps"][1]["default"] == 50
    assert sampler["guidance"][1]["default"] == 3.0 and sampler["eta"][1]["default"] == 1.0
    from facelift_models.multiview.sampler import SCHEDULERS

    assert _options(sampler["scheduler"]) == list(SCHEDULERS), "node scheduler list out of sync with mv_sampler"
    assert info["FaceLiftMultiViewSampler"]["output"] == ["IMAGE", "FACELIFT_CAMERAS"]
    assert info["FaceLiftReconstruct"]["output"][0] == "FACELIFT_GAUSSIANS"
    assert info["FaceLiftRender"]["output"] == ["IMAGE", "MASK"]
    assert info["FaceLiftSaveGaussians"]["output_node"] is True
    for node in OUR_NODES:
        assert info[node]["category"] == "FaceLift"


def test_new_checkpoint_appears_in_dropdown(comfy, tiny):
    extra = tiny / "gslrm" / "extra_copy.safetensors"
    try:
        extra.write_bytes(b"x")
        opts = _options(comfy.object_info("FaceLiftLoadModels")["input"]["required"]["gslrm"])
        assert "gslrm/extra_copy.safetensors" in opts
    finally:
        extra.unlink(missing_ok=True)


# -------------------------------------------------------------------------------------- photo -> 3D head
@pytest.fixture(scope="module")
def first_run(comfy_server, tiny):
    comfy = comfy_server.client()
    comfy.http.post(comfy.base_url + "/facelift/cache/clear", timeout=30)  # no model resident: the run must load
    before = comfy.get_json("/facelift/cache")["loads"]
    t0 = time.perf_counter()
    res = _run(comfy, H.load_api_workflow("facelift_photo_to_head_api.json", H.FAST_PHOTO))
    return res, before, time.perf_counter() - t0


def test_photo_to_head_workflow_runs(comfy, first_run):
    res, _, seconds = first_run
    assert res.status == "success", H.error_text(res)
    out = res.outputs

    crop = out["10"]["images"]
    assert len(crop) == 1 and H.image_of(comfy, crop[0]).size == (512, 512)

    views = out["9"]["images"]
    assert len(views) == 6
    sizes = {H.image_of(comfy, v).size for v in views}
    assert sizes == {(16, 16)}, sizes  # tiny model: 8x8 latents x VAE factor 2

    saved = out["6"]["facelift_files"][0]
    assert out["6"]["text"][0].endswith(".ply") and out["6"]["text"][0].startswith("FaceLift/head_")
    props, count = H.read_ply_header(comfy.view(saved["filename"], saved["subfolder"]))
    from facelift_models.formats.ply import PROPERTY_NAMES

    assert props == list(PROPERTY_NAMES)
    assert 0 < count <= 6 * 16 * 16 + 2 and count == saved["gaussians"]

    webp = out["8"]["images"][0]
    anim = H.image_of(comfy, webp)
    assert anim.size == (96, 96) and getattr(anim, "n_frames", 1) == 8

    mp4 = out["12"]["images"][0]
    data = comfy.view(mp4["filename"], mp4.get("subfolder", ""))
    assert mp4["filename"].endswith(".mp4") and data[4:8] == b"ftyp" and len(data) > 1000

    steps = H.FAST_PHOTO["4"]["steps"]
    sampler_progress = H.progress_of(res, "4")
    assert [v for v, _ in sampler_progress][-1] == steps and {m for _, m in sampler_progress} == {steps}
    assert H.progress_of(res, "7"), "render sent no progress"
    print(f"tiny photo->head workflow: {seconds:.1f} s")


def test_second_run_reuses_cached_weights_and_identical_inputs_give_identical_outputs(comfy, first_run):
    res1, before, _ = first_run
    assert res1.status == "success", H.error_text(res1)
    loads_after_first = comfy.get_json("/facelift/cache")["loads"]
    assert loads_after_first.get("mv", 0) == before.get("mv", 0) + 1
    assert loads_after_first.get("gslrm", 0) == before.get("gslrm", 0) + 1

    # Drop ComfyUI's cached node outputs so every node runs again with identical inputs.
    comfy.http.post(comfy.base_url + "/free", json={"unload_models": False, "free_memory": True}, timeout=30)
    time.sleep(2)  # the worker applies the flag when it wakes up
    wf = H.load_api_workflow("facelift_photo_to_head_api.json", H.FAST_PHOTO)
    res2 = _run(comfy, wf)
    assert res2.status == "success", H.error_text(res2)
    executed = {m["node"] for m in res2.of_type("executing") if m.get("node")}
    assert {"4", "5"} <= executed, f"sampler/reconstruct did not run again: {executed}"
    assert comfy.get_json("/facelift/cache")["loads"] == loads_after_first, "weights were loaded again"

    ply1 = comfy.view(res1.outputs["6"]["facelift_files"][0]["filename"], "FaceLift")
    ply2 = comfy.view(res2.outputs["6"]["facelift_files"][0]["filename"], "FaceLift")
    assert ply1 == ply2, "identical inputs gave different Gaussians"
    v1 = [H.array(H.image_of(comfy, r)) for r in res1.outputs["9"]["images"]]
    v2 = [H.array(H.image_of(comfy, r)) for r in res2.outputs["9"]["images"]]
    assert all(np.array_equal(a, b) for a, b in zip(v1, v2))

    # A different seed changes the views (the seed is really used) and still loads nothing.
    wf3 = H.load_api_workflow("facelift_photo_to_head_api.json", {**H.FAST_PHOTO, "4": {"steps": 4, "seed": 5}})
    res3 = _run(comfy, wf3)
    assert res3.status == "success", H.error_text(res3)
    v3 = [H.array(H.image_of(comfy, r)) for r in res3.outputs["9"]["images"]]
    assert not all(np.array_equal(a, b) for a, b in zip(v1, v3))
    assert comfy.get_json("/facelift/cache")["loads"] == loads_after_first


# ------------------------------------------------------------------------------- multi-view photos -> 3D
def test_multiview_photos_workflow_runs(comfy, tiny):
    H.upload_views(comfy)
    res = _run(comfy, H.load_api_workflow("facelift_multiview_photos_api.json", H.FAST_MULTIVIEW))
    assert res.status == "success", H.error_text(res)
    saved = res.outputs["16"]["facelift_files"][0]
    props, count = H.read_ply_header(comfy.view(saved["filename"], saved["subfolder"]))
    assert "f_dc_0" in props and 0 < count <= 6 * 32 * 32 + 2
    renders = res.outputs["18"]["images"]
    assert len(renders) == 6 and {H.image_of(comfy, r).size for r in renders} == {(48, 48)}
    mesh_path = res.outputs["20"]["text"][0]  # the mesh branch: Save Mesh -> Preview 3D
    assert mesh_path.endswith(".glb") and res.outputs["21"]["result"][0] == mesh_path
    assert comfy.view(mesh_path.rsplit("/", 1)[1], mesh_path.rsplit("/", 1)[0])[:4] == b"glTF"


def test_user_cameras_json(comfy, tiny):
    from facelift_models.cameras import official_views

    cams = official_views(32)
    import json

    payload = json.dumps({"c2w": cams.c2w.tolist(), "fxfycxcy": cams.fxfycxcy.tolist(), "width": 32, "height": 32})
    wf = H.load_api_workflow("facelift_multiview_photos_api.json", H.FAST_MULTIVIEW)
    wf["14"]["inputs"].update(mode="json", cameras_json=payload)
    H.upload_views(comfy)
    res = _run(comfy, wf)
    assert res.status == "success", H.error_text(res)

    wf["14"]["inputs"]["cameras_json"] = json.dumps({"c2w": [[[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                                              [0, 0, 0, 1]]] * 6,
                                                     "fxfycxcy": [[30, 30, 16, 16]] * 6, "width": 32, "height": 32})
    bad = _run(comfy, wf)
    assert bad.status == "error" and bad.error["node_type"] == "FaceLiftCameras"
    assert "rigid" in bad.error["exception_message"]


# ------------------------------------------------------------------------------------ save / load / render
def test_save_formats_and_load_back(comfy, comfy_server, first_run):
    res, _, _ = first_run
    assert res.status == "success", H.error_text(res)
    rel = res.outputs["6"]["text"][0]
    count = res.outputs["6"]["facelift_files"][0]["gaussians"]
    from facelift_models.formats import export

    formats = ["ply (official FaceLift)", "ply (standard 3DGS)", "splat"] + (["spz"] if export.spz_available()
                                                                            else [])
    prompt = {"1": {"class_type": "FaceLiftLoadPLY", "inputs": {"path": rel, "axes": "auto"}}}
    for i, fmt in enumerate(formats):
        prompt[f"s{i}"] = {"class_type": "FaceLiftSaveGaussians",
                           "inputs": {"gaussians": ["1", 0], "filename_prefix": f"FaceLift/fmt{i}", "format": fmt,
                                      "preview": False}}
    prompt["r"] = {"class_type": "FaceLiftRender",
                   "inputs": {"gaussians": ["1", 0], "preset": "orbit", "size": 40, "frames": 1, "azimuth": 30.0,
                              "elevation": 10.0, "radius": 2.7, "fov": 50.0, "background": "black"}}
    prompt["p"] = {"class_type": "SaveImage", "inputs": {"images": ["r", 0], "filename_prefix": "FaceLift/orbit"}}
    prompt["m"] = {"class_type": "MaskToImage", "inputs": {"mask": ["r", 1]}}
    prompt["pm"] = {"class_type": "SaveImage", "inputs": {"images": ["m", 0], "filename_prefix": "FaceLift/mask"}}
    out = _run(comfy, prompt)
    assert out.status == "success", H.error_text(out)
    for i, fmt in enumerate(formats):
        f = out.outputs[f"s{i}"]["facelift_files"][0]
        data = comfy.view(f["filename"], f["subfolder"])
        assert f["gaussians"] == count
        if fmt.startswith("ply"):
            props, n = H.read_ply_header(data)
            assert n == count
            assert ("red" in props) == fmt.startswith("ply (official")
        elif fmt == "splat":
            assert len(data) == 32 * count
        # Written like any other output: the mode a plain open() gives under the umask the server inherited from
        # this process (not mkstemp's 0600).
        path = comfy_server.output_dir / f["subfolder"] / f["filename"]
        assert stat.S_IMODE(path.stat().st_mode) == default_file_mode(), (fmt, oct(path.stat().st_mode))
    assert {H.image_of(comfy, r).size for r in out.outputs["p"]["images"]} == {(40, 40)}


def test_face_crop_uses_load_image_alpha_mask(comfy, tiny, tmp_path):
    from PIL import Image

    rgba = np.array(Image.open(H.EXAMPLE_PORTRAIT).convert("RGBA"))
    rgba[330:, :, 3] = 0  # everything below the shoulders is transparent (the background to be whitened)
    p = tmp_path / f"cutout_{uuid.uuid4().hex[:6]}.png"
    Image.fromarray(rgba, "RGBA").save(p)
    name = comfy.upload_image(p)
    prompt = _crop_prompt(name)
    prompt["2"]["inputs"]["mask"] = ["1", 1]
    prompt["4"] = {"class_type": "MaskToImage", "inputs": {"mask": ["2", 1]}}
    prompt["5"] = {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "FaceLift/cropmask"}}
    res = _run(comfy, prompt)
    assert res.status == "success", H.error_text(res)
    crop = H.array(H.image_of(comfy, res.outputs["3"]["images"][0])).astype(int)
    mask = H.array(H.image_of(comfy, res.outputs["5"]["images"][0]))[..., 0]
    assert crop.shape == (512, 512, 3) and mask.shape == (512, 512)
    background = mask < 8
    assert background.mean() > 0.05 and (mask > 247).mean() > 0.3
    assert (crop[background] >= 250).all(), "transparent parts of the photo must become white"


# ------------------------------------------------------------------------------------------------- errors
def _crop_prompt(image_name: str) -> dict:
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
            "2": {"class_type": "FaceLiftFaceCrop",
                  "inputs": {"image": ["1", 0], "mask_is_foreground": False, "threshold": 0.8, "face": "largest",
                             "skip_detection": False, "background": "keep"}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "FaceLift/err"}}}


def _reconstruct_prompt(gslrm_name: str) -> dict:
    return {"1": {"class_type": "LoadImage", "inputs": {"image": H.PORTRAIT_NAME}},
            "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bilinear",
                                                         "width": 16, "height": 16, "crop": "center"}},
            "3": {"class_type": "RepeatImageBatch", "inputs": {"image": ["2", 0], "amount": 6}},
            "4": {"class_type": "FaceLiftLoadModels",
                  "inputs": {"mv_model": "mvdiffusion/pipeckpts", "gslrm": gslrm_name, "precision": "auto",
                             "device": "auto", "download_missing": False, "accept_licence": False}},
            "5": {"class_type": "FaceLiftReconstruct", "inputs": {"gslrm": ["4", 1], "views": ["3", 0],
                                                                  "filters": "none"}},
            "6": {"class_type": "FaceLiftSaveGaussians",
                  "inputs": {"gaussians": ["5", 0], "filename_prefix": "FaceLift/err", "preview": False,
                             "format": "ply (official FaceLift)"}}}


def _assert_recovers(comfy):
    ok = _run(comfy, _reconstruct_prompt("gslrm/ckpt_0000000000021125.pt"))
    assert ok.status == "success", H.error_text(ok)
    assert ok.outputs["6"]["facelift_files"][0]["gaussians"] == 6 * 16 * 16 + 2  # filters "none": all kept


def test_non_face_image_gives_clear_error(comfy, tiny, tmp_path):
    from skimage import data

    from PIL import Image

    p = tmp_path / f"cat_{uuid.uuid4().hex[:6]}.png"
    Image.fromarray(data.chelsea()).save(p)
    name = comfy.upload_image(p)
    res = _run(comfy, _crop_prompt(name))
    assert res.status == "error"
    err = res.error
    assert err["node_type"] == "FaceLiftFaceCrop"
    assert err["exception_type"].endswith("NoFaceError")
    assert "face" in err["exception_message"].lower() and "threshold" in err["exception_message"].lower()
    hist = [d for k, d in res.history["status"]["messages"] if k == "execution_error"]
    assert hist and hist[0]["exception_message"] == err["exception_message"]
    _assert_recovers(comfy)


def test_missing_weights_give_clear_error(comfy, tiny):
    gslrm_dir = tiny / "gslrm"
    parked = tiny.parent / f"parked_gslrm_{uuid.uuid4().hex[:6]}"
    shutil.move(str(gslrm_dir), str(parked))
    try:
        res = _run(comfy, _reconstruct_prompt("gslrm/ckpt_0000000000021125.pt"))
        assert res.status == "error"
        msg = res.error["exception_message"]
        assert res.error["node_type"] == "FaceLiftReconstruct"
        assert res.error["exception_type"].endswith("WeightsError")
        assert "gslrm/ckpt_0000000000021125.pt" in msg and "wlyu/OpenFaceLift" in msg
        assert str(tiny) in msg  # says which folder it looked in
        assert "Traceback" not in msg
    finally:
        shutil.move(str(parked), str(gslrm_dir))
    _assert_recovers(comfy)


def test_download_needs_licence_opt_in(comfy, tiny):
    prompt = _reconstruct_prompt("gslrm/ckpt_0000000000021125.pt")
    prompt["4"]["inputs"].update(download_missing=True, accept_licence=False)
    res = _run(comfy, prompt)
    assert res.status == "error" and res.error["node_type"] == "FaceLiftLoadModels"
    msg = res.error["exception_message"]
    assert "accept_licence" in msg and "Adobe Research License" in msg and "non-commercial" in msg


def test_download_offline_gives_clear_error(comfy, tiny):
    # The test server runs with HF_HUB_OFFLINE=1 and the tiny files differ in size from the official ones, so the
    # opt-in download has work to do and must refuse it with the manual steps instead of hanging or crashing.
    prompt = _reconstruct_prompt("gslrm/ckpt_0000000000021125.pt")
    prompt["4"]["inputs"].update(download_missing=True, accept_licence=True)
    res = _run(comfy, prompt)
    assert res.status == "error" and res.error["node_type"] == "FaceLiftLoadModels"
    msg = res.error["exception_message"]
    assert "HF_HUB_OFFLINE" in msg and "wlyu/OpenFaceLift" in msg
    _assert_recovers(comfy)


def test_corrupted_checkpoint_gives_clear_error(comfy, tiny):
    good = (tiny / "gslrm" / "ckpt_0000000000021125.pt").read_bytes()
    bad = tiny / "gslrm" / f"corrupt_{uuid.uuid4().hex[:6]}.pt"
    bad.write_bytes(good[: len(good) // 2])  # a truncated download
    try:
        res = _run(comfy, _reconstruct_prompt(f"gslrm/{bad.name}"))
        assert res.status == "error"
        assert res.error["node_type"] == "FaceLiftReconstruct"
        assert res.error["exception_type"].endswith("WeightsError")
        msg = res.error["exception_message"]
        assert bad.name in msg and ("corrupt" in msg or "truncated" in msg)
    finally:
        bad.unlink(missing_ok=True)
    _assert_recovers(comfy)


def test_sampler_sends_step_previews(comfy, tiny):
    import json

    import websocket

    steps = 3
    wf = H.unique_prefixes(H.load_api_workflow("facelift_photo_to_head_api.json",
                                               {**H.FAST_PHOTO,
                                                "4": {"steps": steps, "seed": 1000 + int(time.time()) % 1000}}))
    ws_url = comfy.base_url.replace("http://", "ws://") + f"/ws?clientId={comfy.client_id}"
    ws = websocket.create_connection(ws_url, timeout=30)
    previews, current = 0, None
    try:
        pid = comfy.queue_prompt(wf)
        while True:
            raw = ws.recv()
            if isinstance(raw, bytes):
                if current == "4" and int.from_bytes(raw[:4], "big") == 1:  # PREVIEW_IMAGE
                    previews += 1
                continue
            msg = json.loads(raw)
            d = msg.get("data") or {}
            if msg["type"] == "executing" and d.get("prompt_id") == pid:
                current = d.get("node")
                if current is None:
                    break
            if msg["type"] in ("execution_error", "execution_interrupted") and d.get("prompt_id") == pid:
                pytest.fail(str(d)[:2000])
    finally:
        ws.close()
    assert previews == steps


def test_cpu_device_and_precision_are_separate_cache_entries(comfy, tiny):
    before = comfy.get_json("/facelift/cache")["loads"].get("gslrm", 0)
    prompt = _reconstruct_prompt("gslrm/ckpt_0000000000021125.pt")
    prompt["4"]["inputs"]["device"] = "cpu"
    res = _run(comfy, prompt)
    assert res.status == "success", H.error_text(res)
    stats = comfy.get_json("/facelift/cache")
    assert stats["loads"]["gslrm"] == before + 1
    assert any(e["kind"] == "gslrm" and e["device"] == "cpu" for e in stats["cached"])
    res2 = _run(comfy, {**prompt, "6": {**prompt["6"], "inputs": {**prompt["6"]["inputs"], "format": "splat"}}})
    assert res2.status == "success" and comfy.get_json("/facelift/cache")["loads"]["gslrm"] == before + 1


def test_cache_route_counts_loads_and_clears(comfy, tiny):
    stats = comfy.get_json("/facelift/cache")
    assert set(stats) >= {"loads", "cached", "roots"}
    assert str(tiny) in stats["roots"]
    assert {e["kind"] for e in stats["cached"]} >= {"mv", "gslrm"}
    r = comfy.http.post(comfy.base_url + "/facelift/cache/clear", timeout=30)
    assert r.status_code == 200 and r.json()["cleared"] >= 2
    assert comfy.get_json("/facelift/cache")["cached"] == []
    _assert_recovers(comfy)  # loads again after a clear
    after = comfy.get_json("/facelift/cache")
    assert after["loads"]["gslrm"] == stats["loads"]["gslrm"] + 1


# ---------------------------------------------------------------------------------------------- interrupt
def test_interrupt_stops_sampling_within_a_step(comfy, tiny):
    steps = 400
    wf = H.unique_prefixes(H.load_api_workflow("facelift_photo_to_head_api.json",
                                               {"4": {"steps": steps, "seed": int(time.time()) % 100000}}))
    seen = []
    interrupted_at = []
    with comfy.connect() as watcher:
        pid = comfy.queue_prompt(wf)

        def on_message(msg):
            d = msg["data"]
            if msg["type"] == "progress" and str(d.get("node")) == "4":
                seen.append(int(d["value"]))
                if int(d["value"]) >= 3 and not interrupted_at:
                    interrupted_at.append(int(d["value"]))
                    comfy.interrupt()

        res = watcher.wait(pid, timeout=600, on_message=on_message)
    assert interrupted_at, "sampling finished before it could be interrupted"
    assert res.status == "interrupted", res.status
    stopped = res.of_type("execution_interrupted")
    assert stopped and str(stopped[-1]["node_id"]) == "4"
    # Steps still reported after the interrupt request: at most the one in flight (+1 for message latency).
    assert max(seen) <= interrupted_at[0] + 2 < steps, (interrupted_at, max(seen))
    _assert_recovers(comfy)
