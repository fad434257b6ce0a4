"""A FaceLift GLB in ComfyUI's own Preview 3D node, in headless Chromium (WebGL through SwiftShader): the node is
executed by the server, its three.js viewer loads the file from the output folder, and the screenshot of the
viewer shows the mesh in its vertex colours, with no console errors."""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness import comfy_host
from harness.preview3d_browser import SWIFTSHADER_ARGS

pytestmark = [pytest.mark.server, pytest.mark.browser]

# WebGL without a GPU: Chromium's software rasteriser (the graph-editor helper's --disable-gpu would turn it off)
WEBGL_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"] + SWIFTSHADER_ARGS


def _preview_graph(model_file: str) -> dict:
    return {"last_node_id": 1, "last_link_id": 0, "links": [], "groups": [], "config": {}, "version": 0.4,
            "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}},
            "nodes": [{"id": 1, "type": "Preview3D", "pos": [40, 40], "size": [700, 700], "flags": {}, "order": 0,
                       "mode": 0, "inputs": [], "outputs": [], "properties": {"Node name for S&R": "Preview3D"},
                       "widgets_values": [model_file]}]}


def _write_sphere_glb(path) -> None:
    """A two-colour sphere (red top, blue bottom) meshed from Gaussians and written by the pack's writer."""
    from facelift_models.formats.mesh import write_mesh
    from facelift_models.mesh import gaussians_to_mesh
    from harness.mesh_shapes import splat, two_colour_sphere

    shape = two_colour_sphere(0.4, top=(0.9, 0.1, 0.1), bottom=(0.1, 0.2, 0.9))
    write_mesh(gaussians_to_mesh(splat(shape, 20_000), resolution=64, target_faces=4000), path)


def test_glb_shows_in_preview_3d(comfy_server, tmp_path):
    comfy_host.require_browser()
    from playwright.sync_api import sync_playwright
    from PIL import Image
    import requests

    rel = "FaceLift/browser_sphere_00001_.glb"
    _write_sphere_glb(comfy_server.output_dir / rel)
    base = comfy_server.url
    requests.post(base + "/settings", json=comfy_host.FRONTEND_SETTINGS, timeout=30).raise_for_status()
    errors: list = []
    requests_seen: list[str] = []
    shot = tmp_path / "preview3d.png"
    from tests.conftest import artifacts_dir

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=comfy_host.chromium_path(), headless=True, args=WEBGL_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.add_init_script("localStorage.setItem('vueNodesBannerDismissed', 'true')")
            page.on("console", lambda m: errors.append(comfy_host.BrowserError(m.text, (m.location or {}).get("url", "")))
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(comfy_host.BrowserError(f"uncaught: {e}")))
            page.on("request", lambda r: requests_seen.append(r.url))
            page.goto(base + "/", wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_function("() => window.app && window.app.graph && window.LiteGraph && "
                                   "Object.keys(window.LiteGraph.registered_node_types || {}).length > 50",
                                   timeout=120_000)
            page.wait_for_timeout(1000)
            errors[:] = []  # start-up noise of the bare frontend is not this test's business
            assert page.evaluate("() => !!document.createElement('canvas').getContext('webgl2')"), \
                "no WebGL in this Chromium: Preview 3D cannot render"
            page.evaluate("async (wf) => { await window.app.loadGraphData(wf, true, true, null, "
                          "{showMissingNodesDialog: false, showMissingModelsDialog: false}); }", _preview_graph(rel))
            page.wait_for_timeout(1500)
            n_before = len(requests_seen)
            page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")  # the Run button
            # the server runs Preview 3D; its onExecuted hands the path to the viewer, which fetches the file
            deadline = time.time() + 120
            while time.time() < deadline and not any(
                    "browser_sphere_00001_.glb" in u for u in requests_seen[n_before:]):
                page.wait_for_timeout(250)
            page.wait_for_timeout(4000)  # let three.js parse the file and render a few frames
            canvases = page.query_selector_all("canvas")
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    (artifacts_dir() / "preview3d_glb.png").write_bytes(shot.read_bytes())
    fetched = [u for u in requests_seen[n_before:] if "browser_sphere_00001_.glb" in u]
    assert fetched and all("type=output" in u and "subfolder=FaceLift" in u for u in fetched), requests_seen[-20:]
    relevant = [str(e) for e in errors if not e.environment_noise]
    assert relevant == [], relevant
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    reddish = ((r > 120) & (r > g + 60) & (r > b + 60)).sum()
    bluish = ((b > 120) & (b > r + 60) & (b > g + 40)).sum()
    assert len(canvases) >= 2
    assert reddish > 500 and bluish > 500, (reddish, bluish)  # the sphere's two vertex colours are on screen
