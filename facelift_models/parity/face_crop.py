"""Parity of kind ``face_crop``: our MTCNN + crop against facenet-pytorch + the official ``crop_face``.

Every case of the sidecar is run: all detections (boxes within ``atol_px``, probabilities within ``atol``),
the selected box, the scale (rtol), the crop (max and mean |diff| in uint8 levels), the crop rebuilt from the
*stored* selected box (bit-exact), and ``no_face`` cases must end in :class:`NoFaceError`.  Detector
settings, crop constants, canvas size and tolerances are read from the sidecar.

MTCNN weights are taken from, in order: a folder the sidecar names (``weights_dir``, or the relative paths of
``weights_sha256``) if it exists, ``$FACELIFT_MTCNN_DIR``, ``$FACELIFT_MODELS_DIR/mtcnn``, an installed
facenet-pytorch, then ``<repo>/.cache/mtcnn``; if none has them they are fetched into that cache with
``pip download`` (announced on stderr), as ``scripts/fetch_mtcnn_weights.py`` does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import FaceLiftError, NoFaceError
from ..face.crop import FaceCropConfig, composite_on_background, crop_face, crop_with_box, to_rgb_uint8
from ..config import mtcnn_search_dirs
from ..face.mtcnn import MTCNNConfig, load_mtcnn
from ..weights.mtcnn_files import WEIGHT_FILES, download_mtcnn_weights, find_mtcnn_weights
from ..weights.store import sha256_of
from .common import Fixture, Line, ParityError, Report

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO / ".cache" / "mtcnn"


def _sidecar_weight_dirs(fixture: Fixture) -> list[Path]:
    meta = fixture.meta
    dirs: list[Path] = []
    named = meta.get("weights_dir")
    if isinstance(meta.get("weights"), dict):
        named = named or meta["weights"].get("dir")
    if isinstance(named, str):
        dirs.append(fixture.sibling(named))
    rel = meta.get("weights_sha256") or {}
    parents = {Path(k).parent for k in rel if isinstance(k, str)}
    for p in sorted(parents):
        dirs.append(fixture.sibling(str(p)))
    return dirs


def _floats(v) -> tuple[float, ...]:
    return tuple(float(x) for x in v)


def _ints(v) -> tuple[int, ...]:
    return tuple(int(x) for x in v)


# sidecar field -> (config field, conversion)
_MTCNN_FIELDS = {"min_face_size": ("min_face_size", float), "thresholds": ("thresholds", _floats),
                 "factor": ("factor", float), "select_largest": ("select_largest", bool)}
_CROP_FIELDS = {"TRAINING_SET_FACE_SIZE": ("face_size", float), "TRAINING_SET_FACE_CENTER": ("face_center", _floats),
                "output_image_size": ("output_size", int), "background_color": ("background_color", _ints),
                "face_prob_threshold_value": ("prob_threshold", float)}


def _fields(src: dict[str, Any], table: dict) -> dict[str, Any]:
    """The config keywords of the sidecar fields present in ``src`` (unknown fields are ignored)."""
    return {name: conv(src[key]) for key, (name, conv) in table.items() if key in src}


def mtcnn_config_from_sidecar(mtcnn: dict[str, Any]) -> MTCNNConfig:
    """The detector settings of a ``face_crop`` sidecar's ``mtcnn`` object."""
    return MTCNNConfig(**_fields(mtcnn, _MTCNN_FIELDS))


def crop_config_from_sidecar(crop_constants: dict[str, Any], resampling: dict[str, Any] | None = None,
                             **overrides: Any) -> FaceCropConfig:
    """The crop settings of a ``face_crop`` sidecar's ``crop_constants`` (and ``resampling``) objects."""
    kw = _fields(crop_constants, _CROP_FIELDS)
    if resampling and "pil_resample" in resampling:
        kw["resample"] = int(resampling["pil_resample"])
    return FaceCropConfig(**{**kw, **overrides})


def resolve_weights_dir(fixture: Fixture) -> Path:
    """Where this run takes the MTCNN weights from (see the module docstring for the order)."""
    for d in _sidecar_weight_dirs(fixture):
        if all((d / n).is_file() for n in WEIGHT_FILES):
            return d
    found = find_mtcnn_weights(mtcnn_search_dirs() + [CACHE_DIR])
    if found is not None:
        return found
    try:
        return download_mtcnn_weights(CACHE_DIR, log_fn=lambda m: print(m, file=sys.stderr))
    except FaceLiftError as e:
        raise ParityError(f"MTCNN weights unavailable: {e}") from None


def _tol(report: Report, spec: dict[str, Any], name: str, default: float) -> float:
    if report.atol_override is not None:
        return float(report.atol_override)
    return float(spec.get(name, default))


def _key(spec: dict[str, Any], default: str, case: str) -> str:
    return str(spec.get("key", default)).replace("<case>", case)


def run(fixture: Fixture, report: Report) -> None:
    meta = fixture.meta
    cases: dict[str, dict] = meta.get("cases") or {}
    if not cases:
        raise ParityError(f"{fixture.path}: face_crop sidecar has no cases.")
    per_case: dict[str, dict] = (fixture.check or {}).get("per_case") or {}
    det_cfg = mtcnn_config_from_sidecar(meta.get("mtcnn") or {})
    # The fixtures' inputs are what the official crop_face receives (after rembg): no background removal here.
    crop_cfg = crop_config_from_sidecar(meta.get("crop_constants") or {}, meta.get("resampling"), background="keep")

    wdir = resolve_weights_dir(fixture)
    expected_sha = {Path(k).name: v for k, v in (meta.get("weights_sha256") or {}).items()}
    for name, digest in sorted(expected_sha.items()):
        report.value(f"weights_sha256:{name}", sha256_of(wdir / name), digest)
    # Hashes the sidecar vouches for were just checked; otherwise the module's known hashes are.
    detector = load_mtcnn(wdir, "cpu", det_cfg, verify=not expected_sha)

    s_boxes = per_case.get("boxes", {})
    s_probs = per_case.get("probs", {})
    s_sel = per_case.get("selected_box", {})
    s_scale = per_case.get("scale", {})
    s_crop = per_case.get("crop", {})
    for case, info in cases.items():
        image = fixture.tensor(f"in.{case}.image").numpy()
        rgb, alpha = to_rgb_uint8(image)
        on_bg = rgb if alpha is None else composite_on_background(rgb, alpha, crop_cfg.background_color)
        det = detector.detect(on_bg)

        k = _key(s_boxes, "out.<case>.boxes", case)
        if fixture.has(k):
            report.compare(k, det.boxes, atol=_tol(report, s_boxes, "atol_px", 0.5))
        k = _key(s_probs, "out.<case>.probs", case)
        if fixture.has(k):
            report.compare(k, det.probs, atol=_tol(report, s_probs, "atol", 1e-3))

        expect = info.get("expect", "crop")
        try:
            res = crop_face(image, detector=detector, config=crop_cfg)
            err: Exception | None = None
        except NoFaceError as e:
            res, err = None, e

        if expect == "no_face":
            report._add(Line(f"{case}.no_face_error", 0.0 if err is not None else float("inf"), err is not None,
                             "NoFaceError raised" if err is not None else "expected NoFaceError, got a crop"))
            continue
        if err is not None:
            report._add(Line(f"{case}.crop", float("inf"), False, f"unexpected NoFaceError: {err}"))
            continue

        k = _key(s_sel, "out.<case>.selected_box", case)
        if fixture.has(k):
            report.compare(k, torch.tensor(res.box, dtype=torch.float32), atol=_tol(report, s_sel, "atol_px", 0.5))
        k = _key(s_scale, "out.<case>.scale", case)
        if fixture.has(k):
            exp = fixture.tensor(k)
            rtol = float(s_scale.get("rtol", 1e-2))
            report.compare(k, torch.tensor([res.scale], dtype=torch.float64),
                           atol=rtol * float(exp.abs().max()) if report.atol_override is None else report.atol_override)
        k = _key(s_crop, "out.<case>.crop", case)
        if fixture.has(k):
            exp_crop = fixture.tensor(k)
            report.compare(k, torch.from_numpy(res.image), expected=exp_crop,
                           atol=_tol(report, s_crop, "max_abs", 2),
                           mean_atol=None if report.atol_override is not None else float(s_crop.get("max_mean_abs", 1.0)))
            k_sel = _key(s_sel, "out.<case>.selected_box", case)
            if s_crop.get("exact_from_stored_box", True) and fixture.has(k_sel):
                stored = fixture.tensor(k_sel).tolist()
                from_box = crop_with_box(on_bg, stored, crop_cfg)
                report.exact(f"{k}[from stored selected_box]", torch.from_numpy(np.ascontiguousarray(from_box.image)),
                             expected=exp_crop)
                k_scale = _key(s_scale, "out.<case>.scale", case)
                if fixture.has(k_scale):
                    report.value(f"{k_scale}[from stored selected_box]", from_box.scale,
                                 float(fixture.tensor(k_scale).reshape(-1)[0]))
