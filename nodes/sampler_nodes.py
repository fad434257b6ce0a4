"""Multi-view sampler: one face crop -> the 6 FaceLift views (front, front_right, right, back, left, front_left)."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from . import cache, folders
from .common import CATEGORY, LICENSE_NOTE, check_interrupted, progress_bar
from .facelift_types import CamerasType, MVModel

# Same names as facelift_models.multiview.sampler.SCHEDULERS (kept here so the pack imports nothing heavy at start-up;
# tests/test_nodes_server.py checks that the two lists agree). "ddim" is the official sampler.
SCHEDULERS = ["ddim", "dpmpp_2m", "dpmpp_2m_karras", "dpmpp_2m_sde", "unipc", "euler", "euler_ancestral", "ddpm"]


def load_mv(handle: cache.ModelHandle):
    """The cached multi-view diffusion model of a handle (loaded on the CPU, moved to the GPU by ComfyUI)."""
    from ..facelift_models.multiview.loading import load_mv_diffusion

    folders.ensure_present(handle)
    dtype = cache.torch_dtype(handle.precision, cache.torch_device(handle.device))  # fp16 on the CPU: InputError
    return cache.get_model(handle, lambda: load_mv_diffusion(handle.path, device="cpu", dtype=dtype))


def _previewer():
    """ComfyUI's cheap latent->RGB previewer with its factors for the SD 1.x/2.x latent space (the FaceLift VAE is
    the SD 2.1 VAE). Always on, whatever --preview-method says, as the sampler's per-step feedback."""
    import latent_preview
    from comfy import latent_formats

    fmt = latent_formats.SD15()
    return latent_preview.Latent2RGBPreviewer(fmt.latent_rgb_factors, getattr(fmt, "latent_rgb_factors_bias", None))


def _preview(previewer, latents: torch.Tensor):
    """The current latents of all views side by side, as ComfyUI's progress preview ("JPEG", image, max size)."""
    from ..facelift_models.multiview.sampler import tile_latents

    return previewer.decode_latent_to_preview_image("JPEG", tile_latents(latents.detach().float().cpu()))


class FaceLiftMultiViewSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FaceLiftMultiViewSampler",
            display_name="FaceLift Multi-View Sampler",
            category=CATEGORY,
            description=(
                "Generates the 6 views FaceLift reconstructs from (front, front_right, right, back, left, "
                "front_left) from one face crop with the multi-view diffusion model, exactly like the official "
                "code (seed 4, 50 DDIM steps, guidance 3.0, eta 1.0). Use the FaceLift Face Crop output as input. "
                "Shows progress and latent previews per step; Cancel stops after the current step. Identical "
                "inputs give identical views. Outputs the views as an IMAGE batch (6 per input image) and their "
                "cameras for FaceLift Reconstruct. " + LICENSE_NOTE),
            inputs=[
                MVModel.Input("mv_model", tooltip="Multi-view model handle from FaceLift Load Models."),
                io.Image.Input("image", tooltip="Square face crop on white (FaceLift Face Crop output); other square "
                                                "sizes are resized to the model's 512x512."),
                io.Int.Input("seed", default=4, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Random seed (official: 4). The same seed and inputs give the same views."),
                io.Int.Input("steps", default=50, min=1, max=1000,
                             tooltip="Denoising steps (official: 50)."),
                io.Float.Input("guidance", default=3.0, min=0.0, max=30.0, step=0.1,
                               tooltip="Classifier-free guidance scale (official: 3.0); 1.0 turns guidance off."),
                io.Float.Input("eta", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="DDIM eta (official: 1.0, stochastic); only used by the ddim scheduler."),
                io.Combo.Input("scheduler", options=SCHEDULERS, default="ddim",
                               tooltip="Sampler. ddim is the official one; the others are untested alternatives "
                                       "for fewer steps."),
            ],
            outputs=[
                io.Image.Output(display_name="views", tooltip="The 6 views per input image, in the official order."),
                CamerasType.Output(display_name="cameras", tooltip="The 6 official FaceLift cameras of the views."),
            ],
        )

    @classmethod
    def execute(cls, mv_model, image: torch.Tensor, seed: int = 4, steps: int = 50, guidance: float = 3.0,
                eta: float = 1.0, scheduler: str = "ddim") -> io.NodeOutput:
        from ..facelift_models import cameras as cams_mod
        from ..facelift_models.errors import InputError
        from ..facelift_models.multiview.sampler import MVDiffusionConfig, sample_views

        if not isinstance(mv_model, cache.ModelHandle) or mv_model.kind != "mv":
            raise InputError("FaceLift Multi-View Sampler: 'mv_model' must come from FaceLift Load Models.")
        if image.ndim != 4:
            raise InputError(f"FaceLift Multi-View Sampler: the image has shape {tuple(image.shape)}; expected a "
                             "ComfyUI IMAGE [batch, height, width, channels].")
        model = load_mv(mv_model)
        config = MVDiffusionConfig(num_inference_steps=int(steps), guidance_scale=float(guidance), eta=float(eta),
                                   seed=int(seed), scheduler=scheduler)
        batch = image.shape[0]
        total = batch * int(steps)
        bar = progress_bar(total)
        previewer = _previewer()
        views = []
        for b in range(batch):
            check_interrupted()

            def on_step(i: int, n: int, latents: torch.Tensor, b=b) -> None:
                # update_absolute raises ComfyUI's interrupt exception if Cancel was pressed during the step
                bar.update_absolute(b * int(steps) + i + 1, total, _preview(previewer, latents))
                check_interrupted()

            result = sample_views(model, image[b:b + 1], config, callback=on_step, resize=True)
            views.append(result.images_hwc())
        out = torch.cat(views).float()
        cams = cams_mod.official_views(resolution=int(out.shape[1]))
        cache.soft_empty_cache()
        return io.NodeOutput(out, cams)


NODES = [FaceLiftMultiViewSampler]
