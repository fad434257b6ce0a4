"""Pure-torch re-implementation of FaceLift (arXiv 2412.17812): no ComfyUI imports, no work at import time.

One sub-package per pipeline stage (``face``, ``multiview``, ``reconstruct``, ``render``, ``formats``) over the
weights layer (``weights``) and a small shared vocabulary (``errors``, ``atomic_io``, ``config``, ``gaussians``,
``cameras``); docs/architecture.md has the layer rules. Modules are imported on demand
(``from facelift_models.reconstruct import gslrm``); this package file stays empty of heavy imports so that loading
the ComfyUI pack is instant.
"""

__version__ = "0.1.0"
