"""Run the parity command (``python -m facelift_models.parity``) on one fixture in a fresh process (helper shared
by the test modules that check parity; not a test module)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_parity(sidecar: Path) -> subprocess.CompletedProcess:
    """The parity CLI in a fresh process (it pins the fixtures' CPU kernels before importing torch)."""
    env = {k: v for k, v in os.environ.items() if k != "FACELIFT_PARITY_NATIVE_ISA"}
    return subprocess.run([sys.executable, "-m", "facelift_models.parity", str(sidecar)], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=600)
