"""The README's run job (scripts/run_facelift.py): it stops early with the clear missing-weights message when there
are no weights, and its --tiny smoke mode runs the shipped workflow end to end and says the result is noise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "run_facelift.py"


def test_without_weights_it_stops_before_starting_comfyui(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--models-dir", str(tmp_path / "no-weights"),
                           "--output-dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr
    assert "FaceLift weights are missing" in err and "gslrm/ckpt_0000000000021125.pt" in err
    assert "--accept-license" in err and "--tiny" in err
    assert not (tmp_path / "out" / "comfyui.log").exists(), "ComfyUI was started although nothing could run"


def test_download_needs_licence_acceptance(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--models-dir", str(tmp_path / "m"), "--download",
                           "--output-dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "--accept-license" in proc.stderr


@pytest.mark.server
def test_tiny_smoke_run_prints_outputs_and_says_noise(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--steps", "2", "--frames", "4",
                           "--output-dir", str(out)], capture_output=True, text=True, timeout=900)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    assert proc.stdout.count("untrained noise") >= 2  # before and after the run
    lines = proc.stdout.splitlines()
    ply = [Path(l.split(": ", 1)[1]) for l in lines if l.startswith("PLY (3D Gaussians): ")]
    views = [Path(l.split(": ", 1)[1]) for l in lines if l.startswith("view: ")]
    turntable = [Path(l.split(": ", 1)[1]) for l in lines if l.startswith("turntable: ")]
    assert len(ply) == 1 and ply[0].is_file() and ply[0].read_bytes().startswith(b"ply\n")
    assert len(views) == 6 and all(v.is_file() for v in views)
    assert {t.suffix for t in turntable} == {".webp", ".mp4"} and all(t.is_file() for t in turntable)
    assert "TINY-NOISE" in str(ply[0])


def test_gpu_server_command_drops_cpu_flag_and_unhides_gpus(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_facelift", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpu = mod.make_server(tmp_path, tmp_path, device="gpu")
    assert "--cpu" not in gpu.command() and "main.py" in gpu.command()
    assert "CUDA_VISIBLE_DEVICES" not in gpu.environment()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert mod.make_server(tmp_path, tmp_path, device="gpu").environment()["CUDA_VISIBLE_DEVICES"] == "1"
    cpu = mod.make_server(tmp_path, tmp_path, device="cpu")
    assert "--cpu" in cpu.command() and cpu.environment()["CUDA_VISIBLE_DEVICES"] == ""
