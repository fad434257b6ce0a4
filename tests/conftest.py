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
