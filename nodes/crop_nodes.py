"""Face crop: frame the face of a photo like FaceLift's training data (512x512 on white)."""

from __future__ import annotations

import json

import torch
from comfy_api.latest import io

from ..facelift_models.face.background import BACKGROUND_MODES
from ..facelift_models.face.crop import ON_NO_FACE
from . import cache, folders
from .common import CATEGORY, check_interrupted, foreground_alpha, progress_bar

FACE_CHOICES = ["largest", "2nd largest", "3rd largest", "4th largest"]


def detector(device: str = "cpu"):
    """The MTCNN face detector from the facelift models folder (mtcnn/), kept in the model cache (one version)."""
    from ..facelift_models.face.mtcnn import load_mtcnn
    from ..facelift_models.weights.mtcnn_files import WEIGHT_FILES, require_mtcnn_weights

    found = require_mtcnn_weights(folders.mtcnn_dirs())
    stamp = tuple(cache.file_stamp(found / n) for n in WEIGHT_FILES)
    return cache.get_cached("mtcnn", (str(found),), (stamp, str(device)), lambda: load_mtcnn(found, device))


def background_remover():
    """U²-Net (u2net/u2net.onnx) from the facelift model folders, loaded once per file; the clear missing-weights
    error (file, folder, download command) when no folder has it."""
    from ..facelift_models.face import background
    from ..facelift_models.weights.store import ModelStore

    roots = folders.search_roots()
    for root in roots:
        path = ModelStore(root).path("u2net")
        if path.is_file():
            return cache.get_cached("u2net", (str(path),), (cache.file_stamp(path),), lambda: background.U2Net(path))
    default = folders.default_root()  # where the missing file belongs: named first in the message
    return background.load_u2net(([default] if default is not None else []) + [r for r in roots if r != default])


def _needs_u2net(image: torch.Tensor, masks, background: str) -> bool:
    """Whether some photo of the batch will go through U²-Net (no MASK; "u2net", or "auto" without transparency;
    alpha counts as transparent as face_crop reads it, in 8-bit levels)."""
    if masks is not None or background == "keep":
        return False
    if background == "u2net" or image.shape[-1] != 4:
        return True
    has_transparency = (image[..., 3] * 255.0 < 254.5).flatten(1).any(1)
    return not bool(has_transparency.all())


def _json_safe(x):
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, float):
        return round(x, 4)
    if hasattr(x, "tolist"):
        return _json_safe(x.tolist())
    return x


class FaceLiftFaceCrop(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FaceLiftFaceCrop",
            display_name="FaceLift Face Crop",
            category=CATEGORY,
            description=(
                "Frames the face of a photo exactly like FaceLift's official preprocessing: the background is "
                "removed (from the MASK, the image's alpha, or else U²-Net as the official code does with rembg) "
                "and turned white, MTCNN finds the face, and the image is scaled and shifted so the face has the "
                "training-data size and position in a 512x512 square. Outputs the crop, the matte used (mask) "
                "and a JSON info string (detections, chosen box, score). Fails with a clear message when no face "
                "passes the threshold (see on_no_face). Needs the MTCNN weights (models/facelift/mtcnn, MIT) "
                "and, for background removal, U²-Net (models/facelift/u2net/u2net.onnx, Apache-2.0, 176 MB)."),
            inputs=[
                io.Image.Input("image", tooltip="The portrait photo(s); any size. One crop per image of the batch."),
                io.Mask.Input(
                    "mask", optional=True,
                    tooltip="Optional mask of the subject/background, e.g. from a background-removal node or Load "
                            "Image. Where it marks background the crop is white."),
                io.Boolean.Input(
                    "mask_is_foreground", default=False,
                    tooltip="Off (default): mask 1 = background, ComfyUI's Load Image convention (1 - alpha). "
                            "On: mask 1 = subject, as most background-removal nodes output."),
                io.Float.Input(
                    "threshold", default=0.8, min=0.0, max=0.999, step=0.01,
                    tooltip="Minimum MTCNN face probability (official 0.8). Lower it for hard photos."),
                io.Combo.Input(
                    "face", options=FACE_CHOICES, default="largest",
                    tooltip="Which face to use when there are several above the threshold (official: largest)."),
                io.Boolean.Input(
                    "skip_detection", default=False,
                    tooltip="Do not detect: just resize the whole image to 512x512 on white (for images that are "
                            "already framed). The face is then not aligned like the training data."),
                io.Combo.Input(
                    "background", options=list(BACKGROUND_MODES), default="auto",
                    tooltip="auto (official, default): use the connected MASK, else the image's transparency, else "
                            "remove the background with U²-Net exactly as the official pipeline (rembg u2net). "
                            "u2net: always U²-Net unless a MASK is connected. keep: no background removal (MASK or "
                            "transparency still used); the model was trained on white backgrounds."),
                io.Combo.Input(
                    "on_no_face", options=list(ON_NO_FACE), default="error", optional=True,
                    tooltip="When no face passes the threshold. error (default): stop with a message saying what "
                            "to try. skip: drop that photo from the output batch and name it in the info output "
                            "(for batches; fails only if no photo has a face). official: the official FaceLift "
                            "CLI's fallback, the background-free photo resized to 512x512 without aligning the "
                            "face (expect worse results)."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="512x512 face crop(s) on white."),
                io.Mask.Output(display_name="mask", tooltip="Foreground mask of the crop (1 = subject)."),
                io.String.Output(display_name="info",
                                 tooltip="JSON: chosen face box, score, scale, detections; for a batch, one entry "
                                         "per input photo, skipped photos as \"photo N: no face found, skipped\"."),
            ],
        )

    @classmethod
    def execute(cls, image: torch.Tensor, mask: torch.Tensor | None = None, mask_is_foreground: bool = False,
                threshold: float = 0.8, face: str = "largest", skip_detection: bool = False,
                background: str = "auto", on_no_face: str = "error") -> io.NodeOutput:
        from ..facelift_models.errors import InputError
        from ..facelift_models.face.crop import FaceCropConfig, crop_faces, skipped_note

        if image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
            raise InputError(f"FaceLift Face Crop: the image has shape {tuple(image.shape)}; a ComfyUI IMAGE is "
                             "[batch, height, width, channels]. Connect an IMAGE output (e.g. Load Image).")
        batch = image.shape[0]
        h, w = int(image.shape[1]), int(image.shape[2])
        # Load Image gives a 64x64 all-zero mask for photos without alpha: that means "no mask".
        placeholder = (mask is not None and not mask_is_foreground and tuple(mask.shape[-2:]) != (h, w)
                       and not bool(mask.any()))
        masks = None if mask is None or placeholder else \
            foreground_alpha(mask, batch, h, w, mask_is_foreground, "FaceLift Face Crop")
        cfg = FaceCropConfig(prob_threshold=float(threshold), face_index=FACE_CHOICES.index(face),
                             skip_detection=bool(skip_detection), background=background, on_no_face=on_no_face)
        det = None if skip_detection else detector("cpu")
        remover = background_remover() if _needs_u2net(image, masks, background) else None
        bar = progress_bar(batch)

        def on_progress(done: int, total: int) -> None:
            bar.update_absolute(done, total)
            check_interrupted()

        check_interrupted()
        out = crop_faces(image.cpu(), None if masks is None else masks.cpu(), detector=det, remover=remover,
                         config=cfg, progress=on_progress)
        infos: list = [None] * batch
        for i, res in zip(out.indices, out.results):
            info = {"photo": i + 1, "box": res.box, "prob": res.prob, "scale": res.scale, **res.info}
            info.pop("landmarks", None)
            infos[i] = _json_safe(info)
        for i, message in out.skipped:
            infos[i] = {"photo": i + 1, "skipped": skipped_note(i), "reason": message}
        text = json.dumps(infos[0] if batch == 1 else infos)
        crops, crop_masks = out.as_comfy()
        return io.NodeOutput(crops, crop_masks, text, ui={"text": [text]})


NODES = [FaceLiftFaceCrop]
