"""Save Gaussians to ComfyUI's output folder (.ply / .splat / .spz) and load splat PLYs back."""

from __future__ import annotations

import os
from pathlib import Path

from comfy_api.latest import io

from .common import CATEGORY, LICENSE_NOTE, check_interrupted, numbered_output_files, progress_bar
from .facelift_types import GaussianHeads, GaussiansType

# label -> (facelift_models.formats.export format, file extension)
FORMATS = {
    "ply (official FaceLift)": ("official_ply", ".ply"),
    "ply (standard 3DGS)": ("ply", ".ply"),
    "splat": ("splat", ".splat"),
    "spz": ("spz", ".spz"),
}
LOAD_AXES = ["auto", "facelift", "opencv"]
PREVIEW_SIZE = 256


def write_gaussians(g, path: Path, fmt: str) -> Path:
    """Write one head in the chosen format (atomically: temp file + rename, never a half-written file)."""
    from ..facelift_models.formats import export

    return Path(export.export(g, path, format=FORMATS[fmt][0]))


def front_preview(g, prefix_dir: str):
    """A small front render of the head as a temp PNG for the node's preview ({filename, subfolder, type})."""
    import folder_paths
    import numpy as np
    from PIL import Image

    from ..facelift_models import cameras as cams_mod
    from ..facelift_models.render import render

    out = render(g, cams_mod.orbit(width=PREVIEW_SIZE))
    arr = (out.rgb[0].clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8)
    temp = folder_paths.get_temp_directory()
    full, name, counter, sub, _ = folder_paths.get_save_image_path(prefix_dir + "_preview", temp,
                                                                   PREVIEW_SIZE, PREVIEW_SIZE)
    fname = f"{name}_{counter:05}_.png"
    Image.fromarray(arr).save(os.path.join(full, fname), compress_level=1)
    return {"filename": fname, "subfolder": sub, "type": "temp"}


class FaceLiftSaveGaussians(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FaceLiftSaveGaussians",
            display_name="FaceLift Save Gaussians",
            category=CATEGORY,
            description=(
                "Saves FaceLift Gaussians into ComfyUI's output folder with the usual prefix + counter naming, as "
                "the official FaceLift .ply (what the FaceLift code writes; opens in SuperSplat and most 3DGS "
                "viewers), a standard 3DGS .ply, .splat (antimatter15 web viewer) or .spz (Niantic, compact). "
                "Outputs the file's path relative to the output folder and shows a small front render. "
                + LICENSE_NOTE),
            inputs=[
                GaussiansType.Input("gaussians", tooltip="Gaussians from FaceLift Reconstruct or Load PLY."),
                io.String.Input("filename_prefix", default="FaceLift/head",
                                tooltip="File name prefix inside the output folder; may contain sub-folders and "
                                        "%date% style fields like Save Image."),
                io.Combo.Input("format", options=list(FORMATS), default="ply (official FaceLift)",
                               tooltip="File format. The official .ply keeps every value the model produced."),
                io.Boolean.Input("preview", default=True,
                                 tooltip="Show a small front render of the saved head on the node."),
            ],
            outputs=[io.String.Output(display_name="path",
                                      tooltip="Saved file, relative to ComfyUI's output folder (one line per head).")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, gaussians: GaussianHeads, filename_prefix: str = "FaceLift/head",
                format: str = "ply (official FaceLift)", preview: bool = True) -> io.NodeOutput:  # noqa: A002
        from ..facelift_models.errors import InputError

        if not isinstance(gaussians, GaussianHeads):
            raise InputError("FaceLift Save: 'gaussians' must come from FaceLift Reconstruct or Load PLY.")
        if format not in FORMATS:
            raise InputError(f"FaceLift Save: unknown format {format!r}; choose one of {list(FORMATS)}.")
        targets = numbered_output_files(filename_prefix, len(gaussians.items), FORMATS[format][1])
        bar = progress_bar(len(gaussians))
        rel_paths, files, previews = [], [], []
        for g, t in zip(gaussians.items, targets):
            check_interrupted()
            write_gaussians(g, t.path, format)
            rel_paths.append(t.relative)
            files.append({"filename": t.filename, "subfolder": t.subfolder, "type": "output", "format": format,
                          "gaussians": len(g)})
            if preview and len(g):
                previews.append(front_preview(g, filename_prefix))
            bar.update(1)
        ui = {"text": ["\n".join(rel_paths)], "facelift_files": files}
        if previews:
            ui["images"] = previews
        return io.NodeOutput("\n".join(rel_paths), ui=ui)


def resolve_splat_file(path: str) -> Path:
    """An absolute path, or one relative to ComfyUI's output folder, then its input folder."""
    import folder_paths

    from ..facelift_models.errors import InputError

    p = Path(path.strip().strip('"'))
    candidates = [p] if p.is_absolute() else [Path(folder_paths.get_output_directory()) / p,
                                              Path(folder_paths.get_input_directory()) / p]
    for c in candidates:
        if c.is_file():
            return c
    raise InputError(f"FaceLift Load PLY: no file {path!r}; looked at {', '.join(str(c) for c in candidates)}. "
                     "Give a path relative to ComfyUI's output or input folder, or an absolute path.")


class FaceLiftLoadPLY(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FaceLiftLoadPLY",
            display_name="FaceLift Load PLY",
            category=CATEGORY,
            description=(
                "Loads Gaussians from a 3D Gaussian-splat .ply file: FaceLift's own files or standard 3DGS PLYs "
                "from other tools (x, y, z, opacity, scale_*, rot_*, f_dc_* or red/green/blue; higher SH orders "
                "are ignored). Plain point clouds and meshes are refused with an explanation."),
            inputs=[
                io.String.Input("path", default="FaceLift/head_00001_.ply",
                                tooltip="The .ply (or .splat / .spz) file: relative to ComfyUI's output folder (e.g. "
                                        "the path FaceLift Save Gaussians printed), else to its input folder, or "
                                        "absolute."),
                io.Combo.Input("axes", options=LOAD_AXES, default="auto",
                               tooltip="Coordinate convention of the file. auto: FaceLift's official .ply is in the "
                                       "FaceLift world (+z up), every other file in the usual 3DGS/OpenCV one."),
            ],
            outputs=[GaussiansType.Output(display_name="gaussians", tooltip="The loaded Gaussians.")],
        )

    @classmethod
    def fingerprint_inputs(cls, path: str, axes: str = "auto"):
        try:
            st = resolve_splat_file(path).stat()
            return (path, axes, st.st_size, st.st_mtime_ns)
        except Exception:
            return (path, axes, None)

    @classmethod
    def execute(cls, path: str, axes: str = "auto") -> io.NodeOutput:
        from ..facelift_models.formats.export import load

        f = resolve_splat_file(path)
        g, axes = load(f, axes)
        return io.NodeOutput(GaussianHeads((g,), source=f"loaded from {f.name} ({axes} axes)"))


NODES = [FaceLiftSaveGaussians, FaceLiftLoadPLY]

