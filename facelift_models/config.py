"""Facts the whole package shares, each stated once: environment variable names, the models-folder layout and
search order, the official view names, and the precision (dtype) / device policy.

Bottom layer: imports nothing of this package but :mod:`.errors`, and no torch at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .errors import InputError

# ------------------------------------------------------------------------------------------ environment variables
ENV_MODELS_DIR = "FACELIFT_MODELS_DIR"  # the FaceLift models folder (outside ComfyUI, or ahead of ComfyUI's folders)
ENV_MTCNN_DIR = "FACELIFT_MTCNN_DIR"  # a folder holding pnet.pt/rnet.pt/onet.pt, searched before <models>/mtcnn
ENV_SKIP_SIZE_CHECK = "FACELIFT_SKIP_SIZE_CHECK"  # "1": accept weight files whose size differs from the release
ENV_U2NET_URL = "FACELIFT_U2NET_URL"  # a mirror of rembg's u2net.onnx (checked against the same size and SHA-256)

# ------------------------------------------------------------------------------------------ models-folder layout
COMFY_FOLDER_NAME = "facelift"  # folder_paths key and folder name under ComfyUI/models
MV_DIR = "mvdiffusion/pipeckpts"  # the official multi-view diffusion folder (diffusers layout)
GSLRM_CHECKPOINT = "gslrm/ckpt_0000000000021125.pt"  # the official GS-LRM training checkpoint
GSLRM_DIR = "gslrm"
MTCNN_DIR = "mtcnn"
U2NET_FILE = "u2net/u2net.onnx"  # U²-Net background removal (rembg's release file)
GSLRM_SUFFIXES = (".pt", ".pth", ".safetensors", ".ckpt")

# ------------------------------------------------------------------------------------------ views
VIEW_NAMES = ("front", "front_right", "right", "back", "left", "front_left")  # official order of the 6 views

# ------------------------------------------------------------------------------------------ precision / device
PRECISIONS = ("auto", "fp16", "bf16", "fp32")  # what the user may choose
DEVICES = ("auto", "cpu")
_DTYPE_NAMES = {"fp16": "float16", "float16": "float16", "bf16": "bfloat16", "bfloat16": "bfloat16",
                "fp32": "float32", "float32": "float32"}


def models_search_order(explicit: str | os.PathLike | None = None,
                        comfy_folders: Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """Every folder that may hold the FaceLift weights, in priority order, without duplicates:
    ``explicit`` (``--models-dir`` / an argument), ``$FACELIFT_MODELS_DIR``, ComfyUI's ``facelift`` folders
    (``folder_paths.get_folder_paths("facelift")``: ``models/facelift`` + extra_model_paths.yaml), then
    ``ComfyUI/models/facelift`` above this pack when it sits in ``ComfyUI/custom_nodes/``.

    The folders need not exist.  Which one of them is used for a download is the weights store's choice
    (:func:`facelift_models.weights.store.resolve_models_dir`).
    """
    roots: list[Path] = []
    if explicit:
        roots.append(Path(explicit).expanduser())
    if os.environ.get(ENV_MODELS_DIR):
        roots.append(Path(os.environ[ENV_MODELS_DIR]).expanduser())
    roots += [Path(f).expanduser() for f in (comfy_folders or []) if f]
    if not comfy_folders and (above := comfy_models_dir_above_pack()) is not None:
        roots.append(above)
    seen: set[str] = set()
    out = []
    for r in roots:
        key = os.path.normcase(os.path.abspath(r))
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def comfy_models_dir_above_pack() -> Path | None:
    """``ComfyUI/models/facelift`` when this package sits in ``ComfyUI/custom_nodes/<pack>/facelift_models``."""
    pack = Path(__file__).resolve().parents[1]
    if pack.parent.name == "custom_nodes" and (pack.parent.parent / "models").is_dir():
        return pack.parent.parent / "models" / COMFY_FOLDER_NAME
    return None


def mtcnn_search_dirs(models_dirs: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """Folders searched for the MTCNN files: ``$FACELIFT_MTCNN_DIR``, then ``<folder>/mtcnn`` of each models folder
    (``models_dirs``, else :func:`models_search_order`)."""
    dirs = [Path(os.environ[ENV_MTCNN_DIR]).expanduser()] if os.environ.get(ENV_MTCNN_DIR) else []
    roots = [Path(d) for d in models_dirs] if models_dirs else models_search_order()
    return dirs + [r / MTCNN_DIR for r in roots]


def resolve_dtype(precision, device, auto_gpu: str = "fp16"):
    """The torch dtype for a precision choice on a device: the one dtype/device policy of the package.

    ``precision``: "auto"/None, "fp16", "bf16", "fp32" (or "float16"/"bfloat16"/"float32", or a torch dtype).
    "auto" is ``auto_gpu`` on CUDA (bf16 falls back to fp16 where unsupported) and fp32 elsewhere (CPU half
    precision is slow and inexact). fp16 on the CPU is refused with an :class:`InputError`.
    """
    import torch

    if isinstance(precision, torch.dtype):
        return precision
    dev = torch.device(device)
    if precision in (None, "auto"):
        if dev.type != "cuda":
            return torch.float32
        if auto_gpu == "bf16" and not torch.cuda.is_bf16_supported():
            return torch.float16
        precision = auto_gpu
    if precision not in _DTYPE_NAMES:
        raise InputError(f"Unknown precision {precision!r}; use auto, fp16, bf16 or fp32.")
    dtype = getattr(torch, _DTYPE_NAMES[precision])
    if dev.type == "cpu" and dtype == torch.float16:
        raise InputError("fp16 precision needs a GPU (on the CPU it is very slow and inexact); use auto, fp32 or "
                         "bf16 (in FaceLift Load Models: the precision input).")
    return dtype
