#!/usr/bin/env python
"""The README's "run" job: start the local ComfyUI with this pack, run a workflow on the example portrait through
the HTTP API, and print where the outputs went.

For now the workflow is the placeholder LoadImage -> FaceLift Composite on White -> SaveImage; the full
photo-to-3D-head workflow replaces it once the model nodes land. Usage (normally through `make run`):

    .venv/bin/python scripts/run_facelift.py [--image examples/astronaut.png] [--output-dir out]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import comfy_host  # noqa: E402

DEFAULT_IMAGE = REPO / "examples" / "astronaut.png"


def placeholder_prompt(image_name: str, prefix: str) -> dict:
    """API-format prompt: the example photo composited on white, saved as PNG."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "2": {"class_type": "FaceLiftCompositeOnWhite", "inputs": {"image": ["1", 0], "mask": ["1", 1],
                                                                   "mask_is_foreground": False}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def start_host(run_dir: Path, extra_model_paths: Path | None = None) -> comfy_host.ComfyServer:
    """Provision (first time: download + install, later: instant) and start ComfyUI with its folders in run_dir."""
    comfy = comfy_host.provision()
    return comfy_host.ComfyServer(run_dir, comfy, extra_model_paths=extra_model_paths).start()


def stage_input(server: comfy_host.ComfyServer, image: Path) -> str:
    """Copy the photo into ComfyUI's input folder (where LoadImage looks); returns the name to use."""
    server.input_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image, server.input_dir / image.name)
    return image.name


def output_paths(server: comfy_host.ComfyServer, result: comfy_host.PromptResult) -> list[Path]:
    return [server.output_dir / im["subfolder"] / im["filename"] for im in result.images()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="portrait photo (default: %(default)s)")
    ap.add_argument("--output-dir", type=Path, default=REPO / "out",
                    help="folder for ComfyUI's input/output/temp/user folders and its log (default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the workflow")
    a = ap.parse_args(argv)
    if not a.image.is_file():
        print(f"error: the input photo {a.image} does not exist; pass --image PATH to a portrait photo.",
              file=sys.stderr)
        return 2
    run_dir = a.output_dir.resolve()
    server = start_host(run_dir)
    try:
        name = stage_input(server, a.image.resolve())
        prefix = f"facelift/{a.image.stem}_{time.strftime('%Y%m%d-%H%M%S')}"
        t0 = time.perf_counter()
        result = server.client().run(placeholder_prompt(name, prefix), timeout=a.timeout)
        if result.status != "success":
            err = result.error or {}
            print(f"error: the workflow failed in node {err.get('node_type', '?')}: "
                  f"{err.get('exception_message', result.status)}\n(server log: {server.log_path})",
                  file=sys.stderr)
            return 1
        print(f"workflow finished in {time.perf_counter() - t0:.1f} s")
        for path in output_paths(server, result):
            print(f"output: {path}")
        print(f"server log: {server.log_path}")
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
