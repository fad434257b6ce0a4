"""FaceLift's input framing: background on white, MTCNN face box, scale-and-translate crop to 512×512.

The multi-view diffusion model was trained on faces of one size at one position in a 512² white canvas, so
this reproduces the official preprocessing (``utils_folder/face_utils.py``, spec §4) to the pixel: the same
face selection (prob > 0.8, largest area), float64 arithmetic with ``int()`` truncation, PIL bicubic resize of
the whole image and a paste onto white.  Around that it accepts what ComfyUI users have: any size or aspect,
grayscale, RGBA (alpha = foreground mask), 16-bit, float [0,1] tensors and IMAGE batches, an optional
foreground MASK.  Without a MASK or alpha the background is removed with U²-Net first, numerically as the official
``rembg.remove`` (:mod:`facelift_models.face.background`).  It never falls back silently: no face above the
threshold raises :class:`NoFaceError` that says what was tried and what to do (unless ``on_no_face`` asks for
the official fallback or for skipping the photo).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import FaceLiftError, InputError, NoFaceError
from .background import BACKGROUND_MODES

log = logging.getLogger(__name__)

# Official constants (face_utils.py): mean face size and centre of the training renders in a 512² canvas.
TRAINING_SET_FACE_SIZE = 194.2749650813705
TRAINING_SET_FACE_CENTER = (251.83270369057132, 280.0133630862363)
OUTPUT_SIZE = 512
WHITE = (255, 255, 255)
FACE_PROB_THRESHOLD = 0.8
PIL_BICUBIC = 3
PIL_LANCZOS = 1  # the official CLI's no-face fallback resizes with LANCZOS (inference.py L196-203)

# What to do when no face passes the threshold.
ON_NO_FACE = ("error", "skip", "official")


@dataclass(frozen=True)
class FaceCropConfig:
    """How to frame the face.  Defaults reproduce the official preprocessing exactly.

    face_index:       which face among those above ``prob_threshold``, largest first: 0 = largest (official).
    skip_detection:   no detection, resize the whole image to output_size² on the background (the official
                      no-crop path); the face is then not framed like the training data.
    background:       where the foreground matte comes from. "auto" (default, the official preprocessing): a
                      given mask, else the image's alpha, else U²-Net; "u2net": a given mask, else U²-Net (also
                      on RGBA images, as the official code does); "keep": a given mask or alpha, else none (the
                      photo's own background stays).
    on_no_face:       "error" (default): raise :class:`NoFaceError`; "skip": :func:`crop_faces` drops that
                      image from its batch and reports it (a single :func:`crop_face` still raises);
                      "official": the official CLI's fallback, the background-free image resized to
                      output_size² with LANCZOS (no face alignment).
    """

    face_size: float = TRAINING_SET_FACE_SIZE
    face_center: tuple[float, float] = TRAINING_SET_FACE_CENTER
    output_size: int = OUTPUT_SIZE
    background_color: tuple[int, int, int] = WHITE
    prob_threshold: float = FACE_PROB_THRESHOLD
    face_index: int = 0
    skip_detection: bool = False
    background: str = "auto"
    resample: int = PIL_BICUBIC
    on_no_face: str = "error"

    def __post_init__(self) -> None:
        if self.on_no_face not in ON_NO_FACE:
            raise InputError(f"on_no_face must be one of {', '.join(ON_NO_FACE)}; got {self.on_no_face!r}.")
        if self.background not in BACKGROUND_MODES:
            raise InputError(f"background must be one of {', '.join(BACKGROUND_MODES)}; got {self.background!r}.")



@dataclass
class CropResult:
    """One cropped image.

    image: [S,S,3] uint8 RGB.  mask: [S,S] float32 in [0,1], the foreground mask after the same crop (1 over
    the image content when no mask was given, 0 on the padding).  box: the selected face (x1,y1,x2,y2) in
    input pixels, None when detection was skipped.  prob: its MTCNN probability.  scale: resize factor of
    the input.  info: everything else worth showing (all detections, crop box, paste position, …).
    """

    image: np.ndarray
    mask: np.ndarray
    box: tuple[float, float, float, float] | None
    prob: float | None
    scale: float
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchCropResult:
    """Crops of an IMAGE batch: images [B,S,S,3] uint8, masks [B,S,S] float32, one CropResult each.

    With ``on_no_face="skip"`` photos without a face are left out: ``indices`` are the (0-based) input
    positions of the crops, ``skipped`` lists ``(index, message)`` for each dropped photo, and ``notes``
    has one line per dropped photo ("photo 3: no face found, skipped", 1-based as users count)."""

    images: np.ndarray
    masks: np.ndarray
    results: list[CropResult]
    indices: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        return [skipped_note(i) for i, _ in self.skipped]

    def as_comfy(self):
        """(IMAGE [B,S,S,3] float32 in [0,1], MASK [B,S,S] float32) torch tensors for ComfyUI."""
        import torch

        return (torch.from_numpy(self.images.astype(np.float32) / 255.0), torch.from_numpy(self.masks.copy()))


# ----------------------------------------------------------------------------------------------- inputs
def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch here
        x = x.detach().cpu()
        if str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        return x.numpy()
    if hasattr(x, "mode") and hasattr(x, "getbands"):  # PIL image: palette/CMYK/bilevel modes to RGB(A)
        if x.mode == "P":
            x = x.convert("RGBA" if "transparency" in x.info else "RGB")
        elif x.mode not in ("L", "LA", "RGB", "RGBA", "I", "I;16", "F"):
            x = x.convert("RGBA" if "A" in x.getbands() else "RGB")
    return np.asarray(x)


def _levels_to_uint8(a: np.ndarray, what: str) -> np.ndarray:
    """Any numeric pixel array to 0-255 uint8: uint8 as is, 16-bit by /257, float as [0,1]."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputError(f"The {what} contains NaN or infinite values; it cannot be cropped.")
        hi = float(a.max()) if a.size else 0.0
        if hi > 1.0 + 1e-3:
            raise InputError(f"The {what} is floating point with values up to {hi:g}; float images must be in [0,1] "
                             "(as ComfyUI IMAGE tensors are). Divide by 255 (8-bit) or 65535 (16-bit) first.")
        return np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise InputError(f"The {what} has integer values in [{lo}, {hi}]; expected 8-bit (0-255) or 16-bit "
                             "(0-65535) levels.")
        if a.dtype == np.uint16 or hi > 255:  # 16-bit
            return np.rint(a.astype(np.float64) / 257.0).astype(np.uint8)
        return a.astype(np.uint8)
    raise InputError(f"The {what} has unsupported pixel type {a.dtype}.")


def to_rgb_uint8(image: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB H×W×3 uint8, alpha H×W uint8 or None) from an H×W, H×W×1/2/3/4 array, tensor or PIL image, or a
    batch of one.  Gray is replicated to 3 channels; alpha comes from LA/RGBA input.  Never modifies input."""
    a = _to_numpy(image)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 4:
        raise InputError(f"crop_face takes one image, got a batch of {a.shape[0]}; use crop_faces for batches.")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"Expected an image of shape H×W, H×W×C (C = 1, 2, 3 or 4) or 1×H×W×C; got {a.shape}.")
    a = _levels_to_uint8(a, "image")
    c = a.shape[2]
    rgb = np.repeat(a[:, :, :1], 3, axis=2) if c in (1, 2) else a[:, :, :3]
    alpha = a[:, :, c - 1] if c in (2, 4) else None
    return np.ascontiguousarray(rgb), (None if alpha is None else np.ascontiguousarray(alpha))


def to_mask(mask: Any, hw: tuple[int, int]) -> np.ndarray:
    """A foreground mask (1 = subject, 0 = background) as H×W float32 in [0,1]; accepts H×W, 1×H×W, H×W×1,
    float [0,1], uint8 or 16-bit.  Must have the image's size."""
    m = _to_numpy(mask)
    while m.ndim > 2 and m.shape[0] == 1:
        m = m[0]
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.ndim != 2:
        raise InputError(f"The mask must be H×W (or 1×H×W); got shape {tuple(_to_numpy(mask).shape)}.")
    if tuple(m.shape) != tuple(hw):
        raise InputError(f"The mask is {m.shape[1]}×{m.shape[0]} but the image is {hw[1]}×{hw[0]} (W×H); "
                         "resize the mask to the image first.")
    if np.issubdtype(m.dtype, np.floating):
        if not np.isfinite(m).all():
            raise InputError("The mask contains NaN or infinite values.")
        return np.clip(m, 0.0, 1.0).astype(np.float32)
    return _levels_to_uint8(m, "mask").astype(np.float32) / 255.0


def composite_on_background(rgb: np.ndarray, alpha: np.ndarray, color: Sequence[int] = WHITE) -> np.ndarray:
    """Alpha-composite RGB with a uint8 alpha over a plain colour with PIL (as the official flow does)."""
    from PIL import Image

    rgba = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    bg = Image.new("RGB", rgba.size, tuple(color)).convert("RGBA")
    return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))


# ----------------------------------------------------------------------------------------------- detection
def default_detector(device: str = "cpu"):
    """An MTCNN loaded from :func:`facelift_models.config.mtcnn_search_dirs` or an installed facenet-pytorch.

    Loaded on each call (no cache here: inside ComfyUI the nodes' model cache holds the detector); keep the result
    and pass it as ``detector=`` to crop many images (:func:`crop_faces` loads it once per batch)."""
    from ..config import mtcnn_search_dirs
    from ..weights.mtcnn_files import require_mtcnn_weights
    from . import mtcnn

    return mtcnn.load_mtcnn(require_mtcnn_weights(mtcnn_search_dirs()), device)


def _detector_config_for(det_cfg, prob_threshold: float):
    """MTCNN's own stage thresholds (0.6/0.7/0.7) already drop faces below 0.7, so a user threshold below
    them also lowers them; at the official 0.8 the detector settings are left exactly as they are."""
    t = tuple(det_cfg.thresholds)
    if prob_threshold >= t[2]:
        return det_cfg
    return replace(det_cfg, thresholds=tuple(min(v, prob_threshold) for v in t))


def select_face(boxes: Sequence[Sequence[float]], probs: Sequence[float], threshold: float = FACE_PROB_THRESHOLD,
                index: int = 0) -> int | None:
    """Index (into ``boxes``) of the ``index``-th largest face with prob > threshold, None if there are fewer.
    ``index`` 0 is the official choice: largest area, ties going to the earlier box."""
    cand = [(i, (float(b[3]) - float(b[1])) * (float(b[2]) - float(b[0])))
            for i, (b, p) in enumerate(zip(boxes, probs)) if float(p) > threshold]
    cand.sort(key=lambda t: -t[1])  # stable: ties keep detect() order
    return cand[index][0] if 0 <= index < len(cand) else None


def _no_face_message(hw: tuple[int, int], boxes: list, probs: list, cfg: FaceCropConfig, det_cfg) -> str:
    h, w = hw
    n = len(probs)
    above = sum(float(p) > cfg.prob_threshold for p in probs)
    if n == 0:
        found = "MTCNN found no face candidate at all"
    else:
        found = (f"MTCNN found {n} candidate face{'s' if n != 1 else ''} (best probability {max(probs):.3f})"
                 f", {above} above the threshold")
    tried = (f"Looked for a face with probability > {cfg.prob_threshold:g} in the {w}×{h} image "
             f"(MTCNN, smallest face {det_cfg.min_face_size:g} px, thresholds "
             f"{'/'.join(f'{t:g}' for t in det_cfg.thresholds)})")
    what = ("Use a photo with a larger, frontal, well-lit, unoccluded face (the crop scales the face to about "
            f"{cfg.face_size:.0f} px, so bigger faces stay sharper); or lower the face threshold (e.g. 0.5) if a "
            "real face scored just below it; or enable 'skip detection' to resize the whole image to "
            f"{cfg.output_size}×{cfg.output_size} on white without aligning the face (the model was trained on "
            "aligned faces, so expect worse results).")
    if above and cfg.face_index >= above:
        return (f"{tried}: {found}, but face #{cfg.face_index} (0 = largest) was requested. Choose a face index "
                f"below {above}.")
    return f"No face detected. {tried}: {found}. {what}"


# ----------------------------------------------------------------------------------------------- crop maths
def _resize(img, size: tuple[int, int], resample: int):
    return img.resize(size, resample=resample)


def crop_with_box(rgb: np.ndarray, box: Sequence[float], config: FaceCropConfig = FaceCropConfig(),
                  mask: np.ndarray | None = None) -> CropResult:
    """The official similarity crop of an RGB uint8 image (already on its background) for a given face box.

    Arithmetic in float64 on the box values with ``int()`` truncation, the whole image resized with PIL
    (``config.resample``, bicubic), cropped and pasted onto a ``background_color`` canvas.  ``mask`` (H×W
    float32, optional) goes through the same resize/crop/paste (padding 0)."""
    from PIL import Image

    H, W = rgb.shape[:2]
    S = int(config.output_size)
    x1, y1, x2, y2 = (float(v) for v in box)
    face_size = 0.5 * (x2 - x1 + y2 - y1)
    if not face_size > 0:
        raise InputError(f"Face box {box} has no size; cannot crop.")
    cx, cy = 0.5 * (x1 + x2), 0.5 * (y1 + y2)
    scale = config.face_size / face_size
    sw, sh = int(W * scale), int(H * scale)
    if sw < 1 or sh < 1:
        raise InputError(f"The {W}×{H} image would shrink to {sw}×{sh} px to give the face its training size; "
                         "the face box is implausibly large.")
    scx, scy = int(cx * scale), int(cy * scale)
    h_off = config.face_center[0] - scx
    v_off = config.face_center[1] - scy
    crop_box = (int(max(0, -h_off)), int(max(0, -v_off)), int(min(sw, S - h_off)), int(min(sh, S - v_off)))
    paste_xy = (int(max(0, h_off)), int(max(0, v_off)))
    if crop_box[2] <= crop_box[0] or crop_box[3] <= crop_box[1]:
        raise InputError(f"The face box {tuple(round(v, 1) for v in (x1, y1, x2, y2))} lies outside the {W}×{H} "
                         "image; nothing of the image would be visible in the crop.")

    canvas = Image.new("RGB", (S, S), tuple(config.background_color))
    canvas.paste(_resize(Image.fromarray(rgb), (sw, sh), config.resample).crop(crop_box), paste_xy)
    m = np.ones((H, W), np.float32) if mask is None else mask.astype(np.float32, copy=False)
    mcanvas = Image.new("F", (S, S), 0.0)
    mcanvas.paste(_resize(Image.fromarray(m), (sw, sh), config.resample).crop(crop_box), paste_xy)
    info = {
        "mode": "crop",
        "input_size_wh": (W, H),
        "face_size": face_size,
        "face_center": (cx, cy),
        "scaled_size_wh": (sw, sh),
        "scaled_face_center": (scx, scy),
        "offsets": (h_off, v_off),
        "crop_box_ltrb": crop_box,
        "paste_xy": paste_xy,
    }
    return CropResult(image=np.asarray(canvas).copy(), mask=np.clip(np.asarray(mcanvas), 0.0, 1.0).copy(),
                      box=(x1, y1, x2, y2), prob=None, scale=scale, info=info)


def resize_without_crop(rgb: np.ndarray, alpha: np.ndarray | None, config: FaceCropConfig = FaceCropConfig(),
                        mask: np.ndarray | None = None) -> CropResult:
    """The official no-crop path: RGBA resized to S×S with PIL (bicubic), alpha-composited on the background."""
    from PIL import Image

    H, W = rgb.shape[:2]
    S = int(config.output_size)
    a = np.full((H, W), 255, np.uint8) if alpha is None else alpha
    resized = _resize(Image.fromarray(np.dstack([rgb, a]), "RGBA"), (S, S), config.resample)
    out = Image.alpha_composite(Image.new("RGBA", (S, S), tuple(config.background_color)), resized).convert("RGB")
    m = np.ones((H, W), np.float32) if mask is None else mask.astype(np.float32, copy=False)
    mres = np.asarray(_resize(Image.fromarray(m), (S, S), config.resample))
    # Like the official path this stretches a non-square image to a square.
    info = {"mode": "resize", "input_size_wh": (W, H), "scaled_size_wh": (S, S), "scale_xy": (S / W, S / H)}
    return CropResult(image=np.asarray(out).copy(), mask=np.clip(mres, 0.0, 1.0).copy(), box=None, prob=None,
                      scale=S / W, info=info)


def official_no_face_fallback(rgb: np.ndarray, alpha: np.ndarray | None, config: FaceCropConfig = FaceCropConfig(),
                              mask: np.ndarray | None = None) -> CropResult:
    """The official CLI's fallback when preprocessing finds no face (spec §4 step 7): the background-free image
    resized to output_size² with LANCZOS, no alignment.  The official CLI leaves that image RGBA; ComfyUI
    images are RGB, so it is composited on the background colour like every other crop (the mask output keeps
    the alpha).  Without a matte (background kept) the image itself is resized, as the CLI does when rembg fails."""
    res = resize_without_crop(rgb, alpha, replace(config, resample=PIL_LANCZOS), mask)
    res.info["mode"] = "official_fallback"
    return res


# ----------------------------------------------------------------------------------------------- public API
def crop_face(image: Any, mask: Any = None, *, detector=None, remover=None, config: FaceCropConfig | None = None,
              **overrides: Any) -> CropResult:
    """Frame one face like FaceLift's training data.

    image:    H×W, H×W×{1,2,3,4} (uint8, 16-bit or float [0,1]; numpy, torch or PIL) or a batch of one.  An
              alpha channel is used as the foreground mask.
    mask:     optional foreground mask (1 = subject) of the image's size; overrides the alpha channel.  Note:
              ComfyUI's LoadImage MASK is 1 - alpha (1 = transparent): invert it before passing it here.
    detector: an :class:`mtcnn.MTCNN`; default: :func:`default_detector` (CPU).
    remover:  a :class:`face.background.U2Net` for ``background`` "auto"/"u2net"; default: the U²-Net of
              ``$FACELIFT_MODELS_DIR`` (:func:`face.background.default_remover`), loaded only when needed.
    config / overrides: :class:`FaceCropConfig` (e.g. ``prob_threshold=0.5``, ``face_index=1``,
              ``skip_detection=True``, ``background="keep"``, ``on_no_face="official"``).

    The background (where the matte is 0) is composited on white before detection, as the official flow does
    after rembg; ``info["background_from"]`` says which matte was used (mask, alpha, u2net or None).  Raises
    :class:`NoFaceError` when no face passes the threshold (``on_no_face`` "error"/"skip"), :class:`InputError`
    for unusable inputs, :class:`WeightsError` when U²-Net is needed but its file is missing.
    """
    cfg = replace(config or FaceCropConfig(), **overrides) if overrides else (config or FaceCropConfig())
    rgb, alpha = to_rgb_uint8(image)
    hw = rgb.shape[:2]
    source = None
    fmask = None
    if mask is not None:
        fmask = to_mask(mask, hw)
        alpha, source = np.rint(fmask * 255.0).astype(np.uint8), "mask"
    elif cfg.background != "u2net" and alpha is not None and not (alpha == 255).all():
        fmask, source = alpha.astype(np.float32) / 255.0, "alpha"
    elif cfg.background in ("auto", "u2net"):
        if remover is None:
            from .background import default_remover

            remover = default_remover()
        # The official cutout: colours and alpha scaled by the matte (see face.background.cutout).
        rgb, alpha = remover.remove(rgb if alpha is None else np.dstack([rgb, alpha]))
        fmask, source = alpha.astype(np.float32) / 255.0, "u2net"
    else:
        alpha = None

    if cfg.skip_detection:
        res = resize_without_crop(rgb, alpha, cfg, fmask)
        res.info["background_from"] = source
        return res

    on_bg = rgb if alpha is None else composite_on_background(rgb, alpha, cfg.background_color)
    det_model = detector if detector is not None else default_detector()
    det_cfg = _detector_config_for(det_model.config, cfg.prob_threshold)
    det = det_model.detect(on_bg, det_cfg)
    # Python floats of the float32 results, as facenet-pytorch's detect() hands them back.
    boxes = det.boxes.tolist()
    probs = det.probs.tolist()
    idx = select_face(boxes, probs, cfg.prob_threshold, cfg.face_index)
    if idx is None:
        message = _no_face_message(hw, boxes, probs, cfg, det_cfg)
        if cfg.on_no_face != "official":
            raise NoFaceError(message)
        res = official_no_face_fallback(rgb, alpha, cfg, fmask)
        res.info.update({"background_from": source, "no_face": message,
                         "detections": [{"box": tuple(b), "prob": p} for b, p in zip(boxes, probs)]})
        return res
    res = crop_with_box(on_bg, boxes[idx], cfg, fmask)
    res.prob = probs[idx]
    res.info.update({
        "background_from": source,
        "detections": [{"box": tuple(b), "prob": p} for b, p in zip(boxes, probs)],
        "selected_index": idx,
        "face_index": cfg.face_index,
        "prob_threshold": cfg.prob_threshold,
        "detector_thresholds": tuple(det_cfg.thresholds),
        "landmarks": det.landmarks[idx].tolist(),
    })
    return res


def _batch_items(x: Any) -> list:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    a = x
    if getattr(a, "ndim", 0) == 4:
        return [a[i] for i in range(a.shape[0])]
    return [a]


def skipped_note(index: int) -> str:
    """The line reported for a photo dropped by ``on_no_face="skip"`` (``index`` 0-based; shown 1-based)."""
    return f"photo {index + 1}: no face found, skipped"


def crop_faces(images: Any, masks: Any = None, *, detector=None, remover=None, config: FaceCropConfig | None = None,
               progress: Callable[[int, int], None] | None = None, **overrides: Any) -> BatchCropResult:
    """:func:`crop_face` for every image of a batch ([B,H,W,C] tensor/array, e.g. a ComfyUI IMAGE, or a list).

    masks: None, one mask for all ([H,W]), or one per image ([B,H,W] or a list).  If any image fails, raises
    one error naming every failing batch index and why (NoFaceError if all failures are "no face"; a batch of one
    image raises that image's own error); no partial batch is returned.  With ``on_no_face="skip"`` a photo
    without a face is dropped instead and reported in ``skipped``/``notes``; if every photo is dropped,
    :class:`NoFaceError` says so.  ``progress(done, total)`` is called after each image (it may raise to cancel)."""
    items = _batch_items(images)
    if not items:
        raise InputError("The image batch is empty.")
    mlist: list | None = None
    if isinstance(masks, (list, tuple)):
        mlist = list(masks)
    elif masks is not None:
        m = masks if hasattr(masks, "ndim") else np.asarray(masks)
        mlist = [m[i] for i in range(m.shape[0])] if m.ndim == 3 else [m]
    if mlist is not None and len(mlist) == 1 and len(items) > 1:
        mlist = mlist * len(items)
    if mlist is not None and len(mlist) != len(items):
        raise InputError(f"{len(mlist)} masks for {len(items)} images; give one mask, or one per image.")
    cfg = replace(config or FaceCropConfig(), **overrides) if overrides else (config or FaceCropConfig())
    n = len(items)
    if detector is None and not cfg.skip_detection:
        detector = default_detector()  # once for the whole batch
    results: list[CropResult | None] = []
    failures: list[tuple[int, FaceLiftError]] = []
    skipped: list[tuple[int, str]] = []
    for i, img in enumerate(items):
        try:
            results.append(crop_face(img, None if mlist is None else mlist[i], detector=detector, remover=remover,
                                     config=cfg))
        except NoFaceError as e:
            if cfg.on_no_face == "skip":
                skipped.append((i, str(e)))
                log.warning("%s (%s)", skipped_note(i), e)
            else:
                failures.append((i, e))
            results.append(None)
        except FaceLiftError as e:
            failures.append((i, e))
            results.append(None)
        if progress is not None:
            progress(i + 1, len(items))
    if len(items) == 1 and failures:
        raise failures[0][1]
    if failures:
        lines = "; ".join(f"image {i} (0-based) of the batch of {n}: {e}" for i, e in failures)
        cls = NoFaceError if all(isinstance(e, NoFaceError) for _, e in failures) else InputError
        raise cls(f"Face crop failed for {len(failures)} of {n} images. {lines}")
    if len(skipped) == n:
        first = skipped[0][1]
        raise NoFaceError(f"No face was found in any of the {n} photo{'s' if n != 1 else ''} (on_no_face = skip "
                          f"dropped them all), so there is nothing to pass on. First photo: {first}")
    kept = [(i, r) for i, r in enumerate(results) if r is not None]
    done = [r for _, r in kept]
    return BatchCropResult(images=np.stack([r.image for r in done]), masks=np.stack([r.mask for r in done]),
                           results=done, indices=[i for i, _ in kept], skipped=skipped)
