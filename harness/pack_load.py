"""The script that loads the pack the way ComfyUI does, inside the provisioned ComfyUI (``comfy_host.run_in_comfy``),
and reports what it saw: nodes, new modules, network and CUDA calls, load time.

Used by tests/test_pack_import.py (no work at import time) and benchmarks/bench_pack_import.py (load time, never
asserted in a test).
"""

LOAD_PACK = r"""
import asyncio, socket, time
import nodes                      # ComfyUI's own module: loads torch, comfy.*, the core nodes
import torch
before = set(sys.modules)
calls = {"network": [], "cuda": []}
def _record(kind, name, orig):
    def wrapper(*a, **k):
        calls[kind].append(name)
        return orig(*a, **k)
    return wrapper
socket.socket.connect = _record("network", "connect", socket.socket.connect)
socket.getaddrinfo = _record("network", "getaddrinfo", socket.getaddrinfo)
socket.create_connection = _record("network", "create_connection", socket.create_connection)
for fn in ("_lazy_init", "init", "is_available", "device_count", "set_device", "current_device"):
    if hasattr(torch.cuda, fn):
        setattr(torch.cuda, fn, _record("cuda", fn, getattr(torch.cuda, fn)))
t0 = time.perf_counter()
ok = asyncio.run(nodes.load_custom_node(PACK_PATH, set(nodes.NODE_CLASS_MAPPINGS)))
seconds = time.perf_counter() - t0
ours = {k: v.RELATIVE_PYTHON_MODULE for k, v in nodes.NODE_CLASS_MAPPINGS.items() if "facelift" in
        getattr(v, "RELATIVE_PYTHON_MODULE", "").lower()}
emit({"ok": ok, "seconds": seconds, "nodes": ours, "new_modules": sorted(set(sys.modules) - before),
      "calls": calls, "cuda_initialized": torch.cuda.is_initialized()})
"""
