#!/usr/bin/env python
"""The README's "run" job: one face photo -> a 3D Gaussian head, through a real local ComfyUI and its HTTP API.

It provisions the local ComfyUI with this pack, checks the FaceLift weights (and offers the opt-in download),
runs the shipped workflow ``workflows/api/facelift_photo_to_head_api.json`` on the photo (default: the bundled
``samples/astronaut.png``) and prints where the PLY, the 6 views and the turntable went. Without weights (e.g.
offline) it stops before starting anything, with the list of missing files and how to get them.

    .venv/bin/python scripts/run_facelift.py                       # normally through `make run`
    .venv/bin/python scripts/run_facelift.py --download --accept-license   # fetch missing weights first (~5.7 GB)
    .venv/bin/python scripts/run_facelift.py --tiny                # smoke test with tiny RANDOM weights (noise)

Weights are looked for in --models-dir, else $FACELIFT_MODELS_DIR, else the local ComfyUI's models/facelift.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness import comfy_host  # noqa: E402

DEFAULT_IMAGE = REPO / "samples" / "astronaut.png"
WORKFLOW = REPO / "workflows" / "api" / "facelift_photo_to_head_api.json"
# Node ids of the shipped API workflow.
N_LOAD_IMAGE, N_SAMPLER, N_SAVE_PLY, N_RENDER, N_TURNTABLE, N_VIEWS, N_CROP, N_MP4 = \
    "1", "4", "6", "7", "8", "9", "10", "12"
TINY_BANNER = (
    "=" * 78 + "\n"
    "SMOKE TEST WITH TINY RANDOM WEIGHTS (--tiny): the networks are untrained noise, so the views, the PLY\n"
    "and the turntable below are NOISE, not a 3D head. This only shows that the plumbing works.\n"
    "For real results run without --tiny (the official weights are needed; see docs/models.md).\n"
    + "=" * 78)


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def start_host(run_dir: Path, extra_model_paths: Path | None = None, device: str = "cpu") -> comfy_host.ComfyServer:
    """Provision (first time: download + install, later: instant) and start ComfyUI with its folders in run_dir.
    ``device`` "gpu" runs ComfyUI on its default (CUDA) device, "cpu" with --cpu."""
    return make_server(run_dir, comfy_host.provision(), extra_model_paths, device).start()


def make_server(run_dir: Path, comfy: Path, extra_model_paths: Path | None = None,
                device: str = "cpu") -> comfy_host.ComfyServer:
    """The (not yet started) server: "gpu" leaves the device to ComfyUI (its CUDA default), "cpu" forces --cpu."""
    return comfy_host.ComfyServer(run_dir, comfy, extra_model_paths=extra_model_paths,
                                  device="auto" if device == "gpu" else "cpu")


def stage_input(server: comfy_host.ComfyServer, image: Path) -> str:
    """Copy the photo into ComfyUI's input folder (where LoadImage looks); returns the name to use."""
    server.input_dir.mkdir(parents=True, exist_ok=True)
    name = f"facelift_{image.name}"
    shutil.copyfile(image, server.input_dir / name)
    return name


def default_models_dir() -> Path:
    """The package's search order ($FACELIFT_MODELS_DIR first) over the local ComfyUI's models/facelift."""
    from facelift_models.config import COMFY_FOLDER_NAME, models_search_order

    return models_search_order(None, [comfy_host.comfy_dir() / "models" / COMFY_FOLDER_NAME])[0]


def check_weights(models_dir: Path, download: bool, accept_license: bool) -> int:
    """0 when every file the workflow needs is present (after an opt-in download), else print what is missing."""
    from facelift_models.errors import WeightsError
    from facelift_models.weights.store import INFERENCE, LICENCE_SHORT, ModelStore

    store = ModelStore(models_dir)
    if store.is_ready(INFERENCE):
        return 0
    if download and not accept_license:
        if sys.stdin.isatty():
            print(LICENCE_SHORT)
            accept_license = input("Download the FaceLift weights and accept that licence? [y/N] ").strip().lower() \
                in ("y", "yes")
        if not accept_license:
            print("error: --download needs --accept-license (the weights are under the Adobe Research License, "
                  "non-commercial research only).", file=sys.stderr)
            return 2
    if download:
        from facelift_models.weights.download import download_weights

        try:
            download_weights(store, INFERENCE, accept_license=True,
                             progress=lambda done, total, name: print(
                                 f"\r{name}: {done / 1e9:.2f}/{total / 1e9:.2f} GB", end="", flush=True))
            print()
        except WeightsError as e:
            print(f"\nerror: {e}", file=sys.stderr)
            return 1
        if store.is_ready(INFERENCE):
            return 0
    try:
        store.require(INFERENCE)
    except WeightsError as e:
        print(f"error: {e}\n\nNothing was run. Re-run with --download --accept-license to fetch the weights, or "
              "try the plumbing with --tiny (random weights, noise output).", file=sys.stderr)
        return 1
    return 0


def prepare_tiny_models(run_dir: Path) -> Path:
    from harness.tiny_models import U2NET_FILE, write_tiny_models, write_tiny_u2net

    models = run_dir / "tiny-models"
    if not (models / "facelift" / ".tiny-complete").exists():
        print("writing tiny random weights (official layout) into", models / "facelift")
        write_tiny_models(models / "facelift")
        (models / "facelift" / ".tiny-complete").write_text("ok")
    if not (models / "facelift" / U2NET_FILE).exists():  # tiny folders written before U²-Net was added
        write_tiny_u2net(models / "facelift" / U2NET_FILE)
    return models


def build_prompt(image_name: str, tag: str, steps: int | None, frames: int | None) -> dict:
    wf = json.loads(WORKFLOW.read_text())
    wf[N_LOAD_IMAGE]["inputs"]["image"] = image_name
    for node in wf.values():
        if "filename_prefix" in node["inputs"]:
            node["inputs"]["filename_prefix"] = node["inputs"]["filename_prefix"].replace("FaceLift/", f"FaceLift/{tag}/")
    if steps:
        wf[N_SAMPLER]["inputs"]["steps"] = steps
    if frames:
        wf[N_RENDER]["inputs"]["frames"] = frames
    return wf


def report(server: comfy_host.ComfyServer, result: comfy_host.PromptResult) -> None:
    out = result.outputs

    def paths(node_id: str, key: str = "images") -> list[Path]:
        return [server.output_dir / r["subfolder"] / r["filename"] for r in out.get(node_id, {}).get(key, [])]

    for p in paths(N_SAVE_PLY, "facelift_files"):
        print(f"PLY (3D Gaussians): {p}")
    for p in paths(N_VIEWS):
        print(f"view: {p}")
    for p in paths(N_TURNTABLE) + paths(N_MP4):
        print(f"turntable: {p}")
    for p in paths(N_CROP):
        print(f"face crop: {p}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="portrait photo (default: %(default)s)")
    ap.add_argument("--output-dir", type=Path, default=REPO / "out",
                    help="folder for ComfyUI's input/output/temp/user folders and its log (default: %(default)s)")
    ap.add_argument("--models-dir", type=Path, default=None,
                    help="the FaceLift models folder (default: $FACELIFT_MODELS_DIR, else the local ComfyUI's "
                         "models/facelift)")
    ap.add_argument("--download", action="store_true",
                    help="download missing official weights from Hugging Face (wlyu/OpenFaceLift) first")
    ap.add_argument("--accept-license", action="store_true",
                    help="accept the Adobe Research License of the weights (non-commercial research only)")
    ap.add_argument("--tiny", action="store_true",
                    help="SMOKE TEST: tiny random weights instead of the real ones; the output is untrained noise")
    ap.add_argument("--steps", type=int, default=None, help="diffusion steps (default: the workflow's 50)")
    ap.add_argument("--frames", type=int, default=None, help="turntable frames (default: the workflow's 150)")
    ap.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                    help="where ComfyUI runs the models: auto = the GPU when CUDA is available, else the CPU")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the workflow")
    a = ap.parse_args(argv)
    device = ("gpu" if cuda_available() else "cpu") if a.device == "auto" else a.device
    if not a.image.is_file():
        print(f"error: the input photo {a.image} does not exist; pass --image PATH to a portrait photo.",
              file=sys.stderr)
        return 2
    run_dir = a.output_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if a.tiny:
        print(TINY_BANNER)
        models_root = prepare_tiny_models(run_dir)
    else:
        models_dir = (a.models_dir or default_models_dir()).expanduser().resolve()
        rc = check_weights(models_dir, a.download, a.accept_license)
        if rc:
            return rc
        models_root = None if models_dir == (comfy_host.comfy_dir() / "models" / "facelift").resolve() else models_dir
    extra = None
    if a.tiny:
        extra = comfy_host.write_extra_model_paths(run_dir / "extra_model_paths.yaml", models_root,
                                                   {"facelift": "facelift"})
    elif models_root is not None:
        extra = run_dir / "extra_model_paths.yaml"
        extra.write_text(f"facelift_run:\n  facelift: {json.dumps(str(models_root))}\n")
    print(f"running ComfyUI on the {device.upper()}")
    server = start_host(run_dir, extra, device)
    try:
        name = stage_input(server, a.image.resolve())
        tag = f"{a.image.stem}_{time.strftime('%Y%m%d-%H%M%S')}" + ("_TINY-NOISE" if a.tiny else "")
        t0 = time.perf_counter()
        result = server.client().run(build_prompt(name, tag, a.steps, a.frames), timeout=a.timeout)
        if result.status != "success":
            err = result.error or {}
            print(f"error: the workflow failed in node {err.get('node_type', '?')}: "
                  f"{err.get('exception_message', result.status)}\n(server log: {server.log_path})",
                  file=sys.stderr)
            return 1
        print(f"workflow finished in {time.perf_counter() - t0:.1f} s")
        report(server, result)
        print(f"server log: {server.log_path}")
        if a.tiny:
            print(TINY_BANNER)
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
