"""One process-wide cache of FaceLift models, shared by every node and every prompt.

Why: ComfyUI keeps node outputs between prompts, but our loader node only hands out light *handles*
(``ModelHandle``); the heavy weights are loaded on first use by the node that needs them and kept here,
keyed by file path + modification time + dtype + device, so a second run of a workflow never reloads them.
``load_counts()`` counts real loads (what tests and ``GET /facelift/cache`` read instead of timings).

VRAM: each cached model is wrapped in ``comfy.model_patcher.ModelPatcher`` and brought onto the compute device
with ``comfy.model_management.load_models_gpu`` (a full load: our modules are plain torch, not ComfyUI's
cast-on-the-fly layers), so ComfyUI offloads it to RAM when other models need the memory (and offloads other
models for it), ``--cpu`` and the "unload models" button behave as for core models. A handle pinned to the CPU
stays out of ComfyUI's list.

Folders: weights live under ``ComfyUI/models/facelift`` (registered with ``folder_paths`` under the key
``facelift``, so ``extra_model_paths.yaml`` entries like ``facelift: /data/facelift`` are searched too), in the
layout of the Hugging Face repo ``wlyu/OpenFaceLift``.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

FOLDER_KEY = "facelift"
OFFICIAL_MV_DIR = "mvdiffusion/pipeckpts"
OFFICIAL_GSLRM = "gslrm/ckpt_0000000000021125.pt"
MTCNN_DIR = "mtcnn"
GSLRM_SUFFIXES = (".pt", ".pth", ".safetensors", ".ckpt")
PRECISIONS = ("auto", "fp16", "bf16", "fp32")
DEVICES = ("auto", "cpu")

_lock = threading.RLock()
_entries: dict[tuple, "_Entry"] = {}
_load_counts: Counter = Counter()


# ----------------------------------------------------------------------------------------------- folders
def register_folder() -> None:
    """Make ``models/facelift`` the default ``facelift`` folder (idempotent; extra_model_paths entries stay)."""
    try:
        import folder_paths
    except ImportError:  # outside ComfyUI
        return
    default = os.path.join(folder_paths.models_dir, FOLDER_KEY)
    folder_paths.add_model_folder_path(FOLDER_KEY, default, is_default=True)


def search_roots() -> list[Path]:
    """Every folder searched for FaceLift weights, in priority order.

    ``$FACELIFT_MODELS_DIR`` first when set (the same order as ``facelift_models.weights.store.resolve_models_dir``),
    then ComfyUI's ``folder_paths.get_folder_paths("facelift")`` (``models/facelift`` + extra_model_paths.yaml).
    """
    env = os.environ.get("FACELIFT_MODELS_DIR")
    roots: list[Path] = [Path(env)] if env else []
    try:
        import folder_paths

        register_folder()
        roots += [Path(p) for p in folder_paths.get_folder_paths(FOLDER_KEY)]
    except ImportError:
        pass
    seen, out = set(), []
    for r in roots:
        key = os.path.normcase(os.path.abspath(r))
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def list_mv_models() -> list[str]:
    """Multi-view diffusion folders found (relative names), the official name always first.

    The official name is listed even when missing so shipped workflows validate; using it then fails with the
    clear missing-weights message instead of a silent dropdown mismatch.
    """
    found = [OFFICIAL_MV_DIR]
    for root in search_roots():
        base = root / "mvdiffusion"
        if not base.is_dir():
            continue
        for idx in sorted(base.glob("*/model_index.json")) + sorted(base.glob("*/*/model_index.json")):
            rel = idx.parent.relative_to(root).as_posix()
            if rel not in found:
                found.append(rel)
    return found


def list_gslrm_checkpoints() -> list[str]:
    """GS-LRM checkpoints found under ``gslrm/`` (relative names), the official name always first."""
    found = [OFFICIAL_GSLRM]
    for root in search_roots():
        base = root / "gslrm"
        if not base.is_dir():
            continue
        for f in sorted(base.iterdir()):
            if f.is_file() and f.suffix.lower() in GSLRM_SUFFIXES:
                rel = f.relative_to(root).as_posix()
                if rel not in found:
                    found.append(rel)
    return found


def resolve(name: str) -> Path | None:
    """The first existing ``root/name`` over the search roots, else None."""
    if os.path.isabs(name):
        return Path(name) if os.path.exists(name) else None
    for root in search_roots():
        p = root / name
        if p.exists():
            return p
    return None


def mtcnn_dirs() -> list[Path]:
    """Candidate folders holding the MTCNN ``pnet.pt/rnet.pt/onet.pt`` files."""
    return [r / MTCNN_DIR for r in search_roots()]


def describe_roots() -> str:
    roots = search_roots()
    return ", ".join(str(r) for r in roots) if roots else "(no folder registered)"


# ----------------------------------------------------------------------------------------------- handles
@dataclass(frozen=True)
class ModelHandle:
    """A light-weight reference to weights on disk: what the loader node outputs and other nodes accept.

    kind: "mv" (multi-view diffusion folder) or "gslrm" (reconstructor checkpoint).
    name: the dropdown value; path: the resolved absolute path; stamp: size/mtime so a replaced file reloads.
    precision: auto/fp16/bf16/fp32; device: auto/cpu.
    """

    kind: str
    name: str
    path: str
    stamp: tuple
    precision: str = "auto"
    device: str = "auto"

    def __repr__(self) -> str:  # shown by ComfyUI in error reports
        return f"FaceLift {self.kind} model {self.name!r} ({self.precision}, {self.device})"


def file_stamp(path: Path) -> tuple:
    """(size, mtime_ns) of a file, or summed over a folder's weight/config files (so replacing any of them
    invalidates the cache; caches this pack writes into the folder itself, ``facelift_*``, do not count)."""
    try:
        if path.is_dir():
            total, latest = 0, 0
            for dirpath, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for f in files:
                    if f.startswith((".", "facelift_")):
                        continue
                    st = os.stat(os.path.join(dirpath, f))
                    total += st.st_size
                    latest = max(latest, st.st_mtime_ns)
            return (total, latest)
        st = path.stat()
        return (st.st_size, st.st_mtime_ns)
    except OSError:
        return (0, 0)


def make_handle(kind: str, name: str, path: Path, precision: str = "auto", device: str = "auto") -> ModelHandle:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}; got {device!r}")
    path = Path(path).resolve()
    return ModelHandle(kind, name, str(path), file_stamp(path), precision, device)


def default_root() -> Path | None:
    """Where missing files belong: the weights store's choice among the search roots (the first one that already
    holds FaceLift files, else the first one)."""
    roots = search_roots()
    if not roots:
        return None
    try:
        from ..facelift_models.weights.store import resolve_models_dir

        return Path(resolve_models_dir(None, [str(r) for r in roots]))
    except Exception:
        return roots[0]


def models_root_of(handle: "ModelHandle") -> Path:
    """The facelift models folder a handle's file belongs to (its path minus the relative name)."""
    p = Path(handle.path)
    parts = len(Path(handle.name).parts)
    return p.parents[parts - 1] if not os.path.isabs(handle.name) and parts <= len(p.parents) else p.parent


def ensure_present(handle: "ModelHandle") -> None:
    """Raise the clear missing-weights message (what is missing, where it goes, how to get it) before loading."""
    from ..facelift_models.errors import WeightsError
    from ..facelift_models.weights.store import RECONSTRUCTION, SAMPLING, ModelStore

    path = Path(handle.path)
    root = models_root_of(handle)

    def require_present(component: str) -> None:
        # Only absent files count here: a size differing from the official one is a converted, fine-tuned or
        # test model, and a truly damaged file is reported by the loader that reads it.
        store = ModelStore(root)
        gaps = [(req, [s for s in bad if s.state == "missing"]) for req, bad in store.missing(component)]
        gaps = [(req, bad) for req, bad in gaps if bad]
        if gaps:
            msg = store.missing_message(gaps, component)
            if len(search_roots()) > 1:
                msg += f"\nFolders searched for FaceLift weights (extra_model_paths.yaml key 'facelift'): {describe_roots()}."
            raise WeightsError(msg)

    if handle.kind == "mv":
        if handle.name == OFFICIAL_MV_DIR:
            require_present(SAMPLING)
        if not (path / "model_index.json").is_file():
            raise WeightsError(
                f"The multi-view diffusion folder {path} is missing or incomplete (no model_index.json). "
                f"Searched the facelift model folders: {describe_roots()}. Choose a folder that holds a full "
                "diffusers pipeline, or get the official one (mvdiffusion/pipeckpts of wlyu/OpenFaceLift): "
                "see the download option of FaceLift Load Models.")
    elif handle.kind == "gslrm":
        if not path.is_file():
            if handle.name == OFFICIAL_GSLRM:
                require_present(RECONSTRUCTION)  # the full message when no GS-LRM file is there at all
            others = [n for n in list_gslrm_checkpoints() if resolve(n) is not None]
            raise WeightsError(
                f"The GS-LRM weights file {path} does not exist. Searched the facelift model folders: "
                f"{describe_roots()}. "
                + (f"Found instead: {', '.join(others)}; pick one in FaceLift Load Models. " if others else "")
                + "The official file is gslrm/ckpt_0000000000021125.pt from wlyu/OpenFaceLift (see the download "
                  "option of FaceLift Load Models).")


# ----------------------------------------------------------------------------------------- device/dtype
def torch_device(device: str = "auto"):
    """The compute device: ComfyUI's device for "auto" (honours --cpu), else CPU."""
    import torch

    if device == "cpu":
        return torch.device("cpu")
    try:
        import comfy.model_management as mm

        return mm.get_torch_device()
    except ImportError:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offload_device(device: str = "auto"):
    import torch

    if device == "cpu":
        return torch.device("cpu")
    try:
        import comfy.model_management as mm

        return mm.unet_offload_device()
    except ImportError:
        return torch.device("cpu")


def torch_dtype(precision: str, device, auto_gpu: str = "fp16"):
    """The dtype for ``precision`` on ``device``; "auto" is ``auto_gpu`` on CUDA (bf16 falls back to fp16 where
    unsupported) and fp32 elsewhere (CPU half precision is slow and inexact)."""
    import torch

    table = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    if precision != "auto":
        return table[precision]
    dev = torch.device(device)
    if dev.type != "cuda":
        return torch.float32
    if auto_gpu == "bf16" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return table[auto_gpu]


# ------------------------------------------------------------------------------------------------ cache
class _Entry:
    def __init__(self, model: Any, patcher: Any, info: dict | None = None):
        self.model = model
        self.patcher = patcher
        self.info = info or {}


def _modules_of(model: Any):
    """The torch modules inside a model object (an nn.Module, or a pipeline holding several)."""
    import torch

    if isinstance(model, torch.nn.Module):
        return {"model": model}
    mods = {}
    for name in ("unet", "vae", "text_encoder", "image_encoder", "image_normalizer"):
        m = getattr(model, name, None)
        if isinstance(m, torch.nn.Module):
            mods[name] = m
    components = getattr(model, "components", None)
    if isinstance(components, dict):
        for name, m in components.items():
            if isinstance(m, torch.nn.Module) and name not in mods:
                mods[name] = m
    return mods


def _wrap_patcher(model: Any, device: str):
    """A ComfyUI ModelPatcher over the model's modules, or None outside ComfyUI / if it cannot be made."""
    try:
        import torch
        import comfy.model_patcher
    except ImportError:
        return None
    mods = _modules_of(model)
    if not mods or device == "cpu":  # pinned to the CPU by the user: no VRAM to manage, keep it out of ComfyUI's list
        return None
    holder = torch.nn.ModuleDict(mods)
    try:
        return comfy.model_patcher.ModelPatcher(holder, load_device=torch_device(device),
                                                offload_device=offload_device(device))
    except Exception:  # a host whose ModelPatcher cannot take a plain module: plain device moves then
        return None


def cache_key(handle: ModelHandle, extra: tuple = ()) -> tuple:
    return (handle.kind, os.path.normcase(handle.path), handle.stamp, handle.precision, handle.device) + tuple(extra)


def get_model(handle: ModelHandle, load: Callable[[], Any], extra_key: tuple = ()) -> Any:
    """The cached model for ``handle``, calling ``load()`` (and counting it) only on a cache miss.

    A failing ``load`` caches nothing, so fixing the file and re-running works without a restart.
    """
    key = cache_key(handle, extra_key)
    with _lock:
        entry = _entries.get(key)
        if entry is None:
            model = load()
            _load_counts[handle.kind] += 1
            entry = _Entry(model, _wrap_patcher(model, handle.device),
                           {"kind": handle.kind, "name": handle.name, "path": handle.path,
                            "precision": handle.precision, "device": handle.device})
            _entries[key] = entry
    _bring_to_device(entry, handle)
    return entry.model


def get_cached(kind: str, key: tuple, load: Callable[[], Any]) -> Any:
    """A small cache for auxiliary models with no handle (e.g. MTCNN), keyed by ``(kind,) + key``."""
    full = (kind,) + tuple(key)
    with _lock:
        entry = _entries.get(full)
        if entry is None:
            entry = _Entry(load(), None, {"kind": kind, "key": [str(k) for k in key]})
            _load_counts[kind] += 1
            _entries[full] = entry
    return entry.model


def _bring_to_device(entry: _Entry, handle: ModelHandle) -> None:
    """Let ComfyUI put the model on its compute device (offloading others if needed), else move it ourselves."""
    if entry.patcher is not None:
        import comfy.model_management as mm

        mm.load_models_gpu([entry.patcher], force_full_load=True)
        return
    target = torch_device(handle.device)
    for m in _modules_of(entry.model).values():
        if next(m.parameters(), None) is not None and next(m.parameters()).device != target:
            m.to(target)


def load_counts() -> dict[str, int]:
    """How many times each kind of model was really loaded from disk in this process."""
    with _lock:
        return dict(_load_counts)


def cached_models() -> list[dict]:
    with _lock:
        return [dict(e.info) for e in _entries.values()]


def clear() -> int:
    """Drop every cached model (ComfyUI's own references go with their patchers); returns how many."""
    with _lock:
        patchers = [e.patcher for e in _entries.values() if e.patcher is not None]
        n = len(_entries)
        _entries.clear()
    try:
        import comfy.model_management as mm

        for p in patchers:
            for i in range(len(mm.current_loaded_models) - 1, -1, -1):
                if mm.current_loaded_models[i].model is p:
                    mm.current_loaded_models.pop(i).model_unload()
        mm.soft_empty_cache()
    except (ImportError, AttributeError):
        pass
    return n


def stats() -> dict:
    out = {"loads": load_counts(), "cached": cached_models(), "roots": [str(r) for r in search_roots()]}
    try:
        import torch

        if torch.cuda.is_initialized():
            out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except Exception:
        pass
    return out


# ------------------------------------------------------------------------------------------------ routes
_routes_added = False


def add_routes() -> None:
    """``GET /facelift/cache`` (load counters and cached models) and ``POST /facelift/cache/clear``."""
    global _routes_added
    if _routes_added:
        return
    try:
        from aiohttp import web
        from server import PromptServer
    except ImportError:
        return
    inst = getattr(PromptServer, "instance", None)
    if inst is None:
        return

    @inst.routes.get("/facelift/cache")
    async def _cache_stats(request):  # noqa: ARG001
        return web.json_response(stats())

    @inst.routes.post("/facelift/cache/clear")
    async def _cache_clear(request):  # noqa: ARG001
        return web.json_response({"cleared": clear()})

    _routes_added = True


def soft_empty_cache() -> None:
    """Give cached-but-unused GPU memory back (ComfyUI's helper; no-op on the CPU / outside ComfyUI)."""
    try:
        import comfy.model_management as mm
    except ImportError:
        return
    mm.soft_empty_cache()
