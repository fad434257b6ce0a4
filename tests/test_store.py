"""The models folder: layout, registry facts, folder resolution, status and the missing-files message."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from facelift_models import config
from facelift_models.weights import store as S
from facelift_models.errors import WeightsError
from facelift_models.weights.store import ModelStore

# Abbreviated SHA-256 values as printed in the spec (§11): the registry's full values must agree with them.
SPEC_HASH_ENDS = {
    "gslrm/ckpt_0000000000021125.pt": ("705e9aa37c7ea964bb06f25db060c12676a93d9ce6a365ac8b50128a3dc12662", ""),
    "mvdiffusion/pipeckpts/image_encoder/model.safetensors": ("ae616c24", "466a"),
    "mvdiffusion/pipeckpts/image_normalizer/diffusion_pytorch_model.safetensors": ("a726e715", "97a3"),
    "mvdiffusion/pipeckpts/text_encoder/model.safetensors": ("bc1827c4", "e13f"),
    "mvdiffusion/pipeckpts/unet/diffusion_pytorch_model.safetensors": ("2389a092", "1629"),
    "mvdiffusion/pipeckpts/vae/diffusion_pytorch_model.safetensors": ("3e4c0899", "af9a"),
}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(S.ENV_MODELS_DIR, raising=False)
    monkeypatch.delenv(S.ENV_SKIP_SIZE_CHECK, raising=False)


def touch(store: ModelStore, file_id: str, size: int | None = None) -> Path:
    p = store.path(file_id)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = size if size is not None else (store.entry(file_id).size or 3)
    with open(p, "wb") as fh:
        fh.truncate(n)  # sparse: a "1.26 GB" file costs nothing
    return p


def fill(store: ModelStore, component_ids) -> None:
    for i in component_ids:
        touch(store, i)


# ---------------------------------------------------------------------------------------------------- registry
def test_layout_mirrors_the_hugging_face_repository():
    ids = [f.file_id for f in S.REGISTRY]
    assert len(ids) == len(set(ids))
    hf = [f for f in S.REGISTRY if f.source == S.HF]
    assert all(f.local_path == f.repo_path for f in hf)
    assert {f.repo_path for f in hf} >= {"LICENSE", "gslrm/ckpt_0000000000021125.pt",
                                         "mvdiffusion/pipeckpts/unet/diffusion_pytorch_model.safetensors"}
    for f in S.REGISTRY:
        assert not f.local_path.startswith("/") and ".." not in f.local_path.split("/")
    # our own files sit next to what they derive from
    st = ModelStore(Path("/m"))
    assert st.path("gslrm.fp16") == Path("/m/gslrm/gslrm_inference_fp16.safetensors")
    assert st.path("gslrm.fp32") == Path("/m/gslrm/gslrm_inference_fp32.safetensors")
    assert st.path("mv.view_embeddings").parent == st.path("mv.unet").parent.parent
    assert {st.path(i) for i in ("mtcnn.pnet", "mtcnn.rnet", "mtcnn.onet")} == {
        Path("/m/mtcnn/pnet.pt"), Path("/m/mtcnn/rnet.pt"), Path("/m/mtcnn/onet.pt")}


def test_registry_hashes_are_full_and_agree_with_the_spec():
    by_path = {f.repo_path: f for f in S.REGISTRY if f.source == S.HF}
    for path, (head, tail) in SPEC_HASH_ENDS.items():
        h = by_path[path].sha256
        assert h is not None and re.fullmatch(r"[0-9a-f]{64}", h), path
        assert h.startswith(head) and h.endswith(tail), path
    assert S.REVISION == "3ebac9f8e2d791f02507b8aa61520e1ba379a115"


def test_mtcnn_hashes_are_the_facenet_pytorch_release_files():
    """The registry's MTCNN hashes against an independent source: the official face-crop fixtures, made with the
    facenet-pytorch 2.6.0 files themselves."""
    from tests.conftest import sidecars

    recorded = {}
    for p in sidecars("face_crop"):
        recorded.update({k.split("/")[-1]: v for k, v in (json.loads(p.read_text()).get("weights_sha256") or {}).items()})
    assert set(recorded) == {"pnet.pt", "rnet.pt", "onet.pt"}
    st = ModelStore(Path("/m"))
    assert {n: st.entry(f"mtcnn.{n[:-3]}").sha256 for n in recorded} == recorded


def test_purposes_never_fetch_training_or_derived_files(tmp_path):
    st = ModelStore(tmp_path)
    todo = st.files_to_fetch([S.SAMPLING, S.RECONSTRUCTION])
    assert todo and all(f.source == S.HF and f.purpose != S.TRAINING for f in todo)
    assert "gslrm.checkpoint" in {f.file_id for f in todo}
    assert "mv.text_encoder" in {f.file_id for f in todo}  # no cached view embeddings yet


# ---------------------------------------------------------------------------------------------- models folder
def test_models_dir_precedence(tmp_path, monkeypatch):
    a, b, c, d = (tmp_path / n for n in "abcd")
    # ComfyUI's list: the first folder that already holds a FaceLift file wins, else the first one
    touch(ModelStore(c), "licence")
    assert S.resolve_models_dir(None, [b, c]) == c
    assert S.resolve_models_dir(None, [b, d]) == b
    monkeypatch.setenv(S.ENV_MODELS_DIR, str(d))
    assert S.resolve_models_dir(None, [b, c]) == d  # environment beats ComfyUI
    assert S.resolve_models_dir(a, [b, c]) == a  # explicit beats everything
    monkeypatch.delenv(S.ENV_MODELS_DIR)
    monkeypatch.setattr(config, "comfy_models_dir_above_pack", lambda: None)
    with pytest.raises(WeightsError, match=S.ENV_MODELS_DIR):
        S.resolve_models_dir()


def test_models_dir_found_above_pack_in_custom_nodes(tmp_path, monkeypatch):
    comfy = tmp_path / "ComfyUI"
    pkg = comfy / "custom_nodes" / "facelift" / "facelift_models"
    pkg.mkdir(parents=True)
    (comfy / "models").mkdir()
    monkeypatch.setattr(config, "__file__", str(pkg / "config.py"))
    assert S.resolve_models_dir() == comfy / "models" / "facelift"


# ----------------------------------------------------------------------------------------------------- status
def test_status_present_missing_size_mismatch(tmp_path):
    st = ModelStore(tmp_path)
    touch(st, "mv.vae")  # right size (sparse)
    touch(st, "mv.image_encoder", size=10)  # truncated
    touch(st, "mv.unet.config")  # size unknown: presence only
    states = {s.file.file_id: s.state for s in st.status()}
    assert states["mv.vae"] == "present"
    assert states["mv.image_encoder"] == "size_mismatch"
    assert states["mv.unet.config"] == "present"
    assert states["gslrm.checkpoint"] == "missing"
    assert st.find("mv.vae") == st.path("mv.vae")
    assert st.find("mv.image_encoder") is None and st.find("gslrm.checkpoint") is None


def test_size_check_can_be_skipped_for_tiny_test_weights(tmp_path, monkeypatch):
    touch(ModelStore(tmp_path), "mv.image_encoder", size=10)
    monkeypatch.setenv(S.ENV_SKIP_SIZE_CHECK, "1")
    assert ModelStore(tmp_path).find("mv.image_encoder") is not None


def test_verify_hashes_present_files(tmp_path):
    import dataclasses
    import hashlib

    reg = tuple(dataclasses.replace(f, sha256=hashlib.sha256(b"good").hexdigest()) if f.file_id == "mv.unet"
                else f for f in S.REGISTRY)
    st = ModelStore(tmp_path, files=reg)
    assert st.verify("mv.unet") is None  # absent
    st.path("mv.unet").parent.mkdir(parents=True)
    st.path("mv.unet").write_bytes(b"good")
    assert st.verify("mv.unet") is True
    st.path("mv.unet").write_bytes(b"bad!")
    assert st.verify("mv.unet") is False
    assert st.verify("mv.unet.config") is None  # no published hash


# ---------------------------------------------------------------------------------------------------- require
def test_missing_files_message_lists_file_folder_url_and_command(tmp_path):
    st = ModelStore(tmp_path / "models" / "facelift", use_installed_facenet=False)
    touch(st, "mv.vae")
    with pytest.raises(WeightsError) as ei:
        st.require([S.SAMPLING, S.RECONSTRUCTION, S.FACE_CROP])
    msg = str(ei.value)
    for f in st.files_to_fetch([S.SAMPLING, S.RECONSTRUCTION]):
        assert f.local_path in msg
        assert str(st.path(f.file_id).parent) in msg  # the exact folder
    assert "mvdiffusion/pipeckpts/vae/diffusion_pytorch_model.safetensors is" not in msg  # present: not listed
    assert "https://huggingface.co/wlyu/OpenFaceLift" in msg
    assert (f"python -m facelift_models.download --models-dir {st.root} --components sampling reconstruction "
            "face_crop --accept-license") in msg
    assert "Adobe Research License" in msg and "non-commercial" in msg
    # MTCNN: the three files, their folder, and how to get them
    assert all(f"mtcnn/{n}.pt" in msg for n in ("pnet", "rnet", "onet"))
    assert str(st.root / "mtcnn") in msg and "scripts/fetch_mtcnn_weights.py" in msg and "facenet-pytorch" in msg


def test_message_only_mentions_what_is_missing(tmp_path):
    st = ModelStore(tmp_path)
    touch(st, "gslrm.checkpoint")
    st.require(S.RECONSTRUCTION)
    with pytest.raises(WeightsError) as ei:
        st.require(S.SAMPLING)
    assert "ckpt_0000000000021125" not in str(ei.value)
    assert "--components sampling --accept-license" in str(ei.value)


def test_wrong_size_is_reported_as_such(tmp_path):
    st = ModelStore(tmp_path)
    touch(st, "mv.image_encoder", size=1234)
    msg = st.missing_message(st.missing(S.SAMPLING), S.SAMPLING)
    assert "mvdiffusion/pipeckpts/image_encoder/model.safetensors has the wrong size" in msg
    assert "1.23 KB" in msg


def test_alternatives_converted_gslrm_and_cached_view_embeddings(tmp_path):
    st = ModelStore(tmp_path)
    hf_sampling = [f.file_id for f in S.REGISTRY if f.purpose == S.SAMPLING and f.source == S.HF]
    fill(st, hf_sampling)
    assert not st.is_ready(S.SAMPLING)  # neither text encoder nor cached embeddings yet
    touch(st, "mv.view_embeddings")
    assert st.is_ready(S.SAMPLING)
    assert st.files_to_fetch(S.SAMPLING) == []  # text encoder never fetched once embeddings are cached
    assert st.files_to_fetch(S.VIEW_EMBEDDINGS)  # unless asked for explicitly
    assert not st.is_ready(S.RECONSTRUCTION)
    touch(st, "gslrm.fp16")
    assert st.is_ready(S.RECONSTRUCTION) and st.files_to_fetch(S.RECONSTRUCTION) == []
    st.require([S.SAMPLING, S.RECONSTRUCTION])


def test_face_crop_from_models_folder(tmp_path):
    st = ModelStore(tmp_path, use_installed_facenet=False)
    assert not st.is_ready(S.FACE_CROP)
    fill(st, ["mtcnn.pnet", "mtcnn.rnet", "mtcnn.onet"])
    assert st.is_ready(S.FACE_CROP)


def test_unknown_component_and_file_id(tmp_path):
    st = ModelStore(tmp_path)
    with pytest.raises(ValueError, match="unknown FaceLift component"):
        st.require("everything")
    with pytest.raises(KeyError):
        st.path("nope")


def test_partial_downloads_are_listed(tmp_path):
    st = ModelStore(tmp_path)
    assert st.partial_downloads() == []
    p = st.staging_dir / ".cache" / "huggingface" / "download" / "gslrm" / "abc.123.incomplete"
    p.parent.mkdir(parents=True)
    p.write_bytes(b"x")
    assert st.partial_downloads() == [p]
