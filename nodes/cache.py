"""One process-wide cache of FaceLift models, shared by every node and every prompt, holding at most one version
of each logical model.

Why: ComfyUI keeps node outputs between prompts, but our loader node only hands out light *handles*
(``ModelHandle``); the heavy weights are loaded on first use by the node that needs them and kept here, so a second
run of a workflow never reloads them. ``load_counts()`` counts real loads (what tests and ``GET /facelift/cache``
read instead of timings).

One version per logical model: an entry is keyed by (kind, path) — the logical model — plus its version: the file
stamp (size, mtime), precision and device. Loading another version of the same logical model (the file was
replaced, or the precision or device changed) evicts the old one: it leaves ComfyUI's loaded-model list, its
references are dropped and ComfyUI's allocator cache is emptied, so a multi-GB model is never left resident.

VRAM: each cached model is wrapped in ``comfy.model_patcher.ModelPatcher`` and brought onto the compute device
with ``comfy.model_management.load_models_gpu`` (a full load: our modules are plain torch, not ComfyUI's
cast-on-the-fly layers), so ComfyUI offloads it to RAM when other models need the memory (and offloads other
models for it), ``--cpu`` and the "unload models" button behave as for core models. A handle pinned to the CPU
stays out of ComfyUI's list.
"""

from __future__ import annotations

import gc
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..facelift_models.config import DEVICES, PRECISIONS, resolve_dtype

_lock = threading.RLock()
_entries: dict[tuple, "_Entry"] = {}  # logical key -> the one resident version
_load_counts: Counter = Counter()
_evictions: Counter = Counter()


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


# ----------------------------------------------------------------------------------------- device/dtype
def _comfy_device(device: str, which: str, fallback: str):
    """CPU when pinned there, else ComfyUI's ``model_management.<which>()`` (``fallback`` outside ComfyUI)."""
    import torch

    if device == "cpu":
        return torch.device("cpu")
    try:
        import comfy.model_management as mm
    except ImportError:
        return torch.device(fallback)
    return getattr(mm, which)()


def torch_device(device: str = "auto"):
    """The compute device: ComfyUI's device for "auto" (honours --cpu), else CPU."""
    import torch

    return _comfy_device(device, "get_torch_device", "cuda" if torch.cuda.is_available() else "cpu")


def offload_device(device: str = "auto"):
    """Where ComfyUI parks a model it is not running (RAM), CPU when pinned there."""
    return _comfy_device(device, "unet_offload_device", "cpu")


def torch_dtype(precision: str, device):
    """The dtype of a handle's precision on ``device`` (the package's one policy: ``config.resolve_dtype``)."""
    return resolve_dtype(precision, device)


# ------------------------------------------------------------------------------------------------ cache
class _Entry:
    def __init__(self, version: tuple, model: Any, patcher: Any, info: dict | None = None):
        self.version = version
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


def logical_key(handle: ModelHandle, extra: tuple = ()) -> tuple:
    """What names one logical model: its kind and file (plus ``extra``); versions of it replace each other."""
    return (handle.kind, os.path.normcase(handle.path)) + tuple(extra)


def version_key(handle: ModelHandle) -> tuple:
    """What distinguishes versions of one logical model: file stamp, precision, device."""
    return (tuple(handle.stamp), handle.precision, handle.device)


def _lookup(key: tuple, version: tuple, load: Callable[[], Any], make_entry: Callable[[Any], "_Entry"]) -> "_Entry":
    """The resident entry of ``key`` at ``version``; another version of it is evicted first (its memory released
    before the new one loads), and a failing ``load`` caches nothing."""
    with _lock:
        entry = _entries.get(key)
        if entry is not None and entry.version == version:
            return entry
        if entry is not None:
            del _entries[key]
            _evictions[key[0]] += 1
            _release([entry])
            del entry
        entry = make_entry(load())
        _load_counts[key[0]] += 1
        _entries[key] = entry
        return entry


def get_model(handle: ModelHandle, load: Callable[[], Any], extra_key: tuple = ()) -> Any:
    """The cached model for ``handle``, calling ``load()`` (and counting it) only when this version of the logical
    model is not resident."""
    version = version_key(handle)
    entry = _lookup(logical_key(handle, extra_key), version, load,
                    lambda m: _Entry(version, m, _wrap_patcher(m, handle.device),
                                     {"kind": handle.kind, "name": handle.name, "path": handle.path,
                                      "precision": handle.precision, "device": handle.device}))
    _bring_to_device(entry, handle)
    return entry.model


def get_cached(kind: str, key: tuple, version: tuple, load: Callable[[], Any]) -> Any:
    """A small cache for auxiliary models with no handle (e.g. MTCNN): one resident ``version`` per ``(kind,) +
    key``."""
    entry = _lookup((kind,) + tuple(key), tuple(version), load,
                    lambda m: _Entry(tuple(version), m, None, {"kind": kind, "key": [str(k) for k in key]}))
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


def _release(entries: list[_Entry]) -> None:
    """Drop evicted entries from ComfyUI's loaded models, free their memory and empty the allocator cache."""
    patchers = [e.patcher for e in entries if e.patcher is not None]
    for e in entries:
        e.model = e.patcher = None
    try:
        import comfy.model_management as mm

        for p in patchers:
            for i in range(len(mm.current_loaded_models) - 1, -1, -1):
                if mm.current_loaded_models[i].model is p:
                    mm.current_loaded_models.pop(i).model_unload()
    except (ImportError, AttributeError):
        pass
    del patchers
    gc.collect()
    soft_empty_cache()


def load_counts() -> dict[str, int]:
    """How many times each kind of model was really loaded from disk in this process."""
    with _lock:
        return dict(_load_counts)


def eviction_counts() -> dict[str, int]:
    """How many superseded versions of each kind were evicted in this process."""
    with _lock:
        return dict(_evictions)


def cached_models() -> list[dict]:
    with _lock:
        return [dict(e.info) for e in _entries.values()]


def clear() -> int:
    """Drop every cached model (ComfyUI's own references go with their patchers); returns how many."""
    with _lock:
        entries = list(_entries.values())
        _entries.clear()
    _release(entries)
    return len(entries)


def stats() -> dict:
    from .folders import search_roots

    out = {"loads": load_counts(), "evictions": eviction_counts(), "cached": cached_models(),
           "roots": [str(r) for r in search_roots()]}
    try:
        import torch

        if torch.cuda.is_initialized():
            out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except Exception:
        pass
    return out


def soft_empty_cache() -> None:
    """Give cached-but-unused GPU memory back (ComfyUI's helper; no-op on the CPU / outside ComfyUI)."""
    try:
        import comfy.model_management as mm
    except ImportError:
        return
    mm.soft_empty_cache()
