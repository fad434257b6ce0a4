"""The Ray batch runner (``python -m facelift_models.batch``) on a local 2-CPU Ray instance with tiny weights.

8 photos (6 faces, a corrupt file, a cat) on 2 workers: 6 heads, 2 recorded failures, a re-run does no work; and a
worker process killed mid-run: every photo still ends with exactly one manifest record and its files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is not installed (python -m pip install \"ray[data]\"); it is an optional "
                                  "dependency that requirements-dev.txt installs where the platform has wheels")

from harness.batch_photos import write_photo_folder  # noqa: E402
from harness.tiny_models import write_tiny_models  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch_ray")
    models = write_tiny_models(root / "models")
    photos = write_photo_folder(root / "photos", faces=6)
    return root, models, photos


def _cmd(root: Path, models: Path, out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "facelift_models.batch", str(root / "photos"), "--out", str(out),
            "--models-dir", str(models), "--workers", "2", "--local-cpus", "2", "--steps", str(steps)]


def _env() -> dict:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
    env.pop("FACELIFT_MODELS_DIR", None)
    return env


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _check_results(out: Path, photos: dict) -> list[dict]:
    recs = _records(out)
    by_photo = {}
    for r in recs:
        assert r["photo"] not in by_photo, f"{r['photo']} recorded twice"
        by_photo[r["photo"]] = r
    assert set(by_photo) == set(photos["faces"]) | {photos["cat"], photos["corrupt"]}
    for name in photos["faces"]:
        r = by_photo[name]
        assert r["status"] == "ok", r
        ply = Path(r["outputs"]["ply"])
        assert ply.is_file() and ply.parent == out and ply.stat().st_size > 1000
        assert ply.read_bytes().startswith(b"ply\n")
        assert set(r["timings"]) >= {"read_s", "crop_s", "sample_s", "reconstruct_s", "write_s", "total_s"}
    assert by_photo[photos["corrupt"]]["status"] == "failed"
    assert by_photo[photos["corrupt"]]["error_type"] == "InputError"
    assert "corrupt" in by_photo[photos["corrupt"]]["error"]
    assert by_photo[photos["cat"]]["status"] == "failed"
    assert by_photo[photos["cat"]]["error_type"] == "NoFaceError"
    assert sorted(p.name for p in out.glob("*.ply")) == sorted(f"face_{i:02d}.ply" for i in range(1, 7))
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"
    return recs


def test_eight_photos_two_workers_failures_recorded_and_rerun_does_nothing(setup):
    root, models, photos = setup
    out = root / "out_plain"
    proc = subprocess.run(_cmd(root, models, out, steps=2), cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]  # 1 = finished, with recorded failures
    summary = json.loads(proc.stdout.strip().splitlines()[-1])["summary"]
    assert summary == {**summary, "total": 8, "ok": 6, "failed": 2, "skipped": 0, "workers": 2}
    recs = _check_results(out, photos)
    pids = {r["worker"]["pid"] for r in recs}
    assert len(pids) == 2, f"expected both workers to take photos, got {pids}"

    before = (out / "manifest.jsonl").read_bytes()
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.ply")}
    again = subprocess.run(_cmd(root, models, out, steps=2), cwd=REPO, env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to do" in again.stderr
    summary = json.loads(again.stdout.strip().splitlines()[-1])["summary"]
    assert summary["skipped"] == 8 and summary["ok"] == summary["failed"] == 0
    assert (out / "manifest.jsonl").read_bytes() == before
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.ply")} == mtimes


def test_worker_killed_mid_run_every_photo_processed_exactly_once(setup):
    root, models, photos = setup
    out = root / "out_kill"
    # More steps so a photo takes long enough for the kill to land while a worker is busy with it.
    proc = subprocess.Popen(_cmd(root, models, out, steps=24), cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and proc.poll() is None:
            manifest = out / "manifest.jsonl"
            ok = [r for r in (_records(manifest.parent) if manifest.exists() else []) if r["status"] == "ok"]
            if ok:
                killed = ok[0]["worker"]["pid"]
                os.kill(killed, signal.SIGKILL)  # a Ray worker process this test's run started
                break
            time.sleep(0.2)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no photo finished before the run ended; cannot inject the fault"
    assert proc.returncode == 1, stderr[-3000:]
    summary = json.loads(stdout.strip().splitlines()[-1])["summary"]
    assert summary["worker_restarts"] >= 1, stderr[-3000:]
    assert "worker died while processing" in stderr
    recs = _check_results(out, photos)
    assert summary["ok"] == 6 and summary["failed"] == 2
    assert any(r["attempts"] == 2 for r in recs), "the photo in flight on the killed worker was not retried"
    assert len({r["worker"]["pid"] for r in recs if "worker" in r}) >= 2
