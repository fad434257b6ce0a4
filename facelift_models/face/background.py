"""U²-Net background removal, numerically the official preprocessing's ``rembg.remove(image)`` (spec §4 step 1).

The official code calls ``rembg.remove`` with its defaults: the ``u2net`` ONNX model, no alpha matting, no mask
post-processing, a "naive" cutout.  This module runs the same model file (``u2net.onnx``, rembg's release,
Apache-2.0) with onnxruntime and reproduces each step of that call:

1. model input: the image as RGB (an alpha channel is dropped, grey is replicated), resized to 320×320 with
   PIL LANCZOS, divided by its own maximum (not by 255), normalised with the ImageNet mean/std in float64, cast
   to float32, NCHW;
2. matte: the first output's first channel, min-max normalised over the whole map, ×255 truncated to uint8,
   resized back to the image size with PIL LANCZOS;
3. cutout: the original image (RGB or RGBA) pasted through the matte onto a fully transparent RGBA canvas, so
   the colours are scaled by the matte *and* the alpha is the matte (times any existing alpha).  The official
   flow then alpha-composites that cutout on white, which applies the matte a second time: that is what the
   model was fed, so :func:`facelift_models.face.crop.crop_face` composites this cutout exactly the same way.

The weights are never downloaded here (see :mod:`facelift_models.download`); a missing file raises the usual
missing-weights :class:`WeightsError`.  Nothing is imported or loaded before first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError, WeightsError

INPUT_SIZE = 320
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
PIL_LANCZOS = 1

# Face Crop's ``background`` choices: auto = a connected MASK, else the image's alpha, else U²-Net;
# u2net = a connected MASK, else U²-Net (also on RGBA images, as the official code does); keep = MASK or alpha
# if given, otherwise the photo's own background.
BACKGROUND_MODES = ("auto", "u2net", "keep")


def model_input(image) -> np.ndarray:
    """The [1,3,320,320] float32 U²-Net input of a PIL image (steps of spec §4 / rembg's u2net session)."""
    from PIL import Image

    small = np.asarray(image.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.LANCZOS))
    x = small / max(float(small.max()), 1e-6)  # float64, scaled by the image's own maximum
    x = (x - np.asarray(MEAN)) / np.asarray(STD)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]).astype(np.float32)


def matte_from_output(pred: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """H×W uint8 matte from the model's first output [1,1,320,320]: min-max normalised, truncated to uint8, LANCZOS
    back to ``size_wh``.  A constant map (no contrast at all) gives an all-zero matte, as rembg's NaNs do."""
    from PIL import Image

    p = np.asarray(pred, dtype=np.float32)[:, 0, :, :]
    hi, lo = p.max(), p.min()
    if not np.isfinite(hi) or not np.isfinite(lo):
        raise InputError("The U²-Net background model produced NaN/inf values; the model file is damaged or not "
                         "U²-Net. Use background = keep, or replace u2net/u2net.onnx.")
    if hi == lo:
        small = np.zeros(p.shape[1:], np.uint8)
    else:
        small = (np.clip(np.squeeze((p - lo) / (hi - lo)), 0, 1) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(small, "L").resize(tuple(size_wh), Image.Resampling.LANCZOS))


def cutout(image: np.ndarray, matte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8, alpha uint8) of ``image`` (H×W×3 RGB or H×W×4 RGBA uint8) pasted through ``matte`` onto a
    transparent canvas with PIL: colours and alpha are both scaled by the matte, like the official cutout."""
    from PIL import Image

    src = Image.fromarray(np.ascontiguousarray(image), "RGBA" if image.shape[2] == 4 else "RGB")
    canvas = Image.new("RGBA", src.size, (0, 0, 0, 0))
    canvas.paste(src, (0, 0), Image.fromarray(np.ascontiguousarray(matte), "L"))
    out = np.asarray(canvas)
    return np.ascontiguousarray(out[:, :, :3]), np.ascontiguousarray(out[:, :, 3])


def providers(device: str = "auto") -> list[str]:
    """onnxruntime execution providers: CUDA first when onnxruntime has it and ``device`` allows, else CPU."""
    import onnxruntime as ort

    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class U2Net:
    """The U²-Net ONNX model in an onnxruntime session (``path``: ``u2net.onnx``)."""

    def __init__(self, path: str | os.PathLike, device: str = "auto") -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise WeightsError("Background removal needs the package onnxruntime, which is not installed in the "
                               "Python that runs ComfyUI: `python -m pip install onnxruntime` (or "
                               "onnxruntime-gpu), or reinstall this pack's requirements.txt.") from None
        self.path = Path(path)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=ort.SessionOptions(),
                                                providers=providers(device))
        except Exception as e:  # not ONNX, truncated, wrong opset
            raise WeightsError(f"Could not load the U²-Net background model {self.path} ({type(e).__name__}: "
                               f"{str(e)[:200]}). The file is damaged or not rembg's u2net.onnx: delete it and "
                               "download it again (python -m facelift_models.download --components background "
                               "--accept-license).") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape)[1:] not in ([3, INPUT_SIZE, INPUT_SIZE], ["3", "320", "320"]):
            raise WeightsError(f"{self.path} is not a U²-Net model: it takes {[tuple(i.shape) for i in inputs]}, "
                               f"not one [1, 3, {INPUT_SIZE}, {INPUT_SIZE}] image.")
        self.input_name = inputs[0].name

    def matte(self, image: np.ndarray) -> np.ndarray:
        """H×W uint8 foreground matte of an H×W×3/4 uint8 image (alpha ignored, as rembg does)."""
        from PIL import Image

        pil = Image.fromarray(np.ascontiguousarray(image), "RGBA" if image.shape[2] == 4 else "RGB")
        pred = self.session.run(None, {self.input_name: model_input(pil)})[0]
        return matte_from_output(pred, pil.size)

    def remove(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The official ``rembg.remove(image)`` as (RGB, alpha) uint8 arrays (see :func:`cutout`)."""
        return cutout(image, self.matte(image))


# ----------------------------------------------------------------------------------------------- weights
_DEFAULT: dict[tuple, U2Net] = {}


def load_u2net(search_roots: Sequence[str | os.PathLike] = (), device: str = "auto") -> U2Net:
    """U²-Net from the first models folder (``<root>/u2net/u2net.onnx``) that has it: each of ``search_roots``,
    then ``$FACELIFT_MODELS_DIR``.  Raises the missing-weights :class:`WeightsError` (file, folder, command)."""
    from ..weights.store import BACKGROUND, ModelStore, resolve_models_dir

    roots = [Path(r) for r in search_roots]
    if not roots:
        roots = [resolve_models_dir(None)]
    for root in roots:
        path = ModelStore(root).path("u2net")
        if path.is_file():
            return U2Net(path, device)
    store = ModelStore(roots[0])
    searched = (f"Folders searched for {store.entry('u2net').local_path}: {', '.join(str(r) for r in roots)}."
                if len(roots) > 1 else "")
    store.require_present(BACKGROUND, note=searched)  # raises: the file is absent in every root
    raise WeightsError(f"{store.path('u2net')} is not a readable file.")


def default_remover(device: str = "auto") -> U2Net:
    """The U²-Net of ``$FACELIFT_MODELS_DIR`` (cached per file and device), for use outside ComfyUI."""
    from ..weights.store import ModelStore, resolve_models_dir

    root = resolve_models_dir(None)
    path = ModelStore(root).path("u2net")
    key = (str(path), path.stat().st_mtime_ns if path.is_file() else 0, device)
    if key not in _DEFAULT:
        _DEFAULT[key] = load_u2net([root], device)
    return _DEFAULT[key]
