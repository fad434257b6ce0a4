"""Strings and small helpers shared by every FaceLift node (no heavy imports)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

CATEGORY = "FaceLift"
NODE_ID_PREFIX = "FaceLift"

# Append to the description of every node that loads or uses the released FaceLift weights.
LICENSE_NOTE = (
    "Licence: this node pack's code is Apache-2.0; the FaceLift weights (Hugging Face wlyu/OpenFaceLift) are "
    "under the Adobe Research License, which allows non-commercial research use only. Outputs made with the "
    "weights inherit that restriction."
)


def check_interrupted() -> None:
    """Raise ComfyUI's interrupt exception if the user pressed Cancel (call between units of work)."""
    import comfy.model_management

    comfy.model_management.throw_exception_if_processing_interrupted()


def progress_bar(total: int):
    """ComfyUI's progress bar for the running node (sends `progress` messages to the client)."""
    import comfy.utils

    return comfy.utils.ProgressBar(total)


class OutputFile(NamedTuple):
    path: Path      # where to write it
    filename: str   # ComfyUI's UI record fields
    subfolder: str
    relative: str   # the path relative to the output folder, with "/" (what a Save node returns)


def numbered_output_files(filename_prefix: str, count: int, suffix: str) -> list[OutputFile]:
    """Where ``count`` files go in ComfyUI's output folder, named like its own Save nodes: prefix + a counter
    continuing after the files already there + ``suffix`` (e.g. ``FaceLift/head_00003_.ply``)."""
    import folder_paths

    full, name, counter, sub, _ = folder_paths.get_save_image_path(filename_prefix,
                                                                    folder_paths.get_output_directory())
    out = []
    for i in range(count):
        fname = f"{name}_{counter + i:05}_{suffix}"
        relative = (f"{sub}/{fname}" if sub else fname).replace(os.sep, "/")
        out.append(OutputFile(Path(full) / fname, fname, sub, relative))
    return out


def foreground_alpha(mask, batch: int, height: int, width: int, mask_is_foreground: bool, node: str):
    """Foreground alpha [B, H, W] in 0..1 from a ComfyUI MASK ([H, W] or [B, H, W], any size).

    ComfyUI's Load Image MASK is 1 - alpha (1 = background); ``mask_is_foreground`` takes segmentation-style
    masks (1 = subject). ``node`` names the node in the error messages.
    """
    import torch

    from ..facelift_models.errors import InputError

    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim != 3:
        raise InputError(
            f"{node}: the mask has shape {tuple(mask.shape)}; a ComfyUI MASK is [height, width] or "
            "[batch, height, width]. Connect a MASK output (e.g. from Load Image).")
    if mask.shape[0] not in (1, batch):
        raise InputError(
            f"{node}: the mask batch has {mask.shape[0]} masks but the image batch has {batch} images. Give one "
            "mask for all images or exactly one mask per image.")
    mask = mask.to(dtype=torch.float32)
    if mask.shape[1:] != (height, width):
        mask = torch.nn.functional.interpolate(mask.unsqueeze(1), size=(height, width), mode="bilinear",
                                               align_corners=False).squeeze(1)
    mask = mask.clamp(0.0, 1.0)
    alpha = mask if mask_is_foreground else 1.0 - mask
    return alpha.expand(batch, height, width)
