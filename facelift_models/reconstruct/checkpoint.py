"""Loading GS-LRM weights: the official training checkpoint (``.pt``) or a plain safetensors state dict.

The official file ``gslrm/ckpt_0000000000021125.pt`` (~3.7 GB) is a training checkpoint: the weights sit under
``model`` next to AdamW state. It is opened with ``mmap=True, weights_only=True`` so the optimizer tensors
are never read from disk and no arbitrary pickle code runs; ``loss_calculator.*`` (VGG19, training only) is
dropped; every other key must match the model exactly (spec §6.9).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import torch

from ..errors import WeightsError
from .gslrm import GSLRM, GSLRMConfig

IGNORED_PREFIXES = ("loss_calculator.",)
# Wrappers some tools add around a state dict (DDP, torch.compile); stripped when every key has them.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
METADATA_KIND = "facelift_gslrm"


def _is_safetensors(path: Path) -> bool:
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 32)


def _read_pt(path: Path, trust_pickle: bool = False) -> dict:
    """torch.load of an official checkpoint without paging in the optimizer state or running pickle code
    (``trust_pickle`` lifts the weights_only restriction, for a file the user trusts)."""
    if not zipfile.is_zipfile(path):
        raise WeightsError(
            f"{path} is not a PyTorch checkpoint (no zip archive found: the file is truncated, still "
            "downloading, or of another format). Re-download gslrm/ckpt_0000000000021125.pt from the Hugging "
            "Face repo wlyu/OpenFaceLift, or point to a .safetensors file made by "
            "`python -m facelift_models.convert`.")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=not trust_pickle, mmap=True)
    except Exception as e:  # torch raises RuntimeError / UnpicklingError / EOFError for damaged files
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise WeightsError(
                f"{path} contains Python objects that cannot be loaded safely (weights_only=True refused: "
                f"{text}). Use the file from wlyu/OpenFaceLift; only if you trust this file's origin, convert it "
                "once with `python -m facelift_models.convert --trust-pickle` and load the .safetensors.") from None
        raise WeightsError(
            f"{path} could not be read as a PyTorch checkpoint ({text}). The file is probably truncated or "
            "corrupt (an interrupted download?): delete it and download it again.") from None


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightsError(
            f"{path} could not be read as a safetensors file ({e}). It is truncated or corrupt: "
            "re-create it with `python -m facelift_models.convert` or download it again.") from None


def read_state_dict(path: str | os.PathLike, trust_pickle: bool = False) -> tuple[dict[str, torch.Tensor], dict]:
    """The GS-LRM weights stored in ``path`` (official ``.pt`` or safetensors) and the file's metadata.

    ``loss_calculator.*`` keys are removed. Tensors may be memory-mapped; nothing is copied yet.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(
            f"GS-LRM weights not found at {path}. Download gslrm/ckpt_0000000000021125.pt from the Hugging Face "
            "repo wlyu/OpenFaceLift (or convert it with `python -m facelift_models.convert`) and put it there.")
    if path.is_dir():
        raise WeightsError(f"{path} is a folder; give the path of the GS-LRM weight file inside it.")
    meta: dict = {}
    if _is_safetensors(path):
        sd, meta = _read_safetensors(path)
    else:
        obj = _read_pt(path, trust_pickle)
        if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
            sd = obj["model"]
        elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            sd = obj  # a bare state dict saved with torch.save
        else:
            found = sorted(obj.keys())[:10] if isinstance(obj, dict) else type(obj).__name__
            raise WeightsError(
                f"{path} is a PyTorch file but not a GS-LRM checkpoint: expected a dict with the weights under "
                f"'model' (found {found}). Use gslrm/ckpt_0000000000021125.pt from wlyu/OpenFaceLift.")
    sd = {k: v for k, v in sd.items() if isinstance(k, str) and not k.startswith(IGNORED_PREFIXES)}
    for prefix in _WRAPPER_PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{path}: entries {bad[:5]} of the state dict are not tensors; the file is not a "
                           "GS-LRM checkpoint.")
    return sd, meta


def config_from_state_dict(sd: dict[str, torch.Tensor], d_head: int | None = None,
                           metadata: dict | None = None, source: str = "weights") -> GSLRMConfig:
    """Infer the architecture from the weight shapes (d, layers, patch, Gaussian tokens); ``d_head`` comes
    from the file's metadata when it was written by our converter, else the official 64."""
    stored = {}
    if metadata and metadata.get("config"):
        try:
            stored = json.loads(metadata["config"])
        except ValueError:
            stored = {}
    try:
        d = int(sd["input_layer_norm.weight"].shape[0])
        layers = {int(m.group(1)) for k in sd if (m := re.match(r"transformer_layers\.(\d+)\.", k))}
        n_layer = max(layers) + 1 if layers else 0
        patch_in = int(sd["patch_embedder.1.weight"].shape[1])
        n_gaussians = int(sd["gaussian_position_embeddings"].shape[0])
    except KeyError as e:
        raise WeightsError(f"{source}: key {e} is missing, so this is not a GS-LRM state dict.") from None
    in_channels = int(stored.get("in_channels", 9))
    patch = int(round((patch_in / in_channels) ** 0.5))
    values = dict(stored)
    values.update(d=d, n_layer=n_layer, patch_size=patch, in_channels=in_channels, n_gaussians=n_gaussians)
    if d_head is not None:
        values["d_head"] = d_head
    try:
        return GSLRMConfig.from_dict(values)
    except Exception as e:
        raise WeightsError(f"{source}: the weight shapes do not describe a valid GS-LRM ({e}).") from None


def _describe(shape) -> str:
    return "[" + ",".join(str(int(s)) for s in shape) + "]"


def check_state_dict(model: torch.nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    """Raise a readable WeightsError unless ``sd`` has exactly the model's keys and shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [(k, tuple(sd[k].shape), tuple(expected[k].shape)) for k in expected
             if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or wrong):
        return

    def listing(items, fmt, limit=8):
        shown = ", ".join(fmt(x) for x in items[:limit])
        return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): " + listing(missing, str))
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): " + listing(unexpected, str))
    if wrong:
        parts.append(f"{len(wrong)} key(s) with the wrong shape: "
                     + listing(wrong, lambda x: f"{x[0]} is {_describe(x[1])}, expected {_describe(x[2])}"))
    raise WeightsError(
        f"{source} does not match the GS-LRM architecture: " + "; ".join(parts) + ". The file is not the "
        "official GS-LRM checkpoint (gslrm/ckpt_0000000000021125.pt from wlyu/OpenFaceLift) or a conversion "
        "of it, or it was saved from a different model configuration.")


def build_model(sd: dict[str, torch.Tensor], config: GSLRMConfig, source: str,
                device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                copy: bool = True) -> GSLRM:
    """A GS-LRM on ``device`` in ``dtype`` holding exactly ``sd`` (checked strictly first).

    ``copy=False`` lets the model adopt tensors that already have the right device and dtype (for freshly
    read, owned tensors); the default copies, so memory-mapped or shared inputs are never aliased.
    """
    with torch.device("meta"):
        model = GSLRM(config)
    check_state_dict(model, sd, source)
    params = {k: v.to(device=device, dtype=dtype, copy=copy) for k, v in sd.items()}
    model.load_state_dict(params, strict=True, assign=True)
    return model.eval().requires_grad_(False)


def load_gslrm(path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
               config: GSLRMConfig | None = None, trust_pickle: bool = False) -> GSLRM:
    """Load GS-LRM from the official ``.pt`` or a safetensors file (fp16 files are upcast to ``dtype``).

    The architecture is inferred from the weights unless ``config`` is given. Returns an eval-mode model.
    """
    sd, meta = read_state_dict(path, trust_pickle)
    if config is None:
        config = config_from_state_dict(sd, metadata=meta, source=str(path))
    for k, v in sd.items():
        if not v.is_floating_point():
            raise WeightsError(f"{path}: tensor {k} has dtype {v.dtype}; GS-LRM weights must be floating point.")
    # safetensors tensors were read into memory we own; .pt tensors are memory-mapped and must be copied
    return build_model(sd, config, str(path), device=device, dtype=dtype, copy=not _is_safetensors(Path(path)))
