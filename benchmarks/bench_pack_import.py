"""Time loading the pack through ComfyUI's own custom-node loader (the target is well under 1 s).

    .venv/bin/python benchmarks/bench_pack_import.py [--repeats 5] [--out results.json]

Each repeat is a fresh interpreter inside the provisioned test ComfyUI (harness/comfy_host.py) that imports
ComfyUI's ``nodes`` first (torch, comfy.*: ComfyUI's own start-up cost) and then times only
``nodes.load_custom_node(<this pack>)``. It also reports the modules the pack pulled in and whether any
network or CUDA call happened (the test suite asserts those; this script only measures).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness import comfy_host  # noqa: E402
from harness.pack_load import LOAD_PACK  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    runs = [comfy_host.run_in_comfy(LOAD_PACK) for _ in range(args.repeats)]
    secs = [r["seconds"] for r in runs]
    res = {"seconds_median": statistics.median(secs), "seconds_all": secs,
           "new_modules": len(runs[-1]["new_modules"]), "calls": runs[-1]["calls"],
           "nodes": sorted(runs[-1]["nodes"])}
    print(f"pack load through ComfyUI's loader: median {res['seconds_median'] * 1000:.1f} ms over {len(secs)} "
          f"fresh interpreters (min {min(secs) * 1000:.1f}, max {max(secs) * 1000:.1f}); "
          f"{res['new_modules']} new modules; network/CUDA calls: {res['calls']}")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
