"""Importing the pack is instant and side-effect free; facelift_models stays independent of ComfyUI."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness import comfy_host
from harness.pack_load import LOAD_PACK

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("diffusers", "transformers", "huggingface_hub", "gsplat", "plyfile", "skimage", "numba")
COMFY_MODULES = {"comfy", "comfy_api", "comfy_execution", "comfy_extras", "comfy_config", "folder_paths",
                 "nodes", "server", "execution", "latent_preview", "node_helpers", "comfyui_version", "app"}



@pytest.fixture(scope="module")
def pack_load() -> dict:
    return comfy_host.run_in_comfy(LOAD_PACK)


def test_pack_loads_through_comfyui_loader(pack_load):
    assert pack_load["ok"], "ComfyUI's load_custom_node reported failure"
    assert "FaceLiftCompositeOnWhite" in pack_load["nodes"]
    assert all(k.startswith("FaceLift") for k in pack_load["nodes"]), pack_load["nodes"]


def test_pack_import_touches_no_gpu_or_network(pack_load):
    assert pack_load["calls"]["network"] == [], pack_load["calls"]
    assert pack_load["calls"]["cuda"] == [], pack_load["calls"]
    assert not pack_load["cuda_initialized"]


def test_pack_import_pulls_in_no_heavy_library(pack_load):
    heavy = [m for m in pack_load["new_modules"] if m.split(".")[0] in HEAVY]
    assert heavy == [], f"importing the pack imported {heavy[:10]}"


def _imported_top_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value).split(".")[0])
    return names


def test_facelift_models_never_imports_comfyui():
    files = sorted((REPO / "facelift_models").rglob("*.py"))
    assert files, "facelift_models has no sources"
    offenders = {str(f.relative_to(REPO)): sorted(_imported_top_modules(f) & COMFY_MODULES) for f in files}
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"facelift_models must not import ComfyUI: {offenders}"


def test_scan_catches_a_comfy_import(tmp_path):
    # The scanner itself must be able to fail.
    f = tmp_path / "x.py"
    f.write_text("import os\nfrom comfy.utils import ProgressBar\nimport folder_paths as fp\n")
    assert _imported_top_modules(f) & COMFY_MODULES == {"comfy", "folder_paths"}


def test_importing_facelift_models_is_light():
    code = ("import sys, facelift_models; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY + tuple(COMFY_MODULES)!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_pack_root_import_does_no_work():
    # Outside ComfyUI (e.g. pytest importing the repo as a package) the entry point must not import anything.
    code = ("import importlib.util, sys; before = set(sys.modules); "
            f"spec = importlib.util.spec_from_file_location('facelift_pack', {str(REPO / '__init__.py')!r}, "
            f"submodule_search_locations=[{str(REPO)!r}]); m = importlib.util.module_from_spec(spec); "
            "sys.modules['facelift_pack'] = m; spec.loader.exec_module(m); "
            "print(callable(m.comfy_entrypoint), not hasattr(m, 'NODE_CLASS_MAPPINGS'), "
            "sorted(set(sys.modules) - before - {'facelift_pack'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True True []", out.stdout


def test_pyproject_dependencies_match_requirements():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    reqs = [ln.split("#")[0].strip() for ln in (REPO / "requirements.txt").read_text().splitlines()]
    reqs = [r for r in reqs if r]
    assert meta["project"]["dependencies"] == reqs
    assert not any(r.lower().startswith(("torch", "torchvision")) for r in reqs), "never pin torch here"
    assert "comfyui" not in meta["project"]["name"].lower()
    assert meta["tool"]["comfy"]["PublisherId"] and meta["tool"]["comfy"]["DisplayName"]
    assert meta["project"]["urls"]["Repository"].startswith("https://github.com/")
