"""FaceLift Preview 3D: shows a Gaussian head in an interactive 3D viewer inside the node.

The node writes a compact copy of the head (``.spz``, or ``.splat`` without ``gsply``) in the viewer axes into
ComfyUI's temp folder, plus a small front render, and returns them as its UI message; the web extension
``web/facelift_preview3d.js`` (Spark + three.js, bundled in ``web/lib/``) fetches the file from ``/view`` and draws
it. The head's saved PLY (FaceLift Save Gaussians) is untouched: this copy is only for display.
"""

from __future__ import annotations

from pathlib import Path

from comfy_api.latest import io

from .common import CATEGORY, check_interrupted, progress_bar
from .facelift_types import GaussianHeads, GaussiansType
from .io_nodes import FaceLiftLoadPLY, front_preview, resolve_splat_file

UI_KEY = "facelift_splat"  # read by web/facelift_preview3d.js
TEMP_PREFIX = "FaceLift/preview3d"


def display_format() -> str:
    """.spz (about 10x smaller than .splat) when gsply is installed, else .splat; both open in Spark."""
    from ..facelift_models.formats import export

    return "spz" if export.spz_available() else "splat"


class FaceLiftPreview3D(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FaceLiftPreview3D",
            display_name="FaceLift Preview 3D",
            category=CATEGORY,
            description=(
                "Shows a 3D Gaussian head in an interactive viewer inside the node: left-drag orbits, the wheel "
                "zooms, right-drag pans, 'Reset view' returns to the front view (the first frame of FaceLift "
                "Render's turntable) and 'Save PNG' downloads the current view. Connect Gaussians (Reconstruct, "
                "Load PLY) or give the path FaceLift Save Gaussians returns; a batch shows its first head. The "
                "viewer (Spark + three.js) ships with the pack and works offline; it needs WebGL 2, and without "
                "it the node shows a rendered front view. The head is sent to the browser as a compact temporary "
                ".spz file (lossy, display only); your saved files are not changed."),
            inputs=[
                GaussiansType.Input("gaussians", optional=True,
                                    tooltip="Gaussians from FaceLift Reconstruct or Load PLY (the first head of a "
                                            "batch is shown). Leave unconnected to show a file given by 'path'."),
                io.String.Input("path", default="", optional=True,
                                tooltip="Instead of 'gaussians': a .ply / .splat / .spz file, relative to ComfyUI's "
                                        "output folder (e.g. the path output of FaceLift Save Gaussians; its first "
                                        "line), else to its input folder, or absolute."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        path = (kwargs.get("path") or "").strip()
        return FaceLiftLoadPLY.fingerprint_inputs(path.splitlines()[0]) if path else ""

    @classmethod
    def execute(cls, gaussians: GaussianHeads | None = None, path: str = "") -> io.NodeOutput:
        import folder_paths

        from ..facelift_models.errors import InputError
        from ..facelift_models.formats import export

        path = (path or "").strip()
        if gaussians is not None:
            if not isinstance(gaussians, GaussianHeads):
                raise InputError("FaceLift Preview 3D: 'gaussians' must come from FaceLift Reconstruct or Load PLY.")
            g, heads = gaussians.items[0], len(gaussians)
        elif path:
            g, _ = export.load(resolve_splat_file(path.splitlines()[0]))
            heads = 1
        else:
            raise InputError("FaceLift Preview 3D: nothing to show. Connect 'gaussians' (from FaceLift Reconstruct "
                             "or Load PLY) or set 'path' to a .ply / .splat / .spz file (e.g. the path output of "
                             "FaceLift Save Gaussians).")
        bar = progress_bar(2)  # 1: the display file, 2: the fallback front render (seconds for 1.5 M splats)
        fmt = display_format()
        temp = folder_paths.get_temp_directory()
        full, name, counter, sub, _ = folder_paths.get_save_image_path(TEMP_PREFIX, temp)
        fname = f"{name}_{counter:05}_.{fmt}"
        export.export(g, Path(full) / fname, format=fmt, axes="opencv")
        bar.update(1)
        check_interrupted()
        preview = front_preview(g, TEMP_PREFIX)
        bar.update(1)
        record = {"filename": fname, "subfolder": sub, "type": "temp", "format": fmt, "gaussians": len(g),
                  "heads": heads, "preview": preview}
        return io.NodeOutput(ui={UI_KEY: [record]})


NODES = [FaceLiftPreview3D]
