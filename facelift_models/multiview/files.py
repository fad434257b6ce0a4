"""Reading the files of the multi-view diffusion folder: JSON configs, safetensors weights, and transformers'
``from_pretrained`` dtype keyword.  Every failure becomes a :class:`WeightsError` that names the file.

Shared by :mod:`.unet`, :mod:`.loading` and :mod:`.view_embeddings` (which therefore do not import each other for
these helpers).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import WeightsError

HF_REPO = "wlyu/OpenFaceLift"


def read_json(path: Path, what: str = "file") -> dict:
    """A JSON file of the weights folder; unreadable or invalid JSON becomes a WeightsError naming the file."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise WeightsError(f"The {what} {path} cannot be read as JSON ({e}). Re-download it from "
                           "wlyu/OpenFaceLift.") from None


def read_safetensors(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """Load a safetensors file on CPU, turning a missing or corrupt file into a WeightsError that names it."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"The {what} file {path} is missing. Download it again (wlyu/OpenFaceLift on Hugging "
                           "Face) into that folder.")
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # SafetensorError, OSError, ...: the message is what matters to the user
        raise WeightsError(f"The {what} file {path} is not a valid safetensors file ({type(e).__name__}: {e}). "
                           "It is probably truncated or corrupted: delete it and download it again.") from None


def check_safetensors(path: Path, what: str) -> None:
    """Open the header of a safetensors file: a missing, truncated or corrupt file gives a WeightsError naming it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            f.keys()
    except Exception as e:
        raise WeightsError(f"The {what} weights {path} are not a valid safetensors file ({type(e).__name__}: {e}). "
                           f"The download is probably truncated or corrupted: delete the file and download it "
                           f"again from {HF_REPO}.") from None


def transformers_dtype(dtype: torch.dtype) -> dict:
    """The dtype keyword of transformers' from_pretrained (renamed from torch_dtype to dtype in 4.56)."""
    import transformers
    from packaging.version import Version

    return {"dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype": dtype}
