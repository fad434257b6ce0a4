"""Strings and small helpers shared by every FaceLift node (no heavy imports)."""

from __future__ import annotations

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
