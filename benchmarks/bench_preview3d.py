"""Time FaceLift Preview 3D from queueing to the widget's first frame, in headless Chromium on software WebGL.

    .venv/bin/python benchmarks/bench_preview3d.py --gaussians 1572866 --out benchmarks/results/x.json

Starts the test ComfyUI (harness/comfy_host.py), writes the synthetic head of harness/preview3d_browser.py with
``--gaussians`` splats as a .spz into the input folder, loads Load PLY -> Preview 3D in the graph editor and
queues it from the page. Reported: ``queue_to_first_frame_s`` (wall time in the test process: server work +
transfer + viewer), ``executed_to_first_frame_s`` (the widget's own figure, from the node's `executed` message:
fetching the .spz from /view, Spark decoding and sorting it, drawing until the splat is on screen),
``node_s`` (the server's execution time of the prompt, from /history), the display file's size. SwiftShader runs
WebGL on the CPU, so these are worst-case figures; a GPU browser is far faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness import comfy_host  # noqa: E402
from harness import preview3d_browser as pb  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gaussians", type=int, default=1572866)
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds to wait for the first frame")
    ap.add_argument("--screenshot", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)

    from facelift_models.formats import export

    run_dir = Path(tempfile.mkdtemp(prefix="facelift-bench-preview3d-"))
    server = comfy_host.ComfyServer(run_dir, comfy_host.provision())
    server.start()
    try:
        t = time.perf_counter()
        g = pb.synthetic_head(a.gaussians)
        name = f"bench_head_{uuid.uuid4().hex[:6]}.spz"
        export.export(g, server.input_dir / name)
        print(f"wrote {a.gaussians:,} Gaussians as {name} in {time.perf_counter() - t:.1f} s", flush=True)
        client = server.client()
        _, ui = pb.preview_workflow(name)
        with pb.PreviewPage(server.url, timeout=a.timeout) as page:
            page.load_graph(ui)
            t0 = page.queue()
            state = page.wait_state(("ready", "error", "no-webgl"))
            wall = time.perf_counter() - t0
            widget_ms = page.first_frame_ms()
            if a.screenshot:
                page.screenshot_widget(a.screenshot)
            fg = pb.foreground(page.save_png()).mean() if state == "ready" else None
            errors = page.capture.relevant_errors
            external = page.capture.external_requests
        hist = client.get_json("/history")
        entry = next(iter(hist.values()))
        msgs = {k: d for k, d in entry["status"]["messages"]}
        node_s = (msgs["execution_success"]["timestamp"] - msgs["execution_start"]["timestamp"]) / 1000.0
        rec = entry["outputs"]["2"]["facelift_splat"][0]
        size = len(client.view(rec["filename"], rec["subfolder"], rec["type"]))
        res = {"gaussians": a.gaussians, "state": state, "queue_to_first_frame_s": round(wall, 2),
               "executed_to_first_frame_s": round(widget_ms / 1000.0, 2) if widget_ms else None,
               "node_s": round(node_s, 2), "display_format": rec["format"], "display_file_mb": round(size / 2**20, 2),
               "foreground_fraction": fg, "console_errors": errors, "external_requests": external,
               "browser": subprocess.run([comfy_host.chromium_path(), "--version"], capture_output=True,
                                          text=True).stdout.strip() + " (headless)",
               "webgl": "SwiftShader (" + " ".join(pb.SWIFTSHADER_ARGS) + ")",
               "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0], "machine": platform.machine()}
        print(json.dumps(res, indent=2))
        if a.out:
            a.out.write_text(json.dumps(res, indent=2) + "\n")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
