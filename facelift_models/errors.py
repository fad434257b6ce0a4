"""Exceptions whose message is meant for the user: what was wrong and what to do about it.

Nodes let these propagate unchanged so ComfyUI shows the message as the execution error.
"""


class FaceLiftError(RuntimeError):
    """Base class: a problem the user can fix (bad input, missing or corrupt weights, missing dependency)."""


class InputError(FaceLiftError, ValueError):
    """An input (image, mask, camera, Gaussians, option) that cannot be used as given."""


class WeightsError(FaceLiftError):
    """A weight file or folder that is missing, incomplete, corrupt or of the wrong model."""


class NoFaceError(InputError):
    """Face detection found no face above the threshold."""


class Interrupted(FaceLiftError):
    """Raised from a progress callback to stop long work between steps."""
