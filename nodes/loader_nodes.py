"""Load FaceLift models: picks the weight files and hands out light handles (weights load on first use)."""

from __future__ import annotations

from pathlib import Path

from comfy_api.latest import io

from ..facelift_models.config import DEVICES, PRECISIONS
from . import cache, folders
from .common import CATEGORY, LICENSE_NOTE, check_interrupted, progress_bar
from .facelift_types import GSLRMModel, MVModel


def _handle(kind: str, name: str, precision: str, device: str) -> cache.ModelHandle:
    path = folders.resolve(name)
    if path is None:  # not there (yet): point at where it belongs, the user gets the clear message on use
        root = folders.default_root()
        path = (root / name) if root is not None else Path(name)
    return cache.make_handle(kind, name, path, precision, device)


def _download_missing(accept_licence: bool) -> str:
    """Fetch the missing official weights, the MTCNN detector and U²-Net into the models folder."""
    from ..facelift_models.errors import WeightsError
    from ..facelift_models.weights.store import INFERENCE, LICENCE_SHORT, ModelStore

    if not accept_licence:
        raise WeightsError(
            "FaceLift Load Models: 'download_missing' is on but 'accept_licence' is off. The FaceLift weights "
            f"are not part of this node pack. {LICENCE_SHORT} Switch 'accept_licence' on to agree to that licence "
            "and download them, or download them yourself (see docs/models.md).")
    from ..facelift_models.weights.download import download_weights

    store = ModelStore.resolve(comfy_folders=[str(r) for r in folders.search_roots()])
    bar = progress_bar(100)

    def on_progress(done: int, total: int, _name: str) -> None:
        check_interrupted()
        if total:
            bar.update_absolute(int(100 * done / total), 100)

    result = download_weights(store, INFERENCE, accept_license=True,
                              progress=on_progress)
    notes = [f"downloaded {len(result.fetched)} file(s) into {result.models_dir}" if result.fetched
             else f"all official files already present in {result.models_dir}"]
    return "; ".join(notes)


class FaceLiftLoadModels(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        folders.register_folder()
        return io.Schema(
            node_id="FaceLiftLoadModels",
            display_name="FaceLift Load Models",
            category=CATEGORY,
            description=(
                "Chooses the FaceLift weights found under ComfyUI/models/facelift (and every 'facelift' folder of "
                "extra_model_paths.yaml) and outputs light handles: nothing is loaded here. The multi-view sampler "
                "and the reconstructor load the weights on first use and keep them in one shared cache, so later "
                "runs do not reload them. Optionally downloads missing official weights from Hugging Face "
                "(wlyu/OpenFaceLift) after you accept their licence. " + LICENSE_NOTE),
            inputs=[
                io.Combo.Input(
                    "mv_model", options=folders.list_mv_models(), default=folders.OFFICIAL_MV_DIR,
                    tooltip="Multi-view diffusion pipeline folder (diffusers layout), relative to the facelift "
                            "models folder. The official one is mvdiffusion/pipeckpts."),
                io.Combo.Input(
                    "gslrm", options=folders.list_gslrm_checkpoints(), default=folders.OFFICIAL_GSLRM,
                    tooltip="GS-LRM reconstructor weights: the official training checkpoint "
                            "gslrm/ckpt_0000000000021125.pt or a converted .safetensors file."),
                io.Combo.Input(
                    "precision", options=list(PRECISIONS), default="auto",
                    tooltip="Weight precision. auto = fp16 diffusion and fp16-autocast reconstruction on a GPU "
                            "(the official setting), fp32 on the CPU."),
                io.Combo.Input(
                    "device", options=list(DEVICES), default="auto",
                    tooltip="auto = ComfyUI's device (honours --cpu, --lowvram; models are offloaded when other "
                            "models need the memory); cpu = always run FaceLift on the CPU."),
                io.Boolean.Input(
                    "download_missing", default=False,
                    tooltip="Download missing official weights from Hugging Face (wlyu/OpenFaceLift, ~5.7 GB) "
                            "into the facelift models folder. Needs accept_licence."),
                io.Boolean.Input(
                    "accept_licence", default=False,
                    tooltip="I accept the Adobe Research License of the FaceLift weights: non-commercial "
                            "research use only. Required for download_missing."),
            ],
            outputs=[
                MVModel.Output(display_name="mv_model", tooltip="Handle of the multi-view diffusion model."),
                GSLRMModel.Output(display_name="gslrm", tooltip="Handle of the GS-LRM reconstructor."),
            ],
        )

    @classmethod
    def fingerprint_inputs(cls, mv_model, gslrm, precision="auto", device="auto", download_missing=False,
                           accept_licence=False):
        # Re-run (new handles, so a fresh cache key) when the files on disk changed.
        stamps = []
        for name in (mv_model, gslrm):
            p = folders.resolve(name)
            stamps.append(cache.file_stamp(p) if p is not None else None)
        return (mv_model, gslrm, precision, device, download_missing, accept_licence, tuple(stamps))

    @classmethod
    def execute(cls, mv_model: str, gslrm: str, precision: str = "auto", device: str = "auto",
                download_missing: bool = False, accept_licence: bool = False) -> io.NodeOutput:
        if download_missing:
            _download_missing(accept_licence)
        return io.NodeOutput(_handle("mv", mv_model, precision, device), _handle("gslrm", gslrm, precision, device))


NODES = [FaceLiftLoadModels]
