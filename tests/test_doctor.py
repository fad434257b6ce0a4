"""The doctor report: models folder state, versions, device and render backends, never failing on absent parts."""

from __future__ import annotations

import builtins
import json

import pytest

from facelift_models import config, doctor
from facelift_models import render as render_pkg
from facelift_models.weights import store as S
from facelift_models.weights.store import ModelStore


def _put(store: ModelStore, file_id: str, data: bytes | None = None) -> None:
    p = store.path(file_id)
    p.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        with open(p, "wb") as fh:
            fh.truncate(store.entry(file_id).size or 4)
    else:
        p.write_bytes(data)


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.delenv(S.ENV_MODELS_DIR, raising=False)
    monkeypatch.delenv(S.ENV_SKIP_SIZE_CHECK, raising=False)
    st = ModelStore(tmp_path / "facelift")
    _put(st, "gslrm.fp16")
    _put(st, "mv.vae")
    return st


def test_report_lists_present_and_missing_files(models):
    r = doctor.collect(str(models.root), smoke_render=False)
    json.dumps(r)  # JSON-able
    states = {f["id"]: f["state"] for f in r["models"]["files"]}
    assert states["gslrm.fp16"] == "present" and states["mv.vae"] == "present"
    assert states["gslrm.checkpoint"] == "missing" and states["mv.unet"] == "missing"
    comps = r["models"]["components"]
    assert comps["reconstruction"]["ready"] is True and comps["reconstruction"]["message"] is None
    assert comps["sampling"]["ready"] is False
    assert "diffusion_pytorch_model.safetensors" in comps["sampling"]["message"]
    assert "python -m facelift_models.download" in comps["sampling"]["message"]


def test_versions_device_and_absent_packages(models):
    v = doctor.package_versions(("torch", "surely-not-a-real-package-xyz"))
    assert v["python"] and v["torch"] and v["surely-not-a-real-package-xyz"] is None
    r = doctor.collect(str(models.root), smoke_render=False)
    for name in ("torch", "diffusers", "transformers", "safetensors", "plyfile", "numba", "gsplat", "ComfyUI"):
        assert name in r["versions"]
    assert r["device"]["type"] in {"cpu", "cuda", "mps"}
    text = doctor.format_report(r)
    assert "NOT READY" in text and "Device:" in text and "Adobe Research License" in text


def test_verify_flags_corrupt_files(models):
    for n in ("pnet", "rnet", "onet"):
        _put(models, f"mtcnn.{n}", b"not the real weights")
    r = doctor.collect(str(models.root), verify=True, smoke_render=False)
    states = {f["id"]: f["state"] for f in r["models"]["files"]}
    assert states["mtcnn.pnet"] == "corrupt"
    assert r["models"]["components"]["face_crop"]["ready"] is False


def test_missing_render_module_is_reported_not_raised(models, monkeypatch):
    real_import = doctor.importlib.import_module

    def fake(name, *a, **k):
        if name == "facelift_models.render":
            raise ImportError("simulated: render not built yet")
        return real_import(name, *a, **k)

    monkeypatch.setattr(doctor.importlib, "import_module", fake)
    r = doctor.collect(str(models.root))
    assert "simulated" in r["render"]["error"]
    assert "simulated" in doctor.format_report(r)


def test_no_torch_is_reported_not_raised(monkeypatch):
    real = builtins.__import__

    def no_torch(name, *a, **k):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("no torch here")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    assert "no torch" in doctor.device_info()["error"]


def test_smoke_render_detects_a_working_backend():
    assert doctor._smoke_render(render_pkg, "torch", "cpu") is True


def test_no_models_folder_configured(monkeypatch):
    monkeypatch.delenv(S.ENV_MODELS_DIR, raising=False)
    monkeypatch.setattr(config, "comfy_models_dir_above_pack", lambda: None)
    r = doctor.collect(None, smoke_render=False)
    assert r["models"]["dir"] is None and "FACELIFT_MODELS_DIR" in r["models"]["error"]
    doctor.format_report(r)


def test_cli_json(models, capsys):
    assert doctor.main(["--models-dir", str(models.root), "--json", "--no-render-test"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["models"]["dir"] == str(models.root)


def test_convert_writes_the_file_the_store_expects(tmp_path, monkeypatch, capsys):
    from harness import tiny_models as tiny

    monkeypatch.delenv(S.ENV_MODELS_DIR, raising=False)
    st = ModelStore(tmp_path / "facelift")
    assert doctor.main(["--models-dir", str(st.root), "--convert", "fp32", "--no-render-test"]) == 2
    assert "ckpt_0000000000021125.pt" in capsys.readouterr().err  # nothing to convert: says what is missing
    tiny.write_tiny_gslrm_checkpoint(st.path("gslrm.checkpoint"))
    assert doctor.main(["--models-dir", str(st.root), "--convert", "fp32", "--no-render-test"]) == 0
    assert st.find("gslrm.fp32") is not None
    st.path("gslrm.checkpoint").unlink()
    st.require(S.RECONSTRUCTION)  # the conversion alone is enough now


def test_comfyui_found_above_the_pack(tmp_path, monkeypatch):
    comfy = tmp_path / "ComfyUI"
    pkg = comfy / "custom_nodes" / "facelift" / "facelift_models"
    pkg.mkdir(parents=True)
    (comfy / "comfy").mkdir()
    (comfy / "comfyui_version.py").write_text('__version__ = "0.3.99"\n')
    monkeypatch.setattr(doctor, "__file__", str(pkg / "doctor.py"))
    monkeypatch.delitem(__import__("sys").modules, "folder_paths", raising=False)
    assert doctor.comfyui_info() == {"found": True, "path": str(comfy), "version": "0.3.99"}


def test_report_says_which_cpu_backend_auto_uses_and_why(monkeypatch):
    from facelift_models import render

    r = doctor.render_backends(smoke=False)
    assert r["device"] == "cpu" and r["auto"] == "numba"  # numba is a requirement of the pack
    assert "numba" in r["auto_reason"]
    assert "auto picks: numba on cpu (CPU device and numba installed" in doctor.format_report(
        doctor.collect(None, smoke_render=False) | {"render": r})

    monkeypatch.setattr(render, "numba_available", lambda: False)
    r = doctor.render_backends(smoke=False)
    assert r["auto"] == "torch" and "pip install numba" in r["auto_reason"]
