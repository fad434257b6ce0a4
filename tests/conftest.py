"""Shared pytest fixtures: where the parity fixtures live, small helpers used by several test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    """The shared parity fixtures: $FACELIFT_REFERENCE_DIR, else ../shared/reference beside the checkout."""
    env = os.environ.get("FACELIFT_REFERENCE_DIR")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "reference", REPO / "shared" / "reference"]
    for c in candidates:
        if (c / "README.md").exists():
            return c
    raise FileNotFoundError(
        "Parity fixtures not found: looked in " + ", ".join(str(c) for c in candidates)
        + ". Set FACELIFT_REFERENCE_DIR to the folder holding the *.json sidecars."
    )


@pytest.fixture(scope="session")
def reference() -> Path:
    return reference_dir()


def sidecars(kind: str) -> list[Path]:
    """Every sidecar of one kind in the reference folder (so new fixtures are picked up automatically)."""
    import json

    out = []
    for p in sorted(reference_dir().glob("*.json")):
        try:
            if json.loads(p.read_text()).get("kind") == kind:
                out.append(p)
        except (ValueError, OSError):
            continue
    return out


# ----------------------------------------------------------------------------- the real ComfyUI test server
# One ComfyUI process (harness/comfy_host.py) for the whole session, shared by every test that asks for
# `comfy_server` / `comfy`. Its model folders come from an extra_model_paths.yaml pointing at `comfy_models_dir`
# (sub-folders `facelift/` and `checkpoints/`): drop tiny checkpoints there before queueing prompts.
ARTIFACTS = REPO / "test-artifacts"


def artifacts_dir() -> Path:
    """Where tests leave files worth looking at after a run (screenshots, the server log); git-ignored."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def comfy_models_dir(tmp_path_factory) -> Path:
    """The session's ComfyUI models folder (models/facelift, models/checkpoints), registered with the server."""
    d = tmp_path_factory.mktemp("comfy_models")
    for sub in ("facelift", "checkpoints"):
        (d / sub).mkdir()
    return d


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory, comfy_models_dir):
    """The shared ComfyUI server (started on first use, stopped at session end; log copied to test-artifacts/)."""
    from harness import comfy_host

    comfy = comfy_host.provision()
    run_dir = tmp_path_factory.mktemp("comfy_run")
    paths = comfy_host.write_extra_model_paths(run_dir / "extra_model_paths.yaml", comfy_models_dir)
    server = comfy_host.ComfyServer(run_dir, comfy, extra_model_paths=paths)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        try:
            (artifacts_dir() / "comfyui-server.log").write_text(server.log_text())
        except OSError:
            pass


@pytest.fixture
def comfy(comfy_server):
    """A fresh API client (own client_id) for the shared server."""
    return comfy_server.client()


def pytest_collection_modifyitems(config, items):
    # Tests that use the shared server carry the `server` marker (select/deselect with -m server / -m "not server").
    for item in items:
        if "comfy_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.server)
