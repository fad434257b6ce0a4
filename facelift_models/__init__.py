"""Pure-torch re-implementation of FaceLift (arXiv 2412.17812): no ComfyUI imports, no work at import time.

Modules are imported on demand (``from facelift_models import gslrm``); this package file stays empty of
heavy imports so that loading the ComfyUI pack is instant.
"""

__version__ = "0.1.0"
