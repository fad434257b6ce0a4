"""FaceLift Load Photos: a folder of photos under ComfyUI's input directory as one IMAGE batch (for batch runs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from comfy_api.latest import io

from .common import CATEGORY, check_interrupted, progress_bar

DEFAULT_FOLDER = "facelift_photos"


def photo_folder(folder: str) -> Path:
    """``folder`` (relative) inside ComfyUI's input directory; never a path outside it."""
    import folder_paths

    from ..facelift_models.errors import InputError

    root = Path(folder_paths.get_input_directory()).resolve()
    name = (folder or "").strip().strip("/\\")
    target = (root / name).resolve()
    if not name or os.path.isabs(folder.strip()) or (target != root and root not in target.parents):
        raise InputError(f"FaceLift Load Photos: folder {folder!r} must be a sub-folder of ComfyUI's input folder "
                         f"({root}), given relative to it, e.g. {DEFAULT_FOLDER}.")
    if not target.is_dir():
        subs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))[:20]
        raise InputError(f"FaceLift Load Photos: there is no folder {name!r} in ComfyUI's input folder ({root}). "
                         f"Create it and put the photos there{'; existing folders: ' + ', '.join(subs) if subs else ''}.")
    return target


class FaceLiftLoadPhotos(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FaceLiftLoadPhotos",
            display_name="FaceLift Load Photos",
            category=CATEGORY,
            description=(
                "Loads the photos of a folder inside ComfyUI's input folder as one IMAGE batch for the FaceLift "
                "nodes, sorted by file name, with a start and a limit (to work through a large folder in parts). "
                "Photos of different sizes are padded with white to the largest one; the mask output marks that "
                "padding (and any transparency) as background. Connect the batch to FaceLift Face Crop with "
                "on_no_face = skip to drop photos without a face and go on with the others."),
            inputs=[
                io.String.Input("folder", default=DEFAULT_FOLDER,
                                tooltip="Folder inside ComfyUI's input folder (e.g. facelift_photos or cast/day1); "
                                        "png, jpg, jpeg, webp, bmp and tif files directly in it are loaded."),
                io.Int.Input("start", default=0, min=0, max=1_000_000,
                             tooltip="Skip this many photos (in name order) first."),
                io.Int.Input("limit", default=0, min=0, max=100_000,
                             tooltip="Load at most this many photos (0 = all). Larger batches need more RAM: "
                                     "about 12 MB per photo at max_side 1024, plus 19 MB of views per face."),
                io.Int.Input("max_side", default=1024, min=0, max=8192, step=64,
                             tooltip="Scale photos whose longer side exceeds this down to it (0 = keep the size). "
                                     "Face Crop scales the face to about 194 px anyway."),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="The photos as one IMAGE batch, in name order."),
                io.Mask.Output(display_name="mask",
                               tooltip="Background mask per photo (1 = padding or transparent, like Load Image)."),
                io.String.Output(display_name="names",
                                 tooltip="JSON list of the loaded file names, in batch order (photo N of Face "
                                         "Crop's info is the N-th name)."),
            ],
        )

    @classmethod
    def fingerprint_inputs(cls, folder: str = DEFAULT_FOLDER, start: int = 0, limit: int = 0, max_side: int = 1024):
        try:
            target = photo_folder(folder)
            return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in target.iterdir()
                                if p.is_file()))
        except Exception:  # noqa: BLE001 - execute() reports the problem
            return (folder, None)

    @classmethod
    def execute(cls, folder: str = DEFAULT_FOLDER, start: int = 0, limit: int = 0,
                max_side: int = 1024) -> io.NodeOutput:
        from ..facelift_models.batch.photos import list_photos, load_photo_batch

        paths = list_photos(photo_folder(folder), start, limit)
        bar = progress_bar(len(paths))

        def on_progress(done: int, total: int) -> None:
            bar.update_absolute(done, total)
            check_interrupted()

        images, masks, names = load_photo_batch(paths, max_side, progress=on_progress)
        text = json.dumps(names)
        return io.NodeOutput(images, masks, text, ui={"text": [text]})


NODES = [FaceLiftLoadPhotos]
