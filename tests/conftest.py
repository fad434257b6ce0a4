"""Shared pytest fixtures: where the parity fixtures live (the vendored copy plus ../shared/reference when present),
small helpers used by several test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# The project's own copy of the public parity fixtures (tests/fixtures/parity/README.md names their origin).
VENDORED_FIXTURES = REPO / "tests" / "fixtures" / "parity"


def extra_reference_dirs() -> list[Path]:
    """Further fixture folders: $FACELIFT_REFERENCE_DIR, and ../shared/reference beside the checkout when present."""
    env = os.environ.get("FACELIFT_REFERENCE_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "reference")
    seen, out = set(), []
    for c in candidates:
        c = c.resolve()
        if c.is_dir() and c not in seen and c != VENDORED_FIXTURES.resolve():
            seen.add(c)
            out.append(c)
    return out


def reference_dirs() -> list[Path]:
    """Every folder whose sidecars the tests run: the vendored copy first, then the extra folders."""
    return [VENDORED_FIXTURES, *extra_reference_dirs()]


def reference_file(name: str) -> Path:
    """A named reference file (e.g. a full-size state-dict manifest): the vendored copy, else an extra folder."""
    for d in reference_dirs():
        if (d / name).exists():
            return d / name
    raise FileNotFoundError(f"{name} is in none of the fixture folders {', '.join(map(str, reference_dirs()))}.")


def _digest(sidecar: Path) -> str:
    """The sidecar's and its tensors' bytes, hashed: identical copies in two folders are run once."""
    import hashlib
    import json

    h = hashlib.sha256(sidecar.read_bytes())
    tensors = sidecar.parent / json.loads(sidecar.read_text()).get("tensors", "")
    if tensors.is_file():
        with tensors.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def sidecars(kind: str) -> list[Path]:
    """Every sidecar of one kind in every fixture folder (new fixtures are picked up without code changes);
    a fixture whose bytes equal one already listed is left out."""
    import json

    out, seen = [], set()
    for folder in reference_dirs():
        for p in sorted(folder.glob("*.json")):
            try:
                if json.loads(p.read_text()).get("kind") != kind:
                    continue
                digest = _digest(p)
            except (ValueError, OSError):
                continue
            if digest not in seen:
                seen.add(digest)
                out.append(p)
    return out


def fixture_id(sidecar: Path) -> str:
    """A test id naming the fixture and, for an extra folder, where it came from."""
    return sidecar.stem if sidecar.parent == VENDORED_FIXTURES else f"{sidecar.parent.name}/{sidecar.stem}"


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
    # $FACELIFT_TEST_SERVER_DEVICE=auto lets ComfyUI use the GPU (a GPU machine's run); default: CPU, GPUs hidden.
    server = comfy_host.ComfyServer(run_dir, comfy, extra_model_paths=paths,
                                    device=os.environ.get("FACELIFT_TEST_SERVER_DEVICE", "cpu"))
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
