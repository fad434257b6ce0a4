"""Which parity fixtures the suite runs: the vendored copy always, extra folders too, identical copies once."""

from __future__ import annotations

import json
import shutil

from tests import conftest
from tests.conftest import VENDORED_FIXTURES, fixture_id, sidecars


def test_vendored_copy_has_every_kind():
    kinds = {json.loads(p.read_text()).get("kind") for p in VENDORED_FIXTURES.glob("*.json")}
    assert {"gslrm", "gaussian_filters", "mv_unet", "mv_pipeline", "face_crop", "render"} <= kinds
    for kind in ("gslrm", "render"):
        assert any(p.parent == VENDORED_FIXTURES for p in sidecars(kind))


def test_extra_folder_adds_new_fixtures_and_skips_identical_copies(tmp_path, monkeypatch):
    extra = tmp_path / "reference"
    extra.mkdir()
    src = VENDORED_FIXTURES / "render_public.json"
    shutil.copy(src, extra / "render_public.json")  # byte-identical copy: run once
    shutil.copy(VENDORED_FIXTURES / "render_public.safetensors", extra / "render_public.safetensors")
    meta = json.loads(src.read_text())
    meta["description"] = "a new fixture of the same schema"
    (extra / "render_other.json").write_text(json.dumps(meta))  # new sidecar (same tensors): picked up
    monkeypatch.setenv("FACELIFT_REFERENCE_DIR", str(extra))
    monkeypatch.setattr(conftest, "REPO", tmp_path / "no_checkout")  # no ../shared beside this fake checkout

    found = sidecars("render")
    assert [p.name for p in found].count("render_public.json") == 1
    assert extra / "render_other.json" in found
    assert fixture_id(extra / "render_other.json") == "reference/render_other"
