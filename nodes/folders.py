"""Where the nodes look for FaceLift weights: ComfyUI's ``facelift`` model folders, the loader's dropdowns, and the
clear missing-weights errors before a model is loaded.

Weights live under ``ComfyUI/models/facelift`` (registered with ``folder_paths`` under the key ``facelift``, so
``extra_model_paths.yaml`` entries like ``facelift: /data/facelift`` are searched too), in the layout of the Hugging
Face repo ``wlyu/OpenFaceLift``. The search order itself is ``facelift_models.config.models_search_order``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..facelift_models.config import COMFY_FOLDER_NAME, GSLRM_CHECKPOINT, GSLRM_DIR, GSLRM_SUFFIXES, MV_DIR
from ..facelift_models.config import models_search_order, mtcnn_search_dirs

FOLDER_KEY = COMFY_FOLDER_NAME
OFFICIAL_MV_DIR = MV_DIR
OFFICIAL_GSLRM = GSLRM_CHECKPOINT


def register_folder() -> None:
    """Make ``models/facelift`` the default ``facelift`` folder (idempotent; extra_model_paths entries stay)."""
    try:
        import folder_paths
    except ImportError:  # outside ComfyUI
        return
    default = os.path.join(folder_paths.models_dir, FOLDER_KEY)
    folder_paths.add_model_folder_path(FOLDER_KEY, default, is_default=True)


def search_roots() -> list[Path]:
    """Every folder searched for FaceLift weights, in priority order: ``$FACELIFT_MODELS_DIR``, then ComfyUI's
    ``folder_paths.get_folder_paths("facelift")`` (``models/facelift`` + extra_model_paths.yaml)."""
    try:
        import folder_paths

        register_folder()
        comfy = [str(p) for p in folder_paths.get_folder_paths(FOLDER_KEY)]
    except ImportError:
        comfy = []
    return models_search_order(None, comfy)


def describe_roots() -> str:
    roots = search_roots()
    return ", ".join(str(r) for r in roots) if roots else "(no folder registered)"


def mtcnn_dirs() -> list[Path]:
    """Folders searched for the MTCNN ``pnet.pt/rnet.pt/onet.pt`` files."""
    return mtcnn_search_dirs(search_roots())


def list_mv_models() -> list[str]:
    """Multi-view diffusion folders found (relative names), the official name always first.

    The official name is listed even when missing so shipped workflows validate; using it then fails with the
    clear missing-weights message instead of a silent dropdown mismatch.
    """
    found = [OFFICIAL_MV_DIR]
    for root in search_roots():
        base = root / OFFICIAL_MV_DIR.split("/")[0]
        if not base.is_dir():
            continue
        for idx in sorted(base.glob("*/model_index.json")) + sorted(base.glob("*/*/model_index.json")):
            rel = idx.parent.relative_to(root).as_posix()
            if rel not in found:
                found.append(rel)
    return found


def list_gslrm_checkpoints() -> list[str]:
    """GS-LRM checkpoints found under ``gslrm/`` (relative names), the official name always first."""
    found = [OFFICIAL_GSLRM]
    for root in search_roots():
        base = root / GSLRM_DIR
        if not base.is_dir():
            continue
        for f in sorted(base.iterdir()):
            if f.is_file() and f.suffix.lower() in GSLRM_SUFFIXES:
                rel = f.relative_to(root).as_posix()
                if rel not in found:
                    found.append(rel)
    return found


def resolve(name: str) -> Path | None:
    """The first existing ``root/name`` over the search roots, else None."""
    if os.path.isabs(name):
        return Path(name) if os.path.exists(name) else None
    for root in search_roots():
        p = root / name
        if p.exists():
            return p
    return None


def default_root() -> Path | None:
    """Where missing files belong: the weights store's choice among the search roots."""
    from ..facelift_models.errors import WeightsError
    from ..facelift_models.weights.store import resolve_models_dir

    roots = search_roots()
    if not roots:
        return None
    try:
        return Path(resolve_models_dir(None, [str(r) for r in roots]))
    except WeightsError:
        return roots[0]


def models_root_of(handle) -> Path:
    """The facelift models folder a handle's file belongs to (its path minus the relative name)."""
    p = Path(handle.path)
    parts = len(Path(handle.name).parts)
    return p.parents[parts - 1] if not os.path.isabs(handle.name) and parts <= len(p.parents) else p.parent


def ensure_present(handle) -> None:
    """Raise the clear missing-weights message (what is missing, where it goes, how to get it) before loading."""
    from ..facelift_models.errors import WeightsError
    from ..facelift_models.weights.store import RECONSTRUCTION, SAMPLING, ModelStore

    path = Path(handle.path)
    note = (f"Folders searched for FaceLift weights (extra_model_paths.yaml key 'facelift'): {describe_roots()}."
            if len(search_roots()) > 1 else "")
    store = ModelStore(models_root_of(handle))
    if handle.kind == "mv":
        if handle.name == OFFICIAL_MV_DIR:
            store.require_present(SAMPLING, note)
        if not (path / "model_index.json").is_file():
            raise WeightsError(
                f"The multi-view diffusion folder {path} is missing or incomplete (no model_index.json). "
                f"Searched the facelift model folders: {describe_roots()}. Choose a folder that holds a full "
                "diffusers pipeline, or get the official one (mvdiffusion/pipeckpts of wlyu/OpenFaceLift): "
                "see the download option of FaceLift Load Models.")
    elif handle.kind == "gslrm":
        if not path.is_file():
            if handle.name == OFFICIAL_GSLRM:
                store.require_present(RECONSTRUCTION, note)  # the full message when no GS-LRM file is there at all
            others = [n for n in list_gslrm_checkpoints() if resolve(n) is not None]
            raise WeightsError(
                f"The GS-LRM weights file {path} does not exist. Searched the facelift model folders: "
                f"{describe_roots()}. "
                + (f"Found instead: {', '.join(others)}; pick one in FaceLift Load Models. " if others else "")
                + f"The official file is {OFFICIAL_GSLRM} from wlyu/OpenFaceLift (see the download "
                  "option of FaceLift Load Models).")
