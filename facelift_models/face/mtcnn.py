"""MTCNN face detector (P-Net, R-Net, O-Net) in plain torch, numerically matching facenet-pytorch 2.6.0.

FaceLift's preprocessing frames every face with facenet-pytorch's ``MTCNN.detect``; the diffusion model was
trained on that framing, so the boxes must agree to a fraction of a pixel.  This module re-implements the
detector (our own code, no torchvision, no facenet-pytorch import) and loads the original MIT-licensed weight
files ``pnet.pt``, ``rnet.pt``, ``onet.pt`` of facenet-pytorch 2.6.0.  Those files are plain state dicts, so
they load with ``torch.load(..., weights_only=True)`` under the same parameter names as the modules here.

Detection arithmetic follows facenet-pytorch step by step (float32 everywhere, the same op order) because the
boxes feed ``int()`` truncations in the crop: area-mode pyramid, ``floor`` window boxes, torchvision-style IoU
NMS (no +1) after P-Net and R-Net, +1-width box regression, and the numpy "Min" NMS after O-Net.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import InputError, WeightsError
from ..weights.mtcnn_files import FACENET_PYTORCH_VERSION, HOW_TO_GET_WEIGHTS, verify_mtcnn_weights

log = logging.getLogger(__name__)


# Inputs are normalised as (x - 127.5) * 0.0078125 before every network (the nets were trained that way).
_PIXEL_MEAN = 127.5
_PIXEL_SCALE = 0.0078125
_PNET_STRIDE = 2
_PNET_CELL = 12
_NET_BATCH = 512  # R-Net/O-Net run in chunks of this many crops, like facenet-pytorch


# ----------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class MTCNNConfig:
    """Detector settings.  Defaults are FaceLift's (``face_utils.py``): min face 20 px, thresholds
    0.6/0.7/0.7, pyramid factor 0.709, results ordered largest box first."""

    min_face_size: float = 20
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709
    select_largest: bool = True  # order of the results: largest area first (else O-Net's score order)
    nms_pnet_per_scale: float = 0.5
    nms_pnet_all_scales: float = 0.7
    nms_rnet: float = 0.7
    nms_onet_min: float = 0.7



@dataclass
class Detection:
    """Every face MTCNN kept, in ``detect()`` order (largest area first by default).

    ``boxes`` [n,4] float32 (x1,y1,x2,y2 in input pixels, may extend past the border), ``probs`` [n] float32,
    ``landmarks`` [n,5,2] float32 (eyes, nose, mouth corners as x,y).  All on CPU.
    """

    boxes: torch.Tensor
    probs: torch.Tensor
    landmarks: torch.Tensor
    image_size_hw: tuple[int, int] = (0, 0)
    scales: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


# ----------------------------------------------------------------------------------------------- networks
class PNet(nn.Module):
    """Proposal net: fully convolutional, a face score and a box offset for every 12x12 window (stride 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)  # face / not-face logits
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)  # box regression

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


def _flatten_hwc_order(x: torch.Tensor) -> torch.Tensor:
    # The weights were converted from a (W, H, C)-ordered flatten; keep that order for the dense layer.
    return x.permute(0, 3, 2, 1).contiguous().view(x.shape[0], -1)


class RNet(nn.Module):
    """Refinement net on 24x24 crops: face score and box regression."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_hwc_order(x)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output net on 48x48 crops: face score, box regression and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_hwc_order(x)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


# ----------------------------------------------------------------------------------------------- box maths
def nms_iou(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy IoU NMS: ``torchvision.ops.nms``, the function facenet-pytorch itself calls, run on the CPU (the
    kernel whose tie order and float arithmetic the fixtures were made with). Returns kept indices, best first."""
    from torchvision.ops import nms

    return nms(boxes.detach().cpu(), scores.detach().cpu(), float(threshold))


def nms_min(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """The original MTCNN's last-stage NMS: +1 pixel areas, overlap = intersection / smaller area, keep
    boxes whose overlap is <= threshold (float32 compare); picks the highest score first (ties: the later
    index, as an ascending stable sort read from the end).  Returns kept indices in pick order."""
    n = int(boxes.shape[0])
    if n == 0:
        return torch.empty(0, dtype=torch.long)
    b = boxes.detach().cpu()
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    remaining = torch.sort(scores.detach().cpu(), stable=True).indices
    thr = torch.tensor(threshold, dtype=b.dtype)
    keep: list[int] = []
    while remaining.numel() > 0:
        i = int(remaining[-1])
        keep.append(i)
        rest = remaining[:-1]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]) + 1).clamp_min(0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]) + 1).clamp_min(0)
        overlap = (w * h) / torch.minimum(area[i], area[rest])
        remaining = rest[overlap <= thr]
    return torch.tensor(keep, dtype=torch.long)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square of side max(w, h) around its centre (in place on columns 0-3)."""
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.max(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side.repeat(2, 1).permute(1, 0)
    return boxes


def _regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Apply R-Net/O-Net box offsets, scaled by the +1 pixel width/height (in place on columns 0-3)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    x1 = boxes[:, 0] + offsets[:, 0] * w
    y1 = boxes[:, 1] + offsets[:, 1] * h
    x2 = boxes[:, 2] + offsets[:, 2] * w
    y2 = boxes[:, 3] + offsets[:, 3] * h
    boxes[:, :4] = torch.stack([x1, y1, x2, y2]).permute(1, 0)
    return boxes


def _pixel_ranges(boxes: torch.Tensor, w: int, h: int) -> list[tuple[int, int, int, int]]:
    """Integer crop windows (1-based start, inclusive end) clamped to the image, as MTCNN crops them."""
    b = boxes[:, :4].trunc().int().cpu().tolist()
    out = []
    for x, y, ex, ey in b:
        out.append((max(x, 1), max(y, 1), min(ex, w), min(ey, h)))
    return out


def _resample(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(img, size=size, mode="area")


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - _PIXEL_MEAN) * _PIXEL_SCALE


# ----------------------------------------------------------------------------------------------- detector
class MTCNN(nn.Module):
    """The three nets plus the cascade.  ``detect(image)`` takes one H×W×3 uint8 RGB image."""

    def __init__(self, config: MTCNNConfig | None = None) -> None:
        super().__init__()
        self.config = config or MTCNNConfig()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.pnet.conv1.weight.device

    @staticmethod
    def pyramid_scales(h: int, w: int, config: MTCNNConfig) -> list[float]:
        """Scales at which P-Net's 12 px window sees faces from ``min_face_size`` up to the short side."""
        m = 12.0 / config.min_face_size
        minl = min(h, w) * m
        scales, scale = [], m
        while minl >= 12:
            scales.append(scale)
            scale = scale * config.factor
            minl = minl * config.factor
        return scales

    @torch.no_grad()
    def detect(self, image: Any, config: MTCNNConfig | None = None) -> Detection:
        """All faces in one RGB image (H×W×3 uint8 numpy array or tensor), largest first by default.
        ``config`` overrides the detector's own settings for this call."""
        cfg = config or self.config
        arr = torch.from_numpy(np.array(image, copy=True)) if isinstance(image, np.ndarray) else image
        if not isinstance(arr, torch.Tensor) or arr.ndim != 3 or arr.shape[2] != 3:
            raise InputError(f"MTCNN.detect needs one H×W×3 RGB image; got {getattr(image, 'shape', type(image))}.")
        if arr.dtype != torch.uint8:
            raise InputError(f"MTCNN.detect needs uint8 pixels (0-255); got {arr.dtype}. Convert the image first "
                             "(facelift_models.face.crop.to_rgb_uint8 does that).")
        dev = self.device
        dtype = self.pnet.conv1.weight.dtype
        imgs = arr.to(dev).unsqueeze(0).permute(0, 3, 1, 2).to(dtype)
        h, w = int(imgs.shape[2]), int(imgs.shape[3])
        scales = self.pyramid_scales(h, w, cfg)
        thr = cfg.thresholds

        # Stage 1: P-Net over the pyramid, NMS per scale then across scales.
        per_scale = []
        for scale in scales:
            data = _normalise(_resample(imgs, (int(h * scale + 1), int(w * scale + 1))))
            reg, probs = self.pnet(data)
            cand = self._windows(reg, probs[:, 1], scale, thr[0])
            keep = nms_iou(cand[:, :4], cand[:, 4], cfg.nms_pnet_per_scale)
            per_scale.append(cand[keep.to(cand.device)])
        boxes = torch.cat(per_scale, dim=0) if per_scale else torch.zeros(0, 9, device=dev, dtype=dtype)
        boxes = boxes[nms_iou(boxes[:, :4], boxes[:, 4], cfg.nms_pnet_all_scales).to(boxes.device)]
        regw = boxes[:, 2] - boxes[:, 0]
        regh = boxes[:, 3] - boxes[:, 1]
        qq1 = boxes[:, 0] + boxes[:, 5] * regw
        qq2 = boxes[:, 1] + boxes[:, 6] * regh
        qq3 = boxes[:, 2] + boxes[:, 7] * regw
        qq4 = boxes[:, 3] + boxes[:, 8] * regh
        boxes = _square(torch.stack([qq1, qq2, qq3, qq4, boxes[:, 4]]).permute(1, 0))

        # Stage 2: R-Net on 24x24 crops.
        if len(boxes) > 0:
            boxes, crops = self._crops(imgs, boxes, 24, w, h)
            reg, probs = self._run_chunked(self.rnet, crops)
            score = probs[:, 1]
            ok = score > thr[1]
            boxes = torch.cat((boxes[ok, :4], score[ok].unsqueeze(1)), dim=1)
            reg = reg[ok]
            keep = nms_iou(boxes[:, :4], boxes[:, 4], cfg.nms_rnet).to(boxes.device)
            boxes, reg = boxes[keep], reg[keep]
            boxes = _square(_regress(boxes, reg))

        # Stage 3: O-Net on 48x48 crops, landmarks, "Min" NMS.
        landmarks = torch.zeros(0, 5, 2, device=dev, dtype=dtype)
        if len(boxes) > 0:
            boxes, crops = self._crops(imgs, boxes, 48, w, h)
            reg, points, probs = self._run_chunked(self.onet, crops)
            score = probs[:, 1]
            ok = score > thr[2]
            points = points[ok]
            boxes = torch.cat((boxes[ok, :4], score[ok].unsqueeze(1)), dim=1)
            reg = reg[ok]
            bw = boxes[:, 2] - boxes[:, 0] + 1
            bh = boxes[:, 3] - boxes[:, 1] + 1
            px = bw.unsqueeze(1) * points[:, :5] + boxes[:, 0].unsqueeze(1) - 1
            py = bh.unsqueeze(1) * points[:, 5:10] + boxes[:, 1].unsqueeze(1) - 1
            landmarks = torch.stack((px, py), dim=2)
            boxes = _regress(boxes, reg)
            keep = nms_min(boxes[:, :4], boxes[:, 4], cfg.nms_onet_min).to(boxes.device)
            boxes, landmarks = boxes[keep], landmarks[keep]

        boxes, landmarks = boxes.float().cpu(), landmarks.float().cpu()
        if cfg.select_largest and len(boxes) > 0:
            # Area in float64 (facenet returns Python floats); ascending stable sort read backwards.
            b64 = boxes[:, :4].double()
            area = (b64[:, 2] - b64[:, 0]) * (b64[:, 3] - b64[:, 1])
            order = torch.sort(area, stable=True).indices.flip(0)
            boxes, landmarks = boxes[order], landmarks[order]
        return Detection(boxes=boxes[:, :4].contiguous(), probs=boxes[:, 4].contiguous(),
                         landmarks=landmarks.contiguous(), image_size_hw=(h, w), scales=scales)

    @staticmethod
    def _windows(reg: torch.Tensor, face_prob: torch.Tensor, scale: float, threshold: float) -> torch.Tensor:
        """P-Net windows with prob >= threshold as rows (x1, y1, x2, y2, score, 4 offsets) in input pixels."""
        reg = reg.permute(1, 0, 2, 3)
        mask = face_prob >= threshold
        idx = mask.nonzero()
        score = face_prob[mask]
        offsets = reg[:, mask].permute(1, 0)
        xy = idx[:, 1:].type(offsets.dtype).flip(1)
        q1 = ((_PNET_STRIDE * xy + 1) / scale).floor()
        q2 = ((_PNET_STRIDE * xy + _PNET_CELL - 1 + 1) / scale).floor()
        return torch.cat([q1, q2, score.unsqueeze(1), offsets], dim=1)

    @staticmethod
    def _crops(imgs: torch.Tensor, boxes: torch.Tensor, size: int, w: int, h: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Square crops of each box resampled to size×size (boxes entirely outside the image are dropped)."""
        ranges = _pixel_ranges(boxes, w, h)
        kept, crops = [], []
        for k, (x, y, ex, ey) in enumerate(ranges):
            if ey > y - 1 and ex > x - 1:
                kept.append(k)
                # Index the image dim away and back (as facenet-pytorch does): the crop's strides then make
                # the resample return NCHW-contiguous data, and the conv results match to the last bit.
                crops.append(_resample(imgs[0, :, y - 1:ey, x - 1:ex].unsqueeze(0), (size, size)))
        if len(kept) != len(ranges):
            boxes = boxes[torch.tensor(kept, dtype=torch.long, device=boxes.device)]
        if not crops:
            return boxes, imgs.new_zeros((0, 3, size, size))
        return boxes, _normalise(torch.cat(crops, dim=0))

    @staticmethod
    def _run_chunked(net: nn.Module, data: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = [net(data[i:i + _NET_BATCH]) for i in range(0, len(data), _NET_BATCH)]
        if not outs:
            outs = [net(data)]
        return tuple(torch.cat(v, dim=0) for v in zip(*outs))


# ----------------------------------------------------------------------------------------------- weights
def load_mtcnn(weights_dir: Path | str, device: torch.device | str = "cpu",
               config: MTCNNConfig | None = None, verify: bool = True) -> MTCNN:
    """Build :class:`MTCNN` and load ``pnet.pt``/``rnet.pt``/``onet.pt`` from ``weights_dir`` (state dicts,
    ``weights_only=True``, strict), after checking their sha256 unless ``verify`` is False."""
    d = Path(weights_dir)
    if verify:
        verify_mtcnn_weights(d)
    model = MTCNN(config)
    for name, net in (("pnet.pt", model.pnet), ("rnet.pt", model.rnet), ("onet.pt", model.onet)):
        path = d / name
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        except FileNotFoundError:
            raise WeightsError(f"MTCNN weight file {path} is missing. " + HOW_TO_GET_WEIGHTS) from None
        except Exception as e:  # unpickling or key/shape errors: wrong or damaged file
            raise WeightsError(f"Could not load MTCNN weights from {path} ({type(e).__name__}: {e}). The file must "
                               f"be the state dict shipped in facenet-pytorch {FACENET_PYTORCH_VERSION}. "
                               + HOW_TO_GET_WEIGHTS) from None
    return model.to(device).eval()
