"""GS-LRM: architecture, forward semantics, parity with the official fixtures, checkpoint loading/conversion."""

from __future__ import annotations

import json
import os

import pytest
import torch

from facelift_models import cameras as C
from facelift_models.errors import InputError, Interrupted, WeightsError
from facelift_models.reconstruct.gslrm import GSLRM, GSLRMConfig, pixel_aligned_image, reconstruct
from facelift_models.reconstruct.checkpoint import load_gslrm, read_state_dict
from facelift_models.parity.common import run_fixture
from tests.conftest import reference_file, sidecars, fixture_id
from harness.tiny_models import write_gslrm_checkpoint

TINY = GSLRMConfig(d=64, n_layer=2, d_head=32, image_size=16)
GSLRM_SIDECARS = sidecars("gslrm")


def _tiny_model(seed=0, config=TINY) -> GSLRM:
    torch.manual_seed(seed)
    m = GSLRM(config).eval()
    with torch.no_grad():  # non-trivial LayerNorm weights so that a swapped norm would show
        for name, p in m.named_parameters():
            if name.endswith("norm1.weight") or "layer_norm" in name or "layernorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return m


def _probe(size=16, views=6, batch=1, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, views, 3, size, size, generator=g), C.official_views().resized(size, size)


# ----------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("path", GSLRM_SIDECARS, ids=fixture_id)
def test_parity_fixture(path):
    report = run_fixture(path)
    bad = [f"{l.key}: {l.max_abs_diff} {l.detail}" for l in report.lines if not l.ok]
    assert report.passed, bad
    compared = [l for l in report.lines if l.key.startswith(("out.", "mid."))]
    assert compared, "nothing compared"
    # the spec's fp32 SDPA policy: <= 1e-5 (fixture atol is the looser 1e-4)
    assert max(l.max_abs_diff for l in compared) <= 1e-5


def test_parity_detects_a_wrong_model(tmp_path):
    """The parity runner must fail when the maths is off (guards against a runner that compares nothing)."""
    path = GSLRM_SIDECARS[0]
    meta = json.loads(path.read_text())
    meta["layernorm_eps"] = 1e-1
    meta["tensors"] = str(path.parent / meta["tensors"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(meta))
    assert not run_fixture(bad).passed


# ------------------------------------------------------------------------------------ architecture
def test_full_size_manifest_on_meta_device():
    manifest = json.loads((reference_file("gslrm_full_state_dict.json")).read_text())
    expected = {k: v["shape"] for k, v in manifest["state_dict"].items() if not k.startswith("loss_calculator.")}
    with torch.device("meta"):
        model = GSLRM(GSLRMConfig())
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert got == expected
    assert all(v.dtype == torch.float32 for v in model.state_dict().values())
    assert sum(v.numel() for v in model.state_dict().values()) == manifest["num_params_without_vgg"]


def test_default_config_is_official():
    cfg = GSLRMConfig()
    assert (cfg.d, cfg.n_layer, cfg.d_head, cfg.patch_size, cfg.in_channels, cfg.n_gaussians, cfg.sh_degree,
            cfg.image_size, cfg.layernorm_eps) == (1024, 24, 64, 8, 9, 2, 0, 512, 1e-5)
    assert cfg.n_heads == 16 and cfg.gaussian_dim == 14


def test_bad_config():
    with pytest.raises(InputError):
        GSLRMConfig(d=100, d_head=64)
    with pytest.raises(InputError):
        GSLRMConfig(sh_degree=1)


def test_no_biases_and_exact_gelu():
    m = _tiny_model()
    assert not any(n.endswith("bias") for n, _ in m.named_parameters())
    gelus = [mod for mod in m.modules() if isinstance(mod, torch.nn.GELU)]
    assert gelus and all(g.approximate == "none" for g in gelus)


def test_patchify_feature_order():
    """Feature index within a patch is (ph*P + pw)*C + c; tokens are row-major over patches."""
    m = _tiny_model()
    p, c = 8, 9
    x = torch.zeros(1, c, 16, 16)
    for ch in range(c):
        for row in range(16):
            for col in range(16):
                x[0, ch, row, col] = ch + 100 * (col % p) + 1000 * (row % p) + 10000 * (row // p * 2 + col // p)
    tokens = m.patch_embedder[0](x)
    assert tokens.shape == (1, 4, p * p * c)
    for token in range(4):
        for ph in (0, 3, 7):
            for pw in (0, 5):
                for ch in (0, 8):
                    assert tokens[0, token, (ph * p + pw) * c + ch] == ch + 100 * pw + 1000 * ph + 10000 * token


def test_head_transforms_and_hard_pixel_alignment():
    """Raw transforms of spec §6.6 and the on-ray positions of §6.7, checked against the heads' raw outputs."""
    m = _tiny_model()
    heads = {}
    m.gaussian_upsampler.register_forward_hook(lambda mod, i, o: heads.__setitem__("global", o.clone()))
    m.pixel_gaussian_decoder.register_forward_hook(lambda mod, i, o: heads.__setitem__("pixel", o.clone()))
    img, cams = _probe()
    g = m(img, cams)[0]
    h = torch.cat([heads["global"], heads["pixel"].reshape(1, -1, 14)], dim=1)[0]
    assert len(g) == 2 + 6 * 16 * 16
    assert torch.equal(g.xyz[:2], h[:2, 0:3])                     # global xyz used directly
    assert torch.equal(g.f_dc, h[:, 3:6])
    assert torch.equal(g.log_scales, torch.clamp(h[:, 6:9] - 2.3, max=-1.2))
    assert torch.equal(g.quats, h[:, 9:13])
    assert torch.equal(g.opacity_logits, h[:, 13] - 2.0)
    # pixel Gaussians lie on their pixel's ray at t = (2 sigmoid(mean h_xyz) - 1) * 1.8 - o.d
    o, d = C.ray_bundle(cams)
    to_order = lambda t: t.reshape(6, 3, 2, 8, 2, 8).permute(0, 2, 4, 3, 5, 1).reshape(-1, 3)  # noqa: E731
    o, d = to_order(o), to_order(d)
    t = (2 * torch.sigmoid(h[2:, 0:3].mean(1, keepdim=True)) - 1) * 1.8 - (o * d).sum(1, keepdim=True)
    assert torch.allclose(g.xyz[2:], o + t * d, atol=1e-6)


def test_gaussian_order_matches_image_layout():
    m = _tiny_model()
    img, cams = _probe()
    g = m(img, cams)[0]
    pix = pixel_aligned_image(g.xyz, 6, 16, 16)
    v, y, x = 4, 11, 6
    row = 2 + ((((v * 2 + y // 8) * 2 + x // 8) * 8 + y % 8) * 8 + x % 8)
    assert torch.equal(pix[v, :, y, x], g.xyz[row])
    # the pixel Gaussian sits on the ray of *its* pixel
    o, d = C.ray_bundle(cams)
    assert torch.linalg.cross(pix[v, :, y, x] - o[v, :, y, x], d[v, :, y, x], dim=0).abs().max() < 1e-5


def test_xyz_is_never_clamped():
    cfg = GSLRMConfig(d=64, n_layer=1, d_head=32, depth_preact_bias=50.0)   # pushes depth to o.d-max + 1.8
    m = _tiny_model(config=cfg)
    img, cams = _probe()
    g = m(img, cams)[0]
    assert g.xyz[2:].abs().max() > 1.5


def test_batch_items_are_independent_and_cameras_per_item():
    m = _tiny_model()
    img, cams = _probe(batch=2)
    both = m(img, cams)
    one = m(img[1:], cams)[0]
    assert len(both) == 2
    assert torch.allclose(both[1].xyz, one.xyz, atol=1e-5)
    other = C.turntable(6).resized(16, 16)
    mixed = m(img, [cams, other])
    assert torch.allclose(mixed[0].xyz, both[0].xyz, atol=1e-5)
    assert not torch.allclose(mixed[1].xyz, both[1].xyz, atol=1e-3)


def test_reconstruct_inference_mode_progress_and_interrupt():
    m = _tiny_model()
    img, cams = _probe()
    calls = []
    out = reconstruct(m, img[0], cams, progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 2), (2, 2)]
    assert out[0].xyz.is_inference() and not out[0].xyz.requires_grad
    assert out[0].xyz.dtype == torch.float32

    def stop(i, n):
        raise Interrupted("stopped")

    with pytest.raises(Interrupted):
        reconstruct(m, img, cams, progress=stop)


def test_bf16_autocast_on_cpu_stays_close_and_float32_out():
    m = _tiny_model()
    img, cams = _probe()
    ref = m(img, cams)[0]
    low = m(img, cams, dtype=torch.bfloat16)[0]
    assert low.xyz.dtype == torch.float32
    assert (low.xyz - ref.xyz).abs().max() < 0.1


@pytest.mark.parametrize("case", ["views", "size", "patch", "nan", "batch_cams"])
def test_forward_rejects_bad_inputs(case):
    m = _tiny_model()
    img, cams = _probe()
    if case == "views":
        img = img[:, :5]
    elif case == "size":
        img = torch.rand(1, 6, 3, 24, 24)
    elif case == "patch":
        img, cams = torch.rand(1, 6, 3, 12, 12), cams.resized(12, 12)
    elif case == "nan":
        img[0, 0, 0, 0, 0] = float("nan")
    elif case == "batch_cams":
        cams = [cams, cams, cams]
    with pytest.raises(InputError):
        reconstruct(m, img, cams)


# ------------------------------------------------------------------------------ checkpoint loading
def test_official_pt_loads_converts_and_reloads_identically(tmp_path, capsys):
    from facelift_models.convert import main as convert_main

    m = _tiny_model()
    pt = write_gslrm_checkpoint(m, tmp_path / "ckpt_0000000000021125.pt")
    loaded = load_gslrm(pt, config=TINY)
    assert loaded.config == TINY
    assert not any(k.startswith("loss_calculator.") for k in loaded.state_dict())
    img, cams = _probe()
    ref = m(img, cams)[0]
    got = loaded(img, cams)[0]
    for k, v in ref.tensors().items():
        assert torch.equal(v, got.tensors()[k]), k

    # the architecture is inferred from the weights (d_head is not in a .pt: pass a config-equal model)
    inferred = load_gslrm(pt)
    assert (inferred.config.d, inferred.config.n_layer, inferred.config.patch_size) == (64, 2, 8)

    out = tmp_path / "gslrm.safetensors"
    # d_head 32 cannot be inferred from the .pt, so convert a model whose d_head is the official 64
    m64 = _tiny_model(config=GSLRMConfig(d=64, n_layer=2))
    pt64 = write_gslrm_checkpoint(m64, tmp_path / "ckpt64.pt")
    assert convert_main([str(pt64), "-o", str(out), "--probe-size", "16"]) == 0
    printed = capsys.readouterr().out
    assert "identical" in printed and "wrote" in printed
    sd, meta = read_state_dict(out)
    assert meta["facelift_kind"] == "facelift_gslrm" and json.loads(meta["config"])["d"] == 64
    assert set(sd) == set(m64.state_dict())
    reloaded = load_gslrm(out)
    ref64 = m64(img, cams)[0]
    got64 = reloaded(img, cams)[0]
    for k, v in ref64.tensors().items():
        assert torch.equal(v, got64.tensors()[k]), k
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_convert_fp16_is_half_size_and_upcast_on_load(tmp_path):
    from safetensors import safe_open

    from facelift_models.convert import convert

    m = _tiny_model(config=GSLRMConfig(d=64, n_layer=2))
    pt = write_gslrm_checkpoint(m, tmp_path / "c.pt")
    out = convert(pt, tmp_path / "g16.safetensors", dtype="fp16", probe_size=16, log=lambda *_: None)
    with safe_open(str(out), "pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())
    loaded = load_gslrm(out)
    assert loaded.dtype == torch.float32
    img, cams = _probe()
    assert (loaded(img, cams)[0].xyz - m(img, cams)[0].xyz).abs().max() < 1e-2


def test_convert_failed_verification_writes_nothing(tmp_path, monkeypatch):
    import facelift_models.convert as conv

    m = _tiny_model(config=GSLRMConfig(d=64, n_layer=1))
    pt = write_gslrm_checkpoint(m, tmp_path / "c.pt")
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"previous")
    monkeypatch.setitem(conv.FP16_TOLERANCE, "atol", 0.0)
    monkeypatch.setitem(conv.FP16_TOLERANCE, "rtol", 0.0)
    with pytest.raises(WeightsError, match="Verification failed"):
        conv.convert(pt, out, dtype="fp16", probe_size=16, log=lambda *_: None)
    assert out.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["c.pt", "out.safetensors"]


@pytest.mark.parametrize("problem", ["missing", "wrong_shape", "unexpected"])
def test_mismatched_checkpoint_is_a_readable_error(tmp_path, problem):
    m = _tiny_model()
    key = "transformer_layers.1.attn.fc.weight"
    kwargs = {"missing": {"drop": key}, "wrong_shape": {"reshape": key},
              "unexpected": {"extra": "transformer_layers.0.attn.extra_scale"}}[problem]
    pt = write_gslrm_checkpoint(m, tmp_path / "bad.pt", **kwargs)
    with pytest.raises(WeightsError) as err:
        load_gslrm(pt, config=TINY)
    msg = str(err.value)
    assert str(pt) in msg and "\n" not in msg
    if problem == "missing":
        assert "1 missing key(s): transformer_layers.1.attn.fc.weight" in msg
    elif problem == "wrong_shape":
        assert "transformer_layers.1.attn.fc.weight is [3,5], expected [64,64]" in msg
    else:
        assert "unexpected key(s): transformer_layers.0.attn.extra_scale" in msg


def test_truncated_and_foreign_files_are_readable_errors(tmp_path):
    m = _tiny_model()
    pt = write_gslrm_checkpoint(m, tmp_path / "full.pt")
    data = pt.read_bytes()
    cases = {
        "truncated.pt": data[: len(data) // 2],
        "text.pt": b"this is not a checkpoint\n" * 10,
        "empty.pt": b"",
        "truncated.safetensors": b"",
    }
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "ok.safetensors"))
    cases["truncated.safetensors"] = (tmp_path / "ok.safetensors").read_bytes()[:-1000]
    for name, content in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(WeightsError) as err:
            load_gslrm(p, config=TINY)
        assert str(p) in str(err.value), name
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="not a GS-LRM checkpoint"):
        load_gslrm(tmp_path / "list.pt", config=TINY)
    torch.save({"model": {"foo.weight": torch.zeros(2)}}, tmp_path / "other_model.pt")
    with pytest.raises(WeightsError, match="missing key"):
        load_gslrm(tmp_path / "other_model.pt", config=TINY)
    with pytest.raises(WeightsError, match="not found"):
        load_gslrm(tmp_path / "nope.pt")
    with pytest.raises(WeightsError, match="folder"):
        load_gslrm(tmp_path)


def test_pickled_objects_are_refused(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"model": SchedulerState(1)}, p)
    with pytest.raises(WeightsError, match="cannot be loaded safely"):
        load_gslrm(p, config=TINY)


class SchedulerState:
    """A custom class: pickled by reference, so weights_only=True refuses it."""

    def __init__(self, step):
        self.step = step


def test_foreign_objects_need_explicit_trust(tmp_path):
    m = _tiny_model()
    p = write_gslrm_checkpoint(m, tmp_path / "odd.pt")
    ckpt = torch.load(p, weights_only=True)
    ckpt["lr_scheduler"]["state"] = SchedulerState(3)
    torch.save(ckpt, p)
    with pytest.raises(WeightsError, match="trust-pickle"):
        load_gslrm(p, config=TINY)
    img, cams = _probe()
    assert torch.equal(load_gslrm(p, config=TINY, trust_pickle=True)(img, cams)[0].xyz, m(img, cams)[0].xyz)


def test_plain_state_dicts_load(tmp_path):
    from safetensors.torch import save_file

    m = _tiny_model()
    torch.save(m.state_dict(), tmp_path / "bare.pt")
    sd = {k: v.half().contiguous() for k, v in m.state_dict().items()}
    save_file(sd, str(tmp_path / "half.safetensors"))
    img, cams = _probe()
    ref = m(img, cams)[0].xyz
    assert torch.equal(load_gslrm(tmp_path / "bare.pt", config=TINY)(img, cams)[0].xyz, ref)
    half = load_gslrm(tmp_path / "half.safetensors", config=TINY)
    assert half.dtype == torch.float32
    assert (half(img, cams)[0].xyz - ref).abs().max() < 1e-2
