"""Run the parity command (``python -m facelift_models.parity``) on one fixture in a fresh process (helper shared
by the test modules that check parity; not a test module)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_parity(sidecar: Path) -> subprocess.CompletedProcess:
    """The parity command as a user runs it (a fresh process, the machine's own CPU kernels)."""
    return subprocess.run([sys.executable, "-m", "facelift_models.parity", str(sidecar)], cwd=str(REPO),
                          capture_output=True, text=True, timeout=600)
