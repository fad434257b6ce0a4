"""FaceLift Preview 3D (nodes/preview_nodes.py) on the real server, and the web files it ships with.

The browser side (the widget drawing the head) is tests/test_preview3d_browser.py.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests import facelift_server_helpers as H

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web"
BUNDLE = WEB / "lib" / "facelift_splat_viewer.mjs"


def _read_display_file(comfy, record: dict, tmp_path: Path):
    """The temp file the widget fetches, read back into FaceLift-world Gaussians."""
    from facelift_models.formats import export

    assert record["type"] == "temp" and record["format"] in ("spz", "splat")
    f = tmp_path / record["filename"]
    f.write_bytes(comfy.view(record["filename"], record["subfolder"], record["type"]))
    return export.read_spz(f) if record["format"] == "spz" else export.read_splat(f)


# ------------------------------------------------------------------------------------------ real server
@pytest.mark.server
def test_preview_of_the_tiny_photo_workflow(comfy, comfy_server, comfy_models_dir, tmp_path):
    """Photo -> tiny weights -> Reconstruct -> Preview 3D (from the Gaussians, and from Save's path)."""
    from facelift_models.formats import ply

    H.ensure_tiny_models(comfy_models_dir)
    H.upload_portrait(comfy)
    wf = H.load_api_workflow("facelift_photo_to_head_api.json", H.FAST_PHOTO)
    for unused in ("7", "8", "9", "10", "11", "12"):
        wf.pop(unused)
    wf["20"] = {"class_type": "FaceLiftPreview3D", "inputs": {"gaussians": ["5", 0]}}
    wf["21"] = {"class_type": "FaceLiftPreview3D", "inputs": {"path": ["6", 0]}}
    res = comfy.run(H.unique_prefixes(wf), timeout=900)
    assert res.status == "success", H.error_text(res)

    saved = res.outputs["6"]["facelift_files"][0]
    official = ply.read_ply(comfy_server.output_dir / saved["subfolder"] / saved["filename"])
    for node in ("20", "21"):
        rec = res.outputs[node]["facelift_splat"][0]
        assert rec["gaussians"] == saved["gaussians"] == len(official) and rec["heads"] == 1
        shown = _read_display_file(comfy, rec, tmp_path)
        # Same head, same FaceLift-world positions (the file is written in the viewer axes and read back).
        assert len(shown) == len(official)
        assert np.abs(shown.xyz.numpy() - official.xyz.numpy()).max() < 2e-3
        prev = rec["preview"]
        assert H.image_of(comfy, prev).size == (256, 256)


@pytest.mark.server
def test_preview_reads_a_file_path_and_keeps_orientation(comfy, comfy_server, tmp_path):
    """An official PLY (FaceLift axes) given by path is shown in the viewer (OpenCV) axes: y down, face to -z."""
    from facelift_models.formats import export
    from harness.preview3d_browser import synthetic_head

    g = synthetic_head(2000)
    name = f"facelift_preview_{uuid.uuid4().hex[:8]}.ply"
    export.export(g, comfy_server.output_dir / name)
    res = comfy.run({"1": {"class_type": "FaceLiftPreview3D", "inputs": {"path": name}}})
    assert res.status == "success", H.error_text(res)
    progress = H.progress_of(res, "1")
    assert progress and progress[-1] == (2, 2), progress
    rec = res.outputs["1"]["facelift_splat"][0]
    f = tmp_path / rec["filename"]
    f.write_bytes(comfy.view(rec["filename"], rec["subfolder"], "temp"))
    raw = (export.read_spz(f, axes="facelift") if rec["format"] == "spz" else export.read_splat(f, axes="facelift"))
    # Read without conversion, the file's own axes: the top of the head (FaceLift +z) is at -y, the face
    # (FaceLift -y) at -z.
    top = g.xyz[:, 2].argmax()
    face = g.xyz[:, 1].argmin()
    assert raw.xyz[top, 1] < -0.7 and abs(raw.xyz[top, 2]) < 0.2
    assert raw.xyz[face, 2] < -0.5


@pytest.mark.server
def test_preview_without_input_says_what_to_connect(comfy):
    res = comfy.run({"1": {"class_type": "FaceLiftPreview3D", "inputs": {"path": ""}}})
    assert res.status == "error"
    msg = res.error["exception_message"]
    assert "nothing to show" in msg and "gaussians" in msg and "path" in msg


@pytest.mark.server
def test_web_extension_is_served(comfy, comfy_server):
    """ComfyUI lists the widget as an extension; the bundle (.mjs) is served but not loaded eagerly."""
    listed = comfy.get_json("/extensions")
    ours = [e for e in listed if "facelift" in e.lower()]
    assert len(ours) == 1 and ours[0].endswith("/facelift_preview3d.js"), ours
    base = ours[0].rsplit("/", 1)[0]
    r = comfy.http.get(comfy.base_url + base + "/lib/facelift_splat_viewer.mjs", timeout=60)
    assert r.status_code == 200 and "javascript" in r.headers["Content-Type"]
    assert r.content == BUNDLE.read_bytes()


# ----------------------------------------------------------------------------------------- shipped files
def test_pack_declares_web_directory():
    import ast

    tree = ast.parse((REPO / "__init__.py").read_text())
    values = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(n.value, ast.Constant)}
    assert (REPO / values["WEB_DIRECTORY"] / "facelift_preview3d.js").is_file()


def test_bundle_matches_lockfile_and_ships_licences():
    """Every package in the bundle is the version package-lock.json pins, MIT, with its licence beside it."""
    lock = json.loads((REPO / "web_src" / "package-lock.json").read_text())["packages"]
    lines = (WEB / "lib" / "THIRD_PARTY.txt").read_text().splitlines()[1:]
    names = set()
    for line in lines:
        m = re.fullmatch(r"(\S+) (\S+) \((\S+)\): (\S+)", line)
        assert m, line
        name, version, licence, file = m.groups()
        names.add(name)
        assert lock[f"node_modules/{name}"]["version"] == version
        assert licence == "MIT" and lock[f"node_modules/{name}"].get("license") == "MIT"
        text = (WEB / "lib" / file).read_text()
        assert "Permission is hereby granted, free of charge" in text
    assert {"three", "@sparkjsdev/spark"} <= names
    pkg = json.loads((REPO / "web_src" / "package.json").read_text())
    for name, version in pkg["dependencies"].items():
        assert lock[f"node_modules/{name}"]["version"] == version, "package.json pins exact versions"


def test_web_code_loads_nothing_from_outside():
    """No CDN: the extension imports only ComfyUI's own scripts and the pack's bundle; the bundle imports nothing."""
    ext = (WEB / "facelift_preview3d.js").read_text()
    imports = re.findall(r"""(?:from|import)\s*\(?\s*["']([^"']+)["']""", ext)
    assert imports and all(i.startswith(".") for i in imports), imports
    bundle = BUNDLE.read_text()
    assert not re.search(r"""(?:\bfrom|\bimport)\s*\(?\s*["'](?:https?:)?//""", bundle)
    assert not re.search(r"""\bimport\s*["'][^"']+["']|\bfrom\s*["'][^"']+["']""", bundle[:5000] + bundle[-5000:])
    assert "WebAssembly" in bundle  # Spark's WASM is inlined, not fetched
