"""Drive the FaceLift Preview 3D widget in the real graph editor: headless Chromium with software WebGL.

Used by ``tests/test_preview3d_browser.py`` and ``benchmarks/bench_preview3d.py``. Chromium runs WebGL 2 on
SwiftShader (ANGLE's CPU Vulkan/GL implementation), so no GPU is needed. Every request that does not go to the
local ComfyUI server is recorded and aborted: the viewer must come from the pack's own files.

Also here: ``synthetic_head``, a Gaussian "head" with a known shape and known colours (an ellipsoid, red on top,
a skin-coloured face toward -y, a blue back and a green patch on the subject's left, +x), so a screenshot tells
whether it is upright and not mirrored.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from harness import comfy_host

# Software WebGL in headless Chromium (SwiftShader through ANGLE).
SWIFTSHADER_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
                    "--enable-webgl"]
NO_WEBGL_ARGS = ["--disable-3d-apis", "--disable-gpu"]
WIDGET = ".facelift-preview3d"
BUNDLE_PATH = "/lib/facelift_splat_viewer.mjs"
BACKGROUND = (0x2B, 0x2B, 0x2B)   # the viewer's background (web/facelift_preview3d.js)

# Synthetic head: ellipsoid radii (x, y, z) in the FaceLift world (z up, face toward -y) and region colours.
HEAD_RADII = (0.55, 0.6, 0.75)
COLOURS = {"top": (0.9, 0.1, 0.1), "face": (0.95, 0.8, 0.6), "back": (0.2, 0.3, 0.9), "left": (0.1, 0.85, 0.2)}


def synthetic_head(n: int = 20000, seed: int = 0):
    """``n`` opaque Gaussians on an ellipsoid shell (plus a filled core), coloured by region (see COLOURS):
    top (z > 0.45 z-radius) red; the subject's left side (x > 0.6 x-radius, |z| < 0.3 z-radius) green;
    otherwise the front half (y < 0) skin and the back half blue."""
    import torch

    from facelift_models.gaussians import SH_C0, Gaussians

    gen = torch.Generator().manual_seed(seed)
    radii = torch.tensor(HEAD_RADII)
    d = torch.randn(n, 3, generator=gen)
    d = d / d.norm(dim=1, keepdim=True)
    depth = torch.where(torch.rand(n, 1, generator=gen) < 0.8, torch.ones(n, 1),
                        torch.rand(n, 1, generator=gen) ** (1 / 3))
    xyz = d * depth * radii
    u = xyz / radii
    rgb = torch.tensor(COLOURS["back"]).repeat(n, 1)
    rgb[u[:, 1] < 0] = torch.tensor(COLOURS["face"])
    rgb[(u[:, 0] > 0.6) & (u[:, 2].abs() < 0.3)] = torch.tensor(COLOURS["left"])
    rgb[u[:, 2] > 0.45] = torch.tensor(COLOURS["top"])
    scale = 1.6 * math.sqrt(4 * math.pi * 0.6 ** 2 / n)  # about the mean spacing on the shell
    return Gaussians(xyz=xyz, f_dc=(rgb - 0.5) / SH_C0, log_scales=torch.full((n, 3), math.log(scale)),
                     quats=torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1),
                     opacity_logits=torch.full((n,), 5.0))


# ------------------------------------------------------------------------------------------------ image checks
def foreground(rgb: np.ndarray, background=BACKGROUND, threshold: int = 40) -> np.ndarray:
    """Pixels that differ from the viewer background by more than ``threshold`` (sum over channels)."""
    return np.abs(rgb[..., :3].astype(np.int32) - np.array(background)).sum(-1) > threshold


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def colour_mask(rgb: np.ndarray, colour, tol: float = 0.25) -> np.ndarray:
    """Pixels within ``tol`` (per channel, 0..1) of ``colour``."""
    return (np.abs(rgb[..., :3].astype(np.float32) / 255.0 - np.array(colour)) < tol).all(-1)


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return (float(xs.mean()), float(ys.mean())) if len(xs) else (math.nan, math.nan)


def png_to_array(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# ----------------------------------------------------------------------------------------------------- browser
@dataclass
class Capture:
    console_errors: list = field(default_factory=list)   # comfy_host.BrowserError, after the app started
    startup_errors: list = field(default_factory=list)   # the same while the frontend started
    external_requests: list = field(default_factory=list)
    local_responses: dict = field(default_factory=dict)  # path -> status

    @property
    def relevant_errors(self) -> list[str]:
        return [str(e) for e in self.console_errors if not e.environment_noise]

    @property
    def facelift_startup_errors(self) -> list[str]:
        return [str(e) for e in self.startup_errors if "facelift" in str(e).lower()]


class PreviewPage:
    """One headless Chromium on the ComfyUI frontend of ``base_url`` (context manager).

    ``webgl=False`` starts Chromium with the 3D APIs disabled (the widget's fallback path)."""

    def __init__(self, base_url: str, webgl: bool = True, viewport: tuple[int, int] = (1200, 860),
                 timeout: float = 180):
        self.base_url = base_url.rstrip("/")
        self.host = urlparse(self.base_url).netloc
        self.webgl = webgl
        self.viewport = viewport
        self.timeout_ms = timeout * 1000
        self.capture = Capture()

    def __enter__(self) -> "PreviewPage":
        import requests
        from playwright.sync_api import sync_playwright

        exe = comfy_host.chromium_path()
        if exe is None:
            raise FileNotFoundError("No Chromium found (run scripts/setup_browser.sh or set FACELIFT_CHROMIUM).")
        requests.post(self.base_url + "/settings", json=comfy_host.FRONTEND_SETTINGS, timeout=30).raise_for_status()
        self._pw = sync_playwright().start()
        args = ["--no-sandbox", "--disable-dev-shm-usage"] + (SWIFTSHADER_ARGS if self.webgl else NO_WEBGL_ARGS)
        self.browser = self._pw.chromium.launch(executable_path=exe, headless=True, args=args)
        self.context = self.browser.new_context(viewport={"width": self.viewport[0], "height": self.viewport[1]},
                                                accept_downloads=True)
        self.context.route("**/*", self._route)
        page = self.page = self.context.new_page()
        page.add_init_script("localStorage.setItem('vueNodesBannerDismissed', 'true')")
        cap = self.capture
        page.on("console", lambda m: cap.console_errors.append(
            comfy_host.BrowserError(m.text, (m.location or {}).get("url", ""))) if m.type == "error" else None)
        page.on("pageerror", lambda e: cap.console_errors.append(comfy_host.BrowserError(f"uncaught: {e}")))
        page.on("response", lambda r: cap.local_responses.__setitem__(urlparse(r.url).path, r.status)
                if urlparse(r.url).netloc == self.host else None)
        page.goto(self.base_url + "/", wait_until="domcontentloaded", timeout=self.timeout_ms)
        page.wait_for_function(
            "() => window.app && window.app.graph && window.app.canvas && window.LiteGraph && "
            "Object.keys(window.LiteGraph.registered_node_types || {}).length > 50", timeout=self.timeout_ms)
        page.wait_for_timeout(1000)  # start-up requests settle; their errors count as start-up (frontend noise)
        cap.startup_errors, cap.console_errors = list(cap.console_errors), []
        return self

    def _route(self, route) -> None:
        url = route.request.url
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob") or parsed.netloc == self.host:
            route.continue_()
        else:
            self.capture.external_requests.append(url)
            route.abort()

    def __exit__(self, *exc) -> None:
        try:
            self.browser.close()
        finally:
            self._pw.stop()

    # --- graph
    def load_graph(self, workflow: dict) -> None:
        """Load a UI-format workflow, canvas at zoom 1 with the graph's top-left corner in view."""
        self.page.evaluate(
            "async (wf) => { await window.app.loadGraphData(wf, true, true, null, "
            "{showMissingNodesDialog: false, showMissingModelsDialog: false}); "
            "const ds = window.app.canvas.ds; ds.scale = 1; ds.offset = [10, 110]; "
            "window.app.canvas.setDirty(true, true); }", workflow)
        self.page.wait_for_selector(WIDGET, state="attached", timeout=self.timeout_ms)
        self.page.wait_for_timeout(500)

    def queue(self) -> float:
        """Queue the loaded graph from the frontend (so the widget gets the `executed` message); wall time."""
        t0 = time.perf_counter()
        self.page.evaluate("async () => { await window.app.queuePrompt(0, 1); }")
        return t0

    def state(self) -> str:
        return self.page.get_attribute(WIDGET, "data-state") or ""

    def wait_state(self, states: tuple[str, ...], timeout: float | None = None) -> str:
        self.page.wait_for_function(
            "([sel, states]) => states.includes(document.querySelector(sel)?.dataset.state)",
            arg=[WIDGET, list(states)], timeout=(timeout * 1000) if timeout else self.timeout_ms, polling=200)
        return self.state()

    def first_frame_ms(self) -> float | None:
        v = self.page.get_attribute(WIDGET, "data-first-frame-ms")
        return float(v) if v else None

    # --- viewer
    def canvas_box(self) -> dict:
        box = self.page.locator(f"{WIDGET} canvas").bounding_box()
        assert box, "the viewer has no canvas"
        return box

    def button(self, text: str):
        return self.page.locator(f"{WIDGET} button", has_text=text)

    def save_png(self) -> np.ndarray:
        """The widget's 'Save PNG' button: the downloaded PNG as an RGB array."""
        with self.page.expect_download(timeout=self.timeout_ms) as dl:
            self.button("Save PNG").click()
        return png_to_array(Path(dl.value.path()).read_bytes())

    def drag(self, dx: float, dy: float, button: str = "left", steps: int = 12) -> None:
        b = self.canvas_box()
        x, y = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
        m = self.page.mouse
        m.move(x, y)
        m.down(button=button)
        m.move(x + dx, y + dy, steps=steps)
        m.up(button=button)
        self.page.wait_for_timeout(800)

    def wheel(self, dy: float) -> None:
        b = self.canvas_box()
        self.page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
        self.page.mouse.wheel(0, dy)
        self.page.wait_for_timeout(800)

    def screenshot_node(self, path: Path) -> None:
        """The preview node (title, input, viewer) as it looks on the canvas."""
        b = self.page.locator(WIDGET).bounding_box()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), clip={"x": b["x"] - 14, "y": b["y"] - 92, "width": b["width"] + 28,
                                                   "height": b["height"] + 104})

    def screenshot_widget(self, path: Path) -> np.ndarray:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.locator(WIDGET).screenshot(path=str(path))
        return png_to_array(path.read_bytes())


def preview_workflow(ply_name: str, size: tuple[int, int] = (480, 560)) -> tuple[dict, dict]:
    """(API prompt, UI workflow) of FaceLift Load PLY -> FaceLift Preview 3D, the preview node ``size`` big."""
    api = {"1": {"class_type": "FaceLiftLoadPLY", "inputs": {"path": ply_name, "axes": "auto"}},
           "2": {"class_type": "FaceLiftPreview3D", "inputs": {"gaussians": ["1", 0], "path": ""}}}
    gaussians = "FACELIFT_GAUSSIANS"
    nodes = [
        {"id": 1, "type": "FaceLiftLoadPLY", "pos": [20, 20], "size": [320, 120], "flags": {}, "order": 0,
         "mode": 0, "inputs": [], "outputs": [{"name": "gaussians", "type": gaussians, "links": [1], "slot_index": 0}],
         "properties": {"Node name for S&R": "FaceLiftLoadPLY"}, "widgets_values": [ply_name, "auto"]},
        {"id": 2, "type": "FaceLiftPreview3D", "pos": [380, 20], "size": list(size), "flags": {}, "order": 1,
         "mode": 0, "inputs": [{"name": "gaussians", "type": gaussians, "link": 1, "shape": 7}], "outputs": [],
         "properties": {"Node name for S&R": "FaceLiftPreview3D"}, "widgets_values": [""]},
    ]
    ui = {"last_node_id": 2, "last_link_id": 1, "nodes": nodes, "links": [[1, 1, 0, 2, 0, gaussians]],
          "groups": [], "config": {}, "extra": {"ds": {"scale": 1, "offset": [0, 0]}}, "version": 0.4}
    return api, ui
