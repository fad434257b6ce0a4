"""The pack's ComfyUI nodes (V3 schema), gathered from the modules of this folder.

To add nodes: write ``nodes/<topic>.py`` with ``io.ComfyNode`` classes and a module-level list ``NODES`` of them;
it is picked up automatically (modules without ``NODES`` are helpers). A module that fails to import is logged
with its traceback and skipped, so the other nodes still load.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

from comfy_api.latest import ComfyExtension, io

log = logging.getLogger("FaceLift")


def node_modules() -> list[str]:
    """Names of the node modules of this folder, in a stable order."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def node_classes() -> list[type[io.ComfyNode]]:
    """Every node class listed in a ``NODES`` list of a module of this folder."""
    classes: list[type[io.ComfyNode]] = []
    for name in node_modules():
        try:
            module = importlib.import_module(f".{name}", __name__)
        except Exception:
            log.exception("[FaceLift] could not import nodes/%s.py; its nodes are not available", name)
            continue
        classes.extend(getattr(module, "NODES", ()))
    return classes


class FaceLiftExtension(ComfyExtension):
    async def on_load(self) -> None:
        from .routes import add_routes

        add_routes()  # GET /facelift/cache, POST /facelift/cache/clear (idempotent)

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        await self.on_load()  # ComfyUI 0.3.75 calls only get_node_list when it loads the extension
        return node_classes()
