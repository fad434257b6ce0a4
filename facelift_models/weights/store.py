"""Where the FaceLift weights live on disk, which files exist, and what to tell the user when some are missing.

The folder (``ComfyUI/models/facelift/`` by default) mirrors the Hugging Face repository ``wlyu/OpenFaceLift``
file for file, so a manual download of the repository drops in unchanged::

    facelift/
      LICENSE                                   Adobe Research License (copied with the weights)
      mvdiffusion/pipeckpts/<component>/...     multi-view diffusion (unet, vae, image_encoder, ...)
      mvdiffusion/pipeckpts/facelift_view_embeds.safetensors   our cache of the 6 view-prompt embeddings
      gslrm/ckpt_0000000000021125.pt            official GS-LRM training checkpoint (3.7 GB)
      gslrm/gslrm_inference_fp16.safetensors    our inference-only conversion (or ..._fp32)
      mtcnn/{pnet,rnet,onet}.pt                 face detector weights from facenet-pytorch 2.6.0 (MIT)
      u2net/u2net.onnx                          U²-Net background removal, rembg's release file (Apache-2.0)
      .facelift-download/                       partial downloads (resumable); removed when everything is in

This module only looks at files: no network, no torch, no ComfyUI.  The node layer passes ComfyUI's folder list
(``folder_paths.get_folder_paths("facelift")``) into :func:`resolve_models_dir`.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..config import ENV_MODELS_DIR, ENV_SKIP_SIZE_CHECK, GSLRM_CHECKPOINT, MV_DIR, U2NET_FILE
from ..config import models_search_order
from ..errors import WeightsError

# --------------------------------------------------------------------------------------------------------------
# Where the official weights come from.
REPO_ID = "wlyu/OpenFaceLift"
REVISION = "3ebac9f8e2d791f02507b8aa61520e1ba379a115"  # pinned: the repository's initial (and only audited) commit
REPO_URL = f"https://huggingface.co/{REPO_ID}"
LICENCE_NAME = "Adobe Research License v1.2"
LICENCE_SHORT = (
    f"The FaceLift weights ({REPO_URL}) are licensed under the {LICENCE_NAME}: non-commercial research use only "
    "(academic research and teaching); redistribution only for non-commercial research and with a copy of the "
    "licence. They are not covered by this node pack's code licence."
)
MTCNN_LICENCE = "MIT (facenet-pytorch 2.6.0)"
U2NET_LICENCE = "Apache-2.0 (U²-Net, Qin et al. 2020; rembg's ONNX release)"
# rembg's own release of U²-Net as ONNX, the file the official preprocessing runs through ``rembg.remove``.
# rembg pins it by MD5 (60024c5c889badc19c04ad937298a77b, rembg/sessions/u2net.py); size and SHA-256 as published
# with that release file by several independent projects' pinned manifests (all agree).
U2NET_URL = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/u2net.onnx"
U2NET_SIZE = 175_997_641
U2NET_SHA256 = "8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491"
U2NET_MD5 = "60024c5c889badc19c04ad937298a77b"

STAGING_DIRNAME = ".facelift-download"  # huggingface_hub's local_dir while a file is in flight

# --------------------------------------------------------------------------------------------------------------
# What a file is needed for.  Each name is a "component set" that nodes ask for.
SAMPLING = "sampling"  # multi-view diffusion: unet, vae, CLIP image encoder, normaliser, schedulers, configs
RECONSTRUCTION = "reconstruction"  # GS-LRM
FACE_CROP = "face_crop"  # MTCNN face detector
BACKGROUND = "background"  # U²-Net background removal before the face crop (official preprocessing step 1)
VIEW_EMBEDDINGS = "view_embeddings"  # text encoder + tokenizer: only to compute the cached view embeddings once
TRAINING = "training"  # never fetched
LICENCE = "licence"  # the LICENSE file that must travel with the weights
INFERENCE = (SAMPLING, RECONSTRUCTION, FACE_CROP, BACKGROUND)

PURPOSE_TEXT = {
    SAMPLING: "multi-view diffusion (sampling)",
    RECONSTRUCTION: "3D reconstruction (GS-LRM)",
    FACE_CROP: "face detection / crop (MTCNN)",
    BACKGROUND: "background removal before the face crop (U²-Net)",
    VIEW_EMBEDDINGS: "computing the cached view embeddings (once)",
    TRAINING: "training only",
    LICENCE: "licence text",
}

# Sources
HF = "hf"  # downloaded from wlyu/OpenFaceLift
MTCNN = "mtcnn"  # copied out of the facenet-pytorch wheel
# The MTCNN weight files of facenet-pytorch 2.6.0 (MIT) and their SHA-256; the single source for the store and
# facelift_models.face.mtcnn (kept here because this module must stay free of torch).
MTCNN_SHA256 = {
    "pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
DERIVED = "derived"  # written by this pack (conversion, cached embeddings)
GITHUB = "github"  # optional file from the official GitHub repository, placed by the user
RELEASE = "release"  # a single file fetched from its pinned release URL (WeightFile.url)


@dataclass(frozen=True)
class WeightFile:
    """One file the pack knows about.

    ``size``/``sha256`` are ``None`` where no trustworthy value is known; then only presence is checked (and the
    HTTP Content-Length during a download).
    """

    file_id: str
    local_path: str  # relative to the models folder, '/'-separated
    purpose: str
    source: str
    repo_path: str | None = None  # path inside wlyu/OpenFaceLift (same as local_path for HF files)
    size: int | None = None
    sha256: str | None = None
    licence: str = LICENCE_NAME
    note: str = ""
    url: str | None = None  # source RELEASE: where the file is downloaded from


def _hf(file_id: str, path: str, purpose: str, size: int | None = None, sha256: str | None = None,
        note: str = "") -> WeightFile:
    return WeightFile(file_id, path, purpose, HF, repo_path=path, size=size, sha256=sha256, note=note)


_MV = MV_DIR

# Hashes: the full SHA-256 values of the pinned revision (spec §11 lists them abbreviated; the full values come from
# a public manifest pinned to the same revision and agree with the spec's prefixes and suffixes).  Sizes are given
# only where a file with the same SHA-256 is published elsewhere with its byte size (the CLIP-H image encoder, the
# SD2.1 text encoder and VAE are the unchanged fp16 base-model files); the others are left unknown.
REGISTRY: tuple[WeightFile, ...] = (
    _hf("licence", "LICENSE", LICENCE, note="Adobe Research License text; kept next to the weights"),
    # --- multi-view diffusion -------------------------------------------------------------------------------
    _hf("mv.model_index", f"{_MV}/model_index.json", SAMPLING),
    _hf("mv.unet.config", f"{_MV}/unet/config.json", SAMPLING),
    _hf("mv.unet", f"{_MV}/unet/diffusion_pytorch_model.safetensors", SAMPLING,
        sha256="2389a09216381a2020ac751c58735408feb4e76797c6f2393e66c7a0cedc1629",
        note="fp32 EMA UNet, ~3.48 GB (exact size not published)"),
    _hf("mv.vae.config", f"{_MV}/vae/config.json", SAMPLING),
    _hf("mv.vae", f"{_MV}/vae/diffusion_pytorch_model.safetensors", SAMPLING, size=167_335_342,
        sha256="3e4c08995484ee61270175e9e7a072b66a6e4eeb5f0c266667fe1f45b90daf9a"),
    _hf("mv.image_encoder.config", f"{_MV}/image_encoder/config.json", SAMPLING),
    _hf("mv.image_encoder", f"{_MV}/image_encoder/model.safetensors", SAMPLING, size=1_264_217_240,
        sha256="ae616c24393dd1854372b0639e5541666f7521cbe219669255e865cb7f89466a"),
    _hf("mv.feature_extractor", f"{_MV}/feature_extractor/preprocessor_config.json", SAMPLING),
    _hf("mv.image_normalizer.config", f"{_MV}/image_normalizer/config.json", SAMPLING),
    _hf("mv.image_normalizer", f"{_MV}/image_normalizer/diffusion_pytorch_model.safetensors", SAMPLING,
        sha256="a726e7159498c008a99fad02cb52280065ee93432f2af192a8511b7ddcf997a3"),
    _hf("mv.scheduler", f"{_MV}/scheduler/scheduler_config.json", SAMPLING),
    _hf("mv.image_noising_scheduler", f"{_MV}/image_noising_scheduler/scheduler_config.json", SAMPLING),
    # --- only to compute the view embeddings once -------------------------------------------------------------
    _hf("mv.text_encoder.config", f"{_MV}/text_encoder/config.json", VIEW_EMBEDDINGS),
    _hf("mv.text_encoder", f"{_MV}/text_encoder/model.safetensors", VIEW_EMBEDDINGS, size=680_820_392,
        sha256="bc1827c465450322616f06dea41596eac7d493f4e95904dcb51f0fc745c4e13f"),
    _hf("mv.tokenizer.merges", f"{_MV}/tokenizer/merges.txt", VIEW_EMBEDDINGS),
    _hf("mv.tokenizer.special_tokens", f"{_MV}/tokenizer/special_tokens_map.json", VIEW_EMBEDDINGS),
    _hf("mv.tokenizer.config", f"{_MV}/tokenizer/tokenizer_config.json", VIEW_EMBEDDINGS),
    _hf("mv.tokenizer.vocab", f"{_MV}/tokenizer/vocab.json", VIEW_EMBEDDINGS),
    WeightFile("mv.view_embeddings", f"{_MV}/facelift_view_embeds.safetensors", SAMPLING, DERIVED,
               note="the 6 view-prompt text embeddings [6,77,1024], computed once from text_encoder + tokenizer "
                    "(facelift_models.multiview.view_embeddings.CACHE_FILENAME)"),
    WeightFile("mv.clr_embeds", f"{_MV}/clr_embeds.pt", SAMPLING, GITHUB, size=946_932,
               note="optional: the official precomputed embeddings from the FaceLift GitHub repository "
                    "(mvdiffusion/data/fixed_prompt_embeds_6view/clr_embeds.pt), used instead of the cache if present"),
    # --- GS-LRM ------------------------------------------------------------------------------------------------
    _hf("gslrm.checkpoint", GSLRM_CHECKPOINT, RECONSTRUCTION,
        sha256="705e9aa37c7ea964bb06f25db060c12676a93d9ce6a365ac8b50128a3dc12662",
        note="training checkpoint (~3.7 GB, weights + optimizer state); not needed once converted"),
    WeightFile("gslrm.fp16", "gslrm/gslrm_inference_fp16.safetensors", RECONSTRUCTION, DERIVED,
               note="written by `python -m facelift_models.convert --dtype fp16`"),
    WeightFile("gslrm.fp32", "gslrm/gslrm_inference_fp32.safetensors", RECONSTRUCTION, DERIVED,
               note="written by `python -m facelift_models.convert --dtype fp32`"),
    # --- MTCNN (facenet-pytorch 2.6.0, MIT) --------------------------------------------------------------------
    WeightFile("mtcnn.pnet", "mtcnn/pnet.pt", FACE_CROP, MTCNN, licence=MTCNN_LICENCE,
               sha256=MTCNN_SHA256["pnet.pt"]),
    WeightFile("mtcnn.rnet", "mtcnn/rnet.pt", FACE_CROP, MTCNN, licence=MTCNN_LICENCE,
               sha256=MTCNN_SHA256["rnet.pt"]),
    WeightFile("mtcnn.onet", "mtcnn/onet.pt", FACE_CROP, MTCNN, licence=MTCNN_LICENCE,
               sha256=MTCNN_SHA256["onet.pt"]),
    # --- U²-Net background removal (rembg's release, Apache-2.0) ---------------------------------------------
    WeightFile("u2net", U2NET_FILE, BACKGROUND, RELEASE, size=U2NET_SIZE, sha256=U2NET_SHA256,
               licence=U2NET_LICENCE, url=U2NET_URL, note=f"rembg's u2net model (its MD5 {U2NET_MD5})"),
)


def pipeline_files(purpose: str = SAMPLING) -> list[str]:
    """The files a multi-view diffusion folder (``mvdiffusion/pipeckpts`` or a copy of it elsewhere) must hold for
    ``purpose``, relative to that folder, in registry order."""
    return [f.local_path[len(_MV) + 1:] for f in REGISTRY
            if f.purpose == purpose and f.source == HF and f.local_path.startswith(_MV + "/")]


@dataclass(frozen=True)
class Requirement:
    """A need that is met by ANY one of ``alternatives`` (each a tuple of file ids that must ALL be present).

    The first alternative is the one we can fetch (the one a download brings in); the others are what the pack can
    derive from it.  ``how`` explains the alternatives to the user.
    """

    component: str
    alternatives: tuple[tuple[str, ...], ...]
    how: str = ""


def _ids(purpose: str, source: str | None = None) -> tuple[str, ...]:
    return tuple(f.file_id for f in REGISTRY if f.purpose == purpose and (source is None or f.source == source))


REQUIREMENTS: dict[str, tuple[Requirement, ...]] = {
    SAMPLING: (
        Requirement(SAMPLING, (_ids(SAMPLING, HF),)),
        Requirement(SAMPLING, (_ids(VIEW_EMBEDDINGS), ("mv.view_embeddings",), ("mv.clr_embeds",)),
                    how="The text encoder and tokenizer are only used once, to compute "
                        "mvdiffusion/pipeckpts/facelift_view_embeds.safetensors (done automatically on the first "
                        "run); once that file exists they may be deleted."),
    ),
    RECONSTRUCTION: (
        Requirement(RECONSTRUCTION, (("gslrm.checkpoint",), ("gslrm.fp16",), ("gslrm.fp32",)),
                    how="Any one GS-LRM file is enough: the official checkpoint, or its inference-only conversion "
                        "gslrm/gslrm_inference_fp16.safetensors or gslrm/gslrm_inference_fp32.safetensors (made by "
                        "`python -m facelift_models.doctor --models-dir {root} --convert fp16`, after which the 3.7 GB "
                        "checkpoint may be deleted)."),
    ),
    FACE_CROP: (Requirement(FACE_CROP, (_ids(FACE_CROP),)),),
    BACKGROUND: (Requirement(BACKGROUND, (_ids(BACKGROUND),)),),
    VIEW_EMBEDDINGS: (Requirement(VIEW_EMBEDDINGS, (_ids(VIEW_EMBEDDINGS),)),),
}


# --------------------------------------------------------------------------------------------------------------
def resolve_models_dir(explicit: str | os.PathLike | None = None,
                       comfy_folders: Sequence[str | os.PathLike] | None = None) -> Path:
    """The models folder, from :func:`facelift_models.config.models_search_order`: ``explicit`` or
    ``$FACELIFT_MODELS_DIR`` when given, else the first of ComfyUI's folders that already holds a known FaceLift
    file, else the first folder of the search order.  The folder need not exist yet (a download creates it).
    """
    if explicit:
        return Path(explicit).expanduser()
    order = models_search_order(None, comfy_folders)
    if os.environ.get(ENV_MODELS_DIR):
        return order[0]
    for folder in order:
        if any((folder / f.local_path).is_file() for f in REGISTRY):
            return folder
    if order:
        return order[0]
    raise WeightsError(
        "No FaceLift models folder is configured: outside ComfyUI pass --models-dir DIR (or the models_dir "
        f"argument), or set the environment variable {ENV_MODELS_DIR}, e.g. "
        f"`export {ENV_MODELS_DIR}=/path/to/ComfyUI/models/facelift`."
    )


def facenet_pytorch_data_dir() -> Path | None:
    """``facenet_pytorch/data`` of an installed facenet-pytorch holding the three MTCNN files (found without
    importing it)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("facenet_pytorch")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        d = Path(loc) / "data"
        if all((d / n).is_file() for n in MTCNN_SHA256):
            return d
    return None


@dataclass(frozen=True)
class FileStatus:
    file: WeightFile
    path: Path
    state: str  # "present" | "missing" | "size_mismatch"
    size_on_disk: int | None = None

    @property
    def ok(self) -> bool:
        return self.state == "present"


def sha256_of(path: Path, chunk: int = 8 << 20, progress: Callable[[int], None] | None = None) -> str:
    """Hex SHA-256 of a file, streamed (multi-GB files)."""
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
            done += len(block)
            if progress is not None:
                progress(done)
    return h.hexdigest()


def human_size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n} B"


def download_command(root: Path, components: Iterable[str] | None = None) -> str:
    """The exact shell command that fetches the missing official files into ``root``."""
    cmd = ["python", "-m", "facelift_models.download",
           "--models-dir", str(root)]
    comps = [c for c in (components or []) if c in (SAMPLING, RECONSTRUCTION, FACE_CROP, BACKGROUND, VIEW_EMBEDDINGS)]
    if comps:
        cmd += ["--components", *comps]
    cmd.append("--accept-license")
    return " ".join(shlex.quote(c) for c in cmd)


def mtcnn_command(root: Path) -> str:
    return f"python scripts/fetch_mtcnn_weights.py --models-dir {shlex.quote(str(root))}"


@dataclass
class ModelStore:
    """The FaceLift models folder: paths, presence checks, and the user-facing "what is missing" message."""

    root: Path
    files: tuple[WeightFile, ...] = field(default=REGISTRY)
    requirements: dict[str, tuple[Requirement, ...]] = field(default_factory=lambda: dict(REQUIREMENTS))
    use_installed_facenet: bool = True  # an installed facenet-pytorch's data/ folder also satisfies face_crop
    # Known sizes are enforced unless $FACELIFT_SKIP_SIZE_CHECK=1 (tiny random test weights in the official layout).
    check_sizes: bool = field(default_factory=lambda: os.environ.get(ENV_SKIP_SIZE_CHECK, "") != "1")

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser()
        self._by_id = {f.file_id: f for f in self.files}

    @classmethod
    def resolve(cls, explicit=None, comfy_folders=None) -> "ModelStore":
        return cls(resolve_models_dir(explicit, comfy_folders))

    # ---- single files ----------------------------------------------------------------------------------------
    def entry(self, file_id: str) -> WeightFile:
        try:
            return self._by_id[file_id]
        except KeyError:
            raise KeyError(f"unknown FaceLift file id {file_id!r}; known: {sorted(self._by_id)}") from None

    def path(self, file_id: str) -> Path:
        """Where the file belongs (whether or not it exists)."""
        return self.root.joinpath(*self.entry(file_id).local_path.split("/"))

    def find(self, file_id: str) -> Path | None:
        """The file's path if it is present with the right size (when the size is known), else None."""
        st = self.file_status(self.entry(file_id))
        return st.path if st.ok else None

    def file_status(self, f: WeightFile) -> FileStatus:
        p = self.root.joinpath(*f.local_path.split("/"))
        if not p.is_file():
            return FileStatus(f, p, "missing")
        size = p.stat().st_size
        if f.size is not None and size != f.size and self.check_sizes:
            return FileStatus(f, p, "size_mismatch", size)
        return FileStatus(f, p, "present", size)

    def verify(self, file_id: str, progress: Callable[[int], None] | None = None) -> bool | None:
        """Hash check of a present file: True/False, or None when no hash is known (or the file is absent)."""
        f = self.entry(file_id)
        p = self.find(file_id)
        if p is None or f.sha256 is None:
            return None
        return sha256_of(p, progress=progress) == f.sha256

    # ---- sets of files ---------------------------------------------------------------------------------------
    def status(self) -> list[FileStatus]:
        """Every known file with its state (present / missing / size_mismatch); cheap: no hashing."""
        return [self.file_status(f) for f in self.files]

    def is_ready(self, components: str | Iterable[str]) -> bool:
        return not self.missing(components)

    def missing(self, components: str | Iterable[str]) -> list[tuple[Requirement, list[FileStatus]]]:
        """Unmet requirements, each with the files of its preferred (fetchable) alternative that are not OK."""
        out = []
        for req in self._requirements(components):
            if any(all(self.file_status(self.entry(i)).ok for i in alt) for alt in req.alternatives):
                continue
            if req.component == FACE_CROP and self.use_installed_facenet and facenet_pytorch_data_dir() is not None:
                continue  # facelift_models.weights.mtcnn_files.find_mtcnn_weights also looks there
            out.append((req, [s for s in (self.file_status(self.entry(i)) for i in req.alternatives[0]) if not s.ok]))
        return out

    def files_to_fetch(self, components: str | Iterable[str]) -> list[WeightFile]:
        """The Hugging Face files a download must bring in for ``components`` (never training files, never the text
        encoder once the view embeddings are cached, never the checkpoint once it is converted)."""
        todo: list[WeightFile] = []
        for _, bad in self.missing(components):
            todo += [s.file for s in bad if s.file.source == HF and s.file.purpose != TRAINING]
        seen: set[str] = set()
        return [f for f in todo if not (f.file_id in seen or seen.add(f.file_id))]

    def require(self, components: str | Iterable[str]) -> None:
        """Raise :class:`WeightsError` listing every missing file, its folder, where to get it and the command."""
        gaps = self.missing(components)
        if gaps:
            raise WeightsError(self.missing_message(gaps, components))

    def require_present(self, components: str | Iterable[str], note: str = "") -> None:
        """Like :meth:`require`, but only absent files count: a size differing from the official one is a
        converted, fine-tuned or test model, and a truly damaged file is reported by the loader that reads it.
        ``note`` is appended to the message (e.g. which folders were searched)."""
        gaps = [(req, [s for s in bad if s.state == "missing"]) for req, bad in self.missing(components)]
        gaps = [(req, bad) for req, bad in gaps if bad]
        if gaps:
            raise WeightsError(self.missing_message(gaps, components) + (f"\n{note}" if note else ""))

    def missing_message(self, gaps, components) -> str:
        comps = self._names(components)
        lines = [f"FaceLift weights are missing in the models folder {self.root} "
                 f"(needed for: {', '.join(PURPOSE_TEXT.get(c, c) for c in comps)})."]
        hf_missing = False
        mtcnn_missing = False
        release_missing: list[WeightFile] = []
        derived_notes = []
        for req, bad in gaps:
            for st in bad:
                f = st.file
                what = "has the wrong size" if st.state == "size_mismatch" else "is missing"
                size = "" if f.size is None else f", {human_size(f.size)}"
                if st.state == "size_mismatch":
                    size += f", found {human_size(st.size_on_disk)}"
                lines.append(f"  - {f.local_path} {what} ({PURPOSE_TEXT.get(f.purpose, f.purpose)}{size}); "
                             f"it goes in the folder {st.path.parent}")
                hf_missing |= f.source == HF
                mtcnn_missing |= f.source == MTCNN
                if f.source == RELEASE:
                    release_missing.append(f)
            if req.how:
                derived_notes.append(req.how.replace("{root}", shlex.quote(str(self.root))))
        needed = list(dict.fromkeys(req.component for req, _ in gaps))
        fetch = download_command(self.root, needed)
        if hf_missing:
            lines.append(
                f"The FaceLift files come from the Hugging Face repository {REPO_URL} (revision {REVISION[:7]}; "
                f"{LICENCE_NAME}, non-commercial research only). Fetch them with:\n"
                f"    {fetch}\n"
                "or tick the FaceLift loader's download option (which also means accepting the licence), or download "
                "each file from the repository page by hand and put it in the folder shown: the folder layout is the "
                "repository's own, so a full manual download of the repository can simply be copied into "
                f"{self.root}.")
        if mtcnn_missing:
            how = "the command above fetches them too; or run" if hf_missing else f"fetch them with:\n    {fetch}\nor"
            lines.append(
                "The MTCNN face-detector weights (pnet.pt, rnet.pt, onet.pt; MIT licence) ship inside the "
                f"facenet-pytorch 2.6.0 wheel from PyPI; {how} `{mtcnn_command(self.root)}`, or copy "
                f"facenet_pytorch/data/{{pnet,rnet,onet}}.pt from an installed facenet-pytorch into "
                f"{self.root / 'mtcnn'}.")
        for f in release_missing:
            how = ("the command above fetches it too" if hf_missing or mtcnn_missing
                   else f"fetch it with:\n    {fetch}\n(the same opt-in download as the other weights)")
            lines.append(
                f"{f.local_path} ({f.licence}, {human_size(f.size)}) is the background-removal model of the "
                f"official preprocessing; {how}, or download {f.url} by hand into {self.path(f.file_id).parent} "
                f"(SHA-256 {f.sha256}). To run without it, set the Face Crop's background to 'keep' or connect a MASK.")
        lines += derived_notes
        return "\n".join(lines)

    # ---- partial downloads -------------------------------------------------------------------------------------
    @property
    def staging_dir(self) -> Path:
        return self.root / STAGING_DIRNAME

    def partial_downloads(self) -> list[Path]:
        """Interrupted downloads that the next download will resume."""
        if not self.staging_dir.is_dir():
            return []
        return sorted(self.staging_dir.rglob("*.incomplete"))

    # ---- helpers -----------------------------------------------------------------------------------------------
    @staticmethod
    def _names(components: str | Iterable[str]) -> list[str]:
        return [components] if isinstance(components, str) else list(components)

    def _requirements(self, components: str | Iterable[str]) -> list[Requirement]:
        out = []
        for c in self._names(components):
            if c not in self.requirements:
                raise ValueError(f"unknown FaceLift component {c!r}; known: {sorted(self.requirements)}")
            out += self.requirements[c]
        return out
