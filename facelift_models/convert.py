"""Convert the official GS-LRM training checkpoint to an inference-only safetensors file.

    python -m facelift_models.convert ckpt_0000000000021125.pt [-o gslrm.safetensors] [--dtype fp32|fp16]

Only the 151 model tensors are kept (no optimizer state, no VGG ``loss_calculator.*``): ~1.2 GB in fp32,
~0.6 GB in fp16 instead of 3.7 GB, and loading needs no pickle. Before the output is written the converted
weights are loaded back and run on a small probe input next to the original weights; the file is only
moved into place (atomically) when the outputs agree: bit-identical for fp32, within ``FP16_TOLERANCE``
for fp16.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .atomic_io import atomic_path
from .errors import FaceLiftError, WeightsError
from .reconstruct.gslrm import GSLRM
from .reconstruct.checkpoint import METADATA_KIND, build_model, config_from_state_dict, load_gslrm, read_state_dict

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
# fp16 weights (run in fp32) vs the original fp32 weights, on the probe: max |diff| of every raw output
# field must stay below atol + rtol * max |original| of that field.
FP16_TOLERANCE = {"atol": 2e-2, "rtol": 2e-2}
PROBE_VIEWS = 6


@dataclass
class ProbeResult:
    max_abs_diff: dict[str, float]
    identical: bool
    ok: bool


def probe_compare(original: GSLRM, converted: GSLRM, size: int, exact: bool, seed: int = 0) -> ProbeResult:
    """Run both models on the same random 6-view probe at ``size`` x ``size``; compare every raw field."""
    from .cameras import official_views

    g = torch.Generator().manual_seed(seed)
    images = torch.rand(1, PROBE_VIEWS, 3, size, size, generator=g)
    cams = official_views().resized(size, size)
    a = original.forward_raw(images, cams)
    b = converted.forward_raw(images, cams)
    diffs, ok, identical = {}, True, True
    for name in ("xyz", "f_dc", "log_scales", "quats", "opacity_logits"):
        x, y = getattr(a, name), getattr(b, name)
        same = torch.equal(x, y)
        identical &= same
        d = float((x - y).abs().max())
        diffs[name] = d
        if exact:
            ok &= same
        else:
            ok &= d <= FP16_TOLERANCE["atol"] + FP16_TOLERANCE["rtol"] * float(x.abs().max())
    return ProbeResult(diffs, identical, bool(ok))


def convert(src: str | os.PathLike, dst: str | os.PathLike, dtype: str = "fp32", probe_size: int = 32,
            log=print, trust_pickle: bool = False) -> Path:
    """Convert ``src`` (official ``.pt`` or any GS-LRM weight file) to safetensors at ``dst`` (see module doc)."""
    from safetensors.torch import save_file

    if dtype not in DTYPES:
        raise WeightsError(f"Unknown --dtype {dtype!r}; use one of {', '.join(DTYPES)}.")
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise WeightsError(f"The output {dst} would overwrite the input; choose another output path.")
    t0 = time.perf_counter()
    sd, meta = read_state_dict(src, trust_pickle)
    config = config_from_state_dict(sd, metadata=meta, source=str(src))
    n_params = sum(v.numel() for v in sd.values())
    log(f"read {len(sd)} GS-LRM tensors ({n_params:,} parameters) from {src}; "
        f"config d={config.d} n_layer={config.n_layer} d_head={config.d_head} patch={config.patch_size}")
    original = build_model(sd, config, str(src), dtype=torch.float32)
    del sd  # drop the (memory-mapped) source tensors: the model holds its own copy
    if probe_size % config.patch_size:
        raise WeightsError(f"--probe-size {probe_size} must be a multiple of the patch size {config.patch_size}.")

    # fp32: the model's own tensors (no copy); fp16: new half-precision copies
    tensors = {k: v.detach().to(DTYPES[dtype]).contiguous() for k, v in original.state_dict().items()}
    bad = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{src}: tensors {bad[:5]} are not finite in {dtype} (overflow?); use --dtype fp32.")
    metadata = {"format": "pt", "facelift_kind": METADATA_KIND, "config": json.dumps(config.to_dict()),
                "dtype": dtype, "source": src.name}

    with atomic_path(dst) as tmp:
        save_file(tensors, tmp, metadata=metadata)
        del tensors
        reloaded = load_gslrm(tmp, dtype=torch.float32)
        if dtype == "fp32":
            a, b = original.state_dict(), reloaded.state_dict()
            same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
            if not same:
                raise WeightsError(f"Converted fp32 weights differ from {src}; nothing was written.")
        result = probe_compare(original, reloaded, probe_size, exact=(dtype == "fp32"))
        diffs = ", ".join(f"{k}={v:.3g}" for k, v in result.max_abs_diff.items())
        if not result.ok:
            raise WeightsError(
                f"Verification failed: the {dtype} weights do not reproduce the original outputs on the probe "
                f"({PROBE_VIEWS} views of {probe_size}x{probe_size}; max |diff| {diffs}). Nothing was written "
                f"to {dst}. Use --dtype fp32.")
    kind = "identical" if result.identical else \
        f"within atol {FP16_TOLERANCE['atol']} + rtol {FP16_TOLERANCE['rtol']}"
    log(f"verified on a probe of {PROBE_VIEWS} random views at {probe_size}x{probe_size}: outputs {kind} "
        f"(max |diff| {diffs})")
    log(f"wrote {dst} ({dst.stat().st_size / 1e6:.1f} MB, {dtype}) in {time.perf_counter() - t0:.1f} s")
    return dst


def default_output(src: Path, dtype: str) -> Path:
    """Beside the source, under the name the model store looks for (``gslrm_inference_<dtype>.safetensors``)."""
    return src.with_name(f"gslrm_inference_{dtype}.safetensors")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m facelift_models.convert", description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="official GS-LRM checkpoint (gslrm/ckpt_0000000000021125.pt) or weight file")
    ap.add_argument("-o", "--output", help="output .safetensors (default: gslrm_inference_<dtype>.safetensors beside src, where the model store finds it)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="stored weight dtype (default fp32)")
    ap.add_argument("--probe-size", type=int, default=32, help="probe view size for the verification run")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="allow arbitrary pickled objects in the .pt (only for a file you trust; the official "
                         "checkpoint loads without it)")
    args = ap.parse_args(argv)
    src = Path(args.src)
    dst = Path(args.output) if args.output else default_output(src, args.dtype)
    torch.set_grad_enabled(False)
    try:
        convert(src, dst, args.dtype, args.probe_size, trust_pickle=args.trust_pickle)
    except FaceLiftError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
