"""``python -m facelift_models.doctor``: what is installed, what is missing, and what will run here.

Reports the models folder (each known file: present / missing / wrong size, partial downloads, and per component
whether it is ready with the missing-files message if not), library versions, the compute device and which Gaussian
render backends actually work (a one-Gaussian smoke render per backend).  Every probe is guarded: a missing or broken
library is reported, never raised.  ``--json`` prints the same report as JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from .config import ENV_MODELS_DIR
from .errors import FaceLiftError
from .weights.store import (INFERENCE, LICENCE_SHORT, RECONSTRUCTION, REPO_URL, REVISION, ModelStore, human_size,
                    resolve_models_dir)

PACKAGES = ("torch", "torchvision", "diffusers", "transformers", "safetensors", "huggingface_hub", "hf_xet",
            "plyfile", "numba", "gsplat", "numpy", "Pillow", "einops", "facenet-pytorch")


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed distribution versions (None when absent), read from metadata: nothing is imported."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except Exception:
            out[name] = None
    return out


def comfyui_info() -> dict[str, Any]:
    """ComfyUI's folder and version, if this pack sits in ``ComfyUI/custom_nodes`` or ComfyUI is importable."""
    roots: list[Path] = []
    pack = Path(__file__).resolve().parents[1]
    if pack.parent.name == "custom_nodes":
        roots.append(pack.parent.parent)
    running = sys.modules.get("folder_paths")  # set only inside a running ComfyUI; never imported from here
    if running is not None and getattr(running, "base_path", None):
        roots.insert(0, Path(running.base_path))
    for root in roots:
        version = None
        try:
            text = (root / "comfyui_version.py").read_text()
            m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", text)
            version = m.group(1) if m else None
        except OSError:
            try:
                m = re.search(r'^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(), re.M)
                version = m.group(1) if m else None
            except OSError:
                pass
        if (root / "comfy").is_dir() or version:
            return {"found": True, "path": str(root), "version": version}
    return {"found": False, "path": None, "version": None}


def device_info() -> dict[str, Any]:
    try:
        import torch
    except Exception as exc:  # torch missing or broken
        return {"type": "unknown", "error": f"torch not importable: {exc}"}
    info: dict[str, Any] = {"type": "cpu", "cpu_threads": torch.get_num_threads(),
                            "torch_cuda_build": getattr(torch.version, "cuda", None)}
    try:
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info.update(type="cuda", name=p.name, vram_bytes=int(p.total_memory),
                        capability=f"{p.major}.{p.minor}", count=torch.cuda.device_count())
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            info.update(type="mps", name="Apple GPU (MPS)")
    except Exception as exc:
        info["error"] = f"CUDA query failed: {exc}"
    return info


def render_backends(smoke: bool = True) -> dict[str, Any]:
    """Which render backends import and (with ``smoke``) actually render one Gaussian here."""
    try:
        render = importlib.import_module("facelift_models.render")
    except Exception as exc:
        return {"error": f"facelift_models.render not importable: {type(exc).__name__}: {exc}"}
    try:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        names = list(getattr(render, "BACKENDS", ("torch", "numba", "gsplat")))
        available = set(render.available_backends(device)) if hasattr(render, "available_backends") else set(names)
        auto, why = render.explain_backend(device)
    except Exception as exc:
        return {"error": f"render backend query failed: {type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"device": device, "auto": auto, "auto_reason": why, "backends": {}}
    for name in names:
        entry: dict[str, Any] = {"available": name in available}
        if smoke and name in available:
            try:
                entry["works"] = _smoke_render(render, name, device)
            except Exception as exc:
                entry["works"] = False
                entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        out["backends"][name] = entry
    return out


def _smoke_render(render, backend: str, device: str) -> bool:
    """One opaque red Gaussian in front of a 16x16 camera: the centre pixel must be red, the corner background."""
    import torch

    from .gaussians import Gaussians

    g = Gaussians(xyz=torch.zeros(1, 3), f_dc=torch.tensor([[1.5, -1.5, -1.5]]), log_scales=torch.full((1, 3), -1.0),
                  quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]), opacity_logits=torch.tensor([8.0])).to(device)
    w2c = torch.eye(4)
    w2c[2, 3] = 3.0  # camera 3 units away, looking down +z (OpenCV)
    K = torch.tensor([[16.0, 0.0, 8.0], [0.0, 16.0, 8.0], [0.0, 0.0, 1.0]])
    out = render.render(g, (w2c[None].to(device), K[None].to(device)), width=16, height=16,
                        background=(0.0, 0.0, 0.0), backend=backend)
    rgb = out.rgb[0].float().cpu()
    if getattr(out, "backend", backend) not in ("", backend):
        return False  # silently fell back to another backend
    centre, corner = rgb[8, 8], rgb[0, 0]
    return bool(torch.isfinite(rgb).all() and centre[0] > 0.5 and centre[1] < 0.3 and corner.abs().max() < 0.05)


def models_report(root: Path | None, verify: bool = False) -> dict[str, Any]:
    if root is None:
        return {"dir": None, "error": f"no models folder configured (pass --models-dir or set {ENV_MODELS_DIR})"}
    store = ModelStore(root)
    files = []
    for st in store.status():
        item = {"id": st.file.file_id, "path": st.file.local_path, "state": st.state, "purpose": st.file.purpose,
                "size": st.size_on_disk, "expected_size": st.file.size, "licence": st.file.licence}
        if verify and st.ok and st.file.sha256:
            item["sha256_ok"] = store.verify(st.file.file_id)
            if item["sha256_ok"] is False:
                item["state"] = "corrupt"
        files.append(item)
    components = {}
    for comp in INFERENCE:
        gaps = store.missing(comp)
        components[comp] = {"ready": not gaps and not any(f["state"] == "corrupt" for f in files
                                                          if f["purpose"] == comp),
                            "message": store.missing_message(gaps, comp) if gaps else None}
    return {"dir": str(store.root), "exists": store.root.is_dir(), "files": files, "components": components,
            "partial_downloads": [str(p) for p in store.partial_downloads()],
            "repository": REPO_URL, "revision": REVISION}


def collect(models_dir: str | None = None, comfy_folders: Sequence[str] | None = None, verify: bool = False,
            smoke_render: bool = True) -> dict[str, Any]:
    """The whole report as a JSON-able dict (the node layer can call this too)."""
    try:
        root: Path | None = resolve_models_dir(models_dir, comfy_folders)
    except FaceLiftError:
        root = None
    return {
        "models": models_report(root, verify),
        "versions": {**package_versions(), "ComfyUI": comfyui_info()},
        "platform": platform.platform(),
        "device": device_info(),
        "render": render_backends(smoke_render),
        "licence": LICENCE_SHORT,
    }


def format_report(r: dict[str, Any]) -> str:
    lines = ["FaceLift doctor", ""]
    m = r["models"]
    lines.append(f"Models folder: {m.get('dir') or m.get('error')}")
    if m.get("dir"):
        marks = {"present": "ok ", "missing": "-- ", "size_mismatch": "!! ", "corrupt": "!! "}
        for f in m["files"]:
            note = "" if f["state"] in ("present", "missing") else f"  <- {f['state']}"
            size = human_size(f["size"]) if f["size"] is not None else ""
            lines.append(f"  {marks.get(f['state'], '?? ')}{f['path']:<72} {size}{note}")
        for p in m["partial_downloads"]:
            lines.append(f"  .. partial download (resumes on the next download): {p}")
        lines.append("")
        for comp, c in m["components"].items():
            lines.append(f"{comp:<15} {'READY' if c['ready'] else 'NOT READY'}")
        for comp, c in m["components"].items():
            if c["message"]:
                lines += ["", c["message"]]
    lines += ["", "Versions:"]
    for k, v in r["versions"].items():
        if k == "ComfyUI":
            v = (f"{v['version'] or 'unknown version'} at {v['path']}" if v["found"] else "not found")
        lines.append(f"  {k:<16} {v if v else 'not installed'}")
    d = r["device"]
    if d.get("type") == "cuda":
        dev = f"CUDA: {d['name']}, {d['vram_bytes'] / 2**30:.1f} GiB VRAM, compute {d['capability']}"
    elif d.get("type") == "mps":
        dev = d["name"]
    else:
        dev = f"CPU ({d.get('cpu_threads', '?')} torch threads)" + (f"; {d['error']}" if d.get("error") else "")
    lines += ["", f"Device: {dev}", "", "Render backends:"]
    rb = r["render"]
    if "error" in rb:
        lines.append(f"  {rb['error']}")
    else:
        for name, b in rb["backends"].items():
            state = ("works" if b.get("works") else f"FAILS ({b.get('error', 'wrong image')})") if "works" in b else \
                ("available" if b["available"] else "not available")
            lines.append(f"  {name:<8} {state}")
        lines.append(f"  auto picks: {rb.get('auto')} on {rb.get('device')} ({rb.get('auto_reason')})")
    lines += ["", r["licence"]]
    return "\n".join(lines)


def convert_checkpoint(models_dir: str | None, dtype: str = "fp16") -> Path:
    """Run the verified GS-LRM conversion (``facelift_models.convert``) from the official checkpoint in the models
    folder to the file name the store expects, ``gslrm/gslrm_inference_<dtype>.safetensors``."""
    from .errors import WeightsError

    store = ModelStore(resolve_models_dir(models_dir))
    src = store.find("gslrm.checkpoint")
    if src is None:
        raise WeightsError(f"Nothing to convert: {store.path('gslrm.checkpoint')} is missing. "
                           + store.missing_message(store.missing(RECONSTRUCTION) or
                                                   [(store.requirements[RECONSTRUCTION][0],
                                                     [store.file_status(store.entry("gslrm.checkpoint"))])],
                                                   RECONSTRUCTION))
    import torch

    from .convert import convert

    torch.set_grad_enabled(False)
    return convert(src, store.path(f"gslrm.{dtype}"), dtype)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m facelift_models.doctor", description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", help=f"models folder (default: ${ENV_MODELS_DIR} or ComfyUI/models/facelift)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--verify", action="store_true", help="also check the SHA-256 of present files (slow: ~8 GB)")
    ap.add_argument("--no-render-test", action="store_true", help="skip the one-Gaussian test render per backend")
    ap.add_argument("--convert", choices=("fp16", "fp32"),
                    help="convert gslrm/ckpt_0000000000021125.pt into gslrm/gslrm_inference_<dtype>.safetensors "
                         "(verified on a probe input; see python -m facelift_models.convert)")
    args = ap.parse_args(argv)
    if args.convert:
        try:
            print(f"wrote {convert_checkpoint(args.models_dir, args.convert)}")
        except FaceLiftError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    report = collect(args.models_dir, verify=args.verify, smoke_render=not args.no_render_test)
    if args.json:
        print(json.dumps(report, indent=1, default=str))
    else:
        print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
