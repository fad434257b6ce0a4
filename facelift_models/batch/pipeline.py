"""One photo -> 3D Gaussians -> files: the whole FaceLift pipeline as one library function, for batch runners.

:func:`photo_to_files` makes the same calls the ComfyUI nodes make, in the same order, with the same defaults
(Face Crop: :func:`face.crop.crop_face`; Multi-View Sampler: :func:`multiview.sampler.sample_views` with
``resize``; Reconstruct: :func:`reconstruct.gslrm.reconstruct` on the official cameras +
:func:`reconstruct.filters.apply_filters`; Save Gaussians: :func:`formats.export.export`; Render: :func:`render.render` of :func:`cameras.turntable`), so a head made by
``python -m facelift_models.batch`` equals the one the shipped workflow makes from the same photo and seed.
:func:`load_models` loads the weights once (a batch worker calls it once, then many photos).

Every output file is written atomically (temporary file + rename): a crash or a kill never leaves a partial file.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import InputError, WeightsError

# Output kinds -> (export format, file suffix). "ply" is the official FaceLift PLY, as the Save node's default.
GAUSSIAN_FORMATS = {"ply": ("official_ply", ".ply"), "ply_3dgs": ("ply", ".3dgs.ply"),
                    "splat": ("splat", ".splat"), "spz": ("spz", ".spz")}
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def is_photo_file(p: Path) -> bool:
    """A file with a photo suffix (:data:`PHOTO_SUFFIXES`, any case) that is not hidden."""
    return p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith(".")


@dataclass(frozen=True)
class PipelineOptions:
    """Everything that decides what a photo becomes; defaults are the official ones (and the nodes' defaults).

    crop:       :class:`face.crop.FaceCropConfig` keyword arguments (threshold ``prob_threshold``, ``on_no_face``
                "error" | "official", ``background`` "auto" | "u2net" | "keep", ...); defaults as Face Crop's. "skip" makes no sense for one photo: a batch runner records the failure.
    formats:    Gaussian files to write, keys of :data:`GAUSSIAN_FORMATS`.
    turntable_frames: 0 = no video; else an MP4 turntable of that many frames at ``turntable_size`` px.
    mesh:       also write a vertex-coloured GLB mesh (:mod:`facelift_models.mesh`, the Gaussians to Mesh node's defaults).
    """

    steps: int = 50
    seed: int = 4
    guidance: float = 3.0
    eta: float = 1.0
    scheduler: str = "ddim"
    filters: str = "cli"
    crop: dict = field(default_factory=dict)
    formats: tuple[str, ...] = ("ply",)
    turntable_frames: int = 0
    turntable_size: int = 512
    mesh: bool = False

    def validate(self) -> None:
        from ..reconstruct.filters import PRESETS

        bad = [f for f in self.formats if f not in GAUSSIAN_FORMATS]
        if bad or not self.formats:
            raise InputError(f"Unknown output format(s) {bad or '(none)'}; choose from {', '.join(GAUSSIAN_FORMATS)}.")
        if self.filters not in PRESETS:
            raise InputError(f"Unknown filter preset {self.filters!r}; choose one of {', '.join(PRESETS)}.")
        if self.crop.get("on_no_face") == "skip":
            raise InputError("on_no_face 'skip' drops photos from a ComfyUI batch; for one photo use 'error' (the "
                             "batch runner records the photo as failed and goes on) or 'official'.")
        if self.turntable_frames < 0 or (self.turntable_frames and self.turntable_size % 2):
            raise InputError("turntable frames must be >= 0 and the turntable size even (H.264).")

    def crop_config(self):
        from ..face.crop import FaceCropConfig

        return FaceCropConfig(**self.crop)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def background(self) -> str:
        return self.crop_config().background


@dataclass
class PipelineModels:
    """The loaded networks of one worker: multi-view diffusion, GS-LRM, the MTCNN face detector and (unless the
    background is kept) the U²-Net background remover."""

    mv: Any
    gslrm: Any
    detector: Any
    device: torch.device
    gslrm_autocast: torch.dtype | None
    remover: Any = None
    sources: dict = field(default_factory=dict)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"Device {device!r} was asked for but this worker has no CUDA GPU; use --device auto or cpu.")
    return dev


# GS-LRM files in the order the runner prefers them: the converted weights load fastest (weights-store ids).
GSLRM_PREFERENCE = ("gslrm.fp16", "gslrm.fp32", "gslrm.checkpoint")


def find_gslrm_file(models_dir: Path) -> Path:
    """The GS-LRM weights in ``models_dir/gslrm``: the converted fp16, fp32 safetensors, else the official .pt, else
    any other checkpoint there; the weights store's missing-weights message when there is none."""
    from ..weights.store import RECONSTRUCTION, ModelStore

    store = ModelStore(Path(models_dir))
    for file_id in GSLRM_PREFERENCE:
        if store.path(file_id).is_file():
            return store.path(file_id)
    folder = store.path("gslrm.checkpoint").parent
    found = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.pt")) if folder.is_dir() else []
    if found:
        return found[0]
    raise WeightsError(store.missing_message(store.missing(RECONSTRUCTION), RECONSTRUCTION))


def load_models(models_dir: str | Path, device: str = "auto", precision: str = "auto",
                background: str = "auto") -> PipelineModels:
    """Load the networks from a ``models/facelift`` folder onto ``device`` (once per worker); U²-Net
    (``u2net/u2net.onnx``) only when ``background`` is not "keep".

    precision auto = fp16 multi-view sampling and fp16 GS-LRM autocast on CUDA, fp32 on the CPU (as the nodes)."""
    from ..face.background import load_u2net
    from ..config import mtcnn_search_dirs, resolve_dtype
    from ..face.mtcnn import load_mtcnn
    from ..multiview.loading import load_mv_diffusion
    from ..reconstruct.checkpoint import load_gslrm
    from ..weights.mtcnn_files import require_mtcnn_weights

    models_dir = Path(models_dir)
    dev = pick_device(device)
    dtype = resolve_dtype(precision, dev)  # the package's one precision policy (refuses fp16 on the CPU)
    found = require_mtcnn_weights(mtcnn_search_dirs([models_dir]))
    gslrm_path = find_gslrm_file(models_dir)
    mv = load_mv_diffusion(models_dir, device=dev, dtype=dtype)
    gslrm = load_gslrm(gslrm_path, device=dev, dtype=torch.float32)
    detector = load_mtcnn(found, "cpu")  # the crop runs on the CPU, as in the Face Crop node
    remover = None if background == "keep" else load_u2net([models_dir], "auto" if dev.type == "cuda" else "cpu")
    autocast = None if dev.type != "cuda" or dtype == torch.float32 else dtype
    return PipelineModels(mv=mv, gslrm=gslrm, detector=detector, device=dev, gslrm_autocast=autocast,
                          remover=remover,
                          sources={"mv": str(models_dir), "gslrm": str(gslrm_path), "mtcnn": str(found)})


def read_photo(path: str | Path):
    """A photo file as an RGB(A) numpy array, EXIF orientation applied; InputError for unreadable files."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode not in ("RGB", "RGBA"):
                im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
            return np.asarray(im).copy()
    except FileNotFoundError:
        raise InputError(f"Photo {path} does not exist.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"Cannot read {path.name} as an image ({type(e).__name__}: {e}); the file is corrupt or "
                         "not a photo. Replace or remove it.") from None


def output_paths(out_dir: Path, stem: str, options: PipelineOptions) -> dict[str, Path]:
    """Where a photo's files go: ``out_dir/stem`` + each output's suffix."""
    out = {kind: out_dir / f"{stem}{GAUSSIAN_FORMATS[kind][1]}" for kind in options.formats}
    if options.turntable_frames:
        out["mp4"] = out_dir / f"{stem}.mp4"
    if options.mesh:
        out["mesh"] = out_dir / f"{stem}.glb"
    return out


@torch.no_grad()
def photo_to_gaussians(models: PipelineModels, image, options: PipelineOptions,
                       timings: dict | None = None, check: Callable[[], None] | None = None):
    """Face crop -> 6 views -> Gaussians (filtered, on the CPU) for one photo (array, tensor or PIL image)."""
    from ..cameras import official_views
    from ..face.crop import crop_face
    from ..multiview.sampler import MVDiffusionConfig, sample_views
    from ..reconstruct import filters as filt
    from ..reconstruct.gslrm import reconstruct

    timings = {} if timings is None else timings
    tick = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal tick
        now = time.perf_counter()
        timings[name] = round(now - tick, 4)
        tick = now
        if check is not None:
            check()

    crop = crop_face(image, detector=models.detector, remover=models.remover, config=options.crop_config())
    lap("crop_s")
    config = MVDiffusionConfig(num_inference_steps=int(options.steps), guidance_scale=float(options.guidance),
                               eta=float(options.eta), seed=int(options.seed), scheduler=options.scheduler)
    views = sample_views(models.mv, crop.image, config, resize=True).images  # [V,3,H,W] on the CPU
    lap("sample_s")
    cams = official_views(resolution=int(views.shape[-1]))
    g = reconstruct(models.gslrm, views[None].to(models.device), cams, dtype=models.gslrm_autocast)[0]
    g = filt.apply_filters(g, filt.PRESETS[options.filters]).to("cpu")
    lap("reconstruct_s")
    return g, crop


def write_outputs(g, paths: dict[str, Path], options: PipelineOptions, device: torch.device,
                  timings: dict | None = None) -> dict[str, str]:
    """Write one head's files (atomically each); returns kind -> path."""
    from ..formats import export

    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    written = {}
    for kind in options.formats:
        written[kind] = str(export.export(g, paths[kind], format=GAUSSIAN_FORMATS[kind][0]))
    if options.turntable_frames:
        written["mp4"] = str(write_turntable(g, paths["mp4"], options, device))
    if options.mesh:
        written["mesh"] = str(write_mesh(g, paths["mesh"]))
    timings["write_s"] = round(time.perf_counter() - t0, 4)
    return written


def write_turntable(g, path: Path, options: PipelineOptions, device: torch.device) -> Path:
    """The official turntable (radius 2.7, 50 degree FoV) as an MP4, rendered in device-sized chunks."""
    from .. import cameras as cams_mod
    from ..chunking import RENDER_BYTES_PER_FRAME, items_per_chunk
    from ..render import render
    from .video import write_mp4

    cams = cams_mod.turntable(num_frames=int(options.turntable_frames), width=int(options.turntable_size))
    per_call = items_per_chunk(device, int(RENDER_BYTES_PER_FRAME * (options.turntable_size / 512) ** 2), len(cams))
    out = render(g.to(device), cams, background=(1.0, 1.0, 1.0), cameras_per_call=per_call)
    return write_mp4(out.rgb.float().cpu(), path)


def write_mesh(g, path: Path) -> Path:
    """The head as a vertex-coloured GLB mesh with the mesh exporter's defaults (the Gaussians to Mesh node's)."""
    from ..formats.mesh import write_mesh as write_mesh_file
    from ..mesh import gaussians_to_mesh

    return write_mesh_file(gaussians_to_mesh(g), path, "glb")


def photo_to_files(models: PipelineModels, photo: str | Path, out_dir: str | Path, stem: str,
                   options: PipelineOptions, check: Callable[[], None] | None = None) -> dict:
    """The whole pipeline for one photo file: read, crop, sample, reconstruct, write. Returns
    ``{"outputs": {kind: path}, "timings": {...}, "gaussians": n, "crop": {box, prob}}``; raises FaceLiftError
    subclasses (InputError for an unreadable photo, NoFaceError, ...) with a message for the user."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    image = read_photo(photo)
    timings["read_s"] = round(time.perf_counter() - t0, 4)
    g, crop = photo_to_gaussians(models, image, options, timings, check)
    paths = output_paths(Path(out_dir), stem, options)
    outputs = write_outputs(g, paths, options, models.device, timings)
    timings["total_s"] = round(time.perf_counter() - t0, 4)
    return {"outputs": outputs, "timings": timings, "gaussians": len(g),
            "crop": {"box": None if crop.box is None else [round(float(v), 2) for v in crop.box],
                     "prob": None if crop.prob is None else round(float(crop.prob), 4),
                     "mode": crop.info.get("mode")}}
