"""The nodes' model cache inside real ComfyUI (0.3.75, ``--cpu``): one resident version per logical model.

A replaced file (new stamp), another precision or another device supersedes the cached version: it is evicted from
the cache AND from ComfyUI's loaded models (``comfy.model_management.current_loaded_models``) and its memory is
released (the evicted module is garbage once the cache lets go of it).
"""

from __future__ import annotations

import pytest

from harness import comfy_host

pytestmark = pytest.mark.server

CACHE_SCRIPT = r"""
import gc, importlib, os, weakref
import torch
import comfy.model_management as mm
sys.path.insert(0, os.path.dirname(PACK_PATH))
cache = importlib.import_module(os.path.basename(PACK_PATH) + ".nodes.cache")

def ours():
    return sum(1 for lm in mm.current_loaded_models
               if isinstance(getattr(lm.model, "model", None), torch.nn.ModuleDict))

alive = []
def loader(n):
    def load():
        m = torch.nn.Linear(256, 256)
        alive.append(weakref.ref(m))
        return m
    return load

steps = []
def step(label, handle, extra=()):
    cache.get_model(handle, loader(label), extra)
    gc.collect()
    steps.append({"label": label, "cached": len(cache.cached_models()), "comfy_loaded": ours(),
                  "alive": sum(r() is not None for r in alive), "loads": cache.load_counts().get(handle.kind, 0),
                  "evictions": cache.eviction_counts().get(handle.kind, 0)})

H = cache.ModelHandle
a = H("gslrm", "gslrm/a.pt", "/m/gslrm/a.pt", (1, 1), "auto", "auto")
step("first load", a)
step("same version again", a)
step("file replaced", H("gslrm", "gslrm/a.pt", "/m/gslrm/a.pt", (2, 2), "auto", "auto"))
step("precision changed", H("gslrm", "gslrm/a.pt", "/m/gslrm/a.pt", (2, 2), "fp32", "auto"))
step("device changed", H("gslrm", "gslrm/a.pt", "/m/gslrm/a.pt", (2, 2), "fp32", "cpu"))
step("back to auto", H("gslrm", "gslrm/a.pt", "/m/gslrm/a.pt", (2, 2), "fp32", "auto"))
step("other logical model", H("gslrm", "gslrm/b.pt", "/m/gslrm/b.pt", (1, 1), "auto", "auto"))
aux = []
for stamp in ((1,), (2,), (2,)):
    cache.get_cached("mtcnn", ("/m/mtcnn",), (stamp, "cpu"), lambda: object())
    aux.append(len([c for c in cache.cached_models() if c["kind"] == "mtcnn"]))
cleared = cache.clear()
gc.collect()
emit({"steps": steps, "mtcnn_resident": aux, "mtcnn_loads": cache.load_counts().get("mtcnn", 0),
      "cleared": cleared, "after_clear": {"cached": len(cache.cached_models()), "comfy_loaded": ours(),
                                          "alive": sum(r() is not None for r in alive)}})
"""


@pytest.fixture(scope="module")
def report() -> dict:
    return comfy_host.run_in_comfy(CACHE_SCRIPT)


def test_one_resident_version_per_logical_model(report):
    steps = {s["label"]: s for s in report["steps"]}
    # (cached entries, entries in ComfyUI's loaded models, live model objects, loads, evictions)
    want = {
        "first load": (1, 1, 1, 1, 0),
        "same version again": (1, 1, 1, 1, 0),  # a hit: nothing loaded
        "file replaced": (1, 1, 1, 2, 1),
        "precision changed": (1, 1, 1, 3, 2),
        "device changed": (1, 0, 1, 4, 3),  # pinned to the CPU: outside ComfyUI's list
        "back to auto": (1, 1, 1, 5, 4),
        "other logical model": (2, 2, 2, 6, 4),  # a different file is another model: both stay
    }
    got = {k: (s["cached"], s["comfy_loaded"], s["alive"], s["loads"], s["evictions"]) for k, s in steps.items()}
    assert got == want


def test_auxiliary_models_keep_one_version(report):
    assert report["mtcnn_resident"] == [1, 1, 1]
    assert report["mtcnn_loads"] == 2  # the third call was a hit


def test_clear_releases_everything(report):
    assert report["cleared"] == 3
    assert report["after_clear"] == {"cached": 0, "comfy_loaded": 0, "alive": 0}
