"""Shared pieces of the real-server tests of the FaceLift nodes and workflows (tiny weights, inputs, checks)."""

from __future__ import annotations

import copy
import io
import json
import threading
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from facelift_models.config import VIEW_NAMES
from harness.tiny_models import write_tiny_models

REPO = Path(__file__).resolve().parents[1]
API_WORKFLOWS = REPO / "workflows" / "api"
EXAMPLE_PORTRAIT = REPO / "samples" / "astronaut.png"
PORTRAIT_NAME = "facelift_astronaut.png"  # the name the shipped workflows' LoadImage uses

# "Size knobs" the tests turn down so the shipped graphs run in seconds on 2 CPU cores with tiny weights;
# every other input of the shipped workflows is used unchanged.
FAST_PHOTO = {"4": {"steps": 4}, "7": {"frames": 8, "size": 96}}
FAST_MULTIVIEW = {"12": {"width": 32, "height": 32}, "14": {"resolution": 32}, "17": {"size": 48}}

_lock = threading.Lock()


def ensure_tiny_models(models_dir: Path) -> Path:
    """Tiny official-layout weights in the session's models/facelift folder (written once per session)."""
    facelift = Path(models_dir) / "facelift"
    with _lock:
        if not (facelift / ".tiny-complete").exists():
            write_tiny_models(facelift)
            (facelift / ".tiny-complete").write_text("ok")
    return facelift


def load_api_workflow(name: str, knobs: dict | None = None) -> dict:
    wf = json.loads((API_WORKFLOWS / name).read_text())
    for node_id, values in (knobs or {}).items():
        wf[node_id]["inputs"].update(values)
    return wf


def unique_prefixes(wf: dict) -> dict:
    """Give every save node its own filename prefix so outputs of different runs never mix."""
    wf = copy.deepcopy(wf)
    tag = uuid.uuid4().hex[:8]
    for node in wf.values():
        if "filename_prefix" in node["inputs"]:
            node["inputs"]["filename_prefix"] = f"{node['inputs']['filename_prefix']}_{tag}"
    return wf


def upload_portrait(client) -> str:
    return client.upload_image(EXAMPLE_PORTRAIT, name=PORTRAIT_NAME)


def upload_views(client, size: int = 96) -> list[str]:
    """Six different 'photos' (crops of the example portrait) named like the multi-view workflow expects."""
    img = Image.open(EXAMPLE_PORTRAIT).convert("RGB")
    names = []
    tmp = Path(__import__("tempfile").mkdtemp(prefix="facelift-views-"))
    for i, view in enumerate(VIEW_NAMES):
        box = (20 * i, 10 * i, 20 * i + 300, 10 * i + 300)
        p = tmp / f"facelift_view_{view}.png"
        img.crop(box).resize((size, size)).save(p)
        names.append(client.upload_image(p, name=p.name))
    return names


def image_of(client, record: dict) -> Image.Image:
    return Image.open(io.BytesIO(client.view(record["filename"], record.get("subfolder", ""),
                                             record.get("type", "output"))))


def read_ply_header(data: bytes) -> tuple[list[str], int]:
    """(vertex property names, vertex count) of a binary PLY, parsed with plyfile."""
    from plyfile import PlyData

    ply = PlyData.read(io.BytesIO(data))
    v = ply["vertex"]
    return [p.name for p in v.properties], int(v.count)


def progress_of(result, node_id: str) -> list[tuple[int, int]]:
    return [(int(m["value"]), int(m["max"])) for m in result.of_type("progress") if str(m.get("node")) == node_id]


def error_text(result) -> str:
    err = result.error or {}
    return f"{err.get('exception_type', '')}: {err.get('exception_message', '')}"


def array(img: Image.Image) -> np.ndarray:
    return np.asarray(img)
