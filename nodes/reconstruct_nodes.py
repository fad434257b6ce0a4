"""Reconstruct: views + cameras -> 3D Gaussians with GS-LRM; Cameras: the official rig or your own cameras."""

from __future__ import annotations

import dataclasses
import json

import torch
from comfy_api.latest import io

from . import cache, folders
from .common import CATEGORY, LICENSE_NOTE, check_interrupted, progress_bar
from .facelift_types import CamerasType, GaussianHeads, GaussiansType, GSLRMModel, core_splat_class, core_splat_type

FILTER_PRESETS = ["cli", "gradio", "none"]


def load_gslrm(handle: cache.ModelHandle):
    """The cached GS-LRM of a handle (fp32 weights; reduced precision runs as autocast, like the official code)."""
    from ..facelift_models.reconstruct.checkpoint import load_gslrm as _load

    folders.ensure_present(handle)
    weights = dataclasses.replace(handle, precision="fp32")
    return cache.get_model(weights, lambda: _load(handle.path, device="cpu", dtype=torch.float32))


def autocast_dtype(handle: cache.ModelHandle, device: torch.device):
    if device.type != "cuda" or handle.precision == "fp32":
        return None
    return cache.torch_dtype(handle.precision, device)


def views_to_batch(views: torch.Tensor, n_cams: int) -> torch.Tensor:
    """ComfyUI IMAGE [N,H,W,3] -> [N//V, V, 3, H, W] in [0,1] (groups of V consecutive images)."""
    from ..facelift_models.errors import InputError

    if views.ndim != 4 or views.shape[-1] < 3:
        raise InputError(f"FaceLift Reconstruct: the views have shape {tuple(views.shape)}; expected a ComfyUI "
                         "IMAGE batch [views, height, width, 3].")
    n, h, w, _ = views.shape
    if n % n_cams:
        raise InputError(
            f"FaceLift Reconstruct: {n} view images for {n_cams} cameras. Give exactly one image per camera (in "
            f"the cameras' order), or a multiple of {n_cams} to reconstruct several heads.")
    x = views[..., :3].float().clamp(0, 1).permute(0, 3, 1, 2)
    return x.reshape(n // n_cams, n_cams, 3, h, w)


class FaceLiftReconstruct(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        outputs = [GaussiansType.Output(display_name="gaussians",
                                        tooltip="The reconstructed 3D Gaussians (one head per group of views).")]
        splat = core_splat_type()
        if splat is not None:
            outputs.append(splat.Output(display_name="splat", tooltip="The same Gaussians as ComfyUI's SPLAT type."))
        return io.Schema(
            node_id="FaceLiftReconstruct",
            display_name="FaceLift Reconstruct (GS-LRM)",
            category=CATEGORY,
            description=(
                "Turns views of a head into 3D Gaussians with GS-LRM: normally the 6 views and cameras of the "
                "FaceLift Multi-View Sampler, but any views with matching cameras work too (e.g. real multi-view "
                "photos with a FaceLift Cameras node; GS-LRM was trained on 512x512 views). Then applies the "
                "official post-filters (cli or gradio thresholds) that remove transparent, oversized and stray "
                "Gaussians. Weights load on first use and stay cached. " + LICENSE_NOTE),
            inputs=[
                GSLRMModel.Input("gslrm", tooltip="GS-LRM handle from FaceLift Load Models."),
                io.Image.Input("views", tooltip="The views, one image per camera in the cameras' order (6 for the "
                                                "official rig); a multiple of that reconstructs several heads."),
                CamerasType.Input("cameras", optional=True,
                                  tooltip="Cameras of the views (from the sampler or FaceLift Cameras). Default: "
                                          "the 6 official FaceLift cameras."),
                io.Combo.Input("filters", options=FILTER_PRESETS, default="cli",
                               tooltip="Post-filters: cli = official inference.py thresholds, gradio = the demo's "
                                       "looser ones, none = keep every Gaussian (1.5M for 6x512^2 views)."),
            ],
            outputs=outputs,
        )

    @classmethod
    def execute(cls, gslrm, views: torch.Tensor, cameras=None, filters: str = "cli") -> io.NodeOutput:
        from ..facelift_models import cameras as cams_mod
        from ..facelift_models.chunking import GSLRM_BYTES_PER_PHOTO, chunks, items_per_chunk
        from ..facelift_models.reconstruct import filters as filt
        from ..facelift_models.errors import InputError
        from ..facelift_models.reconstruct.gslrm import reconstruct

        if not isinstance(gslrm, cache.ModelHandle) or gslrm.kind != "gslrm":
            raise InputError("FaceLift Reconstruct: the 'gslrm' input must come from FaceLift Load Models.")
        cameras = cams_mod.for_images(cameras, int(views.shape[2]), int(views.shape[1]))
        batch = views_to_batch(views, len(cameras))

        model = load_gslrm(gslrm)
        device = next(model.parameters()).device
        n_layer = model.config.n_layer
        # Several heads per forward pass, as many as the device holds; each chunk's Gaussians go to the CPU.
        per_chunk = items_per_chunk(device, GSLRM_BYTES_PER_PHOTO, batch.shape[0])
        parts = list(chunks(batch.shape[0], per_chunk))
        bar = progress_bar(len(parts) * n_layer + 1)

        def on_layer(done: int, total: int) -> None:
            check_interrupted()
            bar.update(1)

        heads = []
        for part in parts:
            check_interrupted()
            gs = reconstruct(model, batch[part.start:part.stop].to(device), cameras,
                             dtype=autocast_dtype(gslrm, device), progress=on_layer)
            heads.extend(filt.apply_filters(g, filt.PRESETS[filters]).to("cpu") for g in gs)
        bar.update(1)
        out = GaussianHeads(tuple(heads), source=f"GS-LRM {gslrm.name}, filters {filters}")
        result = [out]
        if core_splat_type() is not None:
            from ..facelift_models.formats import splat_interop

            result.append(splat_interop.to_splat(list(heads), splat_cls=core_splat_class()))
        cache.soft_empty_cache()
        return io.NodeOutput(*result)


class FaceLiftCameras(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FaceLiftCameras",
            display_name="FaceLift Cameras",
            category=CATEGORY,
            description=(
                "Cameras for FaceLift Reconstruct and Render: the 6 official FaceLift cameras (front, front_right, "
                "right, back, left, front_left; distance 2.7, 50 degree field of view, head at the origin, +z up, "
                "face toward -y), or your own cameras as JSON for real multi-view photos: {\"c2w\": [V x 4x4 "
                "OpenCV camera-to-world], \"fxfycxcy\": [V x 4] or \"K\": [V x 3x3] in pixels, \"width\": W, "
                "\"height\": H}."),
            inputs=[
                io.Combo.Input("mode", options=["official", "json"], default="official",
                               tooltip="official = the 6 FaceLift views; json = the cameras given below."),
                io.Int.Input("resolution", default=512, min=8, max=4096, step=8,
                             tooltip="Image size of the official cameras (square); GS-LRM was trained at 512."),
                io.String.Input("cameras_json", default="", multiline=True,
                                tooltip="For mode json: {\"c2w\": [...], \"fxfycxcy\" or \"K\": [...], \"width\": "
                                        "W, \"height\": H, \"names\": [optional]} in the OpenCV convention."),
            ],
            outputs=[CamerasType.Output(display_name="cameras", tooltip="The cameras.")],
        )

    @classmethod
    def execute(cls, mode: str = "official", resolution: int = 512, cameras_json: str = "") -> io.NodeOutput:
        from ..facelift_models import cameras as cams_mod
        from ..facelift_models.errors import InputError

        if mode == "official":
            return io.NodeOutput(cams_mod.official_views(resolution=int(resolution)))
        try:
            d = json.loads(cameras_json)
        except ValueError as e:
            raise InputError(f"FaceLift Cameras: cameras_json is not valid JSON ({e}).") from None
        if not isinstance(d, dict) or "c2w" not in d or not ({"fxfycxcy", "K"} & set(d)) \
                or "width" not in d or "height" not in d:
            raise InputError("FaceLift Cameras: cameras_json must be an object with 'c2w', 'fxfycxcy' (or 'K'), "
                             "'width' and 'height'.")
        intr = d["fxfycxcy"] if "fxfycxcy" in d else d["K"]
        return io.NodeOutput(cams_mod.from_user(d["c2w"], intr, int(d["width"]), int(d["height"]),
                                                names=d.get("names")))


NODES = [FaceLiftReconstruct, FaceLiftCameras]
