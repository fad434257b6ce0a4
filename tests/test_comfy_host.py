"""The test host's pure parts: which requirements it installs, the torch pin, the model-paths file."""

from __future__ import annotations

import pytest
import yaml

from harness import comfy_host


def test_host_requirements_filtering(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "comfyui-frontend-package==1.32.9\ntorch\ntorchvision>=0.1\ntorchaudio\nnumpy>=1.25.0\n"
        "#non essential dependencies:\nkornia>=0.7.1\nspandrel\n\nSQLAlchemy # db\n")
    reqs = comfy_host.host_requirements(tmp_path)
    assert reqs == ["comfyui-frontend-package==1.32.9", "numpy>=1.25.0", "kornia>=0.7.1", "SQLAlchemy",
                    "requests"]


def test_torch_pins_come_from_the_constraints_file():
    pins = comfy_host.torch_pins()
    assert sorted(p.split("==")[0] for p in pins) == ["torch", "torchvision"]
    text = comfy_host.CONSTRAINTS.read_text()
    assert all(p in text for p in pins)


def test_extra_model_paths_file(tmp_path):
    models = tmp_path / "my models"
    path = comfy_host.write_extra_model_paths(tmp_path / "paths.yaml", models, {"facelift": "fl", "vae": "v"})
    conf = yaml.safe_load(path.read_text())
    (entry,) = conf.values()
    assert entry == {"base_path": str(models), "facelift": "fl", "vae": "v"}
    assert (models / "fl").is_dir() and (models / "v").is_dir()


def test_server_command_has_private_folders(tmp_path):
    srv = comfy_host.ComfyServer(tmp_path, comfy=comfy_host.comfy_dir(), port=12345,
                                 extra_model_paths=tmp_path / "p.yaml")
    cmd = srv.command()
    assert cmd[1:3] == ["main.py", "--cpu"] and "--disable-auto-launch" in cmd
    for flag, value in (("--port", "12345"), ("--output-directory", str(tmp_path / "output")),
                        ("--input-directory", str(tmp_path / "input")), ("--temp-directory", str(tmp_path / "temp")),
                        ("--extra-model-paths-config", str(tmp_path / "p.yaml"))):
        assert cmd[cmd.index(flag) + 1] == value


def test_server_device_option(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    cpu = comfy_host.ComfyServer(tmp_path, comfy=tmp_path, port=12345)  # the tests' default
    assert cpu.device == "cpu" and "--cpu" in cpu.command() and cpu.environment()["CUDA_VISIBLE_DEVICES"] == ""
    auto = comfy_host.ComfyServer(tmp_path, comfy=tmp_path, port=12345, device="auto")
    assert "--cpu" not in auto.command() and auto.command()[1] == "main.py"
    assert auto.environment()["CUDA_VISIBLE_DEVICES"] == "0"  # the caller's GPUs stay visible
    assert auto.environment()["HF_HUB_OFFLINE"] == cpu.environment()["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(ValueError, match="device"):
        comfy_host.ComfyServer(tmp_path, comfy=tmp_path, port=12345, device="gpu")
