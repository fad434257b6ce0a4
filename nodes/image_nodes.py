"""Image helper nodes: prepare a photo for FaceLift (which expects a subject on a white background)."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..facelift_models.errors import InputError
from .common import CATEGORY, check_interrupted, foreground_alpha, progress_bar


class FaceLiftCompositeOnWhite(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FaceLiftCompositeOnWhite",
            display_name="FaceLift Composite on White",
            category=CATEGORY,
            description=(
                "Puts the subject of an image on a pure white background, the way FaceLift expects its input "
                "photo. The transparency comes from the optional MASK, else from the image's own alpha channel "
                "(4-channel images); with neither, the image passes through unchanged. By default the MASK "
                "follows ComfyUI's Load Image convention (MASK = 1 - alpha: 1 marks transparent background "
                "that becomes white); switch 'mask_is_foreground' on for matting/segmentation masks where 1 "
                "marks the subject. Masks of another size are resized to the image. Works on batches."
            ),
            inputs=[
                io.Image.Input("image", tooltip="The photo(s) to composite, RGB or RGBA, any size, any batch."),
                io.Mask.Input(
                    "mask", optional=True,
                    tooltip="Optional transparency mask. One mask for the whole batch or one per image; resized "
                            "to the image. Load Image's MASK output plugs in directly."),
                io.Boolean.Input(
                    "mask_is_foreground", default=False,
                    tooltip="Off (default): mask 1 = background (Load Image's MASK = 1 - alpha). "
                            "On: mask 1 = subject (typical of background-removal / segmentation nodes)."),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="RGB image(s) composited on white.")],
        )

    @classmethod
    def execute(cls, image: torch.Tensor, mask: torch.Tensor | None = None,
                mask_is_foreground: bool = False) -> io.NodeOutput:
        if image.ndim != 4 or image.shape[-1] not in (3, 4):
            raise InputError(
                f"FaceLift Composite on White: the image has shape {tuple(image.shape)}; a ComfyUI IMAGE is "
                "[batch, height, width, 3 or 4 channels]. Connect an IMAGE output (e.g. from Load Image).")
        batch, height, width, channels = image.shape
        if mask is not None:
            alpha = foreground_alpha(mask.to(image.device), batch, height, width, mask_is_foreground,
                                     "FaceLift Composite on White")
        elif channels == 4:
            alpha = image[..., 3].float().clamp(0.0, 1.0)
        else:
            alpha = None
        bar = progress_bar(batch)
        out = torch.empty((batch, height, width, 3), dtype=torch.float32, device=image.device)
        for i in range(batch):
            check_interrupted()
            rgb = image[i, ..., :3].float()
            if alpha is None:
                out[i] = rgb
            else:
                a = alpha[i].unsqueeze(-1)
                out[i] = rgb * a + (1.0 - a)
            bar.update(1)
        return io.NodeOutput(out.clamp_(0.0, 1.0))


NODES = [FaceLiftCompositeOnWhite]
