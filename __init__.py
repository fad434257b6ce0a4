"""ComfyUI entry point of the FaceLift pack (V3 node schema: ``comfy_entrypoint`` returns a ComfyExtension).

Importing this file does no work: the node modules are imported only when ComfyUI calls ``comfy_entrypoint``,
and they themselves import nothing heavier than what ComfyUI has already loaded (model code, diffusers,
transformers and weights load on first use inside a node's ``execute``). Deliberately no NODE_CLASS_MAPPINGS:
ComfyUI ignores ``comfy_entrypoint`` in a module that defines it. ``WEB_DIRECTORY`` is only a string: ComfyUI
serves ``web/`` (the FaceLift Preview 3D widget and its bundled viewer) under ``/extensions/<this pack>/``.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import FaceLiftExtension

    return FaceLiftExtension()


__all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]
