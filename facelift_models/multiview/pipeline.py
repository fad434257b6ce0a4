"""Public entry points of the multi-view diffusion stage (what the ComfyUI nodes call).

- :func:`load_mv_diffusion` — load the official ``mvdiffusion/pipeckpts`` folder (component by component).
- :func:`sample_views` — six views from one 512² face crop, with seed/steps/guidance/eta/scheduler and a
  per-step ``callback(step_index, num_steps, latents)`` that may raise ``Interrupted``.
- :func:`tile_latents` / :func:`tile_views` — the six views side by side (previews, the official multiview.png).

The implementation lives in :mod:`.mv_components` (loading), :mod:`.mv_sampler` (sampling) and
:mod:`.view_embeddings` / :mod:`.mv_unet` / :mod:`.mv_attention`.
"""

from ..config import VIEW_NAMES, resolve_dtype  # noqa: F401
from .loading import MVDiffusionModel, load_mv_diffusion  # noqa: F401
from .sampler import (  # noqa: F401
    DEFAULT_SCHEDULER,
    SCHEDULERS,
    MVDiffusionConfig,
    MVDiffusionResult,
    decode_latents,
    make_scheduler,
    prepare_input_image,
    sample_views,
    tile_latents,
    tile_views,
)
