"""How many photos to put through a stage at once on a device: the one place batch chunk sizes are decided.

A ComfyUI IMAGE batch of 100 photos must not need 100x the device memory of one photo. Stages that can run
several photos in one forward pass (GS-LRM) take ``items_per_chunk(device, bytes_per_photo)`` of them at a
time and move each chunk's results to the CPU before the next one; stages that are single-photo by design (the
multi-view sampler: one seed per photo) run one at a time. On the CPU the chunk is bounded by the available RAM
and a small cap (more photos per pass does not make the CPU faster, it only holds more memory).
"""

from __future__ import annotations

from typing import Iterator

# Working memory of one photo in a stage's forward pass at the official 512x512 resolution (measured peaks
# minus the weights, rounded up; see docs/batch.md). Tiny test models need far less, so these are safe bounds.
GSLRM_BYTES_PER_PHOTO = 3 << 30      # 6 views x 1024 tokens x 24 layers, fp16 activations + 1.57 M Gaussians
RENDER_BYTES_PER_FRAME = 64 << 20    # one 512x512 frame with its per-tile lists

CPU_MAX_CHUNK = 4      # items per pass on the CPU: larger gains nothing and only holds memory
GPU_MAX_CHUNK = 16     # items per pass on a GPU
MEMORY_FRACTION = 0.5  # share of the free memory a chunk may plan to use (the rest: allocator slack, ComfyUI)


def free_memory(device) -> int | None:
    """Free bytes on ``device`` (CUDA: the driver's figure; CPU: MemAvailable), None when unknown."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        try:
            free, _total = torch.cuda.mem_get_info(dev)
            return int(free)
        except (RuntimeError, AssertionError):
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def items_per_chunk(device, bytes_per_item: int, total: int | None = None) -> int:
    """How many items (photos, frames) at ``bytes_per_item`` of working memory each to process at once on
    ``device``.  At least 1 (one item always runs; if it does not fit, the stage's own out-of-memory error says
    so), at most ``total`` and the device kind's cap."""
    import torch

    dev = torch.device(device)
    cap = GPU_MAX_CHUNK if dev.type == "cuda" else CPU_MAX_CHUNK
    free = free_memory(dev)
    n = cap if free is None else int(free * MEMORY_FRACTION) // max(1, int(bytes_per_item))
    n = max(1, min(cap, n))
    return n if total is None else max(1, min(n, int(total)))


def chunks(total: int, size: int) -> Iterator[range]:
    """``range``s of at most ``size`` consecutive indices covering ``0 .. total-1`` in order."""
    size = max(1, int(size))
    for start in range(0, int(total), size):
        yield range(start, min(int(total), start + size))
