"""The shipped workflows: UI files match their API twins, ComfyUI's template browser serves them, and every UI
workflow loads in the real graph editor (headless Chromium) with no missing node types and no console errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness import comfy_host
from tests import facelift_server_helpers as H
from tests.conftest import artifacts_dir
from tests.ui_workflow import API_WORKFLOWS, PAIRS, WORKFLOWS, api_view, ui_to_api_view

pytestmark = pytest.mark.server
REPO = Path(__file__).resolve().parents[1]
UI_FILES = sorted(PAIRS.values())


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return comfy_server.client().object_info()


@pytest.mark.parametrize("api_name", sorted(PAIRS))
def test_ui_workflow_matches_api_workflow(api_name, object_info):
    api = json.loads((API_WORKFLOWS / api_name).read_text())
    ui = json.loads((WORKFLOWS / PAIRS[api_name]).read_text())
    assert ui_to_api_view(ui, object_info) == api_view(api), \
        f"{PAIRS[api_name]} and {api_name} differ: regenerate with `python -m tests.ui_workflow`"
    # Every link's declared type is the source output's type and the target input's type.
    nodes = {n["id"]: n for n in ui["nodes"]}
    for lid, src, sslot, dst, dslot, typ in ui["links"]:
        assert nodes[src]["outputs"][sslot]["type"] == typ and lid in nodes[src]["outputs"][sslot]["links"]
        assert nodes[dst]["inputs"][dslot]["type"] == typ and nodes[dst]["inputs"][dslot]["link"] == lid


def test_every_workflow_file_is_paired():
    """Only UI files in workflows/ (what the template browser lists), only API forms in workflows/api/."""
    assert sorted(p.name for p in WORKFLOWS.glob("*.json")) == UI_FILES
    assert sorted(p.name for p in API_WORKFLOWS.glob("*.json")) == sorted(PAIRS)


def test_templates_are_listed_once_and_served(comfy):
    listing = comfy.get_json("/workflow_templates")
    ours = listing.get(comfy_host.PACK_LINK_NAME, [])
    assert sorted(ours) == sorted(Path(ui_name).stem for ui_name in UI_FILES), listing  # each once, no API forms
    for ui_name in UI_FILES:
        served = comfy.get_json(f"/api/workflow_templates/{comfy_host.PACK_LINK_NAME}/{ui_name}")
        assert served == json.loads((WORKFLOWS / ui_name).read_text())


def _ensure_inputs(server, client, workflow: dict) -> None:
    """LoadImage widgets name files of the input folder; without them the frontend logs 404s."""
    for node in workflow["nodes"]:
        if node["type"] != "LoadImage":
            continue
        name = node["widgets_values"][0]
        if (server.input_dir / name).exists():
            continue
        if name == H.PORTRAIT_NAME:
            shutil.copyfile(H.EXAMPLE_PORTRAIT, server.input_dir / name)
        else:
            H.upload_views(client)


@pytest.mark.browser
@pytest.mark.parametrize("ui_name", UI_FILES)
def test_ui_workflow_loads_in_graph_editor(ui_name, comfy_server, comfy, comfy_models_dir):
    comfy_host.require_browser()
    H.ensure_tiny_models(comfy_models_dir)  # so the loader's dropdown values exist, as on a set-up machine
    workflow = json.loads((WORKFLOWS / ui_name).read_text())
    _ensure_inputs(comfy_server, comfy, workflow)
    shot = artifacts_dir() / f"workflow_{Path(ui_name).stem}.png"
    shot.unlink(missing_ok=True)

    result = comfy_host.load_workflow_in_browser(comfy_server.url, workflow, screenshot=shot, viewport=(2000, 1000),
                                                 settings={"LiteGraph.Canvas.MinFontSizeForLOD": 1})

    assert result.missing_node_types == []
    assert sorted(result.node_types) == sorted(n["type"] for n in workflow["nodes"])
    assert result.relevant_errors == [], result.relevant_errors
    assert not [e for e in result.startup_errors if "facelift" in str(e).lower()], result.startup_errors
    assert shot.is_file() and shot.stat().st_size > 20_000
