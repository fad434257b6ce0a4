"""The README's run command (scripts/run_facelift.py) refuses a missing photo up front (its full run is tested in
tests/test_workflows_run_script.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("run_facelift", REPO / "scripts" / "run_facelift.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_script_rejects_missing_image(tmp_path, capsys):
    rc = _load_script().main(["--image", str(tmp_path / "nope.png"), "--output-dir", str(tmp_path)])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
