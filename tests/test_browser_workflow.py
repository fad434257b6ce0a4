"""A UI-format workflow with the pack's node loads in the real ComfyUI graph editor (headless Chromium)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import comfy_host
from tests.conftest import artifacts_dir

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[1]


def _ensure_input_image(server, name: str) -> None:
    """LoadImage's widget names a file of the input folder; without it the frontend logs 404s."""
    dest = server.input_dir / name
    if dest.exists():
        return
    example = REPO / "samples" / name
    if example.exists():
        shutil.copyfile(example, dest)
    else:
        Image.fromarray(np.full((64, 64, 3), 180, np.uint8)).save(dest)


@pytest.mark.browser
def test_composite_workflow_loads_in_graph_editor(comfy_server):
    comfy_host.require_browser()
    workflow = json.loads((DATA / "composite_ui_workflow.json").read_text())
    for node in workflow["nodes"]:
        if node["type"] == "LoadImage":
            _ensure_input_image(comfy_server, node["widgets_values"][0])
    shot = artifacts_dir() / "composite_ui_workflow.png"
    shot.unlink(missing_ok=True)

    result = comfy_host.load_workflow_in_browser(comfy_server.url, workflow, screenshot=shot)

    assert result.missing_node_types == []
    assert sorted(result.node_types) == sorted(n["type"] for n in workflow["nodes"])
    assert result.relevant_errors == [], result.relevant_errors
    assert not [e for e in result.startup_errors if "facelift" in str(e).lower()], result.startup_errors
    assert shot.is_file() and shot.stat().st_size > 10_000


@pytest.mark.browser
def test_browser_reports_missing_node_types(comfy_server):
    # The check must be able to fail: an unknown node type is reported, not silently dropped.
    comfy_host.require_browser()
    workflow = json.loads((DATA / "composite_ui_workflow.json").read_text())
    workflow["nodes"][1]["type"] = "FaceLiftNoSuchNode"
    result = comfy_host.load_workflow_in_browser(comfy_server.url, workflow)
    assert result.missing_node_types == ["FaceLiftNoSuchNode"]
