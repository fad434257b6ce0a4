"""The pack's HTTP routes on ComfyUI's server, added when the extension loads (never at import):
``GET /facelift/cache`` (load and eviction counters, resident models) and ``POST /facelift/cache/clear``."""

from __future__ import annotations

_routes_added = False


def add_routes() -> None:
    global _routes_added
    if _routes_added:
        return
    try:
        from aiohttp import web
        from server import PromptServer
    except ImportError:
        return
    inst = getattr(PromptServer, "instance", None)
    if inst is None:
        return
    from . import cache

    @inst.routes.get("/facelift/cache")
    async def _cache_stats(request):  # noqa: ARG001
        return web.json_response(cache.stats())

    @inst.routes.post("/facelift/cache/clear")
    async def _cache_clear(request):  # noqa: ARG001
        return web.json_response({"cleared": cache.clear()})

    _routes_added = True
