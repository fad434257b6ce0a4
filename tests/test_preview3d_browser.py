"""FaceLift Preview 3D in the real graph editor: headless Chromium with software WebGL (SwiftShader).

A workflow (Load PLY of a synthetic head the test writes -> Preview 3D) runs from the frontend; the widget's
view must show the head where the pack's own CPU renderer puts it from the same camera, upright and not
mirrored; orbit / zoom / pan / reset must change the view as they should; the console stays clean; and no
request may leave the local server (the viewer bundle comes from the pack's files).
"""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest

from harness import comfy_host
from harness import preview3d_browser as pb
from tests.conftest import artifacts_dir

HEAD_GAUSSIANS = 20000


def _cpu_reference(g, width: int, height: int) -> np.ndarray:
    """The pack's CPU render of FaceLift Render's front camera at the widget's canvas size (50 deg across the
    shorter side, as the viewer does), on the viewer's background."""
    from facelift_models import cameras
    from facelift_models.render import render

    f = min(width, height) / (2 * math.tan(math.radians(cameras.OFFICIAL_FOV_DEG / 2)))
    hfov = math.degrees(2 * math.atan(width / (2 * f)))
    out = render(g, cameras.orbit(fov_deg=hfov, width=width, height=height),
                 background=tuple(c / 255 for c in pb.BACKGROUND))
    return (out.rgb[0].clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def _write_head(server, n: int = HEAD_GAUSSIANS):
    from facelift_models.formats import export

    g = pb.synthetic_head(n)
    name = f"facelift_synthetic_head_{uuid.uuid4().hex[:8]}.ply"
    export.export(g, server.input_dir / name)  # the official FaceLift PLY (FaceLift axes)
    return g, name


def _centroid_offset(img: np.ndarray, region: str) -> tuple[float, float]:
    """Centroid of one colour region relative to the whole head's centroid, in pixels (x right, y down)."""
    cx, cy = pb.centroid(pb.foreground(img))
    rx, ry = pb.centroid(pb.colour_mask(img, pb.COLOURS[region]))
    return rx - cx, ry - cy


@pytest.mark.browser
def test_preview3d_shows_the_head_and_reacts_to_the_mouse(comfy_server, comfy):
    comfy_host.require_browser()
    g, ply = _write_head(comfy_server)
    _, ui = pb.preview_workflow(ply)
    art = artifacts_dir()

    with pb.PreviewPage(comfy_server.url) as page:
        page.load_graph(ui)
        assert page.state() == "idle"
        page.queue()
        assert page.wait_state(("ready", "error", "no-webgl")) == "ready", page.page.inner_text(pb.WIDGET)
        first_frame = page.first_frame_ms()
        assert first_frame is not None and first_frame > 0
        print(f"\n[preview3d] {HEAD_GAUSSIANS} Gaussians: executed -> first frame {first_frame:.0f} ms")

        front = page.save_png()                       # the 'Save PNG' button: exact canvas pixels
        shot = page.screenshot_widget(art / "preview3d_widget.png")
        page.screenshot_node(art / "preview3d_node.png")  # docs/img/preview3d_widget.png is a copy of this
        canvas_shot = pb.png_to_array(page.page.locator(f"{pb.WIDGET} canvas").screenshot())

        # Visible, the right size, where the CPU renderer puts it.
        fg = pb.foreground(front)
        assert 0.12 < fg.mean() < 0.45, fg.mean()
        assert 0.12 < pb.foreground(canvas_shot).mean() < 0.45
        ref = _cpu_reference(g, front.shape[1], front.shape[0])
        from PIL import Image

        Image.fromarray(np.concatenate([front, ref], axis=1)).save(art / "preview3d_vs_cpu_render.png")
        silhouette_iou = pb.iou(fg, pb.foreground(ref))
        print(f"[preview3d] silhouette IoU with the CPU render: {silhouette_iou:.3f}")
        assert silhouette_iou >= 0.8
        # Upright and not mirrored (an upside-down or mirrored ellipsoid would still pass the IoU): the red top
        # is above the head's centre, the green patch on the subject's left shows on the image's right, the
        # blue back is hidden -- in the viewer as in the CPU render.
        for img in (front, ref):
            top_dx, top_dy = _centroid_offset(img, "top")
            left_dx, left_dy = _centroid_offset(img, "left")
            assert top_dy < -0.15 * img.shape[0] and left_dx > 0.1 * img.shape[1], (top_dy, left_dx)
            assert pb.colour_mask(img, pb.COLOURS["back"]).mean() < 0.005
        for region in ("top", "left"):
            d = np.subtract(_centroid_offset(front, region), _centroid_offset(ref, region))
            assert np.abs(d).max() < 0.03 * front.shape[1], (region, d)

        canvas_view = page.page.evaluate("() => [window.app.canvas.ds.scale, ...window.app.canvas.ds.offset]")
        # Orbit (left-drag) turns the head: the picture changes, and so does the share of the green side patch
        # (it swings into view or away) or the blue back comes into view; the head stays in the middle.
        page.drag(60, 0)
        orbited = page.save_png()
        Image.fromarray(orbited).save(art / "preview3d_orbited.png")
        changed = (np.abs(orbited.astype(int) - front.astype(int)).sum(-1) > 60).mean()
        assert changed > 0.05, changed
        green_before = pb.colour_mask(front, pb.COLOURS["left"]).mean()
        green_after = pb.colour_mask(orbited, pb.COLOURS["left"]).mean()
        blue_after = pb.colour_mask(orbited, pb.COLOURS["back"]).mean()
        assert abs(green_after - green_before) > 0.3 * green_before or blue_after > 0.01, (green_before, green_after,
                                                                                         blue_after)
        assert pb.iou(pb.foreground(orbited), fg) > 0.6

        # Reset view brings back the front view.
        page.button("Reset view").click()
        page.page.wait_for_timeout(800)
        assert pb.iou(pb.foreground(page.save_png()), fg) > 0.97

        # Wheel zooms in (the head grows); right-drag pans (the head moves right).
        page.wheel(-400)
        zoomed = page.save_png()
        assert pb.foreground(zoomed).mean() > 1.2 * fg.mean()
        page.button("Reset view").click()
        page.drag(80, 0, button="right")
        panned = page.save_png()
        shift = pb.centroid(pb.foreground(panned))[0] - pb.centroid(fg)[0]
        assert shift > 20, shift

        # The viewer kept its drags and wheel to itself: the graph canvas neither zoomed nor panned.
        assert page.page.evaluate("() => [window.app.canvas.ds.scale, ...window.app.canvas.ds.offset]") == canvas_view
        assert shot.shape[0] > 200
        assert page.capture.external_requests == [], page.capture.external_requests
        bundle = [p for p in page.capture.local_responses if p.endswith(pb.BUNDLE_PATH)]
        assert bundle and all(page.capture.local_responses[p] == 200 for p in bundle), page.capture.local_responses
        assert page.capture.relevant_errors == [], page.capture.relevant_errors
        assert page.capture.facelift_startup_errors == [], page.capture.facelift_startup_errors


@pytest.mark.browser
def test_preview3d_without_webgl_shows_the_rendered_front_view(comfy_server, comfy):
    comfy_host.require_browser()
    _, ply = _write_head(comfy_server, n=3000)
    _, ui = pb.preview_workflow(ply)

    with pb.PreviewPage(comfy_server.url, webgl=False) as page:
        assert not page.page.evaluate("() => !!document.createElement('canvas').getContext('webgl2')")
        page.load_graph(ui)
        page.queue()
        assert page.wait_state(("ready", "error", "no-webgl")) == "no-webgl"
        assert "WebGL 2 is not available" in page.page.inner_text(pb.WIDGET)
        img = page.page.locator(f"{pb.WIDGET} img")
        img.wait_for(state="visible")
        page.page.wait_for_function("(sel) => document.querySelector(sel)?.naturalWidth > 0",
                                    arg=f"{pb.WIDGET} img")
        # Without WebGL the 3 MB viewer bundle is never fetched.
        assert not [p for p in page.capture.local_responses if p.endswith(pb.BUNDLE_PATH)]
        assert page.capture.external_requests == []
        assert page.capture.relevant_errors == [], page.capture.relevant_errors
